package ledgerstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
)

// Errors. Each also wraps the matching base class where there is one.
var (
	// ErrReadOnly: every ledger directory is full (or out of space); adds
	// are refused until space is freed. Wraps base.ErrReadOnly.
	ErrReadOnly = fmt.Errorf("ledgerstore: %w: every ledger directory is full", base.ErrReadOnly)
	// ErrClosed: the store was closed. Wraps base.ErrClosed.
	ErrClosed = fmt.Errorf("ledgerstore: %w", base.ErrClosed)
)

// Mode is whether the store accepts adds.
type Mode int32

const (
	// Writable: adds are accepted.
	Writable Mode = iota
	// ReadOnly: every ledger directory is full; adds fail with ErrReadOnly,
	// reads, deletes and garbage collection continue.
	ReadOnly
)

func (m Mode) String() string {
	if m == ReadOnly {
		return "read-only"
	}
	return "writable"
}

// Store is the ledger storage of one bookie. All methods are safe for
// concurrent use.
//
// Lock order (outermost first): gcMu, catalog.mu, wc.mu, state.mu, meta.mu.
// rc.mu, ra.mu and modeMu are never held while taking another. Only gcMu
// and catalog.mu are held across I/O, and neither is on the add or read
// path.
type Store struct {
	opts Options
	fs   vfs.FS
	log  *slog.Logger
	pool *bufs.Pool

	wc   writeCache
	rc   readCache
	ra   readAhead
	meta metaTable
	cat  catalog

	state struct {
		sync.RWMutex
		ledgers   map[base.LedgerID]*ledgerIndex
		logs      map[uint32]*logFile
		nextLogID uint32
	}

	dirs   []*dirState
	mode   atomic.Int32
	modeMu sync.Mutex // serializes mode changes and their callbacks

	flushKick    chan struct{}
	writers      []*logWriter // per dir; owned by the flusher goroutine
	flushScratch flushScratch // owned by the flusher goroutine
	writeBufs    sync.Pool    // *[]byte of writeBufferBytes
	readBufs     sync.Pool    // *[]byte of readScratchBytes, aligned (direct reads)
	epoch        time.Time    // clock's zero
	readIO       struct {     // see readPieceBytes
		adds    atomic.Int64 // entriesAdded when last sampled
		changed atomic.Int64 // clock when it last changed
	}
	locks []vfs.File // the directories' LOCK files, held while open
	// directRefused: the filesystem refused O_DIRECT; logs are written
	// through the page cache.
	directRefused atomic.Bool

	gcMu      sync.Mutex // one garbage collection at a time
	lastMinor time.Time  // guarded by gcMu
	lastMajor time.Time  // guarded by gcMu

	closing   chan struct{}
	closeOnce sync.Once
	closed    atomic.Bool
	wg        sync.WaitGroup

	stats counters
	hooks testHooks
}

// testHooks let in-package tests observe internal events without sleeping.
type testHooks struct {
	addWait     func()           // an add is about to wait for a free segment
	compactCopy func(log uint32) // compaction copied a source log and committed the copies
}

// dirState is the space state of one ledger directory.
type dirState struct {
	path    string
	full    atomic.Bool // usage at or above the threshold (until below the low-water mark)
	noSpace atomic.Bool // a write failed with ENOSPC (until a check finds space)
}

func (d *dirState) writable() bool { return !d.full.Load() && !d.noSpace.Load() }

// logFile is one entry log and its index file.
type logFile struct {
	id      uint32
	dir     int
	path    string
	idxPath string

	refs   atomic.Int32 // 1 for the registry, 1 per reader
	closed chan struct{}

	fmu sync.Mutex
	f   vfs.File // read handle, opened on first use (or the writer's)
	df  vfs.File // O_DIRECT read handle (unless Options.BufferedReads), opened on first use

	// Guarded by Store.state.
	size    int64                   // bytes of the file that are data (header included)
	maxSeq  uint64                  // highest flush sequence of its records
	live    int64                   // bytes of records the index points to
	ledgers map[base.LedgerID]int64 // ledgers with records here -> their live bytes
	writing bool                    // a writer (flush or compaction) appends to it
	rollReq atomic.Bool             // GC asks the flusher to stop appending to it
	skipGC  bool                    // compaction failed on it; left alone until restart
}

