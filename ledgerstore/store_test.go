package ledgerstore

import (
	"context"
	"errors"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/vfs"
)

// TestRoundTrip adds entries of many ledgers interleaved, flushes now and
// then, and reads everything back: from the write cache, from the entry
// logs, and after reopening the store, over two directories.
func TestRoundTrip(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/d1", "/d2")
	opts.WriteCacheMaxBytes = 4 * (writeBufferBytes + 1<<20)
	opts.PreallocateBytes = 64 << 10
	pool := bufs.NewPool()
	opts.Pool = pool
	s := mustOpen(t, opts)
	const ledgers, entries = 40, 60
	for e := base.EntryID(0); e < entries; e++ {
		for l := base.LedgerID(1); l <= ledgers; l++ {
			add(t, s, l, e, sizeFor(l, e))
		}
		if e%17 == 16 {
			flush(t, s)
		}
	}
	// A payload larger than the writer's buffer goes around it.
	add(t, s, 1000, 0, writeBufferBytes+12345)
	// Some readable from the write cache before the flush.
	checkEntry(t, s, 7, entries-1, sizeFor(7, entries-1))
	checkEntry(t, s, 1000, 0, writeBufferBytes+12345)
	flush(t, s)
	check := func(s *Store) {
		t.Helper()
		for l := base.LedgerID(1); l <= ledgers; l++ {
			for e := base.EntryID(0); e < entries; e++ {
				checkEntry(t, s, l, e, sizeFor(l, e))
			}
			last, err := s.LastEntry(l)
			if err != nil || last != entries-1 {
				t.Fatalf("LastEntry(%d) = %d, %v", l, last, err)
			}
		}
		checkEntry(t, s, 1000, 0, writeBufferBytes+12345)
		checkMissing(t, s, 1, entries, base.ErrNoEntry)
		checkMissing(t, s, 5000, 0, base.ErrNoLedger)
	}
	check(s)
	st := s.Stats()
	if st.EntryLogs < 2 || st.IndexEntries != ledgers*entries+1 {
		t.Fatalf("stats: %d logs, %d index entries", st.EntryLogs, st.IndexEntries)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := pool.LiveBuffers(); n != 0 {
		t.Fatalf("%d read buffers not released after Close", n)
	}
	s = mustOpen(t, opts)
	check(s)
	if st2 := s.Stats(); st2.LiveBytes != st.LiveBytes || st2.IndexEntries != st.IndexEntries {
		t.Fatalf("after reopen: live %d entries %d, before %d %d", st2.LiveBytes, st2.IndexEntries, st.LiveBytes, st.IndexEntries)
	}
	// Range reads and read-ahead give back their buffers too.
	got, err := s.ReadRange(context.Background(), 3, 0, 1000, 1<<20)
	if err != nil || len(got) != entries {
		t.Fatalf("ReadRange: %d, %v", len(got), err)
	}
	releaseAll(got)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := pool.LiveBuffers(); n != 0 {
		t.Fatalf("%d read buffers not released after Close", n)
	}
}

func TestReadRange(t *testing.T) {
	s := mustOpen(t, testOptions(vfs.NewMem(), "/d"))
	defer s.Close()
	ctx := context.Background()
	for e := base.EntryID(0); e < 100; e++ {
		add(t, s, 1, e, 100)
		add(t, s, 2, e, 50)
		if e == 59 {
			flush(t, s)
		}
	}
	// 0..59 in logs, 60..99 in the write cache.
	got, err := s.ReadRange(ctx, 1, 40, 50, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 50 {
		t.Fatalf("ReadRange: %d entries, want 50", len(got))
	}
	for i, b := range got {
		if want := payload(1, base.EntryID(40+i), 100); string(b.Bytes()) != string(want) {
			t.Fatalf("entry %d differs", 40+i)
		}
		b.Release()
	}
	// maxBytes stops before the entry that would exceed it.
	got, err = s.ReadRange(ctx, 1, 0, 100, 350)
	if err != nil || len(got) != 3 {
		t.Fatalf("ReadRange with 350 bytes: %d entries, %v", len(got), err)
	}
	releaseAll(got)
	// The first entry comes even if it alone exceeds maxBytes.
	got, err = s.ReadRange(ctx, 1, 0, 100, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("ReadRange with 1 byte: %d entries, %v", len(got), err)
	}
	releaseAll(got)
	// A missing entry ends the range.
	got, err = s.ReadRange(ctx, 1, 95, 100, 1<<20)
	if err != nil || len(got) != 5 {
		t.Fatalf("ReadRange to the end: %d entries, %v", len(got), err)
	}
	releaseAll(got)
	if _, err := s.ReadRange(ctx, 1, 100, 10, 1<<20); !errors.Is(err, base.ErrNoEntry) {
		t.Fatalf("ReadRange past the end: %v", err)
	}
}

func TestReadAheadFillsReadCache(t *testing.T) {
	s := mustOpen(t, testOptions(vfs.NewMem(), "/d"))
	defer s.Close()
	for e := base.EntryID(0); e < 200; e++ {
		add(t, s, 1, e, 300)
		add(t, s, 2, e, 300)
	}
	flush(t, s)
	for e := base.EntryID(0); e < 200; e++ {
		checkEntry(t, s, 1, e, 300)
	}
	st := s.Stats()
	if st.ReadAheads == 0 || st.ReadsReadCache < 150 {
		t.Fatalf("sequential reader: %d from logs, %d from the read cache, %d read-aheads",
			st.ReadsLog, st.ReadsReadCache, st.ReadAheads)
	}
}

func TestMetadata(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/d")
	s := mustOpen(t, opts)
	if err := s.SetMasterKey(5, []byte("key")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMasterKey(5, []byte("other")); !errors.Is(err, base.ErrUnauthorized) {
		t.Fatalf("SetMasterKey with another key: %v", err)
	}
	if was, err := s.SetFenced(5); err != nil || was {
		t.Fatalf("SetFenced: %v %v", was, err)
	}
	if was, _ := s.SetFenced(5); !was {
		t.Fatal("SetFenced twice: not fenced before")
	}
	if err := s.SetExplicitLAC(5, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetFenced(6); !errors.Is(err, base.ErrNoLedger) {
		t.Fatalf("SetFenced of an unknown ledger: %v", err)
	}
	add(t, s, 7, 0, 10) // an add creates the ledger
	flush(t, s)
	s.Close()
	s = mustOpen(t, opts)
	defer s.Close()
	info, err := s.Ledger(5)
	if err != nil || !info.Fenced || string(info.MasterKey) != "key" || string(info.ExplicitLAC) != "\x01\x02\x03" ||
		info.LastEntry != base.InvalidEntry {
		t.Fatalf("Ledger(5) = %+v, %v", info, err)
	}
	if got := s.Ledgers(); len(got) != 2 || got[0] != 5 || got[1] != 7 {
		t.Fatalf("Ledgers() = %v", got)
	}
}

func TestDeleteLedger(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/d")
	s := mustOpen(t, opts)
	ctx := context.Background()
	for e := base.EntryID(0); e < 20; e++ {
		add(t, s, 1, e, 500)
		add(t, s, 2, e, 500)
	}
	flush(t, s)
	add(t, s, 1, 20, 500) // in the write cache at deletion
	if err := s.DeleteLedger(ctx, 1); err != nil {
		t.Fatal(err)
	}
	checkMissing(t, s, 1, 0, base.ErrNoLedger)
	checkMissing(t, s, 1, 20, base.ErrNoLedger)
	if err := s.AddEntry(ctx, 1, 21, bufs.Wrap([]byte("x"))); !errors.Is(err, base.ErrNoLedger) {
		t.Fatalf("add to a deleted ledger: %v", err)
	}
	flush(t, s)
	s.Close()
	s = mustOpen(t, opts)
	defer s.Close()
	checkMissing(t, s, 1, 0, base.ErrNoLedger)
	checkMissing(t, s, 1, 20, base.ErrNoLedger)
	for e := base.EntryID(0); e < 20; e++ {
		checkEntry(t, s, 2, e, 500)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Options)
	}{
		{"no dirs", func(o *Options) { o.Dirs = nil }},
		{"duplicate dir", func(o *Options) { o.Dirs = []string{"/a", "/a"} }},
		{"one segment", func(o *Options) { o.WriteCacheSegments = 1 }},
		{"tiny segments", func(o *Options) { o.WriteCacheMaxBytes = 1000 }},
		{"huge logs", func(o *Options) { o.EntryLogSizeLimit = 8 << 30 }},
		{"lwm above threshold", func(o *Options) { o.DiskUsageLwmThreshold = 0.99 }},
		{"minor above major", func(o *Options) { o.MinorCompactionThreshold = 0.9 }},
	} {
		o := Options{Dirs: []string{"/a"}}
		tc.mod(&o)
		o.EnsureDefaults()
		if err := o.Validate(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: Validate() = %v", tc.name, err)
		}
	}
	o := Options{Dirs: []string{"/a"}}
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}

// TestSyncMetadataSurvivesCrash: metadata changes are durable once
// SyncMetadata returns, without a Flush; a crash before it may lose them
// (the bookie's journal holds them).
func TestSyncMetadataSurvivesCrash(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/d")
	s := mustOpen(t, opts)
	if err := s.SetMasterKey(1, []byte("k")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetFenced(1); err != nil {
		t.Fatal(err)
	}
	if err := s.SyncMetadata(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.SetExplicitLAC(1, []byte("lac")); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	s.Close()
	s = mustOpen(t, opts)
	defer s.Close()
	info, err := s.Ledger(1)
	if err != nil || !info.Fenced || string(info.MasterKey) != "k" || info.ExplicitLAC != nil {
		t.Fatalf("after crash: %+v, %v", info, err)
	}
}

func TestThrottle(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	off := throttle{rate: -1}
	if err := off.wait(context.Background(), 1<<30); err != nil {
		t.Fatalf("unthrottled: %v", err)
	}
	slow := throttle{rate: 1}
	// A second of budget per byte: a cancelled context ends the wait.
	if err := slow.wait(ctx, 1000); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
}

// TestDirectoryLock: ledger directories are open in one store at a time; a
// second Open fails with vfs.ErrLocked, and they are free again once the
// first store is closed.
func TestDirectoryLock(t *testing.T) {
	opts := testOptions(vfs.Default, t.TempDir(), t.TempDir())
	s := mustOpen(t, opts)
	if s2, err := Open(opts); !errors.Is(err, vfs.ErrLocked) {
		if err == nil {
			s2.Close()
		}
		t.Fatalf("second Open of the same directories: %v, want vfs.ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, opts).Close()
}

// TestReadPieceBytes: reads go in small pieces while adds arrive and in
// large ones once none arrived for addsQuietFor (the clock is passed in).
func TestReadPieceBytes(t *testing.T) {
	s := mustOpen(t, testOptions(vfs.NewMem(), "/d"))
	defer s.Close()
	quiet := int64(addsQuietFor)
	steps := []struct {
		add  bool
		now  int64
		want int
	}{
		{false, 0, readIOBytes},               // just opened
		{false, quiet, idleReadIOBytes},       // no add yet, quiet long enough
		{true, quiet + 1, readIOBytes},        // an add
		{false, 2 * quiet, readIOBytes},       // not quiet long enough since
		{false, 2*quiet + 1, idleReadIOBytes}, // now it is
		{true, 2*quiet + 2, readIOBytes},      // adds again
		{true, 10 * quiet, readIOBytes},       // and again, much later
		{false, 11*quiet - 1, readIOBytes},
		{false, 11 * quiet, idleReadIOBytes},
	}
	for i, st := range steps {
		if st.add {
			add(t, s, 1, base.EntryID(i), 10)
		}
		if got := s.readPieceBytes(st.now); got != st.want {
			t.Fatalf("step %d (add %v at %d): %d, want %d", i, st.add, st.now, got, st.want)
		}
	}
}
