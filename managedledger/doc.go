// Package managedledger owns a topic's storage: a managed ledger is one log
// made of many ledgers (package ledger, or any BookKeeper), one writer
// appending at its end and many cursors (subscriptions) reading it, each
// with its own position. It also owns the entry cache the managed ledgers
// of a factory share. It is Pulsar's managed-ledger library rebuilt.
//
// # Promises
//
//   - Adds are confirmed in the order of the calls, each exactly once, at
//     the position it has in the log. Many are in flight at once. When a
//     ledger fails, the adds it did not confirm are re-sent, in order, to a
//     new ledger, after the failed ledger is sealed below them and any
//     ledger written after it is out of the list: the log never holds a gap
//     or a duplicate of a confirmed entry, even across a crash.
//   - Ledgers roll over by entries, size and age (Pulsar's
//     managedLedgerMaxEntriesPerLedger, ...MaxSizePerLedgerMbytes,
//     ...MinLedgerRolloverTimeMinutes, ...MaxLedgerRolloverTimeMinutes). The
//     next ledger is created, and registered in the metadata, once the
//     current one is CreateAheadFraction full, so a rollover does not wait
//     for a ledger creation.
//   - Opening a managed ledger whose writer died recovers the ledgers it
//     left open (which fences them: that writer's adds fail with
//     ErrFenced) and starts a new ledger. Any change of the metadata by
//     another owner fences this one.
//   - A ledger is deleted only when every durable cursor's persisted
//     mark-delete position is past it (an acknowledgement not yet persisted
//     never counts: invariant 5) and it is past retention; it leaves the
//     persisted list before it is deleted.
//   - A cursor's acknowledgements (mark-delete position, individually
//     acknowledged positions, acknowledged batch indexes) are persisted
//     whole, however many holes they have: after a crash exactly the
//     unacknowledged entries are redelivered.
//   - Entries are never copied: the buffer the producer's bytes came in is
//     what the cache holds and readers get, by reference count; every
//     reference is released exactly once.
//
// # Metadata layout
//
//	/managed-ledgers/<tenant>/<ns>/persistent/<topic>            ManagedLedgerInfo
//	/managed-ledgers/<tenant>/<ns>/persistent/<topic>/<cursor>   ManagedCursorInfo
//
// Both are protocol buffers written by hand with the field numbers of
// Pulsar's MLDataFormats.proto (Pulsar's tools decode them); Magnetar's own
// fields are numbered from 100:
//
//	ManagedLedgerInfo
//	  1  repeated LedgerInfo   1 ledgerId  2 entries  3 size  4 timestamp (ms)
//	  3  repeated KeyValue     1 key  2 value          (properties)
//	     A LedgerInfo with no entries is an open ledger: recovered on open.
//	ManagedCursorInfo
//	  1  cursorsLedgerId (-1: none; the state is inline)
//	  2  markDeleteLedgerId  3 markDeleteEntryId  6 lastActive (ms)
//	  100 ackState (inline state, only with cursorsLedgerId -1)
//	PositionInfo: one entry of a cursor ledger
//	  1  markDeleteLedgerId  2 markDeleteEntryId
//	  100 ackState part  101 part index  102 part count  103 snapshot sequence
//	  104 CRC-32C (fixed32) of the whole ackState
//
// Every compare-and-set is on the node's version; a conflict means another
// owner: ErrFenced.
//
// # Acknowledgement state (ackState)
//
// Unsigned varints unless noted; positions are split per ledger into chunks
// of 65,536 entries, each written as runs or as a bitmap, whichever is
// smaller, consecutive full chunks as one record:
//
//	+---------+-------------------------------------------------------------+
//	| 1       | version                                                     |
//	| n       | ledgers; per ledger:                                        |
//	|         |   id - previous id, record count, per record:               |
//	|         |     key - previous key, kind (byte):                        |
//	|         |       0 runs:   count, (start - previous end - 1, len - 1)* |
//	|         |       1 bitmap: 1024 x uint64 little endian                 |
//	|         |       2 full:   number of consecutive full chunks           |
//	| m       | batches; per batch: ledger, entry, size, ceil(size/64)      |
//	|         |   x uint64 little endian (bit i: index i acknowledged)      |
//	+---------+-------------------------------------------------------------+
//
// A million alternate acknowledgements encode in about 256 KiB (Pulsar
// persists at most 10,000 ranges, managedLedgerMaxUnackedRangesToPersist,
// and silently drops the rest). A snapshot larger than
// CursorSnapshotMaxEntryBytes is split over consecutive cursor-ledger
// entries; recovery takes the last snapshot whose every part is there and
// whose checksum holds.
//
// # Concurrency
//
// No goroutine per managed ledger: adds complete on the ledger layer's
// goroutines, reads that wait are woken by the add that confirmed an entry,
// and periodic work (time-based rollover, retries, cache age eviction) runs
// in one maintenance pass per factory. Lock order: cursor.persistMu,
// cursor.mu, managedLedger.submitMu, managedLedger.mu,
// managedLedger.readsMu, entryCache.mu; cacheManager.mu before
// entryCache.mu. No lock is held across metadata or ledger I/O, except
// submitMu across WriteLedger.AddEntry (so ledgers see adds in order) and
// persistMu, which only serialises a cursor's persists.
//
// MemBookKeeper is an in-memory BookKeeper with fault injection for tests of
// this package and the layers above; NewBookKeeper adapts package ledger's
// client.
package managedledger
