package ledgerstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
)

// ReadEntry returns the payload of (ledger, entry): from the write cache,
// else the read cache, else its entry log. The caller owns one reference
// to the returned buffer and must Release it. Entries from the caches are
// not copied; an entry read from a log is read into a pooled buffer (its
// checksum, file number, ledger and entry checked) and returned in it.
//
// A read from a log starts an asynchronous read-ahead of the ledger's next
// entries in that log into the read cache; reads inside a read-ahead in
// flight wait for it rather than reading the same bytes twice.
//
// Errors: base.ErrNoLedger (unknown or deleted ledger), base.ErrNoEntry,
// and a *CorruptionError (wrapping base.ErrCorruption) naming the ledger,
// entry, file and offset of bytes that failed a check.
func (s *Store) ReadEntry(ctx context.Context, ledger base.LedgerID, entry base.EntryID) (*bufs.Buf, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	if s.meta.isDeleted(ledger) {
		return nil, fmt.Errorf("ledgerstore: read %d:%d: %w (deleted)", ledger, entry, base.ErrNoLedger)
	}
	k := entryKey{ledger, entry}
	if b := s.wc.get(k); b != nil {
		s.stats.readsWriteCache.Add(1)
		return b, nil
	}
	for waited := false; ; waited = true {
		if b := s.rc.get(k); b != nil {
			s.stats.readsReadCache.Add(1)
			s.ra.onRead(s, ledger, entry, false)
			return b, nil
		}
		op := s.ra.inflight(ledger, entry)
		if op == nil || waited {
			break
		}
		select {
		case <-op.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("ledgerstore: read %d:%d: %w", ledger, entry, ctx.Err())
		}
	}
	b, err := s.readFromLog(ledger, entry)
	if err != nil {
		return nil, err
	}
	s.stats.readsLog.Add(1)
	s.ra.onRead(s, ledger, entry, true)
	return b, nil
}

// lookup finds (ledger, entry) in the index and takes a reference to its
// log.
func (s *Store) lookup(ledger base.LedgerID, entry base.EntryID) (slot, *logFile, error) {
	s.state.RLock()
	li := s.state.ledgers[ledger]
	var sl slot
	var ok bool
	if li != nil {
		sl, ok = li.get(entry)
	}
	var lf *logFile
	if ok {
		if lf = s.state.logs[sl.log]; lf != nil {
			lf.refs.Add(1)
		}
	}
	s.state.RUnlock()
	if !ok {
		return slot{}, nil, s.notFound(ledger, entry)
	}
	if lf == nil {
		return slot{}, nil, ErrClosed // the log table is emptied only by Close
	}
	return sl, lf, nil
}

func (s *Store) notFound(ledger base.LedgerID, entry base.EntryID) error {
	s.meta.mu.RLock()
	_, exists := s.meta.mu.ledgers[ledger]
	s.meta.mu.RUnlock()
	if !exists {
		return fmt.Errorf("ledgerstore: read %d:%d: %w", ledger, entry, base.ErrNoLedger)
	}
	return fmt.Errorf("ledgerstore: read %d:%d: %w", ledger, entry, base.ErrNoEntry)
}

// readFromLog reads one entry from its log, without touching the caches.
func (s *Store) readFromLog(ledger base.LedgerID, entry base.EntryID) (*bufs.Buf, error) {
	sl, lf, err := s.lookup(ledger, entry)
	if err != nil {
		return nil, err
	}
	defer lf.release()
	off := int64(sl.off)
	sp, err := s.readSpan(lf, off, int(sl.size))
	defer sp.done()
	rec := sp.data
	if sp.n < len(rec) {
		if err == nil || errors.Is(err, io.EOF) {
			s.stats.corruptions.Add(1)
			return nil, &CorruptionError{Ledger: ledger, Entry: entry, File: lf.path, Offset: off,
				Reason: fmt.Sprintf("file ends %d bytes into a %d-byte record", sp.n, len(rec))}
		}
		return nil, fmt.Errorf("ledgerstore: read %d:%d: %s at %d: %w", ledger, entry, lf.path, off, err)
	}
	if err := checkEntryRecord(rec, lf.id, lf.path, off, ledger, entry); err != nil {
		s.stats.corruptions.Add(1)
		return nil, err
	}
	b := s.pool.Get(len(rec) - record.HeaderSize)
	copy(b.Bytes(), rec[record.HeaderSize:])
	return b, nil
}

