package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/magnetar/magnetar/internal/vfs"
	"github.com/magnetar/magnetar/results"
)

// DiskOptions bound DirectWriteBandwidth. The zero value means the defaults.
type DiskOptions struct {
	FS vfs.FS // default vfs.Default
	// Bytes is the most to write; default 256 MiB.
	Bytes int64
	// BlockSize is the size of each write (and of each fdatasync's batch); a
	// multiple of the filesystem's alignment; default 1 MiB.
	BlockSize int
	// MaxTime stops the measurement early; default 5 s. At least one block
	// is always written.
	MaxTime time.Duration
}

// EnsureDefaults fills zero fields.
func (o *DiskOptions) EnsureDefaults() {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Bytes == 0 {
		o.Bytes = 256 << 20
	}
	if o.BlockSize == 0 {
		o.BlockSize = 1 << 20
	}
	if o.MaxTime == 0 {
		o.MaxTime = 5 * time.Second
	}
}

// Validate reports impossible settings.
func (o *DiskOptions) Validate() error {
	if o.BlockSize <= 0 || o.BlockSize%o.FS.Alignment() != 0 {
		return fmt.Errorf("bench: disk block size %d is not a positive multiple of %d", o.BlockSize, o.FS.Alignment())
	}
	if o.Bytes < int64(o.BlockSize) {
		return fmt.Errorf("bench: disk bytes %d below one block (%d)", o.Bytes, o.BlockSize)
	}
	if o.MaxTime < 0 {
		return fmt.Errorf("bench: disk MaxTime %v is negative", o.MaxTime)
	}
	return nil
}

// maxPreallocate caps the space a scratch file reserves up front.
const maxPreallocate = 1 << 30

// FsyncOptions bound FsyncLatency. The zero value means the defaults.
type FsyncOptions struct {
	FS vfs.FS // default vfs.Default
	// Count is the most write+fdatasync operations; default 1000.
	Count int
	// BlockSize is the size of each write; default 4 KiB.
	BlockSize int
	// MaxTime stops the measurement early; default 3 s. At least one
	// operation is always measured.
	MaxTime time.Duration
}

// EnsureDefaults fills zero fields.
func (o *FsyncOptions) EnsureDefaults() {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Count == 0 {
		o.Count = 1000
	}
	if o.BlockSize == 0 {
		o.BlockSize = 4096
	}
	if o.MaxTime == 0 {
		o.MaxTime = 3 * time.Second
	}
}

// Validate reports impossible settings.
func (o *FsyncOptions) Validate() error {
	if o.BlockSize <= 0 || o.BlockSize%o.FS.Alignment() != 0 {
		return fmt.Errorf("bench: fsync block size %d is not a positive multiple of %d", o.BlockSize, o.FS.Alignment())
	}
	if o.Count <= 0 {
		return fmt.Errorf("bench: fsync count %d must be positive", o.Count)
	}
	if o.MaxTime < 0 {
		return fmt.Errorf("bench: fsync MaxTime %v is negative", o.MaxTime)
	}
	return nil
}

// LoopbackOptions bound LoopbackBandwidth. The zero value means the
// defaults.
type LoopbackOptions struct {
	// Bytes is the most to send; default 4 GiB.
	Bytes int64
	// WriteSize is the size of each write; default 1 MiB.
	WriteSize int
	// MaxTime stops the writer early; default 2 s.
	MaxTime time.Duration
}

// EnsureDefaults fills zero fields.
func (o *LoopbackOptions) EnsureDefaults() {
	if o.Bytes == 0 {
		o.Bytes = 4 << 30
	}
	if o.WriteSize == 0 {
		o.WriteSize = 1 << 20
	}
	if o.MaxTime == 0 {
		o.MaxTime = 2 * time.Second
	}
}

// Validate reports impossible settings.
func (o *LoopbackOptions) Validate() error {
	if o.WriteSize <= 0 || o.Bytes < int64(o.WriteSize) {
		return fmt.Errorf("bench: loopback write size %d and bytes %d: need 0 < write size <= bytes", o.WriteSize, o.Bytes)
	}
	if o.MaxTime < 0 {
		return fmt.Errorf("bench: loopback MaxTime %v is negative", o.MaxTime)
	}
	return nil
}

