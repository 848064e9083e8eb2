package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOSDirectIO writes aligned blocks of several sizes through O_DIRECT on
// a temporary directory (ext4 on CI, where O_DIRECT must work) and reads them
// back through the page cache and through O_DIRECT.
func TestOSDirectIO(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "direct")
	f := openDirect(t, Default, name, OpenOptions{Write: true, Create: true})
	defer f.Close()

	sizes := []int{4 << 10, 64 << 10, 1 << 20}
	var want []byte
	var off int64
	for i, size := range sizes {
		buf := AlignedBuffer(size, DefaultAlignment)
		for j := range buf {
			buf[j] = byte(i*31 + j%253)
		}
		if n, err := f.WriteAt(buf, off); n != size || err != nil {
			t.Fatalf("WriteAt %d bytes at %d = %d, %v", size, off, n, err)
		}
		want = append(want, buf...)
		off += int64(size)
	}
	must(t, f.Sync())

	buffered, err := Default.Open(name)
	must(t, err)
	defer buffered.Close()
	got, err := io.ReadAll(buffered)
	must(t, err)
	if !bytes.Equal(got, want) {
		t.Fatalf("buffered read back differs (%d bytes, want %d)", len(got), len(want))
	}

	direct := openDirect(t, Default, name, OpenOptions{})
	defer direct.Close()
	var roff int64
	for _, size := range sizes {
		buf := AlignedBuffer(size, DefaultAlignment)
		if n, err := direct.ReadAt(buf, roff); n != size || err != nil {
			t.Fatalf("direct ReadAt %d at %d = %d, %v", size, roff, n, err)
		}
		if !bytes.Equal(buf, want[roff:roff+int64(size)]) {
			t.Fatalf("direct read of %d bytes at %d differs", size, roff)
		}
		roff += int64(size)
	}
}

// TestOSDirectRefusesUnaligned checks that unaligned direct I/O is refused
// before it reaches the kernel and leaves the file untouched.
func TestOSDirectRefusesUnaligned(t *testing.T) {
	name := filepath.Join(t.TempDir(), "direct")
	f := openDirect(t, Default, name, OpenOptions{Write: true, Create: true})
	defer f.Close()
	block := AlignedBuffer(2*DefaultAlignment, DefaultAlignment)
	cases := []struct {
		name string
		b    []byte
		off  int64
	}{
		{"buffer", block[1 : 1+DefaultAlignment], 0},
		{"length 512", block[:512], 0},
		{"length 4097", block[:DefaultAlignment+1], 0},
		{"offset 512", block[:DefaultAlignment], 512},
		{"offset 4095", block[:DefaultAlignment], DefaultAlignment - 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := f.WriteAt(c.b, c.off)
			if !errors.Is(err, ErrUnaligned) || n != 0 {
				t.Fatalf("WriteAt = %d, %v; want 0, ErrUnaligned", n, err)
			}
			if _, err := f.ReadAt(c.b, c.off); !errors.Is(err, ErrUnaligned) {
				t.Fatalf("ReadAt: %v, want ErrUnaligned", err)
			}
			fi, err := f.Stat()
			must(t, err)
			if fi.Size() != 0 {
				t.Fatalf("a refused write changed the size to %d", fi.Size())
			}
		})
	}
}

// TestOSDirectUnsupported opens a file with O_DIRECT on tmpfs, which older
// kernels refuse; the refusal must come back as ErrDirectUnsupported.
func TestOSDirectUnsupported(t *testing.T) {
	var st unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		t.Skip("no tmpfs at /dev/shm")
	}
	dir, err := os.MkdirTemp("/dev/shm", "vfs-test")
	must(t, err)
	defer os.RemoveAll(dir)
	f, err := Default.OpenFile(filepath.Join(dir, "f"), OpenOptions{Write: true, Create: true, Direct: true})
	if err == nil {
		f.Close()
		t.Skip("this kernel supports O_DIRECT on tmpfs")
	}
	if !errors.Is(err, ErrDirectUnsupported) {
		t.Fatalf("O_DIRECT on tmpfs: %v, want ErrDirectUnsupported", err)
	}
}

