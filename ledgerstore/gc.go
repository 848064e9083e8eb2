package ledgerstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
)

// GCLevel says how far RunGC goes.
type GCLevel int

const (
	// GCDeleteOnly removes entry logs without live entries and forgets
	// tombstones whose data is gone.
	GCDeleteOnly GCLevel = iota
	// GCMinor also compacts logs whose live share is below
	// MinorCompactionThreshold.
	GCMinor
	// GCMajor also compacts logs whose live share is below
	// MajorCompactionThreshold.
	GCMajor
)

// GCResult says what a garbage collection did.
type GCResult struct {
	LogsDeleted       int   // logs removed because nothing in them was live
	LogsCompacted     int   // logs whose live entries were copied, then removed
	BytesCopied       int64 // record bytes compaction copied
	BytesReclaimed    int64 // file bytes removed
	TombstonesDropped int
}

const (
	// compactionChunk bounds one read of a log being compacted.
	compactionChunk = 1 << 20
	// compactionHeadroom (plus 1/16 of the live bytes, for index records)
	// is the room beyond the live bytes a directory must have to take a
	// log's copies.
	compactionHeadroom = 4 << 10
)

// gcLoop runs garbage collection every GCInterval: a major compaction when
// MajorCompactionInterval has passed since the last, else a minor one when
// MinorCompactionInterval has, else deletions only.
func (s *Store) gcLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.GCInterval)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.closing
		cancel()
	}()
	for {
		select {
		case <-t.C:
		case <-s.closing:
			return
		}
		level := GCDeleteOnly
		s.gcMu.Lock()
		now := time.Now()
		if s.opts.MajorCompactionThreshold > 0 && s.opts.MajorCompactionInterval > 0 &&
			now.Sub(s.lastMajor) >= s.opts.MajorCompactionInterval {
			level = GCMajor
		} else if s.opts.MinorCompactionThreshold > 0 && s.opts.MinorCompactionInterval > 0 &&
			now.Sub(s.lastMinor) >= s.opts.MinorCompactionInterval {
			level = GCMinor
		}
		s.gcMu.Unlock()
		res, err := s.RunGC(ctx, level)
		if err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("garbage collection", "err", err)
		} else if res.LogsDeleted+res.LogsCompacted+res.TombstonesDropped > 0 {
			s.log.Info("garbage collection", "level", level, "deleted", res.LogsDeleted,
				"compacted", res.LogsCompacted, "copied", res.BytesCopied, "reclaimed", res.BytesReclaimed)
		}
	}
}

