//go:build invariants

package dispatcher

import "testing"

// Under the invariants tag the buffer pool poisons released buffers: a
// second release of a delivered entry panics however the memory was reused.
func TestDoubleReleasePanics(t *testing.T) {
	f := newFixture(t, Options{Type: Shared})
	c, s := f.consumer("a", ConsumerConfig{})
	s.hold = true
	c.Flow(10)
	f.addEntries(1, nil)
	s.mu.Lock()
	b := s.held[0]
	s.held = nil
	s.mu.Unlock()
	b.Release() // the sink's reference
	f.cursor.release()
	// The last reference is gone; the memory may be handed out again.
	reuse := f.pool.Get(b.Len())
	defer reuse.Release()
	defer func() {
		if recover() == nil {
			t.Fatal("double release did not panic")
		}
	}()
	b.Release()
}
