package dispatcher

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
)

// keyOwnedBy returns a key (from k0, k1, ...) whose hash c serves now.
func keyOwnedBy(t *testing.T, d *Dispatcher, c *Consumer, skip ...string) string {
	t.Helper()
	for i := 0; i < 100000; i++ {
		k := fmt.Sprintf("k%d", i)
		if slices.Contains(skip, k) {
			continue
		}
		d.mu.Lock()
		owner := d.mu.selector.pick(StickyKeyHash([]byte(k)))
		d.mu.Unlock()
		if owner == c {
			return k
		}
	}
	t.Fatalf("no key for consumer %s", c.Name())
	return ""
}

func TestKeySharedSameKeySameConsumer(t *testing.T) {
	f := newFixture(t, Options{Type: KeyShared})
	var cs []*Consumer
	var ss []*recSink
	for i := 0; i < 3; i++ {
		c, s := f.consumer(fmt.Sprintf("c%d", i), ConsumerConfig{})
		c.Flow(1000)
		cs, ss = append(cs, c), append(ss, s)
	}
	keys := []string{"apple", "banana", "cherry", "date", "elder", "fig", "grape", "honeydew"}
	f.addEntries(400, func(i int) entrySpec { return entrySpec{key: keys[i%len(keys)]} })
	owner := map[string]int{}
	total := 0
	for ci, s := range ss {
		last := map[string]int64{}
		for _, g := range s.deliveries() {
			k := keys[int(g.pos.Entry)%len(keys)]
			if o, ok := owner[k]; ok && o != ci {
				t.Fatalf("key %s went to consumers %d and %d", k, o, ci)
			}
			owner[k] = ci
			if l, ok := last[k]; ok && int64(g.pos.Entry) <= l {
				t.Fatalf("key %s out of order at consumer %d: %d after %d", k, ci, g.pos.Entry, l)
			}
			last[k] = int64(g.pos.Entry)
			total++
		}
	}
	if total != 400 {
		t.Fatalf("delivered %d of 400", total)
	}
	// The ring spreads 8 keys over more than one consumer.
	used := map[int]bool{}
	for _, o := range owner {
		used[o] = true
	}
	if len(used) < 2 {
		t.Fatalf("all keys on one consumer: %v", owner)
	}
	for _, c := range cs {
		c.Close()
	}
}

func TestKeySharedKeySource(t *testing.T) {
	// Entries keyed by ordering key, partition key and base64 partition key
	// of the same bytes route alike; no key routes as NONE_KEY.
	f := newFixture(t, Options{Type: KeyShared})
	c1, s1 := f.consumer("one", ConsumerConfig{})
	c2, s2 := f.consumer("two", ConsumerConfig{})
	k := keyOwnedBy(t, f.d, c2)
	none := f.d.mu.selector.pick(StickyKeyHash([]byte("NONE_KEY")))
	c1.Flow(100)
	c2.Flow(100)
	f.addEntries(4, func(i int) entrySpec {
		switch i {
		case 0:
			return entrySpec{key: k}
		case 1:
			return entrySpec{pkey: k}
		case 2:
			return entrySpec{pkey: base64.StdEncoding.EncodeToString([]byte(k)), b64: true}
		}
		return entrySpec{}
	})
	if got := s2.positions(); !slices.Contains(got, 0) || !slices.Contains(got, 1) || !slices.Contains(got, 2) {
		t.Fatalf("entries keyed %q went to %v / %v", k, s1.positions(), s2.positions())
	}
	noneSink := s1
	if none == c2 {
		noneSink = s2
	}
	if !slices.Contains(noneSink.positions(), 3) {
		t.Fatalf("unkeyed entry did not go to the NONE_KEY owner")
	}
}

