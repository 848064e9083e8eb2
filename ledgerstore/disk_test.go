package ledgerstore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/vfs"
)

// modeRecorder collects OnModeChange calls.
type modeRecorder struct {
	mu    sync.Mutex
	modes []Mode
}

func (r *modeRecorder) record(m Mode) {
	r.mu.Lock()
	r.modes = append(r.modes, m)
	r.mu.Unlock()
}

func (r *modeRecorder) get() []Mode {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Mode{}, r.modes...)
}

// TestNoSpaceTurnsReadOnly injects ENOSPC into entry log writes: the flush
// fails without losing anything (the entries stay readable from the write
// cache), the store turns read-only and says so, adds fail with a
// read-only error, reads go on; once space is back the store is writable,
// the flush succeeds and everything survives a reopen.
func TestNoSpaceTurnsReadOnly(t *testing.T) {
	in := vfs.NewInjector(vfs.NewMem())
	opts := testOptions(in, "/d")
	var rec modeRecorder
	opts.OnModeChange = rec.record
	s := mustOpen(t, opts)
	ctx := context.Background()
	for e := base.EntryID(0); e < 30; e++ {
		add(t, s, 1, e, 500)
	}
	flush(t, s)
	for e := base.EntryID(30); e < 60; e++ {
		add(t, s, 1, e, 500)
	}
	rule := in.Add(vfs.Rule{Ops: []vfs.Op{vfs.OpWriteAt}, Path: vfs.PathSuffix(entryLogSuffix),
		Action: vfs.Fail(syscall.ENOSPC)})
	err := s.Flush(ctx)
	if err == nil || !vfs.IsNoSpace(err) {
		t.Fatalf("Flush on a full disk: %v", err)
	}
	if s.Mode() != ReadOnly {
		t.Fatalf("mode %v after ENOSPC", s.Mode())
	}
	if got := rec.get(); len(got) != 1 || got[0] != ReadOnly {
		t.Fatalf("mode changes %v", got)
	}
	if err := s.AddEntry(ctx, 1, 60, bufs.Wrap([]byte("x"))); !errors.Is(err, base.ErrReadOnly) {
		t.Fatalf("add while read-only: %v", err)
	}
	for e := base.EntryID(0); e < 60; e++ {
		checkEntry(t, s, 1, e, 500) // flushed ones from the log, the rest from the cache
	}
	// Space is back (the injector stops failing; the filesystem reports
	// little use).
	rule.Remove()
	if m := s.CheckDisks(); m != Writable {
		t.Fatalf("mode %v after space came back", m)
	}
	if got := rec.get(); len(got) != 2 || got[1] != Writable {
		t.Fatalf("mode changes %v", got)
	}
	flush(t, s)
	add(t, s, 1, 60, 500)
	flush(t, s)
	s.Close()
	s = mustOpen(t, opts)
	defer s.Close()
	for e := base.EntryID(0); e <= 60; e++ {
		checkEntry(t, s, 1, e, 500)
	}
}

// TestNoSpaceInOneDirectory: ENOSPC in one of two directories takes it out
// of the rotation; the flush goes to the other and succeeds, and the store
// stays writable.
func TestNoSpaceInOneDirectory(t *testing.T) {
	in := vfs.NewInjector(vfs.NewMem())
	opts := testOptions(in, "/d1", "/d2")
	s := mustOpen(t, opts)
	defer s.Close()
	// Entry log writes in /d1 fail (the catalog there has space reserved).
	in.Add(vfs.Rule{Ops: []vfs.Op{vfs.OpWriteAt}, Action: vfs.Fail(syscall.ENOSPC),
		Path: func(p string) bool { return strings.HasPrefix(p, "/d1/") && strings.HasSuffix(p, entryLogSuffix) }})
	for e := base.EntryID(0); e < 20; e++ {
		for l := base.LedgerID(1); l <= 10; l++ {
			add(t, s, l, e, 300)
		}
	}
	flush(t, s)
	if s.Mode() != Writable || !s.dirs[0].noSpace.Load() || s.dirs[1].noSpace.Load() {
		t.Fatalf("mode %v, d1 out of space %v, d2 %v", s.Mode(), s.dirs[0].noSpace.Load(), s.dirs[1].noSpace.Load())
	}
	s.Close()
	s = mustOpen(t, testOptions(in, "/d1", "/d2"))
	for e := base.EntryID(0); e < 20; e++ {
		for l := base.LedgerID(1); l <= 10; l++ {
			checkEntry(t, s, l, e, 300)
		}
	}
}

