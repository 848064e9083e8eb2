//go:build linux

package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/testutil"
	"github.com/magnetar/magnetar/internal/vfs"
	"github.com/magnetar/magnetar/journal"
	"github.com/magnetar/magnetar/ledgerstore"
)

// The benchmarks of the closing note beyond add throughput (that
// one is BenchmarkAdd and BenchmarkAddInterleaved): catch-up reads of cold
// entries against the device's read bandwidth, and the tail latency of a
// fixed-rate add load while a catch-up reader runs and while a major
// compaction runs. All run on the OS filesystem under the benchmark's temp
// directory (or $MAGNETAR_BENCH_LEDGER_DIR for the ledger directory).
//
// Cold: entry logs are written with O_DIRECT, so a flush leaves nothing in
// the page cache, and before each measured pass the benchmarks also drop
// what reads put there (posix_fadvise DONTNEED on every entry log: only
// our files, where echo 3 > /proc/sys/vm/drop_caches would disturb
// everything else on a shared machine), then check with mincore that no
// page of the logs is resident (metric cached-share, 0 = cold).

// benchDataMiB is how much a read benchmark writes:
// $MAGNETAR_BENCH_READ_MIB, default 256.
func benchDataMiB() int64 {
	if v, err := strconv.Atoi(os.Getenv("MAGNETAR_BENCH_READ_MIB")); err == nil && v > 0 {
		return int64(v)
	}
	return 256
}

func sizeLabel(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%dKiB", n/1024)
	}
	return fmt.Sprintf("%dB", n)
}

// entryLogs lists the entry log files of the engine's ledger directories.
func entryLogs(b testing.TB, opts Options) []string {
	b.Helper()
	var out []string
	for _, d := range opts.Storage.Dirs {
		names, err := os.ReadDir(d)
		if err != nil {
			b.Fatal(err)
		}
		for _, n := range names {
			if strings.HasSuffix(n.Name(), ".log") {
				out = append(out, filepath.Join(d, n.Name()))
			}
		}
	}
	return out
}

