package managedledger

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
)

// benchEnv is a factory over the in-memory stores with the real clock and
// no background maintenance.
func benchEnv(b *testing.B, tweak ...func(*Options)) (*env, *MLFactory) {
	e := newEnv(b, tweak...)
	return e, e.factory()
}

// semAdd is a reusable add callback that returns a token to a semaphore.
type semAdd struct {
	sem  chan struct{}
	errs atomic.Int64
}

func (s *semAdd) AddEntryComplete(_ base.Position, err error) {
	if err != nil {
		s.errs.Add(1)
	}
	<-s.sem
}

// BenchmarkAddEntry measures appends through the managed ledger to the
// in-memory BookKeeper with many adds in flight (rollover included).
func BenchmarkAddEntry(b *testing.B) {
	for _, size := range []int{128, 1024, 16 << 10} {
		for _, inflight := range []int{1, 256} {
			b.Run(fmt.Sprintf("size=%s/inflight=%d", sizeName(size), inflight), func(b *testing.B) {
				e, f := benchEnv(b)
				ml := open(b, f, "bench/ns/persistent/add", Config{MaxEntriesPerLedger: 50000, MinRolloverTime: -1})
				payload := make([]byte, size)
				cb := &semAdd{sem: make(chan struct{}, inflight)}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					cb.sem <- struct{}{}
					buf := e.pool.Get(size)
					copy(buf.Bytes(), payload)
					ml.AddEntry(buf, cb)
				}
				for i := 0; i < inflight; i++ {
					cb.sem <- struct{}{}
				}
				b.StopTimer()
				if n := cb.errs.Load(); n > 0 {
					b.Fatalf("%d adds failed", n)
				}
				_ = ml.Close(context.Background())
			})
		}
	}
}

func sizeName(n int) string {
	if n >= 1024 {
		return fmt.Sprintf("%dKiB", n/1024)
	}
	return fmt.Sprintf("%dB", n)
}

// tailReader re-arms its read from its callback, as a dispatcher does.
type tailReader struct {
	c     Cursor
	got   atomic.Int64
	want  int64
	done  chan struct{}
	batch int
}

func (r *tailReader) ReadComplete(entries []Entry, err error) {
	if err != nil {
		panic(err)
	}
	for i := range entries {
		entries[i].Data.Release()
	}
	if r.got.Add(int64(len(entries))) >= r.want {
		close(r.done)
		return
	}
	r.c.ReadEntriesOrWait(r.batch, 0, r)
}

// BenchmarkTailRead measures a cursor tailing the writer: every entry is
// delivered from the cache by the add that confirmed it. allocs/op is per
// entry, the add included.
func BenchmarkTailRead(b *testing.B) {
	for _, inflight := range []int{1, 64} {
		b.Run(fmt.Sprintf("size=1KiB/inflight=%d", inflight), func(b *testing.B) {
			e, f := benchEnv(b)
			ml := open(b, f, "bench/ns/persistent/tail", Config{MaxEntriesPerLedger: 50000, MinRolloverTime: -1})
			c := mustCursor(b, ml, "sub", Latest)
			r := &tailReader{c: c, want: int64(b.N), done: make(chan struct{}), batch: 100}
			cb := &semAdd{sem: make(chan struct{}, inflight)}
			// Warm up the pools and the cache's arrays.
			warm := &tailReader{c: c, want: 1000, done: make(chan struct{}), batch: 100}
			c.ReadEntriesOrWait(100, 0, warm)
			for i := 0; i < 1000; i++ {
				cb.sem <- struct{}{}
				ml.AddEntry(e.pool.Get(1024), cb)
			}
			<-warm.done
			c.ReadEntriesOrWait(100, 0, r)
			b.SetBytes(1024)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				cb.sem <- struct{}{}
				ml.AddEntry(e.pool.Get(1024), cb)
			}
			<-r.done
			b.StopTimer()
			if e.bk.Stats().Reads != 0 {
				b.Fatalf("%d reads reached BookKeeper", e.bk.Stats().Reads)
			}
			_ = ml.Close(context.Background())
		})
	}
}

