package ledger_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/ledger"
)

// benchAdds records the latency of each add, from AddEntry to its
// callback; one value serves every add, so the callback allocates nothing.
type benchAdds struct {
	starts []int64 // by entry id modulo len: at most inflight outstanding
	window chan struct{}
	hist   *hdrhistogram.Histogram
	epoch  time.Time
	failed atomic.Int64
	done   atomic.Int64
}

func (a *benchAdds) AddComplete(e base.EntryID, err error) {
	if err != nil {
		a.failed.Add(1)
	} else {
		lat := int64(time.Since(a.epoch)) - a.starts[int(e)%len(a.starts)]
		_ = a.hist.RecordValue(lat / 1000) // µs
	}
	a.done.Add(1)
	<-a.window
}

// BenchmarkAdd measures the client's add throughput and latency against
// test bookies in the same process (loopback TCP, no fsync, only the last
// entry of the ledger kept): the figures show the client's own cost plus
// the test bookies' (whose entry copy is the 1-2 allocs/op left) and are
// indicative only until the real bookie exists.
//
//	go test ./ledger -run '^$' -bench BenchmarkAdd -benchtime 20000x
func BenchmarkAdd(b *testing.B) {
	for _, q := range []struct {
		name    string
		e, w, a int
	}{{"E1W1A1", 1, 1, 1}, {"E3W3A2", 3, 3, 2}, {"E3W2A2", 3, 2, 2}} {
		for _, size := range []int{100, 1 << 10, 16 << 10} {
			for _, inflight := range []int{1, 256} {
				name := fmt.Sprintf("quorum=%s/size=%s/inflight=%d", q.name, sizeName(size), inflight)
				b.Run(name, func(b *testing.B) { benchAdd(b, q.e, q.w, q.a, size, inflight) })
			}
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

func benchAdd(b *testing.B, e, w, a, size, inflight int) {
	c := newClusterOf(b, e, true) // the bookies keep only the last entry
	cl := c.client()
	h, err := cl.CreateLedger(ctx(c.t), ledger.CreateOptions{Ensemble: e, WriteQuorum: w, AckQuorum: a})
	if err != nil {
		b.Fatal(err)
	}
	// Warm the connections.
	if _, err := h.Append(ctx(c.t), make([]byte, size)); err != nil {
		b.Fatal(err)
	}
	ba := &benchAdds{
		starts: make([]int64, 2*inflight+2),
		window: make(chan struct{}, inflight),
		hist:   hdrhistogram.New(1, 60_000_000, 3),
		epoch:  time.Now(),
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	next := h.LastAddConfirmed() + 1
	for i := 0; i < b.N; i++ {
		ba.window <- struct{}{}
		buf := bufs.Get(size)
		ba.starts[int(next)%len(ba.starts)] = int64(time.Since(ba.epoch))
		h.AddEntry(buf, ba)
		next++
	}
	for ba.done.Load() < int64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	if n := ba.failed.Load(); n > 0 {
		b.Fatalf("%d adds failed", n)
	}
	b.ReportMetric(float64(ba.hist.ValueAtQuantile(50)), "p50-µs")
	b.ReportMetric(float64(ba.hist.ValueAtQuantile(99)), "p99-µs")
	b.ReportMetric(float64(ba.hist.ValueAtQuantile(99.9)), "p99.9-µs")
	if err := h.Close(ctx(c.t)); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRead measures reads of 100-entry ranges of a closed ledger:
// batch reads when E == W, one READ_ENTRY per entry otherwise.
//
//	go test ./ledger -run '^$' -bench BenchmarkRead
func BenchmarkRead(b *testing.B) {
	for _, q := range []struct {
		name    string
		e, w, a int
	}{{"E3W3A2-batch", 3, 3, 2}, {"E3W2A2-single", 3, 2, 2}} {
		b.Run(fmt.Sprintf("quorum=%s/size=1KiB/range=100", q.name), func(b *testing.B) {
			c := newCluster(b, q.e)
			h, err := c.client().CreateLedger(ctx(c.t), ledger.CreateOptions{Ensemble: q.e, WriteQuorum: q.w, AckQuorum: q.a})
			if err != nil {
				b.Fatal(err)
			}
			const n = 1000
			data := make([]byte, 1<<10)
			for i := 0; i < n; i++ {
				if _, err := h.Append(ctx(c.t), data); err != nil {
					b.Fatal(err)
				}
			}
			if err := h.Close(ctx(c.t)); err != nil {
				b.Fatal(err)
			}
			r, err := c.client().OpenLedger(ctx(c.t), h.ID(), nil, ledger.OpenOptions{})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(100 << 10)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				first := base.EntryID(i*100) % n
				es, err := r.Read(ctx(c.t), first, first+99)
				if err != nil {
					b.Fatal(err)
				}
				ledger.ReleaseEntries(es)
			}
		})
	}
}
