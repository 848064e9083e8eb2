package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// impl makes a fresh filesystem and an empty directory on it.
type impl struct {
	name string
	make func(t *testing.T) (FS, string)
}

func memDir(t *testing.T) (*MemFS, string) {
	t.Helper()
	fs := NewMem()
	if err := fs.MkdirAll("/test", 0o755); err != nil {
		t.Fatal(err)
	}
	return fs, "/test"
}

func impls() []impl {
	return []impl{
		{"os", func(t *testing.T) (FS, string) { return Default, t.TempDir() }},
		{"mem", func(t *testing.T) (FS, string) { return memDir(t) }},
		{"inject(os)", func(t *testing.T) (FS, string) { return NewInjector(Default), t.TempDir() }},
		{"inject(mem)", func(t *testing.T) (FS, string) {
			fs, dir := memDir(t)
			return NewInjector(fs), dir
		}},
	}
}

// TestConformance runs the semantics every FS shares against every
// implementation.
func TestConformance(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, fs FS, dir string)
	}{
		{"WriteReadBack", testWriteReadBack},
		{"SequentialReadWrite", testSequentialReadWrite},
		{"Missing", testMissing},
		{"CreateExcl", testCreateExcl},
		{"CreateTruncates", testCreateTruncates},
		{"Truncate", testTruncate},
		{"Rename", testRename},
		{"Remove", testRemove},
		{"ListSorted", testListSorted},
		{"MkdirAll", testMkdirAll},
		{"ReadOnlyHandle", testReadOnlyHandle},
		{"ClosedHandle", testClosedHandle},
		{"Direct", testDirect},
		{"Preallocate", testPreallocate},
		{"SyncDir", testSyncDir},
		{"DiskUsage", testDiskUsage},
		{"ConcurrentWriteAt", testConcurrentWriteAt},
	}
	for _, im := range impls() {
		t.Run(im.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					fs, dir := im.make(t)
					c.run(t, fs, dir)
				})
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// writeFile creates name with content and closes it.
func writeFile(t *testing.T, fs FS, name, content string) {
	t.Helper()
	f, err := fs.Create(name)
	must(t, err)
	if _, err := f.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	must(t, f.Sync())
	must(t, f.Close())
}

// readFile returns name's content.
func readFile(t *testing.T, fs FS, name string) string {
	t.Helper()
	f, err := fs.Open(name)
	must(t, err)
	defer f.Close()
	b, err := io.ReadAll(f)
	must(t, err)
	return string(b)
}

func testWriteReadBack(t *testing.T, fs FS, dir string) {
	name := filepath.Join(dir, "f")
	f, err := fs.Create(name)
	must(t, err)
	if f.Name() != name {
		t.Errorf("Name() = %q, want %q", f.Name(), name)
	}
	if f.Direct() {
		t.Error("Direct() true on a buffered handle")
	}
	if n, err := f.Write([]byte("hello")); n != 5 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if n, err := f.WriteAt([]byte(" world"), 5); n != 6 || err != nil {
		t.Fatalf("WriteAt = %d, %v", n, err)
	}
	// A write past the end leaves a zero-filled hole.
	if _, err := f.WriteAt([]byte("!"), 13); err != nil {
		t.Fatal(err)
	}
	must(t, f.Sync())
	fi, err := f.Stat()
	must(t, err)
	if fi.Size() != 14 || fi.IsDir() {
		t.Errorf("file Stat: size %d dir %v, want 14 false", fi.Size(), fi.IsDir())
	}
	must(t, f.Close())

	if got, want := readFile(t, fs, name), "hello world\x00\x00!"; got != want {
		t.Errorf("content %q, want %q", got, want)
	}
	fi, err = fs.Stat(name)
	must(t, err)
	if fi.Size() != 14 || fi.Name() != "f" || fi.IsDir() {
		t.Errorf("Stat: %q size %d dir %v", fi.Name(), fi.Size(), fi.IsDir())
	}
	fi, err = fs.Stat(dir)
	must(t, err)
	if !fi.IsDir() {
		t.Errorf("Stat(dir).IsDir() false")
	}

	r, err := fs.Open(name)
	must(t, err)
	defer r.Close()
	buf := make([]byte, 5)
	if n, err := r.ReadAt(buf, 6); n != 5 || err != nil || string(buf) != "world" {
		t.Errorf("ReadAt(6) = %d %v %q", n, err, buf)
	}
	// A ReadAt that reaches the end reports io.EOF with the bytes it got.
	if n, err := r.ReadAt(buf, 11); n != 3 || err != io.EOF {
		t.Errorf("ReadAt at tail = %d, %v; want 3, io.EOF", n, err)
	}
	if n, err := r.ReadAt(buf, 100); n != 0 || err != io.EOF {
		t.Errorf("ReadAt past end = %d, %v; want 0, io.EOF", n, err)
	}
}

