package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
	"github.com/magnetar/magnetar/journal"
)

// BenchmarkAddInterleaved is BenchmarkAdd's comparison made robust to a
// shared, noisy machine: a journal alone and an engine are open side by
// side on the same disk and take turns, in slices of adds (about 32 MiB,
// between 2,000 and 100,000 adds), the order of the two swapped every
// round, so that both see the same drift in load. Every engine slice starts
// a Checkpoint (flush, sync, checkpoint file) of the entries of its
// previous slice, which runs beside the slice's adds (as flushes overlap
// adds in production) and which the slice waits for: the engine pays for
// every flush, and no subject works during the other's turn. The flushes
// are smaller and more frequent than in production (a slice, not a 64 MiB
// segment). b.N is the number of adds per subject. With 256 adds in flight
// both subjects wait on their fdatasyncs most of the time; with 4096 they
// are short of CPU (2 cores here), and the engine, which does about the
// journal's per-entry work again (copy, checksum, direct write, index),
// keeps little more than half of the journal's rate.
//
// Metrics: journal-adds/s and engine-adds/s over their own slices,
// engine/journal (the target: at least 0.90), and the CPU time
// (user and system, whole process) per add of each: on a machine short of
// CPU the rates follow it.
func BenchmarkAddInterleaved(b *testing.B) {
	for _, size := range []int{100, 1024, 64 << 10} {
		for _, inflight := range []int{1, 256, 4096} {
			b.Run(fmt.Sprintf("size=%dB/inflight=%d", size, inflight), func(b *testing.B) {
				benchInterleaved(b, size, inflight)
			})
		}
	}
}

func benchInterleaved(b *testing.B, size, inflight int) {
	dir := b.TempDir()
	j, err := journal.Open(journal.Options{
		Dirs:   []string{filepath.Join(dir, "journal-alone")},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	eng, err := Open(benchEngineOptions(b, filepath.Join(dir, "engine")))
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()

	ring := payloadRing(size)
	ctx := context.Background()
	w := newWindow(inflight)
	slice := min(max((32<<20)/size, 2000), 100000)
	if inflight == 1 {
		slice = min(slice, 2000) // about a second at one fdatasync per add
	}
	var jNext, eNext int
	var jTime, eTime, jCPU, eCPU time.Duration
	runJournal := func(n int) {
		start, cpu := time.Now(), processCPU()
		for range n {
			w.acquire()
			p := ring[jNext%len(ring)].Bytes()
			if err := j.Append(record.KindEntry, 1, int64(jNext), p, w); err != nil {
				b.Fatal(err)
			}
			jNext++
		}
		w.drain()
		jTime += time.Since(start)
		jCPU += processCPU() - cpu
	}
	runEngine := func(n int) {
		start, cpu := time.Now(), processCPU()
		// The previous slice's entries are flushed while this slice's
		// adds run, as flushes overlap adds in production.
		ck := make(chan error, 1)
		go func() { ck <- eng.Checkpoint(ctx) }()
		for range n {
			w.acquire()
			buf := ring[eNext%len(ring)]
			if err := eng.AddEntry(ctx, 1, base.EntryID(eNext), key, buf, false, w); err != nil {
				b.Fatal(err)
			}
			eNext++
		}
		w.drain()
		if err := <-ck; err != nil {
			b.Fatal(err)
		}
		eTime += time.Since(start)
		eCPU += processCPU() - cpu
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for round := 0; jNext < b.N; round++ {
		n := min(slice, b.N-jNext)
		if round%2 == 0 {
			runJournal(n)
			runEngine(n)
		} else {
			runEngine(n)
			runJournal(n)
		}
	}
	b.StopTimer()
	jRate := float64(b.N) / jTime.Seconds()
	eRate := float64(b.N) / eTime.Seconds()
	b.ReportMetric(jRate, "journal-adds/s")
	b.ReportMetric(eRate, "engine-adds/s")
	b.ReportMetric(eRate/jRate, "engine/journal")
	b.ReportMetric(float64(jCPU.Nanoseconds())/float64(b.N), "journal-cpu-ns/add")
	b.ReportMetric(float64(eCPU.Nanoseconds())/float64(b.N), "engine-cpu-ns/add")
	// The mean fdatasync of each subject's journal: above the journal's
	// own, the engine's flushes slowed its syncs down (a shared disk).
	js, es := j.Stats(), eng.j.Stats()
	b.ReportMetric(float64(js.SyncTime.Microseconds())/float64(max(js.Syncs, 1)), "journal-fdatasync-us")
	b.ReportMetric(float64(es.SyncTime.Microseconds())/float64(max(es.Syncs, 1)), "engine-fdatasync-us")
	b.ReportMetric(float64(b.N)/float64(max(js.Syncs, 1)), "journal-adds/sync")
	b.ReportMetric(float64(b.N)/float64(max(es.Syncs, 1)), "engine-adds/sync")
}

// payloadRing is the adds' payloads: distinct buffers, as a bookie reads
// each add into its own, about 64 MiB of them (between 1,024 and 65,536).
// With one shared buffer every add's reference count, which the
// submitting goroutine raises and the flusher lowers, sits on one cache
// line: a cost production does not have (measured: the rates did not move
// beyond the noise, but the flush's share of the CPU profile fell).
func payloadRing(size int) []*bufs.Buf {
	ring := make([]*bufs.Buf, min(max((64<<20)/size, 1024), 65536))
	for i := range ring {
		ring[i] = bufs.Wrap(entryBytes(1, base.EntryID(i), -1, size-entryHeaderSize))
	}
	return ring
}

// processCPU is the CPU time (user and system) the process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchEngineOptions are BenchmarkAdd's engine options: production
// defaults but for a 256 MiB write cache and no background loops (the
// benchmark checkpoints). The ledger directory goes under
// $MAGNETAR_BENCH_LEDGER_DIR when it is set (another device, as bookies
// are deployed), else beside the journal under dir.
func benchEngineOptions(b *testing.B, dir string) Options {
	opts := testOptions(vfs.Default, dir)
	if d := os.Getenv("MAGNETAR_BENCH_LEDGER_DIR"); d != "" {
		ld, err := os.MkdirTemp(d, "bench-ledgers-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(ld) })
		opts.Storage.Dirs = []string{ld}
	}
	opts.Journal.PreallocBytes = 0
	opts.Journal.QueueMaxBytes = 0
	opts.Storage.WriteCacheMaxBytes = 256 << 20
	opts.Storage.ReadCacheMaxBytes = 0
	opts.Storage.PreallocateBytes = 0
	return opts
}
