package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/vfs"
	"github.com/magnetar/magnetar/metastore"
	"github.com/magnetar/magnetar/metastore/embedded"
)

var discard = slog.New(slog.DiscardHandler)

func open(t *testing.T, dir string, opts metastore.Options) (*embedded.Server, metastore.Store) {
	t.Helper()
	srv, err := embedded.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := srv.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	return srv, s
}

func TestReopenKeepsStateDropsEphemerals(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srv, s := open(t, dir, metastore.Options{})
	if _, err := s.Create(ctx, "/a/b/c", []byte("deep"), metastore.CreateParents); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := s.Put(ctx, "/a", fmt.Appendf(nil, "v%d", i), int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Create(ctx, "/a/eph", nil, metastore.Ephemeral); err != nil {
		t.Fatal(err)
	}
	var seqs []string
	for range 3 {
		p, err := s.Create(ctx, "/a/s-", nil, metastore.Sequential|metastore.Ephemeral)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, p)
	}
	if err := s.Delete(ctx, "/a/b/c", 0); err != nil {
		t.Fatal(err)
	}
	_, before, _ := s.Get(ctx, "/a")
	oldSession := s.SessionID()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	srv, s = open(t, dir, metastore.Options{})
	defer srv.Close()
	d, st, err := s.Get(ctx, "/a")
	if err != nil || string(d) != "v2" || st.Version != 3 || !st.Created.Equal(before.Created) || st.CreatedRevision != before.CreatedRevision {
		t.Fatalf("after reopen /a = %q %+v %v, before %+v", d, st, err, before)
	}
	if kids, _ := s.Children(ctx, "/a"); !slices.Equal(kids, []string{"b"}) {
		t.Fatalf("children of /a after reopen: %q (ephemerals must be gone)", kids)
	}
	if _, ok, _ := s.Exists(ctx, "/a/b/c"); ok {
		t.Fatal("deleted node came back")
	}
	if s.SessionID() <= oldSession {
		t.Fatalf("session id %#x after restart, %#x before", s.SessionID(), oldSession)
	}
	// Sequential names are never reused across restarts.
	p, err := s.Create(ctx, "/a/s-", nil, metastore.Sequential)
	if err != nil {
		t.Fatal(err)
	}
	if p <= seqs[len(seqs)-1] {
		t.Fatalf("sequential name %q after restart, %q before", p, seqs[len(seqs)-1])
	}
}

func TestSnapshotRotation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := metastore.Options{SnapshotAfterBytes: 4 << 10}
	srv, s := open(t, dir, opts)
	const n = 300
	for i := range n {
		if _, err := s.Create(ctx, fmt.Sprintf("/k/%04d", i), []byte(strings.Repeat("x", i%50)), metastore.CreateParents); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if _, err := s.Put(ctx, "/counter", fmt.Append(nil, i), metastore.AnyVersion); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := os.ReadDir(dir)
	if len(names) > 4 { // LOCK, one snapshot, one log (and at most one of each older)
		var list []string
		for _, e := range names {
			list = append(list, e.Name())
		}
		t.Fatalf("old files were not removed: %q", list)
	}
	srv, s = open(t, dir, opts)
	defer srv.Close()
	kids, err := s.Children(ctx, "/k")
	if err != nil || len(kids) != n {
		t.Fatalf("%d children after reopen (%v), want %d", len(kids), err, n)
	}
	for i := range n {
		d, _, err := s.Get(ctx, fmt.Sprintf("/k/%04d", i))
		if err != nil || len(d) != i%50 {
			t.Fatalf("/k/%04d: %d bytes, %v", i, len(d), err)
		}
	}
	d, st, _ := s.Get(ctx, "/counter")
	if string(d) != "297" || st.Version != 99 {
		t.Fatalf("counter %q version %d", d, st.Version)
	}
}

