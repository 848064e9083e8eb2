package managedledger

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
)

// MemBookKeeper is a BookKeeper held in memory, for tests of the managed
// ledger and of the layers above it (Pulsar's PulsarMockBookKeeper plays the
// same part). It keeps the semantics the managed ledger relies on:
//
//   - ledger ids increase and are never reused;
//   - adds complete in entry order, asynchronously (one completion goroutine
//     for the whole BookKeeper, so idle ledgers cost no goroutine), exactly
//     once each; once an add failed every later add of that ledger fails and
//     its last-add-confirmed stays below the failed entry;
//   - Open with recover fences the ledger: it is closed at its
//     last-add-confirmed, and the writer's pending and later adds fail with
//     base.ErrFenced;
//   - closed ledgers are read-only; reads beyond the last-add-confirmed fail
//     with base.ErrNoEntry; deleted ledgers fail with base.ErrNoLedger.
//
// Entry bytes are copied in (the payload reference is released at once) and
// every read returns fresh buffers from the pool, as a network client would,
// so reference-count checks in tests see what they would see over real
// bookies.
//
// Fault injection: FailNextCreates, FailNextAdd, FailAdds, SetAddDelay,
// HoldAdds/ReleaseAdds (deterministic pipelines) and Hooks (observe or block
// creates, opens and reads).
type MemBookKeeper struct {
	pool *bufs.Pool

	// resolveMu serialises resolving adds and calling their callbacks, so
	// that callbacks of one ledger run in entry order. Lock order:
	// resolveMu, then mu.
	resolveMu sync.Mutex

	mu struct {
		sync.Mutex
		nextID      base.LedgerID
		ledgers     map[base.LedgerID]*memLedger
		failCreates []error
		failNextAdd error
		hooks       MemHooks
		hold        bool
		held        addFIFO // unresolved adds while holding
		queue       addFIFO // adds for the completion goroutine
		free        []*memAdd
		delay       time.Duration
		worker      bool
		closed      bool
		stats       MemStats
	}
	wake chan struct{} // completion goroutine's doorbell (capacity 1)
	done chan struct{}
}

// MemHooks observe and steer a MemBookKeeper. Each may be nil. They run
// without the BookKeeper's locks held, so they may block (to hold an
// operation in flight) or call the BookKeeper.
type MemHooks struct {
	// BeforeCreate runs at the start of Create; an error fails it.
	BeforeCreate func(ctx context.Context) error
	// BeforeOpen runs at the start of Open; an error fails it.
	BeforeOpen func(ctx context.Context, id base.LedgerID, recover bool) error
	// BeforeRead runs at the start of every read (write and read handles);
	// an error fails it.
	BeforeRead func(ctx context.Context, id base.LedgerID, first, last base.EntryID) error
}

// MemStats counts a MemBookKeeper's operations.
type MemStats struct {
	Creates, Opens, RecoveryOpens, Deletes int64
	Adds, FailedAdds                       int64
	Reads, EntriesRead                     int64
}

// MemLedgerInfo describes one ledger of a MemBookKeeper.
type MemLedgerInfo struct {
	ID               base.LedgerID
	Closed, Fenced   bool
	LastAddConfirmed base.EntryID
	Length           int64
	Config           LedgerConfig
}

type memLedger struct {
	id      base.LedgerID
	cfg     LedgerConfig
	entries [][]byte // confirmed entries
	length  int64
	slab    []byte // current allocation chunk for entry copies
	next    base.EntryID
	closed  bool
	fenced  bool
	deleted bool
	failed  error // sticky: every later add fails with it
	// failFrom: adds with entry >= failFrom fail with failErr.
	failFrom base.EntryID
	failErr  error
}

type memAdd struct {
	l     *memLedger
	entry base.EntryID
	data  []byte
	cb    AddCallback
	err   error // decided at submission (injected, or ledger unusable)
	due   time.Time
}

// NewMemBookKeeper returns an empty in-memory BookKeeper whose reads return
// buffers from pool (nil: bufs.Default).
func NewMemBookKeeper(pool *bufs.Pool) *MemBookKeeper {
	if pool == nil {
		pool = bufs.Default
	}
	bk := &MemBookKeeper{pool: pool, wake: make(chan struct{}, 1), done: make(chan struct{})}
	bk.mu.ledgers = make(map[base.LedgerID]*memLedger)
	bk.mu.nextID = 1
	return bk
}