// ReadRange returns up to maxCount consecutive entries of ledger starting
// at first, stopping before the entry that would take the payload bytes
// past maxBytes (the first entry is always returned) and at the first entry
// that is missing. The caller releases every returned buffer. Entries found
// in a log next to each other are read with one read. Errors are as for
// ReadEntry; the error is returned only if not even first could be read.
func (s *Store) ReadRange(ctx context.Context, ledger base.LedgerID, first base.EntryID, maxCount int, maxBytes int64) ([]*bufs.Buf, error) {
	if maxCount <= 0 {
		return nil, nil
	}
	if s.isClosed() {
		return nil, ErrClosed
	}
	if s.meta.isDeleted(ledger) {
		return nil, fmt.Errorf("ledgerstore: read %d:%d: %w (deleted)", ledger, first, base.ErrNoLedger)
	}
	out := make([]*bufs.Buf, 0, min(maxCount, 256))
	var bytes int64
	fromLog := false
	// Entries below the write cache's lowest entry of the ledger are not
	// in it: a catch-up reader does not touch the adders' lock per entry.
	floor := s.wc.floor(ledger)
	e := first
	for len(out) < maxCount {
		if e >= floor {
			if b := s.wc.get(entryKey{ledger, e}); b != nil {
				s.stats.readsWriteCache.Add(1)
				if len(out) > 0 && bytes+int64(b.Len()) > maxBytes {
					b.Release()
					break
				}
				out = append(out, b)
				bytes += int64(b.Len())
				e++
				continue
			}
		}
		var n int
		out, n, bytes = s.rc.getRun(ledger, e, maxCount-len(out), maxBytes, bytes, out)
		if n > 0 {
			s.stats.readsReadCache.Add(int64(n))
			e += base.EntryID(n)
			continue
		}
		if op := s.ra.inflight(ledger, e); op != nil {
			select {
			case <-op.done:
			case <-ctx.Done():
				releaseAll(out)
				return nil, fmt.Errorf("ledgerstore: read %d:%d: %w", ledger, e, ctx.Err())
			}
			if out, n, bytes = s.rc.getRun(ledger, e, maxCount-len(out), maxBytes, bytes, out); n > 0 {
				s.stats.readsReadCache.Add(int64(n))
				e += base.EntryID(n)
				continue
			}
		}
		if len(out) > 0 && bytes >= maxBytes {
			break
		}
		var err error
		out, n, err = s.readRun(ledger, e, maxCount-len(out), maxBytes-bytes, len(out) == 0, out)
		if err != nil {
			if len(out) == 0 {
				return nil, err
			}
			break // return what we have; the next read reports the error
		}
		if n == 0 {
			break
		}
		fromLog = true
		for _, b := range out[len(out)-n:] {
			bytes += int64(b.Len())
		}
		e += base.EntryID(n)
	}
	if len(out) > 0 {
		s.ra.onRead(s, ledger, e-1, fromLog)
	}
	return out, nil
}

