package bufs

import (
	"fmt"
	"sync"
	"testing"
)

func TestClassSizing(t *testing.T) {
	cases := []struct {
		n       int
		wantCap int // 0: not pooled, cap == n
	}{
		{0, 256},
		{1, 256},
		{256, 256},
		{257, 512},
		{4095, 4096},
		{4096, 4096},
		{4097, 8192},
		{1 << 20, 1 << 20},
		{1<<20 + 1, 2 << 20},
		{4 << 20, 4 << 20},
		{4<<20 + 1, 0},
		{16 << 20, 0},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint("n=", c.n), func(t *testing.T) {
			p := NewPool()
			b := p.Get(c.n)
			defer b.Release()
			if b.Len() != c.n || len(b.Bytes()) != c.n {
				t.Fatalf("Len %d, len(Bytes) %d, want %d", b.Len(), len(b.Bytes()), c.n)
			}
			want, pooled := c.wantCap, true
			if want == 0 {
				want, pooled = c.n, false
			}
			if cap(b.Bytes()) != want {
				t.Fatalf("cap %d, want %d", cap(b.Bytes()), want)
			}
			if got := b.class >= 0; got != pooled {
				t.Fatalf("pooled %v, want %v", got, pooled)
			}
		})
	}
}

// TestPoolReuse checks that a released buffer's memory comes back, at full
// class length, for a later request of the same class.
func TestPoolReuse(t *testing.T) {
	p := NewPool()
	b := p.Get(1000)
	mem := &b.Bytes()[:1][0]
	b.Release()
	// sync.Pool may drop items (always under -race, sometimes after a GC),
	// so look for the reuse over a few tries instead of once.
	reused := false
	for range 100 {
		c := p.Get(600)
		if c.Len() != 600 || cap(c.Bytes()) != 1024 {
			t.Fatalf("Len %d cap %d", c.Len(), cap(c.Bytes()))
		}
		reused = reused || &c.Bytes()[:1][0] == mem
		c.Release()
	}
	if !reused && !raceEnabled {
		t.Fatal("released memory never came back from the pool")
	}
}

func TestRefcount(t *testing.T) {
	p := NewPool()
	b := p.Get(10)
	if b.Refs() != 1 || p.LiveBuffers() != 1 {
		t.Fatalf("after Get: refs %d live %d", b.Refs(), p.LiveBuffers())
	}
	if b.Retain() != b {
		t.Fatal("Retain returned another buffer")
	}
	b.Retain()
	if b.Refs() != 3 {
		t.Fatalf("after two Retains: refs %d", b.Refs())
	}
	b.Release()
	b.Release()
	if b.Refs() != 1 || p.LiveBuffers() != 1 {
		t.Fatalf("after two Releases: refs %d live %d", b.Refs(), p.LiveBuffers())
	}
	b.Release()
	if p.LiveBuffers() != 0 {
		t.Fatalf("after the last Release: live %d", p.LiveBuffers())
	}
}

func TestRefcountConcurrent(t *testing.T) {
	p := NewPool()
	b := p.Get(100)
	const holders = 16
	var wg sync.WaitGroup
	for range holders {
		b.Retain()
		wg.Go(func() {
			_ = b.Bytes()[0]
			b.Release()
		})
	}
	wg.Wait()
	if b.Refs() != 1 || p.LiveBuffers() != 1 {
		t.Fatalf("refs %d live %d after concurrent holders", b.Refs(), p.LiveBuffers())
	}
	b.Release()
	if p.LiveBuffers() != 0 {
		t.Fatalf("live %d", p.LiveBuffers())
	}
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Fatalf("%s did not panic", what)
		}
	}()
	f()
}

func TestMisusePanics(t *testing.T) {
	p := NewPool()
	cases := []struct {
		name string
		f    func()
	}{
		{"double release", func() {
			b := p.Get(10)
			b.Release()
			b.Release()
		}},
		{"double release of an unpooled size", func() {
			b := p.Get(8 << 20)
			b.Release()
			b.Release()
		}},
		{"double release of wrapped memory", func() {
			b := Wrap([]byte("x"))
			b.Release()
			b.Release()
		}},
		{"retain after release", func() {
			b := p.Get(10)
			b.Release()
			b.Retain()
		}},
		{"SetLen beyond capacity", func() {
			b := p.Get(10)
			defer b.Release()
			b.SetLen(257)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { mustPanic(t, c.name, c.f) })
	}
}

func TestSetLen(t *testing.T) {
	b := NewPool().Get(10)
	defer b.Release()
	b.SetLen(256)
	if b.Len() != 256 {
		t.Fatalf("Len %d after SetLen(256)", b.Len())
	}
	b.SetLen(0)
	if b.Len() != 0 {
		t.Fatalf("Len %d after SetLen(0)", b.Len())
	}
}

func TestLiveBuffersCountsLeaks(t *testing.T) {
	p := NewPool()
	var held []*Buf
	for i := range 10 {
		held = append(held, p.Get(100*i+1))
	}
	big := p.Get(5 << 20) // unpooled sizes are counted too
	for _, b := range held[:7] {
		b.Release()
	}
	if got := p.LiveBuffers(); got != 4 {
		t.Fatalf("LiveBuffers = %d, want 4 (3 small, 1 big)", got)
	}
	big.Release()
	for _, b := range held[7:] {
		b.Release()
	}
	if got := p.LiveBuffers(); got != 0 {
		t.Fatalf("LiveBuffers = %d after releasing everything", got)
	}
	// Pools are independent.
	q := NewPool()
	x := q.Get(1)
	if p.LiveBuffers() != 0 || q.LiveBuffers() != 1 {
		t.Fatalf("live p %d q %d", p.LiveBuffers(), q.LiveBuffers())
	}
	x.Release()
}

func TestWrap(t *testing.T) {
	mem := []byte("constant")
	b := Wrap(mem)
	if string(b.Bytes()) != "constant" || b.Refs() != 1 {
		t.Fatalf("Wrap: %q refs %d", b.Bytes(), b.Refs())
	}
	b.Retain()
	b.Release()
	b.Release() // the last release of wrapped memory neither panics nor recycles it
	if string(mem) != "constant" {
		t.Fatalf("wrapped memory changed to %q", mem)
	}
	if Default.LiveBuffers() < 0 {
		t.Fatal("releasing wrapped memory took the Default pool's count negative")
	}
}

// TestGetReleaseAllocs holds Get and Release to zero allocations per pair
// once the pool is warm (sync.Pool drops items at random under -race, and
// the invariants tag allocates headers on purpose, so both are skipped).
func TestGetReleaseAllocs(t *testing.T) {
	if raceEnabled || invariantsEnabled {
		t.Skip("allocation counts are only meaningful without -race and invariants")
	}
	p := NewPool()
	p.Get(4096).Release()
	if n := testing.AllocsPerRun(1000, func() {
		b := p.Get(4096)
		b.Retain()
		b.Release()
		b.Release()
	}); n != 0 {
		t.Fatalf("%v allocations per Get/Retain/Release/Release", n)
	}
}

func BenchmarkBufsGetRelease(b *testing.B) {
	for _, size := range []int{64, 4 << 10, 64 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("size=%s", sizeName(size)), func(b *testing.B) {
			p := NewPool()
			p.Get(size).Release()
			b.ReportAllocs()
			for b.Loop() {
				buf := p.Get(size)
				buf.Release()
			}
		})
	}
	b.Run("size=4KiB/parallel", func(b *testing.B) {
		p := NewPool()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				buf := p.Get(4 << 10)
				buf.Retain()
				buf.Release()
				buf.Release()
			}
		})
	})
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
