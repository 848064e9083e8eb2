package journal

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
)

// dirLog is one journal directory: a ring of aligned memory that appenders
// copy records into, a writer goroutine that writes whole blocks of it to the
// current segment, a syncer goroutine that fdatasyncs and completes, and a
// preparer goroutine that creates the next segment ahead of need.
//
// Offsets called "logical" count bytes of the directory's record stream since
// Open: logical offset x lives at ring[x % ringSize], and in the segment
// whose stream starts at segStart, at file offset x - segStart + align.
//
// Lock order: dirLog.mu, then (inside MemFS and friends) whatever the FS
// takes. mu is never held across I/O or a callback.
type dirLog struct {
	j         *Journal
	idx       int
	dir       string
	fs        vfs.FS
	align     int64
	maxSeg    int64
	prealloc  int64
	threshold int64 // <= 0: no early writes while a sync runs
	maxWait   time.Duration
	qmax      int64
	maxRecord int64

	ring     []byte
	ringSize int64
	zeros    []byte // source of padding payloads

	mu struct {
		sync.Mutex
		head       int64  // logical end of reservations
		file       uint32 // segment receiving new reservations
		segStart   int64  // logical start of that segment's records
		hasRecords bool   // something was reserved in that segment
		epoch      uint64 // flipped by the writer at every seal
		waiters    waiterQueue
		switches   []fileSwitch // segment changes the writer has not reached
		closing    bool
		err        error
		// The writer's segment, for the syncer and Mark; changed only at a
		// switch, when everything before it is durable.
		wfile     vfs.File
		wnum      uint32
		wsegStart int64
		// Counters updated under mu by appenders.
		records, payloadBytes, paddingBytes uint64
	}
	space   *sync.Cond // on mu: appenders waiting for queue space
	blocked atomic.Int32

	reserved atomic.Int64 // mirror of mu.head
	written  atomic.Int64 // logical end of the bytes written to segments
	durable  atomic.Int64 // logical end of the bytes covered by an fdatasync
	syncBusy atomic.Bool  // the syncer is inside fdatasync
	failed   atomic.Bool
	closingF atomic.Bool
	wDone    atomic.Bool // the writer has exited

	// copying[e&1] counts appenders of epoch e still copying into the ring.
	copying   [2]paddedInt64
	drainWait atomic.Bool
	drainCh   chan struct{}

	wSleep atomic.Int32 // writerAwake or why the writer sleeps
	wKick  chan struct{}
	sSleep atomic.Bool
	sKick  chan struct{}

	// prepCh carries work for the preparer in order: creating the next
	// segment, extending a preallocation, closing a segment the writer
	// left (after any extension of it, so the two never race).
	prepCh   chan prepMsg
	prepDone chan *segment
	prepWG   sync.WaitGroup
	wg       sync.WaitGroup

	// Writer-owned state.
	wfile       vfs.File
	wnum        uint32
	wsegStart   int64
	wprealloc   int64 // file offset up to which the writer's segment is preallocated
	fill        zeroFill
	lock        vfs.File // the directory's LOCK file, held while open
	wroteBytes  atomic.Uint64
	writes      atomic.Uint64
	segments    atomic.Uint64
	syncs       atomic.Uint64
	syncNanos   atomic.Int64
	syncHist    [len(Histogram{})]atomic.Uint64
	syncFailed  bool // syncer-owned
	recoveredMu sync.Mutex
	recovered   []segInfo // segments found at Open, for Replay
	recycleMu   sync.Mutex
	recycle     []segInfo // freed segment files kept for reuse
	recycled    atomic.Uint64
	firstNum    uint32 // the segment created by this Open
}

type paddedInt64 struct {
	atomic.Int64
	_ [56]byte
}

// Writer sleep states.
const (
	writerAwake   = 0
	writerIdle    = 1 // wake on any new record
	writerWaiting = 2 // a sync is running: wake when it ends or the threshold is reached
	writerBarrier = 3 // waiting for the old segment to become durable
)