// readIOBytes bounds one read system call on an entry log while adds
// arrive; larger reads are made of several, one after the other. With the
// kernel's read-ahead off for entry logs (Options.KernelReadAhead), that
// bounds the reads a reader has queued at the device, so that a journal
// write on the same device waits behind little (Linux's deadline scheduler
// serves reads first). When no add arrived for addsQuietFor, reads go in
// pieces of idleReadIOBytes: on this project's VM, BenchmarkCatchUpRead
// (64 KiB entries, direct reads) ran at 1305-1327 MB/s with 1 MiB pieces
// against 775-779 with 256 KiB ones, at about half the CPU per byte, but
// with 1 MiB pieces a reader paced at 200 MB/s raised the p99 of adds at
// 20k/s 1.8x (BenchmarkAddLatencyCatchUp), against about 1.1x.
const (
	readIOBytes     = 256 << 10
	idleReadIOBytes = 1 << 20
	addsQuietFor    = 100 * time.Millisecond
)

// readPieceBytes is the size of the read system calls to make now
// (nanoseconds on any monotonic clock): readIOBytes if an add arrived in
// the last addsQuietFor, else idleReadIOBytes. It samples the add counter,
// so that the add path pays nothing for it.
func (s *Store) readPieceBytes(now int64) int {
	adds := s.stats.entriesAdded.Load()
	if adds != s.readIO.adds.Load() {
		s.readIO.adds.Store(adds)
		s.readIO.changed.Store(now)
		return readIOBytes
	}
	if now-s.readIO.changed.Load() < int64(addsQuietFor) {
		return readIOBytes
	}
	return idleReadIOBytes
}

// readLog is ReadAt in pieces of at most piece bytes.
func readLog(f io.ReaderAt, b []byte, off int64, piece int) (int, error) {
	n := 0
	for n < len(b) {
		k, err := f.ReadAt(b[n:min(len(b), n+piece)], off+int64(n))
		n += k
		if err != nil {
			return n, err
		}
		if k == 0 {
			return n, io.ErrUnexpectedEOF
		}
	}
	return n, nil
}

// readSpanBytes bounds the buffer a batch read reads a stretch of records
// into (in readIOBytes pieces) before copying them out: a pooled size,
// whatever the caller's byte limit (a fresh multi-megabyte buffer per batch
// kept the garbage collector busy under a catch-up reader).
const readSpanBytes = 1 << 20

func releaseAll(bs []*bufs.Buf) {
	for _, b := range bs {
		b.Release()
	}
}

// readRun reads entries first, first+1, ... that lie back to back in one
// log with one read, at most maxCount of them and maxBytes of payload
// (the first regardless when always is set), and appends them to out.
func (s *Store) readRun(ledger base.LedgerID, first base.EntryID, maxCount int, maxBytes int64, always bool, out []*bufs.Buf) ([]*bufs.Buf, int, error) {
	s.state.RLock()
	li := s.state.ledgers[ledger]
	var run []slot
	if li != nil {
		var payload int64
		e := first
		li.from(first, func(x base.EntryID, sl slot) bool {
			if x != e || len(run) >= maxCount {
				return false
			}
			if len(run) > 0 {
				prev := run[len(run)-1]
				if sl.log != prev.log || sl.off != prev.off+prev.size {
					return false
				}
			}
			p := int64(sl.size - record.HeaderSize)
			if payload+p > maxBytes && (len(run) > 0 || !always) {
				return false
			}
			payload += p
			run = append(run, sl)
			e++
			return true
		})
	}
	if len(run) == 0 {
		s.state.RUnlock()
		if li != nil {
			if _, ok := li.get(first); ok {
				return out, 0, nil // present, but over maxBytes
			}
		}
		return out, 0, s.notFound(ledger, first)
	}
	lf := s.state.logs[run[0].log]
	if lf == nil {
		s.state.RUnlock()
		return out, 0, ErrClosed
	}
	lf.refs.Add(1)
	s.state.RUnlock()
	defer lf.release()
	got := 0
	// Read the run in spans of at most readSpanBytes (one record at
	// least): pooled memory, whatever maxBytes asked for.
	for i := 0; i < len(run); {
		start := int64(run[i].off)
		j := i + 1
		for j < len(run) && int64(run[j].off+run[j].size)-start <= readSpanBytes {
			j++
		}
		last := run[j-1]
		sp, err := s.readSpan(lf, start, int(int64(last.off+last.size)-start))
		for k := i; k < j; k++ {
			sl := run[k]
			rel := int64(sl.off) - start
			if rel+int64(sl.size) > int64(sp.n) {
				sp.done()
				if got == 0 {
					if err == nil || errors.Is(err, io.EOF) {
						s.stats.corruptions.Add(1)
						return out, 0, &CorruptionError{Ledger: ledger, Entry: first + base.EntryID(k), File: lf.path,
							Offset: int64(sl.off), Reason: "file ends inside the record"}
					}
					return out, 0, fmt.Errorf("ledgerstore: read %d:%d: %s at %d: %w", ledger, first, lf.path, start, err)
				}
				s.stats.readsLog.Add(int64(got))
				return out, got, nil
			}
			rec := sp.data[rel : rel+int64(sl.size)]
			if cerr := checkEntryRecord(rec, lf.id, lf.path, int64(sl.off), ledger, first+base.EntryID(k)); cerr != nil {
				s.stats.corruptions.Add(1)
				sp.done()
				if got == 0 {
					return out, 0, cerr
				}
				s.stats.readsLog.Add(int64(got))
				return out, got, nil
			}
			b := s.pool.Get(len(rec) - record.HeaderSize)
			copy(b.Bytes(), rec[record.HeaderSize:])
			out = append(out, b)
			got++
		}
		sp.done()
		i = j
	}
	s.stats.readsLog.Add(int64(got))
	return out, got, nil
}

