package ledger_test

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/ledger"
	"github.com/magnetar/magnetar/ledger/ledgertest"
)

var quorums = []struct{ e, w, a int }{{3, 3, 2}, {3, 2, 2}}

// TestRecoveryFencesLiveWriter: a second client recovers the ledger while
// its writer is still adding. Every add the writer saw confirmed is in the
// recovered ledger; the others fail with a fenced error, and so do later
// adds.
func TestRecoveryFencesLiveWriter(t *testing.T) {
	for _, q := range quorums {
		c := newCluster(t, 4)
		// Slow adds keep many in flight while the recovery runs.
		for _, b := range c.bookies {
			b.SetFault(func(r ledgertest.Request) ledgertest.Fault {
				if r.Op == "ADD" {
					return ledgertest.Fault{Delay: time.Millisecond}
				}
				return ledgertest.Fault{}
			})
		}
		w := c.client()
		h, err := w.CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: q.e, WriteQuorum: q.w, AckQuorum: q.a, Password: []byte("p")})
		if err != nil {
			t.Fatal(err)
		}
		id := h.ID()
		const n = 1000
		a := newAdder(t, h, n)
		for i := 0; i < 500; i++ {
			a.add(payload(id, i))
		}
		// Recover while adds are in flight; the adds after it all fail.
		waitFor(t, "100 confirmations", func() bool { return a.count() >= 100 })
		r, err := c.client().OpenLedger(ctx(t), id, []byte("p"), ledger.OpenOptions{Recovery: true})
		if err != nil {
			t.Fatalf("E%dW%dA%d: recovery: %v", q.e, q.w, q.a, err)
		}
		for i := 500; i < n; i++ {
			a.add(payload(id, i))
		}
		got := a.wait()
		md := r.Metadata()
		if md.State != ledger.StateClosed {
			t.Fatalf("recovered state %v", md.State)
		}
		confirmed := base.InvalidEntry
		fenced := 0
		for i, res := range got {
			switch {
			case res.err == nil:
				if res.entry != base.EntryID(i) || fenced > 0 {
					t.Fatalf("completion %d: entry %d after %d failures", i, res.entry, fenced)
				}
				confirmed = res.entry
			case errors.Is(res.err, base.ErrFenced) && errors.Is(res.err, ledger.ErrFenced):
				fenced++
			default:
				t.Fatalf("completion %d: %v", i, res.err)
			}
		}
		if fenced == 0 {
			t.Fatalf("E%dW%dA%d: no add was fenced (recovered at %d)", q.e, q.w, q.a, md.LastEntry)
		}
		if md.LastEntry < confirmed {
			t.Fatalf("recovered ledger ends at %d, before the confirmed entry %d", md.LastEntry, confirmed)
		}
		readAll(t, r.Read, md.LastEntry, func(e int) []byte { return payload(id, e) })
		if _, err := h.Append(ctx(t), []byte("more")); !errors.Is(err, base.ErrFenced) {
			t.Fatalf("add after fencing: %v", err)
		}
		for _, b := range md.LastSegment().Bookies {
			if !c.bookie(b).IsFenced(id) {
				t.Fatalf("bookie %s not fenced", b)
			}
		}
		// The writer cannot close over the recovered metadata differently.
		if err := h.Close(ctx(t)); err != nil && !errors.Is(err, base.ErrFenced) {
			t.Fatalf("close of the fenced writer: %v", err)
		}
		after, err := c.client().LedgerMetadata(ctx(t), id)
		if err != nil || after.LastEntry != md.LastEntry || after.Length != md.Length {
			t.Fatalf("metadata after the writer's close: %+v, %v", after, err)
		}
	}
}

