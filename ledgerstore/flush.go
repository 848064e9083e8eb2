package ledgerstore

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
)

// writeBufferBytes is the size of an entry log writer's buffer: records are
// assembled there (the one copy of a payload the store makes) and written
// in chunks of this size.
const writeBufferBytes = 1 << 20

// flushLoop is the flusher goroutine: it writes sealed segments, oldest
// first, one at a time.
func (s *Store) flushLoop() {
	defer s.wg.Done()
	var retry <-chan time.Time
	for {
		select {
		case <-s.flushKick:
		case <-retry:
		case <-s.closing:
			return
		}
		retry = nil
		immediate := 0
		for {
			seg := s.wc.nextToFlush()
			if seg == nil {
				break
			}
			start := time.Now()
			err := s.flushSegment(seg)
			if err != nil {
				s.stats.flushErrors.Add(1)
				s.log.Error("flush failed; entries stay in the write cache", "seq", seg.seq, "err", err)
				if vfs.IsNoSpace(err) && s.Mode() == Writable && immediate < len(s.dirs) {
					// A directory ran out of space and is out of the
					// rotation now; the others may take the segment at
					// once (waiters are not told of this attempt).
					immediate++
					continue
				}
				s.wc.finish(seg, err)
				retry = time.After(s.opts.FlushRetryInterval)
				break
			}
			s.wc.finish(seg, nil)
			s.stats.flushes.Add(1)
			s.stats.flushNanos.Add(int64(time.Since(start)))
		}
		// Roll the logs garbage collection asked for, even when idle (a
		// read-only store flushes nothing, but its logs must become
		// collectable).
		for d, w := range s.writers {
			if w != nil && w.lf.rollReq.Load() {
				w.retire()
				s.writers[d] = nil
			}
		}
	}
}

// flushScratch is the flusher's reusable memory.
type flushScratch struct {
	keys   []entryKey
	groups [][]entryKey
	done   [][]writtenEntry
	errs   []error
}

