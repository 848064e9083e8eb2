package ledgerstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
)

// benchOptions: the production defaults on the OS filesystem, without
// background loops.
func benchOptions(dir string) Options {
	return Options{
		Dirs:               []string{dir},
		WriteCacheMaxBytes: 64 << 20,
		GCInterval:         -1,
		DiskCheckInterval:  -1,
		Logger:             discard,
	}
}

// BenchmarkAddFlush adds entries of 100 ledgers round-robin (each op is one
// add; flushes happen as segments fill, plus one at the end, all inside
// the timing), on the OS filesystem with fdatasync.
func BenchmarkAddFlush(b *testing.B) {
	for _, size := range []int{100, 1 << 10, 16 << 10} {
		b.Run(fmt.Sprintf("size=%s/ledgers=100", sizeName(size)), func(b *testing.B) {
			s, err := Open(benchOptions(b.TempDir()))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			const ledgers = 100
			payloads := make([]*bufs.Buf, ledgers)
			for i := range payloads {
				payloads[i] = bufs.Wrap(payload(base.LedgerID(i), 0, size))
			}
			ctx := context.Background()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			start := time.Now()
			i := 0
			for b.Loop() {
				l := i % ledgers
				if err := s.AddEntry(ctx, base.LedgerID(l+1), base.EntryID(i/ledgers), payloads[l]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			if err := s.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			b.ReportMetric(float64(i)/elapsed.Seconds(), "entries/s")
			st := s.Stats()
			if st.Flushes > 0 {
				b.ReportMetric(float64(st.FlushNanos)/float64(st.Flushes)/1e6, "ms/flush")
			}
		})
	}
}

func sizeName(n int) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// fillForReads writes ledgers x perLedger entries of size bytes,
// interleaved in flush order as a bookie would, and reopens the store (so
// nothing is in the caches).
func fillForReads(b *testing.B, dir string, opts Options, ledgers, perLedger, size int) *Store {
	s, err := Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for e := 0; e < perLedger; e++ {
		for l := 1; l <= ledgers; l++ {
			buf := bufs.Wrap(payload(base.LedgerID(l), base.EntryID(e), size))
			if err := s.AddEntry(ctx, base.LedgerID(l), base.EntryID(e), buf); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	// Entry logs are written around the page cache (direct I/O): read
	// them once so that buffered reads measure the store's path, not the
	// device (direct reads go to the device whatever is cached).
	names, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range names {
		if strings.HasSuffix(n.Name(), entryLogSuffix) {
			if _, err := os.ReadFile(filepath.Join(dir, n.Name())); err != nil {
				b.Fatal(err)
			}
		}
	}
	if s, err = Open(opts); err != nil {
		b.Fatal(err)
	}
	return s
}

// readModes are the read benchmarks' ways of reading entry logs:
// buffered, from the page cache (the store's own path), and direct (the
// default: the store's path plus the device).
var readModes = []string{"buffered", "direct"}

// BenchmarkReadEntryLog reads random entries from the entry logs (read
// cache off), in each of readModes.
func BenchmarkReadEntryLog(b *testing.B) {
	for _, size := range []int{100, 1 << 10, 16 << 10} {
		for _, reads := range readModes {
			b.Run("size="+sizeName(size)+"/reads="+reads, func(b *testing.B) {
				benchReadEntryLog(b, size, reads == "buffered")
			})
		}
	}
}

func benchReadEntryLog(b *testing.B, size int, buffered bool) {
	dir := b.TempDir()
	opts := benchOptions(dir)
	opts.BufferedReads = buffered
	opts.ReadCacheMaxBytes = -1
	const ledgers, per = 100, 500
	s := fillForReads(b, dir, opts, ledgers, per, size)
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		l, e := base.LedgerID(1+rng.IntN(ledgers)), base.EntryID(rng.IntN(per))
		buf, err := s.ReadEntry(ctx, l, e)
		if err != nil {
			b.Fatal(err)
		}
		buf.Release()
	}
}

// BenchmarkReadSequential is a catch-up reader: one ledger read from its
// first entry on, either with ReadRange batches of 100 or entry by entry
// (with read-ahead into the read cache). Another 99 ledgers are
// interleaved in the same logs, as on a bookie. Each in readModes.
func BenchmarkReadSequential(b *testing.B) {
	for _, mode := range []string{"range100", "entry-readahead", "entry-noreadahead"} {
		for _, reads := range readModes {
			b.Run(fmt.Sprintf("size=1KiB/mode=%s/reads=%s", mode, reads), func(b *testing.B) {
				benchReadSequential(b, mode, reads == "buffered")
			})
		}
	}
}

func benchReadSequential(b *testing.B, mode string, buffered bool) {
	const ledgers, per, size = 100, 2000, 1 << 10
	dir := b.TempDir()
	opts := benchOptions(dir)
	opts.BufferedReads = buffered
	if mode == "entry-noreadahead" {
		opts.ReadCacheMaxBytes = -1
	}
	s := fillForReads(b, dir, opts, ledgers, per, size)
	defer s.Close()
	ctx := context.Background()
	b.SetBytes(size)
	b.ReportAllocs()
	l, e := base.LedgerID(1), base.EntryID(0)
	next := func() {
		if e >= per {
			l, e = l%ledgers+1, 0
		}
	}
	n := 0
	for b.Loop() {
		next()
		if mode == "range100" {
			// One op is one entry: a batch counts as its entries.
			if n == 0 {
				got, err := s.ReadRange(ctx, l, e, 100, 1<<20)
				if err != nil {
					b.Fatal(err)
				}
				n = len(got)
				releaseAll(got)
			}
			n--
			e++
			continue
		}
		buf, err := s.ReadEntry(ctx, l, e)
		if err != nil {
			b.Fatal(err)
		}
		buf.Release()
		e++
	}
}

// BenchmarkOpen measures rebuilding the index at start-up: reading every
// entry log's index file.
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	opts := benchOptions(dir)
	const ledgers, per = 1000, 1000
	s := fillForReads(b, dir, opts, ledgers, per, 100)
	s.Close()
	b.ReportAllocs()
	for b.Loop() {
		s, err := Open(opts)
		if err != nil {
			b.Fatal(err)
		}
		if st := s.Stats(); st.IndexEntries != ledgers*per {
			b.Fatalf("%d entries", st.IndexEntries)
		}
		s.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(ledgers*per), "ns/entry")
}
