package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/journal"
	"github.com/magnetar/magnetar/results"
)

// JournalOptions configure RunJournal. Zero values mean defaults.
type JournalOptions struct {
	// Dir is where the journal (and the device measurements) go; a fresh
	// subdirectory is made there and removed afterwards. Default "data/bench".
	Dir string
	// EntrySize is the payload size of each add. Default 1 KiB.
	EntrySize int
	// InFlight is how many adds are outstanding at once. Default 256.
	InFlight int
	// Duration is how long adds are measured, after Warmup. Defaults 10s, 2s.
	Duration, Warmup time.Duration
	// DisableDirectIO forces the journal's buffered path.
	DisableDirectIO bool
	// Limits bounds the device measurements taken in the same run.
	Limits LimitsOptions
}

// EnsureDefaults fills in defaults.
func (o *JournalOptions) EnsureDefaults() {
	if o.Dir == "" {
		o.Dir = filepath.Join("data", "bench")
	}
	if o.EntrySize == 0 {
		o.EntrySize = 1024
	}
	if o.InFlight == 0 {
		o.InFlight = 256
	}
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.Warmup == 0 {
		o.Warmup = 2 * time.Second
	}
}

// JournalResult is what RunJournal measured: the journal's rate and its add
// latency (from Append to the completion that follows the covering
// fdatasync), beside the device's limits measured in the same run.
type JournalResult struct {
	EntrySize, InFlight int
	Direct              bool
	Adds                int64
	Elapsed             time.Duration
	AddsPerSec          float64
	BytesPerSec         float64
	Syncs               uint64
	Latency             results.Percentiles // nanoseconds
	Disk                results.DiskLimit
	Fsync               results.FsyncLimit
}

// journalOp is one in-flight slot: it times its add and frees itself.
type journalOp struct {
	r     *journalRun
	start time.Time
}

type journalRun struct {
	mu        sync.Mutex
	hist      *hdrhistogram.Histogram
	measuring bool
	free      chan *journalOp
	err       error
}

func (o *journalOp) Done(_ journal.Pos, err error) {
	r := o.r
	r.mu.Lock()
	if err != nil && r.err == nil {
		r.err = err
	}
	if r.measuring {
		results.RecordClamped(r.hist, time.Since(o.start).Nanoseconds())
	}
	r.mu.Unlock()
	r.free <- o
}

// RunJournal measures the device (direct 1 MiB writes with fdatasync, 4 KiB
// fdatasync latency), then drives a journal in the same directory with
// InFlight adds of EntrySize bytes outstanding.
func RunJournal(ctx context.Context, opts JournalOptions) (JournalResult, error) {
	opts.EnsureDefaults()
	if opts.EntrySize < 1 || opts.InFlight < 1 || opts.Duration < 0 || opts.Warmup < 0 {
		return JournalResult{}, errors.New("bench: journal: size, in-flight and durations must be positive")
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return JournalResult{}, err
	}
	dir, err := os.MkdirTemp(opts.Dir, "journal-")
	if err != nil {
		return JournalResult{}, err
	}
	defer os.RemoveAll(dir)
	res := JournalResult{EntrySize: opts.EntrySize, InFlight: opts.InFlight, Direct: !opts.DisableDirectIO}
	if res.Disk, err = DirectWriteBandwidth(ctx, dir, opts.Limits.Disk); err != nil {
		return res, err
	}
	if res.Fsync, err = FsyncLatency(ctx, dir, opts.Limits.Fsync); err != nil {
		return res, err
	}
	j, err := journal.Open(journal.Options{
		Dirs:            []string{filepath.Join(dir, "journal")},
		DisableDirectIO: opts.DisableDirectIO,
		QueueMaxBytes:   max(32<<20, int64(opts.InFlight)*int64(opts.EntrySize+2*record.HeaderSize)),
		Logger:          slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return res, err
	}
	r := &journalRun{hist: results.NewHistogram(), free: make(chan *journalOp, opts.InFlight)}
	for range opts.InFlight {
		r.free <- &journalOp{r: r}
	}
	payload := make([]byte, opts.EntrySize)
	fillRandom(payload)
	warmEnd := time.Now().Add(opts.Warmup)
	var measureStart time.Time
	var entry int64
	var syncs0 uint64
loop:
	for {
		var o *journalOp
		select {
		case o = <-r.free:
		case <-ctx.Done():
			break loop
		}
		now := time.Now()
		if measureStart.IsZero() && !now.Before(warmEnd) {
			r.mu.Lock()
			r.measuring = true
			r.mu.Unlock()
			measureStart = now
			syncs0 = j.Stats().Syncs
			entry = 0
		}
		if !measureStart.IsZero() && now.Sub(measureStart) >= opts.Duration {
			r.free <- o
			break
		}
		o.start = now
		if err := j.Append(record.KindEntry, 1, entry, payload, o); err != nil {
			r.free <- o
			j.Close()
			return res, err
		}
		entry++
	}
	// Let the adds in flight complete (their latency counts).
	for range opts.InFlight {
		<-r.free
	}
	res.Elapsed = time.Since(measureStart)
	res.Syncs = j.Stats().Syncs - syncs0
	if err := j.Close(); err != nil {
		return res, err
	}
	if r.err != nil {
		return res, r.err
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	r.mu.Lock()
	res.Latency = results.Summarize(r.hist)
	r.mu.Unlock()
	res.Adds = res.Latency.Count
	res.AddsPerSec = float64(res.Adds) / res.Elapsed.Seconds()
	res.BytesPerSec = res.AddsPerSec * float64(opts.EntrySize)
	return res, nil
}

// WriteSummary prints the result against the device's limits.
func (r JournalResult) WriteSummary(w io.Writer) {
	ms := func(ns int64) string { return time.Duration(ns).Round(time.Microsecond).String() }
	mode := "O_DIRECT"
	if !r.Direct {
		mode = "buffered + fdatasync"
	}
	fmt.Fprintf(w, "journal     %d B entries, %d in flight, %s, one directory\n", r.EntrySize, r.InFlight, mode)
	fmt.Fprintf(w, "rate        %.0f adds/s  %.1f MiB/s  (%d adds in %v, %d fdatasyncs: %.1f adds per sync)\n",
		r.AddsPerSec, r.BytesPerSec/(1<<20), r.Adds, r.Elapsed.Round(time.Millisecond), r.Syncs,
		float64(r.Adds)/float64(max(r.Syncs, 1)))
	fmt.Fprintf(w, "add latency p50 %s  p90 %s  p99 %s  p99.9 %s  p99.99 %s  max %s\n",
		ms(r.Latency.P50), ms(r.Latency.P90), ms(r.Latency.P99), ms(r.Latency.P999), ms(r.Latency.P9999), ms(r.Latency.Max))
	fmt.Fprintf(w, "device      write + fdatasync per 1 MiB block: %.1f MiB/s; 4 KiB write + fdatasync p50 %s p99 %s\n",
		r.Disk.BytesPerSec/(1<<20), ms(r.Fsync.Latency.P50), ms(r.Fsync.Latency.P99))
	if r.Disk.BytesPerSec > 0 {
		fmt.Fprintf(w, "ratio       %.0f%% of the device's write bandwidth; add p50 is %s above the device's fdatasync p50\n",
			100*r.BytesPerSec/r.Disk.BytesPerSec, ms(r.Latency.P50-r.Fsync.Latency.P50))
	}
}
