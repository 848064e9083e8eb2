package vfs

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrCrashed is returned by every operation on a MemFS whose power was cut
// (CrashAfter) until Crash is called, and by every operation on a file handle
// opened before the last Crash.
var ErrCrashed = errors.New("vfs: power cut (memory filesystem crashed)")

// DefaultMemCapacity is the size a MemFS reports and enforces until
// SetCapacity says otherwise.
const DefaultMemCapacity = 1 << 40

// MemFS is an in-memory filesystem that remembers what is durable, so tests
// can cut the power and look at what survives. It is safe for concurrent use.
//
// The durability model is the one the package comment states, applied
// strictly:
//
//   - Every file (inode) has its current content and its synced content, the
//     content as of the last File.Sync through any handle. Sync makes the
//     current content, size included, durable.
//   - Every directory has its current entries (name -> inode) and its synced
//     entries, as of the last SyncDir. Create, Rename, Remove and RemoveAll
//     change only the current entries; SyncDir makes them durable. A file
//     that was synced but whose creation was not is lost in a crash; a
//     removal that was not synced is undone by one.
//   - MkdirAll is durable when it returns: each directory it creates is
//     entered in its parent as if the parent had been SyncDir'ed (which also
//     makes the parent's other pending changes durable). Storage code creates
//     its directories at start-up, not on the paths crash tests exercise.
//
// Crash (or CrashWith) replaces every current state with the synced one,
// optionally keeping a random prefix of the unsynced changes, and invalidates
// every open handle. CrashAfter(n) cuts the power right after the n-th
// mutating operation: later operations fail with ErrCrashed, so the state at
// the cut is what the next Crash works from. A crash test loops:
//
//	for n := int64(1); ; n++ {
//		fs := vfs.NewMem()
//		fs.CrashAfter(n)
//		workload(fs)       // fails with ErrCrashed after op n
//		if !fs.PowerCut() { break } // the workload has fewer than n ops
//		fs.Crash()
//		verify(fs)         // reopen, recover, check what was acknowledged
//	}
//
// Mutating operations (counted by Ops and reported to the hook): OpenFile
// with Create or Truncate, Create, Write, WriteAt, Truncate, Sync, SyncDir,
// Rename, Remove, RemoveAll and MkdirAll, whether they succeed or fail.
//
// Paths are slash-separated and cleaned; relative paths are taken from the
// root. Direct handles enforce the alignment rules of O_DIRECT (ErrUnaligned).
// Writes that would take the filesystem past its capacity write what fits
// and fail with ENOSPC.
type MemFS struct {
	mu struct {
		sync.Mutex
		root     *memNode
		gen      uint64 // bumped by every crash; older handles are dead
		powerCut bool
		ops      int64
		cutAt    int64 // cut the power when ops reaches it; 0: never
		hook     func(n int64, op Op, path string)
		capacity int64
		used     int64 // sum of charged over live nodes
		noDirect bool
	}
}

// CrashOptions says how much of the unsynced state a crash keeps.
type CrashOptions struct {
	// KeepUnsyncedPrefix, when set, makes the crash keep for every file a
	// random prefix of the writes and truncations made since its last Sync,
	// the last kept write possibly cut short at a random byte (a torn tail),
	// and for every directory a random prefix of the changes made since its
	// last SyncDir. Nil keeps nothing that was not synced. Drawing from a
	// seeded source makes the crash reproducible.
	KeepUnsyncedPrefix *rand.Rand
}

type memNode struct {
	dir     bool
	modTime time.Time
	links   int // names in the current tree
	opens   int // open handles
	charged int64

	// Files.
	data     []byte   // current content
	synced   []byte   // content as of the last Sync
	log      []fileOp // changes since the last Sync, in order
	arena    []byte   // bytes of the logged writes
	prealloc int64    // end of the preallocated range

	// Directories.
	children       map[string]*memNode
	syncedChildren map[string]*memNode
	dirLog         []dirOp // changes since the last SyncDir, in order
}

// fileOp is a write of arena[start:start+n] at off, or, when n < 0, a
// truncation to size off.
type fileOp struct {
	off   int64
	start int
	n     int
}

