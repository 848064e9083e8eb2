package dispatcher

import (
	"slices"
	"testing"
)

// The fixture checks at the end of every test that all buffers went back to
// the pool; these tests drive the paths where the dispatcher itself must
// release an entry.

func TestLeakReadCompletesAfterActiveLeft(t *testing.T) {
	f := newFixture(t, Options{Type: Failover})
	c, s := f.consumer("a", ConsumerConfig{})
	c.Flow(10)
	f.cursor.hold = true
	f.addEntries(3, nil)
	c.Close()
	s.markClosed()
	f.cursor.flush() // the read for a completes now: nobody to take it
	c2, s2 := f.consumer("b", ConsumerConfig{})
	c2.Flow(10)
	if got := s2.positions(); !slices.Equal(got, []int64{0, 1, 2}) {
		t.Fatalf("b got %v", got)
	}
}

func TestLeakReadCompletesAfterClose(t *testing.T) {
	for _, typ := range []SubscriptionType{Exclusive, Shared} {
		t.Run(typ.String(), func(t *testing.T) {
			f := newFixture(t, Options{Type: typ})
			c, s := f.consumer("a", ConsumerConfig{})
			c.Flow(10)
			f.cursor.hold = true
			f.addEntries(3, nil)
			s.markClosed()
			// The read cannot be cancelled (it is completing): Close
			// waits for it, so that another reader may take the cursor
			// once Close returns, and releases what it brings.
			f.cursor.cancelled = make(chan bool, 1)
			closed := make(chan struct{})
			go func() { f.d.Close(); close(closed) }()
			if <-f.cursor.cancelled {
				t.Fatal("a completing read was cancelled")
			}
			select {
			case <-closed:
				t.Fatal("Close returned before the read it could not cancel came back")
			default:
			}
			f.cursor.flush()
			<-closed
		})
	}
}

func TestLeakReplayArrivesForRemovedConsumer(t *testing.T) {
	var replays []func()
	f := newFixture(t, Options{Type: Shared, goAsync: func(fn func()) { replays = append(replays, fn) }})
	ca, sa := f.consumer("a", ConsumerConfig{})
	cb, sb := f.consumer("b", ConsumerConfig{})
	ca.Flow(10)
	f.addEntries(3, nil)
	ca.Close() // a's 3 entries wait for b
	sa.markClosed()
	cb.Flow(10) // replay read reserved for b, not yet run
	if len(replays) != 1 {
		t.Fatalf("%d replay reads started", len(replays))
	}
	cb.Close()
	sb.markClosed()
	replays[0]() // arrives for a consumer that left: released, entries wait again
	cc, sc := f.consumer("c", ConsumerConfig{})
	cc.Flow(10)
	for len(replays) > 1 {
		fn := replays[1]
		replays = replays[1:]
		fn()
	}
	if got := sc.positions(); !slices.Equal(got, []int64{0, 1, 2}) {
		t.Fatalf("c got %v", got)
	}
	if g := sc.deliveries(); g[0].redeliveries != 1 {
		t.Fatalf("count %d", g[0].redeliveries)
	}
}

func TestLeakHeldBySinks(t *testing.T) {
	// Two subscriptions deliver the same entries; each delivery owns one
	// reference, whatever the sinks do with them.
	f := newFixture(t, Options{Type: Shared})
	f.addEntries(2, nil)
	other := newFakeCursor(t)
	f.cursor.mu.Lock()
	for _, b := range f.cursor.log {
		other.log = append(other.log, b.Retain())
	}
	f.cursor.mu.Unlock()
	d2, err := New(other, Options{Type: Exclusive, afterFunc: f.clock.afterFunc})
	if err != nil {
		t.Fatal(err)
	}
	c1, s1 := f.consumer("a", ConsumerConfig{})
	s2 := newRecSink(t, "b")
	c2, err := d2.AddConsumer(s2, ConsumerConfig{Name: "b"})
	if err != nil {
		t.Fatal(err)
	}
	s1.hold, s2.hold = true, true
	c1.Flow(10)
	c2.Flow(10)
	f.cursor.mu.Lock()
	log := slices.Clone(f.cursor.log)
	f.cursor.mu.Unlock()
	for i, b := range log {
		if b.Refs() != 4 { // two cursors' logs, two sinks
			t.Fatalf("entry %d has %d references, want 4", i, b.Refs())
		}
	}
	// Zero copy: the sinks got the stored bytes themselves.
	s1.mu.Lock()
	for i, b := range s1.held {
		if &b.Bytes()[0] != &log[i].Bytes()[0] {
			t.Fatalf("delivery %d is not the stored buffer", i)
		}
	}
	s1.mu.Unlock()
	s1.releaseHeld()
	s2.releaseHeld()
	d2.Close()
	other.release()
	for i, b := range log {
		if b.Refs() != 1 {
			t.Fatalf("entry %d has %d references after the sinks and the second cursor let go, want 1", i, b.Refs())
		}
	}
}
