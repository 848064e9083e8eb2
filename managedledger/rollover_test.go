package managedledger

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/metastore"
)

// readMeta returns the persisted ledger list of a managed ledger.
func (e *env) readMeta(name string) mlInfo {
	e.t.Helper()
	s, err := e.srv.NewSession()
	if err != nil {
		e.t.Fatal(err)
	}
	defer s.Close()
	data, _, err := s.Get(context.Background(), metastore.ManagedLedgerPath(name))
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := unmarshalMLInfo(data)
	if err != nil {
		e.t.Fatal(err)
	}
	return info
}

// ledgerCounts returns (id, entries) of the in-memory list.
func ledgerCounts(ml *managedLedger) [][2]int64 {
	ml.mu.Lock()
	defer ml.mu.Unlock()
	var out [][2]int64
	for _, l := range ml.mu.ledgers {
		out = append(out, [2]int64{int64(l.id), l.entries})
	}
	return out
}

// settle waits until the managed ledger has no background work pending:
// no retired ledger still closing, no metadata write outstanding.
func settle(t testing.TB, ml *managedLedger) {
	t.Helper()
	eventually(t, "background work", func() bool {
		ml.mu.Lock()
		defer ml.mu.Unlock()
		return len(ml.mu.writers) <= 2 && !ml.mu.creating && ml.mu.metaPersisted == ml.mu.metaSeq && !ml.mu.metaWriting &&
			ml.mu.queue.len() == 0 && onlyCurrentAndAheadLocked(ml)
	})
}

func onlyCurrentAndAheadLocked(ml *managedLedger) bool {
	for _, w := range ml.mu.writers {
		if w != ml.mu.current && w != ml.mu.ahead {
			return false
		}
	}
	return true
}

func entriesPerLedger(ml *managedLedger) []int64 {
	var out []int64
	for _, l := range ledgerCounts(ml) {
		out = append(out, l[1])
	}
	return out
}