type dirOpKind uint8

const (
	dirLink dirOpKind = iota
	dirUnlink
	dirRename
)

type dirOp struct {
	kind dirOpKind
	name string // the name linked, unlinked or renamed to
	from string // dirRename: the old name
	node *memNode
}

func (op dirOp) apply(m map[string]*memNode) {
	switch op.kind {
	case dirLink:
		m[op.name] = op.node
	case dirUnlink:
		delete(m, op.name)
	case dirRename:
		delete(m, op.from)
		m[op.name] = op.node
	}
}

func newDirNode() *memNode {
	return &memNode{
		dir:            true,
		modTime:        time.Now(),
		children:       map[string]*memNode{},
		syncedChildren: map[string]*memNode{},
	}
}

// NewMem returns an empty MemFS holding only its root directory, with a
// capacity of DefaultMemCapacity.
func NewMem() *MemFS {
	fs := &MemFS{}
	fs.mu.root = newDirNode()
	fs.mu.root.links = 1
	fs.mu.capacity = DefaultMemCapacity
	return fs
}

// SetCapacity sets the size of the filesystem. Writes, truncations and
// preallocations that would take the bytes in use past it fail with ENOSPC.
// Lowering it below what is in use makes every growth fail.
func (fs *MemFS) SetCapacity(bytes int64) {
	fs.mu.Lock()
	fs.mu.capacity = bytes
	fs.mu.Unlock()
}

// SetDirectSupport says whether OpenFile with Direct succeeds (the default)
// or fails with ErrDirectUnsupported, as on filesystems without O_DIRECT.
func (fs *MemFS) SetDirectSupport(ok bool) {
	fs.mu.Lock()
	fs.mu.noDirect = !ok
	fs.mu.Unlock()
}

// SetOpHook installs fn, called after every mutating operation with its
// number (as Ops counts), kind and path, while the filesystem's lock is held:
// fn must not call the MemFS. Nil removes the hook.
func (fs *MemFS) SetOpHook(fn func(n int64, op Op, path string)) {
	fs.mu.Lock()
	fs.mu.hook = fn
	fs.mu.Unlock()
}

// Ops is the number of mutating operations performed so far.
func (fs *MemFS) Ops() int64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.mu.ops
}

// CrashAfter cuts the power right after the n-th mutating operation (n as
// Ops counts, from the creation of the MemFS), or at once if that many have
// already run. Once the power is cut every operation fails with ErrCrashed
// until Crash.
func (fs *MemFS) CrashAfter(n int64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if n <= fs.mu.ops {
		fs.mu.powerCut = true
		return
	}
	fs.mu.cutAt = n
}

// PowerCut reports whether the power is cut (CrashAfter reached its
// operation) and Crash was not called since.
func (fs *MemFS) PowerCut() bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.mu.powerCut
}

// Crash simulates a power loss and restart: every file's content reverts to
// what was last synced, every directory's entries to what was last made
// durable by SyncDir (or MkdirAll), and every open handle becomes invalid.
// A pending CrashAfter is cancelled and the power is back on.
func (fs *MemFS) Crash() { fs.CrashWith(CrashOptions{}) }

// CrashWith is Crash with options.
func (fs *MemFS) CrashWith(opts CrashOptions) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	rng := opts.KeepUnsyncedPrefix
	visited := map[*memNode]bool{}
	var used int64
	var walk func(n *memNode)
	walk = func(n *memNode) {
		if visited[n] {
			// A rename between two directories of which only one was
			// synced can leave an inode under two names.
			n.links++
			return
		}
		visited[n] = true
		n.links, n.opens = 1, 0
		if n.dir {
			children := maps.Clone(n.syncedChildren)
			if rng != nil && len(n.dirLog) > 0 {
				for _, op := range n.dirLog[:rng.IntN(len(n.dirLog)+1)] {
					op.apply(children)
				}
			}
			n.children, n.syncedChildren, n.dirLog = children, maps.Clone(children), nil
			// Sorted, so that a seeded crash is reproducible.
			for _, name := range slices.Sorted(maps.Keys(children)) {
				walk(children[name])
			}
			return
		}
		content := n.synced
		if rng != nil && len(n.log) > 0 {
			k := rng.IntN(len(n.log) + 1)
			for _, op := range n.log[:k] {
				content = n.applyTo(content, op)
			}
			if k < len(n.log) && n.log[k].n > 0 {
				torn := n.log[k]
				torn.n = rng.IntN(torn.n)
				content = n.applyTo(content, torn)
			}
		}
		n.synced = content
		n.data = slices.Clone(content)
		n.log, n.arena = nil, nil
		n.charged = max(int64(len(n.data)), n.prealloc)
		used += n.charged
	}
	walk(fs.mu.root)
	fs.mu.used = used
	fs.mu.gen++
	fs.mu.powerCut = false
	fs.mu.cutAt = 0
}

