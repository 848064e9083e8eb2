//go:build invariants

package bufs

import "sync"

// Under the invariants tag every pooled buffer handed out is recorded, and a
// released header is never reused: recycle poisons it and gives the pool a
// fresh header for the same memory. A stale pointer's Release then takes
// the poisoned count below zero and panics, however often the memory was
// reused since.
var tracked sync.Map // *Buf -> struct{}

// poisoned is the reference count of a released header: far enough below
// zero that no number of stray Retains brings it back to life.
const poisoned = -1 << 30

func trackGet(b *Buf) { tracked.Store(b, struct{}{}) }

func trackRelease(b *Buf) {
	if _, ok := tracked.LoadAndDelete(b); !ok {
		panic("bufs: release of a buffer that is not outstanding")
	}
}

func recycle(b *Buf) *Buf {
	fresh := &Buf{b: b.b, class: b.class, pool: b.pool}
	b.b = nil
	b.refs.Store(poisoned)
	return fresh
}

// poisonViews: under invariants released view headers are never reused, so a
// stale view's second Release panics.
const poisonViews = true