// RunGC collects garbage now: it removes entry logs with no live entries,
// compacts logs whose live share is below the level's threshold (copying
// their live entries, throttled to CompactionRateBytes, into a new log that
// is synced and committed before the index points at the copies and before
// the old log is removed), and forgets tombstones of deleted ledgers whose
// data is gone. Adds, flushes and reads go on meanwhile: no lock is held
// across I/O. It runs while the store is read-only too, as long as a
// directory has room for the live data it copies.
func (s *Store) RunGC(ctx context.Context, level GCLevel) (GCResult, error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	var res GCResult
	if s.isClosed() {
		return res, ErrClosed
	}
	s.stats.gcRuns.Add(1)
	var errs []error
	if err := s.deleteDeadLogs(&res); err != nil {
		errs = append(errs, err)
	}
	threshold := 0.0
	switch level {
	case GCMajor:
		threshold = s.opts.MajorCompactionThreshold
		s.lastMajor = time.Now()
		s.lastMinor = s.lastMajor
	case GCMinor:
		threshold = s.opts.MinorCompactionThreshold
		s.lastMinor = time.Now()
	}
	if threshold > 0 {
		if err := s.compact(ctx, threshold, &res); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.dropTombstones(&res); err != nil {
		errs = append(errs, err)
	}
	s.stats.logsDeleted.Add(int64(res.LogsDeleted))
	s.stats.logsCompacted.Add(int64(res.LogsCompacted))
	s.stats.compactedBytes.Add(res.BytesCopied)
	s.stats.reclaimedBytes.Add(res.BytesReclaimed)
	return res, errors.Join(errs...)
}

func (s *Store) deleteDeadLogs(res *GCResult) error {
	s.state.RLock()
	var dead []*logFile
	for _, lf := range s.state.logs {
		if lf.live != 0 {
			continue
		}
		if lf.writing {
			lf.rollReq.Store(true)
			s.kickFlush()
		} else {
			dead = append(dead, lf)
		}
	}
	s.state.RUnlock()
	var errs []error
	for _, lf := range dead {
		n, err := s.removeLog(lf)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if n > 0 {
			res.LogsDeleted++
			res.BytesReclaimed += n
		}
	}
	return errors.Join(errs...)
}

// removeLog removes a log that holds nothing live: out of the registry
// first (no new reader finds it), then, when its last reader is done, its
// index file, the log, and a directory sync, so that a tombstone dropped
// afterwards can never meet the log again. It returns the bytes freed (0
// when the log turned out to be in use).
func (s *Store) removeLog(lf *logFile) (int64, error) {
	s.state.Lock()
	if s.state.logs[lf.id] != lf || lf.writing || lf.live != 0 {
		s.state.Unlock()
		return 0, nil
	}
	delete(s.state.logs, lf.id)
	size := lf.size
	s.state.Unlock()
	lf.release()
	<-lf.closed // readers hold a reference only for the duration of one read
	dir := s.dirs[lf.dir].path
	// The index file goes first: a log without one is garbage to Open.
	// The log is shrunk step by step before it is unlinked (see
	// vfs.RemoveGradually); a crash part-way leaves a log without its index
	// file, which Open removes as garbage.
	for _, p := range []string{lf.idxPath, lf.path} {
		if err := vfs.RemoveGradually(s.fs, p, removeStep, removePause); err != nil && !vfs.IsNotExist(err) {
			return 0, fmt.Errorf("ledgerstore: remove %s: %w", p, err)
		}
	}
	if err := s.fs.SyncDir(dir); err != nil {
		return 0, fmt.Errorf("ledgerstore: sync dir %s: %w", dir, err)
	}
	return max(size, 1), nil
}

// Removed entry logs are shrunk in removeStep steps, removePause apart,
// before they are unlinked (vfs.RemoveGradually): unlinked at once, a
// 64 MiB log stalled the journal's fdatasync on the same filesystem for
// 4-11 ms (BenchmarkAddLatencyCompaction); in back-to-back 4 MiB steps
// syncs still took 1.5-2.3 ms while the steps ran; with 2 ms between
// steps (a 64 MiB log goes in about 40 ms) only a few took 1.5-1.9 ms, and
// add p99 during compaction fell from 4.6-4.9 to 2.7-3.0 times its
// baseline (go test ./engine -run XXX -bench BenchmarkAddLatencyCompaction
// -benchtime 1x -count 3).
const (
	removeStep  = 4 << 20
	removePause = 2 * time.Millisecond
)

type compactCandidate struct {
	lf    *logFile
	share float64
	live  int64
}

// compact copies the live entries of logs below threshold into new logs,
// lowest live share first.
func (s *Store) compact(ctx context.Context, threshold float64, res *GCResult) error {
	s.state.RLock()
	var cands []compactCandidate
	for _, lf := range s.state.logs {
		if lf.skipGC || lf.size <= record.FileHeaderSize {
			continue
		}
		share := float64(lf.live) / float64(lf.size)
		if share >= threshold {
			continue
		}
		if lf.writing {
			// The flusher rolls it; a later collection takes it.
			lf.rollReq.Store(true)
			s.kickFlush()
			continue
		}
		if lf.live > 0 {
			cands = append(cands, compactCandidate{lf, share, lf.live})
		}
	}
	s.state.RUnlock()
	slices.SortFunc(cands, func(a, b compactCandidate) int {
		if c := cmp.Compare(a.share, b.share); c != 0 {
			return c
		}
		return cmp.Compare(a.lf.id, b.lf.id)
	})
	var w *logWriter
	defer func() {
		if w != nil {
			w.retire()
		}
	}()
	thr := throttle{rate: s.opts.CompactionRateBytes}
	var errs []error
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		d := s.compactionDir(c.lf, c.live, w)
		if d < 0 {
			s.log.Warn("compaction stopped: no directory has room for the live data", "log", c.lf.path, "live", c.live)
			break
		}
		if w != nil && w.dir != d {
			w.retire()
			w = nil
		}
		copied, err := s.compactOne(ctx, c.lf, &w, d, &thr)
		res.BytesCopied += copied
		if err != nil {
			errs = append(errs, err)
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				break
			}
			continue
		}
		n, err := s.removeLog(c.lf)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if n > 0 {
			res.LogsCompacted++
			res.BytesReclaimed += n
		}
	}
	return errors.Join(errs...)
}

