package bufs

import "testing"

func TestViewSharesMemoryAndHoldsParent(t *testing.T) {
	p := NewPool()
	b := p.Get(100)
	for i := range b.Bytes() {
		b.Bytes()[i] = byte(i)
	}
	v := b.View(10, 20)
	if v.Len() != 10 || v.Bytes()[0] != 10 || v.Bytes()[9] != 19 {
		t.Fatalf("view bytes = %v", v.Bytes())
	}
	if b.Refs() != 2 {
		t.Fatalf("parent refs = %d, want 2 (owner + view)", b.Refs())
	}
	b.Release() // the owner lets go; the view keeps the memory
	if p.LiveBuffers() != 1 {
		t.Fatalf("live = %d after owner release, want 1", p.LiveBuffers())
	}
	v.Bytes()[0] = 99 // still ours to touch
	v2 := v.Retain()
	v.Release()
	if p.LiveBuffers() != 1 {
		t.Fatalf("live = %d with a view reference left, want 1", p.LiveBuffers())
	}
	v2.Release()
	if p.LiveBuffers() != 0 {
		t.Fatalf("live = %d after the last view release, want 0", p.LiveBuffers())
	}
}

func TestViewBoundsChecked(t *testing.T) {
	b := Get(8)
	defer b.Release()
	defer func() {
		if recover() == nil {
			t.Fatal("View past the end did not panic")
		}
	}()
	b.View(4, 9)
}