func TestKeySharedSlowConsumerDoesNotStallOthers(t *testing.T) {
	f := newFixture(t, Options{Type: KeyShared, MaxReadBatchSize: 10})
	slow, ss := f.consumer("slow", ConsumerConfig{})
	fast, sf := f.consumer("fast", ConsumerConfig{})
	ks := keyOwnedBy(t, f.d, slow)
	kf := keyOwnedBy(t, f.d, fast)
	slow.Flow(1)
	fast.Flow(1000)
	f.addEntries(200, func(i int) entrySpec {
		if i%2 == 0 {
			return entrySpec{key: ks}
		}
		return entrySpec{key: kf}
	})
	if n := len(sf.deliveries()); n != 100 {
		t.Fatalf("fast consumer got %d of its 100 entries while the slow one waits", n)
	}
	if got := ss.positions(); !slices.Equal(got, []int64{0}) {
		t.Fatalf("slow consumer got %v with 1 permit", got)
	}
	if st := f.d.Stats(); st.ReplayEntries != 99 {
		t.Fatalf("replay set holds %d, want 99", st.ReplayEntries)
	}
	slow.Flow(1000)
	got := ss.positions()
	if len(got) != 100 {
		t.Fatalf("slow consumer got %d after Flow", len(got))
	}
	for i, p := range got {
		if p != int64(2*i) {
			t.Fatalf("slow consumer order: %v", got)
		}
	}
}

func TestKeySharedReplayLimitBoundsLookahead(t *testing.T) {
	f := newFixture(t, Options{Type: KeyShared, MaxReplayEntries: 20, MaxReadBatchSize: 5})
	slow, _ := f.consumer("slow", ConsumerConfig{})
	fast, sf := f.consumer("fast", ConsumerConfig{})
	ks := keyOwnedBy(t, f.d, slow)
	kf := keyOwnedBy(t, f.d, fast)
	slow.Flow(1)
	fast.Flow(1000)
	// 1 goes to slow, then 20 wait; the dispatcher stops reading there.
	f.addEntries(60, func(i int) entrySpec {
		if i < 30 {
			return entrySpec{key: ks}
		}
		return entrySpec{key: kf}
	})
	if st := f.d.Stats(); st.ReplayEntries > 20+5 {
		t.Fatalf("replay set grew to %d past its bound of 20 (+ one read)", st.ReplayEntries)
	}
	if n := len(sf.deliveries()); n != 0 {
		t.Fatalf("fast got %d entries that sit behind the bound", n)
	}
	slow.Flow(1000)
	if n := len(sf.deliveries()); n != 30 {
		t.Fatalf("fast got %d of 30 once the slow one drained", n)
	}
}

func TestKeySharedNewConsumerWaitsForDrain(t *testing.T) {
	f := newFixture(t, Options{Type: KeyShared})
	c1, s1 := f.consumer("first", ConsumerConfig{})
	c1.Flow(100)
	// Find a second consumer name that takes over some key k from first.
	var c2 *Consumer
	var s2 *recSink
	var k string
	for i := 0; c2 == nil; i++ {
		c, s := f.consumer(fmt.Sprintf("second-%d", i), ConsumerConfig{})
		for j := 0; j < 200; j++ {
			cand := fmt.Sprintf("key-%d", j)
			f.d.mu.Lock()
			moved := f.d.mu.selector.pick(StickyKeyHash([]byte(cand))) == c
			f.d.mu.Unlock()
			if moved {
				k, c2, s2 = cand, c, s
				break
			}
		}
		if c2 == nil {
			c.Close()
		}
	}
	c2.Close()
	s2.markClosed()
	// first holds two entries of k, unacked; then second joins and takes k.
	f.addEntries(2, func(int) entrySpec { return entrySpec{key: k} })
	c2, s2 = f.consumer(c2.Name(), ConsumerConfig{})
	c2.Flow(100)
	other := keyOwnedBy(t, f.d, c2, k)
	f.addEntries(2, func(i int) entrySpec {
		if i == 2 {
			return entrySpec{key: k}
		}
		return entrySpec{key: other}
	})
	if got := s2.positions(); !slices.Equal(got, []int64{3}) {
		t.Fatalf("second got %v; want only [3] while first holds key %s", got, k)
	}
	if err := c1.Ack(pos(0)); err != nil {
		t.Fatal(err)
	}
	if got := s2.positions(); !slices.Equal(got, []int64{3}) {
		t.Fatalf("second got %v with one entry of %s still unacked at first", got, k)
	}
	if err := c1.Ack(pos(1)); err != nil {
		t.Fatal(err)
	}
	if got := s2.positions(); !slices.Equal(got, []int64{3, 2}) {
		t.Fatalf("second got %v after first drained %s; want [3 2]", got, k)
	}
	if got := s1.positions(); !slices.Equal(got, []int64{0, 1}) {
		t.Fatalf("first got %v", got)
	}
}

