package dispatcher

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
)

func TestSharedRoundRobin(t *testing.T) {
	f := newFixture(t, Options{Type: Shared, MaxRoundRobinBatchSize: 1})
	var sinks []*recSink
	for i := 0; i < 3; i++ {
		c, s := f.consumer(fmt.Sprintf("c%d", i), ConsumerConfig{})
		c.Flow(100)
		sinks = append(sinks, s)
	}
	f.addEntries(9, nil)
	for i, s := range sinks {
		want := []int64{int64(i), int64(i + 3), int64(i + 6)}
		if got := s.positions(); !slices.Equal(got, want) {
			t.Errorf("consumer %d got %v, want %v", i, got, want)
		}
	}
}

func TestSharedRoundRobinBatches(t *testing.T) {
	f := newFixture(t, Options{Type: Shared}) // 20 messages per consumer per turn
	ca, sa := f.consumer("a", ConsumerConfig{})
	cb, sb := f.consumer("b", ConsumerConfig{})
	f.addEntries(60, nil)
	ca.Flow(1000)
	cb.Flow(1000)
	// a took the backlog while b had no permits; new entries alternate in
	// turns of 20.
	if n := len(sa.deliveries()); n != 60 {
		t.Fatalf("a got %d of the backlog, want 60", n)
	}
	f.addEntries(80, nil)
	a, b := sa.positions()[60:], sb.positions()
	if len(a) != 40 || len(b) != 40 {
		t.Fatalf("a %d, b %d new entries; want 40 each", len(a), len(b))
	}
	if !slices.Equal(a[:20], entries(60, 80)) && !slices.Equal(b[:20], entries(60, 80)) {
		t.Fatalf("first turn of 20 not contiguous: a %v b %v", a[:20], b[:20])
	}
}

func TestSharedSkipsConsumersWithoutPermits(t *testing.T) {
	f := newFixture(t, Options{Type: Shared, MaxRoundRobinBatchSize: 1})
	ca, sa := f.consumer("a", ConsumerConfig{})
	_, sb := f.consumer("b", ConsumerConfig{}) // never flows
	cc, sc := f.consumer("c", ConsumerConfig{})
	ca.Flow(2)
	cc.Flow(5)
	f.addEntries(10, nil)
	if len(sb.deliveries()) != 0 {
		t.Fatalf("consumer without permits got %v", sb.positions())
	}
	if na, nc := len(sa.deliveries()), len(sc.deliveries()); na != 2 || nc != 5 {
		t.Fatalf("a got %d (2 permits), c got %d (5 permits)", na, nc)
	}
	// Reads are sized by the permits (7), not by the batch limit (100).
	for _, n := range f.cursor.readSizes {
		if n > 7 {
			t.Fatalf("read of %d entries with 7 permits in all", n)
		}
	}
	// The other 3 entries wait; the next Flow takes them oldest first.
	ca.Flow(10)
	if got := sa.positions(); !slices.Equal(got[2:], []int64{7, 8, 9}) {
		t.Fatalf("a got %v after Flow", got)
	}
}