// deviceReadBytesPerSec reads the files start to end with O_DIRECT 1 MiB
// reads (internal/vfs), bypassing the page cache, qd reads in flight (qd
// goroutines taking every qd-th MiB): the device's sequential read
// bandwidth on the same files, in the same run.
func deviceReadBytesPerSec(b testing.TB, files []string, qd int) float64 {
	b.Helper()
	var n atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, qd)
	start := time.Now()
	for g := range qd {
		wg.Go(func() {
			buf := vfs.AlignedBuffer(1<<20, vfs.DefaultAlignment)
			for _, name := range files {
				f, err := vfs.Default.OpenFile(name, vfs.OpenOptions{Direct: true})
				if err != nil {
					errs <- err
					return
				}
				for off := int64(g) << 20; ; off += int64(qd) << 20 {
					k, err := f.ReadAt(buf, off)
					n.Add(int64(k))
					if errors.Is(err, io.EOF) || k < len(buf) {
						break
					}
					if err != nil {
						f.Close()
						errs <- err
						return
					}
				}
				f.Close()
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return float64(n.Load()) / el.Seconds()
}

// fillLedgers adds entries of size bytes to the ledgers round-robin until
// total bytes are written (the header carries ledger and entry ids, which
// the readers check), then checkpoints. It returns the entries per ledger.
func fillLedgers(b testing.TB, eng *Bookie, ledgers []base.LedgerID, size int, total int64) base.EntryID {
	b.Helper()
	ctx := context.Background()
	w := newWindow(256)
	per := base.EntryID(total / int64(size) / int64(len(ledgers)))
	for e := range per {
		for _, l := range ledgers {
			buf := bufs.Get(size)
			p := buf.Bytes()
			binary.BigEndian.PutUint64(p[0:], uint64(l))
			binary.BigEndian.PutUint64(p[8:], uint64(e))
			binary.BigEndian.PutUint64(p[16:], uint64(e-1))
			binary.BigEndian.PutUint64(p[24:], uint64(size-entryHeaderSize))
			w.acquire()
			err := eng.AddEntry(ctx, l, e, key, buf, false, w)
			buf.Release()
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	w.drain()
	if err := eng.Checkpoint(ctx); err != nil {
		b.Fatal(err)
	}
	return per
}

func checkIDs(b testing.TB, buf *bufs.Buf, l base.LedgerID, e base.EntryID) {
	p := buf.Bytes()
	if len(p) < entryHeaderSize || binary.BigEndian.Uint64(p) != uint64(l) || binary.BigEndian.Uint64(p[8:]) != uint64(e) {
		b.Fatalf("read %d:%d: wrong entry", l, e)
	}
}

// BenchmarkCatchUpRead reads one ledger start to end, as a catch-up reader
// does, from cold entry logs (written, flushed, evicted from the page
// cache, engine reopened so that its read cache is empty): with ReadRange
// batches of up to 100 entries or 5 MiB (a bookie's batch read), or entry
// by entry with ReadEntry (the engine's read-ahead fills its read cache);
// reading the logs with O_DIRECT (reads=direct, the default), or through
// the page cache with the kernel's read-ahead on them off or on
// (ledgerstore.Options.BufferedReads and KernelReadAhead). cpu-ms/GB is
// the process's CPU time per GB read.
// One op is one pass over $MAGNETAR_BENCH_READ_MIB (256) MiB; run with
// -benchtime 3x. MB/s is the payload read per second; device-MB/s is
// O_DIRECT 1 MiB reads of the same files, one at a time, just before each
// pass (the mean over the passes), read/device their ratio; device-qd4-*
// the same with four reads in flight (the kernel's read-ahead keeps
// several large reads in flight, and beats one at a time).
func BenchmarkCatchUpRead(b *testing.B) {
	parent := b
	for _, size := range []int{1 << 10, 64 << 10} {
		var opts *Options // filled once, read by both sub-benchmarks
		var entries base.EntryID
		for _, v := range []struct {
			api   string
			reads readMode
		}{{"range", readsDirect}, {"entry", readsDirect}, {"range", readsBuffered}, {"entry", readsBuffered},
			{"range", readsBufferedKernelRA}, {"entry", readsBufferedKernelRA}} {
			api := v.api
			b.Run(fmt.Sprintf("size=%s/api=%s/reads=%s", sizeLabel(size), api, v.reads), func(b *testing.B) {
				if opts == nil {
					d, err := os.MkdirTemp("", "bench-catchup-")
					if err != nil {
						b.Fatal(err)
					}
					o := benchEngineOptions(b, d)
					eng, err := Open(o)
					if err != nil {
						os.RemoveAll(d)
						b.Fatal(err)
					}
					entries = fillLedgers(b, eng, []base.LedgerID{1}, size, benchDataMiB()<<20)
					if err := eng.Close(); err != nil {
						b.Fatal(err)
					}
					opts = &o
					parent.Cleanup(func() { os.RemoveAll(d) })
				}
				o := *opts
				v.reads.apply(&o)
				benchCatchUp(b, o, api, size, entries)
			})
		}
	}
}

// readMode is how the engine reads entry logs in a read benchmark.
type readMode string

const (
	readsDirect           readMode = "direct"                    // O_DIRECT (the default)
	readsBuffered         readMode = "buffered"                  // page cache, kernel read-ahead off
	readsBufferedKernelRA readMode = "buffered-kernel-readahead" // page cache, kernel read-ahead on
)

func (m readMode) apply(o *Options) {
	o.Storage.BufferedReads = m != readsDirect
	o.Storage.KernelReadAhead = m == readsBufferedKernelRA
}

func benchCatchUp(b *testing.B, opts Options, api string, size int, entries base.EntryID) {
	files := entryLogs(b, opts)
	ctx := context.Background()
	b.SetBytes(int64(entries) * int64(size))
	b.ReportAllocs()
	var cached, device, device4 float64
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		device += deviceReadBytesPerSec(b, files, 1) / float64(b.N)
		device4 += deviceReadBytesPerSec(b, files, 4) / float64(b.N)
		testutil.DropPageCache(b, files)
		cached = max(cached, testutil.PageCacheShare(b, files))
		eng, err := Open(opts)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		c0 := processCPU()
		for e := base.EntryID(0); e < entries; {
			if api == "entry" {
				buf, err := eng.ReadEntry(ctx, 1, e)
				if err != nil {
					b.Fatal(err)
				}
				checkIDs(b, buf, 1, e)
				buf.Release()
				e++
				continue
			}
			got, err := eng.ReadRange(ctx, 1, e, 100, 5<<20)
			if err != nil {
				b.Fatal(err)
			}
			for _, buf := range got {
				checkIDs(b, buf, 1, e)
				buf.Release()
				e++
			}
		}
		cpu += processCPU() - c0
		b.StopTimer()
		if err := eng.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	read := float64(b.N) * float64(entries) * float64(size) / b.Elapsed().Seconds()
	// The process's CPU per GB read (the kernel's page-cache work done in
	// the reader's system calls included; reclaim by kswapd is not).
	b.ReportMetric(cpu.Seconds()*1e3/(float64(b.N)*float64(entries)*float64(size)/1e9), "cpu-ms/GB")
	b.ReportMetric(device/1e6, "device-MB/s")
	b.ReportMetric(read/device, "read/device")
	b.ReportMetric(device4/1e6, "device-qd4-MB/s")
	b.ReportMetric(read/device4, "read/device-qd4")
	b.ReportMetric(cached, "cached-share")
}

// latRec is one add of an open-loop load: when it was due, sent and
// acknowledged (ns since the load started), and the phase it belongs to.
type latRec struct {
	o                    *openLoop
	intended, sent, done int64
	phase                int8
}

func (r *latRec) AddComplete(err error) {
	r.done = int64(time.Since(r.o.start))
	if err != nil {
		r.o.failed.Store(true)
	}
	r.o.wg.Done()
}

// openLoop adds entries at a fixed rate whatever the latency (no window):
// add i is due at start + i/rate. Go's timers wake about every millisecond
// here, so adds leave in bursts of the ones due by then; latency is taken
// from each add's AddEntry call to its callback, and the send delay (call
// minus due time) is reported apart (OMB's publish latency and publish
// delay).
type openLoop struct {
	eng    *Bookie
	ledger base.LedgerID
	next   base.EntryID
	buf    *bufs.Buf
	period time.Duration
	start  time.Time
	chunks [][]latRec
	n      int
	wg     sync.WaitGroup
	failed atomic.Bool
}

const latChunk = 1 << 16

func newOpenLoop(eng *Bookie, ledger base.LedgerID, size, rate int) *openLoop {
	return &openLoop{
		eng: eng, ledger: ledger, period: time.Second / time.Duration(rate),
		buf: bufs.Wrap(entryBytes(ledger, 0, -1, size-entryHeaderSize)),
	}
}

// run sends adds until phase(i) returns a negative phase, then waits for
// every callback.
func (o *openLoop) run(b testing.TB, phase func(i int) int8) {
	b.Helper()
	ctx := context.Background()
	o.start = time.Now()
	for i := 0; ; i++ {
		p := phase(i)
		if p < 0 {
			break
		}
		due := time.Duration(i) * o.period
		if d := due - time.Since(o.start); d > 0 {
			time.Sleep(d)
		}
		if i/latChunk == len(o.chunks) {
			o.chunks = append(o.chunks, make([]latRec, latChunk))
		}
		r := &o.chunks[i/latChunk][i%latChunk]
		*r = latRec{o: o, intended: int64(due), phase: p, sent: int64(time.Since(o.start))}
		o.wg.Add(1)
		if err := o.eng.AddEntry(ctx, o.ledger, o.next, key, o.buf, false, r); err != nil {
			b.Fatal(err)
		}
		o.next++
		o.n++
	}
	o.wg.Wait()
	if o.failed.Load() {
		b.Fatal("an add failed")
	}
}

// histograms returns the latency (µs) of the adds of each phase and the
// send delay (µs) of all of them.
func (o *openLoop) histograms(phases int) (lat []*hdrhistogram.Histogram, delay *hdrhistogram.Histogram) {
	for range phases {
		lat = append(lat, hdrhistogram.New(1, 60_000_000, 3))
	}
	delay = hdrhistogram.New(1, 60_000_000, 3)
	for i := range o.n {
		r := &o.chunks[i/latChunk][i%latChunk]
		if r.phase >= int8(phases) {
			continue
		}
		lat[r.phase].RecordValue(max((r.done-r.sent)/1000, 1))
		delay.RecordValue(max((r.sent-r.intended)/1000, 1))
	}
	return lat, delay
}

func reportLatency(b *testing.B, name string, h *hdrhistogram.Histogram) {
	b.ReportMetric(float64(h.ValueAtQuantile(50)), name+"-p50-us")
	b.ReportMetric(float64(h.ValueAtQuantile(99)), name+"-p99-us")
	b.ReportMetric(float64(h.ValueAtQuantile(99.9)), name+"-p99.9-us")
}

// catchUpReader reads ledger l from its start, in ReadRange batches, while
// switched on; at the end it evicts the logs from the page cache and
// starts over (the read cache is smaller than the ledger).
type catchUpReader struct {
	mu      sync.Mutex
	cond    *sync.Cond
	on      bool
	stopped bool
	bytes   int64         // read while on
	busy    time.Duration // time on
	err     error
	done    chan struct{}
}

// startCatchUpReader starts the reader, switched off; rate bounds its
// bytes per second while on (0: as fast as it can).
func startCatchUpReader(b testing.TB, eng *Bookie, l base.LedgerID, entries base.EntryID, files []string, rate int64) *catchUpReader {
	r := &catchUpReader{done: make(chan struct{})}
	r.cond = sync.NewCond(&r.mu)
	go func() {
		defer close(r.done)
		ctx := context.Background()
		e := base.EntryID(0)
		for {
			r.mu.Lock()
			for !r.on && !r.stopped {
				r.cond.Wait()
			}
			if r.stopped {
				r.mu.Unlock()
				return
			}
			r.mu.Unlock()
			start := time.Now()
			got, err := eng.ReadRange(ctx, l, e, 100, 5<<20)
			if err != nil {
				r.mu.Lock()
				r.err, r.stopped = err, true
				r.mu.Unlock()
				return
			}
			var n int64
			for _, buf := range got {
				n += int64(buf.Len())
				buf.Release()
			}
			e += base.EntryID(len(got))
			if e >= entries {
				e = 0
				for _, name := range files {
					if f, err := os.Open(name); err == nil {
						unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
						f.Close()
					}
				}
			}
			if rate > 0 {
				// Paced: this batch's share of a second at rate.
				if d := time.Duration(n*int64(time.Second)/rate) - time.Since(start); d > 0 {
					time.Sleep(d)
				}
			}
			r.mu.Lock()
			r.bytes += n
			r.busy += time.Since(start)
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *catchUpReader) set(on bool) {
	r.mu.Lock()
	r.on = on
	r.cond.Broadcast()
	r.mu.Unlock()
}

func (r *catchUpReader) stop() error {
	r.mu.Lock()
	r.stopped = true
	r.cond.Broadcast()
	r.mu.Unlock()
	<-r.done
	return r.err
}

// BenchmarkAddLatencyCatchUp: adds of 1 KiB at a fixed rate (open loop)
// to one ledger, in phases of half a second that alternate between no
// reader and a catch-up reader reading another ledger of
// $MAGNETAR_BENCH_READ_MIB (256) MiB of 64 KiB entries from cold entry
// logs in ReadRange batches (the read cache is 32 MiB so that it does not
// hold the ledger), either as fast as it can or paced at 200 MB/s (a
// broker dispatching a backlog over a fast NIC), with the reads=
// modes of BenchmarkCatchUpRead. The first phase is a
// warm-up and not counted. b.N is the number of adds: -benchtime 300000x
// is 15 s at 20,000 adds/s. Metrics: quiet-* and reading-* latency
// percentiles (µs, AddEntry to callback), p99-reading/quiet (the issue's
// target: at most 1.20), the reader's MB/s while on, the adds' send
// delay p99, and the journal's fdatasync p50 and p99 in each phase (upper
// bounds of power-of-two buckets): when they rise while reading, the
// reader slowed the shared device down for the journal.
func BenchmarkAddLatencyCatchUp(b *testing.B) {
	const size, rate = 1 << 10, 20000
	for _, reads := range []readMode{readsDirect, readsBuffered, readsBufferedKernelRA} {
		for _, readMBps := range []int64{0, 200} {
			name := "reader=unthrottled"
			if readMBps > 0 {
				name = fmt.Sprintf("reader=%dMBps", readMBps)
			}
			name += "/reads=" + string(reads)
			b.Run(fmt.Sprintf("size=%s/rate=%d/%s", sizeLabel(size), rate, name), func(b *testing.B) {
				benchLatencyCatchUp(b, size, rate, readMBps, reads)
			})
		}
	}
}

func benchLatencyCatchUp(b *testing.B, size, rate int, readMBps int64, reads readMode) {
	opts := benchEngineOptions(b, b.TempDir())
	opts.Storage.ReadCacheMaxBytes = 32 << 20
	reads.apply(&opts)
	eng, err := Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	const readLedger, addLedger = 1, 2
	entries := fillLedgers(b, eng, []base.LedgerID{readLedger}, 64<<10, benchDataMiB()<<20)
	files := entryLogs(b, opts)
	testutil.DropPageCache(b, files)
	reader := startCatchUpReader(b, eng, readLedger, entries, files, readMBps*1e6)
	phaseLen := rate / 2
	const (
		quiet   = 0
		reading = 1
	)
	o := newOpenLoop(eng, addLedger, size, rate)
	cur := -1
	var syncs [2]journal.Histogram
	last := eng.j.Stats()
	b.ResetTimer()
	o.run(b, func(i int) int8 {
		if i >= b.N+phaseLen {
			return -1
		}
		p := i / phaseLen
		if p != cur {
			now := eng.j.Stats()
			if cur > 0 {
				for k := range now.SyncLatency {
					syncs[cur%2][k] += now.SyncLatency[k] - last.SyncLatency[k]
				}
			}
			last = now
			cur = p
			reader.set(p%2 == 1)
		}
		switch {
		case p == 0:
			return 2 // warm-up, not counted
		case p%2 == 1:
			return reading
		}
		return quiet
	})
	b.StopTimer()
	if err := reader.stop(); err != nil {
		b.Fatal(err)
	}
	lat, delay := o.histograms(2)
	reportLatency(b, "quiet", lat[quiet])
	reportLatency(b, "reading", lat[reading])
	b.ReportMetric(float64(lat[reading].ValueAtQuantile(99))/float64(lat[quiet].ValueAtQuantile(99)), "p99-reading/quiet")
	b.ReportMetric(float64(syncs[quiet].Quantile(0.99).Microseconds()), "quiet-fdatasync-p99-us")
	b.ReportMetric(float64(syncs[reading].Quantile(0.99).Microseconds()), "reading-fdatasync-p99-us")
	b.ReportMetric(float64(syncs[quiet].Quantile(0.5).Microseconds()), "quiet-fdatasync-p50-us")
	b.ReportMetric(float64(syncs[reading].Quantile(0.5).Microseconds()), "reading-fdatasync-p50-us")
	b.ReportMetric(float64(reader.bytes)/reader.busy.Seconds()/1e6, "reader-MB/s")
	b.ReportMetric(float64(delay.ValueAtQuantile(99)), "send-delay-p99-us")
}

// BenchmarkAddLatencyCompaction: adds of 1 KiB at a fixed rate (open loop)
// before, during and after a major compaction (RunGC) of entry logs made
// 80% dead: ten ledgers of $MAGNETAR_BENCH_READ_MIB/8 MiB each (32 by
// default; 1 KiB entries, interleaved) in 64 MiB logs, eight of them
// deleted, the logs evicted from the page cache. The baseline is 2 s of
// adds before and 2 s after the compaction. Compaction copies at the
// default CompactionRateBytes (32 MiB/s) or unthrottled. One op is one
// whole scenario: run with -benchtime 1x. Metrics: base-* and compacting-*
// latency percentiles (µs), p99-compacting/base, the compaction's seconds
// and MB copied and reclaimed.
func BenchmarkAddLatencyCompaction(b *testing.B) {
	const size, rate = 1 << 10, 20000
	for _, throttle := range []int64{0, -1} {
		name := "copy=32MiBps"
		if throttle < 0 {
			name = "copy=unthrottled"
		}
		b.Run(fmt.Sprintf("size=%s/rate=%d/%s", sizeLabel(size), rate, name), func(b *testing.B) {
			for range b.N {
				benchCompaction(b, size, rate, throttle)
			}
		})
	}
}

func benchCompaction(b *testing.B, size, rate int, throttle int64) {
	b.StopTimer()
	opts := benchEngineOptions(b, b.TempDir())
	opts.Storage.EntryLogSizeLimit = 64 << 20
	opts.Storage.CompactionRateBytes = throttle
	eng, err := Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	ctx := context.Background()
	var ledgers []base.LedgerID
	for l := base.LedgerID(1); l <= 10; l++ {
		ledgers = append(ledgers, l)
	}
	per := fillLedgers(b, eng, ledgers, size, benchDataMiB()<<20*10/8)
	for _, l := range ledgers[:8] {
		if err := eng.DeleteLedger(ctx, l); err != nil {
			b.Fatal(err)
		}
	}
	testutil.DropPageCache(b, entryLogs(b, opts))

	const (
		base0      = 0
		compacting = 1
		base1      = 2
	)
	var gcStarted, gcDone atomic.Bool
	var gcRes ledgerstore.GCResult
	var gcErr error
	var gcTime time.Duration
	gcFinished := make(chan struct{})
	baseLen := 2 * rate
	doneAt := -1
	o := newOpenLoop(eng, 100, size, rate)
	b.StartTimer()
	o.run(b, func(i int) int8 {
		switch {
		case i < baseLen:
			return base0
		case !gcStarted.Load():
			gcStarted.Store(true)
			go func() {
				defer close(gcFinished)
				start := time.Now()
				gcRes, gcErr = eng.store.RunGC(ctx, ledgerstore.GCMajor)
				gcTime = time.Since(start)
				gcDone.Store(true)
			}()
			return compacting
		case !gcDone.Load():
			return compacting
		case doneAt < 0:
			doneAt = i
			return base1
		case i < doneAt+baseLen:
			return base1
		}
		return -1
	})
	b.StopTimer()
	<-gcFinished
	if gcErr != nil {
		b.Fatal(gcErr)
	}
	if gcRes.LogsCompacted == 0 {
		b.Fatalf("nothing compacted: %+v", gcRes)
	}
	for _, l := range ledgers[8:] {
		for _, e := range []base.EntryID{0, per / 2, per - 1} {
			buf, err := eng.ReadEntry(ctx, l, e)
			if err != nil {
				b.Fatal(err)
			}
			checkIDs(b, buf, l, e)
			buf.Release()
		}
	}
	lat, delay := o.histograms(3)
	lat[base0].Merge(lat[base1])
	reportLatency(b, "base", lat[base0])
	reportLatency(b, "compacting", lat[compacting])
	b.ReportMetric(float64(lat[compacting].ValueAtQuantile(99))/float64(lat[base0].ValueAtQuantile(99)), "p99-compacting/base")
	b.ReportMetric(gcTime.Seconds(), "compaction-s")
	b.ReportMetric(float64(gcRes.BytesCopied)/1e6, "copied-MB")
	b.ReportMetric(float64(gcRes.BytesReclaimed)/1e6, "reclaimed-MB")
	b.ReportMetric(float64(delay.ValueAtQuantile(99)), "send-delay-p99-us")
}