func TestKeySharedDrainEndsWhenOldConsumerLeaves(t *testing.T) {
	f := newFixture(t, Options{Type: KeyShared})
	c1, s1 := f.consumer("first", ConsumerConfig{})
	c1.Flow(100)
	f.addEntries(3, func(int) entrySpec { return entrySpec{key: "k"} })
	c2, s2 := f.consumer("second", ConsumerConfig{})
	c2.Flow(100)
	f.addEntries(1, func(int) entrySpec { return entrySpec{key: "k"} })
	if err := c1.Ack(pos(0)); err != nil {
		t.Fatal(err)
	}
	c1.Close()
	s1.markClosed()
	// Everything of k now goes to second, in order: 1 2 redelivered, then 3.
	got := s2.deliveries()
	if ps := s2.positions(); !slices.Equal(ps, []int64{1, 2, 3}) {
		t.Fatalf("second got %v", ps)
	}
	if got[0].redeliveries != 1 || got[2].redeliveries != 0 {
		t.Fatalf("counts %+v", got)
	}
}

func TestKeySharedAllowOutOfOrder(t *testing.T) {
	f := newFixture(t, Options{Type: KeyShared, AllowOutOfOrderDelivery: true})
	c1, _ := f.consumer("first", ConsumerConfig{})
	c1.Flow(100)
	k := ""
	c2, s2 := f.consumer("second", ConsumerConfig{})
	k = keyOwnedBy(t, f.d, c2)
	c2.Close()
	s2.markClosed()
	f.addEntries(1, func(int) entrySpec { return entrySpec{key: k} })
	c2, s2 = f.consumer("second", ConsumerConfig{})
	c2.Flow(100)
	f.addEntries(1, func(int) entrySpec { return entrySpec{key: k} })
	if got := s2.positions(); !slices.Equal(got, []int64{1}) {
		t.Fatalf("out-of-order allowed: second got %v, want [1] at once", got)
	}
}

func TestKeySharedSticky(t *testing.T) {
	f := newFixture(t, Options{Type: KeyShared, KeySharedMode: Sticky})
	lo, slo := f.consumer("lo", ConsumerConfig{HashRanges: []HashRange{{0, 32767}}})
	hi, shi := f.consumer("hi", ConsumerConfig{HashRanges: []HashRange{{32768, 65535}}})
	for _, bad := range [][]HashRange{nil, {{100, 200}}, {{70000, 70001}}, {{5, 4}}} {
		if _, err := f.d.AddConsumer(newRecSink(t, "x"), ConsumerConfig{Name: "x", HashRanges: bad}); !errors.Is(err, ErrConsumerAssign) {
			t.Fatalf("ranges %v: err %v, want ErrConsumerAssign", bad, err)
		}
	}
	lo.Flow(1000)
	hi.Flow(1000)
	keys := make([]string, 50)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
	}
	f.addEntries(50, func(i int) entrySpec { return entrySpec{key: keys[i]} })
	for _, g := range slo.deliveries() {
		if h := StickyKeyHash([]byte(keys[g.pos.Entry])); h > 32767 {
			t.Fatalf("hash %d went to lo", h)
		}
	}
	for _, g := range shi.deliveries() {
		if h := StickyKeyHash([]byte(keys[g.pos.Entry])); h < 32768 {
			t.Fatalf("hash %d went to hi", h)
		}
	}
	if n := len(slo.deliveries()) + len(shi.deliveries()); n != 50 {
		t.Fatalf("delivered %d of 50", n)
	}
	if r := hi.HashRanges(); !slices.Equal(r, []HashRange{{32768, 65535}}) {
		t.Fatalf("hi ranges %v", r)
	}
	// Uncovered hashes wait until a consumer serves them.
	hi.Close()
	shi.markClosed()
	f.addEntries(50, func(i int) entrySpec { return entrySpec{key: keys[i-50]} })
	waiting := 0
	for _, k := range keys {
		if StickyKeyHash([]byte(k)) >= 32768 {
			waiting++
		}
	}
	// hi's unacked entries and the new ones of its range wait.
	if st := f.d.Stats(); st.ReplayEntries != len(shi.deliveries())+waiting {
		t.Fatalf("replay set %d, want %d", st.ReplayEntries, len(shi.deliveries())+waiting)
	}
	hi2, shi2 := f.consumer("hi2", ConsumerConfig{HashRanges: []HashRange{{32768, 65535}}})
	hi2.Flow(1000)
	if st := f.d.Stats(); st.ReplayEntries != 0 {
		t.Fatalf("replay set %d after hi2 joined", st.ReplayEntries)
	}
	if n := len(slo.deliveries()) + len(shi2.deliveries()); n != 100 {
		t.Fatalf("lo and hi2 got %d entries, want 100", n)
	}
}

