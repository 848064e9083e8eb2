package managedledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/metastore"
)

// MLFactory implements Factory: it opens managed ledgers over a metadata
// store and a BookKeeper and owns what they share (the entry cache, the
// maintenance pass).
type MLFactory struct {
	opts  Options
	store metastore.Store
	bk    BookKeeper
	cache *cacheManager

	ops     sync.Pool // *addOp
	readers atomic.Int64

	mu struct {
		sync.Mutex
		mls    map[string]*mlSlot
		closed bool
	}
	// ctx is cancelled when the factory closes; background work (ledger
	// creation, metadata writes, reads for cursors) runs under it.
	ctx    context.Context
	cancel context.CancelFunc
	stop   chan struct{}
	wg     sync.WaitGroup
}

// mlSlot is a managed ledger being opened or open.
type mlSlot struct {
	done chan struct{}
	ml   *managedLedger
	err  error
}

// NewFactory makes a factory over opts.Store and opts.BookKeeper. Unless
// opts.MaintenanceInterval is negative, a goroutine runs the maintenance
// pass (time-based rollover, trimming, cache age eviction, retries) until
// Close.
func NewFactory(opts Options) (*MLFactory, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	f := &MLFactory{opts: opts, store: opts.Store, bk: opts.BookKeeper, stop: make(chan struct{})}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.cache = newCacheManager(opts.CacheSizeBytes, opts.Now)
	f.ops.New = func() any { return new(addOp) }
	f.mu.mls = make(map[string]*mlSlot)
	if opts.MaintenanceInterval > 0 {
		f.wg.Add(1)
		go f.maintenanceLoop()
	}
	return f, nil
}

// RunMaintenance runs one maintenance pass over every open managed ledger
// now (tests with a fake clock call it instead of waiting).
func (f *MLFactory) RunMaintenance() { f.maintain() }

// CacheStats reports the entry cache's size and counters.
func (f *MLFactory) CacheStats() CacheStats {
	c := f.cache
	return CacheStats{Bytes: c.size.Load(), Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evicted.Load()}
}

var _ Factory = (*MLFactory)(nil)

// CacheStats describes the entry cache.
type CacheStats struct {
	Bytes                   int64
	Hits, Misses, Evictions int64
}

func (f *MLFactory) getOp() *addOp { return f.ops.Get().(*addOp) }

func (f *MLFactory) putOp(op *addOp) {
	*op = addOp{}
	f.ops.Put(op)
}

func (f *MLFactory) maintenanceLoop() {
	defer f.wg.Done()
	t := time.NewTicker(f.opts.MaintenanceInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			f.maintain()
		case <-f.stop:
			return
		}
	}
}

func (f *MLFactory) openMLs() []*managedLedger {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*managedLedger, 0, len(f.mu.mls))
	for _, s := range f.mu.mls {
		select {
		case <-s.done:
			if s.ml != nil {
				out = append(out, s.ml)
			}
		default:
		}
	}
	return out
}

func (f *MLFactory) maintain() {
	now := f.opts.Now()
	for _, ml := range f.openMLs() {
		ml.maintain(now)
	}
	if f.opts.CacheEvictionTimeThreshold > 0 {
		f.cache.evictOlderThan(now.Add(-f.opts.CacheEvictionTimeThreshold))
	}
	f.cache.evict()
}

func (f *MLFactory) Open(ctx context.Context, name string, cfg Config) (ManagedLedger, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, fmt.Errorf("%w: empty managed ledger name", ErrBadConfig)
	}
	if err := metastore.ValidatePath(metastore.ManagedLedgerPath(name)); err != nil {
		return nil, fmt.Errorf("%w: managed ledger name %q: %w", ErrBadConfig, name, err)
	}
	for {
		f.mu.Lock()
		if f.mu.closed {
			f.mu.Unlock()
			return nil, fmt.Errorf("%w: factory", ErrClosed)
		}
		s := f.mu.mls[name]
		if s == nil {
			s = &mlSlot{done: make(chan struct{})}
			f.mu.mls[name] = s
			f.mu.Unlock()
			s.ml, s.err = f.openML(ctx, name, cfg)
			if s.err != nil {
				f.mu.Lock()
				delete(f.mu.mls, name)
				f.mu.Unlock()
			}
			close(s.done)
			if s.err != nil {
				return nil, s.err
			}
			return s.ml, nil
		}
		f.mu.Unlock()
		select {
		case <-s.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if s.err == nil {
			s.ml.mu.Lock()
			usable := s.ml.mu.state == mlOpen
			s.ml.mu.Unlock()
			if usable {
				return s.ml, nil
			}
			// Fenced or closing: wait for it to leave the map and open anew.
			f.forget(name, s.ml)
		}
	}
}

