package ledger

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
)

// recScript drives a recoveryMachine and checks the actions of each step,
// written as "fence 0", "read 9@1" (entry 9 from write-set position 1),
// "add 9 p9 len=90", "discard 12 p12", "close 10 len=100", "fail".
type recScript struct {
	t *testing.T
	m *recoveryMachine[string]
}

func newRecScript(t *testing.T, e, w, a int, lastSegmentFirst base.EntryID, window int) *recScript {
	return &recScript{t: t, m: newRecoveryMachine[string](e, w, a, lastSegmentFirst, window)}
}

func fmtActions(as []recoveryAction[string]) []string {
	out := []string{}
	for _, a := range as {
		switch a.Kind {
		case actFence:
			out = append(out, fmt.Sprintf("fence %d", a.Index))
		case actRead:
			out = append(out, fmt.Sprintf("read %d@%d", a.Entry, a.Replica))
		case actAdd:
			out = append(out, fmt.Sprintf("add %d %s len=%d", a.Entry, a.Data, a.Length))
		case actDiscard:
			out = append(out, fmt.Sprintf("discard %d %s", a.Entry, a.Data))
		case actClose:
			out = append(out, fmt.Sprintf("close %d len=%d", a.Entry, a.Length))
		case actFail:
			out = append(out, "fail")
		}
	}
	return out
}

func (s *recScript) expect(step string, got []recoveryAction[string], want ...string) []recoveryAction[string] {
	s.t.Helper()
	g := fmtActions(got)
	// Discards of read-ahead entries come out of a map: compare as sets
	// within a step by sorting them to the end in a stable order.
	if !sameActions(g, want) {
		s.t.Fatalf("%s:\n got %s\nwant %s", step, strings.Join(g, ", "), strings.Join(want, ", "))
	}
	return got
}