// LastEntry is the highest entry of ledger the store holds (in the write
// cache or the logs), InvalidEntry when it holds none. It fails with
// base.ErrNoLedger for an unknown or deleted ledger.
func (s *Store) LastEntry(ledger base.LedgerID) (base.EntryID, error) {
	s.meta.mu.RLock()
	_, exists := s.meta.mu.ledgers[ledger]
	s.meta.mu.RUnlock()
	if !exists {
		return base.InvalidEntry, fmt.Errorf("ledgerstore: ledger %d: %w", ledger, base.ErrNoLedger)
	}
	last, _ := s.wc.lastEntry(ledger)
	s.state.RLock()
	if li := s.state.ledgers[ledger]; li != nil && li.last > last {
		last = li.last
	}
	s.state.RUnlock()
	return last, nil
}

// readCache is a FIFO ring of segments (as BookKeeper's): inserts go to the
// newest; when it is full the oldest is emptied and becomes the newest.
// Each segment has its own index, emptied all at once when the segment is
// recycled: one map for all segments, with an entry deleted per eviction,
// filled up with deleted slots that every lookup had to probe past (map
// probing was the catch-up reader's top cost).
type readCache struct {
	segBytes int64
	mu       struct {
		sync.Mutex
		segs []rcSegment
		cur  int
	}
}

type rcSegment struct {
	index map[entryKey]*bufs.Buf
	bytes int64
}

const readCacheSegments = 4

func (rc *readCache) init(maxBytes int64) {
	if maxBytes <= 0 {
		return
	}
	rc.segBytes = maxBytes / readCacheSegments
	rc.mu.segs = make([]rcSegment, readCacheSegments)
	for i := range rc.mu.segs {
		rc.mu.segs[i].index = map[entryKey]*bufs.Buf{}
	}
}

func (rc *readCache) enabled() bool { return rc.segBytes > 0 }

// lookupLocked finds k, newest segment first.
func (rc *readCache) lookupLocked(k entryKey) *bufs.Buf {
	n := len(rc.mu.segs)
	for i := range n {
		if b, ok := rc.mu.segs[(rc.mu.cur-i+n)%n].index[k]; ok {
			return b
		}
	}
	return nil
}