func testSequentialReadWrite(t *testing.T, fs FS, dir string) {
	name := filepath.Join(dir, "seq")
	f, err := fs.Create(name)
	must(t, err)
	for _, s := range []string{"ab", "cd", "ef"} {
		if _, err := f.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	must(t, f.Close())
	r, err := fs.Open(name)
	must(t, err)
	defer r.Close()
	buf := make([]byte, 4)
	if n, err := r.Read(buf); n != 4 || err != nil || string(buf) != "abcd" {
		t.Fatalf("Read = %d %v %q", n, err, buf[:n])
	}
	if n, err := r.Read(buf); n != 2 || err != nil || string(buf[:n]) != "ef" {
		t.Fatalf("second Read = %d %v %q", n, err, buf[:n])
	}
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read at end = %d %v, want 0 io.EOF", n, err)
	}
}

func testMissing(t *testing.T, fs FS, dir string) {
	missing := filepath.Join(dir, "missing")
	checks := map[string]error{}
	_, checks["Open"] = fs.Open(missing)
	_, checks["OpenFile(Write)"] = fs.OpenFile(missing, OpenOptions{Write: true})
	_, checks["Create in missing dir"] = fs.Create(filepath.Join(missing, "f"))
	_, checks["Stat"] = fs.Stat(missing)
	_, checks["List"] = fs.List(missing)
	checks["Remove"] = fs.Remove(missing)
	checks["Rename"] = fs.Rename(missing, filepath.Join(dir, "other"))
	checks["SyncDir"] = fs.SyncDir(missing)
	for op, err := range checks {
		if !IsNotExist(err) {
			t.Errorf("%s of a missing path: %v, want a not-exist error", op, err)
		}
	}
	if err := fs.RemoveAll(missing); err != nil {
		t.Errorf("RemoveAll of a missing path: %v", err)
	}
	if err := fs.RemoveAll(filepath.Join(missing, "deeper")); err != nil {
		t.Errorf("RemoveAll below a missing path: %v", err)
	}
}

func testCreateExcl(t *testing.T, fs FS, dir string) {
	name := filepath.Join(dir, "x")
	opts := OpenOptions{Write: true, Create: true, Excl: true}
	f, err := fs.OpenFile(name, opts)
	must(t, err)
	must(t, f.Close())
	if _, err := fs.OpenFile(name, opts); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second exclusive create: %v, want os.ErrExist", err)
	}
}

func testCreateTruncates(t *testing.T, fs FS, dir string) {
	name := filepath.Join(dir, "t")
	writeFile(t, fs, name, "old content")
	f, err := fs.OpenFile(name, OpenOptions{Write: true})
	must(t, err)
	_, err = f.WriteAt([]byte("NEW"), 0)
	must(t, err)
	must(t, f.Close())
	if got := readFile(t, fs, name); got != "NEW content" {
		t.Fatalf("open without Truncate then write: %q", got)
	}
	writeFile(t, fs, name, "new")
	if got := readFile(t, fs, name); got != "new" {
		t.Fatalf("after Create over an existing file: %q", got)
	}
}

func testTruncate(t *testing.T, fs FS, dir string) {
	name := filepath.Join(dir, "t")
	writeFile(t, fs, name, "0123456789")
	f, err := fs.OpenFile(name, OpenOptions{Write: true})
	must(t, err)
	defer f.Close()
	must(t, f.Truncate(4))
	must(t, f.Truncate(6))
	if got := readFile(t, fs, name); got != "0123\x00\x00" {
		t.Fatalf("after shrink and grow: %q", got)
	}
}

func testRename(t *testing.T, fs FS, dir string) {
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeFile(t, fs, a, "from a")
	writeFile(t, fs, b, "from b")
	must(t, fs.Rename(a, b))
	if _, err := fs.Stat(a); !IsNotExist(err) {
		t.Errorf("old name after rename: %v", err)
	}
	if got := readFile(t, fs, b); got != "from a" {
		t.Errorf("new name holds %q, want the renamed file's content", got)
	}
	sub := filepath.Join(dir, "sub")
	must(t, fs.MkdirAll(sub, 0o755))
	c := filepath.Join(sub, "c")
	must(t, fs.Rename(b, c))
	if got := readFile(t, fs, c); got != "from a" {
		t.Errorf("after a rename into another directory: %q", got)
	}
	names, err := fs.List(dir)
	must(t, err)
	if fmt.Sprint(names) != "[sub]" {
		t.Errorf("List after renames = %v", names)
	}
	// Directories move with their content, but not into themselves.
	if err := fs.Rename(sub, filepath.Join(sub, "inner")); err == nil {
		t.Error("renaming a directory into itself succeeded")
	}
	moved := filepath.Join(dir, "moved")
	must(t, fs.Rename(sub, moved))
	if got := readFile(t, fs, filepath.Join(moved, "c")); got != "from a" {
		t.Errorf("after renaming its directory: %q", got)
	}
	writeFile(t, fs, filepath.Join(dir, "file"), "")
	if err := fs.Rename(moved, filepath.Join(dir, "file")); err == nil {
		t.Error("renaming a directory over a file succeeded")
	}
}

