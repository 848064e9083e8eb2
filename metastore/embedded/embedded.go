// Package embedded is the metadata store `magnetar standalone` runs by
// default: the in-process tree of package memory's semantics, persisted
// crash-safely in one directory through internal/vfs. A restart keeps every
// acknowledged change.
//
// # Promises
//
//   - A write (Create, Put, Delete, and the deletions of a session's
//     ephemeral nodes) returns only after the log record holding it is
//     fsynced. Writes that arrive while a sync runs share the next one
//     (group commit: one writer goroutine, whatever piles up during an fsync
//     is the next batch).
//   - Nothing a reader or a watch observes is lost by a crash: a read that
//     would see a change whose record is not yet durable waits for it, and
//     watch events fire after the sync.
//   - Ephemeral nodes belong to sessions of this process. A restart is a new
//     process: every ephemeral node of the previous one is deleted on open,
//     as ZooKeeper deletes the nodes of expired sessions (sequential
//     counters stay where they were, so names are never reused).
//   - One process at a time: Open takes an exclusive flock on dir/LOCK and
//     fails with ErrLocked when another process holds it. In one process,
//     share a Server (NewSession, or metastore.Options.Registry).
//
// # Files
//
//	dir/LOCK                  lock file (flock)
//	dir/wal-NNNNNNNN.log      log of mutations, file number N (8 decimal digits)
//	dir/snap-NNNNNNNN.snap    the tree just before wal-N's first record
//	dir/snap-NNNNNNNN.tmp     a snapshot being written; removed on open
//
// Every file starts with internal/record's 64-byte file header (magic
// "MGMETWAL" or "MGMETSNP", format version, file number N) followed by
// records framed by internal/record (32-byte header with CRC32C, the file
// number, a kind). The kinds are private to these files:
//
//	0x41 mutation   a tree.Mutation; header ledger field = its zxid
//	0x42 snapshot   zxid uvarint | node count uvarint; header ledger = zxid
//	0x43 node       a tree.NodeImage, parents before children, root first
//	0x44 end        node count uvarint
//
// A snapshot is written to its .tmp name, fsynced, renamed, and the
// directory fsynced; a snapshot is used only if it ends with a matching end
// record. The log is rotated at a snapshot: first the new wal-N is created
// (header fsynced, directory fsynced), then snap-N is written, then later
// records go to wal-N and the older files are deleted. wal-N may hold
// records the snapshot already contains (zxid <= the snapshot's); replay
// skips them.
//
// # Recovery
//
// Open loads the newest snapshot, replays the log files from its number on
// (they must be consecutive), deletes the ephemeral nodes, then writes a new
// snapshot and starts a new log file. Each failure is named: a clean end; a
// torn tail (invalid bytes with no valid record after them, allowed only at
// the end of the newest log file: the write that was cut was never
// acknowledged); or corruption, reported with file and offset, which stops
// the open (ErrCorruption).
package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
	"github.com/magnetar/magnetar/metastore/internal/core"
	"github.com/magnetar/magnetar/metastore/internal/tree"
)

// Record kinds of the store's files (see the package comment).
const (
	kindMutation record.Kind = 0x41
	kindSnapshot record.Kind = 0x42
	kindNode     record.Kind = 0x43
	kindEnd      record.Kind = 0x44
)

var (
	walMagic  = [8]byte{'M', 'G', 'M', 'E', 'T', 'W', 'A', 'L'}
	snapMagic = [8]byte{'M', 'G', 'M', 'E', 'T', 'S', 'N', 'P'}
)

const lockName = vfs.LockName

func walName(n uint32) string  { return fmt.Sprintf("wal-%08d.log", n) }
func snapName(n uint32) string { return fmt.Sprintf("snap-%08d.snap", n) }
func tmpName(n uint32) string  { return fmt.Sprintf("snap-%08d.tmp", n) }

// parseName returns the kind ("wal", "snap", "tmp") and number of a store
// file name.
func parseName(name string) (string, uint32, bool) {
	for _, k := range []struct{ prefix, suffix, kind string }{
		{"wal-", ".log", "wal"}, {"snap-", ".snap", "snap"}, {"snap-", ".tmp", "tmp"},
	} {
		rest, ok := strings.CutPrefix(name, k.prefix)
		if !ok {
			continue
		}
		digits, ok := strings.CutSuffix(rest, k.suffix)
		if !ok || len(digits) != 8 {
			continue
		}
		n, err := strconv.ParseUint(digits, 10, 32)
		if err != nil {
			continue
		}
		return k.kind, uint32(n), true
	}
	return "", 0, false
}

// Server is an open embedded store. Its sessions (NewSession) are clients
// with their own sessions, watches and ephemeral nodes.
type Server struct {
	dir  string
	fs   vfs.FS
	log  *slog.Logger
	lock vfs.File
	t    *tree.Tree
	p    *persister
}

