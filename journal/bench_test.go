package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
)

// Benchmarks write to MAGNETAR_BENCH_DIR when set (put it on the device to
// measure), else to a temporary directory.
func benchDir(b *testing.B) string {
	if d := os.Getenv("MAGNETAR_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "journal-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// window keeps up to limit adds in flight: the producer waits when it is
// full, completions free slots. It is the Callback of every add, so the
// benchmark allocates nothing per add.
type window struct {
	inflight atomic.Int64
	limit    int64
	waiting  atomic.Bool
	wake     chan struct{}
	failed   atomic.Pointer[error]

	// Latency, when measured: completions arrive in order (one directory),
	// so a ring of start times indexed by sequence is enough.
	measure bool
	starts  []time.Time
	done    int64 // completions so far (sync goroutine only)
	lat     []time.Duration
}

func (w *window) Done(_ Pos, err error) {
	if err != nil {
		e := err // declared here so that only a failure allocates
		w.failed.CompareAndSwap(nil, &e)
	}
	if w.measure {
		w.lat = append(w.lat, time.Since(w.starts[w.done%int64(len(w.starts))]))
		w.done++
	}
	if w.inflight.Add(-1) < w.limit && w.waiting.Load() && w.waiting.CompareAndSwap(true, false) {
		w.wake <- struct{}{}
	}
}

// acquire waits for a free slot.
func (w *window) acquire(limit int64) {
	for w.inflight.Load() >= limit {
		w.waiting.Store(true)
		if w.inflight.Load() < limit {
			if !w.waiting.CompareAndSwap(true, false) {
				<-w.wake
			}
			continue
		}
		<-w.wake
	}
}

// BenchmarkAppend measures the journal in the steady state of a running
// bookie: a checkpointer frees old segments every 20ms and new segments are
// made from the freed files (so writes overwrite allocated blocks). One
// producer keeps `inflight` adds outstanding in one directory.
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{100, 1 << 10, 64 << 10} {
		for _, inflight := range []int{1, 16, 256, 1024} {
			b.Run(fmt.Sprintf("size=%s/inflight=%d", sizeName(size), inflight), func(b *testing.B) {
				benchAppend(b, size, inflight, true)
			})
		}
	}
}

// BenchmarkAppendFresh is BenchmarkAppend without recycling: every segment
// is a new file, preallocated with fallocate, so every fdatasync also
// commits the growing file size (the first hours of a new bookie).
func BenchmarkAppendFresh(b *testing.B) {
	for _, c := range []struct{ size, inflight int }{{100, 1}, {100, 1024}, {64 << 10, 256}} {
		b.Run(fmt.Sprintf("size=%s/inflight=%d", sizeName(c.size), c.inflight), func(b *testing.B) {
			benchAppend(b, c.size, c.inflight, false)
		})
	}
}

// pump keeps up to inflight adds of size bytes in flight until fn says stop.
func pump(b *testing.B, j *Journal, w *window, size, inflight int, stop func() bool) {
	payload := payloadFor(1, 0, size)
	for i := 0; !stop(); i++ {
		w.acquire(int64(inflight))
		w.inflight.Add(1)
		if err := j.Append(record.KindEntry, 1, int64(i), payload, w); err != nil {
			b.Fatal(err)
		}
	}
	w.acquire(1)
}

func benchAppend(b *testing.B, size, inflight int, recycle bool) {
	opts := Options{Dirs: []string{benchDir(b)}, Logger: quietLogger()}
	if recycle {
		opts.MaxSegmentBytes = 64 << 20
		opts.MaxBackups = -1
	}
	j, err := Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	if recycle {
		// Fill and free segments until the current one is a reused file.
		// The segment after the one current at the checkpoint was made
		// before anything was freed; the one after it is reused.
		fill := &window{limit: 64, wake: make(chan struct{}, 1)}
		var firstReused uint32
		pump(b, j, fill, 64<<10, 64, func() bool {
			m := j.Mark()
			if firstReused == 0 && m[0].File >= 3 {
				if err := j.SetCheckpoint(m); err != nil {
					b.Fatal(err)
				}
				firstReused = m[0].File + 2
			}
			return firstReused != 0 && m[0].File >= firstReused
		})
		if j.Stats().Recycled == 0 {
			b.Fatal("no segment was reused")
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		defer func() { close(stop); <-done }()
		go func() {
			defer close(done)
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					if err := j.SetCheckpoint(j.Mark()); err != nil {
						panic(err)
					}
				}
			}
		}()
	}
	payload := payloadFor(1, 0, size)
	w := &window{limit: int64(inflight), wake: make(chan struct{}, 1), measure: inflight <= 16}
	if w.measure {
		w.starts = make([]time.Time, inflight)
		w.lat = make([]time.Duration, 0, 1<<20)
	}
	// Warm up: ring touched, waiter queue grown.
	for i := 0; i < 2*inflight; i++ {
		if _, err := j.AppendSync(record.KindEntry, 1, int64(i), payload); err != nil {
			b.Fatal(err)
		}
	}
	before := j.Stats()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		w.acquire(int64(inflight))
		w.inflight.Add(1)
		if w.measure {
			w.starts[i%inflight] = time.Now()
		}
		if err := j.Append(record.KindEntry, 1, int64(i), payload, w); err != nil {
			b.Fatal(err)
		}
	}
	w.acquire(1)
	el := time.Since(start)
	b.StopTimer()
	if p := w.failed.Load(); p != nil {
		b.Fatal(*p)
	}
	after := j.Stats()
	b.ReportMetric(float64(b.N)/el.Seconds(), "adds/s")
	if syncs := after.Syncs - before.Syncs; syncs > 0 {
		b.ReportMetric(float64(b.N)/float64(syncs), "adds/sync")
	}
	if segs := after.Segments - before.Segments; segs > 0 {
		b.ReportMetric(float64(after.Recycled-before.Recycled)/float64(segs), "recycled-frac")
	}
	if w.measure && len(w.lat) > 0 {
		slices.Sort(w.lat)
		b.ReportMetric(float64(w.lat[len(w.lat)/2].Nanoseconds())/1e3, "p50-µs")
		b.ReportMetric(float64(w.lat[len(w.lat)*99/100].Nanoseconds())/1e3, "p99-µs")
	}
}

