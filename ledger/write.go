package ledger

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/wire/bk"
)

// AddCallback is told the outcome of an add. Long-lived pooled structs
// implementing it make adds allocation-free; AddFunc adapts a function.
type AddCallback interface {
	AddComplete(entry base.EntryID, err error)
}

// AddFunc adapts a function to AddCallback.
type AddFunc func(entry base.EntryID, err error)

// AddComplete calls f.
func (f AddFunc) AddComplete(entry base.EntryID, err error) { f(entry, err) }

// WriteHandle is a ledger open for writing by this client: its single
// writer. Methods are safe for concurrent use.
//
// Adds are striped over the current ensemble (entry e goes to ensemble
// indexes (e+i) mod E, i < W) and confirmed once A of them acknowledged
// it and every earlier entry is confirmed. Callbacks run in entry order on
// the handle's own goroutine, one at a time; they must not block for long
// and must not wait for later adds of the same handle (Append from a
// callback would deadlock).
//
// A bookie that fails or does not answer within AddEntryTimeout is
// replaced: the client chooses another bookie, writes a new ensemble
// segment starting at LAC+1 into the metadata (compare-and-set), and
// re-sends every unconfirmed entry of the replaced index to it.
// Confirmations wait while that happens, so no entry is confirmed by
// bookies the metadata does not name. If the metadata says the ledger is
// no longer OPEN, or a bookie answers EFENCED, the handle is fenced: every
// pending and later add fails with an error wrapping ErrFenced (and
// base.ErrFenced).
//
// Lock order: addMu, then mu or a connection's lock (never both).
type WriteHandle struct {
	c        *Client
	id       base.LedgerID
	key      bk.MasterKey
	dig      *bk.Digester
	e, w, a  int
	recovery bool // recovery writer: recovery adds, ensemble changes kept local
	flags    bk.Flags

	lac    atomic.Int64 // last add confirmed
	length atomic.Int64 // ledger length up to the LAC

	addMu        sync.Mutex // serialises adds: ids are assigned and sent in order
	lastPushed   base.EntryID
	lengthPushed int64

	kick     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	loopDone chan struct{}
	ctx      context.Context // for metadata updates; cancelled when the loop ends
	cancel   context.CancelFunc

	mu struct {
		sync.Mutex
		meta     *Metadata
		version  int64
		ensemble []string
		tracker  *addTracker[*pendingAdd]
		failed   map[int]string  // ensemble index -> bookie to replace
		excluded map[string]bool // bookies that failed while writing this ledger
		err      error           // terminal: pending and later adds fail with it
		closing  bool
		stopped  bool // the loop has exited
		refused  []refusedAdd
		drained  chan struct{} // closed by the loop once closing and idle
		closeErr error
		closed   bool
	}
}

// pendingAdd is an add between AddEntry and its callback.
type pendingAdd struct {
	cb      AddCallback
	payload *bufs.Buf // the caller's reference
	length  int64     // ledger length after this entry
	start   int64     // client clock at AddEntry
	head    []byte    // ADD frame up to the payload: frame head, entry header, digest
	arr     [96]byte
}

var pendingAddPool = sync.Pool{New: func() any { return new(pendingAdd) }}

type refusedAdd struct {
	cb    AddCallback
	err   error
	start int64
}

type completion struct {
	entry base.EntryID
	p     *pendingAdd
	err   error
}

