// Package ledgerstore is a bookie's ledger storage: the ledger directories
// beside the journal, where entries live after the journal acknowledged
// them and where readers find them. It owns the write cache, the entry
// logs, the location index, the read cache and read-ahead, the ledger
// metadata a bookie keeps (fenced, master key, explicit LAC), garbage
// collection and compaction, and the disk space watch that turns the store
// read-only. It does not know the journal and never syncs per entry.
//
// # Promises
//
//   - AddEntry puts an entry in the write cache, holding a reference to the
//     caller's buffer (no copy). Flush returns when every entry added
//     before the call is durable in the entry logs and the location index,
//     and every metadata change made before it is durable in the catalog.
//     The bookie takes a journal mark, calls Flush, then persists the mark
//     as its checkpoint; entries added but not flushed at a crash are
//     replayed from the journal, and adding an existing (ledger, entry)
//     again with the same bytes is harmless.
//   - The write cache is bounded. When all of its segments are full, adds
//     trigger a flush and wait (with their context) for a segment to free;
//     the flusher never waits for adds, so there is no deadlock.
//   - Reads return the bytes that were added or a clear error: every
//     record read from a log is checked (CRC32C, file number, kind, ledger,
//     entry, length) and a mismatch is a *CorruptionError wrapping
//     base.ErrCorruption with the ledger, entry, file and offset.
//   - After any crash (power cut at any write or sync, kill -9) Open
//     rebuilds a consistent index: everything a Flush acknowledged is
//     there with its bytes, deleted ledgers stay deleted.
//   - When every directory is full the store turns read-only (adds fail
//     with ErrReadOnly, reads, deletes and garbage collection go on) and
//     writable again below the low-water mark; a write that hits ENOSPC
//     loses nothing (the entries stay in the write cache) and turns the
//     directory full.
//   - No lock is held across I/O on the add and read paths: a catch-up
//     reader, a flush or a compaction never stalls adds.
//
// # Files
//
// Each ledger directory holds entry logs and their index files; the
// catalog lives in MetaDir (Dirs[0] by default). Every file starts with a
// record.FileHeader (its own magic, format version, file number) and
// carries record framing (internal/record: 32-byte header, CRC32C over
// header and payload, the file number in every record).
//
//	<dir>/<id %08x>.log    entry log     magic "MGNELOG1", file number = id
//	<dir>/<id %08x>.idx    index file    magic "MGNEIDX1", file number = id
//	<meta>/CATALOG-<n %08x> catalog       magic "MGNCATL1", file number = n
//
// Entry log: the file header, then one record per entry (kind
// record.KindEntry, the ledger and entry in the record header, the payload
// as added). Log ids are unique across directories and only grow; logs are
// rolled at EntryLogSizeLimit and never appended to after a restart or a
// write error. Written with direct I/O, each committed part ends with zero
// padding up to the next block boundary (4 KiB), where the next part's
// first record starts; the padding belongs to no record.
//
//	+------------+----------------------+----------------------+---
//	| file hdr   | hdr(l,e) | payload   | hdr(l,e) | payload   | ...
//	| 64 B       | 32 B     | n B       |          |           |
//	+------------+----------------------+----------------------+---
//
// Index file: the file header, then one record (kind record.KindMeta) per
// committed part of the log, appended and synced after the part's data was
// synced. Its payload (uvarints, signed values zigzag varints):
//
//	dataEnd                     log offset just past the part's last record
//	nRuns
//	nRuns times:
//	  seq                       flush sequence of the run's entries
//	  ledger (varint)
//	  start                     offset of the run's first record
//	  count
//	  count times:
//	    entryDelta              entry id minus the previous one (first: minus -1)
//	    payloadLen              the record is 32+payloadLen bytes; the next
//	                            record of the run follows it directly
//
// About 3 bytes per entry. A run is a stretch of records of one ledger and
// one sequence written back to back with increasing entry ids.
//
// Catalog: the file header, a snapshot of the whole metadata state, a
// record marking the snapshot's end (Flags opSnapshotEnd), then records
// appended one per sync. Every record is kind record.KindMeta with Flags
// opBatch; its payload is a sequence of sub-records
//
//	op (1 B) | ledger (varint) | aux (uvarint) | len (uvarint) | payload
//
//	op 1 ledger:   payload = flags (bit 0 fenced, bit 1 has LAC) |
//	               keyLen | key | lacLen | lac
//	op 2 deleted:  aux = the highest entry log id allocated at deletion
//	op 3 tombstone dropped
//
// A new catalog file (a fresh snapshot) is written at every Open and when
// the appended records outgrow the snapshot; the old file is removed only
// after the new one and its directory entry are durable, and Open uses the
// newest file whose snapshot is complete. 256 KiB are preallocated after
// each snapshot so that deletions still land on a full disk.
//
// # Write path
//
// The write cache is WriteCacheSegments segments of WriteCacheMaxBytes /
// WriteCacheSegments each (charged by payload capacity plus 64 bytes per
// entry). Adds fill the active segment; a full one is sealed (given the
// next flush sequence number) and the flusher woken; adds move on to a
// free segment. The flusher takes sealed segments oldest first.
//
// A segment keeps, per ledger, a slice of (entry, buffer) in arrival order
// and a small map from ledger to slice (consecutive adds to one ledger skip
// even that). A ledger's entries almost always arrive in increasing order,
// so an add is an append and the slice stays sorted; a re-add of an entry
// at or below the last one is found by binary search and replaced in
// place, anything else out of order is appended and the slice marked
// unsorted, to be sorted (the latest of equal entries kept) when a read
// needs it or at the latest when the segment is sealed. A sealed segment is
// immutable and sorted, so a flush sorts only the ledger ids: no per-entry
// map and no sort of the entries (a map keyed by (ledger, entry) cost about
// a fifth of the engine's CPU in BenchmarkAdd). Emptied segments keep
// their slices and map, so that a warm cache adds without allocating.
//
// A flush sends each ledger to one writable directory (by hash;
// directories are written in parallel), copies each payload once into a
// 1 MiB write buffer behind its record header, writes the buffer, and
// commits each part: fdatasync the log, append and fdatasync the part's
// index record, and sync the directory when the files are new. Only then
// does the in-memory index point at the records, and only then does the
// segment leave the cache.
//
// Entry logs are written with O_DIRECT unless DisableDirectIO is set or
// the filesystem refuses it (then through the page cache, payloads larger
// than the buffer written from the caller's memory). Direct writes are of
// whole aligned blocks from the aligned buffer: a partial last block stays
// in the buffer for the next write, and a commit pads the part's end with
// zeros to the next block, where the next part starts (no committed block
// is ever written again; only the index points into a log, so the padding
// is never read). Reads use a separate buffered handle. Writing through
// the page cache left gigabytes of dirty pages whose writeback slowed the
// journal's fdatasync on a shared disk (and copied every byte once more).
//
// # Crash consistency
//
// The index in memory only ever points at records whose index record is
// durable, and Open rebuilds it from the index files alone (the logs are
// not read at start-up):
//
//   - An index record is written only after the data it describes was
//     synced, so a durable index record never points at torn data.
//   - Each index record is one write followed by a sync: after a crash
//     only the last record of a file can be torn. An invalid last record
//     is a torn tail and is ignored (its data was never acknowledged). An
//     invalid record followed by a valid one is damage, not a crash: Open
//     rebuilds that log's index from the log itself (every record names
//     its ledger and entry and carries its checksum; tombstones apply as
//     to any index file), writes the rebuilt index file in place of the
//     damaged one (kept as <id>.idx.damaged) and logs what it found. Open still stops, naming the files, when the
//     log's own file header is bad.
//   - A log whose index file holds no record, or an index file without
//     its log (a removal cut short), is garbage and removed at Open. A log
//     whose only index record is invalid is rebuilt from the log like a
//     damaged one: a crash in its first commit (whose data was synced
//     before the record, and which the journal still holds) and damage to
//     a committed record (whose data only the log holds) look alike.
//   - The same entry can be in several logs (re-added after a crash,
//     copied by compaction). Runs are applied in flush sequence order; for
//     equal sequences the higher log id wins. Compaction gives its copies
//     the highest sequence of the source log: above every version they
//     replace, below every write that could replace them (those belong to
//     flushes that had not completed when the copy began, so their
//     sequences are higher). Either way the winner holds the right bytes.
//   - Deletions are durable (a catalog record) before DeleteLedger
//     returns. The tombstone keeps the ledger's records out of the index at
//     every later Open; it is dropped only once no log that may hold the
//     ledger's records exists, which the garbage collector checks after
//     the removals are durable. A part committed after the deletion leaves
//     the ledger out of its index record.
//   - Metadata changes (master key, fence, explicit LAC) are durable at the
//     next Flush or SyncMetadata; the bookie journals them first, so a
//     crash before that Flush is repaired by journal replay.
//
// # Location index
//
// (ledger, entry) to (log, offset, size): per ledger, a dense array of
// 12-byte slots indexed by entry id, in pages of 4096 slots (only the last
// page of a ledger grows; a hole is an empty slot), all in memory. Chosen
// by BenchmarkIndex (1M entries, AMD EPYC, go test -bench BenchmarkIndex
// -benchtime 2000000x), against a Go map and against sorted per-flush runs
// merged every 8 flushes (an LSM's shape without its block compression):
//
//	layout       structure  lookup ns  bytes/entry  build ns/entry
//	long         dense         70         12.3          35
//	             map          246         83.7         334
//	             runs         687         32.1         326
//	interleaved  dense        150         28.8          64
//	             map          238         83.9         324
//	             runs         716         32.1         365
//	striped      dense         45         19.7          32
//	             map          237         83.8         287
//	             runs         698         32.1         493
//
// (long: 100 ledgers, 100 entries each per flush; interleaved: 100,000
// ledgers of 10 entries, one of each per flush; striped: the 2 of 3 entries
// a bookie of an ensemble of 3 with write quorum 2 holds.) The dense array
// is 3-15 times faster to look up and 3-7 times smaller than the
// alternatives in every layout, and needs no compaction or tombstones of
// its own (BookKeeper's RocksDB index bloats and slows after mass
// deletions). Its cost is memory: 12 bytes per entry held, about 1.2 GB
// per 100M entries; a bookie of Pulsar entries (batches of messages, often
// 10-100 KiB) holds far fewer. Rebuilding it at Open reads the index files
// (about 3 bytes per entry): BenchmarkOpen, 1M entries in 1000 ledgers,
// about 40 ns per entry.
//
// # Reads
//
// ReadEntry looks in the write cache, the read cache, then the log (one
// read of the blocks holding the record; it is checked and its payload
// copied into a pooled buffer the caller releases). A read from a log, and a
// sequential reader crossing the middle of its read-ahead window, start an
// asynchronous read-ahead of the ledger's next ReadAheadBatchSize entries
// (at most ReadAheadBatchBytes, from the same log, one read per stretch of
// back-to-back records) into the read cache; at most two windows per
// ledger and ReadAheadConcurrency overall are in flight, and a reader that
// reaches a window in flight waits for it instead of reading the same
// bytes. ReadRange returns consecutive entries in one call, reading each
// stretch of back-to-back records into a buffer of at most 1 MiB at a
// time. The read cache is a FIFO ring of segments (as BookKeeper's)
// holding references to pooled buffers.
//
// Entry logs are read with O_DIRECT (the blocks around the records, into
// pooled aligned buffers) unless BufferedReads is set or the filesystem
// refuses it: a cold catch-up read neither fills the page cache nor evicts
// what is there. Buffered reads keep the kernel's own read-ahead off
// (POSIX_FADV_RANDOM) unless KernelReadAhead is set. Read system calls are
// of at most 256 KiB while adds arrive, so that a catch-up reader keeps
// little queued at the device ahead of the journal's writes when they
// share a disk (Linux's deadline scheduler serves reads first), and of
// 1 MiB when no add arrived for 100 ms. That costs sequential bandwidth
// under adds (the kernel's read-ahead keeps several multi-megabyte reads
// in flight); a bookie whose journal has its own device may set
// BufferedReads and KernelReadAhead.
//
// # Garbage collection
//
// DeleteLedger drops the ledger from the index at once (and durably from
// the catalog). Each log keeps its total and live bytes and the live bytes
// per ledger (rebuilt at Open from the index files). RunGC (and the loop,
// every GCInterval: major when MajorCompactionInterval passed, else minor
// when MinorCompactionInterval passed, else deletions only) removes logs
// with nothing live and compacts logs whose live share is below the
// threshold, lowest share first: the live entries are read (and checked:
// bad bytes are never copied, the log is left alone), copied at
// CompactionRateBytes into a separate compaction log, committed like a
// flush, then the index moves to the copies (only entries still pointing
// at the source), and only then the source's index file and log are
// removed (shrunk in 4 MiB steps 2 ms apart first, so that freeing their
// blocks never stalls the journal's fdatasync on a shared filesystem) and
// the directory synced. A log still being written is first
// rolled by the flusher at the collector's request. Compaction runs when
// the store is read-only too, as long as a directory has room for the
// live bytes it copies: that is how space comes back.
//
// # Disk space
//
// Every DiskCheckInterval (and on CheckDisks) each directory's used
// fraction is measured: at DiskUsageThreshold it is full, below
// DiskUsageLwmThreshold it is writable again; an ENOSPC on a write marks it
// full until then too. New logs go only to writable directories (a flush
// that hit ENOSPC in one directory retries at once in the others); with
// none left the store is read-only and OnModeChange is told. The catalog
// keeps 256 KiB preallocated so that deletions land on a full disk, and
// Open on a disk too full for a new catalog appends to the old one, so a
// full bookie restarts, deletes and compacts its way back.
//
// # Concurrency
//
// Lock order (outermost first): gcMu, catalog, write cache, state (index
// and log table), metadata. The read cache, read-ahead and mode locks are
// never held while taking another. Only gcMu (one collection at a time)
// and the catalog's lock (its own appends) are held across I/O, and
// neither is taken on the add or read paths. The flusher goroutine owns
// the flush writers; compaction writers belong to the running collection.
package ledgerstore
