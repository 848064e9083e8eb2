package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/wire/pulsar"
	"github.com/magnetar/magnetar/managedledger"
	"github.com/magnetar/magnetar/metastore"
	"github.com/magnetar/magnetar/metastore/memory"
)

// mlWorld is a managed ledger over the in-memory BookKeeper and metadata
// store, with a cursor for the dispatcher under test.
type mlWorld struct {
	t      *testing.T
	pool   *bufs.Pool
	srv    *memory.Server
	bk     *managedledger.MemBookKeeper
	f      *managedledger.MLFactory
	ml     managedledger.ManagedLedger
	cursor managedledger.Cursor
}

func newMLWorld(t *testing.T, cfg managedledger.Config) *mlWorld {
	t.Helper()
	w := &mlWorld{t: t, pool: bufs.NewPool(), srv: memory.New(metastore.Options{})}
	w.bk = managedledger.NewMemBookKeeper(w.pool)
	store, err := w.srv.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	w.f, err = managedledger.NewFactory(managedledger.Options{
		Store: store, BookKeeper: w.bk, Pool: w.pool,
		MaintenanceInterval: -1, MarkDeleteRateLimit: -1,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg.EnsembleSize, cfg.WriteQuorum, cfg.AckQuorum = 1, 1, 1
	if w.ml, err = w.f.Open(ctx, "public/default/persistent/dispatch", cfg); err != nil {
		t.Fatal(err)
	}
	if w.cursor, err = w.ml.OpenCursor(ctx, "sub", managedledger.Earliest); err != nil {
		t.Fatal(err)
	}
	return w
}

// close shuts everything down and checks that every buffer went back.
func (w *mlWorld) close(d *Dispatcher) {
	d.Close()
	ctx := context.Background()
	if err := w.ml.Close(ctx); err != nil {
		w.t.Error(err)
	}
	if err := w.f.Close(); err != nil {
		w.t.Error(err)
	}
	_ = w.bk.Close()
	_ = w.srv.Close()
	if n := w.pool.LiveBuffers(); n != 0 {
		w.t.Errorf("%d buffers leaked", n)
	}
}

// publish appends entries [from, from+n) made by spec and waits until the
// managed ledger confirmed them.
func (w *mlWorld) publish(from, n int, spec func(i int) entrySpec) {
	w.t.Helper()
	var wg sync.WaitGroup
	recs := make([]posRecorder, n)
	for i := range recs {
		recs[i].wg = &wg
		wg.Add(1)
		w.ml.AddEntry(makeEntry(w.pool, spec(from+i), fmt.Sprintf("m%d", from+i)), &recs[i])
	}
	wg.Wait()
	for _, r := range recs {
		if r.err != nil {
			w.t.Fatal(r.err)
		}
	}
}

type posRecorder struct {
	wg  *sync.WaitGroup
	pos base.Position
	err error
}

func (r *posRecorder) AddEntryComplete(pos base.Position, err error) {
	r.pos, r.err = pos, err
	r.wg.Done()
}

// chanSink passes delivery batches to a consumer goroutine.
type chanSink struct {
	in        chan []Delivery
	onDeliver func([]Delivery)
}

func (s *chanSink) Deliver(batch []Delivery) {
	s.onDeliver(batch)
	s.in <- append([]Delivery(nil), batch...)
}

func (s *chanSink) ActiveConsumerChanged(bool) {}

// drain releases what is left in the channel.
func (s *chanSink) drain() {
	for {
		select {
		case b := <-s.in:
			for _, dl := range b {
				dl.Data.Release()
			}
		default:
			return
		}
	}
}

// TestManagedLedger runs each subscription type over a real managed ledger
// (with ledger rollovers): consumers ack from their own goroutines (Shared
// and Key_Shared ones sometimes ask for a redelivery), one leaves halfway
// without acking its last batch, and entries are published while they
// consume. Every entry is acknowledged exactly once, every key's first
// deliveries come in log order (Key_Shared, Failover), the payload arrives
// as stored, the cursor ends with no backlog and no buffer leaks.
func TestManagedLedger(t *testing.T) {
	for _, typ := range []SubscriptionType{Shared, KeyShared, Failover} {
		t.Run(typ.String(), func(t *testing.T) { testManagedLedger(t, typ) })
	}
}

func testManagedLedger(t *testing.T, typ SubscriptionType) {
	const n, nkeys = 1500, 13
	w := newMLWorld(t, managedledger.Config{MaxEntriesPerLedger: 100, MinRolloverTime: -1})
	d, err := New(w.cursor, Options{Type: typ, MaxReadBatchSize: 32, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	spec := func(i int) entrySpec { return entrySpec{key: fmt.Sprintf("k%d", i%nkeys), msgs: int32(i % 3)} }

	var mu sync.Mutex
	firstSeen := map[base.Position]bool{}
	lastFirst := map[string]base.Position{}
	var orderErr error
	acked := make(chan base.Position, 4*n)

	type consumer struct {
		c    *Consumer
		s    *chanSink
		done chan struct{}
		stop chan struct{}
	}
	start := func(name string, seed uint64, leaveAfter int) *consumer {
		x := &consumer{done: make(chan struct{}), stop: make(chan struct{})}
		var md pulsar.MessageMetadata
		x.s = &chanSink{in: make(chan []Delivery, 4096), onDeliver: func(batch []Delivery) {
			mu.Lock()
			defer mu.Unlock()
			for _, dl := range batch {
				if firstSeen[dl.Pos] {
					continue
				}
				firstSeen[dl.Pos] = true
				raw, _, err := pulsar.ParseEntry(dl.Data.Bytes())
				if err == nil {
					err = md.Decode(raw)
				}
				if err != nil {
					orderErr = fmt.Errorf("delivered entry %v does not parse: %w", dl.Pos, err)
					return
				}
				k := string(md.OrderingKey)
				if l, ok := lastFirst[k]; ok && !l.Less(dl.Pos) && typ != Shared && orderErr == nil {
					orderErr = fmt.Errorf("first delivery of %v (key %s) after %v", dl.Pos, k, l)
				}
				lastFirst[k] = dl.Pos
			}
		}}
		c, err := d.AddConsumer(x.s, ConsumerConfig{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		x.c = c
		go func() {
			defer close(x.done)
			rng := rand.New(rand.NewPCG(seed, 1))
			x.c.Flow(100)
			got := 0
			for {
				var batch []Delivery
				select {
				case batch = <-x.s.in:
				case <-x.stop:
					return
				}
				ps := make([]base.Position, 0, len(batch))
				var msgs uint32
				for _, dl := range batch {
					dl.Data.Release()
					ps = append(ps, dl.Pos)
					msgs += uint32(dl.NumMessages)
				}
				if got += len(batch); leaveAfter > 0 && got >= leaveAfter {
					x.c.Close() // without acking this batch: it goes to the others
					return
				}
				if typ != Failover && rng.IntN(20) == 0 && len(ps) > 1 {
					x.c.RedeliverUnacknowledged(ps[:1])
					ps = ps[1:]
				}
				if err := x.c.Ack(ps...); err != nil {
					t.Error(err)
				}
				for _, p := range ps {
					acked <- p
				}
				x.c.Flow(msgs)
			}
		}()
		return x
	}

	cs := []*consumer{start("alpha", 1, 0), start("beta", 2, 40), start("gamma", 3, 0)}
	for i := 0; i < n; i += 100 {
		w.publish(i, 100, spec)
	}
	seen := map[base.Position]int{}
	deadline := time.After(60 * time.Second)
	for len(seen) < n {
		select {
		case p := <-acked:
			seen[p]++
		case <-deadline:
			mu.Lock()
			fs := len(firstSeen)
			mu.Unlock()
			t.Fatalf("stuck: %d of %d acked, %d delivered, stats %+v", len(seen), n, fs, d.Stats())
		}
	}
	for _, x := range cs {
		x.c.Close()
	}
	d.Close()
	for _, x := range cs {
		close(x.stop)
		<-x.done
		x.s.drain()
	}
	mu.Lock()
	err = orderErr
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	for p, k := range seen {
		if k != 1 {
			t.Fatalf("%v acked %d times", p, k)
		}
	}
	var redelivered uint64
	for _, x := range cs {
		redelivered += x.c.Stats().MsgRedelivered
	}
	if typ != Failover && redelivered == 0 {
		t.Fatalf("nothing was redelivered: the test did not exercise redelivery")
	}
	if b := w.cursor.Backlog(); b != 0 {
		t.Fatalf("backlog %d after everything was acked", b)
	}
	w.close(d)
}
