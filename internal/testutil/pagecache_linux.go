//go:build linux

package testutil

import (
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DropPageCache evicts the files' pages from the page cache
// (POSIX_FADV_DONTNEED), so that the next reads of them go to the device.
func DropPageCache(t testing.TB, files []string) {
	t.Helper()
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		err = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// PageCacheShare is the share of the files' pages that are in the page
// cache (mincore over a read-only mapping of each).
func PageCacheShare(t testing.TB, files []string) float64 {
	t.Helper()
	page := int64(os.Getpagesize())
	var resident, total int64
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := f.Stat()
		if err != nil || fi.Size() == 0 {
			f.Close()
			continue
		}
		mem, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		vec := make([]byte, (fi.Size()+page-1)/page)
		_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0])))
		unix.Munmap(mem)
		if errno != 0 {
			t.Fatal(errno)
		}
		for _, v := range vec {
			resident += int64(v & 1)
		}
		total += int64(len(vec))
	}
	return float64(resident) / float64(max(total, 1))
}
