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
// in chunks of this size. Each direct write costs a fixed amount of CPU
// (measured on this project's VM: about 250 us of CPU per MiB written in
// 256 KiB writes, 120 us in 1 MiB ones), and in BenchmarkAddInterleaved
// 1 MiB chunks gave the engine slightly more of the journal's rate than
// 256 KiB ones (0.82 and 0.76 against 0.80 and 0.73 at 100 B and 1 KiB),
// although a journal fdatasync queued behind a bigger chunk waits longer.
const writeBufferBytes = 1 << 20

// maxDirectAlignment is the largest alignment direct writes support (the
// write buffer's address is aligned to it).
const maxDirectAlignment = 4096

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
	ledgers []*ledgerEntries
	groups  [][]*ledgerEntries
	done    [][]writtenEntry
	errs    []error
}

// flushSegment writes seg's entries, sorted by (ledger, entry), into the
// entry logs of the writable directories (a ledger's entries go to one
// directory, the directories in parallel), syncs them, commits their index
// records, and then points the location index at them.
func (s *Store) flushSegment(seg *segment) error {
	sc := &s.flushScratch
	if len(sc.groups) != len(s.dirs) {
		sc.groups = make([][]*ledgerEntries, len(s.dirs))
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
	// A sealed segment's entries are sorted per ledger: sorting the
	// ledgers gives the (ledger, entry) order.
	ledgers := append(sc.ledgers[:0], seg.list...)
	slices.SortFunc(ledgers, func(a, b *ledgerEntries) int { return cmp.Compare(a.ledger, b.ledger) })
	sc.ledgers = ledgers
	for i := range sc.groups {
		clear(sc.groups[i])
		sc.groups[i] = sc.groups[i][:0]
		sc.done[i] = sc.done[i][:0]
		sc.errs[i] = nil
	}
	for _, le := range ledgers {
		d := writable[ledgerDir(le.ledger, len(writable))]
		sc.groups[d] = append(sc.groups[d], le)
	}
	var wg sync.WaitGroup
	for d := range s.dirs {
		if len(sc.groups[d]) == 0 {
			continue
		}
		wg.Go(func() {
			sc.done[d], sc.errs[d] = s.writeGroup(d, seg.seq, sc.groups[d], sc.done[d])
		})
	}
	wg.Wait()
	clear(sc.ledgers) // the segment's slices are reused once it is free
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

// writeGroup appends the entries of ledgers (sorted, as each ledger's
// entries are) to directory d's active entry log (rolling it at the size
// limit) and commits. It returns the committed entries appended to done. On
// error the writer is retired: its log is never appended to again.
func (s *Store) writeGroup(d int, seq uint64, ledgers []*ledgerEntries, done []writtenEntry) ([]writtenEntry, error) {
	var err error
	if w := s.writers[d]; w != nil && w.lf.rollReq.Load() {
		// Garbage collection wants this log: roll to a new one.
		w.retire()
		s.writers[d] = nil
	}
write:
	for _, le := range ledgers {
		for _, ce := range le.ents {
			if done, err = s.put(&s.writers[d], d, false, seq, le.ledger, ce.entry, ce.buf.Bytes(), done); err != nil {
				break write
			}
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
// deleted meanwhile are left out (their bytes are garbage). The records of
// a flush come in runs of one ledger and one log: the maps are consulted
// once per run.
func (s *Store) applyWritten(done []writtenEntry) {
	if len(done) == 0 {
		return
	}
	s.state.Lock()
	defer s.state.Unlock()
	for i := 0; i < len(done); {
		l, log := done[i].ledger, done[i].log
		j := i + 1
		for j < len(done) && done[j].ledger == l && done[j].log == log {
			j++
		}
		run := done[i:j]
		i = j
		lf := s.state.logs[log]
		if lf == nil {
			continue
		}
		if _, ok := lf.ledgers[l]; !ok {
			lf.ledgers[l] = 0
		}
		if s.meta.isDeleted(l) {
			continue
		}
		li := s.state.ledgers[l]
		if li == nil {
			li = newLedgerIndex()
			s.state.ledgers[l] = li
		}
		var added int64
		for k := range run {
			w := &run[k]
			s.replaceSlotLocked(l, li.set(w.entry, slot{log: w.log, off: w.off, size: w.size}))
			added += int64(w.size)
		}
		lf.live += added
		lf.ledgers[l] += added
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
	df       vfs.File // O_DIRECT handle the data is written through; nil: f
	align    int      // df's alignment; 1 without df
	off      int64    // offset of the next record
	bufOff   int64    // file offset of buf[0]; bufOff+n == off
	buf      []byte   // aligned
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
	w.align = 1
	fail := func(err error) (*logWriter, error) {
		if w.df != nil {
			w.df.Close()
		}
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
	if w.df, err = s.openDirect(lf.path); err != nil {
		return fail(err)
	}
	if w.df != nil {
		w.align = s.fs.Alignment()
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
	if !s.opts.KernelReadAhead {
		adviseRandom(w.f)
	}
	lf.fmu.Lock()
	lf.f = w.f // reads share the writer's handle
	lf.fmu.Unlock()
	return w, nil
}

// openDirect opens an O_DIRECT write handle on a new entry log, unless
// direct I/O is disabled or the filesystem refused it; nil then.
func (s *Store) openDirect(name string) (vfs.File, error) {
	if s.opts.DisableDirectIO || s.directRefused.Load() {
		return nil, nil
	}
	f, err := s.fs.OpenFile(name, vfs.OpenOptions{Write: true, Direct: true})
	if err == nil {
		if a := s.fs.Alignment(); a > maxDirectAlignment || writeBufferBytes%a != 0 {
			f.Close()
			s.directRefused.Store(true)
			return nil, nil
		}
		return f, nil
	}
	if !errors.Is(err, vfs.ErrDirectUnsupported) {
		return nil, fmt.Errorf("ledgerstore: open %s: %w", name, err)
	}
	if s.directRefused.CompareAndSwap(false, true) {
		s.log.Warn("O_DIRECT refused by the filesystem; writing entry logs through the page cache", "path", name, "err", err)
	}
	return nil, nil
}

func (s *Store) getWriteBuffer() []byte {
	if b, ok := s.writeBufs.Get().(*[]byte); ok {
		return *b
	}
	// Aligned for direct writes: any alignment a filesystem asks for up to
	// a page divides the buffer's address and size.
	return vfs.AlignedBuffer(writeBufferBytes, maxDirectAlignment)
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
// buffer; a payload larger than the buffer is written from where it is
// (through the buffer, in pieces, when writes are direct).
func (w *logWriter) append(seq uint64, l base.LedgerID, e base.EntryID, payload []byte) error {
	size := record.HeaderSize + len(payload)
	h := record.Header{FileNum: w.lf.id, Kind: record.KindEntry, Ledger: int64(l), Entry: int64(e)}
	if w.n+size > len(w.buf) {
		if err := w.flushBuf(false); err != nil {
			return err
		}
	}
	if w.n+size > len(w.buf) && w.df != nil {
		var hdr [record.HeaderSize]byte
		record.PutHeader(hdr[:], h, payload)
		w.n += copy(w.buf[w.n:], hdr[:])
		for p := payload; len(p) > 0; {
			k := copy(w.buf[w.n:], p)
			w.n += k
			p = p[k:]
			if w.n == len(w.buf) {
				if err := w.flushBuf(false); err != nil {
					return err
				}
			}
		}
	} else if size > len(w.buf) {
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

// flushBuf writes the buffer. Direct writes are whole aligned blocks: a
// partial last block stays in the buffer for the next write unless final,
// which pads it with zeros and moves the next record to the next block
// (the bytes between are no record: only the index points into a log).
func (w *logWriter) flushBuf(final bool) error {
	if w.n == 0 {
		return nil
	}
	if w.df == nil {
		if err := w.writeAt(w.buf[:w.n], w.bufOff); err != nil {
			return err
		}
		w.bufOff += int64(w.n)
		w.n = 0
		return nil
	}
	n := w.n / w.align * w.align
	if final {
		n = int(vfs.AlignUp(int64(w.n), w.align))
		clear(w.buf[w.n:n])
	} else if n == 0 {
		return nil
	}
	if err := w.writeAt(w.buf[:n], w.bufOff); err != nil {
		return err
	}
	if final {
		w.bufOff += int64(n)
		w.off = w.bufOff
		w.n = 0
		return nil
	}
	w.n = copy(w.buf, w.buf[n:w.n])
	w.bufOff += int64(n)
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
	f := w.f
	if w.df != nil {
		f = w.df
	}
	if _, err := f.WriteAt(b, off); err != nil {
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
	dataEnd := w.off
	if err := w.flushBuf(true); err != nil {
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
	for i := 0; i < len(w.part); {
		l := w.part[i].ledger
		j := i + 1
		for j < len(w.part) && w.part[j].ledger == l {
			j++
		}
		if !w.s.meta.isDeleted(l) {
			if len(kept) == i {
				kept = kept[:j] // nothing left out yet: no copy
			} else {
				kept = append(kept, w.part[i:j]...)
			}
			if _, ok := w.lf.ledgers[l]; !ok {
				w.lf.ledgers[l] = 0
			}
		}
		i = j
	}
	w.s.state.Unlock()
	w.part, w.partIdx = w.part[:0], 0
	if len(kept) == 0 {
		return nil, nil
	}
	payload := appendPartIndex(w.scratch[:0], dataEnd, kept)
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
	if w.df != nil {
		w.df.Close()
		w.df = nil
	}
	w.s.putWriteBuffer(w.buf)
	w.buf = nil
}