func TestKeySharedAutoSplitRanges(t *testing.T) {
	f := newFixture(t, Options{Type: KeyShared})
	var cs []*Consumer
	for i := 0; i < 4; i++ {
		c, _ := f.consumer(fmt.Sprintf("c%d", i), ConsumerConfig{})
		cs = append(cs, c)
	}
	// The ranges of all consumers tile 0..65535 exactly.
	covered := make([]int, KeyHashRange)
	for _, c := range cs {
		rs := c.HashRanges()
		if len(rs) == 0 {
			t.Fatalf("%s serves no range", c.Name())
		}
		for _, r := range rs {
			for h := r.Start; h <= r.End; h++ {
				covered[h]++
			}
		}
	}
	for h, n := range covered {
		if n != 1 {
			t.Fatalf("hash %d covered %d times", h, n)
		}
	}
	// Same name twice: two distinct sets of points.
	dup, _ := f.consumer("c0", ConsumerConfig{})
	if len(dup.HashRanges()) == 0 {
		t.Fatal("second consumer named c0 serves nothing")
	}
	// Removing a consumer only moves its own hashes.
	before := map[uint32]*Consumer{}
	f.d.mu.Lock()
	for h := uint32(0); h < KeyHashRange; h += 7 {
		before[h] = f.d.mu.selector.pick(h)
	}
	f.d.mu.Unlock()
	cs[1].Close()
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	for h, c := range before {
		if c != cs[1] && f.d.mu.selector.pick(h) != c {
			t.Fatalf("hash %d moved from %s though its consumer stayed", h, c.Name())
		}
	}
}

// TestKeySharedChurn drives a Key_Shared subscription with a seeded random
// script of entries, flows, acks (in any order), joins and leaves, and
// checks at every delivery that no two consumers hold unacked entries of one
// key, that first deliveries of every key come in log order, that a
// consumer sees a key's entries in order, and at the end that every entry
// was delivered and acknowledged exactly once.
func TestKeySharedChurn(t *testing.T) {
	steps := 3000
	if os.Getenv("MAGNETAR_LONG") != "" {
		steps = 100000
	}
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runKeySharedChurn(t, seed, steps) })
	}
}

type churnConsumer struct {
	c       *Consumer
	s       *recSink
	name    string
	unacked []base.Position
	lastKey map[int]int64
}