func testRemove(t *testing.T, fs FS, dir string) {
	sub := filepath.Join(dir, "sub")
	must(t, fs.MkdirAll(filepath.Join(sub, "deep"), 0o755))
	f := filepath.Join(sub, "f")
	writeFile(t, fs, f, "x")
	writeFile(t, fs, filepath.Join(sub, "deep", "g"), "y")
	if err := fs.Remove(sub); err == nil {
		t.Fatal("Remove of a non-empty directory succeeded")
	}
	must(t, fs.Remove(f))
	if _, err := fs.Stat(f); !IsNotExist(err) {
		t.Fatalf("Stat after Remove: %v", err)
	}
	must(t, fs.RemoveAll(sub))
	if _, err := fs.Stat(sub); !IsNotExist(err) {
		t.Fatalf("Stat after RemoveAll: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	must(t, fs.MkdirAll(empty, 0o755))
	must(t, fs.Remove(empty))
}

func testListSorted(t *testing.T, fs FS, dir string) {
	for _, n := range []string{"c", "a", "b10", "b2"} {
		writeFile(t, fs, filepath.Join(dir, n), n)
	}
	must(t, fs.MkdirAll(filepath.Join(dir, "d"), 0o755))
	names, err := fs.List(dir)
	must(t, err)
	if got, want := fmt.Sprint(names), "[a b10 b2 c d]"; got != want {
		t.Fatalf("List = %s, want %s", got, want)
	}
	if _, err := fs.List(filepath.Join(dir, "a")); err == nil {
		t.Fatal("List of a file succeeded")
	}
}

func testMkdirAll(t *testing.T, fs FS, dir string) {
	deep := filepath.Join(dir, "x", "y", "z")
	must(t, fs.MkdirAll(deep, 0o755))
	must(t, fs.MkdirAll(deep, 0o755)) // idempotent
	fi, err := fs.Stat(deep)
	must(t, err)
	if !fi.IsDir() {
		t.Fatal("MkdirAll made something that is not a directory")
	}
	writeFile(t, fs, filepath.Join(dir, "file"), "")
	if err := fs.MkdirAll(filepath.Join(dir, "file", "sub"), 0o755); err == nil {
		t.Fatal("MkdirAll through a file succeeded")
	}
	if _, err := fs.OpenFile(deep, OpenOptions{Write: true}); err == nil {
		t.Fatal("opening a directory for writing succeeded")
	}
}

func testReadOnlyHandle(t *testing.T, fs FS, dir string) {
	name := filepath.Join(dir, "ro")
	writeFile(t, fs, name, "data")
	f, err := fs.Open(name)
	must(t, err)
	defer f.Close()
	if _, err := f.Write([]byte("x")); err == nil {
		t.Error("Write on a read-only handle succeeded")
	}
	if _, err := f.WriteAt([]byte("x"), 0); err == nil {
		t.Error("WriteAt on a read-only handle succeeded")
	}
	if got := readFile(t, fs, name); got != "data" {
		t.Errorf("content changed to %q", got)
	}
}

func testClosedHandle(t *testing.T, fs FS, dir string) {
	f, err := fs.Create(filepath.Join(dir, "c"))
	must(t, err)
	must(t, f.Close())
	checks := map[string]error{}
	_, checks["Write"] = f.Write([]byte("x"))
	_, checks["WriteAt"] = f.WriteAt([]byte("x"), 0)
	_, checks["ReadAt"] = f.ReadAt(make([]byte, 1), 0)
	checks["Sync"] = f.Sync()
	checks["Close"] = f.Close()
	for op, err := range checks {
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("%s after Close: %v, want os.ErrClosed", op, err)
		}
	}
}

// openDirect opens name for direct I/O, skipping the test where the
// filesystem refuses O_DIRECT (except on CI, whose disks must support it).
func openDirect(t *testing.T, fs FS, name string, opts OpenOptions) File {
	t.Helper()
	opts.Direct = true
	f, err := fs.OpenFile(name, opts)
	if errors.Is(err, ErrDirectUnsupported) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("O_DIRECT refused on CI: %v", err)
		}
		t.Skipf("the filesystem holding %s refuses O_DIRECT: %v", name, err)
	}
	must(t, err)
	return f
}

