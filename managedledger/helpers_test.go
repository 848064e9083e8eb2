package managedledger

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/testutil"
	"github.com/magnetar/magnetar/metastore"
	"github.com/magnetar/magnetar/metastore/memory"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a managed-ledger test world: a memory metadata store, an
// in-memory BookKeeper, a buffer pool whose live count is checked at the
// end, a fake clock, and factories over them.
type env struct {
	t     testing.TB
	srv   *memory.Server
	bk    *MemBookKeeper
	pool  *bufs.Pool
	clock *fakeClock
	opts  Options
	fs    []*MLFactory
}

func newEnv(t testing.TB, tweak ...func(*Options)) *env {
	t.Helper()
	e := &env{
		t:     t,
		srv:   memory.New(metastore.Options{}),
		pool:  bufs.NewPool(),
		clock: newFakeClock(),
	}
	e.bk = NewMemBookKeeper(e.pool)
	e.opts = Options{
		BookKeeper:          e.bk,
		Now:                 e.clock.Now,
		MaintenanceInterval: -1,
		MarkDeleteRateLimit: -1,
		Pool:                e.pool,
		Logger:              slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, f := range tweak {
		f(&e.opts)
	}
	t.Cleanup(func() {
		for _, f := range e.fs {
			_ = f.Close()
		}
		_ = e.bk.Close()
		_ = e.srv.Close()
	})
	return e
}

// factory opens a new factory (a new metadata session) over the env's
// stores.
func (e *env) factory() *MLFactory {
	e.t.Helper()
	store, err := e.srv.NewSession()
	if err != nil {
		e.t.Fatal(err)
	}
	opts := e.opts
	opts.Store = store
	f, err := NewFactory(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.fs = append(e.fs, f)
	return f
}

// checkLeaks fails the test if buffers of the env's pool are outstanding
// (call after closing what holds references).
func (e *env) checkLeaks() {
	e.t.Helper()
	if n := e.pool.LiveBuffers(); n != 0 {
		e.t.Fatalf("%d buffers not released", n)
	}
}

func (e *env) buf(s string) *bufs.Buf {
	b := e.pool.Get(len(s))
	copy(b.Bytes(), s)
	return b
}

func open(t testing.TB, f *MLFactory, name string, cfg Config) *managedLedger {
	t.Helper()
	ml, err := f.Open(context.Background(), name, cfg)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	return ml.(*managedLedger)
}

// addResult is the outcome of one add.
type addResult struct {
	pos base.Position
	err error
	tag int
}

// addRecorder records add completions in the order they arrive.
type addRecorder struct {
	mu   sync.Mutex
	got  []addResult
	cond *sync.Cond
}

func newAddRecorder() *addRecorder {
	r := &addRecorder{}
	r.cond = sync.NewCond(&r.mu)
	return r
}

type taggedAdd struct {
	r   *addRecorder
	tag int
}

func (a taggedAdd) AddEntryComplete(pos base.Position, err error) {
	a.r.mu.Lock()
	a.r.got = append(a.r.got, addResult{pos, err, a.tag})
	a.r.mu.Unlock()
	a.r.cond.Broadcast()
}

func (r *addRecorder) cb(tag int) AddEntryCallback { return taggedAdd{r, tag} }

// wait waits until n completions arrived (or the deadline passed).
func (r *addRecorder) wait(t testing.TB, n int) []addResult {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	stop := time.AfterFunc(10*time.Second, r.cond.Broadcast)
	defer stop.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.got) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d adds completed", len(r.got), n)
		}
		r.cond.Wait()
	}
	return append([]addResult(nil), r.got...)
}

// add appends payload and waits for its position.
func (e *env) add(ml ManagedLedger, payload string) base.Position {
	e.t.Helper()
	r := newAddRecorder()
	ml.AddEntry(e.buf(payload), r.cb(0))
	res := r.wait(e.t, 1)[0]
	if res.err != nil {
		e.t.Fatalf("add %q: %v", payload, res.err)
	}
	return res.pos
}

// addN appends n entries "prefix-i" and returns their positions.
func (e *env) addN(ml ManagedLedger, prefix string, n int) []base.Position {
	e.t.Helper()
	r := newAddRecorder()
	for i := 0; i < n; i++ {
		ml.AddEntry(e.buf(fmt.Sprintf("%s-%d", prefix, i)), r.cb(i))
	}
	res := r.wait(e.t, n)
	out := make([]base.Position, n)
	for i, x := range res {
		if x.err != nil {
			e.t.Fatalf("add %d: %v", x.tag, x.err)
		}
		if x.tag != i {
			e.t.Fatalf("completion %d is add %d: out of order", i, x.tag)
		}
		if i > 0 && !out[i-1].Less(x.pos) {
			e.t.Fatalf("positions not increasing: %v then %v", out[i-1], x.pos)
		}
		out[i] = x.pos
	}
	return out
}

// read reads up to n entries now and returns their payloads (releasing
// them).
func read(t testing.TB, c Cursor, n int) ([]string, []base.Position) {
	t.Helper()
	es, err := c.ReadEntries(context.Background(), n, 0)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var ss []string
	var ps []base.Position
	for _, e := range es {
		ss = append(ss, string(e.Data.Bytes()))
		ps = append(ps, e.Pos)
		e.Data.Release()
	}
	return ss, ps
}

// readAll reads until nothing is left.
func readAll(t testing.TB, c Cursor) ([]string, []base.Position) {
	t.Helper()
	var ss []string
	var ps []base.Position
	for {
		s, p := read(t, c, 100)
		if len(s) == 0 {
			return ss, ps
		}
		ss = append(ss, s...)
		ps = append(ps, p...)
	}
}

// readWaiter is a ReadCallback that hands results to a channel.
type readWaiter struct {
	ch chan readResult
}

type readResult struct {
	payloads []string
	pos      []base.Position
	err      error
}

func newReadWaiter() *readWaiter { return &readWaiter{ch: make(chan readResult, 16)} }

func (w *readWaiter) ReadComplete(entries []Entry, err error) {
	var r readResult
	r.err = err
	for _, e := range entries {
		r.payloads = append(r.payloads, string(e.Data.Bytes()))
		r.pos = append(r.pos, e.Pos)
		e.Data.Release()
	}
	w.ch <- r
}

func (w *readWaiter) wait(t testing.TB) readResult {
	t.Helper()
	select {
	case r := <-w.ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("read callback never came")
	}
	return readResult{}
}

func (w *readWaiter) none(t testing.TB) {
	t.Helper()
	select {
	case r := <-w.ch:
		t.Fatalf("unexpected read completion %+v", r)
	default:
	}
}

func mustCursor(t testing.TB, ml ManagedLedger, name string, initial InitialPosition) *cursor {
	t.Helper()
	c, err := ml.OpenCursor(context.Background(), name, initial)
	if err != nil {
		t.Fatalf("open cursor %s: %v", name, err)
	}
	return c.(*cursor)
}

func flush(t testing.TB, c Cursor) {
	t.Helper()
	if err := c.(*cursor).Flush(context.Background()); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// eventually polls cond (an observable state) until it holds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, what, cond)
}

func pos(l, e int64) base.Position {
	return base.Position{Ledger: base.LedgerID(l), Entry: base.EntryID(e)}
}
