package dispatcher

import (
	"errors"
	"slices"
	"testing"
)

func TestExclusiveOneConsumer(t *testing.T) {
	f := newFixture(t, Options{Type: Exclusive})
	c1, s1 := f.consumer("a", ConsumerConfig{ID: 1})
	if _, err := f.d.AddConsumer(newRecSink(t, "b"), ConsumerConfig{ID: 2, Name: "b"}); !errors.Is(err, ErrConsumerBusy) {
		t.Fatalf("second exclusive consumer: err %v, want ErrConsumerBusy", err)
	}
	f.addEntries(5, nil)
	if got := s1.deliveries(); len(got) != 0 {
		t.Fatalf("delivered %d entries before any Flow", len(got))
	}
	c1.Flow(3)
	if got, want := s1.positions(), entries(0, 3); !slices.Equal(got, want) {
		t.Fatalf("after Flow(3): %v, want %v", got, want)
	}
	c1.Flow(10)
	f.addEntries(2, nil)
	if got, want := s1.positions(), entries(0, 7); !slices.Equal(got, want) {
		t.Fatalf("after Flow(10) and 2 more entries: %v, want %v", got, want)
	}
	if len(s1.notifications()) != 0 {
		t.Fatalf("exclusive consumer got active-consumer notifications %v", s1.notifications())
	}
	// Ack 0..2, leave: a new consumer gets 3..6 again, counted as redelivered.
	if err := c1.AckCumulative(pos(2)); err != nil {
		t.Fatal(err)
	}
	c1.Close()
	s1.markClosed()
	c2, s2 := f.consumer("b", ConsumerConfig{ID: 2})
	c2.Flow(100)
	got := s2.deliveries()
	if ps := s2.positions(); !slices.Equal(ps, entries(3, 7)) {
		t.Fatalf("new exclusive consumer got %v, want 3..6", ps)
	}
	for _, g := range got {
		if g.redeliveries != 1 {
			t.Errorf("entry %v redelivery count %d, want 1", g.pos, g.redeliveries)
		}
	}
	f.addEntries(1, nil)
	if g := s2.deliveries(); g[len(g)-1].pos != pos(7) || g[len(g)-1].redeliveries != 0 {
		t.Fatalf("new entry delivered as %+v, want 1:7 with count 0", g[len(g)-1])
	}
}

func TestSinglePermitsCountMessages(t *testing.T) {
	f := newFixture(t, Options{Type: Exclusive})
	c, s := f.consumer("a", ConsumerConfig{})
	// Batches of 3, 4, 5 and single messages.
	sizes := []int32{3, 4, 5, 0, 0}
	f.addEntries(len(sizes), func(i int) entrySpec { return entrySpec{msgs: sizes[i]} })
	c.Flow(8) // 3+4 leave 1 permit: the batch of 5 still goes, overdrawing to -4
	if got := s.positions(); !slices.Equal(got, []int64{0, 1, 2}) {
		t.Fatalf("with 8 permits: %v, want [0 1 2]", got)
	}
	if st := c.Stats(); st.Permits != -4 {
		t.Fatalf("permits left %d, want -4", st.Permits)
	}
	c.Flow(4) // back to 0: nothing more may go
	if got := s.positions(); !slices.Equal(got, []int64{0, 1, 2}) {
		t.Fatalf("at 0 permits: %v, want [0 1 2]", got)
	}
	c.Flow(2)
	if got := s.positions(); !slices.Equal(got, entries(0, 5)) {
		t.Fatalf("after the last Flow: %v, want 0..4", got)
	}
	if st := c.Stats(); st.Permits != 0 || st.MsgOut != 14 {
		t.Fatalf("stats %+v, want 0 permits and 14 messages out", st)
	}
}

