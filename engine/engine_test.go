package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/vfs"
	"github.com/magnetar/magnetar/journal"
	"github.com/magnetar/magnetar/ledgerstore"
)

var key = []byte("master-key-0123456789")

// entryBytes builds an entry as a BookKeeper client sends it: ledger, entry,
// LAC and length as big-endian int64s, then a body derived from the ids.
func entryBytes(l base.LedgerID, e, lac base.EntryID, bodyLen int) []byte {
	b := make([]byte, entryHeaderSize+bodyLen)
	binary.BigEndian.PutUint64(b[0:], uint64(l))
	binary.BigEndian.PutUint64(b[8:], uint64(e))
	binary.BigEndian.PutUint64(b[16:], uint64(lac))
	binary.BigEndian.PutUint64(b[24:], uint64(bodyLen))
	for i := range bodyLen {
		b[entryHeaderSize+i] = byte(int(l)*31 + int(e)*7 + i)
	}
	return b
}

// testOptions keeps background loops off so tests drive checkpoints.
func testOptions(fs vfs.FS, dir string) Options {
	return Options{
		Logger:        slog.New(slog.DiscardHandler),
		FS:            fs,
		FlushInterval: -1,
		GCInterval:    -1,
		Journal: journal.Options{
			Dirs:          []string{filepath.Join(dir, "journal")},
			PreallocBytes: 1 << 20,
			QueueMaxBytes: 4 << 20,
		},
		Storage: ledgerstore.Options{
			Dirs:               []string{filepath.Join(dir, "ledgers")},
			WriteCacheMaxBytes: 4 << 20,
			ReadCacheMaxBytes:  1 << 20,
			GCInterval:         -1,
			DiskCheckInterval:  -1,
			PreallocateBytes:   -1,
		},
	}
}

// result is an AddCallback that records its outcome on a channel.
type result chan error

func (r result) AddComplete(err error) { r <- err }

func mustOpen(t *testing.T, opts Options) *Bookie {
	t.Helper()
	b, err := Open(opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return b
}

func add(t *testing.T, b *Bookie, l base.LedgerID, e, lac base.EntryID, recovery bool) error {
	t.Helper()
	buf := bufs.Wrap(entryBytes(l, e, lac, 100))
	r := make(result, 1)
	if err := b.AddEntry(context.Background(), l, e, key, buf, recovery, r); err != nil {
		return err
	}
	return <-r
}

func checkEntry(t *testing.T, b *Bookie, l base.LedgerID, e base.EntryID, lac base.EntryID) {
	t.Helper()
	buf, err := b.ReadEntry(context.Background(), l, e)
	if err != nil {
		t.Fatalf("read %d:%d: %v", l, e, err)
	}
	defer buf.Release()
	if want := entryBytes(l, e, lac, 100); !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("read %d:%d: wrong bytes", l, e)
	}
}

func TestAddReadAndLAC(t *testing.T) {
	b := mustOpen(t, testOptions(vfs.Default, t.TempDir()))
	defer b.Close()
	ctx := context.Background()

	// The waiter needs the ledger to exist; the first add creates it.
	if err := add(t, b, 7, 0, -1, false); err != nil {
		t.Fatal(err)
	}
	waited := make(chan base.EntryID, 1)
	go func() {
		lac, err := b.WaitLAC(ctx, 7, 3)
		if err != nil {
			t.Error(err)
		}
		waited <- lac
	}()
	for e := base.EntryID(1); e < 10; e++ {
		if err := add(t, b, 7, e, e-1, false); err != nil {
			t.Fatalf("add %d: %v", e, err)
		}
	}
	for e := base.EntryID(0); e < 10; e++ {
		checkEntry(t, b, 7, e, e-1)
	}
	last, err := b.ReadEntry(ctx, 7, LastEntryID)
	if err != nil {
		t.Fatal(err)
	}
	if got := entryLAC(last.Bytes()); got != 8 {
		t.Fatalf("last entry carries LAC %d, want 8", got)
	}
	last.Release()
	if lac, ok, err := b.LastAddConfirmed(ctx, 7); err != nil || !ok || lac != 8 {
		t.Fatalf("LastAddConfirmed = %d %v %v, want 8", lac, ok, err)
	}
	if lac := <-waited; lac <= 3 {
		t.Fatalf("WaitLAC returned %d, want > 3", lac)
	}
	if _, err := b.ReadEntry(ctx, 7, 99); !errors.Is(err, base.ErrNoEntry) {
		t.Fatalf("read missing entry: %v, want ErrNoEntry", err)
	}
	if _, err := b.ReadEntry(ctx, 8, 0); !errors.Is(err, base.ErrNoLedger) {
		t.Fatalf("read missing ledger: %v, want ErrNoLedger", err)
	}
}

