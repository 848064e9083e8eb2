package itest

import (
	"errors"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/ledger"
)

// TestRecoveryFencesLiveWriter: a writer is adding entries when another
// client opens its ledger with recovery. The recovery fences the ledger on
// the bookies, so the old writer's adds fail with an error wrapping
// base.ErrFenced; no add of the old writer is confirmed past the entry the
// recovery closed the ledger at, and that entry includes every add the old
// writer saw confirmed.
func TestRecoveryFencesLiveWriter(t *testing.T) {
	c := newCluster(t, 3, testSettings)
	for _, q := range []quorum{e3w3a2, e3w2a2} {
		t.Run(q.name, func(t *testing.T) {
			h, err := c.client(t, "old writer").CreateLedger(c.ctx(t), q.create())
			if err != nil {
				t.Fatal(err)
			}
			l := h.ID()
			a := startAdder(c, h, 0, 16)
			a.waitConfirmed(t, 50)

			r, err := c.client(t, "recoverer").OpenLedger(c.ctx(t), l, password, ledger.OpenOptions{Recovery: true})
			if err != nil {
				t.Fatal(err)
			}
			last := r.Metadata().LastEntry
			if !r.IsClosed() || last < 49 {
				t.Fatalf("recovery: state %v, last entry %d; want CLOSED at 49 or later", r.Metadata().State, last)
			}

			// The old writer, still running, stops sending; its pending
			// adds end one way or the other, and its next add fails.
			results := a.finish(t)
			if _, err := h.Append(c.ctx(t), []byte("after the fence")); !errors.Is(err, base.ErrFenced) {
				t.Fatalf("add of the fenced writer: %v, want an error wrapping base.ErrFenced", err)
			}
			fenced := 0
			for i, res := range results {
				switch {
				case res.err == nil:
					if res.got != base.EntryID(i) || i > 0 && results[i-1].err != nil {
						t.Fatalf("add %d confirmed as entry %d after a failure", i, res.got)
					}
					if res.got > last {
						t.Fatalf("the old writer confirmed entry %d after recovery closed the ledger at %d", res.got, last)
					}
				case errors.Is(res.err, base.ErrFenced):
					fenced++
				default:
					t.Fatalf("add %d failed with %v, want an error wrapping base.ErrFenced", i, res.err)
				}
			}
			confirmed := a.confirmedCount()
			if base.EntryID(confirmed-1) > last {
				t.Fatalf("%d adds confirmed, recovery closed at %d", confirmed, last)
			}
			t.Logf("ledger %d: %d adds confirmed, %d failed as fenced; recovery closed at %d", l, confirmed, fenced, last)
			checkEntries(c.ctx(t), t, "recovered ledger", r.Read, l, last)
		})
	}
}
