package journal

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
)

// magic is the file magic of a journal segment. Part of the format.
var magic = [8]byte{'M', 'G', 'J', 'O', 'U', 'R', 'N', 'L'}

// segmentSuffix ends every segment's name: 16 lowercase hex digits of the
// file number, then this. Part of the format.
const segmentSuffix = ".journal"

// flagSegmentEnd, in the Flags of a padding record, says the segment ends
// with it: whatever follows is stale (a recycled segment's earlier
// contents). Part of the format.
const flagSegmentEnd = 1

// recycleSuffix ends the name of a segment file kept for reuse. Such files
// are not segments: their contents are stale.
const recycleSuffix = ".recycle"

// deadSuffix ends the name of a segment file being removed: renamed out of
// the segment namespace first, then shrunk step by step and unlinked (see
// vfs.RemoveGradually). Open removes any it finds.
const deadSuffix = ".dead"

// Freed segment files are shrunk in removeStep steps, removePause apart,
// before they are unlinked (see vfs.RemoveGradually): a 2 GiB segment goes
// in about a second, without stalling other files' syncs.
const (
	removeStep  = 4 << 20
	removePause = 2 * time.Millisecond
)

// maxRecycle is how many freed segment files a directory keeps for reuse.
const maxRecycle = 2

// scanAlign is the step at which recovery looks for records after invalid
// bytes. Every write starts at a multiple of the segment's alignment, which
// is itself a multiple of 512, so the smallest legal alignment finds them
// whatever alignment the segment was written with.
const scanAlign = 512

// SegmentName is the file name of segment num.
func SegmentName(num uint32) string { return fmt.Sprintf("%016x%s", num, segmentSuffix) }

// parseSegmentName returns the number of a segment file name.
func parseSegmentName(name string) (uint32, bool) {
	hexPart, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(hexPart) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(hexPart, 16, 32)
	if err != nil {
		return 0, false
	}
	return uint32(n), true
}

type segInfo struct {
	num  uint32
	path string
	size int64
}

// listSegments returns the segments in dir, sorted by number, and the other
// names found there.
func listSegments(fs vfs.FS, dir string) (segs []segInfo, others []string, err error) {
	names, err := fs.List(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("journal: list %s: %w", dir, err)
	}
	for _, name := range names {
		num, ok := parseSegmentName(name)
		if !ok {
			others = append(others, name)
			continue
		}
		segs = append(segs, segInfo{num: num, path: filepath.Join(dir, name)})
	}
	slices.SortFunc(segs, func(a, b segInfo) int { return int64cmp(int64(a.num), int64(b.num)) })
	return segs, others, nil
}

func int64cmp(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// headerBlock builds the first block of segment num: the file header, then a
// padding record up to the alignment. Records start at offset align.
func headerBlock(num uint32, align int) []byte {
	b := vfs.AlignedBuffer(align, align)
	record.PutFileHeader(b, record.FileHeader{Magic: magic, Version: record.FormatVersion, FileNum: num})
	pad := b[record.FileHeaderSize:]
	// Ledger 0: this padding proves nothing durable (see durability
	// markers in the package comment); Entry: the segment's alignment,
	// for operators reading a dump.
	record.PutHeader(pad[:record.HeaderSize], record.Header{FileNum: num, Kind: record.KindPadding, Entry: int64(align)},
		pad[record.HeaderSize:])
	return b
}

// openSegmentFile opens path for writing, with O_DIRECT unless disabled or
// refused. fresh creates (or empties) the file; otherwise it must exist and
// keeps its blocks.
func (j *Journal) openSegmentFile(path string, fresh bool) (vfs.File, error) {
	opts := vfs.OpenOptions{Write: true, Create: fresh, Truncate: fresh}
	if !j.opts.DisableDirectIO && !j.directRefused.Load() {
		opts.Direct = true
		f, err := j.opts.FS.OpenFile(path, opts)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, vfs.ErrDirectUnsupported) {
			return nil, err
		}
		if j.directRefused.CompareAndSwap(false, true) {
			j.log.Warn("journal: O_DIRECT refused by the filesystem; using buffered writes and fdatasync",
				"path", path, "err", err)
		}
		opts.Direct = false
	}
	return j.opts.FS.OpenFile(path, opts)
}

