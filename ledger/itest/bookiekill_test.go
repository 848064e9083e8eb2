package itest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/ledger"
)

// TestBookieKilledDuringWrites kills (SIGKILL) a bookie of a ledger's
// ensemble while adds are in flight, with four bookies so that a
// replacement exists. The writer must go on (an ensemble change), confirm
// every add in order, and readers, with and without recovery, before and
// after the writer closes and after the bookie comes back, must read every
// confirmed entry with its bytes. Each cycle uses a new ledger and restarts
// the killed bookie at its end; cycles alternate E3 W3 A2 and E3 W2 A2.
func TestBookieKilledDuringWrites(t *testing.T) {
	cycles, entries := 4, 600
	if long() {
		cycles, entries = 30, 3000
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	c := newCluster(t, 4, testSettings)
	for i := range cycles {
		q := []quorum{e3w3a2, e3w2a2}[i%2]
		t.Run(fmt.Sprintf("cycle=%d/%s", i, q.name), func(t *testing.T) {
			bookieKillCycle(t, c, q, entries, rng)
		})
		if t.Failed() {
			return
		}
	}
}

func bookieKillCycle(t *testing.T, c *cluster, q quorum, entries int, rng *rand.Rand) {
	writer := c.client(t, "writer")
	h, err := writer.CreateLedger(c.ctx(t), q.create())
	if err != nil {
		t.Fatal(err)
	}
	l := h.ID()
	first := h.Metadata().LastSegment().Bookies
	victim := c.byID(first[rng.IntN(len(first))])
	killAt := 30 + rng.IntN(entries/3)
	t.Logf("ledger %d on %v: killing %s after %d of %d confirmed", l, first, victim.id, killAt, entries)

	a := startAdder(c, h, entries, 32)
	a.waitConfirmed(t, killAt)
	victim.kill()
	results := a.wait(t)

	// Every add confirmed, in order, despite the kill.
	if len(results) != entries {
		t.Fatalf("%d adds completed, want %d", len(results), entries)
	}
	for i, r := range results {
		if r.err != nil || r.got != base.EntryID(i) || r.want != base.EntryID(i) {
			t.Fatalf("add %d: entry %d, error %v (want entry %d, no error)", i, r.got, r.err, i)
		}
	}
	if lac := h.LastAddConfirmed(); lac != base.EntryID(entries-1) {
		t.Fatalf("writer's LAC %d, want %d", lac, entries-1)
	}
	md := h.Metadata()
	if len(md.Segments) < 2 {
		t.Fatalf("no ensemble change after killing %s: segments %+v", victim.id, md.Segments)
	}
	if last := md.LastSegment().Bookies; slices.Contains(last, victim.id) {
		t.Fatalf("the killed bookie %s is still in the last ensemble %v", victim.id, last)
	}
	t.Logf("segments after the kill: %+v", md.Segments)

	// A reader while the ledger is still open reads up to the LAC it
	// learns from the bookies (the dead one refuses connections).
	tail, err := c.client(t, "tail-reader").OpenLedger(c.ctx(t), l, password, ledger.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lac, err := tail.ReadLastAddConfirmed(c.ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if lac < base.EntryID(killAt-1) || lac > base.EntryID(entries-1) {
		t.Fatalf("open ledger's LAC read as %d; %d entries were confirmed", lac, entries)
	}
	checkEntries(c.ctx(t), t, "reader of the open ledger", tail.Read, l, lac)

	var length int64
	for e := range entries {
		length += int64(len(payload(l, base.EntryID(e))))
	}
	if err := h.Close(c.ctx(t)); err != nil {
		t.Fatal(err)
	}
	checkClosed := func(who string, r *ledger.ReadHandle) {
		t.Helper()
		md := r.Metadata()
		if !r.IsClosed() || md.LastEntry != base.EntryID(entries-1) || md.Length != length {
			t.Fatalf("%s: state %v, last entry %d, length %d; want CLOSED, %d, %d",
				who, md.State, md.LastEntry, md.Length, entries-1, length)
		}
		checkEntries(c.ctx(t), t, who, r.Read, l, md.LastEntry)
	}
	for _, recovery := range []bool{false, true} {
		who := fmt.Sprintf("reader (recovery %v) with %s down", recovery, victim.id)
		r, err := c.client(t, who).OpenLedger(c.ctx(t), l, password, ledger.OpenOptions{Recovery: recovery})
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		checkClosed(who, r)
	}

	// The killed bookie comes back (journal replay) and readers still agree.
	victim.restart(t)
	r, err := c.client(t, "reader after restart").OpenLedger(c.ctx(t), l, password, ledger.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkClosed("reader after restart", r)
}