// Dump describes the tree, current and synced, one line per entry, for test
// failure messages.
func (fs *MemFS) Dump() string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var sb strings.Builder
	var walk func(dir *memNode, p string)
	walk = func(dir *memNode, p string) {
		names := slices.Sorted(maps.Keys(dir.children))
		for name := range dir.syncedChildren {
			if dir.children[name] == nil {
				fmt.Fprintf(&sb, "%s (removed, not synced)\n", path.Join(p, name))
			}
		}
		for _, name := range names {
			n := dir.children[name]
			full := path.Join(p, name)
			durable := ""
			if dir.syncedChildren[name] != n {
				durable = ", entry not synced"
			}
			if n.dir {
				fmt.Fprintf(&sb, "%s/%s\n", full, durable)
				walk(n, full)
				continue
			}
			fmt.Fprintf(&sb, "%s %d bytes (synced %d, %d unsynced changes%s)\n",
				full, len(n.data), len(n.synced), len(n.log), durable)
		}
	}
	walk(fs.mu.root, "/")
	return sb.String()
}

// Alignment is the alignment direct handles require.
func (*MemFS) Alignment() int { return DefaultAlignment }

func splitPath(name string) []string {
	p := path.Clean("/" + filepath.ToSlash(name))
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

func pathErr(op Op, name string, err error) error {
	return &os.PathError{Op: op.String(), Path: name, Err: err}
}

// checkPowerLocked fails when the power is cut.
func (fs *MemFS) checkPowerLocked(op Op, name string) error {
	if fs.mu.powerCut {
		return pathErr(op, name, ErrCrashed)
	}
	return nil
}

// countLocked records a mutating operation and cuts the power if it was
// the one CrashAfter named.
func (fs *MemFS) countLocked(op Op, name string) {
	fs.mu.ops++
	if fs.mu.hook != nil {
		fs.mu.hook(fs.mu.ops, op, name)
	}
	if fs.mu.cutAt > 0 && fs.mu.ops >= fs.mu.cutAt {
		fs.mu.powerCut = true
		fs.mu.cutAt = 0
	}
}

// walkLocked returns the node at parts.
func (fs *MemFS) walkLocked(op Op, name string, parts []string) (*memNode, error) {
	n := fs.mu.root
	for _, p := range parts {
		if !n.dir {
			return nil, pathErr(op, name, syscall.ENOTDIR)
		}
		c := n.children[p]
		if c == nil {
			return nil, pathErr(op, name, syscall.ENOENT)
		}
		n = c
	}
	return n, nil
}

// parentLocked returns the directory holding name and name's last element.
func (fs *MemFS) parentLocked(op Op, name string) (*memNode, string, error) {
	parts := splitPath(name)
	if len(parts) == 0 {
		return nil, "", pathErr(op, name, syscall.EINVAL)
	}
	dir, err := fs.walkLocked(op, name, parts[:len(parts)-1])
	if err != nil {
		return nil, "", err
	}
	if !dir.dir {
		return nil, "", pathErr(op, name, syscall.ENOTDIR)
	}
	return dir, parts[len(parts)-1], nil
}

// live reports whether n is reachable by name or through a handle.
func (n *memNode) live() bool { return n.links > 0 || n.opens > 0 }

// rechargeLocked brings n's share of the used bytes up to date.
func (fs *MemFS) rechargeLocked(n *memNode) {
	c := max(int64(len(n.data)), n.prealloc)
	fs.mu.used += c - n.charged
	n.charged = c
}

// freeLocked is how many bytes may still be charged.
func (fs *MemFS) freeLocked() int64 { return max(fs.mu.capacity-fs.mu.used, 0) }

// unlinkLocked drops one name of n; an inode without names and handles
// gives back its space, and so does everything below a directory that lost
// its name.
func (fs *MemFS) unlinkLocked(n *memNode) {
	n.links--
	if n.links > 0 {
		return
	}
	if n.dir {
		for _, c := range n.children {
			fs.unlinkLocked(c)
		}
	}
	if !n.live() {
		fs.mu.used -= n.charged
		n.charged = 0
	}
}

func (fs *MemFS) closeNodeLocked(n *memNode) {
	n.opens--
	if !n.live() {
		fs.mu.used -= n.charged
		n.charged = 0
	}
}

// applyTo applies op to content and returns the result.
func (n *memNode) applyTo(content []byte, op fileOp) []byte {
	if op.n < 0 {
		return resize(content, op.off)
	}
	return writeInto(content, op.off, n.arena[op.start:op.start+op.n])
}

// resize returns b with length size; bytes it adds are zero.
func resize(b []byte, size int64) []byte {
	old := int64(len(b))
	if size <= old {
		return b[:size]
	}
	b = slices.Grow(b, int(size-old))[:size]
	clear(b[old:])
	return b
}

// writeInto writes p at off into b, growing it (with zeros before off) as
// needed.
func writeInto(b []byte, off int64, p []byte) []byte {
	if end := off + int64(len(p)); end > int64(len(b)) {
		b = resize(b, end)
	}
	copy(b[off:], p)
	return b
}

// OpenFile opens name as opts says.
func (fs *MemFS) OpenFile(name string, opts OpenOptions) (File, error) {
	op := OpOpen
	if opts.Create {
		op = OpCreate
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.checkPowerLocked(op, name); err != nil {
		return nil, err
	}
	if opts.Create || opts.Truncate {
		defer fs.countLocked(op, name)
	}
	if opts.Direct && fs.mu.noDirect {
		return nil, fmt.Errorf("vfs: open %s: %w", name, ErrDirectUnsupported)
	}
	parts := splitPath(name)
	var n *memNode
	if len(parts) == 0 {
		n = fs.mu.root
	} else {
		dir, base, err := fs.parentLocked(op, name)
		if err != nil {
			return nil, err
		}
		n = dir.children[base]
		switch {
		case n == nil && !opts.Create:
			return nil, pathErr(op, name, syscall.ENOENT)
		case n == nil:
			n = &memNode{modTime: time.Now(), links: 1}
			dir.children[base] = n
			dir.dirLog = append(dir.dirLog, dirOp{kind: dirLink, name: base, node: n})
			dir.modTime = n.modTime
		case opts.Create && opts.Excl:
			return nil, pathErr(op, name, syscall.EEXIST)
		}
	}
	if n.dir && (opts.Write || opts.Truncate) {
		return nil, pathErr(op, name, syscall.EISDIR)
	}
	if opts.Truncate && len(n.data) > 0 {
		n.truncateLocked(0)
		fs.rechargeLocked(n)
	}
	n.opens++
	return &memFile{
		fs:     fs,
		node:   n,
		name:   name,
		gen:    fs.mu.gen,
		write:  opts.Write,
		direct: opts.Direct,
	}, nil
}

// Open opens name read-only.
func (fs *MemFS) Open(name string) (File, error) { return fs.OpenFile(name, OpenOptions{}) }

// Create creates or truncates name and opens it for writing.
func (fs *MemFS) Create(name string) (File, error) {
	return fs.OpenFile(name, OpenOptions{Write: true, Create: true, Truncate: true})
}

// Remove removes a file or an empty directory.
func (fs *MemFS) Remove(name string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.checkPowerLocked(OpRemove, name); err != nil {
		return err
	}
	defer fs.countLocked(OpRemove, name)
	dir, base, err := fs.parentLocked(OpRemove, name)
	if err != nil {
		return err
	}
	n := dir.children[base]
	if n == nil {
		return pathErr(OpRemove, name, syscall.ENOENT)
	}
	if n.dir && len(n.children) > 0 {
		return pathErr(OpRemove, name, syscall.ENOTEMPTY)
	}
	fs.removeEntryLocked(dir, base, n)
	return nil
}

func (fs *MemFS) removeEntryLocked(dir *memNode, base string, n *memNode) {
	delete(dir.children, base)
	dir.dirLog = append(dir.dirLog, dirOp{kind: dirUnlink, name: base})
	dir.modTime = time.Now()
	fs.unlinkLocked(n)
}

// RemoveAll removes name and everything below it; a missing name is not an
// error.
func (fs *MemFS) RemoveAll(name string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.checkPowerLocked(OpRemoveAll, name); err != nil {
		return err
	}
	defer fs.countLocked(OpRemoveAll, name)
	dir, base, err := fs.parentLocked(OpRemoveAll, name)
	if IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if n := dir.children[base]; n != nil {
		fs.removeEntryLocked(dir, base, n)
	}
	return nil
}

// Rename atomically replaces newname with oldname.
func (fs *MemFS) Rename(oldname, newname string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.checkPowerLocked(OpRename, oldname); err != nil {
		return err
	}
	defer fs.countLocked(OpRename, oldname)
	fail := func(err error) error {
		return &os.LinkError{Op: OpRename.String(), Old: oldname, New: newname, Err: err}
	}
	srcDir, srcBase, err := fs.parentLocked(OpRename, oldname)
	if err != nil {
		return fail(errors.Unwrap(err))
	}
	n := srcDir.children[srcBase]
	if n == nil {
		return fail(syscall.ENOENT)
	}
	dstDir, dstBase, err := fs.parentLocked(OpRename, newname)
	if err != nil {
		return fail(errors.Unwrap(err))
	}
	target := dstDir.children[dstBase]
	if target == n {
		return nil
	}
	if n.dir {
		oldParts, newParts := splitPath(oldname), splitPath(newname)
		if len(newParts) > len(oldParts) && slices.Equal(newParts[:len(oldParts)], oldParts) {
			return fail(syscall.EINVAL) // into its own subtree
		}
	}
	if target != nil {
		switch {
		case target.dir && !n.dir:
			return fail(syscall.EISDIR)
		case !target.dir && n.dir:
			return fail(syscall.ENOTDIR)
		case target.dir && len(target.children) > 0:
			return fail(syscall.ENOTEMPTY)
		}
	}
	now := time.Now()
	if srcDir == dstDir {
		delete(srcDir.children, srcBase)
		srcDir.children[dstBase] = n
		srcDir.dirLog = append(srcDir.dirLog, dirOp{kind: dirRename, name: dstBase, from: srcBase, node: n})
	} else {
		delete(srcDir.children, srcBase)
		srcDir.dirLog = append(srcDir.dirLog, dirOp{kind: dirUnlink, name: srcBase})
		dstDir.children[dstBase] = n
		dstDir.dirLog = append(dstDir.dirLog, dirOp{kind: dirLink, name: dstBase, node: n})
	}
	srcDir.modTime, dstDir.modTime = now, now
	if target != nil {
		fs.unlinkLocked(target)
	}
	return nil
}

// MkdirAll creates dir and its missing parents, durably (see MemFS).
func (fs *MemFS) MkdirAll(dir string, perm os.FileMode) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.checkPowerLocked(OpMkdirAll, dir); err != nil {
		return err
	}
	defer fs.countLocked(OpMkdirAll, dir)
	n := fs.mu.root
	for _, p := range splitPath(dir) {
		c := n.children[p]
		if c == nil {
			c = newDirNode()
			c.links = 1
			n.children[p] = c
			n.syncedChildren = maps.Clone(n.children)
			n.dirLog = nil
			n.modTime = c.modTime
		} else if !c.dir {
			return pathErr(OpMkdirAll, dir, syscall.ENOTDIR)
		}
		n = c
	}
	return nil
}

// List returns the sorted names of the entries of dir.
func (fs *MemFS) List(dir string) ([]string, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.checkPowerLocked(OpList, dir); err != nil {
		return nil, err
	}
	n, err := fs.walkLocked(OpList, dir, splitPath(dir))
	if err != nil {
		return nil, err
	}
	if !n.dir {
		return nil, pathErr(OpList, dir, syscall.ENOTDIR)
	}
	return slices.Sorted(maps.Keys(n.children)), nil
}

// Stat describes name.
func (fs *MemFS) Stat(name string) (os.FileInfo, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.checkPowerLocked(OpStat, name); err != nil {
		return nil, err
	}
	n, err := fs.walkLocked(OpStat, name, splitPath(name))
	if err != nil {
		return nil, err
	}
	return n.infoLocked(name), nil
}

// SyncDir makes the current entries of dir durable.
func (fs *MemFS) SyncDir(dir string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.checkPowerLocked(OpSyncDir, dir); err != nil {
		return err
	}
	defer fs.countLocked(OpSyncDir, dir)
	n, err := fs.walkLocked(OpSyncDir, dir, splitPath(dir))
	if err != nil {
		return err
	}
	if !n.dir {
		return pathErr(OpSyncDir, dir, syscall.ENOTDIR)
	}
	n.syncDirLocked()
	return nil
}

func (n *memNode) syncDirLocked() {
	n.syncedChildren = maps.Clone(n.children)
	n.dirLog = nil
}

// DiskUsage reports the capacity and what is left of it.
func (fs *MemFS) DiskUsage(name string) (DiskUsage, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.checkPowerLocked(OpDiskUsage, name); err != nil {
		return DiskUsage{}, err
	}
	if _, err := fs.walkLocked(OpDiskUsage, name, splitPath(name)); err != nil {
		return DiskUsage{}, err
	}
	return DiskUsage{
		TotalBytes: uint64(max(fs.mu.capacity, 0)),
		FreeBytes:  uint64(fs.freeLocked()),
	}, nil
}

func (n *memNode) infoLocked(name string) os.FileInfo {
	fi := memFileInfo{name: path.Base(path.Clean("/" + filepath.ToSlash(name))), dir: n.dir, modTime: n.modTime}
	if !n.dir {
		fi.size = int64(len(n.data))
	}
	return fi
}

func (n *memNode) truncateLocked(size int64) {
	n.data = resize(n.data, size)
	n.log = append(n.log, fileOp{off: size, n: -1})
	n.modTime = time.Now()
}

type memFileInfo struct {
	name    string
	size    int64
	dir     bool
	modTime time.Time
}

func (fi memFileInfo) Name() string       { return fi.name }
func (fi memFileInfo) Size() int64        { return fi.size }
func (fi memFileInfo) ModTime() time.Time { return fi.modTime }
func (fi memFileInfo) IsDir() bool        { return fi.dir }
func (fi memFileInfo) Sys() any           { return nil }
func (fi memFileInfo) Mode() os.FileMode {
	if fi.dir {
		return os.ModeDir | 0o755
	}
	return 0o644
}

// memFile is a handle on a MemFS inode. Its fields are guarded by the
// filesystem's lock.
type memFile struct {
	fs     *MemFS
	node   *memNode
	name   string
	gen    uint64
	write  bool
	direct bool
	closed bool
	pos    int64
}

// checkLocked fails when the handle is closed or predates a crash, or the
// power is cut.
func (f *memFile) checkLocked(op Op) error {
	if f.closed {
		return pathErr(op, f.name, os.ErrClosed)
	}
	if f.gen != f.fs.mu.gen || f.fs.mu.powerCut {
		return pathErr(op, f.name, ErrCrashed)
	}
	return nil
}

func (f *memFile) checkAligned(op Op, b []byte, off int64) error {
	if !f.direct {
		return nil
	}
	if !IsAligned(b, DefaultAlignment) || off%DefaultAlignment != 0 {
		return fmt.Errorf("vfs: %s %s: %d bytes at offset %d: %w", op, f.name, len(b), off, ErrUnaligned)
	}
	return nil
}

func (f *memFile) Name() string { return f.name }
func (f *memFile) Direct() bool { return f.direct }

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return pathErr(OpClose, f.name, os.ErrClosed)
	}
	f.closed = true
	if f.gen == f.fs.mu.gen {
		f.fs.closeNodeLocked(f.node)
	}
	return nil
}