// compactionDir picks where the copies go: the current output's directory
// or the source's if it has room for live bytes, else the directory with
// the most room; -1 when none has.
func (s *Store) compactionDir(src *logFile, live int64, w *logWriter) int {
	need := uint64(live) + uint64(live)/16 + compactionHeadroom
	room := func(d int) uint64 {
		du, err := s.fs.DiskUsage(s.dirs[d].path)
		if err != nil || du.FreeBytes < need {
			return 0
		}
		// A full directory still takes copies that fit: compacting is how
		// its space comes back.
		return du.FreeBytes
	}
	if w != nil && room(w.dir) > 0 {
		return w.dir
	}
	if room(src.dir) > 0 {
		return src.dir
	}
	best, bestRoom := -1, uint64(0)
	for d := range s.dirs {
		if r := room(d); r > bestRoom {
			best, bestRoom = d, r
		}
	}
	return best
}

// compactOne copies src's live entries through *wp (in directory d),
// commits them, and points the index at the copies where it still points
// at src. It returns the bytes copied.
func (s *Store) compactOne(ctx context.Context, src *logFile, wp **logWriter, d int, thr *throttle) (int64, error) {
	type item struct {
		k  entryKey
		sl slot
	}
	var items []item
	s.state.RLock()
	if s.state.logs[src.id] != src {
		s.state.RUnlock()
		return 0, nil
	}
	for l, live := range src.ledgers {
		li := s.state.ledgers[l]
		if live <= 0 || li == nil {
			continue
		}
		li.each(func(e base.EntryID, sl slot) bool {
			if sl.log == src.id {
				items = append(items, item{entryKey{l, e}, sl})
			}
			return true
		})
	}
	// Copies carry the source's highest sequence: above every version they
	// replace, below every later write (see doc.go).
	seq := src.maxSeq
	src.refs.Add(1)
	s.state.RUnlock()
	defer src.release()
	slices.SortFunc(items, func(a, b item) int { return cmp.Compare(a.sl.off, b.sl.off) })
	olds := make(map[entryKey]slot, len(items))
	for _, it := range items {
		olds[it.k] = it.sl
	}

	var done []writtenEntry
	var copied int64
	fail := func(err error) (int64, error) {
		if *wp != nil {
			(*wp).retire()
			*wp = nil
		}
		s.applyMoves(done, olds)
		return copied, err
	}
	for i := 0; i < len(items); {
		j := i + 1
		spanEnd := int64(items[i].sl.off + items[i].sl.size)
		for j < len(items) && int64(items[j].sl.off) == spanEnd &&
			spanEnd+int64(items[j].sl.size)-int64(items[i].sl.off) <= compactionChunk {
			spanEnd += int64(items[j].sl.size)
			j++
		}
		start := int64(items[i].sl.off)
		sp, rerr := s.readSpan(src, start, int(spanEnd-start))
		if sp.n < len(sp.data) {
			sp.done()
			if rerr == nil {
				rerr = errors.New("short read")
			}
			s.markSkipGC(src)
			return fail(fmt.Errorf("ledgerstore: compact %s at %d: %w", src.path, start, rerr))
		}
		for _, it := range items[i:j] {
			rel := int64(it.sl.off) - start
			rec := sp.data[rel : rel+int64(it.sl.size)]
			if err := checkEntryRecord(rec, src.id, src.path, int64(it.sl.off), it.k.ledger, it.k.entry); err != nil {
				// Never copy bad bytes; leave the log for an operator.
				sp.done()
				s.stats.corruptions.Add(1)
				s.markSkipGC(src)
				return fail(fmt.Errorf("ledgerstore: compaction of %s stopped: %w", src.path, err))
			}
			var err error
			if done, err = s.put(wp, d, true, seq, it.k.ledger, it.k.entry, rec[record.HeaderSize:], done); err != nil {
				sp.done()
				s.noteWriteError(d, err)
				return fail(err)
			}
			copied += int64(it.sl.size)
		}
		sp.done()
		i = j
		if err := thr.wait(ctx, spanEnd-start); err != nil {
			return fail(err)
		}
	}
	if *wp != nil {
		committed, err := (*wp).commit()
		done = append(done, committed...)
		if err != nil {
			s.noteWriteError(d, err)
			return fail(err)
		}
	}
	if h := s.hooks.compactCopy; h != nil {
		h(src.id)
	}
	s.applyMoves(done, olds)
	return copied, nil
}

