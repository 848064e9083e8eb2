package ledgerstore

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/vfs"
)

// crashOptions make flushes roll logs and commit several parts, so that a
// cut lands in every kind of step.
func crashOptions(fs vfs.FS) Options {
	opts := testOptions(fs, "/d1", "/d2")
	opts.EntryLogSizeLimit = 16 << 10
	opts.MetaDir = "/meta"
	return opts
}

// acked records what the workload was told is durable.
type acked struct {
	rounds int  // rounds whose Flush returned nil
	fenced bool // ledger 1 fenced and flushed
	key    bool // ledger 1's master key set and flushed
}

const (
	crashLedgers = 4
	crashRounds  = 4
	crashPerLoop = 6
)

func crashEntry(round, i int) base.EntryID { return base.EntryID(round*crashPerLoop + i) }

// crashWorkload adds entries in rounds, each ended by a Flush, until an
// operation fails (the power cut).
func crashWorkload(fs vfs.FS, a *acked) {
	s, err := Open(crashOptions(fs))
	if err != nil {
		return
	}
	defer s.Close()
	ctx := context.Background()
	for round := range crashRounds {
		for i := range crashPerLoop {
			for l := base.LedgerID(1); l <= crashLedgers; l++ {
				e := crashEntry(round, i)
				if err := s.AddEntry(ctx, l, e, bufs.Wrap(payload(l, e, sizeFor(l, e)))); err != nil {
					return
				}
			}
		}
		setFence := round == 1
		if round == 0 {
			if s.SetMasterKey(1, []byte("secret")) != nil {
				return
			}
		}
		if setFence {
			if _, err := s.SetFenced(1); err != nil {
				return
			}
		}
		if err := s.Flush(ctx); err != nil {
			return
		}
		a.rounds = round + 1
		a.key = true
		if setFence {
			a.fenced = true
		}
	}
}

// verifyAfterCrash checks that everything acknowledged is there with its
// bytes, and that nothing else is there with wrong bytes.
func verifyAfterCrash(t *testing.T, fs vfs.FS, a acked, n int64) *Store {
	t.Helper()
	s, err := Open(crashOptions(fs))
	if err != nil {
		t.Fatalf("cut after op %d: reopen: %v", n, err)
	}
	ctx := context.Background()
	for l := base.LedgerID(1); l <= crashLedgers; l++ {
		for round := range crashRounds {
			for i := range crashPerLoop {
				e := crashEntry(round, i)
				b, err := s.ReadEntry(ctx, l, e)
				if round < a.rounds {
					if err != nil {
						t.Fatalf("cut after op %d: acknowledged %d:%d lost: %v", n, l, e, err)
					}
				} else if err != nil {
					if !errors.Is(err, base.ErrNoEntry) && !errors.Is(err, base.ErrNoLedger) {
						t.Fatalf("cut after op %d: unacknowledged %d:%d: %v", n, l, e, err)
					}
					continue
				}
				if !bytes.Equal(b.Bytes(), payload(l, e, sizeFor(l, e))) {
					t.Fatalf("cut after op %d: %d:%d has wrong bytes", n, l, e)
				}
				b.Release()
			}
		}
	}
	info, err := s.Ledger(1)
	if a.rounds > 0 && err != nil {
		t.Fatalf("cut after op %d: ledger 1: %v", n, err)
	}
	if a.fenced && !info.Fenced {
		t.Fatalf("cut after op %d: fence acknowledged by a flush was lost", n)
	}
	if a.key && string(info.MasterKey) != "secret" {
		t.Fatalf("cut after op %d: master key lost (%q)", n, info.MasterKey)
	}
	return s
}

// TestCrashDuringFlush cuts the power after every mutating filesystem
// operation of a workload of adds and flushes (log rolls, multi-directory
// flushes, catalog writes included), restarts, and checks that every entry
// whose Flush returned is readable with its bytes. Each cut is tried with
// nothing unsynced surviving and with a random prefix of unsynced writes
// surviving (torn tails).
func TestCrashDuringFlush(t *testing.T) {
	seeds := 1
	if longTests() {
		seeds = 8
	}
	total := int64(0)
	for n := int64(1); ; n++ {
		fs := vfs.NewMem()
		fs.CrashAfter(n)
		var a acked
		crashWorkload(fs, &a)
		if !fs.PowerCut() {
			total = n
			break
		}
		for seed := range seeds + 1 {
			if seed > 0 {
				// Redo the run and keep a random prefix of the unsynced writes.
				fs = vfs.NewMem()
				fs.CrashAfter(n)
				a = acked{}
				crashWorkload(fs, &a)
				fs.CrashWith(vfs.CrashOptions{KeepUnsyncedPrefix: rand.New(rand.NewPCG(uint64(n), uint64(seed)))})
			} else {
				fs.Crash()
			}
			s := verifyAfterCrash(t, fs, a, n)
			// The store goes on working after recovery.
			add(t, s, 1, 1000, 10)
			flush(t, s)
			checkEntry(t, s, 1, 1000, 10)
			if err := s.Close(); err != nil {
				t.Fatalf("cut after op %d: close: %v", n, err)
			}
		}
	}
	if total < 50 {
		t.Fatalf("workload had only %d operations: the cuts covered too little", total)
	}
	t.Logf("cut at each of %d operations", total)
}