func (f *memFile) Read(b []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	n, err := f.readAtLocked(OpRead, b, f.pos)
	f.pos += int64(n)
	if err != nil && n > 0 {
		err = nil // io.Reader: a short read is not an error
	}
	return n, err
}

func (f *memFile) ReadAt(b []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	return f.readAtLocked(OpReadAt, b, off)
}

func (f *memFile) readAtLocked(op Op, b []byte, off int64) (int, error) {
	if err := f.checkLocked(op); err != nil {
		return 0, err
	}
	if err := f.checkAligned(op, b, off); err != nil {
		return 0, err
	}
	if f.node.dir {
		return 0, pathErr(op, f.name, syscall.EISDIR)
	}
	if off < 0 {
		return 0, pathErr(op, f.name, syscall.EINVAL)
	}
	if off >= int64(len(f.node.data)) {
		if len(b) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := copy(b, f.node.data[off:])
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Write(b []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	n, err := f.writeAtLocked(OpWrite, b, f.pos)
	f.pos += int64(n)
	return n, err
}

func (f *memFile) WriteAt(b []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	return f.writeAtLocked(OpWriteAt, b, off)
}

func (f *memFile) writeAtLocked(op Op, b []byte, off int64) (int, error) {
	if err := f.checkLocked(op); err != nil {
		return 0, err
	}
	fs := f.fs
	defer fs.countLocked(op, f.name)
	if !f.write {
		return 0, pathErr(op, f.name, syscall.EBADF)
	}
	if err := f.checkAligned(op, b, off); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathErr(op, f.name, syscall.EINVAL)
	}
	if len(b) == 0 {
		return 0, nil
	}
	node := f.node
	var err error
	if end := off + int64(len(b)); end > node.charged {
		if limit := node.charged + fs.freeLocked(); end > limit {
			fit := max(limit-off, 0)
			if f.direct {
				fit &^= DefaultAlignment - 1
			}
			b = b[:fit]
			err = pathErr(op, f.name, syscall.ENOSPC)
		}
	}
	if len(b) > 0 {
		node.data = writeInto(node.data, off, b)
		node.log = append(node.log, fileOp{off: off, start: len(node.arena), n: len(b)})
		node.arena = append(node.arena, b...)
		node.modTime = time.Now()
		fs.rechargeLocked(node)
	}
	return len(b), err
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked(OpSync); err != nil {
		return err
	}
	defer f.fs.countLocked(OpSync, f.name)
	n := f.node
	if n.dir {
		n.syncDirLocked()
		return nil
	}
	for _, op := range n.log {
		n.synced = n.applyTo(n.synced, op)
	}
	n.log = n.log[:0]
	n.arena = n.arena[:0]
	return nil
}

func (f *memFile) Preallocate(off, length int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked(OpPreallocate); err != nil {
		return err
	}
	if !f.write {
		return pathErr(OpPreallocate, f.name, syscall.EBADF)
	}
	if off < 0 || length <= 0 {
		return pathErr(OpPreallocate, f.name, syscall.EINVAL)
	}
	n := f.node
	if end := off + length; end > n.prealloc {
		if end > n.charged && end-n.charged > f.fs.freeLocked() {
			return pathErr(OpPreallocate, f.name, syscall.ENOSPC)
		}
		n.prealloc = end
		f.fs.rechargeLocked(n)
	}
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked(OpTruncate); err != nil {
		return err
	}
	defer f.fs.countLocked(OpTruncate, f.name)
	if !f.write || size < 0 {
		return pathErr(OpTruncate, f.name, syscall.EINVAL)
	}
	n := f.node
	if size > n.charged && size-n.charged > f.fs.freeLocked() {
		return pathErr(OpTruncate, f.name, syscall.ENOSPC)
	}
	n.truncateLocked(size)
	f.fs.rechargeLocked(n)
	return nil
}

func (f *memFile) Stat() (os.FileInfo, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked(OpStat); err != nil {
		return nil, err
	}
	return f.node.infoLocked(f.name), nil
}