func newWriteHandle(c *Client, id base.LedgerID, md *Metadata, version int64, key bk.MasterKey, dig *bk.Digester,
	recovery bool, lac base.EntryID, length int64) *WriteHandle {
	h := &WriteHandle{
		c: c, id: id, key: key, dig: dig,
		e: md.EnsembleSize, w: md.WriteQuorum, a: md.AckQuorum,
		recovery:   recovery,
		lastPushed: lac, lengthPushed: length,
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	if recovery {
		h.flags = bk.FlagRecoveryAdd | bk.FlagHighPriority
	}
	h.lac.Store(int64(lac))
	h.length.Store(length)
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.mu.meta, h.mu.version = md, version
	h.mu.ensemble = md.LastSegment().Bookies
	h.mu.tracker = newAddTracker[*pendingAdd](h.e, h.w, h.a, lac)
	h.mu.failed = map[int]string{}
	h.mu.excluded = map[string]bool{}
	go h.run()
	return h
}

// ID is the ledger id.
func (h *WriteHandle) ID() base.LedgerID { return h.id }

// LastAddConfirmed is the last entry confirmed (-1 before the first).
func (h *WriteHandle) LastAddConfirmed() base.EntryID { return base.EntryID(h.lac.Load()) }

// Length is the number of payload bytes in the confirmed entries.
func (h *WriteHandle) Length() int64 { return h.length.Load() }

// Metadata returns the ledger's metadata as this handle last wrote or read
// it.
func (h *WriteHandle) Metadata() *Metadata {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mu.meta
}

// AddEntry appends payload asynchronously (nil is an empty entry); the
// handle takes over the caller's reference. cb is told the entry id once
// the entry is confirmed, or base.InvalidEntry and the error; callbacks
// arrive in the order of the AddEntry calls. AddEntry blocks while a
// bookie connection has MaxInflight requests outstanding (at most
// AddEntryTimeout).
func (h *WriteHandle) AddEntry(payload *bufs.Buf, cb AddCallback) {
	h.addMu.Lock()
	h.addLocked(payload, cb, -1)
	h.addMu.Unlock()
}

// addRecovered re-adds entry e found by recovery, with the ledger length
// before it as its original header says.
func (h *WriteHandle) addRecovered(e base.EntryID, payload *bufs.Buf, lengthBefore int64, cb AddCallback) {
	h.addMu.Lock()
	defer h.addMu.Unlock()
	if e != h.lastPushed+1 {
		payload.Release()
		cb.AddComplete(e, fmt.Errorf("%w: recovery re-adds entry %d after %d", ErrRecovery, e, h.lastPushed))
		return
	}
	h.addLocked(payload, cb, lengthBefore)
}

// addLocked runs with addMu held.
func (h *WriteHandle) addLocked(payload *bufs.Buf, cb AddCallback, lengthBefore int64) {
	start := h.c.pool.now()
	if payload == nil {
		payload = bufs.Get(0)
	}
	if payload.Len() > bk.DefaultMaxFrameSize-len(pendingAdd{}.arr) {
		h.refuse(payload, cb, fmt.Errorf("ledger: entry of %d bytes: %w", payload.Len(), base.ErrTooLarge), start)
		return
	}
	entry := h.lastPushed + 1
	if lengthBefore >= 0 {
		h.lengthPushed = lengthBefore
	}
	length := h.lengthPushed + int64(payload.Len())

	p := pendingAddPool.Get().(*pendingAdd)
	p.cb, p.payload, p.length, p.start = cb, payload, length, start
	p.head = bk.AppendAddRequestHead(p.arr[:0], h.flags, &h.key, h.dig.HeaderLen()+payload.Len())
	p.head = h.dig.AppendEntryHeader(p.head, bk.EntryHeader{
		LedgerID: h.id, EntryID: entry, LAC: base.EntryID(h.lac.Load()), Length: length,
	}, payload.Bytes())

	// Build the requests before locking: each holds a copy of the head and
	// a reference to the payload, independent of p's life.
	var reqs [MaxEnsembleSize]*request
	for i := 0; i < h.w; i++ {
		reqs[i] = h.newAddRequest(entry, writeSetIndex(entry, i, h.e), p)
	}

	h.mu.Lock()
	if err := h.refusalLocked(); err != nil {
		h.mu.Unlock()
		for i := 0; i < h.w; i++ {
			reqs[i].drop()
		}
		*p = pendingAdd{}
		pendingAddPool.Put(p)
		h.refuse(payload, cb, err, start)
		return
	}
	h.mu.tracker.push(p)
	ens := h.mu.ensemble
	h.mu.Unlock()
	h.lastPushed, h.lengthPushed = entry, length
	for i := 0; i < h.w; i++ {
		r := reqs[i]
		r.bookie = ens[r.index]
		h.c.pool.get(r.bookie, bk.ProtocolV2, h.id).send(r)
	}
}

func (h *WriteHandle) newAddRequest(e base.EntryID, idx int, p *pendingAdd) *request {
	r := newRequest()
	r.head = append(r.head, p.head...)
	r.payload = p.payload.Retain()
	r.key = reqKey{ledger: h.id, entry: int64(e), op: bk.OpAddEntry}
	r.target = h
	r.index = idx
	r.entry = e
	r.deadline = h.c.pool.deadline(h.c.opts.AddEntryTimeout)
	return r
}

func (h *WriteHandle) refusalLocked() error {
	switch {
	case h.mu.err != nil:
		return h.mu.err
	case h.mu.closing:
		return ErrHandleClosed
	}
	return nil
}

// refuse fails an add that was not pushed, after every pending one.
func (h *WriteHandle) refuse(payload *bufs.Buf, cb AddCallback, err error, start int64) {
	payload.Release()
	h.mu.Lock()
	if h.mu.stopped {
		h.mu.Unlock()
		h.report(start, err)
		cb.AddComplete(base.InvalidEntry, err)
		return
	}
	h.mu.refused = append(h.mu.refused, refusedAdd{cb: cb, err: err, start: start})
	h.mu.Unlock()
	h.wake()
}

func (h *WriteHandle) wake() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// complete takes a bookie's answer to an add (the responder of add
// requests).
func (h *WriteHandle) complete(r *request, res *response) {
	err := res.failure()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mu.ensemble[r.index] != r.bookie || h.mu.err != nil {
		return // from a replaced bookie, or too late to matter
	}
	switch {
	case err == nil:
		if h.mu.tracker.ack(r.entry, r.index) && h.mu.tracker.ready() {
			h.wake()
		}
	case errors.Is(err, base.ErrFenced):
		h.mu.err = fmt.Errorf("%w: ledger %d: bookie %s refused entry %d", ErrFenced, h.id, r.bookie, r.entry)
		h.wake()
	case errors.Is(err, base.ErrUnauthorized):
		h.mu.err = fmt.Errorf("%w: ledger %d: bookie %s refused the master key", ErrUnauthorized, h.id, r.bookie)
		h.wake()
	default:
		if _, ok := h.mu.failed[r.index]; !ok {
			h.c.log.Info("ledger: bookie failed an add; replacing it", "ledger", h.id, "entry", r.entry,
				"bookie", r.bookie, "index", r.index, "err", err)
		}
		h.mu.failed[r.index] = r.bookie
		h.wake()
	}
}

// run is the handle's goroutine: it delivers completions in order and
// carries out ensemble changes.
func (h *WriteHandle) run() {
	defer close(h.loopDone)
	var batch []completion
	for {
		select {
		case <-h.kick:
			batch = h.process(batch)
		case <-h.stop:
			h.process(batch)
			h.mu.Lock()
			h.mu.stopped = true
			refused := h.mu.refused
			h.mu.refused = nil
			h.mu.Unlock()
			h.cancel()
			for _, f := range refused {
				h.report(f.start, f.err)
				f.cb.AddComplete(base.InvalidEntry, f.err)
			}
			return
		}
	}
}

func (h *WriteHandle) process(batch []completion) []completion {
	for {
		h.mu.Lock()
		if h.mu.err == nil && len(h.mu.failed) > 0 {
			h.mu.Unlock()
			h.changeEnsemble()
			continue
		}
		batch = batch[:0]
		if err := h.mu.err; err != nil {
			h.mu.tracker.popAll(func(e base.EntryID, p *pendingAdd) {
				batch = append(batch, completion{entry: e, p: p, err: err})
			})
		} else {
			h.mu.tracker.popReady(func(e base.EntryID, p *pendingAdd) {
				batch = append(batch, completion{entry: e, p: p})
			})
			if n := len(batch); n > 0 {
				h.length.Store(batch[n-1].p.length)
				h.lac.Store(int64(batch[n-1].entry))
			}
		}
		var refused []refusedAdd
		if h.mu.tracker.pending() == 0 {
			refused = h.mu.refused
			h.mu.refused = nil
			if h.mu.closing && h.mu.drained != nil {
				close(h.mu.drained)
				h.mu.drained = nil
			}
		}
		h.mu.Unlock()
		if len(batch) == 0 && len(refused) == 0 {
			return batch
		}
		for i, c := range batch {
			entry := c.entry
			if c.err != nil {
				entry = base.InvalidEntry
			}
			c.p.payload.Release()
			h.report(c.p.start, c.err)
			c.p.cb.AddComplete(entry, c.err)
			*c.p = pendingAdd{}
			pendingAddPool.Put(c.p)
			batch[i] = completion{}
		}
		for _, f := range refused {
			h.report(f.start, f.err)
			f.cb.AddComplete(base.InvalidEntry, f.err)
		}
	}
}

func (h *WriteHandle) report(start int64, err error) {
	if hook := h.c.opts.Hooks.AddCompleted; hook != nil {
		hook(h.id, time.Duration(h.c.pool.now()-start), err)
	}
}

// changeEnsemble replaces the failed bookies (see WriteHandle).
func (h *WriteHandle) changeEnsemble() {
	h.mu.Lock()
	failed := maps.Clone(h.mu.failed)
	oldEns := h.mu.ensemble
	h.mu.tracker.setHold(true)
	segStart := h.mu.tracker.LAC() + 1
	md, version := h.mu.meta, h.mu.version
	exclude := maps.Clone(h.mu.excluded)
	for _, b := range failed {
		h.mu.excluded[b] = true
		exclude[b] = true
	}
	h.mu.Unlock()
	for _, b := range oldEns {
		exclude[b] = true
	}

	newEns, err := h.chooseReplacements(oldEns, failed, exclude)
	if err == nil {
		if h.recovery {
			md, err = withEnsemble(md.Clone(), oldEns, segStart, newEns)
		} else {
			md, version, err = h.c.meta.update(h.ctx, h.id, md, version, func(m *Metadata) (*Metadata, error) {
				switch m.State {
				case StateInRecovery:
					return nil, fmt.Errorf("%w: ledger %d is being recovered", ErrFenced, h.id)
				case StateClosed:
					return nil, fmt.Errorf("%w: ledger %d was closed by another client", ErrFenced, h.id)
				}
				return withEnsemble(m, oldEns, segStart, newEns)
			})
		}
	}

	var resend []*request
	h.mu.Lock()
	if err != nil {
		if h.mu.err == nil {
			h.mu.err = fmt.Errorf("ledger %d: ensemble change: %w", h.id, err)
		}
	} else {
		h.mu.meta, h.mu.version = md, version
		h.mu.ensemble = newEns
		for idx, b := range failed {
			if h.mu.failed[idx] == b {
				delete(h.mu.failed, idx)
			}
			h.mu.tracker.replace(idx, func(e base.EntryID, p *pendingAdd) {
				r := h.newAddRequest(e, idx, p)
				r.bookie = newEns[idx]
				resend = append(resend, r)
			})
		}
	}
	h.mu.tracker.setHold(false)
	h.mu.Unlock()
	if err != nil {
		h.c.log.Warn("ledger: ensemble change failed", "ledger", h.id, "err", err)
		return
	}
	for idx, b := range failed {
		h.c.log.Info("ledger: ensemble changed", "ledger", h.id, "from_entry", segStart, "index", idx,
			"replaced", b, "by", newEns[idx])
		if hook := h.c.opts.Hooks.EnsembleChanged; hook != nil {
			hook(h.id, segStart, idx, b, newEns[idx])
		}
	}
	for _, r := range resend {
		h.c.pool.get(r.bookie, bk.ProtocolV2, h.id).send(r)
	}
	h.wake()
}

func (h *WriteHandle) chooseReplacements(oldEns []string, failed map[int]string, exclude map[string]bool) ([]string, error) {
	repl, err := h.c.place.choose(len(failed), exclude)
	if errors.Is(err, ErrNotEnoughBookies) {
		if rerr := h.c.place.refresh(h.ctx); rerr == nil {
			repl, err = h.c.place.choose(len(failed), exclude)
		}
	}
	if err != nil {
		return nil, err
	}
	newEns := slices.Clone(oldEns)
	idxs := slices.Sorted(maps.Keys(failed))
	for k, idx := range idxs {
		newEns[idx] = repl[k]
	}
	return newEns, nil
}

// withEnsemble makes newEns the ensemble from entry first on: it replaces
// the last segment if that starts at first, or appends a segment. The last
// segment must still be oldEns.
func withEnsemble(m *Metadata, oldEns []string, first base.EntryID, newEns []string) (*Metadata, error) {
	last := &m.Segments[len(m.Segments)-1]
	if !slices.Equal(last.Bookies, oldEns) {
		return nil, fmt.Errorf("%w: the current ensemble is %v, expected %v", ErrMetadataConflict, last.Bookies, oldEns)
	}
	switch {
	case last.FirstEntry == first:
		last.Bookies = slices.Clone(newEns)
	case last.FirstEntry < first:
		m.Segments = append(m.Segments, Segment{FirstEntry: first, Bookies: slices.Clone(newEns)})
	default:
		return nil, fmt.Errorf("%w: the last segment starts at %d, after %d", ErrMetadataConflict, last.FirstEntry, first)
	}
	return m, nil
}

// Append adds payload (copied) and waits for its confirmation. If ctx ends
// first it returns ctx's error; the add may still be confirmed later.
func (h *WriteHandle) Append(ctx context.Context, payload []byte) (base.EntryID, error) {
	buf := bufs.Get(len(payload))
	copy(buf.Bytes(), payload)
	done := make(chan completion, 1)
	h.AddEntry(buf, AddFunc(func(e base.EntryID, err error) { done <- completion{entry: e, err: err} }))
	select {
	case c := <-done:
		return c.entry, c.err
	case <-ctx.Done():
		return base.InvalidEntry, ctx.Err()
	}
}

// Read reads confirmed entries first..last of this ledger (see
// ReadHandle.Read).
func (h *WriteHandle) Read(ctx context.Context, first, last base.EntryID) ([]Entry, error) {
	if lac := h.LastAddConfirmed(); last > lac {
		return nil, fmt.Errorf("%w: ledger %d, entry %d, LAC %d", ErrBeyondLAC, h.id, last, lac)
	}
	h.mu.Lock()
	md := h.mu.meta
	h.mu.Unlock()
	return h.c.read(ctx, readSpec{ledger: h.id, dig: h.dig, md: md}, first, last)
}

// Close waits for the pending adds, then records the ledger as CLOSED in
// its metadata with its last entry and length. Adds after Close fail with
// ErrHandleClosed. If ctx ends first Close returns its error and may be
// called again.
func (h *WriteHandle) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.mu.closed {
		err := h.mu.closeErr
		h.mu.Unlock()
		return err
	}
	h.mu.closing = true
	if h.mu.drained == nil {
		h.mu.drained = make(chan struct{})
	}
	drained := h.mu.drained
	h.mu.Unlock()
	h.wake()
	select {
	case <-drained:
	case <-h.loopDone:
	case <-ctx.Done():
		return ctx.Err()
	}
	h.shutdown()
	err := h.closeMetadata(ctx)
	h.mu.Lock()
	h.mu.closed, h.mu.closeErr = true, err
	h.mu.Unlock()
	h.c.forgetWriter(h)
	return err
}