func newLogFile(s *Store, id uint32, dir int) *logFile {
	lf := &logFile{
		id: id, dir: dir,
		path:    entryLogName(s.dirs[dir].path, id),
		idxPath: indexName(s.dirs[dir].path, id),
		closed:  make(chan struct{}),
		ledgers: map[base.LedgerID]int64{},
	}
	lf.refs.Store(1)
	return lf
}

// file returns the read handle, opening it on first use.
func (lf *logFile) file(s *Store) (vfs.File, error) {
	lf.fmu.Lock()
	defer lf.fmu.Unlock()
	if lf.f == nil {
		f, err := s.fs.Open(lf.path)
		if err != nil {
			return nil, fmt.Errorf("ledgerstore: open %s: %w", lf.path, err)
		}
		if !s.opts.KernelReadAhead {
			adviseRandom(f)
		}
		lf.f = f
	}
	return lf.f, nil
}

// release drops a reference; the last one closes the file.
func (lf *logFile) release() {
	if lf.refs.Add(-1) == 0 {
		lf.fmu.Lock()
		if lf.f != nil {
			lf.f.Close()
			lf.f = nil
		}
		if lf.df != nil {
			lf.df.Close()
			lf.df = nil
		}
		lf.fmu.Unlock()
		close(lf.closed)
	}
}

// Open opens (or creates) the store in opts.Dirs, loads the index of every
// entry log and the catalog, and starts the flusher, the disk checker and
// the garbage collector.
func Open(opts Options) (*Store, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Store{
		opts:      opts,
		epoch:     time.Now(),
		fs:        opts.FS,
		log:       opts.Logger.With("component", "ledgerstore"),
		pool:      opts.Pool,
		flushKick: make(chan struct{}, 1),
		closing:   make(chan struct{}),
	}
	s.cat.fs, s.cat.dir = opts.FS, opts.MetaDir
	s.meta.init()
	s.state.ledgers = map[base.LedgerID]*ledgerIndex{}
	s.state.logs = map[uint32]*logFile{}
	for _, d := range opts.Dirs {
		if err := s.fs.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("ledgerstore: create %s: %w", d, err)
		}
		s.dirs = append(s.dirs, &dirState{path: d})
	}
	if err := s.fs.MkdirAll(opts.MetaDir, 0o755); err != nil {
		return nil, fmt.Errorf("ledgerstore: create %s: %w", opts.MetaDir, err)
	}
	// One store per directory: a second process (or store) writing the
	// same entry logs and catalog would corrupt both.
	opened := false
	defer func() {
		if !opened {
			s.unlock()
		}
	}()
	for _, d := range append(slices.Clone(opts.Dirs), opts.MetaDir) {
		if slices.ContainsFunc(s.locks, func(f vfs.File) bool { return path.Dir(f.Name()) == path.Clean(d) }) {
			continue
		}
		l, err := vfs.LockDir(s.fs, d)
		if err != nil {
			return nil, fmt.Errorf("ledgerstore: %w", err)
		}
		s.locks = append(s.locks, l)
	}
	// Make the directories' own names durable (MkdirAll may just have
	// made them): later syncs cover what is inside them only.
	synced := map[string]bool{}
	for _, d := range append(slices.Clone(opts.Dirs), opts.MetaDir) {
		if p := path.Dir(path.Clean(d)); !synced[p] {
			synced[p] = true
			if err := s.fs.SyncDir(p); err != nil {
				return nil, fmt.Errorf("ledgerstore: sync dir %s: %w", p, err)
			}
		}
	}
	s.writers = make([]*logWriter, len(s.dirs))

	start := time.Now()
	nums, found, err := loadCatalog(s.fs, opts.MetaDir, &s.meta)
	if err != nil {
		return nil, err
	}
	maxSeq, err := s.loadLogs()
	if err != nil {
		s.closeLogs()
		return nil, err
	}
	if found == nil && len(s.state.logs) > 0 {
		s.closeLogs()
		return nil, fmt.Errorf("ledgerstore: %w: %d entry logs but no complete catalog in %s",
			base.ErrCorruption, len(s.state.logs), opts.MetaDir)
	}
	// Start a fresh catalog holding the whole state; older ones go. On a
	// disk too full for it, go on appending to the one just loaded.
	next := uint32(1)
	if len(nums) > 0 {
		next = nums[len(nums)-1] + 1
	}
	s.cat.mu.Lock()
	err = s.cat.writeSnapshotLocked(next, &s.meta)
	reused := false
	if err != nil && vfs.IsNoSpace(err) && found != nil {
		s.log.Warn("no space for a new catalog; appending to the old one", "err", err)
		s.fs.Remove(catalogName(opts.MetaDir, next))
		if err = s.cat.reuseLocked(found); err == nil {
			reused = true
			s.meta.mu.Lock()
			for l := range s.meta.mu.ledgers {
				s.meta.mu.dirty[l] = struct{}{} // implicit ledgers found in the logs
			}
			s.meta.mu.Unlock()
		}
	}
	s.cat.mu.Unlock()
	if err != nil {
		s.closeLogs()
		return nil, err
	}
	for _, n := range nums {
		if reused && n == found.num {
			continue
		}
		if err := s.fs.Remove(catalogName(opts.MetaDir, n)); err != nil && !vfs.IsNotExist(err) {
			s.log.Warn("removing old catalog", "err", err)
		}
	}
	s.cat.reserve() // the old catalogs' space is free now

	s.wc.init(opts.segmentBytes(), opts.WriteCacheSegments, maxSeq+1)
	s.rc.init(opts.ReadCacheMaxBytes)
	s.ra.init(opts.ReadAheadConcurrency)
	s.lastMinor, s.lastMajor = time.Now(), time.Now()
	s.checkDisks()

	st := s.Stats()
	s.log.Info("opened", "dirs", len(s.dirs), "entry_logs", st.EntryLogs, "ledgers", st.Ledgers,
		"index_entries", st.IndexEntries, "took", time.Since(start))

	s.wg.Add(1)
	go s.flushLoop()
	if opts.DiskCheckInterval > 0 {
		s.wg.Add(1)
		go s.diskLoop()
	}
	if opts.GCInterval > 0 {
		s.wg.Add(1)
		go s.gcLoop()
	}
	opened = true
	return s, nil
}

