package journal

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
)

// Journal is the write-ahead log of a bookie over one or more directories.
// Its methods are safe for concurrent use.
type Journal struct {
	opts          Options
	log           *slog.Logger
	dirs          []*dirLog
	directRefused atomic.Bool
	syncWaiters   sync.Pool
	closeOnce     sync.Once
	closeErr      error
}

// Open recovers every directory (cutting a torn tail off its newest segment,
// refusing corruption there), then starts a fresh segment in each and the
// goroutines that write to it. Records written before Open are read with
// Replay.
func Open(opts Options) (*Journal, error) {
	opts.Dirs = slices.Clone(opts.Dirs)
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	j := &Journal{opts: opts, log: opts.Logger}
	j.syncWaiters.New = func() any { return &syncWaiter{done: make(chan struct{}, 1)} }
	for i, dir := range opts.Dirs {
		d, err := j.openDir(i, dir)
		if err != nil {
			for _, d := range j.dirs {
				_ = d.close()
			}
			return nil, err
		}
		j.dirs = append(j.dirs, d)
	}
	return j, nil
}

func (j *Journal) openDir(idx int, dir string) (*dirLog, error) {
	o := &j.opts
	d := &dirLog{
		j:         j,
		idx:       idx,
		dir:       dir,
		fs:        o.FS,
		align:     int64(o.Alignment),
		maxSeg:    o.MaxSegmentBytes,
		prealloc:  o.PreallocBytes,
		threshold: int64(o.BufferedWritesThreshold),
		maxWait:   o.MaxGroupWait,
		qmax:      o.QueueMaxBytes,
		maxRecord: o.maxRecordBytes(),
		drainCh:   make(chan struct{}, 1),
		wKick:     make(chan struct{}, 1),
		sKick:     make(chan struct{}, 1),
		prepCh:    make(chan prepMsg, 4),
		prepDone:  make(chan *segment, 1),
	}
	d.space = sync.NewCond(&d.mu.Mutex)
	if err := d.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("journal: create directory %s: %w", dir, err)
	}
	// One journal per directory: two writers of the same segments would
	// destroy each other's records.
	lock, err := vfs.LockDir(d.fs, dir)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	d.lock = lock
	opened := false
	defer func() {
		if !opened {
			_ = lock.Close()
		}
	}()
	next, err := d.recover()
	if err != nil {
		return nil, err
	}
	d.firstNum = next
	d.fill.init(!j.opts.NoZeroFill && d.prealloc > 0)
	seg := d.createSegment(next)
	if seg.err != nil {
		return nil, seg.err
	}
	d.ringSize = vfs.AlignUp(d.qmax, int(d.align)) + 2*d.align
	d.ring = vfs.AlignedBuffer(int(d.ringSize), int(d.align))
	d.zeros = make([]byte, d.align)
	d.wfile, d.wnum, d.wprealloc = seg.f, seg.num, seg.prealloc
	d.fill.switchTo(seg.f)
	d.mu.file, d.mu.wfile, d.mu.wnum = seg.num, seg.f, seg.num
	d.wg.Add(2)
	d.prepWG.Add(1)
	go d.writeLoop()
	go d.syncLoop()
	go d.prepareLoop()
	d.prepCh <- prepMsg{create: next + 1}
	opened = true
	return d, nil
}

// DirFor is the directory that journals ledger's records.
func (j *Journal) DirFor(ledger int64) int { return int(uint64(ledger) % uint64(len(j.dirs))) }

// Append journals a record of ledger (in the directory DirFor(ledger)) and
// calls cb.Done once it is durable, or failed. The payload is copied before
// Append returns; the caller may reuse it at once. When the directory's queue
// is full Append waits for room. An error returned by Append means the
// record was not accepted and cb will not be called.
//
// kind must not be KindInvalid or KindPadding, which the journal reserves.
func (j *Journal) Append(kind record.Kind, ledger, entry int64, payload []byte, cb Callback) error {
	return j.append(kind, ledger, entry, payload, cb, true)
}

// TryAppend is Append that fails with an error wrapping ErrBusy (and
// base.ErrBusy) instead of waiting when the queue is full.
func (j *Journal) TryAppend(kind record.Kind, ledger, entry int64, payload []byte, cb Callback) error {
	return j.append(kind, ledger, entry, payload, cb, false)
}

