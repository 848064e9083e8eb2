package ledgerstore

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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

// damagedStore is a store in dir (three flushes of ledgers 1, 2 and 3 in
// one log, ledger 2 then deleted) with a byte of its index file flipped in
// the middle (not a torn tail). It returns the options, the entry log's
// path and the index file's.
func damagedStore(t *testing.T, fs vfs.FS, dir string) (Options, string, string) {
	t.Helper()
	opts := testOptions(fs, dir)
	opts.EntryLogSizeLimit = 1 << 20
	s := mustOpen(t, opts)
	for round := range 3 {
		for l := base.LedgerID(1); l <= 3; l++ {
			for i := range 10 {
				e := base.EntryID(round*10 + i)
				add(t, s, l, e, sizeFor(l, e))
			}
		}
		flush(t, s)
	}
	if err := s.DeleteLedger(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := fs.List(dir)
	var log, idx string
	for _, n := range names {
		if _, ok := parseFileID(n, indexSuffix); ok {
			idx = filepath.Join(dir, n)
		}
		if _, ok := parseFileID(n, entryLogSuffix); ok {
			log = filepath.Join(dir, n)
		}
	}
	if log == "" || idx == "" {
		t.Fatalf("files %q: want one entry log and its index", names)
	}
	flipByte(t, fs, idx, record.FileHeaderSize+record.HeaderSize+2)
	return opts, log, idx
}

// checkRebuilt checks what a store rebuilt from damagedStore's log holds:
// ledgers 1 and 3 whole (but for lost), ledger 2 still deleted.
func checkRebuilt(t *testing.T, s *Store, lost ...base.EntryID) {
	t.Helper()
	for _, l := range []base.LedgerID{1, 3} {
		for e := base.EntryID(0); e < 30; e++ {
			if l == 1 && slices.Contains(lost, e) {
				checkMissing(t, s, l, e, base.ErrNoEntry)
				continue
			}
			checkEntry(t, s, l, e, sizeFor(l, e))
		}
	}
	checkMissing(t, s, 2, 0, base.ErrNoLedger)
}

// TestDamagedIndexIsRebuilt: an index record damaged in the middle of an
// index file (not a torn tail) makes Open rebuild that log's index from
// the log, on the memory filesystem and on the OS one (direct I/O, whose
// parts end in padding that the scan steps over).
func TestDamagedIndexIsRebuilt(t *testing.T) {
	for _, osfs := range []bool{false, true} {
		t.Run(map[bool]string{false: "memfs", true: "osfs"}[osfs], func(t *testing.T) {
			var fs vfs.FS = vfs.NewMem()
			dir := "/d"
			if osfs {
				fs, dir = vfs.Default, t.TempDir()
			}
			opts, _, idx := damagedStore(t, fs, dir)
			s := mustOpen(t, opts)
			if n := s.Stats().IndexRebuilds; n != 1 {
				t.Fatalf("IndexRebuilds = %d, want 1", n)
			}
			checkRebuilt(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := fs.Stat(idx + damagedSuffix); err != nil {
				t.Fatalf("the damaged index was not kept: %v", err)
			}
			// The rebuilt file is a good index: no rebuild the next time.
			s = mustOpen(t, opts)
			if n := s.Stats().IndexRebuilds; n != 0 {
				t.Fatalf("second Open: IndexRebuilds = %d, want 0", n)
			}
			checkRebuilt(t, s)
			// Once the log is gone, so is the copy of its damaged index.
			for _, l := range []base.LedgerID{1, 3} {
				if err := s.DeleteLedger(context.Background(), l); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.RunGC(context.Background(), GCMajor); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, opts)
			defer s.Close()
			if _, err := fs.Stat(idx + damagedSuffix); !vfs.IsNotExist(err) {
				t.Fatalf("the copy of the damaged index outlived its log: %v", err)
			}
		})
	}
}

// TestDamagedIndexAndLog: when the log is damaged too, the entries whose
// records fail their checks are lost (reported as missing, never returned
// with wrong bytes) and every other one is rebuilt.
func TestDamagedIndexAndLog(t *testing.T) {
	fs := vfs.NewMem()
	opts, log, _ := damagedStore(t, fs, "/d")
	lost := map[base.EntryID]bool{5: true, 17: true}
	f, err := fs.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	var hb [record.FileHeaderSize]byte
	if _, err := f.ReadAt(hb[:], 0); err != nil {
		t.Fatal(err)
	}
	fh, err := record.DecodeFileHeader(hb[:], entryLogMagic)
	if err != nil {
		t.Fatal(err)
	}
	rd := record.NewReader(f, fi.Size(), fh.FileNum, record.FileHeaderSize)
	var flips []int64
	for {
		off := rd.Offset()
		h, _, err := rd.Next()
		if err != nil {
			// The padding after a part: on to the next part.
			p, ok := rd.NextValidAfter(off, 1)
			if !ok {
				break
			}
			rd.SeekTo(p)
			continue
		}
		if h.Ledger == 1 && lost[base.EntryID(h.Entry)] {
			flips = append(flips, off+record.HeaderSize) // the first payload byte
		}
	}
	f.Close()
	if len(flips) != len(lost) {
		t.Fatalf("found %d of the %d records to damage", len(flips), len(lost))
	}
	for _, off := range flips {
		flipByte(t, fs, log, off)
	}
	s := mustOpen(t, opts)
	defer s.Close()
	checkRebuilt(t, s, 5, 17)
}

// TestDamagedIndexAndLogHeader: with the log's own header bad too there is
// nothing to rebuild from; Open stops and names both files.
func TestDamagedIndexAndLogHeader(t *testing.T) {
	fs := vfs.NewMem()
	opts, log, idx := damagedStore(t, fs, "/d")
	flipByte(t, fs, log, 3)
	_, err := Open(opts)
	if !errors.Is(err, base.ErrCorruption) || !strings.Contains(err.Error(), idx) || !strings.Contains(err.Error(), log) {
		t.Fatalf("Open = %v, want a corruption error naming %s and %s", err, idx, log)
	}
}

// TestIndexRebuildCrash cuts the power after every write and sync of the
// rebuild: the next Open finds the damaged index or the rebuilt one, and
// either way ends with every entry.
func TestIndexRebuildCrash(t *testing.T) {
	fs := vfs.NewMem()
	opts, _, _ := damagedStore(t, fs, "/d")
	for cut := int64(1); ; cut++ {
		fs.CrashAfter(fs.Ops() + cut)
		s, err := Open(opts)
		whole := !fs.PowerCut()
		if err == nil {
			s.Close()
		}
		fs.Crash()
		s = mustOpen(t, opts)
		checkRebuilt(t, s)
		s.Close()
		if whole {
			if cut < 3 {
				t.Fatalf("the rebuild ran whole within %d operations: the cuts tested nothing", cut)
			}
			break
		}
		// The next cut starts from a damaged store of its own.
		opts, _, _ = damagedStore(t, fs, "/d"+strconv.FormatInt(cut, 10))
	}
}

// TestOnlyIndexRecordDamaged: an index file with one record, damaged. That
// looks like a crash in the log's first commit (whose entries the journal
// still holds), but may be damage to a committed record, whose entries
// only the log holds: Open rebuilds the index from the log rather than
// removing it.
func TestOnlyIndexRecordDamaged(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/d")
	s := mustOpen(t, opts)
	for e := base.EntryID(0); e < 20; e++ {
		add(t, s, 1, e, sizeFor(1, e))
	}
	flush(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := fs.List("/d")
	var idx string
	for _, n := range names {
		if _, ok := parseFileID(n, indexSuffix); ok {
			idx = filepath.Join("/d", n)
		}
	}
	if runs, _, err := readIndexFile(fs, idx, mustFileID(t, idx), nil); err != nil || len(runs) == 0 {
		t.Fatalf("the index before the damage: %d runs, %v", len(runs), err)
	}
	flipByte(t, fs, idx, record.FileHeaderSize+record.HeaderSize+2)
	s = mustOpen(t, opts)
	defer s.Close()
	if n := s.Stats().IndexRebuilds; n != 1 {
		t.Fatalf("IndexRebuilds = %d, want 1", n)
	}
	for e := base.EntryID(0); e < 20; e++ {
		checkEntry(t, s, 1, e, sizeFor(1, e))
	}
}

func mustFileID(t *testing.T, path string) uint32 {
	t.Helper()
	id, ok := parseFileID(filepath.Base(path), indexSuffix)
	if !ok {
		t.Fatalf("%s is not an index file", path)
	}
	return id
}
