package journal

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
)

// corruptf builds an error wrapping base.ErrCorruption that names the file
// and offset.
func corruptf(path string, off int64, format string, args ...any) error {
	return fmt.Errorf("journal: %s: offset %d: %w: %s", path, off, base.ErrCorruption, fmt.Sprintf(format, args...))
}

// segScan is what reading a segment found.
type segScan struct {
	size     int64
	headerOK bool
	records  int   // records other than padding
	end      int64 // offset of the first byte that is not part of a valid record
	stop     error // io.EOF (zeros, stale bytes or end of file) or an ErrTorn error
	ended    bool  // the segment ends with a segment-end padding record at end
	header   record.FileHeader
}

// scanSegment reads segment num at path from offset from (FileHeaderSize or
// later), calling visit (when not nil) for every valid record, padding
// included, until the first byte that is not a valid record. The returned
// reader may be used for NextValidAfter.
func scanSegment(fs vfs.FS, path string, num uint32, from int64,
	visit func(off int64, h record.Header, payload []byte) error) (segScan, *record.Reader, vfs.File, error) {
	var sc segScan
	f, err := fs.Open(path)
	if err != nil {
		return sc, nil, nil, fmt.Errorf("journal: open %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return sc, nil, nil, fmt.Errorf("journal: stat %s: %w", path, err)
	}
	sc.size = fi.Size()
	var hb [record.FileHeaderSize]byte
	n, err := f.ReadAt(hb[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		_ = f.Close()
		return sc, nil, nil, fmt.Errorf("journal: read %s: %w", path, err)
	}
	rd := record.NewReader(f, sc.size, num, max(from, record.FileHeaderSize))
	if h, err := record.DecodeFileHeader(hb[:n], magic); err == nil && h.FileNum == num {
		sc.headerOK, sc.header = true, h
	} else {
		sc.end, sc.stop = 0, err
		if err == nil {
			sc.stop = fmt.Errorf("header names file %d", h.FileNum)
		}
		return sc, rd, f, nil
	}
	for {
		off := rd.Offset()
		h, p, err := rd.Next()
		if err != nil {
			sc.end, sc.stop = off, err
			return sc, rd, f, nil
		}
		if h.Kind != record.KindPadding {
			sc.records++
		}
		if visit != nil {
			if err := visit(off, h, p); err != nil {
				_ = f.Close()
				return sc, nil, nil, err
			}
		}
		if h.Kind == record.KindPadding && h.Flags&flagSegmentEnd != 0 {
			// What follows is stale: a recycled file's earlier contents.
			sc.end, sc.ended = rd.Offset(), true
			return sc, rd, f, nil
		}
	}
}

// durabilityProof looks past bad bytes at offset bad for a padding record
// whose durability marker says an fdatasync covering bad had returned
// before it was written. Finding one proves the bytes at bad were durable,
// so their damage is corruption, not a torn write. It returns the offset of
// the proving record.
func durabilityProof(f vfs.File, size int64, num uint32, bad int64) (int64, bool) {
	probe := record.NewReader(f, size, num, record.FileHeaderSize)
	from := bad
	for {
		p, ok := probe.NextValidAfter(from, scanAlign)
		if !ok {
			return 0, false
		}
		rd := record.NewReader(f, size, num, p)
		for {
			off := rd.Offset()
			h, _, err := rd.Next()
			if err != nil {
				from = max(off, p)
				break
			}
			if h.Kind == record.KindPadding && h.Ledger > bad {
				return off, true
			}
		}
	}
}

// recover examines the directory at Open: it checks that segment numbers
// are consecutive, frees trailing segments that hold no record (made ahead
// of need, or cut off whole), cuts a torn tail off the newest remaining one,
// and returns the number for the segment this run will write.
func (d *dirLog) recover() (uint32, error) {
	segs, others, err := listSegments(d.fs, d.dir)
	if err != nil {
		return 0, err
	}
	for _, name := range others {
		path := filepath.Join(d.dir, name)
		if strings.HasSuffix(name, deadSuffix) {
			// A removal cut short by a crash.
			if err := vfs.RemoveGradually(d.fs, path, removeStep, 0); err != nil && !vfs.IsNotExist(err) {
				return 0, fmt.Errorf("journal: remove %s: %w", path, err)
			}
			continue
		}
		if !strings.HasSuffix(name, recycleSuffix) {
			continue
		}
		if fi, err := d.fs.Stat(path); err == nil && d.offerRecycled(path, fi.Size()) {
			continue
		}
		if err := d.fs.Remove(path); err != nil {
			return 0, fmt.Errorf("journal: remove %s: %w", path, err)
		}
	}
	for i := 1; i < len(segs); i++ {
		if segs[i].num != segs[i-1].num+1 {
			return 0, corruptf(segs[i].path, 0, "segments %d to %d are missing", segs[i-1].num+1, segs[i].num-1)
		}
	}
	// The new segment takes the lowest number of the trailing segments
	// without records (or follows the last one with records). That keeps
	// every new position at or after any checkpoint: a checkpoint names at
	// most the first of those segments, at its first record offset, since
	// nothing durable lies in them and the writer's segment is never freed.
	next := uint32(1)
	if len(segs) > 0 {
		next = segs[len(segs)-1].num + 1
	}
	for len(segs) > 0 {
		last := &segs[len(segs)-1]
		keep, err := d.recoverTail(last)
		if err != nil {
			return 0, err
		}
		if keep {
			break
		}
		next = last.num
		// Newest first, each durable before the next: the segments left
		// stay contiguous whatever a crash keeps.
		if err := d.free(*last); err != nil {
			return 0, err
		}
		if err := d.fs.SyncDir(d.dir); err != nil {
			return 0, fmt.Errorf("journal: sync directory %s: %w", d.dir, err)
		}
		segs = segs[:len(segs)-1]
	}
	d.recovered = segs
	return next, nil
}

// recoverTail examines the newest segment. It returns false when the segment
// holds no record and may be removed. When valid records end before the end
// of the file, the rest is a torn tail (cut off, durably) unless a later
// record proves it was durable (corruption).
func (d *dirLog) recoverTail(seg *segInfo) (bool, error) {
	sc, rd, f, err := scanSegment(d.fs, seg.path, seg.num, record.FileHeaderSize, nil)
	if err != nil {
		return false, err
	}
	defer f.Close()
	seg.size = sc.size
	if !sc.headerOK {
		// Never used if no record of its number lies in it: a segment's
		// header is synced before any record is written into it.
		if p, ok := rd.NextValidAfter(0, scanAlign); ok {
			return false, corruptf(seg.path, 0, "bad file header (%v) but a valid record at offset %d", sc.stop, p)
		}
		d.j.log.Info("journal: removing unused segment with an incomplete header", "segment", seg.path, "reason", sc.stop)
		return false, nil
	}
	if sc.end < sc.size && !sc.ended {
		if at, ok := durabilityProof(f, sc.size, seg.num, sc.end); ok {
			return false, corruptf(seg.path, sc.end, "%v; the record at offset %d shows these bytes had been synced", sc.stop, at)
		}
	}
	if sc.records == 0 {
		d.j.log.Info("journal: removing segment without records", "segment", seg.path)
		return false, nil
	}
	if sc.end < sc.size {
		if !sc.ended {
			d.j.log.Warn("journal: cutting torn tail off the newest segment",
				"segment", seg.path, "offset", sc.end, "size", sc.size, "reason", sc.stop)
		}
		if err := d.truncate(seg.path, sc.end); err != nil {
			return false, err
		}
		seg.size = sc.end
	}
	return true, nil
}

// truncate cuts path at size durably, so bytes past the last valid record
// can never be read as records later (the segment is never appended to
// again: a new run starts a new segment).
func (d *dirLog) truncate(path string, size int64) error {
	f, err := d.fs.OpenFile(path, vfs.OpenOptions{Write: true})
	if err != nil {
		return fmt.Errorf("journal: open %s to cut its tail: %w", path, err)
	}
	if err := f.Truncate(size); err != nil {
		_ = f.Close()
		return fmt.Errorf("journal: truncate %s to %d: %w", path, size, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("journal: sync %s: %w", path, err)
	}
	return f.Close()
}

// Replay calls fn for every record from the checkpoint on, in order within
// each directory, directories one after the other. It reads only the
// segments that existed when the journal was opened; appends made since are
// not replayed. A record that fails its checks, bytes after the last valid
// record of a segment, a missing segment or a bad segment header are
// corruption: Replay stops with an error wrapping base.ErrCorruption that
// names the file and offset. An error from fn stops Replay and is returned
// wrapped. Padding records are not passed to fn; payload is valid only
// during the call.
func (j *Journal) Replay(from Checkpoint, fn func(pos Pos, h record.Header, payload []byte) error) error {
	if len(from) != 0 && len(from) != len(j.dirs) {
		return fmt.Errorf("journal: checkpoint has %d positions for %d directories", len(from), len(j.dirs))
	}
	for i, d := range j.dirs {
		start := Pos{Dir: i}
		if len(from) > 0 {
			start = from[i]
		}
		if err := d.replay(start, fn); err != nil {
			return err
		}
	}
	return nil
}

func (d *dirLog) replay(from Pos, fn func(Pos, record.Header, []byte) error) error {
	d.recoveredMu.Lock()
	segs := append([]segInfo(nil), d.recovered...)
	d.recoveredMu.Unlock()
	first := d.firstNum
	if len(segs) > 0 {
		first = segs[0].num
	}
	if want := max(from.File, 1); want < first {
		return corruptf(d.dir, 0, "checkpoint %v needs segment %d but the oldest is %d", from, want, first)
	}
	for _, seg := range segs {
		if seg.num < from.File {
			continue
		}
		start := int64(record.FileHeaderSize)
		if seg.num == from.File {
			start = max(start, from.Offset)
		}
		visit := func(off int64, h record.Header, p []byte) error {
			if h.Kind == record.KindPadding {
				return nil
			}
			if err := fn(Pos{Dir: d.idx, File: seg.num, Offset: off}, h, p); err != nil {
				return fmt.Errorf("journal: replay %s at offset %d: %w", seg.path, off, err)
			}
			return nil
		}
		sc, _, f, err := scanSegment(d.fs, seg.path, seg.num, start, visit)
		if err != nil {
			return err
		}
		_ = f.Close()
		switch {
		case !sc.headerOK:
			return corruptf(seg.path, 0, "bad file header: %v", sc.stop)
		case start > sc.size:
			// Marks are durable positions: the bytes below one are never
			// cut off as a torn tail.
			return corruptf(seg.path, sc.size, "checkpoint %v lies past the end of the segment", from)
		case sc.end < sc.size && !sc.ended:
			return corruptf(seg.path, sc.end, "%v (the segment is %d bytes long)", sc.stop, sc.size)
		}
	}
	return nil
}