// DirectWriteBandwidth measures sequential write bandwidth of dir's device
// with an fdatasync after every block, writing with O_DIRECT into a
// preallocated scratch file that is removed afterwards. If the filesystem
// refuses O_DIRECT, it measures buffered writes plus fdatasync instead and
// reports Direct=false.
func DirectWriteBandwidth(ctx context.Context, dir string, opts DiskOptions) (results.DiskLimit, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return results.DiskLimit{}, err
	}
	buf := vfs.AlignedBuffer(opts.BlockSize, opts.FS.Alignment())
	fillRandom(buf)
	var out results.DiskLimit
	err := withScratch(opts.FS, dir, "disk", func(f vfs.File) error {
		// A hint, outside the timed loop, as the journal preallocates its
		// segments ahead of the writer; capped so that a large byte budget
		// bounded by MaxTime does not reserve the whole disk.
		_ = f.Preallocate(0, min(opts.Bytes, maxPreallocate))
		start := time.Now()
		deadline := start.Add(opts.MaxTime)
		var off int64
		for off < opts.Bytes {
			if err := ctx.Err(); err != nil {
				return err
			}
			n, err := f.WriteAt(buf, off)
			if err != nil {
				return fmt.Errorf("bench: disk write %s at %d: %w", f.Name(), off, err)
			}
			if err := f.Sync(); err != nil {
				return fmt.Errorf("bench: disk: %w", err)
			}
			off += int64(n)
			if !time.Now().Before(deadline) {
				break
			}
		}
		elapsed := time.Since(start)
		out = results.DiskLimit{
			Dir: dir, Direct: f.Direct(), BlockSize: opts.BlockSize, Bytes: off,
			Elapsed: results.Duration(elapsed), BytesPerSec: perSecond(off, elapsed),
		}
		return nil
	})
	return out, err
}

// FsyncLatency measures the latency of an aligned append of BlockSize bytes
// followed by fdatasync, Count times, in a scratch file that is removed
// afterwards (O_DIRECT, with the same fallback as DirectWriteBandwidth).
func FsyncLatency(ctx context.Context, dir string, opts FsyncOptions) (results.FsyncLimit, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return results.FsyncLimit{}, err
	}
	buf := vfs.AlignedBuffer(opts.BlockSize, opts.FS.Alignment())
	fillRandom(buf)
	h := results.NewHistogram()
	var out results.FsyncLimit
	err := withScratch(opts.FS, dir, "fsync", func(f vfs.File) error {
		_ = f.Preallocate(0, min(int64(opts.Count)*int64(opts.BlockSize), maxPreallocate))
		deadline := time.Now().Add(opts.MaxTime)
		for i := range opts.Count {
			if err := ctx.Err(); err != nil {
				return err
			}
			off := int64(i) * int64(opts.BlockSize)
			t0 := time.Now()
			if _, err := f.WriteAt(buf, off); err != nil {
				return fmt.Errorf("bench: fsync write %s at %d: %w", f.Name(), off, err)
			}
			if err := f.Sync(); err != nil {
				return fmt.Errorf("bench: fsync: %w", err)
			}
			t1 := time.Now()
			results.RecordClamped(h, t1.Sub(t0).Nanoseconds())
			if !t1.Before(deadline) {
				break
			}
		}
		enc, err := results.EncodeHistogram(h)
		if err != nil {
			return err
		}
		out = results.FsyncLimit{Dir: dir, Direct: f.Direct(), BlockSize: opts.BlockSize,
			Latency: results.Summarize(h), Histogram: enc}
		return nil
	})
	return out, err
}

// withScratch creates a uniquely named scratch file in dir (O_DIRECT when the
// filesystem allows it), runs fn, and removes the file. If the first direct
// write is refused with EINVAL (some filesystems accept the open and refuse
// the I/O), fn is run again on a buffered file.
func withScratch(fs vfs.FS, dir, what string, fn func(vfs.File) error) error {
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: %s: mkdir %s: %w", what, dir, err)
	}
	name := filepath.Join(dir, ".magnetar-limits-"+what+"-"+strconv.Itoa(os.Getpid())+"-"+strconv.FormatUint(rand.Uint64(), 36))
	run := func(direct bool) error {
		if !direct {
			// A refused direct open may have left the name behind.
			_ = fs.Remove(name)
		}
		f, err := fs.OpenFile(name, vfs.OpenOptions{Write: true, Create: true, Excl: true, Direct: direct})
		if err != nil {
			return err
		}
		defer func() { _ = fs.Remove(name) }()
		ferr := fn(f)
		cerr := f.Close()
		if ferr != nil {
			return ferr
		}
		return cerr
	}
	err := run(true)
	if errors.Is(err, vfs.ErrDirectUnsupported) || errors.Is(err, syscall.EINVAL) {
		err = run(false)
	}
	if err != nil {
		return fmt.Errorf("bench: %s limit in %s: %w", what, dir, err)
	}
	return nil
}