// unlock releases the directory locks.
func (s *Store) unlock() {
	for _, l := range s.locks {
		_ = l.Close()
	}
	s.locks = nil
}

// loadLogs reads the index file of every entry log, removes the files that
// hold no committed data, and builds the location index. It returns the
// highest flush sequence found.
func (s *Store) loadLogs() (uint64, error) {
	var runs []indexRun
	var maxID uint32
	for di, d := range s.dirs {
		names, err := s.fs.List(d.path)
		if err != nil {
			return 0, fmt.Errorf("ledgerstore: list %s: %w", d.path, err)
		}
		logs, idxs := map[uint32]bool{}, map[uint32]bool{}
		var damaged []uint32 // copies of rebuilt index files
		for _, name := range names {
			if id, ok := parseFileID(name, indexSuffix+damagedSuffix); ok {
				damaged = append(damaged, id)
			}
			if id, ok := parseFileID(name, entryLogSuffix); ok {
				logs[id] = true
				maxID = max(maxID, id)
			}
			if id, ok := parseFileID(name, indexSuffix); ok {
				idxs[id] = true
				maxID = max(maxID, id)
			}
		}
		removed := false
		remove := func(p string) error {
			removed = true
			if err := vfs.RemoveGradually(s.fs, p, removeStep, 0); err != nil && !vfs.IsNotExist(err) {
				return fmt.Errorf("ledgerstore: remove %s: %w", p, err)
			}
			return nil
		}
		for _, id := range damaged {
			if !logs[id] {
				// Kept for inspection while its log lived.
				if err := remove(indexName(d.path, id) + damagedSuffix); err != nil {
					return 0, err
				}
			}
		}
		for id := range idxs {
			if !logs[id] {
				// The log went first in a deletion that did not finish.
				if err := remove(indexName(d.path, id)); err != nil {
					return 0, err
				}
			}
		}
		for _, id := range sortedKeys(logs) {
			if _, dup := s.state.logs[id]; dup {
				return 0, fmt.Errorf("ledgerstore: %w: entry log %08x in two directories", base.ErrCorruption, id)
			}
			lf := newLogFile(s, id, di)
			var found []indexRun
			if idxs[id] {
				var torn bool
				found, torn, err = readIndexFile(s.fs, lf.idxPath, id, nil)
				switch {
				case errors.Is(err, base.ErrCorruption):
					found, err = s.rebuildIndex(lf, err)
				case err == nil && len(found) == 0 && torn:
					// The only index record is invalid: a crash in the
					// first commit (the data was synced before it, and
					// the journal still holds it) or damage to a
					// committed one (then the log is the only copy).
					// Rebuilding is right either way.
					found, err = s.rebuildIndex(lf, fmt.Errorf("ledgerstore: %s: its only index record is invalid", lf.idxPath))
				}
				if err != nil {
					return 0, err
				}
			}
			if len(found) == 0 {
				// Never committed (a crash in its first flush) or half
				// deleted: nothing in it was promised.
				s.log.Info("removing entry log without committed data", "file", lf.path)
				if err := remove(lf.idxPath); err != nil {
					return 0, err
				}
				if err := remove(lf.path); err != nil {
					return 0, err
				}
				continue
			}
			fi, err := s.fs.Stat(lf.path)
			if err != nil {
				return 0, fmt.Errorf("ledgerstore: stat %s: %w", lf.path, err)
			}
			lf.size = fi.Size()
			runs = append(runs, found...)
			s.state.logs[id] = lf
		}
		if removed {
			if err := s.fs.SyncDir(d.path); err != nil {
				return 0, fmt.Errorf("ledgerstore: sync dir %s: %w", d.path, err)
			}
		}
	}
	s.state.nextLogID = maxID + 1

	// Apply in flush order; for the same sequence (a compaction copy and
	// its source) the higher log id wins. Either holds the same bytes.
	slices.SortStableFunc(runs, func(a, b indexRun) int {
		if c := cmp.Compare(a.seq, b.seq); c != 0 {
			return c
		}
		return cmp.Compare(a.log, b.log)
	})
	var maxSeq uint64
	for i := range runs {
		r := &runs[i]
		maxSeq = max(maxSeq, r.seq)
		lf := s.state.logs[r.log]
		lf.maxSeq = max(lf.maxSeq, r.seq)
		if _, ok := lf.ledgers[r.ledger]; !ok {
			lf.ledgers[r.ledger] = 0
		}
		if _, deleted := s.meta.mu.deleted[r.ledger]; deleted {
			continue
		}
		if _, ok := s.meta.mu.ledgers[r.ledger]; !ok {
			// Entries flushed before the ledger's metadata was: it exists.
			s.meta.mu.ledgers[r.ledger] = &ledgerMeta{}
		}
		li := s.state.ledgers[r.ledger]
		if li == nil {
			li = newLedgerIndex()
			s.state.ledgers[r.ledger] = li
		}
		var added int64
		r.each(func(e base.EntryID, off, size uint32) {
			s.replaceSlotLocked(r.ledger, li.set(e, slot{log: r.log, off: off, size: size}))
			added += int64(size)
		})
		lf.live += added
		lf.ledgers[r.ledger] += added
	}
	return maxSeq, nil
}