func TestSharedPermitsExactWithBatches(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	f := newFixture(t, Options{Type: Shared, MaxRoundRobinBatchSize: 3})
	type cons struct {
		c       *Consumer
		s       *recSink
		granted int64
	}
	var cs []*cons
	for i := 0; i < 4; i++ {
		c, s := f.consumer(fmt.Sprintf("c%d", i), ConsumerConfig{})
		cs = append(cs, &cons{c: c, s: s})
	}
	sizes := make([]int32, 400)
	for i := range sizes {
		sizes[i] = int32(rng.IntN(5)) // 0 is a plain message (1 permit)
	}
	total := 0
	for _, n := range sizes {
		total += int(max(n, 1))
	}
	for step := 0; step < 400; step++ {
		if step < len(sizes) {
			f.addEntries(1, func(i int) entrySpec { return entrySpec{msgs: sizes[i]} })
		}
		x := cs[rng.IntN(len(cs))]
		p := uint32(rng.IntN(8))
		if p > 0 {
			// First Flow sets a big window, so no entry exceeds it.
			if x.granted == 0 {
				p += 10
			}
			x.granted += int64(p)
			x.c.Flow(p)
		}
		for i, y := range cs {
			if got := y.s.messages(); got > y.granted {
				t.Fatalf("step %d: consumer %d got %d messages with %d permits", step, i, got, y.granted)
			}
		}
	}
	for _, y := range cs {
		y.granted += 1000
		y.c.Flow(1000)
	}
	delivered := int64(0)
	seen := map[base.Position]bool{}
	for _, y := range cs {
		delivered += y.s.messages()
		for _, g := range y.s.deliveries() {
			if seen[g.pos] {
				t.Fatalf("%v delivered twice", g.pos)
			}
			seen[g.pos] = true
		}
	}
	if delivered != int64(total) || len(seen) != len(sizes) {
		t.Fatalf("delivered %d messages in %d entries, want %d in %d", delivered, len(seen), total, len(sizes))
	}
	for _, n := range f.cursor.readSizes {
		if n < 1 || n > DefaultMaxReadBatchSize {
			t.Fatalf("read size %d", n)
		}
	}
}

func TestSharedPriorityLevels(t *testing.T) {
	f := newFixture(t, Options{Type: Shared, MaxRoundRobinBatchSize: 1})
	hi, shi := f.consumer("hi", ConsumerConfig{PriorityLevel: 0})
	lo, slo := f.consumer("lo", ConsumerConfig{PriorityLevel: 1})
	hi.Flow(3)
	lo.Flow(100)
	f.addEntries(6, nil)
	if got := shi.positions(); !slices.Equal(got, []int64{0, 1, 2}) {
		t.Fatalf("high priority got %v", got)
	}
	if got := slo.positions(); !slices.Equal(got, []int64{3, 4, 5}) {
		t.Fatalf("low priority got %v", got)
	}
}

