// Package ledger is Magnetar's replicated-ledger client, BookKeeper's
// client rebuilt: it owns ledger creation, striping over an ensemble of
// bookies with a write quorum and an ack quorum, the last add confirmed
// (LAC), ensemble changes when a bookie fails, reads with failover,
// fencing and recovery of ledgers whose writer died, and ledger metadata.
// It talks to bookies only over the wire (BookKeeper's protocol, through
// internal/wire/bk), so it works with Magnetar's bookie and with
// BookKeeper's; it keeps metadata in a metastore.Store at BookKeeper's
// paths and in BookKeeper's format, so BookKeeper tools can read it.
//
// # Promises
//
//   - A ledger has one writer (a WriteHandle). An add is confirmed when A
//     bookies of its write set acknowledged it and every earlier add is
//     confirmed; callbacks arrive strictly in entry order.
//   - No confirmed entry is lost while fewer than A bookies of its write
//     set lose it: a failed or slow bookie is replaced (ensemble change,
//     recorded in the metadata by compare-and-set before anything past it
//     is confirmed) and every unconfirmed entry is re-sent to the
//     replacement.
//   - Every entry carries a digest (CRC32C by default) over its 32-byte
//     header and payload, checked on every read together with its ledger
//     and entry ids; a reader that is not recovering reads no further than
//     the LAC.
//   - Recovery (OpenLedger with Recovery) fences the ledger, so the old
//     writer's adds fail with ErrFenced, and closes it at an entry that
//     includes every confirmed one; concurrent recoveries converge on one
//     CLOSED metadata, and every reader afterwards sees the same entries.
//   - Payloads are never copied on the write path: the ADD frame's head
//     (frame length, packet header, master key, entry header, digest) and
//     the caller's buffer go out as separate iovecs of one vectored write.
//     Reads copy each entry's payload once, out of the connection's
//     buffer, into a pooled buffer the caller releases.
//
// # Wire protocol
//
// Adds and reads use the v2 binary protocol (as Pulsar configures
// BookKeeper: bookkeeperUseV2WireProtocol): ADD_ENTRY with the master key
// SHA-1("ledger" ‖ password), READ_ENTRY (entry -1 reads a bookie's last
// entry, to learn the LAC; with DO_FENCING and the master key it fences),
// and BATCH_READ_ENTRY for ranges of segments where every bookie holds
// every entry (E == W, as BookKeeper requires). Long polls for the LAC use
// v3 (ReadRequest with previousLAC and timeOut), on a separate connection:
// a BookKeeper bookie fixes a connection's protocol at its first frame.
// When bookies refuse v3 long polls the client polls READ_ENTRY(-1) with
// a backoff instead. Requests are pipelined: v2 responses are matched by
// (ledger, entry, operation), batch reads by their request id, v3
// responses by txnId.
//
// # Metadata
//
// A ledger's metadata lives at metastore.LedgerPath(LedgersRoot, id)
// (BookKeeper's HierarchicalLedgerManager: /ledgers/00/0000/L0001) and is
// encoded as BookKeeper's LedgerMetadataSerDe version 3:
//
//	+------------------------------------+-----------------+------------------------------+
//	| "BookieMetadataFormatVersion\t3\n" | varint length n | n bytes LedgerMetadataFormat |
//	+------------------------------------+-----------------+------------------------------+
//
// the protobuf message of DataFormats.proto, whose fields are listed
// beside Metadata.Marshal. Ledger ids come from BookKeeper's generator: an
// ephemeral sequential node /ledgers/idgen/ID-<10 digits>, deleted after
// use. Writable bookies are the children of /ledgers/available except
// "readonly". Every metadata change is a compare-and-set on the node's
// version, re-reading and re-applying the change on a conflict.
//
// States: OPEN (the writer adds; ensemble changes append segments) ->
// IN_RECOVERY (a recovering client fenced it) -> CLOSED (LastEntry and
// Length final); a writer's Close goes from OPEN to CLOSED directly.
//
// # Recovery
//
// As BookKeeper's LedgerRecoveryOp: CAS OPEN -> IN_RECOVERY; fencing reads
// of the last entry to every bookie of the last ensemble, until the
// answers cover every write quorum (fewer than A unknown members in each);
// LAC = the largest LAC they carry (at least the last segment's first
// entry - 1); read forward from LAC+1, each entry from its replicas in
// turn, an entry being missing once W-A+1 replicas said so; re-add every
// entry found with RECOVERY_ADD (ensemble changes of the recovery writer
// are kept locally and stored with the close); CAS to CLOSED. The
// decisions are a state machine without I/O (recoveryMachine), as is the
// pending-add quorum tracker (addTracker).
//
// # Deviations from BookKeeper
//
//   - Recovery reads ahead RecoveryReadWindow entries (BookKeeper reads one
//     at a time) and takes the closing length from the entry at the end
//     (or, when nothing follows the LAC, from entry LAC), where BookKeeper
//     can record the length of a later, unconfirmed entry.
//   - Errors that arrive after an entry reached its ack quorum replace the
//     bookie at once (BookKeeper delays that ensemble change).
//   - Placement is uniformly random among writable bookies (no rack
//     awareness), never reusing a bookie that failed on the ledger.
//   - No explicit LAC (WRITE_LAC), DEFERRED_SYNC or force; ids past 2^31
//     (the long id generator) are not allocated; metadata format versions
//     1 and 2 are not read.
//   - DeleteLedger removes the metadata only; bookies garbage-collect the
//     entries of ledgers whose metadata is gone.
//
// # Concurrency
//
// Each bookie connection has a read loop and a write loop; each write
// handle a goroutine that delivers completions and runs ensemble changes.
// Completion callbacks run on that goroutine: they must not block for long
// and must not wait for later adds of the same handle. A client's monitor
// goroutine fails requests past their deadline (AddEntryTimeout,
// ReadTimeout). Lock order: WriteHandle.addMu, then either
// WriteHandle.mu or a connection's mu (never both); the pool's mu is taken
// alone. No lock is held across I/O or while a callback runs.
package ledger