func (j *Journal) append(kind record.Kind, ledger, entry int64, payload []byte, cb Callback, wait bool) error {
	if kind == record.KindInvalid || kind == record.KindPadding {
		return fmt.Errorf("%w %d", ErrKind, kind)
	}
	if cb == nil {
		return errors.New("journal: nil callback")
	}
	return j.dirs[j.DirFor(ledger)].append(kind, ledger, entry, payload, cb, wait)
}

type syncWaiter struct {
	done chan struct{}
	pos  Pos
	err  error
}

func (w *syncWaiter) Done(pos Pos, err error) {
	w.pos, w.err = pos, err
	w.done <- struct{}{}
}

// AppendSync journals a record and waits until it is durable.
func (j *Journal) AppendSync(kind record.Kind, ledger, entry int64, payload []byte) (Pos, error) {
	w := j.syncWaiters.Get().(*syncWaiter)
	if err := j.Append(kind, ledger, entry, payload, w); err != nil {
		j.syncWaiters.Put(w)
		return Pos{}, err
	}
	<-w.done
	pos, err := w.pos, w.err
	w.pos, w.err = Pos{}, nil
	j.syncWaiters.Put(w)
	return pos, err
}

// Mark returns, for every directory, the end of what is durable in its
// segments: every record appended and acknowledged before the call lies
// below it. The owner takes a mark, flushes ledger storage, and once that
// flush is durable persists the mark and passes it to SetCheckpoint.
//
// The mark is the durable end, not the written end, because only durable
// bytes survive a crash: a mark past them could point into a segment that a
// restart finds empty, removes and makes again under the same number, and
// records appended after that restart would lie below the checkpoint and be
// skipped by the next replay.
func (j *Journal) Mark() Checkpoint {
	cp := make(Checkpoint, len(j.dirs))
	for i, d := range j.dirs {
		d.mu.Lock()
		num, segStart := d.mu.wnum, d.mu.wsegStart
		dur := d.durable.Load()
		if len(d.mu.switches) > 0 && dur >= d.mu.switches[0].at {
			// The old segment is durable to its end marker and the writer
			// is about to move on: name the start of the next segment. A
			// position after a segment's end marker would make Replay
			// start among a recycled file's stale bytes, which it cannot
			// tell from lost records.
			num, segStart = d.mu.switches[0].num, d.mu.switches[0].at
		}
		d.mu.Unlock()
		// The writer switches segments only once the old one is durable,
		// so the durable end is never behind the current segment's start.
		cp[i] = Pos{Dir: i, File: num, Offset: d.fileOff(max(dur, segStart), segStart)}
	}
	return cp
}

