package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/vfs"
	"github.com/magnetar/magnetar/results"
)

// Small bounds keep the package's tests to a few seconds on a shared
// 2-core machine; the defaults are for real runs.
var testLimits = LimitsOptions{
	Disk:     DiskOptions{Bytes: 8 << 20, MaxTime: time.Minute},
	Fsync:    FsyncOptions{Count: 20, MaxTime: time.Minute},
	Loopback: LoopbackOptions{Bytes: 64 << 20, MaxTime: time.Minute},
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	names, err := vfs.Default.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 0 {
		t.Fatalf("scratch files left behind: %v", names)
	}
}

func TestDirectWriteBandwidth(t *testing.T) {
	dir := t.TempDir()
	d, err := DirectWriteBandwidth(context.Background(), dir, testLimits.Disk)
	if err != nil {
		t.Fatal(err)
	}
	if d.Bytes != 8<<20 || d.BlockSize != 1<<20 || d.BytesPerSec <= 0 || d.Elapsed <= 0 || d.Dir != dir {
		t.Fatalf("%+v", d)
	}
	t.Logf("direct=%v %.0f MiB/s", d.Direct, d.BytesPerSec/(1<<20))
	assertEmptyDir(t, dir)
}

// Bounded by time: a byte budget far beyond what fits in MaxTime stops at
// the deadline (after at least one block).
func TestDirectWriteBandwidthStopsAtMaxTime(t *testing.T) {
	dir := t.TempDir()
	d, err := DirectWriteBandwidth(context.Background(), dir, DiskOptions{Bytes: 1 << 40, BlockSize: 64 << 10, MaxTime: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if d.Bytes != 64<<10 {
		t.Fatalf("wrote %d bytes, want exactly one block", d.Bytes)
	}
	assertEmptyDir(t, dir)
}

// noDirectFS refuses O_DIRECT as tmpfs and some overlay filesystems do.
type noDirectFS struct{ vfs.FS }

func (f noDirectFS) OpenFile(name string, o vfs.OpenOptions) (vfs.File, error) {
	if o.Direct {
		return nil, fmt.Errorf("open %s: %w", name, vfs.ErrDirectUnsupported)
	}
	return f.FS.OpenFile(name, o)
}

func TestDiskFallbackWithoutDirect(t *testing.T) {
	dir := t.TempDir()
	fs := noDirectFS{vfs.Default}
	d, err := DirectWriteBandwidth(context.Background(), dir, DiskOptions{FS: fs, Bytes: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if d.Direct || d.Bytes != 2<<20 || d.BytesPerSec <= 0 {
		t.Fatalf("%+v", d)
	}
	f, err := FsyncLatency(context.Background(), dir, FsyncOptions{FS: fs, Count: 5})
	if err != nil {
		t.Fatal(err)
	}
	if f.Direct || f.Latency.Count != 5 {
		t.Fatalf("%+v", f)
	}
	notes := LimitNotes(results.Limits{Disk: d, Fsync: f})
	if len(notes) != 2 {
		t.Fatalf("notes %q, want both fallbacks reported", notes)
	}
	assertEmptyDir(t, dir)
}

func TestFsyncLatency(t *testing.T) {
	dir := t.TempDir()
	f, err := FsyncLatency(context.Background(), dir, testLimits.Fsync)
	if err != nil {
		t.Fatal(err)
	}
	p := f.Latency
	if p.Count != 20 || p.P50 <= 0 || p.P99 < p.P50 || p.Max < p.P99 || f.BlockSize != 4096 {
		t.Fatalf("%+v", f)
	}
	h, err := results.DecodeHistogram(f.Histogram)
	if err != nil {
		t.Fatal(err)
	}
	if h.TotalCount() != 20 || results.Summarize(h) != p {
		t.Fatalf("histogram holds %d values, percentiles %+v vs %+v", h.TotalCount(), results.Summarize(h), p)
	}
	t.Logf("direct=%v p50 %v p99 %v", f.Direct, time.Duration(p.P50), time.Duration(p.P99))
	assertEmptyDir(t, dir)
}

func TestLoopbackBandwidth(t *testing.T) {
	l, err := LoopbackBandwidth(context.Background(), testLimits.Loopback)
	if err != nil {
		t.Fatal(err)
	}
	if l.Bytes != 64<<20 || l.BytesPerSec <= 0 || l.Elapsed <= 0 || l.WriteSize != 1<<20 {
		t.Fatalf("%+v", l)
	}
	t.Logf("%.0f MiB/s", l.BytesPerSec/(1<<20))
	// Bounded by time.
	l, err = LoopbackBandwidth(context.Background(), LoopbackOptions{Bytes: 1 << 50, MaxTime: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if l.Bytes != 1<<20 {
		t.Fatalf("sent %d bytes past the deadline, want one write", l.Bytes)
	}
	// A partial last write.
	l, err = LoopbackBandwidth(context.Background(), LoopbackOptions{Bytes: 3<<20 + 5, MaxTime: time.Minute})
	if err != nil || l.Bytes != 3<<20+5 {
		t.Fatalf("%+v, %v", l, err)
	}
}

func TestLimitsHonourContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	if _, err := DirectWriteBandwidth(ctx, dir, testLimits.Disk); !errors.Is(err, context.Canceled) {
		t.Errorf("disk: %v", err)
	}
	if _, err := FsyncLatency(ctx, dir, testLimits.Fsync); !errors.Is(err, context.Canceled) {
		t.Errorf("fsync: %v", err)
	}
	if _, err := LoopbackBandwidth(ctx, testLimits.Loopback); !errors.Is(err, context.Canceled) {
		t.Errorf("loopback: %v", err)
	}
	assertEmptyDir(t, dir)
}

func TestLimitOptionsValidate(t *testing.T) {
	dir := t.TempDir()
	if _, err := DirectWriteBandwidth(context.Background(), dir, DiskOptions{BlockSize: 1000}); err == nil {
		t.Error("unaligned block size accepted")
	}
	if _, err := DirectWriteBandwidth(context.Background(), dir, DiskOptions{Bytes: 4096, BlockSize: 8192}); err == nil {
		t.Error("bytes below one block accepted")
	}
	if _, err := FsyncLatency(context.Background(), dir, FsyncOptions{Count: -1}); err == nil {
		t.Error("negative count accepted")
	}
	if _, err := LoopbackBandwidth(context.Background(), LoopbackOptions{Bytes: 10, WriteSize: 100}); err == nil {
		t.Error("bytes below one write accepted")
	}
}

func TestProcessCPU(t *testing.T) {
	before, err := ProcessCPU()
	if err != nil {
		t.Fatal(err)
	}
	// Burn CPU until the accounting moves (it has tick granularity), bounded.
	deadline := time.Now().Add(10 * time.Second)
	x := 1.0
	var after CPUTime
	for time.Now().Before(deadline) {
		for i := range 1_000_000 {
			x = x*1.0000001 + float64(i&1)
		}
		if after, err = ProcessCPU(); err != nil {
			t.Fatal(err)
		}
		if after.Total() > before.Total() {
			break
		}
	}
	used := after.Sub(before)
	if used.Total() <= 0 || used.User < 0 || used.System < 0 {
		t.Fatalf("CPU used %+v (x=%v)", used, x)
	}
	if b := BusyCores(CPUTime{User: 3 * time.Second, System: time.Second}, 2*time.Second); b != 2 {
		t.Fatalf("BusyCores = %v, want 2", b)
	}
	if BusyCores(used, 0) != 0 {
		t.Fatal("BusyCores over zero wall time")
	}
	if Cores() != runtime.NumCPU() || Cores() <= 0 {
		t.Fatal("Cores")
	}
}

func TestDescribeMachine(t *testing.T) {
	m := DescribeMachine(nil)
	if m.Cores != runtime.NumCPU() || m.GoVersion != runtime.Version() || m.OS != runtime.GOOS || m.Arch != runtime.GOARCH {
		t.Fatalf("%+v", m)
	}
	if runtime.GOOS == "linux" {
		if m.Kernel == "" || m.MemoryBytes == 0 {
			t.Fatalf("kernel %q memory %d", m.Kernel, m.MemoryBytes)
		}
		if _, err := os.Stat("/proc/cpuinfo"); err == nil && m.CPUModel == "" {
			t.Logf("no CPU model in /proc/cpuinfo on this machine")
		}
	}
	if got := cpuModel([]byte("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n")); got != "AMD EPYC 7B13" {
		t.Errorf("cpuModel = %q", got)
	}
	if got := memTotal([]byte("MemTotal:       24684096 kB\nMemFree: 1 kB\n")); got != 24684096*1024 {
		t.Errorf("memTotal = %d", got)
	}
}

// The figures this machine gives with the default bounds, median of a few
// runs: MAGNETAR_LIMITS=1 go test -run TestReportLimits -v ./bench/
func TestReportLimits(t *testing.T) {
	if os.Getenv("MAGNETAR_LIMITS") == "" {
		t.Skip("set MAGNETAR_LIMITS=1 to measure this machine's limits with the default bounds")
	}
	dir := os.Getenv("MAGNETAR_LIMITS_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	var disk, p50, p99, loop []float64
	direct := true
	for range 5 {
		l, err := MeasureLimits(context.Background(), dir, LimitsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		direct = direct && l.Disk.Direct
		disk = append(disk, l.Disk.BytesPerSec/(1<<20))
		p50 = append(p50, float64(l.Fsync.Latency.P50)/1e3)
		p99 = append(p99, float64(l.Fsync.Latency.P99)/1e3)
		loop = append(loop, l.Loopback.BytesPerSec/(1<<20))
		t.Logf("run: disk %.0f MiB/s (%d MiB in %s), fdatasync p50 %.0fµs p99 %.0fµs (%d ops), loopback %.0f MiB/s",
			disk[len(disk)-1], l.Disk.Bytes>>20, l.Disk.Elapsed, p50[len(p50)-1], p99[len(p99)-1], l.Fsync.Latency.Count, loop[len(loop)-1])
	}
	med := func(xs []float64) float64 { s := slices.Clone(xs); slices.Sort(s); return s[len(s)/2] }
	t.Logf("median of 5 in %s: disk %.0f MiB/s (direct=%v, 1 MiB blocks + fdatasync), fdatasync 4 KiB p50 %.0fµs p99 %.0fµs, loopback %.0f MiB/s, %d cores",
		dir, med(disk), direct, med(p50), med(p99), med(loop), Cores())
}