// Close stops the completion goroutine. Adds still queued fail with
// base.ErrClosed.
func (bk *MemBookKeeper) Close() error {
	bk.mu.Lock()
	if bk.mu.closed {
		bk.mu.Unlock()
		return nil
	}
	bk.mu.closed = true
	var q []*memAdd
	for _, f := range []*addFIFO{&bk.mu.queue, &bk.mu.held} {
		for f.len() > 0 {
			q = append(q, f.pop())
		}
	}
	worker := bk.mu.worker
	bk.mu.Unlock()
	if worker {
		close(bk.done)
	}
	bk.resolveMu.Lock()
	defer bk.resolveMu.Unlock()
	for _, a := range q {
		a.cb.AddComplete(a.entry, fmt.Errorf("membk: %w", base.ErrClosed))
	}
	return nil
}

// SetHooks installs hooks (replacing earlier ones).
func (bk *MemBookKeeper) SetHooks(h MemHooks) {
	bk.mu.Lock()
	bk.mu.hooks = h
	bk.mu.Unlock()
}

// FailNextCreates makes the next len(errs) creates fail with errs in turn.
func (bk *MemBookKeeper) FailNextCreates(errs ...error) {
	bk.mu.Lock()
	bk.mu.failCreates = append(bk.mu.failCreates, errs...)
	bk.mu.Unlock()
}

// FailNextAdd makes the next add (to any ledger) fail with err, which also
// fails every later add of that ledger.
func (bk *MemBookKeeper) FailNextAdd(err error) {
	bk.mu.Lock()
	bk.mu.failNextAdd = err
	bk.mu.Unlock()
}

// FailAdds makes the adds of ledger id from entry from on fail with err (a
// bookie failure that no ensemble change can repair).
func (bk *MemBookKeeper) FailAdds(id base.LedgerID, from base.EntryID, err error) {
	bk.mu.Lock()
	if l := bk.mu.ledgers[id]; l != nil {
		l.failFrom, l.failErr = from, err
	}
	bk.mu.Unlock()
}

// SetAddDelay delays every later add's completion by d.
func (bk *MemBookKeeper) SetAddDelay(d time.Duration) {
	bk.mu.Lock()
	bk.mu.delay = d
	bk.mu.Unlock()
}

// HoldAdds(true) keeps later adds pending until ReleaseAdds; HoldAdds(false)
// hands the held ones to the completion goroutine.
func (bk *MemBookKeeper) HoldAdds(on bool) {
	bk.mu.Lock()
	bk.mu.hold = on
	if !on && bk.mu.held.len() > 0 {
		for bk.mu.held.len() > 0 {
			bk.mu.queue.push(bk.mu.held.pop())
		}
		bk.startWorkerLocked()
	}
	bk.mu.Unlock()
	bk.ring()
}

// HeldAdds is the number of adds held by HoldAdds.
func (bk *MemBookKeeper) HeldAdds() int {
	bk.mu.Lock()
	defer bk.mu.Unlock()
	return bk.mu.held.len()
}

// ReleaseAdds completes up to n held adds (all with n < 0), in submission
// order, on the calling goroutine, and returns how many it completed.
func (bk *MemBookKeeper) ReleaseAdds(n int) int {
	bk.resolveMu.Lock()
	defer bk.resolveMu.Unlock()
	done := 0
	for n < 0 || done < n {
		bk.mu.Lock()
		if bk.mu.held.len() == 0 {
			bk.mu.Unlock()
			break
		}
		a := bk.mu.held.pop()
		err := bk.resolveLocked(a)
		cb, entry := a.cb, a.entry
		bk.freeLocked(a)
		bk.mu.Unlock()
		cb.AddComplete(entry, err)
		done++
	}
	return done
}

// Stats returns the operation counters.
func (bk *MemBookKeeper) Stats() MemStats {
	bk.mu.Lock()
	defer bk.mu.Unlock()
	return bk.mu.stats
}