// flushSegment writes seg's entries, sorted by (ledger, entry), into the
// entry logs of the writable directories (a ledger's entries go to one
// directory, the directories in parallel), syncs them, commits their index
// records, and then points the location index at them.
func (s *Store) flushSegment(seg *segment) error {
	sc := &s.flushScratch
	if len(sc.groups) != len(s.dirs) {
		sc.groups = make([][]entryKey, len(s.dirs))
		sc.done = make([][]writtenEntry, len(s.dirs))
		sc.errs = make([]error, len(s.dirs))
	}
	var writable []int
	for i, d := range s.dirs {
		if d.writable() {
			writable = append(writable, i)
		}
	}
	if len(writable) == 0 {
		return fmt.Errorf("ledgerstore: flush: %w", ErrReadOnly)
	}
	keys := sc.keys[:0]
	for k := range seg.entries {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b entryKey) int {
		if c := cmp.Compare(a.ledger, b.ledger); c != 0 {
			return c
		}
		return cmp.Compare(a.entry, b.entry)
	})
	sc.keys = keys
	for i := range sc.groups {
		sc.groups[i] = sc.groups[i][:0]
		sc.done[i] = sc.done[i][:0]
		sc.errs[i] = nil
	}
	for _, k := range keys {
		d := writable[ledgerDir(k.ledger, len(writable))]
		sc.groups[d] = append(sc.groups[d], k)
	}
	var wg sync.WaitGroup
	for d := range s.dirs {
		if len(sc.groups[d]) == 0 {
			continue
		}
		wg.Go(func() {
			sc.done[d], sc.errs[d] = s.writeGroup(d, seg, sc.groups[d], sc.done[d])
		})
	}
	wg.Wait()
	var entries, bytes int64
	for d := range s.dirs {
		// What was committed is durable even when another part failed.
		s.applyWritten(sc.done[d])
		entries += int64(len(sc.done[d]))
		for _, w := range sc.done[d] {
			bytes += int64(w.size)
		}
	}
	s.stats.flushedEntries.Add(entries)
	s.stats.flushedBytes.Add(bytes)
	var errs []error
	for d, err := range sc.errs {
		if err != nil {
			s.noteWriteError(d, err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ledgerDir spreads ledgers over n directories, keeping a ledger's entries
// of one flush together.
func ledgerDir(l base.LedgerID, n int) int {
	h := uint64(l) * 0x9E3779B97F4A7C15
	return int((h >> 32) % uint64(n))
}

// writeGroup appends keys to directory d's active entry log (rolling it at
// the size limit) and commits. It returns the committed entries appended to
// done. On error the writer is retired: its log is never appended to again.
func (s *Store) writeGroup(d int, seg *segment, keys []entryKey, done []writtenEntry) ([]writtenEntry, error) {
	var err error
	if w := s.writers[d]; w != nil && w.lf.rollReq.Load() {
		// Garbage collection wants this log: roll to a new one.
		w.retire()
		s.writers[d] = nil
	}
	for _, k := range keys {
		payload := seg.entries[k].Bytes()
		if done, err = s.put(&s.writers[d], d, false, seg.seq, k.ledger, k.entry, payload, done); err != nil {
			break
		}
	}
	if err == nil && s.writers[d] != nil {
		var committed []writtenEntry
		committed, err = s.writers[d].commit()
		done = append(done, committed...)
	}
	if err != nil && s.writers[d] != nil {
		s.writers[d].retire()
		s.writers[d] = nil
	}
	return done, err
}

// put appends one record through the writer in *wp, creating it in
// directory d or rolling it when needed. Parts committed on the way are
// appended to done.
func (s *Store) put(wp **logWriter, d int, compaction bool, seq uint64, l base.LedgerID, e base.EntryID, payload []byte, done []writtenEntry) ([]writtenEntry, error) {
	w := *wp
	if w != nil && (!w.fits(len(payload)) || w.partFull()) {
		committed, err := w.commit()
		done = append(done, committed...)
		if err != nil {
			return done, err
		}
		if !w.fits(len(payload)) {
			w.retire()
			*wp, w = nil, nil
		}
	}
	if w == nil {
		var err error
		if w, err = s.newLogWriter(d); err != nil {
			return done, err
		}
		if compaction {
			// Copies are paced and may run on a nearly full disk: no
			// space is reserved ahead of them.
			w.prealloc = 0
		}
		*wp = w
	}
	return done, w.append(seq, l, e, payload)
}

// applyWritten points the index at committed records. Entries of ledgers
// deleted meanwhile are left out (their bytes are garbage).
func (s *Store) applyWritten(done []writtenEntry) {
	if len(done) == 0 {
		return
	}
	s.state.Lock()
	defer s.state.Unlock()
	for i := range done {
		w := &done[i]
		lf := s.state.logs[w.log]
		if lf == nil {
			continue
		}
		if _, ok := lf.ledgers[w.ledger]; !ok {
			lf.ledgers[w.ledger] = 0
		}
		if s.meta.isDeleted(w.ledger) {
			continue
		}
		li := s.state.ledgers[w.ledger]
		if li == nil {
			li = newLedgerIndex()
			s.state.ledgers[w.ledger] = li
		}
		s.replaceSlotLocked(w.ledger, li.set(w.entry, slot{log: w.log, off: w.off, size: w.size}))
		lf.live += int64(w.size)
		lf.ledgers[w.ledger] += int64(w.size)
	}
}

// logWriter appends records to one entry log and commits them: data sync,
// then one index record per part, synced. It is used by one goroutine at a
// time (the flusher, or the garbage collector for compaction output).
type logWriter struct {
	s        *Store
	dir      int
	lf       *logFile
	f        vfs.File
	idx      vfs.File
	off      int64 // offset of the next record
	bufOff   int64 // file offset of buf[0]; bufOff+n == off
	buf      []byte
	n        int
	reserved int64 // preallocated up to here
	prealloc int64
	idxOff   int64
	newFiles bool // their creation still needs a directory sync
	part     []writtenEntry
	partIdx  int // bound on the part's encoded index
	scratch  []byte
}

// newLogWriter creates a new entry log and its index file in directory d.
func (s *Store) newLogWriter(d int) (*logWriter, error) {
	s.state.Lock()
	id := s.state.nextLogID
	s.state.nextLogID++
	lf := newLogFile(s, id, d)
	lf.writing = true
	lf.size = record.FileHeaderSize
	s.state.logs[id] = lf
	s.state.Unlock()

	w := &logWriter{s: s, dir: d, lf: lf, buf: s.getWriteBuffer(), prealloc: s.opts.PreallocateBytes}
	fail := func(err error) (*logWriter, error) {
		if w.f != nil {
			w.f.Close()
		}
		if w.idx != nil {
			w.idx.Close()
		}
		s.putWriteBuffer(w.buf)
		s.state.Lock()
		delete(s.state.logs, id)
		s.state.Unlock()
		lf.release()
		// Files left behind hold no committed data; Open removes them.
		return nil, err
	}
	var err error
	if w.f, err = s.fs.OpenFile(lf.path, vfs.OpenOptions{Write: true, Create: true, Excl: true}); err != nil {
		return fail(fmt.Errorf("ledgerstore: create %s: %w", lf.path, err))
	}
	if w.idx, err = s.fs.OpenFile(lf.idxPath, vfs.OpenOptions{Write: true, Create: true, Excl: true}); err != nil {
		return fail(fmt.Errorf("ledgerstore: create %s: %w", lf.idxPath, err))
	}
	var hdr [record.FileHeaderSize]byte
	record.PutFileHeader(hdr[:], record.FileHeader{Magic: indexMagic, Version: record.FormatVersion, FileNum: id})
	if _, err := w.idx.WriteAt(hdr[:], 0); err != nil {
		return fail(fmt.Errorf("ledgerstore: write %s: %w", lf.idxPath, err))
	}
	w.idxOff = record.FileHeaderSize
	record.PutFileHeader(w.buf[:record.FileHeaderSize], record.FileHeader{Magic: entryLogMagic, Version: record.FormatVersion, FileNum: id})
	w.n = record.FileHeaderSize
	w.off = record.FileHeaderSize
	w.newFiles = true
	lf.fmu.Lock()
	lf.f = w.f // reads share the writer's handle
	lf.fmu.Unlock()
	return w, nil
}

func (s *Store) getWriteBuffer() []byte {
	if b, ok := s.writeBufs.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, writeBufferBytes)
}

func (s *Store) putWriteBuffer(b []byte) {
	if cap(b) == writeBufferBytes {
		b = b[:writeBufferBytes]
		s.writeBufs.Put(&b)
	}
}

// fits reports whether a record with a payload of n bytes may go into this
// log (an empty log takes any record).
func (w *logWriter) fits(n int) bool {
	return w.off+record.HeaderSize+int64(n) <= w.s.opts.EntryLogSizeLimit || w.off == record.FileHeaderSize
}

func (w *logWriter) partFull() bool {
	return w.partIdx+partIndexEntryMax > maxPartIndexBytes
}

// append adds one record. The payload is copied once, into the write
// buffer; a payload larger than the buffer is written from where it is.
func (w *logWriter) append(seq uint64, l base.LedgerID, e base.EntryID, payload []byte) error {
	size := record.HeaderSize + len(payload)
	h := record.Header{FileNum: w.lf.id, Kind: record.KindEntry, Ledger: int64(l), Entry: int64(e)}
	if w.n+size > len(w.buf) {
		if err := w.flushBuf(); err != nil {
			return err
		}
	}
	if size > len(w.buf) {
		var hdr [record.HeaderSize]byte
		record.PutHeader(hdr[:], h, payload)
		if err := w.writeAt(hdr[:], w.off); err != nil {
			return err
		}
		if err := w.writeAt(payload, w.off+record.HeaderSize); err != nil {
			return err
		}
		w.bufOff = w.off + int64(size)
	} else {
		rec := w.buf[w.n : w.n+size]
		copy(rec[record.HeaderSize:], payload)
		record.PutHeader(rec[:record.HeaderSize], h, rec[record.HeaderSize:])
		w.n += size
	}
	w.part = append(w.part, writtenEntry{seq: seq, ledger: l, entry: e, off: uint32(w.off), size: uint32(size), log: w.lf.id})
	w.partIdx += partIndexEntryMax
	w.off += int64(size)
	return nil
}

func (w *logWriter) flushBuf() error {
	if w.n == 0 {
		return nil
	}
	if err := w.writeAt(w.buf[:w.n], w.bufOff); err != nil {
		return err
	}
	w.bufOff += int64(w.n)
	w.n = 0
	return nil
}

func (w *logWriter) writeAt(b []byte, off int64) error {
	end := off + int64(len(b))
	if w.prealloc > 0 && end > w.reserved {
		n := max(w.prealloc, end-w.reserved)
		n = min(n, max(w.s.opts.EntryLogSizeLimit, end)-w.reserved)
		if err := w.f.Preallocate(w.reserved, n); err != nil {
			return fmt.Errorf("ledgerstore: preallocate %s: %w", w.lf.path, err)
		}
		w.reserved += n
	}
	if _, err := w.f.WriteAt(b, off); err != nil {
		return fmt.Errorf("ledgerstore: write %s at %d: %w", w.lf.path, off, err)
	}
	return nil
}

// commit makes the part durable: the data is written and synced, then the
// part's index record is written and synced, then (for new files) the
// directory. It returns the part's entries (valid until the next append),
// leaving out ledgers deleted meanwhile.
func (w *logWriter) commit() ([]writtenEntry, error) {
	if len(w.part) == 0 {
		return nil, nil
	}
	if err := w.flushBuf(); err != nil {
		return nil, err
	}
	if err := w.f.Sync(); err != nil {
		return nil, fmt.Errorf("ledgerstore: sync %s: %w", w.lf.path, err)
	}
	// A ledger deleted by now must not reach the index file, or a reload
	// would bring it back once its tombstone is gone; a ledger that reaches
	// it is recorded as present in the log first, so that its tombstone (if
	// it is deleted later) stays until the log is gone. DeleteLedger sets
	// tombstones under state.mu, so the two are atomic with respect to it.
	kept := w.part[:0]
	w.s.state.Lock()
	for _, e := range w.part {
		if !w.s.meta.isDeleted(e.ledger) {
			kept = append(kept, e)
			if _, ok := w.lf.ledgers[e.ledger]; !ok {
				w.lf.ledgers[e.ledger] = 0
			}
		}
	}
	w.s.state.Unlock()
	w.part, w.partIdx = w.part[:0], 0
	if len(kept) == 0 {
		return nil, nil
	}
	payload := appendPartIndex(w.scratch[:0], w.off, kept)
	rec := make([]byte, 0, record.HeaderSize+len(payload))
	rec = record.Append(rec, record.Header{FileNum: w.lf.id, Kind: record.KindMeta}, payload)
	w.scratch = payload
	if _, err := w.idx.WriteAt(rec, w.idxOff); err != nil {
		return nil, fmt.Errorf("ledgerstore: write %s at %d: %w", w.lf.idxPath, w.idxOff, err)
	}
	if err := w.idx.Sync(); err != nil {
		return nil, fmt.Errorf("ledgerstore: sync %s: %w", w.lf.idxPath, err)
	}
	if w.newFiles {
		dir := w.s.dirs[w.dir].path
		if err := w.s.fs.SyncDir(dir); err != nil {
			return nil, fmt.Errorf("ledgerstore: sync dir %s: %w", dir, err)
		}
		w.newFiles = false
	}
	w.idxOff += int64(len(rec))
	var maxSeq uint64
	for _, e := range kept {
		maxSeq = max(maxSeq, e.seq)
	}
	w.s.state.Lock()
	w.lf.size = w.off
	w.lf.maxSeq = max(w.lf.maxSeq, maxSeq)
	w.s.state.Unlock()
	return kept, nil
}

// retire ends the writer: its log is never appended to again (after an
// error, bytes past the last commit are garbage) and becomes an ordinary
// read-only log. The data handle stays open for reads.
func (w *logWriter) retire() {
	w.s.state.Lock()
	w.lf.writing = false
	w.lf.size = max(w.lf.size, w.off)
	w.s.state.Unlock()
	if w.idx != nil {
		w.idx.Close()
		w.idx = nil
	}
	w.s.putWriteBuffer(w.buf)
	w.buf = nil
}