// segment is an open segment being (or about to be) written.
type segment struct {
	num      uint32
	path     string
	f        vfs.File
	prealloc int64 // bytes preallocated from offset 0
	err      error
}

// createSegment makes segment num in dir durable and ready for records:
// header block written and synced, space preallocated, directory synced. It
// reuses a recycled segment file when there is one: its blocks are already
// written, so writes into it overwrite instead of extending the file, and an
// fdatasync then flushes data without a metadata commit.
func (d *dirLog) createSegment(num uint32) *segment {
	path := filepath.Join(d.dir, SegmentName(num))
	s := &segment{num: num, path: path}
	fail := func(op string, err error) *segment {
		if s.f != nil {
			_ = s.f.Close()
		}
		return &segment{num: num, path: path, err: d.ioErr(fmt.Sprintf("%s segment %s", op, path), err)}
	}
	var f vfs.File
	var err error
	if free, size, ok := d.takeRecycled(); ok {
		if err = d.fs.Rename(free, path); err == nil {
			f, err = d.j.openSegmentFile(path, false)
		}
		if err != nil {
			d.j.log.Warn("journal: cannot reuse segment file; creating a new one", "file", free, "err", err)
			_ = d.fs.Remove(free)
			_ = d.fs.Remove(path)
		} else {
			s.prealloc = size
			d.recycled.Add(1)
		}
	}
	if f == nil {
		if f, err = d.j.openSegmentFile(path, true); err != nil {
			return fail("create", err)
		}
	}
	s.f = f
	if _, err := f.WriteAt(headerBlock(num, int(d.align)), 0); err != nil {
		return fail("write header of", err)
	}
	if d.prealloc > 0 && s.prealloc < d.prealloc {
		n := min(d.prealloc, d.maxSeg)
		if err := d.prefill(f, 0, n, false); err != nil {
			return fail("preallocate", err)
		}
		s.prealloc = n
	}
	if err := f.Sync(); err != nil {
		return fail("sync", err)
	}
	if err := d.fs.SyncDir(d.dir); err != nil {
		return fail("sync directory for", err)
	}
	d.segments.Add(1)
	return s
}

// recycleName is the name a freed segment file waits under.
func recycleName(num uint32) string { return fmt.Sprintf("%016x%s", num, recycleSuffix) }

func deadName(num uint32) string { return fmt.Sprintf("%016x%s", num, deadSuffix) }

// takeRecycled pops a file kept for reuse.
func (d *dirLog) takeRecycled() (string, int64, bool) {
	d.recycleMu.Lock()
	defer d.recycleMu.Unlock()
	if len(d.recycle) == 0 {
		return "", 0, false
	}
	r := d.recycle[0]
	d.recycle = d.recycle[1:]
	return r.path, r.size, true
}

// takeBack forgets a file offered for reuse that could not be moved.
func (d *dirLog) takeBack(path string) {
	d.recycleMu.Lock()
	defer d.recycleMu.Unlock()
	d.recycle = slices.DeleteFunc(d.recycle, func(s segInfo) bool { return s.path == path })
}

// offerRecycled keeps a freed segment file (already renamed to path) for
// reuse, or reports false when enough are kept.
func (d *dirLog) offerRecycled(path string, size int64) bool {
	d.recycleMu.Lock()
	defer d.recycleMu.Unlock()
	if len(d.recycle) >= maxRecycle || slices.ContainsFunc(d.recycle, func(s segInfo) bool { return s.path == path }) {
		// A number reused after a restart can free a second file under a
		// name the pool already holds; renaming onto it would drop one.
		return false
	}
	d.recycle = append(d.recycle, segInfo{path: path, size: size})
	return true
}

// ioErr wraps an I/O error with what was being done, adding base.ErrNoSpace
// when the device is full.
func (d *dirLog) ioErr(what string, err error) error {
	if vfs.IsNoSpace(err) {
		return fmt.Errorf("journal: dir %s: %s: %w: %w", d.dir, what, base.ErrNoSpace, err)
	}
	return fmt.Errorf("journal: dir %s: %s: %w", d.dir, what, err)
}
