// Package vfs is the filesystem seam. Every byte Magnetar writes to disk goes
// through an FS, so that storage tests can cut the power (MemFS), inject
// faults (the injecting wrapper) and fill the disk.
//
// Three implementations:
//
//   - Default (OS): real files through golang.org/x/sys/unix. Files opened
//     with Direct use O_DIRECT; writes must then come from buffers aligned to
//     Alignment, of a length that is a multiple of it, at an aligned offset.
//     Sync is fdatasync; SyncDir fsyncs a directory so that creations and
//     renames inside it survive a crash; Preallocate is fallocate.
//   - MemFS: an in-memory filesystem that remembers what was synced. Crash()
//     forgets unsynced file data and directory changes (creations, renames,
//     removals) whose directory was not synced, optionally keeping a random
//     prefix of them (torn tails). CrashAfter(n) cuts the power after the
//     n-th mutating operation, so a test can crash at every write and sync
//     boundary of a workload in turn. Capacity is settable (ENOSPC).
//   - Injector: wraps any FS; rules choose operations (by Op and path) and
//     fail them, shorten writes, delay them or call back into the test, once,
//     always, after N calls or with a seeded probability.
//
// Durability contract, which every implementation honours and every caller
// relies on: data written to a file is durable after File.Sync returns; a
// new name (create or rename) is durable after SyncDir of its directory
// returns.
package vfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// DefaultAlignment is the block size O_DIRECT buffers, lengths and offsets are
// aligned to unless a caller asks for another.
const DefaultAlignment = 4096

// Errors reported by implementations, wrapped with the operation and path.
var (
	// ErrDirectUnsupported: the filesystem refused O_DIRECT (tmpfs, some
	// overlay filesystems). Callers fall back to buffered I/O plus Sync.
	ErrDirectUnsupported = errors.New("vfs: O_DIRECT not supported by this filesystem")
	// ErrUnaligned: a direct write's buffer, length or offset is not aligned.
	ErrUnaligned = errors.New("vfs: unaligned direct I/O")
	// ErrInjected is the default error of the fault injector.
	ErrInjected = errors.New("vfs: injected fault")
)

// OpenOptions says how to open a file. The zero value opens read-only.
type OpenOptions struct {
	Write    bool // open for reading and writing
	Create   bool // create the file if missing
	Excl     bool // with Create: fail if the file exists
	Truncate bool // truncate to zero length
	Direct   bool // O_DIRECT: bypass the page cache; aligned I/O only
}

// File is an open file. Implementations are safe for concurrent ReadAt and
// WriteAt at distinct offsets; Write (appending at the file offset) is not
// meant to be mixed with WriteAt.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.WriterAt
	io.Closer
	// Sync makes the file's data durable (fdatasync).
	Sync() error
	// Preallocate reserves space for [off, off+n) without changing the
	// file's size as Stat reports it (fallocate with KEEP_SIZE). It is a hint:
	// filesystems that cannot preallocate succeed without doing it.
	Preallocate(off, n int64) error
	// Truncate changes the file's size.
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	// Direct reports whether the file was opened with O_DIRECT.
	Direct() bool
	// Name is the path the file was opened with.
	Name() string
}

// DiskUsage describes the filesystem holding a path.
type DiskUsage struct {
	TotalBytes uint64
	FreeBytes  uint64 // available to an unprivileged writer
}

// UsedFraction is the share of the filesystem in use, between 0 and 1.
func (d DiskUsage) UsedFraction() float64 {
	if d.TotalBytes == 0 {
		return 0
	}
	return 1 - float64(d.FreeBytes)/float64(d.TotalBytes)
}

// FS is a filesystem.
type FS interface {
	// OpenFile opens name as opts says.
	OpenFile(name string, opts OpenOptions) (File, error)
	// Open opens name read-only.
	Open(name string) (File, error)
	// Create creates or truncates name and opens it for writing.
	Create(name string) (File, error)
	Remove(name string) error
	// RemoveAll removes a directory tree; missing paths are not an error.
	RemoveAll(name string) error
	// Rename atomically replaces newname with oldname.
	Rename(oldname, newname string) error
	MkdirAll(dir string, perm os.FileMode) error
	// List returns the names (not paths) of the entries of dir, sorted.
	List(dir string) ([]string, error)
	Stat(name string) (os.FileInfo, error)
	// SyncDir makes creations, renames and removals in dir durable.
	SyncDir(dir string) error
	// DiskUsage reports the size and free space of the filesystem holding path.
	DiskUsage(path string) (DiskUsage, error)
	// Alignment is the alignment direct I/O needs on this filesystem.
	Alignment() int
}

// IsNoSpace reports whether err says the device is out of space.
func IsNoSpace(err error) bool { return errors.Is(err, errNoSpace) }

// IsNotExist reports whether err says a file or directory does not exist.
func IsNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }

// RemoveGradually removes name after shrinking it from its end in steps of
// at most step bytes, pausing between steps. Unlinking a large file frees
// all its blocks in one filesystem transaction; on ext4 that stalled every
// fdatasync of other files on the device until it committed (10-14 ms for
// a 64 MiB entry log on this project's VM, in
// BenchmarkAddLatencyCompaction). Each truncation frees a step in its own,
// smaller transaction, and the pause lets other files' syncs commit between
// them. A crash part-way leaves the file shorter: callers use it only for
// files that are garbage once the removal started (their owners know them
// as such at recovery).
func RemoveGradually(fs FS, name string, step int64, pause time.Duration) error {
	if step > 0 {
		if f, err := fs.OpenFile(name, OpenOptions{Write: true}); err == nil {
			fi, err := f.Stat()
			if err == nil {
				for size := fi.Size(); size > 0 && err == nil; {
					if size != fi.Size() && pause > 0 {
						time.Sleep(pause)
					}
					size = max(size-step, 0)
					err = f.Truncate(size)
				}
			}
			f.Close()
		}
	}
	return fs.Remove(name)
}

// WriteFileAtomic replaces name with data so that a crash leaves either the
// old file or the new one, whole: data goes to name+".tmp", synced, then
// renamed over name, and the directory is synced.
func WriteFileAtomic(fs FS, name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := fs.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := fs.Rename(tmp, name); err != nil {
		return err
	}
	return fs.SyncDir(filepath.Dir(name))
}
