// Package bufs owns Magnetar's payload memory: size-classed pools of
// reference-counted buffers, and write vectors that send many of them in one
// vectored write.
//
// Ownership rule: a *Buf has a reference count. Whoever holds a reference
// either passes it on (and stops touching the Buf) or calls Release exactly
// once. Retain adds a reference for a second holder (a consumer's pending
// delivery, the entry cache, the write cache). When the count reaches zero the
// memory returns to its pool. A release that takes the count below zero
// panics. Under the `invariants` build tag a released Buf is poisoned rather
// than recycled (the pool gets a fresh header for the same memory), so a
// stale holder's Release or Retain panics even after the memory was handed
// out again, and its Bytes is nil. LiveBuffers counts what is outstanding so
// tests can check for leaks.
package bufs

import (
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
)

// Size classes are powers of two from MinClass to MaxClass. Larger requests
// are allocated directly and not pooled, so a pool never pins huge arrays.
const (
	MinClassShift = 8  // 256 B
	MaxClassShift = 22 // 4 MiB
	numClasses    = MaxClassShift - MinClassShift + 1
)

// Buf is a reference-counted byte buffer.
type Buf struct {
	b      []byte // len is the requested length; cap is the class size
	refs   atomic.Int32
	class  int8 // -1: not pooled
	pool   *Pool
	parent *Buf // set for a view: the buffer whose memory it shares
}

// Pool is a set of size-classed buffer pools. The zero value is not usable;
// use NewPool or the package's Default.
type Pool struct {
	classes [numClasses]sync.Pool
	live    atomic.Int64
}

// NewPool makes an empty pool.
func NewPool() *Pool {
	p := &Pool{}
	for i := range p.classes {
		size := 1 << (i + MinClassShift)
		p.classes[i].New = func() any {
			return &Buf{b: make([]byte, size), class: int8(i), pool: p}
		}
	}
	return p
}

// Default is the process-wide pool.
var Default = NewPool()

// Get returns a buffer of length n with one reference. Its contents are not
// zeroed.
func (p *Pool) Get(n int) *Buf {
	c := classOf(n)
	var b *Buf
	if c < 0 {
		b = &Buf{b: make([]byte, n), class: -1, pool: p}
	} else {
		b = p.classes[c].Get().(*Buf)
		b.b = b.b[:n]
	}
	b.refs.Store(1)
	p.live.Add(1)
	trackGet(b)
	return b
}

// Get returns a buffer of length n from the Default pool.
func Get(n int) *Buf { return Default.Get(n) }

// Wrap makes a Buf around memory that did not come from a pool (a test's
// slice, a constant). Releasing it does not recycle b.
func Wrap(b []byte) *Buf {
	buf := &Buf{b: b, class: -1}
	buf.refs.Store(1)
	return buf
}

// LiveBuffers is how many buffers from p have not been released.
func (p *Pool) LiveBuffers() int64 { return p.live.Load() }

func classOf(n int) int {
	if n <= 1<<MinClassShift {
		return 0
	}
	shift := bits.Len(uint(n - 1))
	if shift > MaxClassShift {
		return -1
	}
	return shift - MinClassShift
}

// Bytes is the buffer's content. It must not be used after the holder's
// Release.
func (b *Buf) Bytes() []byte { return b.b }

// Len is the buffer's length.
func (b *Buf) Len() int { return len(b.b) }

// SetLen changes the length within the buffer's capacity (for example after
// reading fewer bytes than reserved).
func (b *Buf) SetLen(n int) {
	if n > cap(b.b) {
		panic(fmt.Sprintf("bufs: SetLen(%d) beyond capacity %d", n, cap(b.b)))
	}
	b.b = b.b[:n]
}

// Refs is the current reference count (for tests and invariant checks).
func (b *Buf) Refs() int32 { return b.refs.Load() }

// Retain adds a reference and returns b.
func (b *Buf) Retain() *Buf {
	if n := b.refs.Add(1); n <= 1 {
		panic(fmt.Sprintf("bufs: Retain of a released buffer (refs now %d)", n))
	}
	return b
}

// Release drops a reference; the last one returns the memory to its pool.
func (b *Buf) Release() {
	n := b.refs.Add(-1)
	if n > 0 {
		return
	}
	if n < 0 {
		panic("bufs: Release of a buffer with no references (double release)")
	}
	if parent := b.parent; parent != nil {
		releaseView(b)
		parent.Release()
		return
	}
	p := b.pool
	if p == nil {
		return // Wrap'd memory: neither counted nor tracked
	}
	trackRelease(b)
	p.live.Add(-1)
	class := b.class
	b = recycle(b) // under invariants a fresh header; the old one is poisoned
	if class >= 0 {
		b.b = b.b[:cap(b.b)]
		p.classes[class].Put(b)
	}
}

// views recycles view headers.
var views = sync.Pool{New: func() any { return new(Buf) }}

// View returns a buffer holding b's bytes [from, to) without copying them,
// with one reference of its own. The view keeps b's memory alive (it holds a
// reference to b) until the view's last Release. A connection that reads
// frames into a large buffer hands out views of the frames' payloads, so
// that the payloads reach their consumers without a copy.
func (b *Buf) View(from, to int) *Buf {
	if from < 0 || to < from || to > len(b.b) {
		panic(fmt.Sprintf("bufs: View(%d, %d) of a %d-byte buffer", from, to, len(b.b)))
	}
	b.Retain()
	v := views.Get().(*Buf)
	v.b = b.b[from:to:to]
	v.class = -1
	v.parent = b
	v.refs.Store(1)
	return v
}

func releaseView(v *Buf) {
	v.b = nil
	v.parent = nil
	if poisonViews {
		v.refs.Store(-1 << 30)
		return
	}
	views.Put(v)
}