// TestBatchOverdrawsPermits: a batch larger than the permits left (even
// larger than the whole receiver queue) goes out while any permit is left,
// and nothing more goes until the overdraft is paid back. This is what
// keeps a client that grants permits in steps of half its queue from
// waiting forever on a large batch.
func TestBatchOverdrawsPermits(t *testing.T) {
	f := newFixture(t, Options{Type: Exclusive})
	c, s := f.consumer("a", ConsumerConfig{})
	f.addEntries(3, func(i int) entrySpec { return entrySpec{msgs: []int32{2, 50, 1}[i]} })
	c.Flow(10)
	if got := s.positions(); !slices.Equal(got, []int64{0, 1}) {
		t.Fatalf("got %v, want [0 1]", got)
	}
	if st := c.Stats(); st.Permits != -42 {
		t.Fatalf("permits %d, want -42", st.Permits)
	}
	c.Flow(42)
	if got := s.positions(); !slices.Equal(got, []int64{0, 1}) {
		t.Fatalf("at 0 permits: %v", got)
	}
	c.Flow(1)
	if got := s.positions(); !slices.Equal(got, []int64{0, 1, 2}) {
		t.Fatalf("got %v, want [0 1 2]", got)
	}
}

func TestSingleReadsBoundedAndPushed(t *testing.T) {
	f := newFixture(t, Options{Type: Exclusive, MaxReadBatchSize: 7})
	c, s := f.consumer("a", ConsumerConfig{})
	c.Flow(1000)
	// A read waits; each add goes out at once.
	for i := 0; i < 5; i++ {
		f.addEntries(1, nil)
		if n := len(s.deliveries()); n != i+1 {
			t.Fatalf("after add %d: %d delivered", i, n)
		}
	}
	f.addEntries(30, nil)
	if n := len(s.deliveries()); n != 35 {
		t.Fatalf("delivered %d, want 35", n)
	}
	for _, n := range f.cursor.readSizes {
		if n > 7 {
			t.Fatalf("read of %d entries, above MaxReadBatchSize 7", n)
		}
	}
	c2f := newFixture(t, Options{Type: Exclusive})
	c2, _ := c2f.consumer("a", ConsumerConfig{})
	c2.Flow(3)
	if sz := c2f.cursor.readSizes; len(sz) != 1 || sz[0] != 3 {
		t.Fatalf("read sizes %v with 3 permits, want [3]", sz)
	}
}

func TestFailoverNonPartitioned(t *testing.T) {
	f := newFixture(t, Options{Type: Failover})
	ca, sa := f.consumer("zeta", ConsumerConfig{ID: 1})
	cb, sb := f.consumer("alpha", ConsumerConfig{ID: 2})
	if a := f.d.ActiveConsumer(); a != ca {
		t.Fatalf("active %v, want the first connected (zeta)", a.Name())
	}
	// Nothing before the first Flow, then the current state.
	if n := sa.notifications(); len(n) != 0 {
		t.Fatalf("notified before Flow: %v", n)
	}
	ca.Flow(100)
	cb.Flow(100)
	if n := sa.notifications(); !slices.Equal(n, []bool{true}) {
		t.Fatalf("zeta notifications %v, want [true]", n)
	}
	if n := sb.notifications(); !slices.Equal(n, []bool{false}) {
		t.Fatalf("alpha notifications %v, want [false]", n)
	}
	f.addEntries(4, nil)
	if len(sb.deliveries()) != 0 || len(sa.deliveries()) != 4 {
		t.Fatalf("deliveries: active %d, inactive %d", len(sa.deliveries()), len(sb.deliveries()))
	}
	if err := ca.Ack(pos(0), pos(1)); err != nil {
		t.Fatal(err)
	}
	// The active one leaves: alpha takes over from the oldest unacked entry.
	ca.Close()
	sa.markClosed()
	if a := f.d.ActiveConsumer(); a != cb {
		t.Fatalf("active after close: %v", a)
	}
	if n := sb.notifications(); !slices.Equal(n, []bool{false, true}) {
		t.Fatalf("alpha notifications %v, want [false true]", n)
	}
	got := sb.deliveries()
	if ps := sb.positions(); !slices.Equal(ps, []int64{2, 3}) {
		t.Fatalf("new active got %v, want [2 3]", ps)
	}
	for _, g := range got {
		if g.redeliveries != 1 {
			t.Fatalf("%v redelivery count %d, want 1", g.pos, g.redeliveries)
		}
	}
	// A third consumer joins: no change of active, it learns it is inactive.
	cc, sc := f.consumer("beta", ConsumerConfig{ID: 3})
	cc.Flow(10)
	if n := sc.notifications(); !slices.Equal(n, []bool{false}) {
		t.Fatalf("beta notifications %v", n)
	}
	if n := sb.notifications(); len(n) != 2 {
		t.Fatalf("alpha re-notified without a change: %v", n)
	}
}