func (rc *readCache) get(k entryKey) *bufs.Buf {
	if !rc.enabled() {
		return nil
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if b := rc.lookupLocked(k); b != nil {
		return b.Retain()
	}
	return nil
}

// getRun appends references to the consecutive entries of ledger l from e
// that are cached, at most maxCount of them and, past the first, maxBytes
// of payload in all (bytes counts what out already holds). It returns the
// extended out, the number added and the new byte count.
func (rc *readCache) getRun(l base.LedgerID, e base.EntryID, maxCount int, maxBytes, bytes int64, out []*bufs.Buf) ([]*bufs.Buf, int, int64) {
	if !rc.enabled() {
		return out, 0, bytes
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	n := 0
	for ; n < maxCount; n++ {
		b := rc.lookupLocked(entryKey{l, e + base.EntryID(n)})
		if b == nil || (len(out) > 0 && bytes+int64(b.Len()) > maxBytes) {
			break
		}
		out = append(out, b.Retain())
		bytes += int64(b.Len())
	}
	return out, n, bytes
}

func (rc *readCache) has(k entryKey) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.lookupLocked(k) != nil
}

// put takes over the reference b.
func (rc *readCache) put(k entryKey, b *bufs.Buf) {
	c := charge(b)
	if !rc.enabled() || c > rc.segBytes {
		b.Release()
		return
	}
	var evicted []*bufs.Buf
	rc.mu.Lock()
	seg := &rc.mu.segs[rc.mu.cur]
	if seg.bytes+c > rc.segBytes {
		rc.mu.cur = (rc.mu.cur + 1) % len(rc.mu.segs)
		seg = &rc.mu.segs[rc.mu.cur]
		evicted = make([]*bufs.Buf, 0, len(seg.index))
		for _, old := range seg.index {
			evicted = append(evicted, old)
		}
		clear(seg.index)
		seg.bytes = 0
	}
	// A copy of k in an older segment stays until that segment goes
	// (lookups find the newest first): no probe of every segment per put.
	if old, ok := seg.index[k]; ok {
		seg.bytes -= charge(old)
		evicted = append(evicted, old)
	}
	seg.index[k] = b
	seg.bytes += c
	rc.mu.Unlock()
	for _, b := range evicted {
		b.Release()
	}
}

func (rc *readCache) usage() int64 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var n int64
	for i := range rc.mu.segs {
		n += rc.mu.segs[i].bytes
	}
	return n
}

func (rc *readCache) releaseAll() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for i := range rc.mu.segs {
		for _, b := range rc.mu.segs[i].index {
			b.Release()
		}
		clear(rc.mu.segs[i].index)
		rc.mu.segs[i].bytes = 0
	}
}

// readAhead tracks sequential readers per ledger and runs bounded,
// asynchronous read-aheads into the read cache.
type readAhead struct {
	sem chan struct{}
	wg  sync.WaitGroup
	mu  struct {
		sync.Mutex
		ledgers map[base.LedgerID]*raState
		closed  bool
	}
}

type raState struct {
	lastRead base.EntryID
	next     base.EntryID // read-aheads have claimed the entries below this
	trigger  base.EntryID // a cache hit at or past this starts the next read-ahead
	ops      [2]*raOp     // in flight: the current window and the one after it
}

type raOp struct {
	from, to base.EntryID // claims [from, to)
	done     chan struct{}
}

// maxTrackedLedgers bounds the read-ahead state; beyond it idle states are
// dropped.
const maxTrackedLedgers = 4096

func (ra *readAhead) init(concurrency int) {
	ra.sem = make(chan struct{}, max(concurrency, 1))
	ra.mu.ledgers = map[base.LedgerID]*raState{}
}

func (ra *readAhead) inflight(l base.LedgerID, e base.EntryID) *raOp {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if st := ra.mu.ledgers[l]; st != nil {
		for _, op := range st.ops {
			if op != nil && e >= op.from && e < op.to {
				return op
			}
		}
	}
	return nil
}