func runKeySharedChurn(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 99))
	f := newFixture(t, Options{Type: KeyShared, MaxReadBatchSize: 8, KeySharedReplicaPoints: 20})
	const nkeys = 40
	keyOf := map[int64]int{}
	holders := make([]map[*churnConsumer]int, nkeys) // key -> consumer -> unacked entries
	for i := range holders {
		holders[i] = map[*churnConsumer]int{}
	}
	firstSeen := map[int64]bool{}
	lastFirst := make([]int64, nkeys)
	for i := range lastFirst {
		lastFirst[i] = -1
	}
	acks := map[int64]int{}
	var open []*churnConsumer
	nextName := 0
	total := int64(0)

	join := func() {
		cc := &churnConsumer{name: fmt.Sprintf("c%d", nextName%7), lastKey: map[int]int64{}} // names repeat
		nextName++
		cc.s = newRecSink(t, cc.name)
		cc.s.onDeliver = func(batch []Delivery) {
			for _, dl := range batch {
				e := int64(dl.Pos.Entry)
				k := keyOf[e]
				for other, n := range holders[k] {
					if other != cc && n > 0 {
						t.Errorf("seed %d: entry %d of key %d delivered to %s while %s holds %d unacked of it",
							seed, e, k, cc.name, other.name, n)
					}
				}
				holders[k][cc]++
				if l, ok := cc.lastKey[k]; ok && e <= l {
					t.Errorf("seed %d: %s got key %d entry %d after %d", seed, cc.name, k, e, l)
				}
				cc.lastKey[k] = e
				if !firstSeen[e] {
					firstSeen[e] = true
					if e <= lastFirst[k] {
						t.Errorf("seed %d: first delivery of entry %d of key %d after entry %d", seed, e, k, lastFirst[k])
					}
					lastFirst[k] = e
				}
				cc.unacked = append(cc.unacked, dl.Pos)
			}
		}
		c, err := f.d.AddConsumer(cc.s, ConsumerConfig{Name: cc.name})
		if err != nil {
			t.Fatal(err)
		}
		cc.c = c
		open = append(open, cc)
	}
	leave := func(i int) {
		cc := open[i]
		open = slices.Delete(open, i, i+1)
		for _, p := range cc.unacked {
			holders[keyOf[int64(p.Entry)]][cc]--
		}
		cc.s.markClosed()
		cc.c.Close()
	}
	ack := func(cc *churnConsumer, n int) {
		var ps []base.Position
		for j := 0; j < n && len(cc.unacked) > 0; j++ {
			i := rng.IntN(len(cc.unacked))
			p := cc.unacked[i]
			cc.unacked = slices.Delete(cc.unacked, i, i+1)
			holders[keyOf[int64(p.Entry)]][cc]--
			acks[int64(p.Entry)]++
			ps = append(ps, p)
		}
		if err := cc.c.Ack(ps...); err != nil {
			t.Fatal(err)
		}
	}
	add := func(n int) {
		ks := make([]int, n)
		for i := range ks {
			ks[i] = rng.IntN(nkeys)
			keyOf[total+int64(i)] = ks[i]
		}
		first := total
		total += int64(n)
		f.addEntries(n, func(i int) entrySpec {
			return entrySpec{key: fmt.Sprintf("key-%d", ks[i-int(first)]), msgs: int32(rng.IntN(3))}
		})
	}

	join()
	join()
	for step := 0; step < steps && !t.Failed(); step++ {
		switch r := rng.IntN(100); {
		case r < 35:
			add(1 + rng.IntN(4))
		case r < 55:
			if len(open) > 0 {
				open[rng.IntN(len(open))].c.Flow(uint32(1 + rng.IntN(12)))
			}
		case r < 85:
			if len(open) > 0 {
				cc := open[rng.IntN(len(open))]
				ack(cc, rng.IntN(len(cc.unacked)+1))
			}
		case r < 92:
			if len(open) < 6 {
				join()
			}
		default:
			if len(open) > 0 {
				leave(rng.IntN(len(open)))
			}
		}
	}
	// Drain: every remaining consumer gets permits and acks all it gets.
	if len(open) == 0 {
		join()
	}
	for round := 0; !f.cursor.allAcked() && !t.Failed(); round++ {
		if round > 10000 {
			st := f.d.Stats()
			t.Fatalf("seed %d: stuck: %d of %d entries first-delivered, stats %+v", seed, len(firstSeen), total, st)
		}
		for _, cc := range open {
			cc.c.Flow(50)
			ack(cc, len(cc.unacked))
		}
	}
	if t.Failed() {
		return
	}
	if int64(len(firstSeen)) != total {
		t.Fatalf("seed %d: %d of %d entries delivered", seed, len(firstSeen), total)
	}
	for e := int64(0); e < total; e++ {
		if acks[e] != 1 {
			t.Fatalf("seed %d: entry %d acked %d times", seed, e, acks[e])
		}
	}
	if st := f.d.Stats(); st.PendingEntries != 0 || st.ReplayEntries != 0 {
		t.Fatalf("seed %d: left over %+v", seed, st)
	}
}