// TestRecoveryAfterWriterCrash: the writer dies with entries on only some
// bookies. Two clients recover at once; they agree, and the ledger holds
// every entry the writer saw confirmed.
func TestRecoveryAfterWriterCrash(t *testing.T) {
	for _, q := range quorums {
		c := newCluster(t, 3)
		w := c.client(func(o *ledger.Options) { o.AddEntryTimeout = time.Minute })
		h, err := w.CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: q.e, WriteQuorum: q.w, AckQuorum: q.a})
		if err != nil {
			t.Fatal(err)
		}
		id := h.ID()
		ens := h.Metadata().Segments[0].Bookies
		// From entry 150 bookie 2 loses the adds, from 170 bookie 1 too:
		// the tail exists on fewer bookies than the ack quorum.
		drop := func(from base.EntryID) ledgertest.FaultFunc {
			return func(r ledgertest.Request) ledgertest.Fault {
				return ledgertest.Fault{Drop: r.Op == "ADD" && r.Entry >= from}
			}
		}
		c.bookie(ens[2]).SetFault(drop(150))
		c.bookie(ens[1]).SetFault(drop(170))
		const n = 200
		a := newAdder(t, h, n)
		for i := 0; i < n; i++ {
			a.add(payload(id, i))
		}
		waitFor(t, "the tail to reach bookie 0", func() bool {
			es := c.bookie(ens[0]).Entries(id)
			return len(es) > 0 && es[len(es)-1] >= base.EntryID(n-3)
		})
		w.Close() // the writer "crashes": its pending adds fail, the ledger stays OPEN
		confirmed := base.InvalidEntry
		for _, res := range a.wait() {
			if res.err == nil {
				confirmed = res.entry
			}
		}
		for _, b := range c.bookies {
			b.SetFault(nil)
		}
		var (
			wg   sync.WaitGroup
			mds  [2]*ledger.Metadata
			errs [2]error
		)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := c.client().OpenLedger(ctx(t), id, nil, ledger.OpenOptions{Recovery: true})
				errs[i] = err
				if err == nil {
					mds[i] = r.Metadata()
				}
			}()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("E%dW%dA%d: recoveries: %v, %v", q.e, q.w, q.a, errs[0], errs[1])
		}
		if !reflect.DeepEqual(mds[0], mds[1]) {
			t.Fatalf("recoveries disagree:\n%+v\n%+v", mds[0], mds[1])
		}
		md := mds[0]
		if md.LastEntry < confirmed || md.LastEntry > n-1 {
			t.Fatalf("E%dW%dA%d: recovered at %d, confirmed %d", q.e, q.w, q.a, md.LastEntry, confirmed)
		}
		var length int64
		for i := 0; i <= int(md.LastEntry); i++ {
			length += int64(len(payload(id, i)))
		}
		if md.Length != length {
			t.Fatalf("recovered length %d, want %d", md.Length, length)
		}
		r, err := c.client().OpenLedger(ctx(t), id, nil, ledger.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, r.Read, md.LastEntry, func(e int) []byte { return payload(id, e) })
		// Recovery re-replicated the tail past the LAC it found (at most
		// the last confirmed entry): those entries are on their whole
		// write set. (Entries up to the LAC keep the replicas they have,
		// at least A.)
		for e := confirmed + 1; e <= md.LastEntry; e++ {
			ens := md.EnsembleAt(e)
			for i := 0; i < q.w; i++ {
				b := ens[(int(e)+i)%q.e]
				if _, ok := c.bookie(b).Entry(id, e); !ok {
					t.Fatalf("entry %d missing on %s after recovery", e, b)
				}
			}
		}
	}
}

func TestRecoveryEmptyAndClosedLedgers(t *testing.T) {
	c := newCluster(t, 3)
	w := c.client()
	h, err := w.CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: 3, WriteQuorum: 2, AckQuorum: 2})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.client().OpenLedger(ctx(t), h.ID(), nil, ledger.OpenOptions{Recovery: true})
	if err != nil {
		t.Fatal(err)
	}
	if md := r.Metadata(); md.State != ledger.StateClosed || md.LastEntry != base.InvalidEntry || md.Length != 0 {
		t.Fatalf("recovered empty ledger: %+v", md)
	}
	if _, err := h.Append(ctx(t), []byte("x")); !errors.Is(err, base.ErrFenced) {
		t.Fatalf("append after recovery: %v", err)
	}

	h2, err := w.CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: 2, WriteQuorum: 2, AckQuorum: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h2.Append(ctx(t), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := h2.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	r2, err := c.client().OpenLedger(ctx(t), h2.ID(), nil, ledger.OpenOptions{Recovery: true})
	if err != nil {
		t.Fatal(err)
	}
	if md := r2.Metadata(); md.LastEntry != 0 {
		t.Fatalf("closed ledger reopened with recovery: %+v", md)
	}
	for _, b := range c.bookies {
		if b.IsFenced(h2.ID()) {
			t.Fatal("recovery of a closed ledger fenced a bookie")
		}
	}
}