func TestSharedRedeliveryOnClose(t *testing.T) {
	f := newFixture(t, Options{Type: Shared, MaxRoundRobinBatchSize: 1})
	ca, sa := f.consumer("a", ConsumerConfig{})
	cb, sb := f.consumer("b", ConsumerConfig{})
	ca.Flow(100)
	cb.Flow(2)
	f.addEntries(6, nil) // a: 0 2 4 5, b: 1 3
	if err := ca.Ack(pos(2)); err != nil {
		t.Fatal(err)
	}
	if st := ca.Stats(); st.Unacked != 3 {
		t.Fatalf("a unacked %d, want 3", st.Unacked)
	}
	ca.Close()
	sa.markClosed()
	// b has no permits: nothing moves until it flows; then a's unacked
	// entries come first, oldest first, counted once redelivered, before
	// the new entry 6.
	f.addEntries(1, nil)
	if n := len(sb.deliveries()); n != 2 {
		t.Fatalf("b got %d entries without permits", n)
	}
	cb.Flow(10)
	got := sb.deliveries()[2:]
	want := []struct {
		e int64
		r uint32
	}{{0, 1}, {4, 1}, {5, 1}, {6, 0}}
	if len(got) != len(want) {
		t.Fatalf("b got %v", sb.positions())
	}
	for i, w := range want {
		if got[i].pos != pos(w.e) || got[i].redeliveries != w.r {
			t.Fatalf("b delivery %d: %v count %d, want %d count %d", i, got[i].pos, got[i].redeliveries, w.e, w.r)
		}
	}
	if st := cb.Stats(); st.MsgRedelivered != 3 {
		t.Fatalf("MsgRedelivered %d", st.MsgRedelivered)
	}
	if err := cb.Ack(poss(0, 1, 3, 4, 5, 6)...); err != nil {
		t.Fatal(err)
	}
	if !f.cursor.allAcked() {
		t.Fatal("not all acked")
	}
	if st := f.d.Stats(); st.PendingEntries != 0 || st.ReplayEntries != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSharedRedeliverRequests(t *testing.T) {
	f := newFixture(t, Options{Type: Shared})
	c, s := f.consumer("a", ConsumerConfig{})
	c.Flow(100)
	f.addEntries(5, nil)
	c.RedeliverUnacknowledged(poss(3, 1, 99)) // 99 is unknown: ignored
	if got := s.positions(); !slices.Equal(got, []int64{0, 1, 2, 3, 4, 1, 3}) {
		t.Fatalf("got %v", got)
	}
	c.RedeliverUnacknowledged(nil)
	got := s.deliveries()[7:]
	var ps []int64
	for _, g := range got {
		ps = append(ps, int64(g.pos.Entry))
		want := uint32(1)
		if g.pos.Entry == 1 || g.pos.Entry == 3 {
			want = 2
		}
		if g.redeliveries != want {
			t.Errorf("%v count %d, want %d", g.pos, g.redeliveries, want)
		}
	}
	if !slices.Equal(ps, entries(0, 5)) {
		t.Fatalf("redeliver all: %v", ps)
	}
	// Acked entries are not redelivered even if asked.
	if err := c.Ack(pos(0)); err != nil {
		t.Fatal(err)
	}
	c.RedeliverUnacknowledged(poss(0))
	if n := len(s.deliveries()); n != 12 {
		t.Fatalf("acked entry redelivered: %v", s.positions())
	}
}

func TestSharedNegativeAck(t *testing.T) {
	f := newFixture(t, Options{Type: Shared})
	c, s := f.consumer("a", ConsumerConfig{})
	c.Flow(100)
	f.addEntries(3, nil)
	c.NegativeAck(poss(1))
	if n := len(s.deliveries()); n != 3 {
		t.Fatalf("redelivered before the delay")
	}
	if ts := f.clock.pending(); len(ts) != 1 || ts[0] != DefaultNegativeAckDelay {
		t.Fatalf("timers %v", ts)
	}
	f.clock.fire()
	g := s.deliveries()
	if len(g) != 4 || g[3].pos != pos(1) || g[3].redeliveries != 1 {
		t.Fatalf("after the delay: %+v", g)
	}
	// Acked in between: nothing comes back.
	c.NegativeAck(poss(2))
	if err := c.Ack(pos(2)); err != nil {
		t.Fatal(err)
	}
	f.clock.fire()
	if n := len(s.deliveries()); n != 4 {
		t.Fatalf("acked entry redelivered after nack")
	}
	// Immediate mode.
	f2 := newFixture(t, Options{Type: Shared, NegativeAckDelay: -1})
	c2, s2 := f2.consumer("a", ConsumerConfig{})
	c2.Flow(10)
	f2.addEntries(1, nil)
	c2.NegativeAck(nil)
	if ps := s2.positions(); !slices.Equal(ps, []int64{0, 0}) {
		t.Fatalf("immediate nack: %v", ps)
	}
}

func TestSharedReplayedEntryAckedMeanwhile(t *testing.T) {
	// An entry waiting for redelivery that gets acknowledged (by a late ack
	// from the consumer that left) is dropped when the replay read skips it,
	// and its permits go back.
	f := newFixture(t, Options{Type: Shared})
	ca, sa := f.consumer("a", ConsumerConfig{})
	cb, sb := f.consumer("b", ConsumerConfig{})
	ca.Flow(10)
	f.addEntries(3, nil)
	ca.Close()
	sa.markClosed()
	if err := ca.Ack(pos(1)); err != nil { // late ack from the closed consumer
		t.Fatal(err)
	}
	cb.Flow(2)
	if got := sb.positions(); !slices.Equal(got, []int64{0, 2}) {
		t.Fatalf("b got %v, want [0 2]", got)
	}
	if st := cb.Stats(); st.Permits != 0 {
		t.Fatalf("b permits %d", st.Permits)
	}
}

func TestSharedUnackedLimit(t *testing.T) {
	f := newFixture(t, Options{Type: Shared, MaxUnackedMessagesPerConsumer: 4})
	c, s := f.consumer("a", ConsumerConfig{})
	c.Flow(100)
	f.addEntries(10, nil)
	if n := len(s.deliveries()); n != 4 {
		t.Fatalf("delivered %d with an unacked limit of 4", n)
	}
	if st := c.Stats(); !st.Blocked {
		t.Fatal("not blocked")
	}
	if err := c.Ack(pos(0)); err != nil {
		t.Fatal(err)
	}
	if n := len(s.deliveries()); n != 4 {
		t.Fatalf("unblocked before acking half: %d", n)
	}
	if err := c.Ack(pos(1)); err != nil {
		t.Fatal(err)
	}
	if n := len(s.deliveries()); n != 6 {
		t.Fatalf("after acking half: %d delivered, want 6", n)
	}
}

func TestSharedReplayReadFailureRetried(t *testing.T) {
	f := newFixture(t, Options{Type: Shared})
	c, s := f.consumer("a", ConsumerConfig{})
	c.Flow(10)
	f.addEntries(2, nil)
	f.cursor.mu.Lock()
	f.cursor.failReplay = 1
	f.cursor.mu.Unlock()
	c.RedeliverUnacknowledged(nil)
	if n := len(s.deliveries()); n != 2 {
		t.Fatalf("delivered %d through a failed replay", n)
	}
	if st := c.Stats(); st.Permits != 8 {
		t.Fatalf("permits %d after a failed replay, want 8 (reservation returned)", st.Permits)
	}
	if f.clock.fire() != 1 {
		t.Fatal("no retry scheduled")
	}
	if got := s.positions(); !slices.Equal(got, []int64{0, 1, 0, 1}) {
		t.Fatalf("got %v", got)
	}
}

func TestCumulativeAckRefusedOnShared(t *testing.T) {
	f := newFixture(t, Options{Type: Shared})
	c, _ := f.consumer("a", ConsumerConfig{})
	if err := c.AckCumulative(pos(0)); err != ErrCumulativeAck {
		t.Fatalf("err %v", err)
	}
}

func TestBatchIndexAck(t *testing.T) {
	f := newFixture(t, Options{Type: Shared})
	c, _ := f.consumer("a", ConsumerConfig{})
	c.Flow(100)
	f.addEntries(1, func(int) entrySpec { return entrySpec{msgs: 3} })
	if err := c.AckBatchIndexes(pos(0), 3, []int{0, 2}); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Unacked != 3 {
		t.Fatalf("unacked %d after a partial batch ack", st.Unacked)
	}
	if err := c.AckBatchIndexes(pos(0), 3, []int{1}); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Unacked != 0 {
		t.Fatalf("unacked %d after acking the whole batch", st.Unacked)
	}
}

func TestResetCursor(t *testing.T) {
	for _, typ := range []SubscriptionType{Exclusive, Shared, KeyShared} {
		t.Run(typ.String(), func(t *testing.T) {
			f := newFixture(t, Options{Type: typ})
			c, s := f.consumer("a", ConsumerConfig{})
			c.Flow(100)
			f.addEntries(5, nil)
			c.Close()
			s.markClosed()
			if err := f.d.ResetCursor(t.Context(), pos(3)); err != nil {
				t.Fatal(err)
			}
			c2, s2 := f.consumer("b", ConsumerConfig{})
			c2.Flow(100)
			got := s2.deliveries()
			if ps := s2.positions(); !slices.Equal(ps, []int64{3, 4}) {
				t.Fatalf("after reset to 3: %v", ps)
			}
			if typ != Exclusive && got[0].redeliveries != 0 {
				t.Fatalf("redelivery count %d after a reset", got[0].redeliveries)
			}
		})
	}
}

func TestClosedDispatcher(t *testing.T) {
	f := newFixture(t, Options{Type: Shared})
	c, s := f.consumer("a", ConsumerConfig{})
	c.Flow(10)
	f.addEntries(1, nil)
	f.d.Close()
	if _, err := f.d.AddConsumer(newRecSink(t, "x"), ConsumerConfig{}); err != ErrClosed {
		t.Fatalf("AddConsumer after Close: %v", err)
	}
	s.markClosed()
	c.Flow(10)
	f.addEntries(3, nil) // a read may still be waiting: its entries are released
	if err := f.d.ResetCursor(t.Context(), pos(0)); err != ErrClosed {
		t.Fatalf("ResetCursor after Close: %v", err)
	}
}