// TestKeySharedConcurrent runs the dispatcher with callbacks on other
// goroutines, replay reads on their own goroutine, and consumers that flow
// and ack from their own goroutines, under the race detector: every entry
// is delivered, each key's first deliveries come in order, and everything
// is acknowledged exactly once.
func TestKeySharedConcurrent(t *testing.T) {
	for _, typ := range []SubscriptionType{Shared, KeyShared} {
		t.Run(typ.String(), func(t *testing.T) { runConcurrent(t, typ) })
	}
}

func runConcurrent(t *testing.T, typ SubscriptionType) {
	const nkeys, n, nconsumers = 16, 2000, 4
	f := newFixture(t, Options{Type: typ, MaxReadBatchSize: 16, goAsync: func(fn func()) { go fn() }})
	f.cursor.async = true

	var mu sync.Mutex // guards the order log
	firstSeen := map[int64]bool{}
	lastFirst := make([]int64, nkeys)
	for i := range lastFirst {
		lastFirst[i] = -1
	}
	var orderErr error
	acked := make(chan base.Position, n*2)
	type consumer struct {
		c    *Consumer
		s    *recSink
		in   chan []base.Position
		done chan struct{}
	}
	var cs []*consumer
	for i := 0; i < nconsumers; i++ {
		x := &consumer{s: newRecSink(t, fmt.Sprintf("c%d", i)), in: make(chan []base.Position, 1024), done: make(chan struct{})}
		x.s.onDeliver = func(batch []Delivery) {
			ps := make([]base.Position, len(batch))
			mu.Lock()
			for j, dl := range batch {
				ps[j] = dl.Pos
				e := int64(dl.Pos.Entry)
				k := int(e % nkeys)
				if !firstSeen[e] {
					firstSeen[e] = true
					if typ == KeyShared && e <= lastFirst[k] && orderErr == nil {
						orderErr = fmt.Errorf("first delivery of %d (key %d) after %d", e, k, lastFirst[k])
					}
					lastFirst[k] = max(lastFirst[k], e)
				}
			}
			mu.Unlock()
			x.in <- ps
		}
		c, err := f.d.AddConsumer(x.s, ConsumerConfig{Name: x.s.name})
		if err != nil {
			t.Fatal(err)
		}
		x.c = c
		cs = append(cs, x)
	}
	// Each consumer's goroutine acks what it gets (sometimes asking for a
	// redelivery instead) and returns the permits.
	for i, x := range cs {
		go func() {
			defer close(x.done)
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			x.c.Flow(20)
			for ps := range x.in {
				if rng.IntN(10) == 0 {
					x.c.RedeliverUnacknowledged(ps[:1])
					ps = ps[1:]
				}
				if err := x.c.Ack(ps...); err != nil {
					t.Error(err)
				}
				for _, p := range ps {
					acked <- p
				}
				x.c.Flow(uint32(len(ps) + 1))
			}
		}()
	}
	go func() {
		for i := 0; i < n; i += 10 {
			f.addEntries(10, func(j int) entrySpec { return entrySpec{key: fmt.Sprintf("key-%d", j%nkeys)} })
		}
	}()
	seen := map[base.Position]int{}
	deadline := time.After(60 * time.Second)
	for len(seen) < n {
		select {
		case p := <-acked:
			seen[p]++
		case <-deadline:
			mu.Lock()
			delivered := len(firstSeen)
			mu.Unlock()
			t.Fatalf("stuck: %d of %d acknowledged, %d delivered, stats %+v", len(seen), n, delivered, f.d.Stats())
		}
	}
	for _, x := range cs {
		x.c.Close()
	}
	f.d.Close()
	for _, x := range cs {
		close(x.in)
		<-x.done
	}
	mu.Lock()
	defer mu.Unlock()
	if orderErr != nil {
		t.Fatal(orderErr)
	}
	for p, k := range seen {
		if k != 1 {
			t.Fatalf("%v acked %d times", p, k)
		}
	}
	if !f.cursor.allAcked() {
		t.Fatal("cursor not fully acknowledged")
	}
}