// TestRecoveryWithDeadBookie: the writer and one bookie of the ensemble
// die; recovery fences the others, re-adds the tail with a replacement
// bookie, and closes.
func TestRecoveryWithDeadBookie(t *testing.T) {
	for _, q := range quorums {
		c := newCluster(t, 4)
		w := c.client()
		h, err := w.CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: q.e, WriteQuorum: q.w, AckQuorum: q.a})
		if err != nil {
			t.Fatal(err)
		}
		id := h.ID()
		for i := 0; i < 40; i++ {
			if _, err := h.Append(ctx(t), payload(id, i)); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
		dead := c.bookie(h.Metadata().Segments[0].Bookies[0])
		dead.Kill()
		r, err := c.client().OpenLedger(ctx(t), id, nil, ledger.OpenOptions{Recovery: true})
		if err != nil {
			t.Fatalf("E%dW%dA%d: %v", q.e, q.w, q.a, err)
		}
		md := r.Metadata()
		if md.LastEntry != 39 {
			t.Fatalf("E%dW%dA%d: recovered at %d", q.e, q.w, q.a, md.LastEntry)
		}
		readAll(t, r.Read, 39, func(e int) []byte { return payload(id, e) })
	}
}

// TestConcurrentWriterCloseAndRecovery: a writer's Close and a recovery
// race on the metadata; whichever wins, the metadata ends CLOSED with every
// confirmed entry.
func TestConcurrentWriterCloseAndRecovery(t *testing.T) {
	c := newCluster(t, 3)
	for round := 0; round < 5; round++ {
		h, err := c.client().CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: 3, WriteQuorum: 2, AckQuorum: 2})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			if _, err := h.Append(ctx(t), payload(h.ID(), i)); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		var closeErr, recErr error
		var md *ledger.Metadata
		wg.Add(2)
		go func() { defer wg.Done(); closeErr = h.Close(ctx(t)) }()
		go func() {
			defer wg.Done()
			r, err := c.client().OpenLedger(ctx(t), h.ID(), nil, ledger.OpenOptions{Recovery: true})
			recErr = err
			if err == nil {
				md = r.Metadata()
			}
		}()
		wg.Wait()
		if recErr != nil {
			t.Fatal(recErr)
		}
		if closeErr != nil && !errors.Is(closeErr, base.ErrFenced) {
			t.Fatal(closeErr)
		}
		if md.State != ledger.StateClosed || md.LastEntry != 9 {
			t.Fatalf("round %d: %+v", round, md)
		}
	}
}

func TestLongPollLAC(t *testing.T) {
	for _, v3 := range []bool{true, false} {
		c := newCluster(t, 3)
		if !v3 {
			// Bookies that refuse v3 long polls: the reader polls instead.
			for _, b := range c.bookies {
				b.SetFault(func(r ledgertest.Request) ledgertest.Fault {
					if r.LongPoll {
						return ledgertest.Fault{RC: 100} // EBADREQ
					}
					return ledgertest.Fault{}
				})
			}
		}
		h, err := c.client().CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: 3, WriteQuorum: 2, AckQuorum: 2})
		if err != nil {
			t.Fatal(err)
		}
		id := h.ID()
		r, err := c.client(func(o *ledger.Options) { o.LongPollTimeout = 200 * time.Millisecond }).
			OpenLedger(ctx(t), id, nil, ledger.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan base.EntryID, 1)
		go func() {
			lac, err := r.LongPollLAC(ctx(t), base.InvalidEntry)
			if err != nil {
				t.Error(err)
			}
			got <- lac
		}()
		// Entry 1 carries LAC 0.
		for i := 0; i < 2; i++ {
			if _, err := h.Append(ctx(t), payload(id, i)); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case lac := <-got:
			if lac < 0 {
				t.Fatalf("v3=%v: LAC %d", v3, lac)
			}
			readAll(t, r.Read, lac, func(e int) []byte { return payload(id, e) })
		case <-time.After(testTimeout):
			t.Fatal("long poll never returned")
		}
		// A closed ledger ends the wait.
		if err := h.Close(ctx(t)); err != nil {
			t.Fatal(err)
		}
		lac, err := r.LongPollLAC(ctx(t), 0)
		if err != nil || lac != 1 {
			t.Fatalf("after close: %d, %v", lac, err)
		}
		if _, err := r.LongPollLAC(ctx(t), 1); !errors.Is(err, ledger.ErrLedgerClosed) {
			t.Fatalf("past the end of a closed ledger: %v", err)
		}
		var polls int64
		for _, b := range c.bookies {
			polls += b.Stats().LongPolls
		}
		if v3 && polls == 0 {
			t.Fatal("no v3 long poll reached a bookie")
		}
	}
}