// gcSetup writes four ledgers interleaved over several logs and deletes
// two of them, so that every log is half garbage.
func gcSetup(t *testing.T, fs vfs.FS) {
	t.Helper()
	s := mustOpen(t, crashOptions(fs))
	for e := base.EntryID(0); e < 40; e++ {
		for l := base.LedgerID(1); l <= crashLedgers; l++ {
			add(t, s, l, e, sizeFor(l, e))
		}
		if e%10 == 9 {
			flush(t, s)
		}
	}
	ctx := context.Background()
	for _, l := range []base.LedgerID{1, 3} {
		if err := s.DeleteLedger(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func verifyGC(t *testing.T, s *Store, n int64) {
	t.Helper()
	for e := base.EntryID(0); e < 40; e++ {
		for _, l := range []base.LedgerID{2, 4} {
			b, err := s.ReadEntry(context.Background(), l, e)
			if err != nil {
				t.Fatalf("cut after op %d: %d:%d: %v", n, l, e, err)
			}
			if !bytes.Equal(b.Bytes(), payload(l, e, sizeFor(l, e))) {
				t.Fatalf("cut after op %d: %d:%d has wrong bytes", n, l, e)
			}
			b.Release()
		}
		for _, l := range []base.LedgerID{1, 3} {
			checkMissing(t, s, l, e, base.ErrNoLedger)
		}
	}
}

// TestCrashDuringCompaction cuts the power after every mutating operation
// of a major compaction (copy, sync, index commit, directory sync, removal
// of the old log, tombstone drop): live ledgers stay intact, deleted ones
// stay deleted, and a later collection finishes the job.
func TestCrashDuringCompaction(t *testing.T) {
	// The reference: the same collection without a crash.
	ref := vfs.NewMem()
	gcSetup(t, ref)
	refOpts := crashOptions(ref)
	refOpts.MajorCompactionThreshold = 0.95
	s := mustOpen(t, refOpts)
	before := s.Stats()
	res, err := s.RunGC(context.Background(), GCMajor)
	if err != nil {
		t.Fatal(err)
	}
	after := s.Stats()
	s.Close()
	if res.LogsCompacted == 0 || after.EntryLogBytes*10 > before.EntryLogBytes*6 {
		t.Fatalf("reference collection: %+v; log bytes %d -> %d", res, before.EntryLogBytes, after.EntryLogBytes)
	}
	t.Logf("reference collection: %+v; log bytes %d -> %d, files %d -> %d",
		res, before.EntryLogBytes, after.EntryLogBytes, before.EntryLogs, after.EntryLogs)

	var total int64
	for n := int64(1); ; n++ {
		fs := vfs.NewMem()
		gcSetup(t, fs)
		opts := crashOptions(fs)
		opts.MajorCompactionThreshold = 0.95
		s = mustOpen(t, opts)
		base0 := fs.Ops()
		fs.CrashAfter(base0 + n)
		_, gcErr := s.RunGC(context.Background(), GCMajor)
		cut := fs.PowerCut()
		s.Close()
		if !cut {
			if gcErr != nil {
				t.Fatalf("RunGC: %v", gcErr)
			}
			total = n
			break
		}
		if n%2 == 0 {
			// Keep a random prefix of the unsynced writes (torn tails).
			fs.CrashWith(vfs.CrashOptions{KeepUnsyncedPrefix: rand.New(rand.NewPCG(uint64(n), 7))})
		} else {
			fs.Crash()
		}
		s = mustOpen(t, opts)
		verifyGC(t, s, n)
		if _, err := s.RunGC(context.Background(), GCMajor); err != nil {
			t.Fatalf("cut after op %d: second RunGC: %v", n, err)
		}
		verifyGC(t, s, n)
		s.Close()
		s = mustOpen(t, opts)
		verifyGC(t, s, n)
		// Whatever the cut left (copies, half-removed logs) is gone after a
		// finished collection, give or take one partly filled log.
		st := s.Stats()
		if st.LiveBytes != after.LiveBytes || st.EntryLogBytes > after.EntryLogBytes+opts.EntryLogSizeLimit {
			t.Fatalf("cut after op %d: after a finished collection %d live of %d bytes; reference %d of %d",
				n, st.LiveBytes, st.EntryLogBytes, after.LiveBytes, after.EntryLogBytes)
		}
		s.Close()
	}
	if total < 10 {
		t.Fatalf("compaction had only %d operations", total)
	}
	t.Logf("cut at each of %d operations", total)
}
