package ledger_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/testutil"
	"github.com/magnetar/magnetar/ledger"
	"github.com/magnetar/magnetar/ledger/ledgertest"
	"github.com/magnetar/magnetar/metastore"
	"github.com/magnetar/magnetar/metastore/memory"
)

// testTimeout bounds every wait of the integration tests; a correct client
// never comes near it.
const testTimeout = 30 * time.Second

var quiet = slog.New(slog.DiscardHandler)

// cluster is a memory metadata store and n test bookies registered in it.
type cluster struct {
	t       testing.TB
	srv     *memory.Server
	reg     metastore.Store // the bookies' registration session
	bookies []*ledgertest.Bookie
	discard bool // bookies keep only each ledger's last entry (benchmarks)
}

func newCluster(t testing.TB, n int) *cluster {
	t.Helper()
	return newClusterOf(t, n, false)
}

func newClusterOf(t testing.TB, n int, discard bool) *cluster {
	t.Helper()
	srv := memory.New(metastore.Options{Logger: quiet})
	t.Cleanup(func() { srv.Close() })
	reg, err := srv.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, srv: srv, reg: reg, discard: discard}
	for i := 0; i < n; i++ {
		c.addBookie()
	}
	return c
}

func (c *cluster) addBookie() *ledgertest.Bookie {
	c.t.Helper()
	b, err := ledgertest.Start(ledgertest.Options{Logger: quiet, DiscardEntries: c.discard})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(b.Close)
	if err := b.Register(ctx(c.t), c.reg); err != nil {
		c.t.Fatal(err)
	}
	c.bookies = append(c.bookies, b)
	return b
}

func (c *cluster) bookie(id string) *ledgertest.Bookie {
	for _, b := range c.bookies {
		if b.ID() == id {
			return b
		}
	}
	c.t.Fatalf("no bookie %s", id)
	return nil
}

func (c *cluster) store() metastore.Store {
	c.t.Helper()
	s, err := c.srv.NewSession()
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { s.Close() })
	return s
}

func (c *cluster) client(tune ...func(*ledger.Options)) *ledger.Client {
	c.t.Helper()
	o := ledger.Options{Store: c.store(), Logger: quiet}
	for _, f := range tune {
		f(&o)
	}
	cl, err := ledger.NewClient(o)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return c
}

func payload(l base.LedgerID, e int) []byte {
	return []byte(fmt.Sprintf("ledger %d entry %d %s", l, e, bytes.Repeat([]byte{byte(e)}, e%50)))
}

// adder issues async adds and records their outcomes in call order.
type adder struct {
	t    *testing.T
	h    *ledger.WriteHandle
	mu   sync.Mutex
	got  []result
	sent [][]byte
	done chan struct{}
	want int
}

type result struct {
	entry base.EntryID
	err   error
}

func newAdder(t *testing.T, h *ledger.WriteHandle, want int) *adder {
	return &adder{t: t, h: h, done: make(chan struct{}), want: want}
}

func (a *adder) add(data []byte) {
	buf := bufs.Get(len(data))
	copy(buf.Bytes(), data)
	a.mu.Lock()
	a.sent = append(a.sent, data)
	a.mu.Unlock()
	a.h.AddEntry(buf, ledger.AddFunc(func(e base.EntryID, err error) {
		a.mu.Lock()
		a.got = append(a.got, result{e, err})
		n := len(a.got)
		a.mu.Unlock()
		if n == a.want {
			close(a.done)
		}
	}))
}

func (a *adder) wait() []result {
	a.t.Helper()
	select {
	case <-a.done:
	case <-time.After(testTimeout):
		a.mu.Lock()
		n := len(a.got)
		a.mu.Unlock()
		a.t.Fatalf("%d of %d adds completed", n, a.want)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]result(nil), a.got...)
}

func (a *adder) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.got)
}

// waitFor polls an observable condition until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, testTimeout, what, cond)
}

// readAll reads entries 0..last and checks them against want.
func readAll(t *testing.T, read func(context.Context, base.EntryID, base.EntryID) ([]ledger.Entry, error),
	last base.EntryID, want func(e int) []byte) {
	t.Helper()
	if last < 0 {
		return
	}
	es, err := read(ctx(t), 0, last)
	if err != nil {
		t.Fatalf("read 0..%d: %v", last, err)
	}
	defer ledger.ReleaseEntries(es)
	if len(es) != int(last)+1 {
		t.Fatalf("read %d entries, want %d", len(es), last+1)
	}
	for i, e := range es {
		if e.ID != base.EntryID(i) {
			t.Fatalf("entry %d has id %d", i, e.ID)
		}
		if w := want(i); !bytes.Equal(e.Data.Bytes(), w) {
			t.Fatalf("entry %d: %q, want %q", i, e.Data.Bytes(), w)
		}
	}
}
