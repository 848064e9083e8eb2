package ledger

import (
	"math/bits"

	"github.com/magnetar/magnetar/internal/base"
)

// addTracker is the pending-add quorum tracker of a write handle: a state
// machine without I/O or locks (its owner locks), so tests can script it.
//
// It holds the adds pushed but not yet confirmed, entries lac+1 ..
// lastPushed, each with the set of ensemble indexes that acknowledged it.
// An entry is confirmed when at least A members of its write set
// acknowledged it and every earlier entry is confirmed; popReady hands
// confirmed entries out strictly in entry order and advances the LAC.
// While held (an ensemble change is in progress) nothing is confirmed.
// replace forgets the acknowledgements of a replaced ensemble member and
// names the entries to send to its replacement.
type addTracker[T any] struct {
	e, w, a int
	lac     base.EntryID
	ring    []trackedAdd[T] // power-of-two capacity
	head, n int
	hold    bool
}

type trackedAdd[T any] struct {
	entry base.EntryID
	acked uint64 // ensemble indexes that acknowledged
	v     T
}

func newAddTracker[T any](e, w, a int, lac base.EntryID) *addTracker[T] {
	return &addTracker[T]{e: e, w: w, a: a, lac: lac, ring: make([]trackedAdd[T], 16)}
}

// LAC is the last entry confirmed (popped by popReady).
func (t *addTracker[T]) LAC() base.EntryID { return t.lac }

// lastPushed is the last entry pushed.
func (t *addTracker[T]) lastPushed() base.EntryID { return t.lac + base.EntryID(t.n) }

// pending is the number of entries pushed and not popped.
func (t *addTracker[T]) pending() int { return t.n }

// push adds the next entry (lastPushed()+1) with its value and returns
// its id.
func (t *addTracker[T]) push(v T) base.EntryID {
	if t.n == len(t.ring) {
		grown := make([]trackedAdd[T], 2*len(t.ring))
		for i := 0; i < t.n; i++ {
			grown[i] = t.ring[(t.head+i)&(len(t.ring)-1)]
		}
		t.ring, t.head = grown, 0
	}
	e := t.lastPushed() + 1
	t.ring[(t.head+t.n)&(len(t.ring)-1)] = trackedAdd[T]{entry: e, v: v}
	t.n++
	return e
}

// at returns the tracked add of entry e, or nil when e is not pending.
func (t *addTracker[T]) at(e base.EntryID) *trackedAdd[T] {
	if e <= t.lac || e > t.lastPushed() {
		return nil
	}
	return &t.ring[(t.head+int(e-t.lac-1))&(len(t.ring)-1)]
}

// ack records that ensemble index idx acknowledged entry e. It reports
// whether the acknowledgement was new and may make e confirmable; acks
// for entries not pending, or from indexes outside e's write set, are
// ignored.
func (t *addTracker[T]) ack(e base.EntryID, idx int) bool {
	p := t.at(e)
	if p == nil {
		return false
	}
	bit := uint64(1) << idx
	if writeSetMask(e, t.w, t.e)&bit == 0 || p.acked&bit != 0 {
		return false
	}
	p.acked |= bit
	return true
}

// quorate reports whether e has its ack quorum.
func (t *addTracker[T]) quorate(p *trackedAdd[T]) bool {
	return bits.OnesCount64(p.acked&writeSetMask(p.entry, t.w, t.e)) >= t.a
}

// setHold holds (or releases) confirmations.
func (t *addTracker[T]) setHold(h bool) { t.hold = h }

// ready reports whether popReady would pop something.
func (t *addTracker[T]) ready() bool {
	return !t.hold && t.n > 0 && t.quorate(&t.ring[t.head])
}

// popReady pops the confirmed prefix, calling fn for each entry in order,
// and advances the LAC. It pops nothing while held.
func (t *addTracker[T]) popReady(fn func(e base.EntryID, v T)) int {
	popped := 0
	for t.ready() {
		fn(t.popFront())
		popped++
	}
	return popped
}

// popAll pops every pending entry in order, confirmed or not, without
// advancing the LAC past the confirmed ones (for failing them).
func (t *addTracker[T]) popAll(fn func(e base.EntryID, v T)) int {
	popped := 0
	for t.n > 0 {
		p := &t.ring[t.head]
		e, v := p.entry, p.v
		*p = trackedAdd[T]{}
		t.head = (t.head + 1) & (len(t.ring) - 1)
		t.n--
		fn(e, v)
		popped++
	}
	return popped
}

func (t *addTracker[T]) popFront() (base.EntryID, T) {
	p := &t.ring[t.head]
	e, v := p.entry, p.v
	*p = trackedAdd[T]{}
	t.head = (t.head + 1) & (len(t.ring) - 1)
	t.n--
	t.lac = e
	return e, v
}

// replace forgets idx's acknowledgements (its bookie was replaced) and
// calls fn for every pending entry whose write set includes idx: those
// must be sent to the replacement.
func (t *addTracker[T]) replace(idx int, fn func(e base.EntryID, v T)) {
	bit := uint64(1) << idx
	for i := 0; i < t.n; i++ {
		p := &t.ring[(t.head+i)&(len(t.ring)-1)]
		if writeSetMask(p.entry, t.w, t.e)&bit == 0 {
			continue
		}
		p.acked &^= bit
		fn(p.entry, p.v)
	}
}

// each calls fn for every pending entry in order.
func (t *addTracker[T]) each(fn func(e base.EntryID, v T)) {
	for i := 0; i < t.n; i++ {
		p := &t.ring[(t.head+i)&(len(t.ring)-1)]
		fn(p.entry, p.v)
	}
}
