package ledgerstore

import (
	"golang.org/x/sys/unix"

	"github.com/magnetar/magnetar/internal/vfs"
)

// adviseRandom turns the kernel's read-ahead off for an entry log handle
// (POSIX_FADV_RANDOM), where the file has a descriptor (the OS filesystem;
// see Options.KernelReadAhead). It is a hint: failure is ignored.
func adviseRandom(f vfs.File) {
	if fd, ok := f.(interface{ Fd() uintptr }); ok {
		_ = unix.Fadvise(int(fd.Fd()), 0, 0, unix.FADV_RANDOM)
	}
}