func testDirect(t *testing.T, fs FS, dir string) {
	align := fs.Alignment()
	if align != DefaultAlignment {
		t.Fatalf("Alignment() = %d", align)
	}
	name := filepath.Join(dir, "direct")
	f := openDirect(t, fs, name, OpenOptions{Write: true, Create: true})
	defer f.Close()
	if !f.Direct() {
		t.Fatal("Direct() false on a direct handle")
	}
	buf := AlignedBuffer(2*align, align)
	for i := range buf {
		buf[i] = byte(i % 251)
	}
	unaligned := []struct {
		name string
		b    []byte
		off  int64
	}{
		{"buffer address", AlignedBuffer(align+1, align)[1:], 0},
		{"length", buf[:align-512], 0},
		{"offset", buf[:align], 512},
	}
	for _, c := range unaligned {
		if _, err := f.WriteAt(c.b, c.off); !errors.Is(err, ErrUnaligned) {
			t.Errorf("WriteAt with unaligned %s: %v, want ErrUnaligned", c.name, err)
		}
		if _, err := f.ReadAt(c.b, c.off); !errors.Is(err, ErrUnaligned) {
			t.Errorf("ReadAt with unaligned %s: %v, want ErrUnaligned", c.name, err)
		}
	}
	if n, err := f.WriteAt(buf, 0); n != len(buf) || err != nil {
		t.Fatalf("aligned WriteAt = %d, %v", n, err)
	}
	// Sequential writes go at the file offset, still 0 after WriteAt.
	if _, err := f.Write(buf[:align]); err != nil {
		t.Fatalf("aligned Write at offset 0: %v", err)
	}
	if _, err := f.Write(buf[:100]); !errors.Is(err, ErrUnaligned) {
		t.Fatalf("unaligned sequential Write: %v", err)
	}
	must(t, f.Sync())

	want := buf
	// Read back through the page cache...
	if got := readFile(t, fs, name); !bytes.Equal([]byte(got), want) {
		t.Fatalf("buffered read back %d bytes, differing from the %d written", len(got), len(want))
	}
	// ...and through a second direct handle.
	r := openDirect(t, fs, name, OpenOptions{})
	defer r.Close()
	got := AlignedBuffer(4*align, align)
	n, err := r.ReadAt(got, 0)
	if n != 2*align || err != io.EOF {
		t.Fatalf("direct ReadAt of a %d-byte file into %d = %d, %v", 2*align, len(got), n, err)
	}
	if !bytes.Equal(got[:n], want) {
		t.Fatal("direct read back differs from what was written")
	}
}

func testPreallocate(t *testing.T, fs FS, dir string) {
	f, err := fs.Create(filepath.Join(dir, "p"))
	must(t, err)
	defer f.Close()
	_, err = f.Write([]byte("abc"))
	must(t, err)
	must(t, f.Preallocate(0, 1<<20))
	fi, err := f.Stat()
	must(t, err)
	if fi.Size() != 3 {
		t.Fatalf("size after Preallocate = %d, want 3 (unchanged)", fi.Size())
	}
}

func testSyncDir(t *testing.T, fs FS, dir string) {
	writeFile(t, fs, filepath.Join(dir, "f"), "x")
	must(t, fs.SyncDir(dir))
	if err := fs.SyncDir(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("SyncDir of a missing directory succeeded")
	}
}

func testDiskUsage(t *testing.T, fs FS, dir string) {
	du, err := fs.DiskUsage(dir)
	must(t, err)
	if du.TotalBytes == 0 || du.FreeBytes > du.TotalBytes {
		t.Fatalf("DiskUsage = %+v", du)
	}
	if u := du.UsedFraction(); u < 0 || u > 1 {
		t.Fatalf("UsedFraction = %v", u)
	}
}

func testConcurrentWriteAt(t *testing.T, fs FS, dir string) {
	name := filepath.Join(dir, "cw")
	f, err := fs.Create(name)
	must(t, err)
	const writers, chunk = 8, 512
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			b := bytes.Repeat([]byte{byte('a' + w)}, chunk)
			if _, err := f.WriteAt(b, int64(w*chunk)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	must(t, f.Close())
	got := readFile(t, fs, name)
	for w := range writers {
		if want := string(bytes.Repeat([]byte{byte('a' + w)}, chunk)); got[w*chunk:(w+1)*chunk] != want {
			t.Fatalf("chunk %d lost", w)
		}
	}
}