// LedgerIDs returns the ids of the ledgers that exist, ascending.
func (bk *MemBookKeeper) LedgerIDs() []base.LedgerID {
	bk.mu.Lock()
	defer bk.mu.Unlock()
	ids := slices.Collect(maps.Keys(bk.mu.ledgers))
	slices.Sort(ids)
	return ids
}

// Ledger describes ledger id; ok is false if it does not exist.
func (bk *MemBookKeeper) Ledger(id base.LedgerID) (info MemLedgerInfo, ok bool) {
	bk.mu.Lock()
	defer bk.mu.Unlock()
	l := bk.mu.ledgers[id]
	if l == nil {
		return MemLedgerInfo{}, false
	}
	return MemLedgerInfo{
		ID: id, Closed: l.closed, Fenced: l.fenced,
		LastAddConfirmed: base.EntryID(len(l.entries)) - 1, Length: l.length, Config: l.cfg,
	}, true
}

// Create makes a new ledger open for writing.
func (bk *MemBookKeeper) Create(ctx context.Context, cfg LedgerConfig) (WriteLedger, error) {
	bk.mu.Lock()
	hook := bk.mu.hooks.BeforeCreate
	bk.mu.Unlock()
	if hook != nil {
		if err := hook(ctx); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bk.mu.Lock()
	defer bk.mu.Unlock()
	if bk.mu.closed {
		return nil, fmt.Errorf("membk: create: %w", base.ErrClosed)
	}
	if len(bk.mu.failCreates) > 0 {
		err := bk.mu.failCreates[0]
		bk.mu.failCreates = bk.mu.failCreates[1:]
		return nil, err
	}
	if cfg.EnsembleSize < cfg.WriteQuorum || cfg.WriteQuorum < cfg.AckQuorum || cfg.AckQuorum < 1 {
		return nil, fmt.Errorf("membk: create: bad quorums E=%d Qw=%d Qa=%d", cfg.EnsembleSize, cfg.WriteQuorum, cfg.AckQuorum)
	}
	id := bk.mu.nextID
	bk.mu.nextID++
	cfg.Password = slices.Clone(cfg.Password)
	cfg.Custom = maps.Clone(cfg.Custom)
	l := &memLedger{id: id, cfg: cfg, failFrom: -1}
	bk.mu.ledgers[id] = l
	bk.mu.stats.Creates++
	return &memWriteLedger{bk: bk, l: l}, nil
}

// Open opens a ledger for reading, fencing and closing it with recover.
func (bk *MemBookKeeper) Open(ctx context.Context, id base.LedgerID, recover bool) (ReadLedger, error) {
	bk.mu.Lock()
	hook := bk.mu.hooks.BeforeOpen
	bk.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, id, recover); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bk.mu.Lock()
	defer bk.mu.Unlock()
	l := bk.mu.ledgers[id]
	if l == nil {
		return nil, fmt.Errorf("membk: open ledger %d: %w", id, base.ErrNoLedger)
	}
	bk.mu.stats.Opens++
	if recover {
		bk.mu.stats.RecoveryOpens++
		l.fenced = true
		l.closed = true
	}
	return &memReadLedger{bk: bk, l: l}, nil
}

// Delete removes a ledger.
func (bk *MemBookKeeper) Delete(ctx context.Context, id base.LedgerID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	bk.mu.Lock()
	defer bk.mu.Unlock()
	l := bk.mu.ledgers[id]
	if l == nil {
		return fmt.Errorf("membk: delete ledger %d: %w", id, base.ErrNoLedger)
	}
	l.deleted = true
	l.entries, l.slab = nil, nil
	delete(bk.mu.ledgers, id)
	bk.mu.stats.Deletes++
	return nil
}

