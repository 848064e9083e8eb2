package ledgerstore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/vfs"
)

// deadline guards a wait that must end; the test fails instead of hanging.
const deadline = 30 * time.Second

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(deadline):
		t.Fatalf("%s did not happen within %v (deadlock?)", what, deadline)
	}
}

// blockSyncs makes every sync of an entry log wait until release is closed;
// blocked is closed by the first one.
func blockSyncs(in *vfs.Injector) (blocked, release chan struct{}, rule *vfs.RuleHandle) {
	blocked, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	rule = in.Add(vfs.Rule{
		Ops:  []vfs.Op{vfs.OpSync},
		Path: vfs.PathSuffix(entryLogSuffix),
		Action: vfs.Call(func(vfs.Op, string) error {
			once.Do(func() { close(blocked) })
			<-release
			return nil
		}),
	})
	return blocked, release, rule
}

// TestBackPressure fills every write cache segment while the flusher is
// held inside an fsync: the next add waits (and triggers nothing more
// than the flush already running), its context can cancel the wait, and
// once the fsync returns the waiting add completes.
func TestBackPressure(t *testing.T) {
	in := vfs.NewInjector(vfs.NewMem())
	opts := testOptions(in, "/d")
	s := mustOpen(t, opts)
	defer s.Close()
	waiting := make(chan struct{}, 100)
	s.hooks.addWait = func() { waiting <- struct{}{} }
	blocked, release, _ := blockSyncs(in)

	// One add per 1 KiB entry until an add has to wait; that add runs in
	// a goroutine so the test can watch it.
	addDone := make(chan error, 1)
	var e base.EntryID
	for {
		if len(waiting) > 0 {
			t.Fatal("an add waited before the cache was full")
		}
		_, entries, _ := s.wc.usage()
		if entries > 0 && s.wc.fullLocked() {
			break
		}
		add(t, s, 1, e, 1024)
		e++
	}
	waitFor(t, blocked, "the flusher reaching its fsync")
	go func() {
		b := bufs.Wrap(payload(1, e, 1024))
		addDone <- s.AddEntry(context.Background(), 1, e, b)
	}()
	waitFor(t, waitingChan(waiting), "an add waiting for space")
	bytes, _, nwait := s.wc.usage()
	if bytes > opts.WriteCacheMaxBytes {
		t.Fatalf("write cache holds %d bytes, bound %d", bytes, opts.WriteCacheMaxBytes)
	}
	if nwait != 1 {
		t.Fatalf("%d adds waiting, want 1", nwait)
	}
	select {
	case err := <-addDone:
		t.Fatalf("add completed while the cache was full: %v", err)
	default:
	}

	// A second add with a deadline gives up.
	ctx, cancel := context.WithCancel(context.Background())
	ctxDone := make(chan error, 1)
	go func() {
		ctxDone <- s.AddEntry(ctx, 2, 0, bufs.Wrap([]byte("x")))
	}()
	waitFor(t, waitingChan(waiting), "the second add waiting")
	cancel()
	if err := <-ctxDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled add: %v", err)
	}

	close(release)
	select {
	case err := <-addDone:
		if err != nil {
			t.Fatalf("waiting add: %v", err)
		}
	case <-time.After(deadline):
		t.Fatal("waiting add never completed")
	}
	e++
	flush(t, s)
	for x := base.EntryID(0); x < e; x++ {
		checkEntry(t, s, 1, x, 1024)
	}
	if st := s.Stats(); st.AddWaits < 2 {
		t.Fatalf("AddWaits = %d", st.AddWaits)
	}
}

// waitingChan turns one value of a buffered signal channel into a closed
// channel for waitFor.
func waitingChan(ch <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		<-ch
		close(done)
	}()
	return done
}

// fullLocked reports whether every segment is sealed or the active one is
// past its capacity (test helper).
func (wc *writeCache) fullLocked() bool {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	return wc.mu.active == nil || (len(wc.mu.free) == 0 && wc.mu.active.bytes+1024+entryOverhead > wc.segBytes)
}

// TestManyWritersThroughSmallCache pushes far more than the cache holds
// from many goroutines at once: every add completes (no deadlock where
// all writers wait and nothing flushes) and everything reads back.
func TestManyWritersThroughSmallCache(t *testing.T) {
	s := mustOpen(t, testOptions(vfs.NewMem(), "/d1", "/d2"))
	defer s.Close()
	const writers, perWriter = 8, 300
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			l := base.LedgerID(w + 1)
			for e := base.EntryID(0); e < perWriter; e++ {
				b := bufs.Wrap(payload(l, e, sizeFor(l, e)))
				if err := s.AddEntry(context.Background(), l, e, b); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	waitFor(t, done, "all writers finishing")
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	flush(t, s)
	for l := base.LedgerID(1); l <= writers; l++ {
		for e := base.EntryID(0); e < perWriter; e++ {
			checkEntry(t, s, l, e, sizeFor(l, e))
		}
	}
	// Whether adds had to wait depends on scheduling (TestBackPressure
	// forces it); that the cache cycled many times does not.
	if st := s.Stats(); st.Flushes < 10 {
		t.Fatalf("%d flushes for %d bytes through a %d-byte cache", st.Flushes, st.BytesAdded, 4*minSegmentBytes)
	}
}

// TestReadsDoNotBlockAdds holds a read inside its disk read: adds and a
// flush go on meanwhile, because no lock is held across the read.
func TestReadsDoNotBlockAdds(t *testing.T) {
	in := vfs.NewInjector(vfs.NewMem())
	opts := testOptions(in, "/d")
	opts.ReadCacheMaxBytes = -1
	s := mustOpen(t, opts)
	defer s.Close()
	for e := base.EntryID(0); e < 10; e++ {
		add(t, s, 1, e, 100)
	}
	flush(t, s)
	inRead, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	in.Add(vfs.Rule{Ops: []vfs.Op{vfs.OpReadAt}, Path: vfs.PathSuffix(entryLogSuffix),
		Action: vfs.Call(func(vfs.Op, string) error {
			once.Do(func() { close(inRead) })
			<-release
			return nil
		})})
	readErr := make(chan error, 1)
	go func() {
		b, err := s.ReadEntry(context.Background(), 1, 3)
		if err == nil {
			b.Release()
		}
		readErr <- err
	}()
	waitFor(t, inRead, "the read reaching the disk")
	addErr := make(chan error, 1)
	go func() {
		for e := base.EntryID(0); e < 200; e++ {
			if err := s.AddEntry(context.Background(), 2, e, bufs.Wrap(payload(2, e, 1000))); err != nil {
				addErr <- err
				return
			}
		}
		addErr <- s.Flush(context.Background())
	}()
	select {
	case err := <-addErr:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(deadline):
		t.Fatal("adds and a flush did not complete during a blocked read")
	}
	close(release)
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	for e := base.EntryID(0); e < 200; e++ {
		checkEntry(t, s, 2, e, 1000)
	}
}
