package embedded

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"path"

	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
	"github.com/magnetar/magnetar/metastore/internal/tree"
)

// persister writes the log and snapshots. The tree's writer goroutine is its
// only caller once the store is open.
type persister struct {
	fs            vfs.FS
	dir           string
	log           *slog.Logger
	snapshotAfter int64

	wal     vfs.File
	walNum  uint32
	walSize int64
	buf     []byte
	payload []byte
}

// createLog creates log file n with its header, durable (file and
// directory entry).
func (p *persister) createLog(n uint32) (vfs.File, error) {
	name := path.Join(p.dir, walName(n))
	f, err := p.fs.Create(name)
	if err != nil {
		return nil, fmt.Errorf("metastore: embedded: create %s: %w", name, err)
	}
	hdr := make([]byte, record.FileHeaderSize)
	record.PutFileHeader(hdr, record.FileHeader{Magic: walMagic, Version: record.FormatVersion, FileNum: n})
	if _, err = f.Write(hdr); err == nil {
		if err = f.Sync(); err == nil {
			err = p.fs.SyncDir(p.dir)
		}
	}
	if err != nil {
		f.Close()
		p.fs.Remove(name)
		return nil, fmt.Errorf("metastore: embedded: create %s: %w", name, err)
	}
	return f, nil
}

// startLog makes a new log file n the current one.
func (p *persister) startLog(n uint32) error {
	f, err := p.createLog(n)
	if err != nil {
		return err
	}
	p.switchLog(f, n)
	return nil
}

func (p *persister) switchLog(f vfs.File, n uint32) {
	if p.wal != nil {
		p.wal.Close()
	}
	p.wal, p.walNum, p.walSize = f, n, record.FileHeaderSize
}

// Write implements tree.Persister.
func (p *persister) Write(payloads [][]byte) error {
	buf := p.buf[:0]
	for _, pl := range payloads {
		zxid, _ := binary.Uvarint(pl[1:])
		buf = record.Append(buf, record.Header{Kind: kindMutation, FileNum: p.walNum, Ledger: int64(zxid)}, pl)
	}
	name := walName(p.walNum)
	if _, err := p.wal.Write(buf); err != nil {
		return fmt.Errorf("write %s at %d: %w", name, p.walSize, err)
	}
	if err := p.wal.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", name, err)
	}
	p.walSize += int64(len(buf))
	if cap(buf) <= 4<<20 {
		p.buf = buf
	} else {
		p.buf = nil
	}
	return nil
}

// SnapshotDue implements tree.Persister.
func (p *persister) SnapshotDue() bool { return p.walSize >= p.snapshotAfter }

// Snapshot implements tree.Persister: a new log file, the snapshot before
// it, then the older files go.
func (p *persister) Snapshot(snap *tree.Snapshot) error {
	n := p.walNum + 1
	f, err := p.createLog(n)
	if err != nil {
		return err
	}
	if err := p.writeSnapshot(n, snap); err != nil {
		// Keep logging to the current file. The new one must not come
		// back after a crash with the current file's later records before
		// it; recovery would also cope (a file without records is
		// skipped), this only keeps the directory tidy.
		f.Close()
		if rerr := p.fs.Remove(path.Join(p.dir, walName(n))); rerr == nil {
			p.fs.SyncDir(p.dir)
		}
		return err
	}
	p.switchLog(f, n)
	p.removeBefore(n)
	return nil
}

// writeSnapshot writes snap-n durably: temporary file, fsync, rename,
// directory fsync.
func (p *persister) writeSnapshot(n uint32, snap *tree.Snapshot) error {
	tmp := path.Join(p.dir, tmpName(n))
	final := path.Join(p.dir, snapName(n))
	f, err := p.fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("metastore: embedded: create %s: %w", tmp, err)
	}
	fail := func(err error) error {
		f.Close()
		p.fs.Remove(tmp)
		return fmt.Errorf("metastore: embedded: write %s: %w", final, err)
	}
	const chunk = 1 << 20
	buf := make([]byte, record.FileHeaderSize, chunk+64<<10)
	record.PutFileHeader(buf, record.FileHeader{Magic: snapMagic, Version: record.FormatVersion, FileNum: n})
	pl := binary.AppendUvarint(p.payload[:0], uint64(snap.Zxid))
	pl = binary.AppendUvarint(pl, uint64(len(snap.Nodes)))
	buf = record.Append(buf, record.Header{Kind: kindSnapshot, FileNum: n, Ledger: snap.Zxid}, pl)
	for i := range snap.Nodes {
		pl = tree.AppendNodeImage(pl[:0], &snap.Nodes[i])
		buf = record.Append(buf, record.Header{Kind: kindNode, FileNum: n}, pl)
		if len(buf) >= chunk {
			if _, err := f.Write(buf); err != nil {
				return fail(err)
			}
			buf = buf[:0]
		}
	}
	pl = binary.AppendUvarint(pl[:0], uint64(len(snap.Nodes)))
	buf = record.Append(buf, record.Header{Kind: kindEnd, FileNum: n}, pl)
	if cap(pl) <= 1<<20 {
		p.payload = pl
	}
	if _, err := f.Write(buf); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		p.fs.Remove(tmp)
		return fmt.Errorf("metastore: embedded: close %s: %w", tmp, err)
	}
	if err := p.fs.Rename(tmp, final); err != nil {
		p.fs.Remove(tmp)
		return fmt.Errorf("metastore: embedded: rename %s: %w", tmp, err)
	}
	if err := p.fs.SyncDir(p.dir); err != nil {
		return fmt.Errorf("metastore: embedded: sync %s: %w", p.dir, err)
	}
	return nil
}

// removeBefore deletes the log and snapshot files numbered below n, which
// snapshot n makes unnecessary. Failures only leave garbage behind.
func (p *persister) removeBefore(n uint32) {
	names, err := p.fs.List(p.dir)
	if err != nil {
		p.log.Warn("metastore: embedded: list for cleanup", "dir", p.dir, "err", err)
		return
	}
	removed := false
	for _, name := range names {
		kind, m, ok := parseName(name)
		if !ok || m >= n || kind == "tmp" {
			continue
		}
		if err := p.fs.Remove(path.Join(p.dir, name)); err != nil {
			p.log.Warn("metastore: embedded: remove old file", "file", name, "err", err)
			continue
		}
		removed = true
	}
	if removed {
		if err := p.fs.SyncDir(p.dir); err != nil {
			p.log.Warn("metastore: embedded: sync dir after cleanup", "dir", p.dir, "err", err)
		}
	}
}

func (p *persister) close() {
	if p.wal != nil {
		p.wal.Close()
		p.wal = nil
	}
}