// onRead records a read of (l, e) and starts a read-ahead when the reader
// left the read cache (fromLog), or, reading sequentially, crossed the
// middle of the last window claimed. Windows are claimed when they start,
// so a second one runs while the reader consumes the first, and a reader
// that catches up with a window in flight waits for it instead of reading
// the same bytes itself.
func (ra *readAhead) onRead(s *Store, l base.LedgerID, e base.EntryID, fromLog bool) {
	batch := base.EntryID(s.opts.ReadAheadBatchSize)
	if !s.rc.enabled() || batch <= 0 || s.opts.ReadAheadBatchBytes <= 0 {
		return
	}
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if ra.mu.closed {
		return
	}
	st := ra.mu.ledgers[l]
	if st == nil {
		if len(ra.mu.ledgers) >= maxTrackedLedgers {
			for k, v := range ra.mu.ledgers {
				if v.ops[0] == nil && v.ops[1] == nil {
					delete(ra.mu.ledgers, k)
				}
				if len(ra.mu.ledgers) < maxTrackedLedgers/2 {
					break
				}
			}
		}
		st = &raState{lastRead: base.InvalidEntry - 1}
		ra.mu.ledgers[l] = st
	}
	sequential := e == st.lastRead+1
	st.lastRead = e
	var from base.EntryID
	switch {
	case fromLog:
		from = e + 1
	case sequential && e >= st.trigger && e < st.next:
		from = st.next
	default:
		return
	}
	free := -1
	for i, op := range st.ops {
		if op == nil {
			free = i
		} else if from >= op.from && from < op.to {
			return // already claimed
		}
	}
	if free < 0 {
		return
	}
	select {
	case ra.sem <- struct{}{}:
	default:
		return // enough read-aheads in flight: skip rather than queue
	}
	op := &raOp{from: from, to: from + batch, done: make(chan struct{})}
	st.ops[free] = op
	st.next = op.to
	st.trigger = from + batch/2
	ra.wg.Add(1)
	go s.runReadAhead(l, st, op)
}

func (ra *readAhead) close() {
	ra.mu.Lock()
	ra.mu.closed = true
	ra.mu.Unlock()
	ra.wg.Wait()
}

// runReadAhead reads the ledger's entries from op.from on that lie in the
// same log as op.from, with one read per back-to-back stretch, into the
// read cache.
func (s *Store) runReadAhead(l base.LedgerID, st *raState, op *raOp) {
	defer func() {
		s.ra.mu.Lock()
		for i := range st.ops {
			if st.ops[i] == op {
				st.ops[i] = nil
			}
		}
		s.ra.mu.Unlock()
		close(op.done)
		<-s.ra.sem
		s.ra.wg.Done()
	}()
	type item struct {
		e  base.EntryID
		sl slot
	}
	var items []item
	var bytes int64
	s.state.RLock()
	li := s.state.ledgers[l]
	var lf *logFile
	if li != nil {
		li.from(op.from, func(e base.EntryID, sl slot) bool {
			if e >= op.to || (len(items) > 0 && sl.log != items[0].sl.log) ||
				bytes+int64(sl.size) > s.opts.ReadAheadBatchBytes {
				return false
			}
			items = append(items, item{e, sl})
			bytes += int64(sl.size)
			return true
		})
		if len(items) > 0 {
			if lf = s.state.logs[items[0].sl.log]; lf != nil {
				lf.refs.Add(1)
			}
		}
	}
	s.state.RUnlock()
	if lf == nil {
		return
	}
	defer lf.release()
	s.stats.readAheads.Add(1)
	for i := 0; i < len(items); {
		// One read per stretch of records that lie back to back.
		j := i + 1
		for j < len(items) && items[j].sl.off == items[j-1].sl.off+items[j-1].sl.size {
			j++
		}
		if s.rc.has(entryKey{l, items[i].e}) && j == i+1 {
			i = j
			continue
		}
		start := int64(items[i].sl.off)
		sp, _ := s.readSpan(lf, start, int(int64(items[j-1].sl.off+items[j-1].sl.size)-start))
		for _, it := range items[i:j] {
			rel := int64(it.sl.off) - start
			if rel+int64(it.sl.size) > int64(sp.n) {
				break
			}
			rec := sp.data[rel : rel+int64(it.sl.size)]
			if checkEntryRecord(rec, lf.id, lf.path, int64(it.sl.off), l, it.e) != nil {
				break // the reader's own read reports it
			}
			b := s.pool.Get(len(rec) - record.HeaderSize)
			copy(b.Bytes(), rec[record.HeaderSize:])
			s.rc.put(entryKey{l, it.e}, b)
			s.stats.readAheadEntries.Add(1)
		}
		sp.done()
		i = j
	}
}