type fileSwitch struct {
	at  int64 // logical offset where segment num starts
	num uint32
}

type prepMsg struct {
	create uint32   // create this segment, when not 0
	f      vfs.File // extend (n > 0) or close (n == 0) this file
	off, n int64
}

type waiter struct {
	cb  Callback
	end int64 // logical end of the record
	pos Pos
}

// waiterQueue is a FIFO ring of waiters that grows by doubling and is reused,
// so a steady state allocates nothing.
type waiterQueue struct {
	buf  []waiter
	head int
	n    int
}

func (q *waiterQueue) push(w waiter) {
	if q.n == len(q.buf) {
		nb := make([]waiter, max(2*len(q.buf), 64))
		for i := 0; i < q.n; i++ {
			nb[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = w
	q.n++
}

// popUpTo moves the waiters whose record ends at or before end to dst.
func (q *waiterQueue) popUpTo(end int64, dst []waiter) []waiter {
	for q.n > 0 {
		w := &q.buf[q.head]
		if w.end > end {
			break
		}
		dst = append(dst, *w)
		*w = waiter{}
		q.head = (q.head + 1) % len(q.buf)
		q.n--
	}
	return dst
}

func (d *dirLog) fileOff(logical, segStart int64) int64 { return logical - segStart + d.align }

// padLen is the size of the padding record that starts at logical offset x
// and ends on the next block boundary with room for its header.
func (d *dirLog) padLen(x int64) int64 {
	return vfs.AlignUp(x+record.HeaderSize, int(d.align)) - x
}

// durableMarkerLocked is the file offset, in the segment receiving
// reservations, below which everything is known durable.
func (d *dirLog) durableMarkerLocked() int64 {
	dur := d.durable.Load()
	if dur <= d.mu.segStart {
		return d.align // the header block is synced when the segment is made
	}
	return d.fileOff(dur, d.mu.segStart)
}

// append reserves room for a record, copies it into the ring and queues its
// callback. wait says whether to block for queue space.
func (d *dirLog) append(kind record.Kind, ledger, entry int64, payload []byte, cb Callback, wait bool) error {
	n := int64(record.HeaderSize + len(payload))
	if n > d.maxRecord {
		return fmt.Errorf("%w: %d payload bytes in dir %s (at most %d)", ErrTooLarge, len(payload), d.dir, d.maxRecord-record.HeaderSize)
	}
	d.mu.Lock()
	var rotPad int64
	for {
		if d.mu.err != nil {
			err := d.mu.err
			d.mu.Unlock()
			return err
		}
		if d.mu.closing {
			d.mu.Unlock()
			return ErrClosed
		}
		rotPad = 0
		if d.mu.hasRecords && d.fileOff(d.mu.head, d.mu.segStart)+n > d.maxSeg {
			rotPad = d.padLen(d.mu.head)
		}
		if d.mu.head+rotPad+n-d.durable.Load() <= d.qmax {
			break
		}
		if !wait {
			d.mu.Unlock()
			return ErrBusy
		}
		d.blocked.Add(1)
		d.space.Wait()
		d.blocked.Add(-1)
	}
	var padAt, marker int64
	var padFile uint32
	if rotPad > 0 {
		// Close the segment with a padding record to a block boundary; the
		// next segment's records start at that logical offset.
		padAt, padFile, marker = d.mu.head, d.mu.file, d.durableMarkerLocked()
		d.mu.head += rotPad
		d.mu.paddingBytes += uint64(rotPad)
		d.mu.file++
		d.mu.segStart = d.mu.head
		d.mu.switches = append(d.mu.switches, fileSwitch{at: d.mu.head, num: d.mu.file})
	}
	start := d.mu.head
	d.mu.head += n
	d.mu.hasRecords = true
	d.mu.waiters.push(waiter{cb: cb, end: d.mu.head, pos: Pos{Dir: d.idx, File: d.mu.file, Offset: d.fileOff(start, d.mu.segStart)}})
	h := record.Header{FileNum: d.mu.file, Kind: kind, Ledger: ledger, Entry: entry}
	cnt := &d.copying[d.mu.epoch&1]
	cnt.Add(1)
	d.reserved.Store(d.mu.head)
	d.mu.records++
	d.mu.payloadBytes += uint64(len(payload))
	d.mu.Unlock()

	if rotPad > 0 {
		d.putPadding(padAt, rotPad, padFile, marker, flagSegmentEnd)
	}
	d.put(start, h, payload)
	if cnt.Add(-1) == 0 && d.drainWait.Load() {
		select {
		case d.drainCh <- struct{}{}:
		default:
		}
	}
	d.kickWriter()
	return nil
}

// put copies a record into the ring at logical offset start: the payload's
// only copy on its way to disk.
func (d *dirLog) put(start int64, h record.Header, payload []byte) {
	n := int64(record.HeaderSize + len(payload))
	ro := start % d.ringSize
	if ro+n <= d.ringSize {
		dst := d.ring[ro : ro+n]
		copy(dst[record.HeaderSize:], payload)
		record.PutHeader(dst[:record.HeaderSize], h, dst[record.HeaderSize:])
		return
	}
	// The record wraps around the end of the ring.
	var hdr [record.HeaderSize]byte
	record.PutHeader(hdr[:], h, payload)
	d.copyIn(ro, hdr[:])
	d.copyIn((ro+record.HeaderSize)%d.ringSize, payload)
}

// copyIn copies b into the ring at ring offset ro, wrapping.
func (d *dirLog) copyIn(ro int64, b []byte) {
	k := copy(d.ring[ro:], b)
	if k < len(b) {
		copy(d.ring, b[k:])
	}
}

// putPadding writes a padding record of n bytes at logical offset at.
// marker, in its Ledger field, is the durability marker (package comment);
// flags is flagSegmentEnd for the padding that ends a segment.
func (d *dirLog) putPadding(at, n int64, file uint32, marker int64, flags uint8) {
	h := record.Header{FileNum: file, Kind: record.KindPadding, Flags: flags, Ledger: marker}
	ro := at % d.ringSize
	if ro+n <= d.ringSize {
		dst := d.ring[ro : ro+n]
		clear(dst[record.HeaderSize:])
		record.PutHeader(dst[:record.HeaderSize], h, dst[record.HeaderSize:])
		return
	}
	payload := d.zeros[:n-record.HeaderSize]
	var hdr [record.HeaderSize]byte
	record.PutHeader(hdr[:], h, payload)
	d.copyIn(ro, hdr[:])
	d.copyIn((ro+record.HeaderSize)%d.ringSize, payload)
}

// kickWriter wakes the writer if it sleeps waiting for what just happened.
func (d *dirLog) kickWriter() {
	s := d.wSleep.Load()
	switch s {
	case writerAwake, writerBarrier:
		return
	case writerWaiting:
		if !d.overThreshold() {
			return
		}
	}
	if d.wSleep.CompareAndSwap(s, writerAwake) {
		d.wKick <- struct{}{}
	}
}

// overThreshold reports whether the whole blocks queued and not yet written
// reach BufferedWritesThreshold.
func (d *dirLog) overThreshold() bool {
	return d.threshold > 0 && d.reserved.Load()&^(d.align-1)-d.written.Load() >= d.threshold
}

// wakeWriter wakes the writer whatever it waits for.
func (d *dirLog) wakeWriter() {
	for {
		s := d.wSleep.Load()
		if s == writerAwake {
			return
		}
		if d.wSleep.CompareAndSwap(s, writerAwake) {
			d.wKick <- struct{}{}
			return
		}
	}
}

func (d *dirLog) wakeSyncer() {
	if d.sSleep.Load() && d.sSleep.CompareAndSwap(true, false) {
		d.sKick <- struct{}{}
	}
}

// writerSleep parks the writer in state s until woken, or until the timer
// fires when timer is not nil. ready is checked after announcing the sleep,
// so a wake-up between the caller's check and the sleep is not lost.
func (d *dirLog) writerSleep(s int32, ready func() bool, timer *time.Timer) {
	d.wSleep.Store(s)
	if ready() {
		if !d.wSleep.CompareAndSwap(s, writerAwake) {
			<-d.wKick
		}
		return
	}
	if timer == nil {
		<-d.wKick
		return
	}
	select {
	case <-d.wKick:
	case <-timer.C:
		if !d.wSleep.CompareAndSwap(s, writerAwake) {
			<-d.wKick
		}
	}
}

func (d *dirLog) fail(err error) {
	d.mu.Lock()
	if d.mu.err == nil {
		d.mu.err = err
		d.failed.Store(true)
		d.j.log.Error("journal: directory failed; its adds fail until the journal is reopened", "dir", d.dir, "err", err)
	}
	d.space.Broadcast()
	d.mu.Unlock()
	d.wakeWriter()
	d.wakeSyncer()
}

func (d *dirLog) errLocked() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mu.err
}

// writeLoop is the writer goroutine.
func (d *dirLog) writeLoop() {
	defer func() {
		d.wDone.Store(true)
		d.wakeSyncer()
		d.wg.Done()
	}()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var groupStart time.Time
	for {
		if d.failed.Load() {
			return
		}
		reserved, written := d.reserved.Load(), d.written.Load()
		if reserved == written {
			groupStart = time.Time{}
			if d.closingF.Load() {
				return
			}
			d.writerSleep(writerIdle, func() bool {
				return d.reserved.Load() != d.written.Load() || d.closingF.Load() || d.failed.Load()
			}, nil)
			continue
		}
		syncIdle := func() bool { return !d.syncBusy.Load() && d.durable.Load() == d.written.Load() }
		if syncIdle() || d.closingF.Load() ||
			(d.maxWait > 0 && !groupStart.IsZero() && time.Since(groupStart) >= d.maxWait) {
			groupStart = time.Time{}
			if err := d.flush(true); err != nil {
				d.fail(err)
				return
			}
			continue
		}
		if d.overThreshold() {
			if err := d.flush(false); err != nil {
				d.fail(err)
				return
			}
			continue
		}
		var t *time.Timer
		if d.maxWait > 0 {
			if groupStart.IsZero() {
				groupStart = time.Now()
			}
			timer.Reset(d.maxWait - time.Since(groupStart))
			t = timer
		}
		d.writerSleep(writerWaiting, func() bool {
			return syncIdle() || d.overThreshold() || d.closingF.Load() || d.failed.Load()
		}, t)
		if t != nil {
			timer.Stop()
		}
	}
}

// flush writes what is reserved. seal pads the stream to a block boundary
// and writes everything; otherwise only the whole blocks are written and the
// last partial block waits for the next flush (it was never written, so it
// is not rewritten).
func (d *dirLog) flush(seal bool) error {
	d.mu.Lock()
	head := d.mu.head
	var target, padAt, padN, marker int64
	var padFile uint32
	if seal {
		if head%d.align != 0 {
			padAt, padN, padFile, marker = head, d.padLen(head), d.mu.file, d.durableMarkerLocked()
			head += padN
			d.mu.head = head
			d.mu.paddingBytes += uint64(padN)
			d.reserved.Store(head)
		}
		target = head
	} else {
		target = head &^ (d.align - 1)
	}
	e := d.mu.epoch
	d.mu.epoch++
	d.mu.Unlock()
	if padN > 0 {
		d.putPadding(padAt, padN, padFile, marker, 0)
	}
	d.drain(e & 1)
	return d.writeUpTo(target)
}

// drain waits until the appenders of an epoch finished copying.
func (d *dirLog) drain(e uint64) {
	cnt := &d.copying[e]
	for i := 0; cnt.Load() != 0; i++ {
		if i < 64 {
			runtime.Gosched()
			continue
		}
		d.drainWait.Store(true)
		if cnt.Load() != 0 {
			<-d.drainCh
		}
		d.drainWait.Store(false)
	}
}

// writeUpTo writes the ring from written to target, switching segments on
// the way.
func (d *dirLog) writeUpTo(target int64) error {
	for {
		w := d.written.Load()
		sw, pending := d.nextSwitch()
		if pending && sw.at == w && w < target {
			if err := d.switchSegment(sw); err != nil {
				return err
			}
			continue
		}
		if w >= target {
			return nil
		}
		end := target
		if pending && sw.at < end {
			end = sw.at
		}
		fo := d.fileOff(w, d.wsegStart)
		d.fill.claim(d.wfile, fo+(end-w))
		for p := w; p < end; {
			ro := p % d.ringSize
			n := min(end-p, d.ringSize-ro)
			if _, err := d.wfile.WriteAt(d.ring[ro:ro+n], fo+(p-w)); err != nil {
				return d.ioErr(fmt.Sprintf("write %d bytes to segment %d at offset %d", n, d.wnum, fo+(p-w)), err)
			}
			p += n
		}
		d.writes.Add(1)
		d.wroteBytes.Add(uint64(end - w))
		d.written.Store(end)
		d.wakeSyncer()
		if end := d.fileOff(end, d.wsegStart); d.prealloc > 0 && end > d.wprealloc-d.prealloc/2 && d.wprealloc < d.maxSeg {
			select {
			case d.prepCh <- prepMsg{f: d.wfile, off: d.wprealloc, n: d.prealloc}:
				d.wprealloc += d.prealloc
			default:
			}
		}
	}
}

func (d *dirLog) nextSwitch() (fileSwitch, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.mu.switches) == 0 {
		return fileSwitch{}, false
	}
	return d.mu.switches[0], true
}

// switchSegment moves the writer to the next segment once everything in the
// current one is durable. Waiting here costs one fdatasync per rotation and
// buys a simple invariant: a segment that is not the newest is wholly
// durable, so recovery may treat any damage in it as corruption.
func (d *dirLog) switchSegment(sw fileSwitch) error {
	for d.durable.Load() < sw.at {
		if d.failed.Load() {
			return d.errLocked()
		}
		d.wakeSyncer()
		d.writerSleep(writerBarrier, func() bool { return d.durable.Load() >= sw.at || d.failed.Load() }, nil)
	}
	seg := <-d.prepDone
	if seg.err == nil && seg.num != sw.num {
		seg.err = fmt.Errorf("journal: dir %s: prepared segment %d, want %d", d.dir, seg.num, sw.num)
	}
	if seg.err != nil {
		// One more try in line: the background attempt may have met a
		// transient condition (a full disk since cleared).
		if seg.f != nil {
			_ = seg.f.Close()
		}
		seg = d.createSegment(sw.num)
		if seg.err != nil {
			return seg.err
		}
	}
	old := d.wfile
	d.mu.Lock()
	d.mu.wfile, d.mu.wnum, d.mu.wsegStart = seg.f, seg.num, sw.at
	d.mu.switches = d.mu.switches[1:]
	d.mu.Unlock()
	d.wfile, d.wnum, d.wsegStart, d.wprealloc = seg.f, seg.num, sw.at, seg.prealloc
	d.fill.switchTo(seg.f)
	d.prepCh <- prepMsg{f: old}
	d.prepCh <- prepMsg{create: seg.num + 1}
	return nil
}

// syncLoop is the syncer goroutine: it fdatasyncs whatever the writer wrote,
// then completes the records that sync covered, in order. After a failed
// fdatasync nothing more is synced (the kernel may have dropped the dirty
// data and a later fdatasync could succeed without it); after a failed
// write, what was written before it is still synced and acknowledged.
func (d *dirLog) syncLoop() {
	defer d.wg.Done()
	var batch []waiter
	for {
		if !d.syncFailed {
			d.mu.Lock()
			f := d.mu.wfile
			target := d.written.Load()
			d.mu.Unlock()
			if target > d.durable.Load() {
				batch = d.syncTo(f, target, batch)
				continue
			}
		}
		if d.wDone.Load() {
			// The writer has exited: written is final. Sync what is left
			// (unless a sync failed), then fail what never got written.
			if !d.syncFailed && d.written.Load() > d.durable.Load() {
				continue
			}
			if d.failed.Load() {
				d.failAll()
			}
			return
		}
		// On failure, the writer notices it and exits, waking us.
		d.sSleep.Store(true)
		if (!d.syncFailed && d.written.Load() > d.durable.Load()) || d.wDone.Load() {
			if !d.sSleep.CompareAndSwap(true, false) {
				<-d.sKick
			}
			continue
		}
		<-d.sKick
	}
}

// syncTo makes everything written up to target durable and completes the
// records it covers.
func (d *dirLog) syncTo(f vfs.File, target int64, batch []waiter) []waiter {
	d.syncBusy.Store(true)
	t0 := time.Now()
	err := f.Sync()
	el := time.Since(t0)
	d.syncs.Add(1)
	d.syncNanos.Add(int64(el))
	d.syncHist[histBucket(el)].Add(1)
	if err != nil {
		d.syncFailed = true
		d.syncBusy.Store(false)
		d.fail(d.ioErr(fmt.Sprintf("fdatasync segment %s", f.Name()), err))
		return batch
	}
	d.durable.Store(target)
	d.mu.Lock()
	batch = d.mu.waiters.popUpTo(target, batch[:0])
	if d.blocked.Load() > 0 {
		d.space.Broadcast()
	}
	d.mu.Unlock()
	d.syncBusy.Store(false)
	d.wakeWriterAfterSync()
	for i := range batch {
		batch[i].cb.Done(batch[i].pos, nil)
		batch[i] = waiter{}
	}
	return batch
}

// wakeWriterAfterSync wakes a writer that waits for the end of a sync.
func (d *dirLog) wakeWriterAfterSync() {
	s := d.wSleep.Load()
	if s == writerWaiting || s == writerBarrier {
		if d.wSleep.CompareAndSwap(s, writerAwake) {
			d.wKick <- struct{}{}
		}
	}
}

// failAll completes every queued record with the directory's error.
func (d *dirLog) failAll() {
	d.mu.Lock()
	err := d.mu.err
	batch := d.mu.waiters.popUpTo(1<<62, nil)
	d.mu.Unlock()
	for _, w := range batch {
		w.cb.Done(w.pos, err)
	}
}

// prepareLoop creates segments ahead of need and extends preallocations, so
// the writer never waits for either in the common case.
func (d *dirLog) prepareLoop() {
	defer d.prepWG.Done()
	for m := range d.prepCh {
		switch {
		case m.create != 0:
			d.prepDone <- d.createSegment(m.create)
		case m.n > 0:
			if err := d.prefill(m.f, m.off, m.n, true); err != nil {
				d.j.log.Debug("journal: extend preallocation", "segment", m.f.Name(), "err", err)
			}
		default:
			if err := m.f.Close(); err != nil {
				d.j.log.Warn("journal: close segment", "segment", m.f.Name(), "err", err)
			}
		}
	}
}

func (d *dirLog) stats() Stats {
	d.mu.Lock()
	s := Stats{Records: d.mu.records, PayloadBytes: d.mu.payloadBytes, PaddingBytes: d.mu.paddingBytes}
	d.mu.Unlock()
	s.WrittenBytes = d.wroteBytes.Load()
	s.Writes = d.writes.Load()
	s.Syncs = d.syncs.Load()
	s.SyncTime = time.Duration(d.syncNanos.Load())
	s.Segments = d.segments.Load()
	s.Recycled = d.recycled.Load()
	for i := range s.SyncLatency {
		s.SyncLatency[i] = d.syncHist[i].Load()
	}
	return s
}