// Open opens (creating if needed) the store in dir and recovers it. Of opts
// it uses Logger, FS, SnapshotAfterBytes and CreateParents.
func Open(dir string, opts core.Options) (*Server, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	fs := opts.FS
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("metastore: embedded: create %s: %w", dir, err)
	}
	lock, err := lockDir(fs, dir)
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, fs: fs, log: opts.Logger, lock: lock}
	if err := s.recover(opts); err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

func lockDir(fs vfs.FS, dir string) (vfs.File, error) {
	f, err := vfs.LockDir(fs, dir)
	if errors.Is(err, vfs.ErrLocked) {
		return nil, fmt.Errorf("%w: %s (is another magnetar using this metadata directory?)", core.ErrLocked, path.Join(dir, lockName))
	}
	if err != nil {
		return nil, fmt.Errorf("metastore: embedded: lock %s: %w", dir, err)
	}
	return f, nil
}

func (s *Server) recover(opts core.Options) error {
	names, err := s.fs.List(s.dir)
	if err != nil {
		return fmt.Errorf("metastore: embedded: list %s: %w", s.dir, err)
	}
	var wals, snaps []uint32
	var highest uint32
	for _, name := range names {
		kind, n, ok := parseName(name)
		if !ok {
			continue
		}
		highest = max(highest, n)
		switch kind {
		case "wal":
			wals = append(wals, n)
		case "snap":
			snaps = append(snaps, n)
		case "tmp":
			if err := s.fs.Remove(path.Join(s.dir, name)); err != nil {
				return fmt.Errorf("metastore: embedded: remove %s: %w", name, err)
			}
		}
	}
	slices.Sort(wals)
	slices.Sort(snaps)

	t := tree.New(tree.Config{Logger: opts.Logger, CreateParents: opts.CreateParents})
	var from uint32 = 1 // first log file to replay
	if len(snaps) > 0 {
		from = snaps[len(snaps)-1]
		snap, err := s.readSnapshot(from)
		if err != nil {
			return err
		}
		if err := t.Restore(snap); err != nil {
			return fmt.Errorf("metastore: embedded: %s: %w", snapName(from), err)
		}
	}
	replay := slices.DeleteFunc(slices.Clone(wals), func(n uint32) bool { return n < from })
	// A torn tail is allowed only where nothing was written after it: at
	// the end of the newest log file that holds records.
	var torn error
	for i, n := range replay {
		if want := from + uint32(i); n != want {
			return fmt.Errorf("%w: %s is missing (found %s)", core.ErrCorruption, path.Join(s.dir, walName(want)), walName(n))
		}
		records, tail, err := s.replayLog(t, n)
		if err != nil {
			return err
		}
		if torn != nil && records > 0 {
			return torn
		}
		if tail != nil {
			torn = tail
		}
	}
	if torn != nil {
		s.log.Info("metastore: embedded: dropped a torn tail (a write that was never acknowledged)", "err", torn)
	}
	if err := t.DropEphemerals(); err != nil {
		return err
	}

	s.p = &persister{fs: s.fs, dir: s.dir, log: s.log, snapshotAfter: opts.SnapshotAfterBytes}
	if err := s.p.startLog(highest + 1); err != nil {
		return err
	}
	if err := s.p.writeSnapshot(highest+1, t.Snapshot()); err != nil {
		s.p.close()
		return err
	}
	s.p.removeBefore(highest + 1)
	s.t = t
	t.Start(s.p)
	s.log.Debug("metastore: embedded store open", "dir", s.dir, "zxid", t.Zxid(), "log", walName(highest+1))
	return nil
}

func (s *Server) readSnapshot(n uint32) (*tree.Snapshot, error) {
	name := path.Join(s.dir, snapName(n))
	f, err := s.fs.Open(name)
	if err != nil {
		return nil, fmt.Errorf("metastore: embedded: open %s: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("metastore: embedded: stat %s: %w", name, err)
	}
	corrupt := func(off int64, format string, args ...any) error {
		return fmt.Errorf("%w: %s offset %d: %s", core.ErrCorruption, name, off, fmt.Sprintf(format, args...))
	}
	hdr := make([]byte, record.FileHeaderSize)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return nil, corrupt(0, "file header: %v", err)
	}
	if fh, err := record.DecodeFileHeader(hdr, snapMagic); err != nil || fh.FileNum != n {
		return nil, corrupt(0, "file header: %v (file number %d)", err, fh.FileNum)
	}
	rd := record.NewReader(f, fi.Size(), n, record.FileHeaderSize)
	h, payload, err := rd.Next()
	if err != nil || h.Kind != kindSnapshot {
		return nil, corrupt(rd.Offset(), "no snapshot record (kind %d): %v", h.Kind, err)
	}
	v, ok := uvarints(payload, 2)
	if !ok || v[1] > uint64(fi.Size()) {
		return nil, corrupt(record.FileHeaderSize, "bad snapshot record")
	}
	zxid, count := v[0], v[1]
	snap := &tree.Snapshot{Zxid: int64(zxid), Nodes: make([]tree.NodeImage, 0, count)}
	for {
		off := rd.Offset()
		h, payload, err := rd.Next()
		if err != nil {
			// A snapshot is renamed into place only after it was synced
			// whole, so even a torn end is corruption.
			return nil, corrupt(off, "snapshot ends without an end record: %v", err)
		}
		switch h.Kind {
		case kindNode:
			img, err := tree.DecodeNodeImage(payload)
			if err != nil {
				return nil, corrupt(off, "%v", err)
			}
			snap.Nodes = append(snap.Nodes, img)
		case kindEnd:
			v, ok := uvarints(payload, 1)
			if !ok || v[0] != count || uint64(len(snap.Nodes)) != count {
				return nil, corrupt(off, "end record %v, header counts %d nodes, read %d", v, count, len(snap.Nodes))
			}
			return snap, nil
		default:
			return nil, corrupt(off, "unexpected record kind %d", h.Kind)
		}
	}
}