// LoopbackBandwidth measures the throughput of one TCP connection over
// 127.0.0.1: one goroutine writes WriteSize chunks until Bytes or MaxTime,
// another reads them; the figure is bytes received over the time from the
// first write to the reader's EOF.
func LoopbackBandwidth(ctx context.Context, opts LoopbackOptions) (results.LoopbackLimit, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return results.LoopbackLimit{}, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return results.LoopbackLimit{}, fmt.Errorf("bench: loopback listen: %w", err)
	}
	defer ln.Close()
	// A hard stop for both ends, so that nothing here can hang.
	hardStop := time.Now().Add(opts.MaxTime + 10*time.Second)

	type readResult struct {
		n    int64
		done time.Time
		err  error
	}
	readDone := make(chan readResult, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			readDone <- readResult{err: err}
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(hardStop)
		buf := make([]byte, opts.WriteSize)
		var n int64
		for {
			k, err := conn.Read(buf)
			n += int64(k)
			if err == io.EOF {
				readDone <- readResult{n: n, done: time.Now()}
				return
			}
			if err != nil {
				readDone <- readResult{n: n, err: err}
				return
			}
		}
	}()

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		ln.Close()
		<-readDone
		return results.LoopbackLimit{}, fmt.Errorf("bench: loopback dial: %w", err)
	}
	_ = conn.SetDeadline(hardStop)
	buf := make([]byte, opts.WriteSize)
	fillRandom(buf)
	start := time.Now()
	deadline := start.Add(opts.MaxTime)
	var sent int64
	var werr error
	for sent < opts.Bytes {
		if werr = ctx.Err(); werr != nil {
			break
		}
		chunk := buf
		if rest := opts.Bytes - sent; rest < int64(len(chunk)) {
			chunk = chunk[:rest]
		}
		k, err := conn.Write(chunk)
		sent += int64(k)
		if err != nil {
			werr = err
			break
		}
		if !time.Now().Before(deadline) {
			break
		}
	}
	cerr := conn.Close()
	rr := <-readDone
	switch {
	case werr != nil:
		return results.LoopbackLimit{}, fmt.Errorf("bench: loopback write: %w", werr)
	case cerr != nil:
		return results.LoopbackLimit{}, fmt.Errorf("bench: loopback close: %w", cerr)
	case rr.err != nil:
		return results.LoopbackLimit{}, fmt.Errorf("bench: loopback read: %w", rr.err)
	case rr.n != sent:
		return results.LoopbackLimit{}, fmt.Errorf("bench: loopback: sent %d bytes, received %d", sent, rr.n)
	}
	elapsed := rr.done.Sub(start)
	return results.LoopbackLimit{WriteSize: opts.WriteSize, Bytes: rr.n, Elapsed: results.Duration(elapsed),
		BytesPerSec: perSecond(rr.n, elapsed)}, nil
}

// Cores is the number of logical CPUs usable by the process.
func Cores() int { return runtime.NumCPU() }

// CPUTime is CPU time consumed by the process.
type CPUTime struct {
	User, System time.Duration
}

// Total is user plus system time.
func (c CPUTime) Total() time.Duration { return c.User + c.System }

// Sub returns c − o: the CPU time spent between two samples.
func (c CPUTime) Sub(o CPUTime) CPUTime {
	return CPUTime{User: c.User - o.User, System: c.System - o.System}
}

// ProcessCPU returns the CPU time the process (all its threads) has used, from
// getrusage(RUSAGE_SELF).
func ProcessCPU() (CPUTime, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return CPUTime{}, fmt.Errorf("bench: getrusage: %w", err)
	}
	return CPUTime{User: time.Duration(ru.Utime.Nano()), System: time.Duration(ru.Stime.Nano())}, nil
}

// BusyCores is CPU time per wall time: how many cores were kept busy.
func BusyCores(cpu CPUTime, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return cpu.Total().Seconds() / wall.Seconds()
}

// LimitsOptions bound MeasureLimits.
type LimitsOptions struct {
	Disk     DiskOptions
	Fsync    FsyncOptions
	Loopback LoopbackOptions
	// SkipDisk and SkipLoopback leave those limits unmeasured (zero).
	SkipDisk     bool
	SkipLoopback bool
}

// MeasureLimits measures every limit in turn (never concurrently: they would
// disturb each other), disk ones in dir.
func MeasureLimits(ctx context.Context, dir string, opts LimitsOptions) (results.Limits, error) {
	l := results.Limits{Cores: Cores()}
	var err error
	if !opts.SkipDisk {
		if l.Disk, err = DirectWriteBandwidth(ctx, dir, opts.Disk); err != nil {
			return l, err
		}
		if l.Fsync, err = FsyncLatency(ctx, dir, opts.Fsync); err != nil {
			return l, err
		}
	}
	if !opts.SkipLoopback {
		if l.Loopback, err = LoopbackBandwidth(ctx, opts.Loopback); err != nil {
			return l, err
		}
	}
	return l, nil
}

// LimitNotes are the notes a reader of l must see: fallbacks taken.
func LimitNotes(l results.Limits) []string {
	var notes []string
	if l.Disk.Bytes > 0 && !l.Disk.Direct {
		notes = append(notes, fmt.Sprintf("the filesystem of %s refused O_DIRECT: the disk bandwidth is buffered writes + fdatasync", l.Disk.Dir))
	}
	if l.Fsync.Latency.Count > 0 && !l.Fsync.Direct {
		notes = append(notes, fmt.Sprintf("the filesystem of %s refused O_DIRECT: fdatasync latency measured after buffered writes", l.Fsync.Dir))
	}
	return notes
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// fillRandom fills b with pseudo-random bytes, so that no layer (a
// compressing filesystem or device) can make the data smaller.
func fillRandom(b []byte) {
	r := rand.NewChaCha8([32]byte{'m', 'a', 'g', 'n', 'e', 't', 'a', 'r'})
	_, _ = r.Read(b)
}