func TestFailoverPartitioned(t *testing.T) {
	// Consumers sorted by (priority, name): [a, b, c]; partition 4 -> 4 % 3 = 1 -> b.
	f := newFixture(t, Options{Type: Failover, Partitioned: true, PartitionIndex: 4})
	cc, sc := f.consumer("c", ConsumerConfig{})
	ca, sa := f.consumer("a", ConsumerConfig{})
	cb, sb := f.consumer("b", ConsumerConfig{})
	for _, c := range []*Consumer{ca, cb, cc} {
		c.Flow(10)
	}
	if a := f.d.ActiveConsumer(); a != cb {
		t.Fatalf("active %s, want b", a.Name())
	}
	f.addEntries(2, nil)
	if len(sb.deliveries()) != 2 || len(sa.deliveries()) != 0 || len(sc.deliveries()) != 0 {
		t.Fatalf("deliveries a=%d b=%d c=%d", len(sa.deliveries()), len(sb.deliveries()), len(sc.deliveries()))
	}
	// A higher-priority consumer (lower level) takes over whatever its name.
	cz, sz := f.consumer("z", ConsumerConfig{PriorityLevel: -1})
	cz.Flow(10)
	if a := f.d.ActiveConsumer(); a != cz {
		t.Fatalf("active %s, want z (priority)", a.Name())
	}
	for name, s := range map[string]*recSink{"a": sa, "b": sb, "c": sc} {
		n := s.notifications()
		if len(n) != 2 || n[1] {
			t.Fatalf("%s notifications %v, want a second one saying inactive", name, n)
		}
	}
	if n := sz.notifications(); !slices.Equal(n, []bool{true}) {
		t.Fatalf("z notifications %v", n)
	}
	if ps := sz.positions(); !slices.Equal(ps, []int64{0, 1}) {
		t.Fatalf("z got %v, want the unacked [0 1]", ps)
	}
	// Removing consumers re-picks: z gone -> [a b c], 4 % 3 = 1 -> b; c gone -> [a b], 4 % 2 = 0 -> a.
	cz.Close()
	sz.markClosed()
	if a := f.d.ActiveConsumer(); a != cb {
		t.Fatalf("active %s, want b", a.Name())
	}
	cc.Close()
	sc.markClosed()
	if a := f.d.ActiveConsumer(); a != ca {
		t.Fatalf("active %s, want a", a.Name())
	}
}

func TestSingleRedeliverRewinds(t *testing.T) {
	f := newFixture(t, Options{Type: Failover})
	c, s := f.consumer("a", ConsumerConfig{})
	c.Flow(100)
	f.addEntries(5, nil)
	if err := c.Ack(pos(1)); err != nil {
		t.Fatal(err)
	}
	// Listed positions are ignored: everything unacked comes again.
	c.RedeliverUnacknowledged(poss(3))
	want := []int64{0, 1, 2, 3, 4, 0, 2, 3, 4}
	if ps := s.positions(); !slices.Equal(ps, want) {
		t.Fatalf("got %v, want %v", ps, want)
	}
	c.RedeliverUnacknowledged(nil)
	d := s.deliveries()
	counts := map[int64][]uint32{}
	for _, g := range d {
		counts[int64(g.pos.Entry)] = append(counts[int64(g.pos.Entry)], g.redeliveries)
	}
	if !slices.Equal(counts[0], []uint32{0, 1, 2}) || !slices.Equal(counts[4], []uint32{0, 1, 2}) || !slices.Equal(counts[1], []uint32{0}) {
		t.Fatalf("redelivery counts %v", counts)
	}
	// Cumulative ack forgets the old epochs; new entries count 0.
	if err := c.AckCumulative(pos(4)); err != nil {
		t.Fatal(err)
	}
	f.addEntries(1, nil)
	if g := s.deliveries(); g[len(g)-1].pos != pos(5) || g[len(g)-1].redeliveries != 0 {
		t.Fatalf("last delivery %+v", g[len(g)-1])
	}
	if err := c.AckCumulative(pos(5)); err != nil {
		t.Fatal(err)
	}
	if !f.cursor.allAcked() {
		t.Fatal("not everything acked")
	}
}