func (s *Store) markSkipGC(lf *logFile) {
	s.state.Lock()
	lf.skipGC = true
	s.state.Unlock()
}

// applyMoves points the index at committed copies, for the entries whose
// location is still the one copied (an entry re-added meanwhile keeps its
// new location; a deleted ledger has none).
func (s *Store) applyMoves(done []writtenEntry, olds map[entryKey]slot) {
	if len(done) == 0 {
		return
	}
	s.state.Lock()
	defer s.state.Unlock()
	for i := range done {
		w := &done[i]
		lf := s.state.logs[w.log]
		li := s.state.ledgers[w.ledger]
		if lf == nil || li == nil {
			continue
		}
		old, ok := olds[entryKey{w.ledger, w.entry}]
		cur, present := li.get(w.entry)
		if !ok || !present || cur != old {
			continue
		}
		li.set(w.entry, slot{log: w.log, off: w.off, size: w.size})
		s.replaceSlotLocked(w.ledger, old)
		lf.live += int64(w.size)
		lf.ledgers[w.ledger] += int64(w.size)
	}
}

// dropTombstones forgets the tombstones of deleted ledgers that no entry
// log up to the tombstone's log id holds any more, and persists that.
func (s *Store) dropTombstones(res *GCResult) error {
	s.meta.mu.RLock()
	if len(s.meta.mu.deleted) == 0 {
		s.meta.mu.RUnlock()
		return nil
	}
	tombs := make(map[base.LedgerID]uint32, len(s.meta.mu.deleted))
	for l, maxLog := range s.meta.mu.deleted {
		tombs[l] = maxLog
	}
	s.meta.mu.RUnlock()
	s.state.RLock()
	for id, lf := range s.state.logs {
		for l := range lf.ledgers {
			if maxLog, ok := tombs[l]; ok && id <= maxLog {
				delete(tombs, l)
			}
		}
	}
	s.state.RUnlock()
	if len(tombs) == 0 {
		return nil
	}
	// Entries of the ledger still in the write cache (added before the
	// deletion, not flushed yet) keep the tombstone: their flush checks it.
	// AddEntry checks tombstones under wc.mu, so no add slips in between.
	s.wc.mu.Lock()
	for l := range tombs {
		if s.wc.holdsLocked(l) {
			delete(tombs, l)
		}
	}
	s.meta.mu.Lock()
	for l := range tombs {
		delete(s.meta.mu.deleted, l)
		s.meta.mu.dirty[l] = struct{}{}
	}
	s.meta.mu.Unlock()
	s.wc.mu.Unlock()
	if len(tombs) == 0 {
		return nil
	}
	res.TombstonesDropped += len(tombs)
	if err := s.cat.sync(&s.meta); err != nil {
		s.noteCatalogError(err)
		return err
	}
	return nil
}

// throttle paces compaction to rate bytes per second.
type throttle struct {
	rate  int64
	start time.Time
	bytes int64
}

func (t *throttle) wait(ctx context.Context, n int64) error {
	if t.rate <= 0 {
		return ctx.Err()
	}
	if t.start.IsZero() {
		t.start = time.Now()
	}
	t.bytes += n
	due := t.start.Add(time.Duration(float64(t.bytes) / float64(t.rate) * float64(time.Second)))
	d := time.Until(due)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