// forget removes ml from the open set (when it closes).
func (f *MLFactory) forget(name string, ml *managedLedger) {
	f.mu.Lock()
	if s := f.mu.mls[name]; s != nil && s.ml == ml {
		delete(f.mu.mls, name)
	}
	f.mu.Unlock()
}

// openML reads (or creates) the metadata, recovers the ledgers left open
// by a previous owner, starts a new ledger, persists the new list, and
// recovers the cursors.
func (f *MLFactory) openML(ctx context.Context, name string, cfg Config) (*managedLedger, error) {
	ml := &managedLedger{f: f, name: name, path: metastore.ManagedLedgerPath(name), cfg: cfg,
		log: f.opts.Logger, ctx: f.ctx}
	var err error
	for attempt := 0; ; attempt++ {
		err = ml.initialize(ctx)
		if err == nil || !errors.Is(err, metastore.ErrBadVersion) || attempt == 4 {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	ml.cache = f.cache.newCache()
	if err := ml.recoverCursors(ctx); err != nil {
		_ = ml.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	ml.scheduleTrim()
	return ml, nil
}

func (ml *managedLedger) initialize(ctx context.Context) error {
	f := ml.f
	var info mlInfo
	data, stat, err := f.store.Get(ctx, ml.path)
	switch {
	case errors.Is(err, metastore.ErrNotFound):
		if _, err := f.store.Create(ctx, ml.path, nil, metastore.CreateParents); err != nil {
			if errors.Is(err, metastore.ErrNodeExists) {
				return fmt.Errorf("managedledger: %s created concurrently: %w", ml.name, metastore.ErrBadVersion)
			}
			return fmt.Errorf("managedledger: creating %s: %w", ml.path, err)
		}
		stat = metastore.Stat{Version: 0}
	case err != nil:
		return fmt.Errorf("managedledger: reading %s: %w", ml.path, err)
	default:
		if info, err = unmarshalMLInfo(data); err != nil {
			return fmt.Errorf("managedledger: %s: %w", ml.path, err)
		}
	}
	// Recover the ledgers listed as open: fencing them stops a previous
	// owner's writes, and closes them at their last confirmed entry.
	var handles map[base.LedgerID]ReadLedger
	var empty []base.LedgerID
	ledgers := info.ledgers[:0:0]
	for _, l := range info.ledgers {
		if l.entries > 0 {
			ledgers = append(ledgers, l)
			continue
		}
		rl, err := f.bk.Open(ctx, l.id, true)
		if errors.Is(err, base.ErrNoLedger) {
			continue // created but never used, and gone
		}
		if err != nil {
			for _, h := range handles {
				_ = h.Close()
			}
			return fmt.Errorf("managedledger: %s: recovering ledger %d: %w", ml.name, l.id, err)
		}
		if lac := rl.LastAddConfirmed(); lac >= 0 {
			l.entries, l.size, l.timestamp = int64(lac)+1, rl.Length(), f.opts.Now().UnixMilli()
			ledgers = append(ledgers, l)
			if handles == nil {
				handles = make(map[base.LedgerID]ReadLedger)
			}
			handles[l.id] = rl
		} else {
			_ = rl.Close()
			empty = append(empty, l.id)
		}
	}
	wl, err := f.bk.Create(ctx, ml.ledgerConfig(""))
	if err != nil {
		for _, h := range handles {
			_ = h.Close()
		}
		return fmt.Errorf("managedledger: %s: creating a ledger: %w", ml.name, err)
	}
	ledgers = append(ledgers, ledgerMeta{id: wl.ID(), open: true})
	newInfo := mlInfo{ledgers: ledgers, properties: info.properties}
	stat, err = f.store.Put(ctx, ml.path, newInfo.marshal(nil), stat.Version)
	if err != nil {
		for _, h := range handles {
			_ = h.Close()
		}
		ml.discardLedger(wl)
		return fmt.Errorf("managedledger: %s: writing metadata: %w", ml.name, err)
	}
	for _, id := range empty {
		if err := f.bk.Delete(ctx, id); err != nil && !errors.Is(err, base.ErrNoLedger) {
			ml.log.Warn("managedledger: deleting an empty recovered ledger failed", "ml", ml.name, "ledger", id, "err", err)
		}
	}
	now := f.opts.Now()
	w := &writeLedger{wl: wl, id: wl.ID(), registered: true}
	ml.mu.Lock()
	defer ml.mu.Unlock()
	ml.mu.ledgers = ledgers
	ml.mu.props = info.properties
	ml.mu.metaVersion = stat.Version
	ml.mu.handles = handles
	ml.mu.writers = []*writeLedger{w}
	ml.mu.lastConfirmed = base.Position{Ledger: w.id, Entry: -1}
	for i := len(ledgers) - 1; i >= 0; i-- {
		if ledgers[i].entries > 0 {
			ml.mu.lastConfirmed = base.Position{Ledger: ledgers[i].id, Entry: base.EntryID(ledgers[i].entries - 1)}
			break
		}
	}
	ml.makeCurrentLocked(w, now)
	return nil
}

// recoverCursors recovers every durable cursor listed under the managed
// ledger's node, so that trimming respects them before they are opened.
func (ml *managedLedger) recoverCursors(ctx context.Context) error {
	names, err := ml.f.store.Children(ctx, ml.path)
	if err != nil {
		return fmt.Errorf("managedledger: listing the cursors of %s: %w", ml.name, err)
	}
	for _, enc := range names {
		name, err := decodeCursorName(enc)
		if err != nil {
			return err
		}
		if _, err := ml.loadCursor(ctx, name, false); err != nil {
			return err
		}
	}
	return nil
}

// loadCursor recovers a durable cursor from the store and registers it,
// replacing a closed instance of the same name.
func (ml *managedLedger) loadCursor(ctx context.Context, name string, active bool) (*cursor, error) {
	md, acks, batches, p, err := ml.recoverCursor(ctx, name)
	if err != nil {
		return nil, err
	}
	ml.mu.Lock()
	defer ml.mu.Unlock()
	for _, c := range ml.mu.cursors {
		if c.durable && c.name == name && !c.shared.closed {
			return nil, fmt.Errorf("managedledger: cursor %s of %s opened concurrently: %w", name, ml.name, base.ErrBusy)
		}
	}
	ml.dropCursorLocked(name)
	c := ml.newCursorLocked(name, true, md)
	c.mu.acks = acks
	c.mu.batches = batches
	c.mu.readPos = ml.nextLocked(md)
	c.shared.readPos = c.mu.readPos
	c.shared.active = active
	c.p = p
	ml.updateCursorLocked()
	return c, nil
}

// dropCursorLocked forgets closed durable cursors named name.
func (ml *managedLedger) dropCursorLocked(name string) {
	out := ml.mu.cursors[:0]
	for _, c := range ml.mu.cursors {
		if !(c.durable && c.name == name && c.shared.closed) {
			out = append(out, c)
		}
	}
	clear(ml.mu.cursors[len(out):])
	ml.mu.cursors = out
}

func (ml *managedLedger) OpenCursor(ctx context.Context, name string, initial InitialPosition) (Cursor, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: empty cursor name", ErrBadConfig)
	}
	ml.mu.Lock()
	if err := ml.writableErrLocked(); err != nil {
		ml.mu.Unlock()
		return nil, err
	}
	var closed bool
	for _, c := range ml.mu.cursors {
		if c.durable && c.name == name {
			if !c.shared.closed {
				if !c.shared.active {
					c.shared.active = true
					ml.updateCursorLocked()
				}
				ml.mu.Unlock()
				return c, nil
			}
			closed = true
		}
	}
	if closed {
		ml.mu.Unlock()
		return ml.loadCursor(ctx, name, true)
	}
	// A new cursor: registered (holding trimming back) before its node
	// exists.
	var md base.Position
	if initial == Earliest {
		first := ml.firstPositionLocked()
		md = base.Position{Ledger: first.Ledger, Entry: first.Entry - 1}
	} else {
		md = ml.mu.lastConfirmed
	}
	c := ml.newCursorLocked(name, true, md)
	ml.mu.Unlock()
	info := cursorInfo{cursorLedger: -1, markDelete: md, lastActive: ml.now().UnixMilli()}
	_, err := ml.f.store.Create(ctx, c.path, info.marshal(nil), 0)
	if err != nil {
		ml.mu.Lock()
		ml.mu.cursors = deleteCursor(ml.mu.cursors, c)
		ml.updateCursorLocked()
		ml.mu.Unlock()
		if errors.Is(err, metastore.ErrNodeExists) {
			return ml.loadCursor(ctx, name, true) // created by a previous owner meanwhile
		}
		return nil, fmt.Errorf("managedledger: creating cursor %s of %s: %w", name, ml.name, err)
	}
	return c, nil
}

func deleteCursor(cs []*cursor, c *cursor) []*cursor {
	for i, x := range cs {
		if x == c {
			return append(cs[:i], cs[i+1:]...)
		}
	}
	return cs
}

func (ml *managedLedger) NewNonDurableCursor(start base.Position) (Cursor, error) {
	ml.mu.Lock()
	defer ml.mu.Unlock()
	if ml.mu.state == mlClosed || ml.mu.state == mlClosing {
		return nil, fmt.Errorf("%w: managed ledger %s", ErrClosed, ml.name)
	}
	md := start
	if start.Ledger < 0 {
		first := ml.firstPositionLocked()
		md = base.Position{Ledger: first.Ledger, Entry: first.Entry - 1}
	} else if ml.mu.lastConfirmed.Less(md) {
		md = ml.mu.lastConfirmed
	}
	name := fmt.Sprintf("reader-%d", ml.f.readers.Add(1))
	c := ml.newCursorLocked(name, false, md)
	return c, nil
}

func (ml *managedLedger) DeleteCursor(ctx context.Context, name string) error {
	ml.mu.Lock()
	var victims []*cursor
	for _, c := range ml.mu.cursors {
		if c.durable && c.name == name {
			victims = append(victims, c)
			c.shared.deleted = true
		}
	}
	ml.mu.Unlock()
	if len(victims) == 0 {
		return fmt.Errorf("%w: cursor %s of %s", ErrNotFound, name, ml.name)
	}
	for _, c := range victims {
		c.stop(false)
	}
	ml.mu.Lock()
	for _, c := range victims {
		ml.mu.cursors = deleteCursor(ml.mu.cursors, c)
	}
	ml.updateCursorLocked()
	ml.mu.Unlock()
	var errs []error
	for _, c := range victims {
		c.persistMu.Lock()
		if c.p.ledger != nil {
			_ = c.p.ledger.Close(ctx)
			c.p.stale = append(c.p.stale, c.p.ledger.ID())
			c.p.ledger = nil
		}
		if c.p.nodeLedger >= 0 {
			c.p.stale = append(c.p.stale, c.p.nodeLedger)
		}
		c.deleteStale(ctx, -1)
		c.persistMu.Unlock()
	}
	if err := ml.f.store.Delete(ctx, ml.path+"/"+encodeCursorName(name), metastore.AnyVersion); err != nil && !errors.Is(err, metastore.ErrNotFound) {
		errs = append(errs, err)
	}
	ml.scheduleTrim()
	return errors.Join(errs...)
}

func (ml *managedLedger) Cursors() []Cursor {
	ml.mu.Lock()
	defer ml.mu.Unlock()
	out := make([]Cursor, 0, len(ml.mu.cursors))
	for _, c := range ml.mu.cursors {
		if !c.shared.closed {
			out = append(out, c)
		}
	}
	return out
}

// Close waits for pending adds (until ctx is done), closes the cursors
// (persisting their state), closes the ledger being written and persists
// the final ledger list.
func (ml *managedLedger) Close(ctx context.Context) error {
	ml.mu.Lock()
	switch ml.mu.state {
	case mlClosed, mlClosing:
		ml.mu.Unlock()
		return nil
	}
	fenced := ml.mu.state == mlFenced
	if !fenced {
		ml.mu.state = mlClosing
		// Adds not handed to a ledger yet fail; those out wait below.
		if ml.mu.waitingOps > 0 {
			ml.failWaitingLocked(fmt.Errorf("%w: managed ledger %s", ErrClosed, ml.name))
		}
	}
	var drained chan struct{}
	if ml.mu.queue.len() > 0 {
		drained = make(chan struct{})
		ml.mu.drained = drained
	}
	cursors := make([]*cursor, 0, len(ml.mu.cursors))
	for _, c := range ml.mu.cursors {
		if !c.shared.closed {
			cursors = append(cursors, c)
		}
	}
	ml.mu.Unlock()
	ml.deliver() // the adds that just failed
	var errs []error
	if drained != nil {
		select {
		case <-drained:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("managedledger: closing %s with adds pending: %w", ml.name, ctx.Err()))
		}
	}
	if !fenced {
		// Make sure we still own the managed ledger before persisting the
		// cursors: a new owner may have recovered them already.
		if err := ml.syncMeta(ctx); err != nil {
			errs = append(errs, err)
			ml.mu.Lock()
			fenced = ml.mu.state == mlFenced
			ml.mu.Unlock()
		}
	}
	if !fenced {
		for _, c := range cursors {
			if err := c.Close(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	} else {
		for _, c := range cursors {
			c.stop(false)
		}
	}
	// Close the ledgers: the current one is closed and kept, the one
	// created ahead (never written) leaves the list and is deleted.
	ml.mu.Lock()
	writers := ml.mu.writers
	ml.mu.writers = nil
	ml.mu.current, ml.mu.ahead = nil, nil
	var deletes []base.LedgerID
	for _, w := range writers {
		i := ml.ledgerIndexLocked(w.id)
		if i < 0 {
			continue
		}
		l := &ml.mu.ledgers[i]
		if l.entries == 0 || w.abandoned {
			ml.mu.ledgers = append(ml.mu.ledgers[:i], ml.mu.ledgers[i+1:]...)
			deletes = append(deletes, w.id)
		} else {
			l.open = false
			l.timestamp = ml.now().UnixMilli()
		}
	}
	for _, d := range ml.mu.toDelete {
		deletes = append(deletes, d.id)
	}
	ml.mu.toDelete = nil
	ml.mu.Unlock()
	for _, w := range writers {
		if err := w.wl.Close(ctx); err != nil && !fenced && !errors.Is(err, base.ErrFenced) {
			errs = append(errs, err)
		}
	}
	if !fenced {
		if err := ml.syncMeta(ctx); err != nil {
			errs = append(errs, err)
		} else {
			for _, id := range deletes {
				ml.deleteLedger(id)
			}
		}
	}
	ml.mu.Lock()
	ml.mu.state = mlClosed
	handles := ml.mu.handles
	ml.mu.handles = nil
	ml.mu.Unlock()
	for _, h := range handles {
		_ = h.Close()
	}
	if ml.cache != nil {
		ml.f.cache.remove(ml.cache)
	}
	ml.f.forget(ml.name, ml)
	return errors.Join(errs...)
}

// ---- Factory: delete, exists, close ----

// Exists reports whether a managed ledger of that name was created.
func (f *MLFactory) Exists(ctx context.Context, name string) (bool, error) {
	_, ok, err := f.store.Exists(ctx, metastore.ManagedLedgerPath(name))
	return ok, err
}

// delete removes a managed ledger: its ledgers, cursor ledgers, cursor
// nodes and node.
func (f *MLFactory) Delete(ctx context.Context, name string) error {
	f.mu.Lock()
	s := f.mu.mls[name]
	f.mu.Unlock()
	if s != nil {
		select {
		case <-s.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if s.ml != nil {
			if err := s.ml.Close(ctx); err != nil {
				return err
			}
		}
	}
	path := metastore.ManagedLedgerPath(name)
	data, _, err := f.store.Get(ctx, path)
	if errors.Is(err, metastore.ErrNotFound) {
		return fmt.Errorf("%w: managed ledger %s", ErrNotFound, name)
	}
	if err != nil {
		return err
	}
	info, err := unmarshalMLInfo(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	children, err := f.store.Children(ctx, path)
	if err != nil {
		return err
	}
	for _, ch := range children {
		cp := path + "/" + ch
		if cd, _, err := f.store.Get(ctx, cp); err == nil {
			if ci, err := unmarshalCursorInfo(cd); err == nil && ci.cursorLedger >= 0 {
				if err := f.bk.Delete(ctx, ci.cursorLedger); err != nil && !errors.Is(err, base.ErrNoLedger) {
					return err
				}
			}
		}
		if err := f.store.Delete(ctx, cp, metastore.AnyVersion); err != nil && !errors.Is(err, metastore.ErrNotFound) {
			return err
		}
	}
	for _, l := range info.ledgers {
		if err := f.bk.Delete(ctx, l.id); err != nil && !errors.Is(err, base.ErrNoLedger) {
			return err
		}
	}
	if err := f.store.Delete(ctx, path, metastore.AnyVersion); err != nil && !errors.Is(err, metastore.ErrNotFound) {
		return err
	}
	return nil
}

// Close closes every open managed ledger and stops the maintenance pass.
func (f *MLFactory) Close() error {
	f.mu.Lock()
	if f.mu.closed {
		f.mu.Unlock()
		return nil
	}
	f.mu.closed = true
	f.mu.Unlock()
	close(f.stop)
	f.wg.Wait()
	var errs []error
	for _, ml := range f.openMLs() {
		if err := ml.Close(context.Background()); err != nil {
			errs = append(errs, err)
		}
	}
	f.cancel()
	return errors.Join(errs...)
}
