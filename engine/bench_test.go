package engine

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
	"github.com/magnetar/magnetar/journal"
)

// window bounds adds in flight: Acquire before an add, the callback
// releases. Shared by the journal-alone and engine variants so they are
// driven identically.
type window struct {
	mu   sync.Mutex
	cond *sync.Cond
	n    int
	max  int
}

func newWindow(max int) *window {
	w := &window{max: max}
	w.cond = sync.NewCond(&w.mu)
	return w
}

func (w *window) acquire() {
	w.mu.Lock()
	for w.n >= w.max {
		w.cond.Wait()
	}
	w.n++
	w.mu.Unlock()
}

func (w *window) release() {
	w.mu.Lock()
	w.n--
	w.cond.Signal()
	w.mu.Unlock()
}

func (w *window) drain() {
	w.mu.Lock()
	for w.n > 0 {
		w.cond.Wait()
	}
	w.mu.Unlock()
}

func (w *window) AddComplete(err error) {
	if err != nil {
		panic(err)
	}
	w.release()
}

func (w *window) Done(_ journal.Pos, err error) { w.AddComplete(err) }

// BenchmarkAdd compares adds through the engine (write cache + journal +
// flushes) with adds to the journal alone, in the same run, on the same
// disk: the engine's target is at least 90% of the journal's rate.
func BenchmarkAdd(b *testing.B) {
	for _, size := range []int{100, 1024, 64 << 10} {
		for _, inflight := range []int{1, 256} {
			name := fmt.Sprintf("size=%dB/inflight=%d", size, inflight)
			b.Run(name+"/subject=journal", func(b *testing.B) { benchJournal(b, size, inflight) })
			b.Run(name+"/subject=engine", func(b *testing.B) { benchEngine(b, size, inflight) })
		}
	}
}

func benchJournal(b *testing.B, size, inflight int) {
	j, err := journal.Open(journal.Options{
		Dirs:   []string{filepath.Join(b.TempDir(), "journal")},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	payload := entryBytes(1, 0, -1, size-entryHeaderSize)
	w := newWindow(inflight)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.acquire()
		if err := j.Append(record.KindEntry, 1, int64(i), payload, w); err != nil {
			b.Fatal(err)
		}
	}
	w.drain()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "adds/s")
}

func benchEngine(b *testing.B, size, inflight int) {
	opts := testOptions(vfs.Default, b.TempDir())
	opts.Journal.PreallocBytes = 0
	opts.Journal.QueueMaxBytes = 0
	opts.Storage.WriteCacheMaxBytes = 256 << 20
	opts.Storage.PreallocateBytes = 0
	opts.FlushInterval = 0 // the default checkpoint loop, as in production
	eng, err := Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	w := newWindow(inflight)
	buf := bufs.Wrap(entryBytes(1, 0, -1, size-entryHeaderSize))
	ctx := context.Background()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.acquire()
		if err := eng.AddEntry(ctx, 1, base.EntryID(i), key, buf, false, w); err != nil {
			b.Fatal(err)
		}
	}
	w.drain()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "adds/s")
}