func TestRolloverByEntries(t *testing.T) {
	e := newEnv(t)
	f := e.factory()
	name := "t/ns/persistent/roll-entries"
	ml := open(t, f, name, Config{MaxEntriesPerLedger: 5, MinRolloverTime: -1})
	c := mustCursor(t, ml, "sub", Earliest)
	ps := e.addN(ml, "m", 12)
	settle(t, ml)
	counts := entriesPerLedger(ml)
	// 5 + 5 + 2, and possibly an empty ledger created ahead.
	if len(counts) < 3 || !slices.Equal(counts[:3], []int64{5, 5, 2}) {
		t.Fatalf("entries per ledger %v, want [5 5 2 ...]", counts)
	}
	for i, p := range ps {
		ls := ledgerCounts(ml)
		if want := base.LedgerID(ls[i/5][0]); p.Ledger != want || p.Entry != base.EntryID(i%5) {
			t.Fatalf("entry %d at %v, want %d:%d", i, p, want, i%5)
		}
	}
	// The closed ledgers are in the persisted list with their sizes; the
	// current one is open (id only).
	info := e.readMeta(name)
	if len(info.ledgers) < 3 || info.ledgers[0].entries != 5 || info.ledgers[1].entries != 5 || info.ledgers[0].size != 15 {
		t.Fatalf("persisted ledgers %+v", info.ledgers)
	}
	if info.ledgers[2].entries != 0 {
		t.Fatalf("current ledger persisted as closed: %+v", info.ledgers[2])
	}
	got, _ := readAll(t, c)
	if len(got) != 12 || got[11] != "m-11" {
		t.Fatalf("read back %v", got)
	}
	// Closed ledgers are closed in BookKeeper too.
	for _, l := range info.ledgers[:2] {
		if li, ok := e.bk.Ledger(l.id); !ok || !li.Closed || li.LastAddConfirmed != 4 {
			t.Fatalf("ledger %d: %+v (exists %v)", l.id, li, ok)
		}
	}
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

func TestRolloverBySize(t *testing.T) {
	e := newEnv(t)
	f := e.factory()
	ml := open(t, f, "t/ns/persistent/roll-size", Config{MaxSizePerLedgerBytes: 100, MinRolloverTime: -1})
	mustCursor(t, ml, "sub", Earliest) // holds the ledgers back from trimming
	payload := string(make([]byte, 40))
	r := newAddRecorder()
	for i := 0; i < 7; i++ {
		ml.AddEntry(e.buf(payload), r.cb(i))
	}
	r.wait(t, 7)
	settle(t, ml)
	// 40+40+40 >= 100 after three entries: 3 + 3 + 1.
	if counts := entriesPerLedger(ml); len(counts) < 3 || !slices.Equal(counts[:3], []int64{3, 3, 1}) {
		t.Fatalf("entries per ledger %v, want [3 3 1 ...]", counts)
	}
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

func TestRolloverByTime(t *testing.T) {
	e := newEnv(t)
	f := e.factory()
	ml := open(t, f, "t/ns/persistent/roll-time", Config{MaxRolloverTime: time.Hour, MinRolloverTime: 10 * time.Minute})
	mustCursor(t, ml, "sub", Earliest) // holds the ledgers back from trimming
	e.add(ml, "a")
	first := ml.LastConfirmed().Ledger
	// Younger than the maximum age: no rollover.
	e.clock.Advance(59 * time.Minute)
	f.RunMaintenance()
	if p := e.add(ml, "b"); p.Ledger != first {
		t.Fatalf("rolled before MaxRolloverTime: %v", p)
	}
	// Past the maximum age: the maintenance pass rolls over an idle
	// ledger, and the next add goes to the new one.
	e.clock.Advance(2 * time.Minute)
	f.RunMaintenance()
	p := e.add(ml, "c")
	if p.Ledger == first || p.Entry != 0 {
		t.Fatalf("after MaxRolloverTime the add went to %v (first ledger %d)", p, first)
	}
	settle(t, ml)
	if counts := entriesPerLedger(ml); counts[0] != 2 {
		t.Fatalf("entries per ledger %v", counts)
	}
	// An empty ledger is never rolled by time.
	e.clock.Advance(2 * time.Hour)
	f.RunMaintenance()
	settle(t, ml)
	e.clock.Advance(2 * time.Hour)
	f.RunMaintenance()
	if p2 := e.add(ml, "d"); p2.Ledger == p.Ledger {
		t.Fatalf("ledger with an entry not rolled after 2h: %v", p2)
	}
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

func TestMinRolloverTime(t *testing.T) {
	e := newEnv(t)
	f := e.factory()
	ml := open(t, f, "t/ns/persistent/roll-min", Config{MaxEntriesPerLedger: 2, MinRolloverTime: 10 * time.Minute})
	ps := e.addN(ml, "m", 5)
	if ps[4].Ledger != ps[0].Ledger {
		t.Fatalf("rolled over before MinRolloverTime: %v", ps)
	}
	e.clock.Advance(10 * time.Minute)
	if p := e.add(ml, "x"); p.Ledger == ps[0].Ledger {
		t.Fatalf("not rolled over after MinRolloverTime: %v", p)
	}
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

// TestCreateAhead: the next ledger exists (created and registered in the
// metadata) before the current one is full, so a rollover never waits for a
// creation: with every later creation failing, adds keep succeeding across
// the rollover.
func TestCreateAhead(t *testing.T) {
	e := newEnv(t)
	f := e.factory()
	name := "t/ns/persistent/ahead"
	ml := open(t, f, name, Config{MaxEntriesPerLedger: 10, MinRolloverTime: -1})
	first := ml.LastConfirmed().Ledger
	e.addN(ml, "a", 4)
	ml.mu.Lock()
	ahead := ml.mu.ahead != nil || ml.mu.creating
	ml.mu.Unlock()
	if ahead {
		t.Fatal("next ledger created before the current one was half full")
	}
	e.addN(ml, "b", 1) // the 5th: half full
	eventually(t, "the next ledger registered", func() bool {
		ml.mu.Lock()
		defer ml.mu.Unlock()
		return ml.mu.ahead != nil && ml.mu.ahead.registered
	})
	ml.mu.Lock()
	next := ml.mu.ahead.id
	ml.mu.Unlock()
	if info := e.readMeta(name); info.ledgers[len(info.ledgers)-1].id != next {
		t.Fatalf("next ledger %d not in the persisted list %+v", next, info.ledgers)
	}
	if _, ok := e.bk.Ledger(next); !ok {
		t.Fatalf("next ledger %d does not exist", next)
	}
	creates := e.bk.Stats().Creates
	boom := errors.New("no bookies")
	e.bk.SetHooks(MemHooks{BeforeCreate: func(context.Context) error { return boom }})
	ps := e.addN(ml, "c", 10)
	if ps[4].Ledger != first || ps[5] != (base.Position{Ledger: next, Entry: 0}) {
		t.Fatalf("rollover went to %v / %v, want %d then %d:0", ps[4], ps[5], first, next)
	}
	if got := e.bk.Stats().Creates; got != creates {
		t.Fatalf("%d ledgers created during the rollover", got-creates)
	}
	e.bk.SetHooks(MemHooks{})
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

// TestLedgerFailureResendsInOrder: the current ledger fails mid-stream with
// many adds in flight. The adds it confirmed stay, the others are re-sent
// in order to a new ledger; callers see every add exactly once, in order.
func TestLedgerFailureResendsInOrder(t *testing.T) {
	e := newEnv(t)
	f := e.factory()
	ml := open(t, f, "t/ns/persistent/fail", Config{})
	c := mustCursor(t, ml, "sub", Earliest)
	first := ml.LastConfirmed().Ledger
	e.bk.HoldAdds(true)
	r := newAddRecorder()
	for i := 0; i < 10; i++ {
		ml.AddEntry(e.buf(fmt.Sprintf("m-%d", i)), r.cb(i))
	}
	if n := e.bk.HeldAdds(); n != 10 {
		t.Fatalf("%d adds in flight, want 10", n)
	}
	e.bk.FailAdds(first, 4, errors.New("bookie gone"))
	e.bk.HoldAdds(false) // complete everything, re-sends included
	res := r.wait(t, 10)
	for i, x := range res {
		if x.err != nil || x.tag != i {
			t.Fatalf("completion %d: %+v", i, x)
		}
		if i < 4 && x.pos != (base.Position{Ledger: first, Entry: base.EntryID(i)}) {
			t.Fatalf("add %d at %v, want %d:%d", i, x.pos, first, i)
		}
		if i >= 4 && (x.pos.Ledger == first || x.pos.Entry != base.EntryID(i-4)) {
			t.Fatalf("re-sent add %d at %v", i, x.pos)
		}
	}
	settle(t, ml)
	got, _ := readAll(t, c)
	want := make([]string, 10)
	for i := range want {
		want[i] = fmt.Sprintf("m-%d", i)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("log holds %v", got)
	}
	if li, _ := e.bk.Ledger(first); !li.Closed || li.LastAddConfirmed != 3 {
		t.Fatalf("failed ledger %+v, want closed at 3", li)
	}
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

// TestFailureDuringRollover: the ledger being drained fails after the next
// one already confirmed later adds. Those later adds must not come before
// the re-sent earlier ones: the newer ledger is abandoned and deleted, and
// everything from the failed add on goes to a fresh ledger.
func TestFailureDuringRollover(t *testing.T) {
	e := newEnv(t)
	f := e.factory()
	name := "t/ns/persistent/fail-roll"
	ml := open(t, f, name, Config{MaxEntriesPerLedger: 4, MinRolloverTime: -1})
	c := mustCursor(t, ml, "sub", Earliest)
	l1 := ml.LastConfirmed().Ledger
	e.addN(ml, "m", 2)
	eventually(t, "the next ledger registered", func() bool {
		ml.mu.Lock()
		defer ml.mu.Unlock()
		return ml.mu.ahead != nil && ml.mu.ahead.registered
	})
	ml.mu.Lock()
	l2 := ml.mu.ahead.id
	ml.mu.Unlock()
	e.bk.HoldAdds(true)
	r := newAddRecorder()
	for i := 2; i < 8; i++ { // 2,3 go to l1; 4..7 to l2
		ml.AddEntry(e.buf(fmt.Sprintf("m-%d", i)), r.cb(i))
	}
	e.bk.FailAdds(l1, 3, errors.New("bookie gone"))
	// Complete l2's adds first (they succeed), then l1's (entry 3 fails).
	ml.mu.Lock()
	inL2 := 0
	for i := 0; i < ml.mu.queue.len(); i++ {
		if op := ml.mu.queue.at(i); op.w != nil && op.w.id == l2 {
			inL2++
		}
	}
	ml.mu.Unlock()
	if inL2 != 4 {
		t.Fatalf("%d adds went to the next ledger, want 4", inL2)
	}
	e.bk.HoldAdds(false)
	res := r.wait(t, 6)
	var ledgersUsed []base.LedgerID
	for i, x := range res {
		if x.err != nil || x.tag != i+2 {
			t.Fatalf("completion %d: %+v", i, x)
		}
		if !slices.Contains(ledgersUsed, x.pos.Ledger) {
			ledgersUsed = append(ledgersUsed, x.pos.Ledger)
		}
	}
	if res[0].pos != (base.Position{Ledger: l1, Entry: 2}) || res[1].pos.Ledger == l1 || res[1].pos.Ledger == l2 {
		t.Fatalf("positions %+v (l1 %d, l2 %d)", res, l1, l2)
	}
	settle(t, ml)
	got, _ := readAll(t, c)
	want := []string{"m-0", "m-1", "m-2", "m-3", "m-4", "m-5", "m-6", "m-7"}
	if !slices.Equal(got, want) {
		t.Fatalf("log holds %v, want %v", got, want)
	}
	for _, l := range e.readMeta(name).ledgers {
		if l.id == l2 {
			t.Fatalf("abandoned ledger %d still listed", l2)
		}
	}
	eventually(t, "abandoned ledger deleted", func() bool { _, ok := e.bk.Ledger(l2); return !ok })
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

// TestFencedBySecondOwner: a second factory (another broker) opens the
// managed ledger whose writer is alive. Recovery fences the writer's
// ledger: its next adds fail with ErrFenced, and the new owner sees every
// entry the old one confirmed.
func TestFencedBySecondOwner(t *testing.T) {
	e := newEnv(t)
	f1 := e.factory()
	name := "t/ns/persistent/fence"
	ml1 := open(t, f1, name, Config{})
	mustCursor(t, ml1, "sub", Earliest)
	ps := e.addN(ml1, "m", 5)

	f2 := e.factory()
	ml2 := open(t, f2, name, Config{})
	if lc := ml2.LastConfirmed(); lc != ps[4] {
		t.Fatalf("new owner's last confirmed %v, want %v", lc, ps[4])
	}
	r := newAddRecorder()
	ml1.AddEntry(e.buf("late"), r.cb(0))
	if res := r.wait(t, 1)[0]; !errors.Is(res.err, ErrFenced) || !errors.Is(res.err, base.ErrFenced) {
		t.Fatalf("old owner's add after fencing: %+v", res)
	}
	r2 := newAddRecorder()
	ml1.AddEntry(e.buf("later"), r2.cb(0))
	if res := r2.wait(t, 1)[0]; !errors.Is(res.err, ErrFenced) {
		t.Fatalf("old owner's second add: %+v", res)
	}
	c := mustCursor(t, ml2, "sub", Earliest)
	got, _ := readAll(t, c)
	if len(got) != 5 {
		t.Fatalf("new owner reads %v", got)
	}
	p := e.add(ml2, "new")
	if p.Ledger == ps[0].Ledger {
		t.Fatalf("new owner wrote to the old ledger: %v", p)
	}
	if err := ml2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = ml1.Close(context.Background())
	e.checkLeaks()
}

// TestRecoverAfterWriterDied: the writer disappears without closing (its
// ledger and the one created ahead are both still open). Opening the
// managed ledger again recovers both: every confirmed entry is there, the
// unused one is dropped.
func TestRecoverAfterWriterDied(t *testing.T) {
	e := newEnv(t)
	f1 := e.factory()
	name := "t/ns/persistent/died"
	cfg := Config{MaxEntriesPerLedger: 10, MinRolloverTime: -1}
	ml1 := open(t, f1, name, cfg)
	mustCursor(t, ml1, "sub", Earliest)
	e.addN(ml1, "m", 7) // past half: a ledger is created ahead
	eventually(t, "the next ledger registered", func() bool {
		ml1.mu.Lock()
		defer ml1.mu.Unlock()
		return ml1.mu.ahead != nil && ml1.mu.ahead.registered
	})
	ml1.mu.Lock()
	ahead := ml1.mu.ahead.id
	ml1.mu.Unlock()
	info := e.readMeta(name)
	if n := len(info.ledgers); n != 2 || info.ledgers[0].entries != 0 || info.ledgers[1].entries != 0 {
		t.Fatalf("persisted list before the crash %+v, want two open ledgers", info.ledgers)
	}
	// f1 is never closed: the process died.
	f2 := e.factory()
	ml2 := open(t, f2, name, cfg)
	if ml2.NumberOfEntries() != 7 {
		t.Fatalf("recovered %d entries, want 7", ml2.NumberOfEntries())
	}
	info = e.readMeta(name)
	if info.ledgers[0].entries != 7 || info.ledgers[0].size == 0 {
		t.Fatalf("recovered list %+v", info.ledgers)
	}
	for _, l := range info.ledgers {
		if l.id == ahead {
			t.Fatalf("unused ledger %d kept", ahead)
		}
	}
	if _, ok := e.bk.Ledger(ahead); ok {
		t.Fatalf("unused ledger %d not deleted", ahead)
	}
	c := mustCursor(t, ml2, "sub", Earliest)
	if got, _ := readAll(t, c); len(got) != 7 {
		t.Fatalf("read %v", got)
	}
	if err := ml2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Closing the dead owner's factory releases its cache; it must not
	// disturb the new owner's state.
	if err := f1.Close(); !errors.Is(err, ErrFenced) {
		t.Fatalf("closing the old owner: %v, want ErrFenced", err)
	}
	e.checkLeaks()
}

// TestFailureUsesAheadLedger: when the current ledger fails while the next
// one is already created (and unused), the re-sent adds go there at once.
func TestFailureUsesAheadLedger(t *testing.T) {
	e := newEnv(t)
	f := e.factory()
	ml := open(t, f, "t/ns/persistent/fail-ahead", Config{MaxEntriesPerLedger: 10, MinRolloverTime: -1})
	c := mustCursor(t, ml, "sub", Earliest)
	l1 := ml.LastConfirmed().Ledger
	e.addN(ml, "a", 6)
	eventually(t, "the next ledger registered", func() bool {
		ml.mu.Lock()
		defer ml.mu.Unlock()
		return ml.mu.ahead != nil && ml.mu.ahead.registered
	})
	ml.mu.Lock()
	l2 := ml.mu.ahead.id
	ml.mu.Unlock()
	creates := e.bk.Stats().Creates
	e.bk.HoldAdds(true)
	r := newAddRecorder()
	for i := 0; i < 3; i++ {
		ml.AddEntry(e.buf(fmt.Sprintf("b-%d", i)), r.cb(i))
	}
	e.bk.FailAdds(l1, 7, errors.New("bookie gone"))
	e.bk.HoldAdds(false)
	res := r.wait(t, 3)
	want := []base.Position{{Ledger: l1, Entry: 6}, {Ledger: l2, Entry: 0}, {Ledger: l2, Entry: 1}}
	for i, x := range res {
		if x.err != nil || x.pos != want[i] {
			t.Fatalf("add %d: %+v, want %v", i, x, want[i])
		}
	}
	if n := e.bk.Stats().Creates - creates; n > 1 { // at most the next ahead ledger
		t.Fatalf("%d ledgers created after the failure", n)
	}
	got, _ := readAll(t, c)
	if len(got) != 9 || got[6] != "b-0" || got[8] != "b-2" {
		t.Fatalf("log holds %v", got)
	}
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

// chaosAdd records a completion and, every so often, makes the current
// ledger fail a few entries ahead.
type chaosAdd struct {
	r   *addRecorder
	tag int
	inj *injector
	sem chan struct{}
}

type injector struct {
	mu  sync.Mutex
	n   int
	rng *rand.Rand
	e   *env
	ml  *managedLedger
}

func (a chaosAdd) AddEntryComplete(p base.Position, err error) {
	a.inj.mu.Lock()
	a.inj.n++
	if a.inj.n%23 == 0 {
		a.inj.ml.mu.Lock()
		var id base.LedgerID
		if w := a.inj.ml.mu.current; w != nil {
			id = w.id
		}
		a.inj.ml.mu.Unlock()
		if li, ok := a.inj.e.bk.Ledger(id); ok {
			a.inj.e.bk.FailAdds(id, li.LastAddConfirmed+1+base.EntryID(a.inj.rng.IntN(3)), errors.New("chaos"))
		}
	}
	a.inj.mu.Unlock()
	taggedAdd{a.r, a.tag}.AddEntryComplete(p, err)
	<-a.sem
}

// TestAddPipelineChaos: several goroutines add while ledgers roll over
// every few entries and keep failing at random points. Every add is
// confirmed exactly once; confirmations come in position order; the log
// holds exactly the confirmed entries in that order.
func TestAddPipelineChaos(t *testing.T) {
	e := newEnv(t)
	e.bk.SetAddDelay(20 * time.Microsecond) // deeper pipelines
	f := e.factory()
	ml := open(t, f, "t/ns/persistent/chaos", Config{MaxEntriesPerLedger: 37, MinRolloverTime: -1, CreateAheadFraction: 0.3})
	c := mustCursor(t, ml, "sub", Earliest)
	const writers, perWriter = 4, 500
	r := newAddRecorder()
	inj := &injector{rng: rand.New(rand.NewPCG(3, 4)), e: e, ml: ml}
	sem := make(chan struct{}, 64) // keeps adds in flight all along
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				sem <- struct{}{}
				ml.AddEntry(e.buf(fmt.Sprintf("w%d-%d", w, i)), chaosAdd{r, w*perWriter + i, inj, sem})
			}
		}()
	}
	wg.Wait()
	res := r.wait(t, writers*perWriter)
	if n := e.bk.Stats().FailedAdds; n < 10 {
		t.Fatalf("only %d adds failed: the test injected too little", n)
	}
	next := make([]int, writers)
	var order []string
	for i, x := range res {
		if x.err != nil {
			t.Fatalf("add %d failed: %v", x.tag, x.err)
		}
		if i > 0 && !res[i-1].pos.Less(x.pos) {
			t.Fatalf("confirmation %d at %v after %v", i, x.pos, res[i-1].pos)
		}
		w, k := x.tag/perWriter, x.tag%perWriter
		if k != next[w] {
			t.Fatalf("writer %d: add %d confirmed before add %d", w, k, next[w])
		}
		next[w]++
		order = append(order, fmt.Sprintf("w%d-%d", w, k))
	}
	settle(t, ml)
	got, _ := readAll(t, c)
	if !slices.Equal(got, order) {
		t.Fatalf("log (%d entries) differs from the confirmed sequence (%d)", len(got), len(order))
	}
	t.Logf("%d adds failed and were re-sent; %d ledgers created", e.bk.Stats().FailedAdds, e.bk.Stats().Creates)
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

// TestCreateFailureFailsWaitingAdds: when the current ledger fails and no
// new ledger can be created, the adds waiting for one fail (none is lost
// silently); the next add tries again.
func TestCreateFailureFailsWaitingAdds(t *testing.T) {
	e := newEnv(t)
	f := e.factory()
	ml := open(t, f, "t/ns/persistent/no-bookies", Config{})
	c := mustCursor(t, ml, "sub", Earliest)
	first := ml.LastConfirmed().Ledger
	e.add(ml, "ok")
	boom := errors.New("not enough bookies")
	// Every creation fails until the adds have failed: a creation that
	// fails before the adds wait for a ledger fails nothing, and the one
	// their waiting starts must fail too (FailNextCreates with one error
	// made the test depend on which came first).
	var noBookies atomic.Bool
	noBookies.Store(true)
	e.bk.SetHooks(MemHooks{BeforeCreate: func(context.Context) error {
		if noBookies.Load() {
			return boom
		}
		return nil
	}})
	e.bk.FailAdds(first, 1, errors.New("bookie gone"))
	r := newAddRecorder()
	ml.AddEntry(e.buf("lost"), r.cb(0))
	ml.AddEntry(e.buf("lost too"), r.cb(1))
	res := r.wait(t, 2)
	for _, x := range res {
		if !errors.Is(x.err, ErrNoLedger) || !errors.Is(x.err, boom) {
			t.Fatalf("waiting add: %+v, want ErrNoLedger wrapping the cause", x)
		}
	}
	noBookies.Store(false)
	p := e.add(ml, "again")
	if p.Ledger == first {
		t.Fatalf("add after the failed creation went to the failed ledger: %v", p)
	}
	got, _ := readAll(t, c)
	if !slices.Equal(got, []string{"ok", "again"}) {
		t.Fatalf("log holds %v", got)
	}
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}