// BenchmarkDevice measures the device limits the journal is compared with,
// through the same FS calls: O_DIRECT writes each followed by fdatasync.
// mode=append writes a fresh preallocated file as the journal does (each
// fdatasync also commits the file size); mode=overwrite rewrites blocks of a
// file already written (a pure data flush).
func BenchmarkDevice(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		for _, mode := range []string{"append", "overwrite"} {
			b.Run(fmt.Sprintf("write=%s/mode=%s", sizeName(size), mode), func(b *testing.B) {
				benchDevice(b, size, mode == "overwrite")
			})
		}
	}
}

func benchDevice(b *testing.B, size int, overwrite bool) {
	const fileBytes = 256 << 20
	dir := benchDir(b)
	fs := vfs.Default
	buf := vfs.AlignedBuffer(size, vfs.DefaultAlignment)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	var f vfs.File
	n := 0
	open := func() {
		if f != nil {
			f.Close()
		}
		path := filepath.Join(dir, fmt.Sprintf("dev-%d", n))
		n++
		var err error
		f, err = fs.OpenFile(path, vfs.OpenOptions{Write: true, Create: true, Truncate: true, Direct: true})
		if err != nil {
			b.Fatal(err)
		}
		if overwrite {
			big := vfs.AlignedBuffer(8<<20, vfs.DefaultAlignment)
			for off := int64(0); off < fileBytes; off += int64(len(big)) {
				if _, err := f.WriteAt(big, off); err != nil {
					b.Fatal(err)
				}
			}
		} else if err := f.Preallocate(0, fileBytes); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		fs.SyncDir(dir)
		if !overwrite {
			fs.Remove(filepath.Join(dir, fmt.Sprintf("dev-%d", n-2)))
		}
	}
	open()
	defer func() { f.Close() }()
	lat := make([]time.Duration, 0, 1<<16)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	var off int64
	for i := 0; i < b.N; i++ {
		if off+int64(size) > fileBytes {
			b.StopTimer()
			if !overwrite {
				open()
			}
			off = 0
			b.StartTimer()
		}
		t0 := time.Now()
		if _, err := f.WriteAt(buf, off); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		if len(lat) < cap(lat) {
			lat = append(lat, time.Since(t0))
		}
		off += int64(size)
	}
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
	}
}