// TestOSPreallocate checks that fallocate reserves blocks without changing
// the size.
func TestOSPreallocate(t *testing.T) {
	name := filepath.Join(t.TempDir(), "p")
	f, err := Default.Create(name)
	must(t, err)
	defer f.Close()
	const n = 4 << 20
	must(t, f.Preallocate(0, n))
	fi, err := f.Stat()
	must(t, err)
	if fi.Size() != 0 {
		t.Fatalf("size after Preallocate = %d, want 0", fi.Size())
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		t.Fatalf("Sys() is %T", fi.Sys())
	}
	if got := st.Blocks * 512; got < n {
		t.Fatalf("%d bytes allocated after preallocating %d", got, n)
	}
	// Writing inside the reserved range still extends the size normally.
	_, err = f.WriteAt([]byte("x"), n-1)
	must(t, err)
	fi, err = f.Stat()
	must(t, err)
	if fi.Size() != n {
		t.Fatalf("size after a write at the end of the reservation = %d", fi.Size())
	}
}

func TestOSSync(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "s")
	f, err := Default.Create(name)
	must(t, err)
	_, err = f.Write([]byte("durable"))
	must(t, err)
	must(t, f.Sync()) // fdatasync
	must(t, f.Close())
	if err := f.Sync(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Sync after Close: %v, want os.ErrClosed", err)
	}
	if err := f.Preallocate(0, 4096); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Preallocate after Close: %v, want os.ErrClosed", err)
	}
	r, err := Default.Open(name)
	must(t, err)
	must(t, r.Sync()) // fdatasync on a read-only descriptor is allowed
	must(t, r.Close())
	must(t, Default.SyncDir(dir))
	must(t, Default.SyncDir(dir+"/"))
}

func TestOSDiskUsage(t *testing.T) {
	dir := t.TempDir()
	du, err := Default.DiskUsage(dir)
	must(t, err)
	var st unix.Statfs_t
	must(t, unix.Statfs(dir, &st))
	if want := st.Blocks * uint64(st.Frsize); du.TotalBytes != want {
		t.Fatalf("TotalBytes = %d, statfs says %d", du.TotalBytes, want)
	}
	if du.FreeBytes == 0 || du.FreeBytes > du.TotalBytes {
		t.Fatalf("FreeBytes = %d of %d", du.FreeBytes, du.TotalBytes)
	}
	if _, err := Default.DiskUsage(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("DiskUsage of a missing path succeeded")
	}
}

func TestIsNoSpace(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{syscall.ENOSPC, true},
		{&os.PathError{Op: "write", Path: "f", Err: syscall.ENOSPC}, true},
		{fmt.Errorf("journal: write: %w", &os.PathError{Op: "write", Path: "f", Err: syscall.ENOSPC}), true},
		{syscall.EIO, false},
		{nil, false},
	}
	for _, c := range cases {
		if got := IsNoSpace(c.err); got != c.want {
			t.Errorf("IsNoSpace(%v) = %v", c.err, got)
		}
	}
}

func TestAlignedBuffer(t *testing.T) {
	for _, c := range []struct{ n, align int }{{0, 4096}, {1, 512}, {4096, 4096}, {1 << 20, 4096}, {100, 1}} {
		b := AlignedBuffer(c.n, c.align)
		if len(b) != c.n || cap(b) != c.n {
			t.Errorf("AlignedBuffer(%d, %d): len %d cap %d", c.n, c.align, len(b), cap(b))
		}
		if c.align > 1 && c.n%c.align == 0 && !IsAligned(b, c.align) {
			t.Errorf("AlignedBuffer(%d, %d) is not aligned", c.n, c.align)
		}
	}
	if got := AlignUp(4097, 4096); got != 8192 {
		t.Errorf("AlignUp(4097) = %d", got)
	}
	if got := AlignUp(4096, 4096); got != 4096 {
		t.Errorf("AlignUp(4096) = %d", got)
	}
}

// TestLockDir: a directory locked once cannot be locked again (in this
// process too: the lock belongs to the open file) until the first lock's
// file is closed.
func TestLockDir(t *testing.T) {
	dir := t.TempDir()
	l1, err := LockDir(Default, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockDir(Default, dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	if err := l1.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := LockDir(Default, dir)
	if err != nil {
		t.Fatalf("lock after the first was released: %v", err)
	}
	l2.Close()
}