func (bk *MemBookKeeper) add(l *memLedger, payload *bufs.Buf, cb AddCallback) {
	bk.mu.Lock()
	a := bk.newAddLocked()
	*a = memAdd{l: l, cb: cb, entry: l.next}
	l.next++
	bk.mu.stats.Adds++
	switch {
	case bk.mu.closed:
		a.err = fmt.Errorf("membk: %w", base.ErrClosed)
	case bk.mu.failNextAdd != nil:
		a.err = bk.mu.failNextAdd
		bk.mu.failNextAdd = nil
	}
	if a.err == nil {
		a.data = l.copyIn(payload.Bytes())
	}
	payload.Release()
	if bk.mu.closed {
		err, entry := a.err, a.entry
		bk.freeLocked(a)
		bk.mu.Unlock()
		cb.AddComplete(entry, err)
		return
	}
	if bk.mu.hold {
		bk.mu.held.push(a)
		bk.mu.Unlock()
		return
	}
	if bk.mu.delay > 0 {
		a.due = time.Now().Add(bk.mu.delay)
	}
	bk.mu.queue.push(a)
	bk.startWorkerLocked()
	bk.mu.Unlock()
	bk.ring()
}

// copyIn copies b into the ledger's slab (chunks growing from 4 KiB to
// 1 MiB, so that an idle ledger stays small and a busy one allocates
// rarely).
func (l *memLedger) copyIn(b []byte) []byte {
	if len(b) > 256<<10 {
		return slices.Clone(b)
	}
	if cap(l.slab)-len(l.slab) < len(b) {
		size := min(max(2*cap(l.slab), 4<<10), 1<<20)
		size = max(size, len(b))
		l.slab = make([]byte, 0, size)
	}
	off := len(l.slab)
	l.slab = append(l.slab, b...)
	return l.slab[off:len(l.slab):len(l.slab)]
}

// resolveLocked decides the outcome of an add and records a success.
func (bk *MemBookKeeper) resolveLocked(a *memAdd) error {
	l := a.l
	err := a.err
	switch {
	case l.failed != nil:
		err = l.failed
	case err != nil:
		l.failed = err
	case l.failErr != nil && a.entry >= l.failFrom:
		err = l.failErr
		l.failed = err
	case l.deleted:
		err = fmt.Errorf("membk: ledger %d: %w", l.id, base.ErrNoLedger)
	case l.fenced:
		err = fmt.Errorf("membk: ledger %d: %w", l.id, base.ErrFenced)
	case l.closed:
		err = fmt.Errorf("membk: ledger %d: %w", l.id, base.ErrClosed)
	case a.entry != base.EntryID(len(l.entries)):
		// An earlier add of this ledger failed after this one was queued.
		err = fmt.Errorf("membk: ledger %d: entry %d after a failed add", l.id, a.entry)
	}
	if err != nil {
		if l.failed == nil && !l.closed {
			l.failed = err
		}
		bk.mu.stats.FailedAdds++
		return err
	}
	l.entries = append(l.entries, a.data)
	l.length += int64(len(a.data))
	return nil
}

func (bk *MemBookKeeper) startWorkerLocked() {
	if !bk.mu.worker && !bk.mu.closed {
		bk.mu.worker = true
		go bk.completeLoop()
	}
}

func (bk *MemBookKeeper) ring() {
	select {
	case bk.wake <- struct{}{}:
	default:
	}
}

// completeLoop resolves queued adds in order and calls their callbacks.
func (bk *MemBookKeeper) completeLoop() {
	var timer *time.Timer
	for {
		bk.resolveMu.Lock()
		for {
			bk.mu.Lock()
			if bk.mu.queue.len() == 0 {
				bk.mu.Unlock()
				break
			}
			a := bk.mu.queue.peek()
			if wait := time.Until(a.due); !a.due.IsZero() && wait > 0 {
				bk.mu.Unlock()
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				bk.resolveMu.Unlock()
				select {
				case <-timer.C:
				case <-bk.done:
					return
				}
				bk.resolveMu.Lock()
				continue
			}
			bk.mu.queue.pop()
			err := bk.resolveLocked(a)
			cb, entry := a.cb, a.entry
			bk.freeLocked(a)
			bk.mu.Unlock()
			cb.AddComplete(entry, err)
		}
		bk.resolveMu.Unlock()
		select {
		case <-bk.wake:
		case <-bk.done:
			return
		}
	}
}