func TestMasterKeyChecked(t *testing.T) {
	b := mustOpen(t, testOptions(vfs.Default, t.TempDir()))
	defer b.Close()
	if err := add(t, b, 1, 0, -1, false); err != nil {
		t.Fatal(err)
	}
	buf := bufs.Wrap(entryBytes(1, 1, 0, 10))
	err := b.AddEntry(context.Background(), 1, 1, []byte("other key"), buf, false, make(result, 1))
	if !errors.Is(err, base.ErrUnauthorized) {
		t.Fatalf("add with wrong key: %v, want ErrUnauthorized", err)
	}
}

func TestFencingSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(vfs.Default, dir)
	b := mustOpen(t, opts)
	for e := base.EntryID(0); e < 3; e++ {
		if err := add(t, b, 5, e, e-1, false); err != nil {
			t.Fatal(err)
		}
	}
	r := make(result, 1)
	if err := b.Fence(context.Background(), 5, key, r); err != nil {
		t.Fatal(err)
	}
	if err := <-r; err != nil {
		t.Fatal(err)
	}
	if err := add(t, b, 5, 3, 2, false); !errors.Is(err, base.ErrFenced) {
		t.Fatalf("normal add after fence: %v, want ErrFenced", err)
	}
	if err := add(t, b, 5, 3, 2, true); err != nil {
		t.Fatalf("recovery add after fence: %v", err)
	}
	// Close without a checkpoint having run since: the fence must come back
	// from the journal or the catalog, either way.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = mustOpen(t, opts)
	defer b.Close()
	if f, err := b.Fenced(context.Background(), 5); err != nil || !f {
		t.Fatalf("fenced after restart = %v, %v", f, err)
	}
	if err := add(t, b, 5, 4, 3, false); !errors.Is(err, base.ErrFenced) {
		t.Fatalf("normal add after restart: %v, want ErrFenced", err)
	}
	for e := base.EntryID(0); e < 3; e++ {
		checkEntry(t, b, 5, e, e-1)
	}
	checkEntry(t, b, 5, 3, 2)
}