// SetCheckpoint tells the journal that everything below cp is durable in
// ledger storage, so segments wholly below it may go: it frees them (keeping
// a few for reuse, deleting the rest), except the MaxBackups newest of them
// and the segment being written. The caller persists cp itself
// (SaveCheckpoint is a helper) before calling, so that a restart never
// replays from a checkpoint older than the segments left. Must not run
// concurrently with Replay.
func (j *Journal) SetCheckpoint(cp Checkpoint) error {
	if len(cp) != len(j.dirs) {
		return fmt.Errorf("journal: checkpoint has %d positions for %d directories", len(cp), len(j.dirs))
	}
	var errs []error
	for i, d := range j.dirs {
		if cp[i].Dir != i {
			return fmt.Errorf("journal: checkpoint position %d names directory %d", i, cp[i].Dir)
		}
		d.mu.Lock()
		newest, writing, closing := d.mu.file, d.mu.wnum, d.mu.closing
		d.mu.Unlock()
		if closing {
			return ErrClosed
		}
		if cp[i].File > newest {
			return fmt.Errorf("journal: checkpoint %v is past the newest segment (%d)", cp[i], newest)
		}
		// Never free the segment being written, even when the checkpoint
		// names the next one (Mark at a segment's end): if power failed
		// before the next segment was durable, a restart would find an
		// older newest segment, number its new segment below the
		// checkpoint, and the next replay would skip what it appended.
		if err := d.deleteBelow(min(cp[i].File, writing), j.opts.keepBackups()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deleteBelow removes the segments numbered below num except the keep newest
// of them.
func (d *dirLog) deleteBelow(num uint32, keep int) error {
	segs, _, err := listSegments(d.fs, d.dir)
	if err != nil {
		return err
	}
	var below []segInfo
	for _, s := range segs {
		if s.num < num {
			below = append(below, s)
		}
	}
	if len(below) <= keep {
		return nil
	}
	doomed := below[:len(below)-keep]
	// Oldest first, each made durable before the next, so that whatever a
	// crash keeps, the remaining segments are contiguous.
	for _, s := range doomed {
		d.recoveredMu.Lock()
		d.recovered = slices.DeleteFunc(d.recovered, func(r segInfo) bool { return r.num == s.num })
		d.recoveredMu.Unlock()
		if err := d.free(s); err != nil {
			return err
		}
		if err := d.fs.SyncDir(d.dir); err != nil {
			return fmt.Errorf("journal: sync directory %s: %w", d.dir, err)
		}
	}
	return nil
}

// free keeps a segment's file for reuse, renamed out of the segment
// namespace, or removes it when enough are kept.
func (d *dirLog) free(s segInfo) error {
	if fi, err := d.fs.Stat(s.path); err == nil {
		name := filepath.Join(d.dir, recycleName(s.num))
		if d.offerRecycled(name, fi.Size()) {
			if err := d.fs.Rename(s.path, name); err == nil {
				return nil
			}
			d.takeBack(name)
		}
	}
	// A segment is up to MaxSegmentBytes (2 GiB): unlinked at once, its
	// blocks would be freed in one filesystem transaction that every
	// fdatasync on the device waits for. It leaves the segment namespace
	// first (durably, so that recovery never finds a shortened segment),
	// then shrinks step by step.
	dead := filepath.Join(d.dir, deadName(s.num))
	if err := d.fs.Rename(s.path, dead); err != nil {
		if vfs.IsNotExist(err) {
			return nil
		}
		return fmt.Errorf("journal: remove segment %s: %w", s.path, err)
	}
	if err := d.fs.SyncDir(d.dir); err != nil {
		return fmt.Errorf("journal: sync directory %s: %w", d.dir, err)
	}
	if err := vfs.RemoveGradually(d.fs, dead, removeStep, removePause); err != nil && !vfs.IsNotExist(err) {
		return fmt.Errorf("journal: remove segment %s: %w", dead, err)
	}
	return nil
}

// Close writes and syncs everything appended (their callbacks fire), stops
// the goroutines and closes the segments. Appends racing with Close fail with
// ErrClosed. It returns the first error a directory met, if any.
func (j *Journal) Close() error {
	j.closeOnce.Do(func() {
		var errs []error
		for _, d := range j.dirs {
			errs = append(errs, d.close())
		}
		j.closeErr = errors.Join(errs...)
	})
	return j.closeErr
}

func (d *dirLog) close() error {
	defer func() {
		if d.lock != nil {
			_ = d.lock.Close() // last: the directory is free once close returns
			d.lock = nil
		}
	}()
	d.mu.Lock()
	d.mu.closing = true
	d.closingF.Store(true)
	d.space.Broadcast()
	d.mu.Unlock()
	if d.ring != nil {
		d.wakeWriter()
		d.wg.Wait()
		close(d.prepCh)
		d.prepWG.Wait()
		select {
		case seg := <-d.prepDone:
			// Made ahead of need and never used: keep the file for reuse
			// under a recycle name, so the directory's segments all hold
			// records.
			if seg.err == nil {
				_ = seg.f.Close()
				if err := d.fs.Rename(seg.path, filepath.Join(d.dir, recycleName(seg.num))); err != nil {
					_ = d.fs.Remove(seg.path)
				}
				_ = d.fs.SyncDir(d.dir)
			}
		default:
		}
		if d.wfile != nil {
			if err := d.wfile.Close(); err != nil && d.errLocked() == nil {
				return fmt.Errorf("journal: close segment in %s: %w", d.dir, err)
			}
		}
	}
	return d.errLocked()
}

// Stats returns the journal's counters, summed and per directory.
func (j *Journal) Stats() Stats {
	var total Stats
	for _, d := range j.dirs {
		s := d.stats()
		total.add(&s)
		total.Dirs = append(total.Dirs, s)
	}
	return total
}