func (bk *MemBookKeeper) read(ctx context.Context, l *memLedger, first, last base.EntryID) ([]LedgerEntry, error) {
	bk.mu.Lock()
	hook := bk.mu.hooks.BeforeRead
	bk.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, l.id, first, last); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bk.mu.Lock()
	defer bk.mu.Unlock()
	bk.mu.stats.Reads++
	switch {
	case l.deleted:
		return nil, fmt.Errorf("membk: read ledger %d: %w", l.id, base.ErrNoLedger)
	case first < 0 || last < first || last >= base.EntryID(len(l.entries)):
		return nil, fmt.Errorf("membk: read ledger %d [%d, %d] (last-add-confirmed %d): %w",
			l.id, first, last, len(l.entries)-1, base.ErrNoEntry)
	}
	out := make([]LedgerEntry, 0, last-first+1)
	for e := first; e <= last; e++ {
		src := l.entries[e]
		b := bk.pool.Get(len(src))
		copy(b.Bytes(), src)
		out = append(out, LedgerEntry{ID: e, Data: b})
	}
	bk.mu.stats.EntriesRead += int64(len(out))
	return out, nil
}

type memWriteLedger struct {
	bk *MemBookKeeper
	l  *memLedger
}

func (w *memWriteLedger) ID() base.LedgerID { return w.l.id }

func (w *memWriteLedger) AddEntry(payload *bufs.Buf, cb AddCallback) { w.bk.add(w.l, payload, cb) }

func (w *memWriteLedger) LastAddConfirmed() base.EntryID {
	w.bk.mu.Lock()
	defer w.bk.mu.Unlock()
	return base.EntryID(len(w.l.entries)) - 1
}

func (w *memWriteLedger) Length() int64 {
	w.bk.mu.Lock()
	defer w.bk.mu.Unlock()
	return w.l.length
}

func (w *memWriteLedger) Read(ctx context.Context, first, last base.EntryID) ([]LedgerEntry, error) {
	return w.bk.read(ctx, w.l, first, last)
}

// Close seals the ledger at its last-add-confirmed; adds still pending fail.
func (w *memWriteLedger) Close(ctx context.Context) error {
	w.bk.mu.Lock()
	defer w.bk.mu.Unlock()
	switch {
	case w.l.deleted:
		return fmt.Errorf("membk: close ledger %d: %w", w.l.id, base.ErrNoLedger)
	case w.l.fenced:
		return fmt.Errorf("membk: close ledger %d: %w", w.l.id, base.ErrFenced)
	}
	w.l.closed = true
	return nil
}

type memReadLedger struct {
	bk *MemBookKeeper
	l  *memLedger
}

func (r *memReadLedger) ID() base.LedgerID { return r.l.id }

func (r *memReadLedger) LastAddConfirmed() base.EntryID {
	r.bk.mu.Lock()
	defer r.bk.mu.Unlock()
	return base.EntryID(len(r.l.entries)) - 1
}

func (r *memReadLedger) Length() int64 {
	r.bk.mu.Lock()
	defer r.bk.mu.Unlock()
	return r.l.length
}

func (r *memReadLedger) Read(ctx context.Context, first, last base.EntryID) ([]LedgerEntry, error) {
	return r.bk.read(ctx, r.l, first, last)
}

func (r *memReadLedger) Close() error { return nil }

func (bk *MemBookKeeper) newAddLocked() *memAdd {
	if n := len(bk.mu.free); n > 0 {
		a := bk.mu.free[n-1]
		bk.mu.free = bk.mu.free[:n-1]
		return a
	}
	return new(memAdd)
}

func (bk *MemBookKeeper) freeLocked(a *memAdd) {
	*a = memAdd{}
	if len(bk.mu.free) < 1024 {
		bk.mu.free = append(bk.mu.free, a)
	}
}

// addFIFO is a queue that reuses its array once drained.
type addFIFO struct {
	items []*memAdd
	head  int
}

func (f *addFIFO) len() int       { return len(f.items) - f.head }
func (f *addFIFO) push(a *memAdd) { f.items = append(f.items, a) }
func (f *addFIFO) peek() *memAdd  { return f.items[f.head] }
func (f *addFIFO) pop() *memAdd {
	a := f.items[f.head]
	f.items[f.head] = nil
	f.head++
	if f.head == len(f.items) {
		f.items, f.head = f.items[:0], 0
	}
	return a
}
