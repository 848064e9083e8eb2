package ledger

import (
	"reflect"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
)

func TestWriteSet(t *testing.T) {
	f := func(e base.EntryID, w, ens int, want []int) {
		t.Helper()
		var got []int
		for i := 0; i < w; i++ {
			got = append(got, writeSetIndex(e, i, ens))
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("entry %d W%d E%d: %v, want %v", e, w, ens, got, want)
		}
		var mask uint64
		for _, i := range want {
			mask |= 1 << i
		}
		if m := writeSetMask(e, w, ens); m != mask {
			t.Fatalf("mask %b, want %b", m, mask)
		}
	}
	f(0, 3, 3, []int{0, 1, 2})
	f(1, 3, 3, []int{1, 2, 0})
	f(4, 2, 3, []int{1, 2})
	f(5, 2, 3, []int{2, 0})
	f(7, 1, 1, []int{0})
	f(9, 2, 5, []int{4, 0})
}

// trackerScript drives an addTracker with a compact script and records the
// entries it confirms.
type trackerScript struct {
	t    *testing.T
	tr   *addTracker[string]
	done []base.EntryID
}

func newScript(t *testing.T, e, w, a int) *trackerScript {
	return &trackerScript{t: t, tr: newAddTracker[string](e, w, a, base.InvalidEntry)}
}

func (s *trackerScript) push(n int) {
	for i := 0; i < n; i++ {
		e := s.tr.push("v")
		if e != s.tr.lastPushed() {
			s.t.Fatalf("push returned %d, lastPushed %d", e, s.tr.lastPushed())
		}
	}
}

func (s *trackerScript) ack(e base.EntryID, idxs ...int) {
	for _, i := range idxs {
		s.tr.ack(e, i)
	}
}

func (s *trackerScript) pop(want ...base.EntryID) {
	s.t.Helper()
	var got []base.EntryID
	s.tr.popReady(func(e base.EntryID, _ string) { got = append(got, e) })
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		s.t.Fatalf("confirmed %v, want %v", got, want)
	}
	if len(want) > 0 && s.tr.LAC() != want[len(want)-1] {
		s.t.Fatalf("LAC %d after confirming %v", s.tr.LAC(), want)
	}
}

func TestTrackerE3W3A2InOrder(t *testing.T) {
	s := newScript(t, 3, 3, 2)
	s.push(3)
	s.ack(1, 0, 1) // entry 1 quorate before entry 0
	s.pop()        // nothing: entry 0 is not
	s.ack(0, 2)
	s.pop()
	s.ack(0, 0) // entry 0 quorate: 0 and 1 confirmed together
	s.pop(0, 1)
	s.ack(2, 2)
	s.pop()
	s.ack(2, 2) // a duplicate ack counts once
	s.pop()
	s.ack(2, 0)
	s.pop(2)
	if s.tr.pending() != 0 {
		t.Fatalf("pending %d", s.tr.pending())
	}
}

func TestTrackerIgnoresAcksOutsideWriteSet(t *testing.T) {
	s := newScript(t, 3, 2, 2) // entry 0 -> {0,1}, entry 1 -> {1,2}
	s.push(2)
	s.ack(0, 2, 0) // 2 is not in entry 0's write set
	s.pop()
	s.ack(0, 1)
	s.pop(0)
	s.ack(5, 0, 1, 2) // not pushed
	s.ack(0, 0, 1)    // already confirmed
	s.pop()
}

func TestTrackerHoldAndReplace(t *testing.T) {
	s := newScript(t, 3, 3, 2)
	s.push(4)
	s.ack(0, 0, 1)
	s.pop(0)
	// Bookie at index 2 fails: an ensemble change holds confirmations.
	s.tr.setHold(true)
	s.ack(1, 0, 1)
	s.ack(2, 1, 2) // index 2's ack will be forgotten
	s.pop()
	var resend []base.EntryID
	s.tr.replace(2, func(e base.EntryID, _ string) { resend = append(resend, e) })
	if !reflect.DeepEqual(resend, []base.EntryID{1, 2, 3}) {
		t.Fatalf("resend %v", resend)
	}
	s.tr.setHold(false)
	s.pop(1) // entry 2 lost its ack from index 2
	s.ack(2, 2)
	s.pop(2)
	s.ack(3, 0, 2)
	s.pop(3)
}

func TestTrackerReplaceOnlyWriteSetMembers(t *testing.T) {
	s := newScript(t, 3, 2, 2) // e -> {e%3, (e+1)%3}
	s.push(6)
	var resend []base.EntryID
	s.tr.replace(0, func(e base.EntryID, _ string) { resend = append(resend, e) })
	if !reflect.DeepEqual(resend, []base.EntryID{0, 2, 3, 5}) {
		t.Fatalf("resend %v", resend)
	}
}

func TestTrackerPopAllAndGrowth(t *testing.T) {
	s := newScript(t, 1, 1, 1)
	s.push(100) // grows the ring past its initial capacity
	for e := base.EntryID(0); e < 40; e++ {
		s.ack(e, 0)
	}
	var got []base.EntryID
	s.tr.popReady(func(e base.EntryID, _ string) { got = append(got, e) })
	if len(got) != 40 || got[39] != 39 {
		t.Fatalf("confirmed %v", got)
	}
	s.push(50)
	s.ack(41, 0) // 40 is not acked
	var failed []base.EntryID
	s.tr.popAll(func(e base.EntryID, _ string) { failed = append(failed, e) })
	if len(failed) != 110 || failed[0] != 40 || failed[109] != 149 {
		t.Fatalf("failed %d entries from %d", len(failed), failed[0])
	}
	if s.tr.LAC() != 39 {
		t.Fatalf("popAll moved the LAC to %d", s.tr.LAC())
	}
}

func TestCoverage(t *testing.T) {
	f := func(e, w, a int, replies []replyKind, want bool) {
		t.Helper()
		c := newCoverage(e, w, a)
		for i, r := range replies {
			c.set(i, r)
		}
		if got := c.covered(); got != want {
			t.Fatalf("E%d W%d A%d %v: covered %v, want %v", e, w, a, replies, got, want)
		}
	}
	const (
		n = replyNone
		y = replyEntry
		m = replyMissing
		x = replyError
	)
	f(3, 3, 2, []replyKind{y, y, n}, true) // one unknown < A
	f(3, 3, 2, []replyKind{y, n, n}, false)
	f(3, 3, 2, []replyKind{y, m, x}, true)
	f(3, 3, 2, []replyKind{x, x, y}, false)
	f(3, 2, 2, []replyKind{y, n, n}, false) // quorum {1,2} wholly unknown
	f(3, 2, 2, []replyKind{n, y, n}, false) // quorum {2,0} wholly unknown
	f(3, 2, 2, []replyKind{y, y, n}, true)  // every quorum has one known
	f(3, 2, 1, []replyKind{y, y, n}, false) // A=1: any unknown member breaks its quorums
	f(3, 2, 1, []replyKind{y, m, y}, true)
	f(1, 1, 1, []replyKind{n}, false)
	f(1, 1, 1, []replyKind{m}, true)
	f(5, 3, 2, []replyKind{y, y, n, y, y}, true)
	f(5, 3, 2, []replyKind{y, n, y, n, y}, false) // {1,2,3} has two unknown
	f(5, 3, 2, []replyKind{y, n, n, y, y}, false)
}
