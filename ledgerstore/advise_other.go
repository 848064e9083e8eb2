//go:build !linux

package ledgerstore

import "github.com/magnetar/magnetar/internal/vfs"

// adviseRandom is a no-op where POSIX_FADV_RANDOM is not available.
func adviseRandom(vfs.File) {}