// readScratchBytes is the size of the pooled aligned buffers direct reads
// go through: a span of readSpanBytes plus a block of slack at each end.
const readScratchBytes = readSpanBytes + 2*maxDirectAlignment

// span is length bytes of an entry log read from off: data[:n] are the
// bytes read (n < length at the end of the file or on error). done gives
// back its memory: the pooled aligned buffer of a direct read, or the
// pooled buffer of a buffered one.
type span struct {
	data    []byte
	n       int
	scratch *[]byte   // from Store.readBufs, or nil
	buf     *bufs.Buf // buffered reads, or nil
	s       *Store
}

func (sp span) done() {
	if sp.scratch != nil {
		sp.s.readBufs.Put(sp.scratch)
	}
	if sp.buf != nil {
		sp.buf.Release()
	}
}

// readSpan reads length bytes of lf at off: with O_DIRECT into an aligned
// buffer covering the blocks around them, or (BufferedReads, or where the
// filesystem refuses O_DIRECT) through the page cache into a pooled
// buffer. It allocates nothing once the pools are warm (but for a span
// larger than readScratchBytes).
func (s *Store) readSpan(lf *logFile, off int64, length int) (span, error) {
	if df := s.directReader(lf); df != nil {
		a := int64(s.fs.Alignment())
		start := off / a * a
		end := vfs.AlignUp(off+int64(length), int(a))
		sp := span{s: s}
		var buf []byte
		if end-start <= readScratchBytes {
			sp.scratch, _ = s.readBufs.Get().(*[]byte)
			if sp.scratch == nil {
				b := vfs.AlignedBuffer(readScratchBytes, maxDirectAlignment)
				sp.scratch = &b
			}
			buf = *sp.scratch
		} else {
			buf = vfs.AlignedBuffer(int(end-start), maxDirectAlignment)
		}
		n, err := readLog(df, buf[:end-start], start, s.readPieceBytes(s.clock()))
		sp.data = buf[off-start : off-start+int64(length)]
		sp.n = max(0, min(length, n-int(off-start)))
		return sp, err
	}
	f, err := lf.file(s)
	if err != nil {
		return span{}, err
	}
	b := s.pool.Get(length)
	n, err := readLog(f, b.Bytes(), off, s.readPieceBytes(s.clock()))
	return span{data: b.Bytes(), n: n, buf: b, s: s}, err
}

// directReader is lf's O_DIRECT read handle, or nil with BufferedReads or
// where the filesystem refuses O_DIRECT.
func (s *Store) directReader(lf *logFile) vfs.File {
	if s.opts.BufferedReads || s.directRefused.Load() || s.fs.Alignment() > maxDirectAlignment {
		return nil
	}
	lf.fmu.Lock()
	defer lf.fmu.Unlock()
	if lf.df == nil {
		f, err := s.fs.OpenFile(lf.path, vfs.OpenOptions{Direct: true})
		if err != nil {
			if errors.Is(err, vfs.ErrDirectUnsupported) {
				s.directRefused.Store(true)
			}
			return nil
		}
		lf.df = f
	}
	return lf.df
}
