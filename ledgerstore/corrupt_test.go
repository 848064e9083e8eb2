package ledgerstore

import (
	"context"
	"errors"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
)

// flipByte flips one byte of a file.
func flipByte(t *testing.T, fs vfs.FS, name string, off int64) {
	t.Helper()
	f, err := fs.OpenFile(name, vfs.OpenOptions{Write: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptEntryDetected damages bytes of flushed entries (a payload
// byte, a header byte) and checks that reads, range reads and compaction
// report them with ledger, entry, file and offset, and never return them.
func TestCorruptEntryDetected(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/d")
	opts.ReadCacheMaxBytes = -1
	opts.MajorCompactionThreshold = 0.9
	s := mustOpen(t, opts)
	defer s.Close()
	ctx := context.Background()
	for e := base.EntryID(0); e < 20; e++ {
		add(t, s, 1, e, 200)
		add(t, s, 2, e, 200)
	}
	flush(t, s)
	locate := func(l base.LedgerID, e base.EntryID) (string, int64) {
		sl, lf, err := s.lookup(l, e)
		if err != nil {
			t.Fatal(err)
		}
		defer lf.release()
		return lf.path, int64(sl.off)
	}
	for _, tc := range []struct {
		entry base.EntryID
		delta int64 // byte flipped, from the record's start
	}{
		{5, record.HeaderSize + 100}, // payload
		{9, 20},                      // the ledger id in the header
	} {
		file, off := locate(1, tc.entry)
		flipByte(t, fs, file, off+tc.delta)
		b, err := s.ReadEntry(ctx, 1, tc.entry)
		if err == nil {
			b.Release()
			t.Fatalf("entry %d: corrupt bytes returned", tc.entry)
		}
		var ce *CorruptionError
		if !errors.Is(err, base.ErrCorruption) || !errors.As(err, &ce) {
			t.Fatalf("entry %d: %v, want a CorruptionError", tc.entry, err)
		}
		if ce.Ledger != 1 || ce.Entry != tc.entry || ce.File != file || ce.Offset != off {
			t.Fatalf("entry %d: reported %+v, want ledger 1, %s at %d", tc.entry, ce, file, off)
		}
		// A range read stops before it, and one starting at it fails.
		got, err := s.ReadRange(ctx, 1, tc.entry-2, 10, 1<<20)
		if err != nil || len(got) != 2 {
			t.Fatalf("range up to corrupt entry %d: %d entries, %v", tc.entry, len(got), err)
		}
		releaseAll(got)
		if _, err := s.ReadRange(ctx, 1, tc.entry, 10, 1<<20); !errors.Is(err, base.ErrCorruption) {
			t.Fatalf("range from corrupt entry %d: %v", tc.entry, err)
		}
	}
	// Neighbours and the other ledger are fine.
	checkEntry(t, s, 1, 4, 200)
	checkEntry(t, s, 1, 6, 200)
	checkEntry(t, s, 2, 5, 200)
	if st := s.Stats(); st.Corruptions == 0 {
		t.Fatal("corruptions not counted")
	}
	// Compaction refuses to copy bad bytes.
	if err := s.DeleteLedger(ctx, 2); err != nil {
		t.Fatal(err)
	}
	// The first collection asks the flusher to roll the active log; the
	// next flush does; the second collection compacts it.
	if _, err := s.RunGC(ctx, GCMajor); err != nil {
		t.Fatal(err)
	}
	add(t, s, 3, 0, 10)
	flush(t, s)
	_, err := s.RunGC(ctx, GCMajor)
	if !errors.Is(err, base.ErrCorruption) {
		t.Fatalf("compaction of a corrupt log: %v", err)
	}
	checkEntry(t, s, 1, 4, 200)
}

// TestCorruptIndexFile: an index record damaged in the middle of an index
// file (not a torn tail) stops Open with the file and offset.
func TestCorruptIndexFile(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/d")
	opts.EntryLogSizeLimit = 1 << 20
	s := mustOpen(t, opts)
	for round := range 3 {
		for e := base.EntryID(0); e < 10; e++ {
			add(t, s, 1, base.EntryID(round*10)+e, 100)
		}
		flush(t, s)
	}
	s.Close()
	names, _ := fs.List("/d")
	var idx string
	for _, n := range names {
		if _, ok := parseFileID(n, indexSuffix); ok {
			idx = "/d/" + n
		}
	}
	flipByte(t, fs, idx, record.FileHeaderSize+record.HeaderSize+2)
	_, err := Open(opts)
	if !errors.Is(err, base.ErrCorruption) {
		t.Fatalf("Open with a corrupt index record: %v", err)
	}
	t.Logf("reported: %v", err)
}