// shutdown stops the handle's goroutine (after it delivered everything).
func (h *WriteHandle) shutdown() {
	h.stopOnce.Do(func() { close(h.stop) })
	<-h.loopDone
}

// abort fails everything pending with err and stops the handle (client
// shutdown); the metadata is left as it is.
func (h *WriteHandle) abort(err error) {
	h.mu.Lock()
	if h.mu.err == nil {
		h.mu.err = err
	}
	h.mu.Unlock()
	h.shutdown()
}

func (h *WriteHandle) closeMetadata(ctx context.Context) error {
	if h.recovery {
		return nil
	}
	lac, length := h.LastAddConfirmed(), h.Length()
	h.mu.Lock()
	md, version := h.mu.meta, h.mu.version
	h.mu.Unlock()
	md, version, err := h.c.meta.update(ctx, h.id, md, version, func(m *Metadata) (*Metadata, error) {
		switch m.State {
		case StateClosed:
			if m.LastEntry < lac {
				return nil, fmt.Errorf("%w: ledger %d closed by another client at entry %d, before the confirmed entry %d",
					ErrMetadataConflict, h.id, m.LastEntry, lac)
			}
			return nil, nil
		case StateInRecovery:
			return nil, fmt.Errorf("%w: ledger %d is being recovered", ErrFenced, h.id)
		}
		m.State, m.LastEntry, m.Length = StateClosed, lac, length
		return m, nil
	})
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.mu.meta, h.mu.version = md, version
	h.mu.Unlock()
	return nil
}