func TestLockedDirectory(t *testing.T) {
	dir := t.TempDir()
	srv, err := embedded.Open(dir, metastore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = embedded.Open(dir, metastore.Options{})
	if !errors.Is(err, metastore.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	srv.Close()
	srv, err = embedded.Open(dir, metastore.Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	srv.Close()
}

// writeKeys opens dir, creates n keys, closes. The log holds their records.
func writeKeys(t *testing.T, dir string, n int) {
	t.Helper()
	srv, s := open(t, dir, metastore.Options{})
	for i := range n {
		if _, err := s.Create(context.Background(), fmt.Sprintf("/k%02d", i), []byte("value"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
}

func newestLog(t *testing.T, dir string) string {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "wal-*.log"))
	slices.Sort(logs)
	if len(logs) == 0 {
		t.Fatal("no log file")
	}
	return logs[len(logs)-1]
}

func TestTornTailIsDropped(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir, 10)
	wal := newestLog(t, dir)
	fi, _ := os.Stat(wal)
	// Cut the last record in half: a write the crash interrupted.
	if err := os.Truncate(wal, fi.Size()-10); err != nil {
		t.Fatal(err)
	}
	srv, s := open(t, dir, metastore.Options{})
	defer srv.Close()
	kids, _ := s.Children(context.Background(), "/")
	if len(kids) != 9 || kids[8] != "k08" {
		t.Fatalf("after a torn tail: %q, want k00..k08", kids)
	}
}

func TestCorruptionIsReported(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir, 10)
	wal := newestLog(t, dir)
	b, err := os.ReadFile(wal)
	if err != nil {
		t.Fatal(err)
	}
	// Flip a byte inside the third record: valid records follow it.
	off := 64 + 2*(32+len("/k00")+16) + 40
	b[off] ^= 0xff
	if err := os.WriteFile(wal, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = embedded.Open(dir, metastore.Options{})
	if !errors.Is(err, metastore.ErrCorruption) || !strings.Contains(err.Error(), filepath.Base(wal)) {
		t.Fatalf("Open of a corrupt log: %v, want ErrCorruption naming %s", err, filepath.Base(wal))
	}
	// Nothing was changed: the same error again.
	if _, err2 := embedded.Open(dir, metastore.Options{}); err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("second Open: %v, first %v", err2, err)
	}

	// A damaged snapshot is corruption too.
	dir = t.TempDir()
	writeKeys(t, dir, 3)
	snaps, _ := filepath.Glob(filepath.Join(dir, "snap-*.snap"))
	b, _ = os.ReadFile(snaps[0])
	b[len(b)-3] ^= 0xff
	os.WriteFile(snaps[0], b, 0o644)
	if _, err := embedded.Open(dir, metastore.Options{}); !errors.Is(err, metastore.ErrCorruption) {
		t.Fatalf("Open with a corrupt snapshot: %v", err)
	}
}

// TestFailedSyncFailsTheStore: when the log cannot be synced the write is
// not acknowledged, the store refuses everything, and a reopen recovers
// what was acknowledged.
func TestFailedSyncFailsTheStore(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	inj := vfs.NewInjector(mem)
	srv, s := open(t, "/meta", metastore.Options{FS: inj, Logger: discard})
	if _, err := s.Create(ctx, "/ok", []byte("acked"), 0); err != nil {
		t.Fatal(err)
	}
	inj.Add(vfs.Rule{Ops: []vfs.Op{vfs.OpSync}, Path: vfs.PathSuffix(".log")})
	_, err := s.Create(ctx, "/lost", nil, 0)
	if !errors.Is(err, metastore.ErrFailed) || !errors.Is(err, vfs.ErrInjected) {
		t.Fatalf("Create with a failing sync: %v", err)
	}
	if _, _, err := s.Get(ctx, "/ok"); !errors.Is(err, metastore.ErrFailed) {
		t.Fatalf("Get on a failed store: %v", err)
	}
	if _, err := srv.NewSession(); !errors.Is(err, metastore.ErrFailed) {
		t.Fatalf("NewSession on a failed store: %v", err)
	}
	srv.Close()
	inj.Clear()
	mem.Crash()
	srv, s = open(t, "/meta", metastore.Options{FS: mem, Logger: discard})
	defer srv.Close()
	if d, _, err := s.Get(ctx, "/ok"); err != nil || string(d) != "acked" {
		t.Fatalf("acknowledged node after recovery: %q %v", d, err)
	}
	if _, ok, _ := s.Exists(ctx, "/lost"); ok {
		t.Fatal("a write whose sync failed survived the crash")
	}
}

// TestWatchFiresAfterDurable: a watch event is delivered only after the
// change is synced, so no one acts on a change a crash could undo.
func TestWatchFiresAfterDurable(t *testing.T) {
	ctx := context.Background()
	inj := vfs.NewInjector(vfs.NewMem())
	srv, s := open(t, "/meta", metastore.Options{FS: inj, Logger: discard})
	defer srv.Close()
	w, err := s.Watch(ctx, "/x", metastore.WatchData)
	if err != nil {
		t.Fatal(err)
	}
	reader, _ := srv.NewSession()
	release := make(chan struct{})
	held := make(chan struct{})
	h := inj.Add(vfs.Rule{Ops: []vfs.Op{vfs.OpSync}, Path: vfs.PathSuffix(".log"), Times: 1,
		Action: vfs.Call(func(vfs.Op, string) error { close(held); <-release; return nil })})
	done := make(chan error, 1)
	go func() { _, err := s.Create(ctx, "/x", nil, 0); done <- err }()
	<-held
	// The change is applied in memory but not durable: no event yet, and a
	// reader waits for the sync rather than see it early.
	select {
	case ev := <-w.C:
		t.Fatalf("event %v before the sync", ev)
	default:
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, ok, err := reader.Exists(short, "/x")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a reader got (%v, %v) before the change was durable, want to wait", ok, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, ok, err := reader.Exists(ctx, "/x"); !ok || err != nil {
		t.Fatalf("reader after the sync: %v %v", ok, err)
	}
	if ev := <-w.C; ev.Type != metastore.EventCreated {
		t.Fatalf("event %v", ev)
	}
	h.Remove()
}

// TestZeroedBytes: zeros at the end of the newest log are unsynced space;
// zeros with valid records after them are lost data.
func TestZeroedBytes(t *testing.T) {
	dir := t.TempDir()
	writeKeys(t, dir, 10)
	wal := newestLog(t, dir)
	b, _ := os.ReadFile(wal)
	os.WriteFile(wal, append(b, make([]byte, 300)...), 0o644)
	srv, s := open(t, dir, metastore.Options{Logger: discard})
	if kids, _ := s.Children(context.Background(), "/"); len(kids) != 10 {
		t.Fatalf("after a zeroed tail: %q", kids)
	}
	srv.Close()

	dir = t.TempDir()
	writeKeys(t, dir, 10)
	wal = newestLog(t, dir)
	b, _ = os.ReadFile(wal)
	clear(b[200:300])
	os.WriteFile(wal, b, 0o644)
	if _, err := embedded.Open(dir, metastore.Options{Logger: discard}); !errors.Is(err, metastore.ErrCorruption) {
		t.Fatalf("Open with zeroed records in the middle: %v", err)
	}
}