// BenchmarkCatchUpRead measures a cursor reading a backlog that is not in
// the cache (from the in-memory BookKeeper, in batches), per entry.
func BenchmarkCatchUpRead(b *testing.B) {
	const backlog = 20000
	e, f := benchEnv(b, func(o *Options) { o.CacheSizeBytes = -1 })
	ml := open(b, f, "bench/ns/persistent/catch-up", Config{MaxEntriesPerLedger: 5000, MinRolloverTime: -1})
	c := mustCursor(b, ml, "sub", Earliest)
	cb := &semAdd{sem: make(chan struct{}, 256)}
	for i := 0; i < backlog; i++ {
		cb.sem <- struct{}{}
		ml.AddEntry(e.pool.Get(1024), cb)
	}
	for i := 0; i < 256; i++ {
		cb.sem <- struct{}{}
	}
	b.SetBytes(1024)
	b.ReportAllocs()
	b.ResetTimer()
	read := 0
	for read < b.N {
		es, err := c.ReadEntries(context.Background(), 100, 0)
		if err != nil {
			b.Fatal(err)
		}
		if len(es) == 0 {
			c.Rewind()
			continue
		}
		read += len(es)
		releaseEntries(es)
	}
	b.StopTimer()
	_ = ml.Close(context.Background())
}

// BenchmarkIdleManagedLedgers opens 10,000 managed ledgers with one durable
// cursor each and reports the heap they hold: bytes/ml is the whole
// process's growth (the in-memory metadata store and BookKeeper included),
// bytes/ml-objects what closing them gives back (the managed ledgers,
// cursors and caches themselves). Run with -benchtime=1x.
func BenchmarkIdleManagedLedgers(b *testing.B) {
	const n = 10_000
	for i := 0; i < b.N; i++ {
		e, f := benchEnv(b)
		before := heapInUse()
		mls := make([]ManagedLedger, n)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 64)
		for j := 0; j < n; j++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				ml, err := f.Open(context.Background(), fmt.Sprintf("t/ns/persistent/idle-%d", j), Config{})
				if err != nil {
					b.Error(err)
					return
				}
				if _, err := ml.OpenCursor(context.Background(), "sub", Latest); err != nil {
					b.Error(err)
				}
				mls[j] = ml
			}()
		}
		wg.Wait()
		open := heapInUse()
		for _, ml := range mls {
			_ = ml.Close(context.Background())
		}
		mls = nil
		closed := heapInUse()
		b.ReportMetric(float64(open-before)/n, "bytes/ml")
		b.ReportMetric(float64(open-closed)/n, "bytes/ml-objects")
		runtime.KeepAlive(e)
	}
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// countReader releases what it reads and counts it.
type countReader struct{ n int }

func (r *countReader) ReadComplete(entries []Entry, err error) {
	if err != nil {
		panic(err)
	}
	for i := range entries {
		entries[i].Data.Release()
	}
	r.n += len(entries)
}

// BenchmarkCacheRead measures a cursor reading entries that are in the
// cache (a second, idle cursor keeps them there), 100 per read, per entry.
func BenchmarkCacheRead(b *testing.B) {
	const backlog = 10000
	e, f := benchEnv(b)
	ml := open(b, f, "bench/ns/persistent/cache-read", Config{MaxEntriesPerLedger: 50000, MinRolloverTime: -1})
	mustCursor(b, ml, "idle", Earliest)
	c := mustCursor(b, ml, "sub", Earliest)
	cb := &semAdd{sem: make(chan struct{}, 256)}
	for i := 0; i < backlog; i++ {
		cb.sem <- struct{}{}
		ml.AddEntry(e.pool.Get(1024), cb)
	}
	for i := 0; i < 256; i++ {
		cb.sem <- struct{}{}
	}
	r := &countReader{}
	c.ReadEntriesOrWait(100, 0, r) // warm up the read buffer
	b.SetBytes(1024)
	b.ReportAllocs()
	b.ResetTimer()
	for r.n < b.N {
		if r.n%backlog == 0 {
			c.Rewind()
		}
		c.ReadEntriesOrWait(100, 0, r) // served from the cache, before returning
	}
	b.StopTimer()
	if e.bk.Stats().Reads != 0 {
		b.Fatalf("%d reads reached BookKeeper", e.bk.Stats().Reads)
	}
	_ = ml.Close(context.Background())
}
