// Package journal is the bookie's write-ahead log: it owns the journal
// directories, writes records to preallocated segments with aligned direct
// I/O and group commit, tells each add when it is durable, and replays what
// was written from a checkpoint after a restart.
//
// # Promises
//
//   - A record's callback reports success only after an fdatasync that covers
//     the record returned. Callbacks of a directory fire in record order.
//   - After a crash, every record whose callback reported success is replayed,
//     in order within its directory (a ledger always maps to the same
//     directory, so a ledger's records replay in the order they were
//     appended). Nothing that was not appended is replayed.
//   - Damage that a crash cannot explain is never skipped: Open and Replay fail
//     with an error wrapping base.ErrCorruption that names the file and offset.
//     Nothing in reading panics on bad bytes.
//   - Memory is bounded: each directory holds at most QueueMaxBytes of records
//     that are not yet durable; beyond it Append waits and TryAppend fails
//     with ErrBusy.
//
// # Files
//
// A directory holds segments named by their file number, 16 hex digits:
// 0000000000000001.journal, 0000000000000002.journal, ... Numbers are
// consecutive; a gap is corruption. Files ending in .recycle are freed
// segments kept for reuse (see Recycling). Records use internal/record's framing
// (32-byte header with CRC32C over header and payload, the segment's file
// number, kind, ledger and entry). A segment is
//
//	offset 0               64                       align (4096)
//	+----------------------+------------------------+
//	| file header          | padding record         |  header block, synced
//	| "MGJOURNL" v1 num crc| Entry = alignment      |  before any record
//	+----------------------+------------------------+
//	| record | record | ... | record | padding record |  one group write,
//	+--------+--------+-----+--------+----------------+  ends on a block
//	| record | ...                   | padding record |  boundary
//	+--------+-----------------------+----------------+
//	| fresh file: zeros (preallocated past the file size) ...
//	| recycled file: stale bytes of its earlier use ...
//
// Every write starts and ends on a block boundary, so a block that an
// fdatasync made durable is never written again: a torn write can only damage
// bytes that were never acknowledged. (etcd's page writer rewrites the last
// partial page instead; that is cheaper in space at low load but trusts the
// device not to damage the old contents of a sector it is rewriting. We pay
// at most one block of padding per fdatasync, which at high load is amortized
// over a large group, and never rewrite.)
//
// A group is closed by a padding record (kind KindPadding) whose Ledger
// field is a durability marker: the file offset below which everything was
// known durable when the padding was written. Rotation closes a segment the
// same way, with flag 1 (segment end) set on the padding: nothing of the
// segment follows it.
//
// # Recycling
//
// Segments freed by a checkpoint are not all deleted: up to two per
// directory are renamed to <16 hex digits>.recycle and reused for the next
// segments (renamed back into the segment namespace, header block rewritten
// and synced, directory synced). Writes into a reused file overwrite blocks
// that are already allocated and inside the file's size, so its fdatasync
// flushes data without also committing a growing file size; on the machine
// this was measured on that nearly halves fdatasync latency (see the
// benchmarks). The old contents after the new records are stale: records of
// an earlier file number (a clean end for internal/record), after a
// segment-end padding in rotated segments, and cut off with the torn tail in
// the newest one.
//
// # Group commit
//
// Per directory there is one writer goroutine, one syncer goroutine, and a
// preparer goroutine that creates and preallocates the next segment before
// it is needed (header written and synced, fallocate, directory synced).
// Appenders, on their own goroutines, reserve space in a ring of aligned
// memory under a short lock, copy the payload there (its only copy) and frame
// it. The writer writes whole blocks of the ring to the segment: everything
// queued as soon as the syncer is idle, padded to a block; while an fdatasync
// runs, the whole blocks available once BufferedWritesThreshold is reached,
// and everything once the group has waited MaxGroupWait. The syncer
// fdatasyncs whatever was written, then completes the records it covered.
// Whatever arrives during an fdatasync is the next group; a lone add is
// never held back by a timer.
//
// Rotation happens at MaxSegmentBytes. The writer does not write into the
// next segment until the previous one is wholly durable (one fdatasync per
// rotation), so only the newest segment of a directory can end in a torn
// write.
//
// # Recovery
//
// Open examines the newest segment of each directory; Replay checks every
// other one. Reading a segment stops at the first bytes that are not a valid
// record of that segment (internal/record says why: zeros, a record of an
// earlier file, a bad checksum, a record cut short). Then:
//
//   - In the newest segment, the rest is a torn tail, unless a later padding
//     record's durability marker lies past the bad bytes: an fdatasync had
//     covered them, so their damage is corruption. (Without such a marker
//     the bad bytes and anything after them were never acknowledged: O_DIRECT
//     writes not yet synced may reach the disk in any order.) A torn tail is
//     cut off with a durable truncate, and the run writes a new segment, so
//     stale bytes can never be read as live. A newest segment without records
//     (made ahead of need, or cut off whole) is removed.
//   - In any other segment, stopping before the end of the file is corruption
//     unless a segment-end padding record came first; so are a bad file
//     header, a checkpoint older than the oldest segment or past the end of
//     its segment.
//
// A residual risk, stated: damage to acknowledged records in the last group
// of the newest segment, written after the last durability marker, is cut
// off as a torn tail rather than reported.
//
// # Checkpoints
//
// The owner takes a Mark (the durable end of every directory), flushes
// ledger storage, persists the mark (SaveCheckpoint writes it atomically:
// temporary file, fsync, rename, directory fsync) and then calls
// SetCheckpoint, which frees the segments wholly below the mark (recycling or
// deleting them, oldest first, each step durable) except the MaxBackups
// newest of them, and never the segment being written. Marks are durable
// positions, never merely written ones, and a mark at the very end of a
// segment names the start of the next one. A restart gives its new segment
// the number after the last segment with records, or the number of the first
// of the trailing segments without records. Together these keep every
// position written after a restart at or after any persisted checkpoint, so
// a replay from it never skips a record. After a restart, Replay(checkpoint) replays the
// rest; replay is idempotent for the owner, who may see records it already
// flushed.
//
// # Errors
//
// A failed write or fdatasync fails the directory: its queued records'
// callbacks report the error (records an earlier fdatasync covered were
// already acknowledged), later appends to it fail at once, and the journal
// must be reopened. Errors from a full device wrap base.ErrNoSpace.
package journal