// TestSmallFilesystem fills a small MemFS.
//
// First until a flush hits ENOSPC (the periodic usage check is off, so the
// write finds out): the store turns read-only with every flushed entry
// intact and the unflushed ones readable from the write cache; a deletion
// still succeeds (the catalog has space reserved). When space frees up
// (the filesystem grows) the store turns writable and the held entries
// reach the disk.
//
// Then until the usage check finds the threshold crossed: deleting
// ledgers and collecting garbage (compaction works in the 5% left) brings
// the usage under the low-water mark and the store back to writable.
func TestSmallFilesystem(t *testing.T) {
	fs := vfs.NewMem()
	fs.SetCapacity(1 << 20)
	opts := testOptions(fs, "/d")
	opts.EntryLogSizeLimit = 32 << 10
	opts.MajorCompactionThreshold = 0.9
	var rec modeRecorder
	opts.OnModeChange = rec.record
	s := mustOpen(t, opts)
	defer func() { s.Close() }()
	ctx := context.Background()
	const size, ledgers = 900, 8
	var next base.EntryID    // entries 0..next-1 of every ledger were added
	var durable base.EntryID // entries 0..durable-1 of every live ledger are flushed
	deleted := map[base.LedgerID]bool{}
	fill := func(checkDisks bool) {
		t.Helper()
		for s.Mode() == Writable {
			if next > 100000 {
				t.Fatal("never turned read-only")
			}
			var err error
			for l := base.LedgerID(1); l <= ledgers && err == nil; l++ {
				if !deleted[l] {
					err = s.AddEntry(ctx, l, next, bufs.Wrap(payload(l, next, size)))
				}
			}
			if err != nil {
				if !errors.Is(err, base.ErrReadOnly) {
					t.Fatal(err)
				}
				return
			}
			next++
			if next%5 == 0 {
				if err := s.Flush(ctx); err != nil {
					if s.Mode() != ReadOnly || !vfs.IsNoSpace(err) {
						t.Fatalf("flush failed (mode %v): %v", s.Mode(), err)
					}
					return
				}
				durable = next
				if checkDisks {
					s.CheckDisks()
				}
			}
		}
	}
	check := func(upTo base.EntryID) {
		t.Helper()
		for l := base.LedgerID(1); l <= ledgers; l++ {
			for e := base.EntryID(0); e < upTo; e++ {
				if deleted[l] {
					checkMissing(t, s, l, e, base.ErrNoLedger)
				} else {
					checkEntry(t, s, l, e, size)
				}
			}
		}
	}

	fill(false)
	if s.Mode() != ReadOnly || next == durable {
		t.Fatalf("mode %v with %d added, %d flushed", s.Mode(), next, durable)
	}
	t.Logf("ENOSPC after %d entries per ledger, %d flushed", next, durable)
	check(next) // flushed ones from the logs, the rest from the cache
	deleted[8] = true
	if err := s.DeleteLedger(ctx, 8); err != nil {
		t.Fatalf("delete on a full disk: %v", err)
	}
	// A restart on the full disk: the unflushed entries are the journal's
	// to replay; the rest is there and the store starts read-only.
	if err := s.Close(); err == nil {
		t.Fatal("Close flushed on a full disk")
	}
	s = mustOpen(t, opts)
	if s.Mode() != ReadOnly {
		t.Fatalf("reopened on a full disk: %v", s.Mode())
	}
	check(durable)
	fs.SetCapacity(2 << 20)
	if m := s.CheckDisks(); m != Writable {
		t.Fatalf("mode %v after the filesystem grew", m)
	}
	for e := durable; e < next; e++ { // the journal replay
		for l := base.LedgerID(1); l < ledgers; l++ {
			add(t, s, l, e, size)
		}
	}
	flush(t, s)
	durable = next
	s.Close()
	s = mustOpen(t, opts)
	check(next)

	fill(true)
	if s.Mode() != ReadOnly {
		t.Fatal("not read-only")
	}
	du, _ := fs.DiskUsage("/d")
	t.Logf("threshold crossed after %d entries per ledger: %.3f used", next, du.UsedFraction())
	for l := base.LedgerID(1); l <= 5; l++ {
		deleted[l] = true
		if err := s.DeleteLedger(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	res, err := s.RunGC(ctx, GCMajor)
	if err != nil {
		t.Fatal(err)
	}
	if m := s.CheckDisks(); m != Writable {
		du, _ := fs.DiskUsage("/d")
		t.Fatalf("still %v after collection %+v: %.2f used", m, res, du.UsedFraction())
	}
	flush(t, s)
	s.Close()
	s = mustOpen(t, opts)
	check(next)
	want := []Mode{ReadOnly, ReadOnly, Writable, ReadOnly, Writable}
	if got := rec.get(); !slices.Equal(got, want) {
		t.Fatalf("mode changes %v, want %v", got, want)
	}
}

// TestGCReclaimsSpace deletes ledgers and checks that the files on disk
// shrink, in number and bytes, while the live ledgers read back intact
// before and after a reopen.
func TestGCReclaimsSpace(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/d")
	opts.EntryLogSizeLimit = 32 << 10
	s := mustOpen(t, opts)
	ctx := context.Background()
	for e := base.EntryID(0); e < 100; e++ {
		for l := base.LedgerID(1); l <= 5; l++ {
			add(t, s, l, e, 300)
		}
		if e%20 == 19 {
			flush(t, s)
		}
	}
	usage := func() (files int, bytes int64) {
		names, err := fs.List("/d")
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			fi, err := fs.Stat("/d/" + n)
			if err != nil {
				t.Fatal(err)
			}
			files++
			bytes += fi.Size()
		}
		return files, bytes
	}
	files0, bytes0 := usage()
	// Ledgers 1-3 go entirely; 4 and 5 stay.
	for l := base.LedgerID(1); l <= 3; l++ {
		if err := s.DeleteLedger(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	// A minor collection (threshold 0.2) leaves 40%-live logs alone; a
	// major one (0.5) takes them.
	res, err := s.RunGC(ctx, GCMinor)
	if err != nil {
		t.Fatal(err)
	}
	if res.LogsCompacted != 0 {
		t.Fatalf("minor collection compacted 40%%-live logs: %+v", res)
	}
	add(t, s, 4, 100, 300) // lets the flusher roll the active log
	flush(t, s)
	res, err = s.RunGC(ctx, GCMajor)
	if err != nil {
		t.Fatal(err)
	}
	files1, bytes1 := usage()
	t.Logf("collection %+v: %d files, %d bytes -> %d files, %d bytes", res, files0, bytes0, files1, bytes1)
	if res.LogsCompacted == 0 || bytes1 > bytes0*6/10 || files1 >= files0 {
		t.Fatalf("space not reclaimed: %+v; %d files, %d bytes -> %d files, %d bytes", res, files0, bytes0, files1, bytes1)
	}
	check := func() {
		for e := base.EntryID(0); e < 100; e++ {
			checkEntry(t, s, 4, e, 300)
			checkEntry(t, s, 5, e, 300)
			checkMissing(t, s, 2, e, base.ErrNoLedger)
		}
	}
	check()
	// A tombstone goes once no log holds the ledger's records. Which logs
	// a major compaction leaves depends on where padding (direct writes)
	// put the records; a log still written to, or more than half live,
	// keeps its dead records and their ledgers' tombstones.
	held := 0
	s.state.RLock()
	for l := base.LedgerID(1); l <= 3; l++ {
		for _, lf := range s.state.logs {
			if _, ok := lf.ledgers[l]; ok {
				held++
				break
			}
		}
	}
	s.state.RUnlock()
	if res.TombstonesDropped != 3-held || res.TombstonesDropped == 0 {
		t.Fatalf("tombstones dropped: %d, with %d deleted ledgers still in a log", res.TombstonesDropped, held)
	}
	s.Close()
	s = mustOpen(t, opts)
	defer s.Close()
	check()
}

// TestCompactionDoesNotBlockAdds holds compaction inside a read of the log
// it copies: adds, flushes and reads go on.
func TestCompactionDoesNotBlockAdds(t *testing.T) {
	in := vfs.NewInjector(vfs.NewMem())
	opts := testOptions(in, "/d")
	opts.EntryLogSizeLimit = 16 << 10
	opts.ReadCacheMaxBytes = -1
	opts.MajorCompactionThreshold = 0.9
	s := mustOpen(t, opts)
	defer s.Close()
	ctx := context.Background()
	for e := base.EntryID(0); e < 60; e++ {
		add(t, s, 1, e, 300)
		add(t, s, 2, e, 300)
	}
	flush(t, s)
	if err := s.DeleteLedger(ctx, 1); err != nil {
		t.Fatal(err)
	}
	inCopy, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.hooks.compactCopy = func(uint32) {
		once.Do(func() { close(inCopy) })
		<-release
	}
	gcErr := make(chan error, 1)
	go func() {
		_, err := s.RunGC(ctx, GCMajor)
		gcErr <- err
	}()
	waitFor(t, inCopy, "compaction copying a log")
	for e := base.EntryID(0); e < 100; e++ {
		add(t, s, 3, e, 300)
	}
	flush(t, s)
	checkEntry(t, s, 2, 10, 300)
	checkEntry(t, s, 3, 99, 300)
	close(release)
	if err := <-gcErr; err != nil {
		t.Fatal(err)
	}
	for e := base.EntryID(0); e < 60; e++ {
		checkEntry(t, s, 2, e, 300)
	}
}

// TestOpenOnFullDisk: with not a byte free, Open cannot write a new
// catalog; it goes on with the old one (deletions still land in its
// reserve) and nothing is lost.
func TestOpenOnFullDisk(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/d")
	s := mustOpen(t, opts)
	for e := base.EntryID(0); e < 50; e++ {
		add(t, s, 1, e, 500)
		add(t, s, 2, e, 500)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	du, _ := fs.DiskUsage("/d")
	fs.SetCapacity(int64(du.TotalBytes - du.FreeBytes))
	s = mustOpen(t, opts)
	if s.Mode() != ReadOnly {
		t.Fatalf("mode %v on a full disk", s.Mode())
	}
	if err := s.DeleteLedger(context.Background(), 2); err != nil {
		t.Fatalf("delete on a full disk: %v", err)
	}
	for e := base.EntryID(0); e < 50; e++ {
		checkEntry(t, s, 1, e, 500)
	}
	s.Close()
	fs.SetCapacity(1 << 30)
	s = mustOpen(t, opts)
	defer s.Close()
	for e := base.EntryID(0); e < 50; e++ {
		checkEntry(t, s, 1, e, 500)
		checkMissing(t, s, 2, e, base.ErrNoLedger)
	}
}
