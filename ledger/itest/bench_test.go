package itest

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/magnetar/magnetar/engine"
	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/wire/bk"
	"github.com/magnetar/magnetar/journal"
	"github.com/magnetar/magnetar/ledger"
	"github.com/magnetar/magnetar/ledgerstore"
)

// addWindow keeps inflight adds outstanding: a slot is taken before an add
// and given back by its callback, which records the add's latency (from the
// AddEntry call to the callback, closed loop) in an HdrHistogram.
type addWindow struct {
	free   chan *addSlot
	epoch  time.Time
	failed atomic.Int64

	mu   sync.Mutex
	hist *hdrhistogram.Histogram // µs
}

type addSlot struct {
	w     *addWindow
	start int64 // ns since epoch
}

func newAddWindow(inflight int) *addWindow {
	w := &addWindow{free: make(chan *addSlot, inflight), epoch: time.Now(), hist: hdrhistogram.New(1, 60_000_000, 3)}
	for range inflight {
		w.free <- &addSlot{w: w}
	}
	return w
}

func (w *addWindow) take() *addSlot {
	s := <-w.free
	s.start = int64(time.Since(w.epoch))
	return s
}

func (s *addSlot) done(err error) {
	w := s.w
	if err != nil {
		w.failed.Add(1)
	} else {
		lat := (int64(time.Since(w.epoch)) - s.start) / 1000
		w.mu.Lock()
		_ = w.hist.RecordValue(max(lat, 1))
		w.mu.Unlock()
	}
	w.free <- s
}

// drain waits for every outstanding add.
func (w *addWindow) drain() {
	n := cap(w.free)
	held := make([]*addSlot, 0, n)
	for range n {
		held = append(held, <-w.free)
	}
	for _, s := range held {
		w.free <- s
	}
}

func (w *addWindow) report(b *testing.B) {
	b.Helper()
	if n := w.failed.Load(); n > 0 {
		b.Fatalf("%d adds failed", n)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "adds/s")
	b.ReportMetric(float64(w.hist.ValueAtQuantile(50)), "p50-µs")
	b.ReportMetric(float64(w.hist.ValueAtQuantile(99)), "p99-µs")
	b.ReportMetric(float64(w.hist.ValueAtQuantile(99.9)), "p99.9-µs")
}

// engineCB and clientCB adapt a slot to the engine's and the client's
// callback interfaces; being pointer-shaped, they convert to an interface
// without allocating.
type engineCB struct{ s *addSlot }

func (c engineCB) AddComplete(err error) { c.s.done(err) }

type clientCB struct{ s *addSlot }

func (c clientCB) AddComplete(_ base.EntryID, err error) { c.s.done(err) }

// BenchmarkLedgerAdd measures adds of 1 KiB entries with 256 in flight
// (throughput) and with one (latency), in one run:
//
//   - subject=engine: the bare storage engine in this process (engine.Open,
//     AddEntry: write cache, journal group commit, fdatasync), configured
//     as `magnetar bookie` configures it by default;
//   - subject=client: through the ledger client over loopback TCP to
//     `magnetar bookie` processes with their default configuration, to one
//     bookie (E1 W1 A1) and to three (E3 W3 A2, E3 W2 A2).
//
// Every journal and ledger directory, the engine's and the bookies', is in
// a temporary directory on the same disk, so the three-bookie figures pay
// for three journals syncing on one device. allocs/op counts this process
// only (the client, or the engine), not the bookie processes.
//
//	go test ./ledger/itest -run '^$' -bench BenchmarkLedgerAdd -count 3
func BenchmarkLedgerAdd(b *testing.B) {
	const size = 1 << 10
	c := newCluster(b, 3, nil)
	for _, inflight := range []int{256, 1} {
		matrix := fmt.Sprintf("size=1KiB/inflight=%d", inflight)
		b.Run("subject=engine/"+matrix, func(b *testing.B) { benchEngineAdd(b, size, inflight) })
		for _, q := range []quorum{{"E1W1A1", 1, 1, 1}, e3w3a2, e3w2a2} {
			b.Run("subject=client/quorum="+q.name+"/"+matrix, func(b *testing.B) { benchClientAdd(b, c, q, size, inflight) })
		}
	}
}

func benchEngineAdd(b *testing.B, size, inflight int) {
	dir := b.TempDir()
	eng, err := engine.Open(engine.Options{
		Logger: slog.New(slog.DiscardHandler),
		// What `magnetar bookie` sets from its default configuration where
		// it differs from the libraries' defaults.
		Journal: journal.Options{
			Dirs:          []string{filepath.Join(dir, "journal")},
			MaxGroupWait:  time.Millisecond, // journalMaxGroupWaitMSec=1
			QueueMaxBytes: 64 << 20,         // journalQueueMaxBytes
		},
		Storage: ledgerstore.Options{Dirs: []string{filepath.Join(dir, "ledgers")}},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	// The entry as the client sends it: header, CRC32C digest, payload.
	d, err := bk.NewDigester(bk.DigestCRC32C, password)
	if err != nil {
		b.Fatal(err)
	}
	entry := bufs.Wrap(d.AppendEntry(nil, bk.EntryHeader{LedgerID: 1, EntryID: 0, LAC: -1, Length: int64(size)}, make([]byte, size)))
	key := bk.GenerateMasterKey(password)
	w := newAddWindow(inflight)
	ctx := context.Background()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := eng.AddEntry(ctx, 1, base.EntryID(i), key[:], entry, false, engineCB{w.take()}); err != nil {
			b.Fatal(err)
		}
	}
	w.drain()
	b.StopTimer()
	w.report(b)
}

func benchClientAdd(b *testing.B, c *cluster, q quorum, size, inflight int) {
	cl, err := ledger.NewClient(ledger.Options{Store: c.openStore(b), LedgersRoot: c.root, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	h, err := cl.CreateLedger(c.ctx(b), q.create())
	if err != nil {
		b.Fatal(err)
	}
	// Warm the connections.
	if _, err := h.Append(c.ctx(b), make([]byte, size)); err != nil {
		b.Fatal(err)
	}
	w := newAddWindow(inflight)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.AddEntry(bufs.Get(size), clientCB{w.take()})
	}
	w.drain()
	b.StopTimer()
	w.report(b)
	if err := h.Close(c.ctx(b)); err != nil {
		b.Fatal(err)
	}
}
