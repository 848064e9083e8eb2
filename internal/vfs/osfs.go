package vfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"golang.org/x/sys/unix"
)

var errNoSpace = syscall.ENOSPC

// Default is the operating system's filesystem.
var Default FS = osFS{}

type osFS struct{}

func (osFS) Alignment() int { return DefaultAlignment }

func (fs osFS) OpenFile(name string, opts OpenOptions) (File, error) {
	flags := os.O_RDONLY
	if opts.Write {
		flags = os.O_RDWR
	}
	if opts.Create {
		flags |= os.O_CREATE
	}
	if opts.Excl {
		flags |= os.O_EXCL
	}
	if opts.Truncate {
		flags |= os.O_TRUNC
	}
	if opts.Direct {
		flags |= unix.O_DIRECT
	}
	f, err := os.OpenFile(name, flags, 0o644)
	if err != nil {
		if opts.Direct && errors.Is(err, unix.EINVAL) {
			return nil, fmt.Errorf("vfs: open %s: %w", name, ErrDirectUnsupported)
		}
		return nil, err
	}
	return &osFile{File: f, direct: opts.Direct, align: fs.Alignment()}, nil
}

func (fs osFS) Open(name string) (File, error) { return fs.OpenFile(name, OpenOptions{}) }

func (fs osFS) Create(name string) (File, error) {
	return fs.OpenFile(name, OpenOptions{Write: true, Create: true, Truncate: true})
}

func (osFS) Remove(name string) error                    { return os.Remove(name) }
func (osFS) RemoveAll(name string) error                 { return os.RemoveAll(name) }
func (osFS) Rename(oldname, newname string) error        { return os.Rename(oldname, newname) }
func (osFS) MkdirAll(dir string, perm os.FileMode) error { return os.MkdirAll(dir, perm) }
func (osFS) Stat(name string) (os.FileInfo, error)       { return os.Stat(name) }

func (osFS) List(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	sort.Strings(names)
	return names, nil
}

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	serr := d.Sync()
	cerr := d.Close()
	if serr != nil {
		return fmt.Errorf("vfs: sync dir %s: %w", dir, serr)
	}
	return cerr
}

func (osFS) DiskUsage(path string) (DiskUsage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return DiskUsage{}, fmt.Errorf("vfs: statfs %s: %w", path, err)
	}
	// Block counts are in fragment units (f_frsize); f_bsize is only the
	// preferred I/O size, equal to it on ext4 and xfs but not everywhere.
	bs := uint64(st.Frsize)
	if bs == 0 {
		bs = uint64(st.Bsize)
	}
	return DiskUsage{TotalBytes: st.Blocks * bs, FreeBytes: st.Bavail * bs}, nil
}

type osFile struct {
	*os.File
	direct bool
	align  int
}

func (f *osFile) Direct() bool { return f.direct }

func (f *osFile) checkAligned(b []byte, off int64) error {
	if !f.direct {
		return nil
	}
	if !IsAligned(b, f.align) || off%int64(f.align) != 0 {
		return fmt.Errorf("vfs: %s: %d bytes at offset %d: %w", f.Name(), len(b), off, ErrUnaligned)
	}
	return nil
}

func (f *osFile) WriteAt(b []byte, off int64) (int, error) {
	if err := f.checkAligned(b, off); err != nil {
		return 0, err
	}
	return f.File.WriteAt(b, off)
}

func (f *osFile) Write(b []byte) (int, error) {
	if f.direct {
		off, err := f.File.Seek(0, 1)
		if err != nil {
			return 0, err
		}
		if err := f.checkAligned(b, off); err != nil {
			return 0, err
		}
	}
	return f.File.Write(b)
}

func (f *osFile) ReadAt(b []byte, off int64) (int, error) {
	if err := f.checkAligned(b, off); err != nil {
		return 0, err
	}
	return f.File.ReadAt(b, off)
}

// fd is the file's descriptor, or os.ErrClosed (as the os package's own
// methods report) once it is closed. Fd has no side effect on a regular
// file, which is never in non-blocking mode; unlike SyscallConn().Control
// it does not allocate on the fdatasync path. Sync racing Close is a
// caller's bug either way.
func (f *osFile) fd(op string) (int, error) {
	fd := f.Fd()
	if fd == ^uintptr(0) {
		return -1, &os.PathError{Op: op, Path: f.Name(), Err: os.ErrClosed}
	}
	return int(fd), nil
}

func (f *osFile) Sync() error {
	fd, err := f.fd("fdatasync")
	if err != nil {
		return err
	}
	if err := unix.Fdatasync(fd); err != nil {
		return fmt.Errorf("vfs: fdatasync %s: %w", f.Name(), err)
	}
	return nil
}

func (f *osFile) Preallocate(off, n int64) error {
	fd, err := f.fd("fallocate")
	if err != nil {
		return err
	}
	err = unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, off, n)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vfs: fallocate %s: %w", f.Name(), err)
	}
	return nil
}

// LockName is the file LockDir locks in a directory.
const LockName = "LOCK"

// ErrLocked: the directory LockDir was asked for is locked already.
var ErrLocked = errors.New("vfs: directory locked")

// LockDir takes an exclusive lock on dir/LOCK (creating it) for as long as
// the returned file stays open. The kernel drops the lock when the process
// dies, kill -9 included, so a crash never leaves a directory locked. A
// second holder, in this process or another, fails at once with an error
// wrapping ErrLocked. Only real files can be locked: on a memory
// filesystem (which lives in one process) it only creates the file.
func LockDir(fs FS, dir string) (File, error) {
	name := filepath.Join(dir, LockName)
	f, err := fs.OpenFile(name, OpenOptions{Write: true, Create: true})
	if err != nil {
		return nil, err
	}
	if of, ok := f.(*osFile); ok {
		if err := unix.Flock(int(of.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("%w: %s is held by another process or another open store", ErrLocked, name)
			}
			return nil, fmt.Errorf("vfs: flock %s: %w", name, err)
		}
	}
	return f, nil
}
