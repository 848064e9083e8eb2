//go:build invariants

package bufs

import "testing"

const invariantsEnabled = true

// TestStaleReleaseAfterReuse is the case plain reference counting cannot
// see: a holder releases twice, and between its releases the memory went to
// a new holder. Under invariants the stale Release panics and the new
// holder's buffer is untouched.
func TestStaleReleaseAfterReuse(t *testing.T) {
	p := NewPool()
	stale := p.Get(100)
	stale.Release()
	fresh := p.Get(100) // very likely the same memory, never the same header
	defer fresh.Release()
	mustPanic(t, "stale Release", stale.Release)
	mustPanic(t, "stale Retain", func() { stale.Retain() })
	if fresh.Refs() != 1 {
		t.Fatalf("the new holder's count changed to %d", fresh.Refs())
	}
	if stale.Bytes() != nil {
		t.Fatal("a released header still exposes the memory")
	}
}

func TestReleaseOfUntrackedPanics(t *testing.T) {
	p := NewPool()
	b := p.Get(10)
	// A header that never came from Get (a copy of a live one) is refused.
	forged := &Buf{b: b.b, class: b.class, pool: p}
	forged.refs.Store(1)
	mustPanic(t, "release of a forged header", forged.Release)
	b.Release()
}