func TestCheckpointReleasesJournal(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(vfs.Default, dir)
	opts.Journal.MaxSegmentBytes = 64 << 10
	opts.Journal.MaxBackups = -1
	b := mustOpen(t, opts)
	for e := base.EntryID(0); e < 2000; e++ {
		if err := add(t, b, 3, e, e-1, false); err != nil {
			t.Fatal(err)
		}
	}
	segs := func() int {
		names, err := vfs.Default.List(opts.Journal.Dirs[0])
		if err != nil {
			t.Fatal(err)
		}
		return len(names)
	}
	before := segs()
	if err := b.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := segs()
	if after >= before {
		t.Fatalf("checkpoint kept %d of %d journal files", after, before)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = mustOpen(t, opts)
	defer b.Close()
	for e := base.EntryID(0); e < 2000; e += 97 {
		checkEntry(t, b, 3, e, e-1)
	}
}

func TestCollectDeletedLedgers(t *testing.T) {
	opts := testOptions(vfs.Default, t.TempDir())
	var mu sync.Mutex
	live := map[base.LedgerID]bool{1: true, 2: true}
	opts.LedgerExists = func(_ context.Context, l base.LedgerID) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return live[l], nil
	}
	b := mustOpen(t, opts)
	defer b.Close()
	for _, l := range []base.LedgerID{1, 2} {
		if err := add(t, b, l, 0, -1, false); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	delete(live, 2)
	mu.Unlock()
	n, err := b.CollectDeletedLedgers(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("collected %d, %v; want 1", n, err)
	}
	if _, err := b.ReadEntry(context.Background(), 2, 0); !errors.Is(err, base.ErrNoLedger) {
		t.Fatalf("read of collected ledger: %v", err)
	}
	checkEntry(t, b, 1, 0, -1)
}

// TestCrashAtEveryBoundary cuts the power after every mutating filesystem
// operation of a workload (journal writes and syncs, segment creation, entry
// log flushes, checkpoints) and checks that whatever was acknowledged before
// the cut is readable, with the right bytes, after a restart; and that a
// fence that was acknowledged is still in force.
func TestCrashAtEveryBoundary(t *testing.T) {
	workload := func(fs *vfs.MemFS) (acked map[[2]int64]bool, fenced bool) {
		acked = map[[2]int64]bool{}
		b, err := Open(testOptions(fs, "/data"))
		if err != nil {
			return acked, false
		}
		defer b.Close()
		for round := 0; round < 3; round++ {
			for l := base.LedgerID(1); l <= 2; l++ {
				for i := 0; i < 4; i++ {
					e := base.EntryID(round*4 + i)
					if add(t, b, l, e, e-1, false) == nil {
						acked[[2]int64{int64(l), int64(e)}] = true
					}
				}
			}
			if round == 1 {
				r := make(result, 1)
				if b.Fence(context.Background(), 2, key, r) == nil && <-r == nil {
					fenced = true
				}
			}
			_ = b.Checkpoint(context.Background())
		}
		return acked, fenced
	}
	cuts := 0
	for n := int64(1); ; n++ {
		fs := vfs.NewMem()
		fs.CrashAfter(n)
		acked, fenced := workload(fs)
		if !fs.PowerCut() {
			break
		}
		cuts++
		fs.Crash()
		b, err := Open(testOptions(fs, "/data"))
		if err != nil {
			t.Fatalf("cut after op %d: reopen: %v", n, err)
		}
		for k := range acked {
			l, e := base.LedgerID(k[0]), base.EntryID(k[1])
			buf, err := b.ReadEntry(context.Background(), l, e)
			if err != nil {
				t.Fatalf("cut after op %d: acknowledged %d:%d lost: %v", n, l, e, err)
			}
			if !bytes.Equal(buf.Bytes(), entryBytes(l, e, e-1, 100)) {
				t.Fatalf("cut after op %d: %d:%d has wrong bytes", n, l, e)
			}
			buf.Release()
		}
		if fenced {
			if f, err := b.Fenced(context.Background(), 2); err != nil || !f {
				t.Fatalf("cut after op %d: acknowledged fence lost (%v, %v)", n, f, err)
			}
		}
		if err := b.Close(); err != nil {
			t.Fatalf("cut after op %d: close: %v", n, err)
		}
	}
	if cuts < 20 {
		t.Fatalf("only %d cut points: the workload did not exercise the filesystem", cuts)
	}
	t.Logf("%d cut points checked", cuts)
}

// TestAdvanceLACWithoutWaitersAllocatesNothing: every add's completion
// raises the ledger's LAC; with no long-poll reader waiting that must not
// allocate (a wake-up channel is made only when a reader waits).
func TestAdvanceLACWithoutWaitersAllocatesNothing(t *testing.T) {
	st := &ledgerState{}
	st.mu.lac = base.InvalidEntry
	lac := base.EntryID(0)
	if n := testing.AllocsPerRun(1000, func() {
		st.advanceLAC(lac)
		lac++
	}); n != 0 {
		t.Fatalf("advanceLAC allocates %.1f times per call", n)
	}
}