// clock is the store's monotonic time in nanoseconds.
func (s *Store) clock() int64 { return int64(time.Since(s.epoch)) }

// replaceSlotLocked accounts for old, a location the index no longer points
// to. The caller holds state.mu for writing.
func (s *Store) replaceSlotLocked(l base.LedgerID, old slot) {
	if old.empty() {
		return
	}
	if lf := s.state.logs[old.log]; lf != nil {
		lf.live -= int64(old.size)
		lf.ledgers[l] -= int64(old.size)
	}
}

// readIndexFile reads the committed runs of an entry log's index file and
// appends them to runs. torn reports an invalid last record, ignored as a
// torn tail.
func readIndexFile(fs vfs.FS, name string, id uint32, runs []indexRun) (_ []indexRun, torn bool, err error) {
	f, err := fs.Open(name)
	if err != nil {
		return runs, false, fmt.Errorf("ledgerstore: open %s: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return runs, false, fmt.Errorf("ledgerstore: stat %s: %w", name, err)
	}
	rd := record.NewReader(f, fi.Size(), id, record.FileHeaderSize)
	var hb [record.FileHeaderSize]byte
	if n, _ := f.ReadAt(hb[:], 0); n < len(hb) {
		return runs, false, nil // created, never committed
	}
	if _, err := record.DecodeFileHeader(hb[:], indexMagic); err != nil {
		// The header is synced with the first commit: a bad header with
		// committed records after it is corruption, without is a file
		// never committed.
		if p, found := rd.NextValidAfter(0, 1); found {
			return runs, false, fmt.Errorf("ledgerstore: %s: %w: bad file header (%w) before a valid record at %d",
				name, base.ErrCorruption, err, p)
		}
		return runs, false, nil
	}
	for {
		off := rd.Offset()
		h, payload, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return runs, false, nil
		}
		if err != nil {
			if !errors.Is(err, record.ErrTorn) {
				return runs, false, fmt.Errorf("ledgerstore: %s: %w", name, err)
			}
			// One record per sync: only the last can be torn.
			if p, found := rd.NextValidAfter(off, 1); found {
				return runs, false, fmt.Errorf("ledgerstore: %s offset %d: %w: invalid record followed by a valid one at %d",
					name, off, base.ErrCorruption, p)
			}
			return runs, true, nil
		}
		if h.Kind != record.KindMeta {
			return runs, false, fmt.Errorf("ledgerstore: %s offset %d: %w: record kind %d", name, off, base.ErrCorruption, h.Kind)
		}
		p := slices.Clone(payload) // runs point into it
		if _, runs, err = decodePartIndex(p, id, runs); err != nil {
			return runs, false, fmt.Errorf("ledgerstore: %s offset %d: %w: %w", name, off, base.ErrCorruption, err)
		}
	}
}