func TestSingleRedeliverWhileReadWaits(t *testing.T) {
	// A rewind requested while a read waits for entries cancels the read
	// first (the cursor must not be rewound under a pending read).
	f := newFixture(t, Options{Type: Exclusive})
	c, s := f.consumer("a", ConsumerConfig{})
	c.Flow(10)
	f.addEntries(2, nil)
	c.RedeliverUnacknowledged(nil)
	if ps := s.positions(); !slices.Equal(ps, []int64{0, 1, 0, 1}) {
		t.Fatalf("got %v", ps)
	}
	f.addEntries(1, nil)
	if ps := s.positions(); !slices.Equal(ps, []int64{0, 1, 0, 1, 2}) {
		t.Fatalf("got %v", ps)
	}
}

func TestSingleNegativeAckDelay(t *testing.T) {
	f := newFixture(t, Options{Type: Exclusive})
	c, s := f.consumer("a", ConsumerConfig{})
	c.Flow(10)
	f.addEntries(2, nil)
	c.NegativeAck(poss(0))
	if d := f.clock.pending(); len(d) != 1 || d[0] != DefaultNegativeAckDelay {
		t.Fatalf("timers %v, want one of %v", d, DefaultNegativeAckDelay)
	}
	if n := len(s.deliveries()); n != 2 {
		t.Fatalf("redelivered before the delay: %d", n)
	}
	f.clock.fire()
	if ps := s.positions(); !slices.Equal(ps, []int64{0, 1, 0, 1}) {
		t.Fatalf("got %v", ps)
	}
}

func TestServerOnlyMarkersSkipped(t *testing.T) {
	for _, typ := range []SubscriptionType{Exclusive, Shared, KeyShared} {
		t.Run(typ.String(), func(t *testing.T) {
			f := newFixture(t, Options{Type: typ})
			c, s := f.consumer("a", ConsumerConfig{})
			c.Flow(10)
			f.addEntries(4, func(i int) entrySpec { return entrySpec{marker: i%2 == 1} })
			if ps := s.positions(); !slices.Equal(ps, []int64{0, 2}) {
				t.Fatalf("got %v, want [0 2]", ps)
			}
			if !f.cursor.IsAcknowledged(pos(1)) || !f.cursor.IsAcknowledged(pos(3)) {
				t.Fatal("markers not acknowledged")
			}
		})
	}
}

func TestReadErrorsRetried(t *testing.T) {
	for _, typ := range []SubscriptionType{Exclusive, Shared} {
		t.Run(typ.String(), func(t *testing.T) {
			f := newFixture(t, Options{Type: typ})
			f.addEntries(3, nil)
			f.cursor.setFailNext(2)
			c, s := f.consumer("a", ConsumerConfig{})
			c.Flow(10)
			if n := len(s.deliveries()); n != 0 {
				t.Fatalf("delivered %d through a failing read", n)
			}
			for i := 0; i < 2; i++ {
				if f.clock.fire() != 1 {
					t.Fatalf("retry %d: no retry timer", i)
				}
			}
			if ps := s.positions(); !slices.Equal(ps, entries(0, 3)) {
				t.Fatalf("after retries: %v", ps)
			}
		})
	}
}