// replayLog applies log file n to t and returns how many records it held.
// tail describes invalid bytes at its end (a torn header or record with no
// valid record after it), which the caller accepts only if no later file
// holds records.
func (s *Server) replayLog(t *tree.Tree, n uint32) (records int, tail, err error) {
	name := path.Join(s.dir, walName(n))
	f, err := s.fs.Open(name)
	if err != nil {
		return 0, nil, fmt.Errorf("metastore: embedded: open %s: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, nil, fmt.Errorf("metastore: embedded: stat %s: %w", name, err)
	}
	corrupt := func(off int64, format string, args ...any) error {
		return fmt.Errorf("%w: %s offset %d: %s", core.ErrCorruption, name, off, fmt.Sprintf(format, args...))
	}
	hdr := make([]byte, record.FileHeaderSize)
	m, _ := f.ReadAt(hdr, 0)
	if fh, err := record.DecodeFileHeader(hdr[:m], walMagic); err != nil || fh.FileNum != n {
		// A header is synced before any record is written after it, so a
		// bad header with nothing after it is a creation the crash cut.
		err := corrupt(0, "file header: %v (file number %d)", err, fh.FileNum)
		if fi.Size() <= record.FileHeaderSize {
			return 0, err, nil
		}
		return 0, nil, err
	}
	rd := record.NewReader(f, fi.Size(), n, record.FileHeaderSize)
	for {
		off := rd.Offset()
		h, payload, err := rd.Next()
		if errors.Is(err, io.EOF) {
			// Zeros short of the end: unsynced space at the tail, unless
			// valid records follow (then bytes in the middle were lost).
			if off < fi.Size() {
				if _, found := rd.NextValidAfter(off, 1); found {
					return records, nil, corrupt(off, "zeroed bytes, and valid records follow")
				}
				return records, corrupt(off, "zeroed tail (%d bytes)", fi.Size()-off), nil
			}
			return records, nil, nil
		}
		if errors.Is(err, record.ErrTorn) {
			if _, found := rd.NextValidAfter(off, 1); found {
				return records, nil, corrupt(off, "%v, and valid records follow", err)
			}
			return records, corrupt(off, "%v (%d bytes to the end)", err, fi.Size()-off), nil
		}
		if err != nil {
			return records, nil, fmt.Errorf("metastore: embedded: read %s: %w", name, err)
		}
		if h.Kind != kindMutation {
			return records, nil, corrupt(off, "unexpected record kind %d", h.Kind)
		}
		mut, err := tree.DecodeMutation(payload)
		if err != nil {
			return records, nil, corrupt(off, "%v", err)
		}
		if err := t.Replay(&mut); err != nil {
			return records, nil, corrupt(off, "%v", err)
		}
		records++
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// uvarints decodes exactly n uvarints filling b.
func uvarints(b []byte, n int) ([]uint64, bool) {
	out := make([]uint64, n)
	for i := range out {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, false
		}
		out[i] = v
		b = b[k:]
	}
	return out, len(b) == 0
}

// NewSession returns a client with a new session.
func (s *Server) NewSession() (core.Store, error) {
	return s.t.NewSession()
}

// ExpireSession expires session id: its ephemeral nodes are deleted, its
// store is told (SessionExpired) and carries on in a new session.
func (s *Server) ExpireSession(id int64) error {
	return s.t.ExpireSession(id)
}

// Dir is the store's directory.
func (s *Server) Dir() string { return s.dir }

// Close ends every session, waits for pending writes, closes the files and
// releases the directory.
func (s *Server) Close() error {
	err := s.t.Close()
	s.p.close()
	if cerr := s.lock.Close(); err == nil {
		err = cerr
	}
	return err
}