func sortedKeys[V any](m map[uint32]V) []uint32 {
	keys := make([]uint32, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Mode reports whether the store accepts adds.
func (s *Store) Mode() Mode { return Mode(s.mode.Load()) }

// updateMode recomputes the mode from the directories' states and, on a
// change, tells the write cache, the flusher and the callback.
func (s *Store) updateMode() {
	s.modeMu.Lock()
	defer s.modeMu.Unlock()
	want := ReadOnly
	for _, d := range s.dirs {
		if d.writable() {
			want = Writable
			break
		}
	}
	if Mode(s.mode.Load()) == want {
		return
	}
	s.mode.Store(int32(want))
	s.wc.setReadOnly(want == ReadOnly)
	if want == Writable {
		s.kickFlush()
		s.log.Info("ledger directories writable again")
	} else {
		s.log.Warn("every ledger directory is full: read-only")
	}
	if s.opts.OnModeChange != nil {
		s.opts.OnModeChange(want)
	}
}

// Close flushes what the write cache holds, stops the background work and
// closes the files. The store is unusable afterwards. A flush failure is
// returned; what was not flushed is not lost for the bookie, whose journal
// holds it.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		err = s.Flush(context.Background())
		s.closed.Store(true)
		s.wc.close()
		close(s.closing)
		s.wg.Wait()
		s.ra.close()
		for i, w := range s.writers {
			if w != nil {
				w.retire()
				s.writers[i] = nil
			}
		}
		s.closeLogs()
		if cerr := s.cat.close(); err == nil {
			err = cerr
		}
		s.wc.releaseAll()
		s.rc.releaseAll()
		s.unlock()
	})
	return err
}

func (s *Store) closeLogs() {
	s.state.Lock()
	logs := s.state.logs
	s.state.logs = map[uint32]*logFile{}
	s.state.Unlock()
	for _, lf := range logs {
		lf.release()
	}
}

// isClosed reports whether Close has begun.
func (s *Store) isClosed() bool { return s.closed.Load() }