func sameActions(got, want []string) bool {
	if len(want) == 0 {
		want = []string{}
	}
	if reflect.DeepEqual(got, want) {
		return true
	}
	if len(got) != len(want) {
		return false
	}
	seen := map[string]int{}
	for _, g := range got {
		seen[g]++
	}
	for _, w := range want {
		seen[w]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

func entryReply(lastEntry, lac base.EntryID, length int64) fenceReply {
	return fenceReply{Kind: replyEntry, Entry: lastEntry, LAC: lac, Length: length}
}

var (
	missingFence = fenceReply{Kind: replyMissing}
	errorFence   = fenceReply{Kind: replyError}
)

func found(data string, length int64) readReply[string] {
	return readReply[string]{Kind: replyEntry, Data: data, Length: length}
}

var (
	missingRead = readReply[string]{Kind: replyMissing}
	errorRead   = readReply[string]{Kind: replyError}
)

func TestRecoveryEmptyLedger(t *testing.T) {
	s := newRecScript(t, 3, 3, 2, 0, 1)
	s.expect("start", s.m.start(), "fence 0", "fence 1", "fence 2")
	s.expect("b0 missing", s.m.onFence(0, missingFence))
	// Two answers cover E3 W3 A2: one unknown member is below A.
	s.expect("b2 missing", s.m.onFence(2, missingFence), "read 0@0")
	s.expect("late b1", s.m.onFence(1, errorFence))
	s.expect("0@0 missing", s.m.onRead(0, 0, missingRead), "read 0@1")
	s.expect("0@1 missing", s.m.onRead(0, 1, missingRead), "close -1 len=0")
	if !s.m.done() {
		t.Fatal("not done")
	}
}

func TestRecoveryWriterDiedMidStream(t *testing.T) {
	// E3 W3 A2. The writer pushed entries up to 10; bookie 0 stored 10
	// (with LAC 8), bookie 1 stored up to 9 (LAC 8), bookie 2 never answers.
	s := newRecScript(t, 3, 3, 2, 0, 4)
	s.m.start()
	s.expect("b0", s.m.onFence(0, entryReply(10, 8, 110)))
	s.expect("b1", s.m.onFence(1, entryReply(9, 8, 99)), "read 9@0", "read 10@0", "read 11@0", "read 12@0")
	if s.m.LAC() != 8 {
		t.Fatalf("LAC %d", s.m.LAC())
	}
	// 10 arrives before 9: it waits for 9.
	s.expect("10", s.m.onRead(10, 0, found("p10", 110)))
	s.expect("12 missing", s.m.onRead(12, 0, missingRead), "read 12@1")
	s.expect("9", s.m.onRead(9, 0, found("p9", 99)),
		"add 9 p9 len=99", "add 10 p10 len=110", "read 13@0", "read 14@0")
	s.expect("11 missing", s.m.onRead(11, 0, missingRead), "read 11@1")
	// 11 is missing on two replicas: the ledger ends at 10; the read-ahead
	// past it is dropped.
	s.expect("11 missing again", s.m.onRead(11, 1, missingRead))
	s.expect("late 13", s.m.onRead(13, 0, found("p13", 130)), "discard 13 p13")
	s.expect("added 9", s.m.onAdded(9, nil))
	s.expect("added 10", s.m.onAdded(10, nil), "close 10 len=110")
	s.expect("after close", s.m.onRead(12, 1, found("p12", 120)), "discard 12 p12")
}

func TestRecoveryFailoverBetweenReplicas(t *testing.T) {
	s := newRecScript(t, 3, 3, 2, 0, 1)
	s.m.start()
	s.m.onFence(0, entryReply(5, 4, 50))
	s.expect("covered", s.m.onFence(1, entryReply(5, 4, 50)), "read 5@0")
	s.expect("5@0 error", s.m.onRead(5, 0, errorRead), "read 5@1")
	s.expect("stale answer of 5@0", s.m.onRead(5, 0, found("x", 50)), "discard 5 x")
	s.expect("5@1 found", s.m.onRead(5, 1, found("p5", 50)), "add 5 p5 len=50", "read 6@0")
	s.expect("6@0 missing", s.m.onRead(6, 0, missingRead), "read 6@1")
	s.expect("6@1 error", s.m.onRead(6, 1, errorRead), "read 6@2")
	s.expect("6@2 missing", s.m.onRead(6, 2, missingRead))
	s.expect("added 5", s.m.onAdded(5, nil), "close 5 len=50")
}

func TestRecoveryCannotDecide(t *testing.T) {
	s := newRecScript(t, 3, 3, 2, 0, 1)
	s.m.start()
	s.m.onFence(0, entryReply(5, 4, 50))
	s.m.onFence(1, entryReply(5, 4, 50))
	s.m.onRead(5, 0, errorRead)
	s.m.onRead(5, 1, errorRead)
	got := s.expect("5@2 missing: one of the two needed", s.m.onRead(5, 2, missingRead), "fail")
	if !errors.Is(got[0].Err, ErrRecovery) {
		t.Fatalf("error %v", got[0].Err)
	}
}

func TestRecoveryFencingWithoutCoverage(t *testing.T) {
	s := newRecScript(t, 3, 3, 2, 0, 1)
	s.m.start()
	s.expect("b0 error", s.m.onFence(0, errorFence))
	s.expect("b1 entry", s.m.onFence(1, entryReply(3, 2, 30)))
	got := s.expect("b2 error", s.m.onFence(2, errorFence), "fail")
	if !errors.Is(got[0].Err, ErrRecovery) {
		t.Fatalf("error %v", got[0].Err)
	}
}

func TestRecoveryDenied(t *testing.T) {
	s := newRecScript(t, 3, 3, 2, 0, 1)
	s.m.start()
	got := s.expect("denied", s.m.onFence(1, fenceReply{Kind: replyError, Denied: true}), "fail")
	if !errors.Is(got[0].Err, ErrUnauthorized) {
		t.Fatalf("error %v", got[0].Err)
	}
}

func TestRecoveryLengthFromFencingOrAnchorRead(t *testing.T) {
	// The LAC comes from a fencing answer whose entry is the LAC itself:
	// its length is the ledger's.
	s := newRecScript(t, 3, 3, 2, 0, 1)
	s.m.start()
	s.m.onFence(0, entryReply(7, 6, 70))
	s.expect("b1", s.m.onFence(1, entryReply(6, 5, 60)), "read 7@0")
	s.expect("7@0 missing", s.m.onRead(7, 0, missingRead), "read 7@1")
	s.expect("7@1 missing", s.m.onRead(7, 1, missingRead), "close 6 len=60")

	// The last segment starts at 10 and its bookies have nothing: the LAC
	// is 9, whose length must be read (from the segment before).
	s = newRecScript(t, 3, 2, 2, 10, 1)
	s.m.start()
	s.m.onFence(0, missingFence)
	s.expect("b1", s.m.onFence(1, missingFence), "read 10@0")
	s.expect("10 missing", s.m.onRead(10, 0, missingRead), "read 9@0")
	s.expect("9@0 error", s.m.onRead(9, 0, errorRead), "read 9@1")
	s.expect("9@1", s.m.onRead(9, 1, found("p9", 900)), "discard 9 p9", "close 9 len=900")
}

func TestRecoveryAddFailure(t *testing.T) {
	s := newRecScript(t, 1, 1, 1, 0, 2)
	s.m.start()
	s.expect("b0", s.m.onFence(0, entryReply(0, -1, 10)), "read 0@0", "read 1@0")
	s.expect("0", s.m.onRead(0, 0, found("p0", 10)), "add 0 p0 len=10", "read 2@0")
	s.expect("1", s.m.onRead(1, 0, found("p1", 20)), "add 1 p1 len=20", "read 3@0")
	s.expect("add 0 fails", s.m.onAdded(0, errors.New("boom")), "fail")
	s.expect("late read", s.m.onRead(2, 0, found("p2", 30)), "discard 2 p2")
}

func TestRecoveryFoundAfterEarlierMissingIsDropped(t *testing.T) {
	// W1: one missing answer decides. 3 is found, then 2 turns out missing.
	s := newRecScript(t, 1, 1, 1, 0, 3)
	s.m.start()
	s.expect("b0", s.m.onFence(0, entryReply(3, 0, 40)), "read 1@0", "read 2@0", "read 3@0")
	s.expect("3", s.m.onRead(3, 0, found("p3", 40)))
	s.expect("1", s.m.onRead(1, 0, found("p1", 20)), "add 1 p1 len=20", "read 4@0")
	s.expect("2 missing", s.m.onRead(2, 0, missingRead), "discard 3 p3")
	s.expect("added 1", s.m.onAdded(1, nil), "close 1 len=20")
}
