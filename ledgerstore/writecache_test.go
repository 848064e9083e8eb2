package ledgerstore

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/vfs"
)

// versioned is the payload of the v-th add of (l, e): re-adds carry other
// bytes, so a read tells which add won.
func versioned(l base.LedgerID, e base.EntryID, v int) []byte {
	p := payload(l, e, 40)
	p[0] = byte(v)
	return p
}

// TestWriteCacheOrder adds entries of several ledgers in increasing order,
// out of order and again (re-adds), checks that the cache returns the
// latest bytes of each before and after a read sorts a ledger, that the
// flush writes each ledger's entries in (ledger, entry) order with the
// latest bytes, and that every reference the cache took is released.
func TestWriteCacheOrder(t *testing.T) {
	pool := bufs.NewPool()
	opts := testOptions(vfs.NewMem(), "/d")
	opts.WriteCacheMaxBytes = 4 << 20 // one segment holds everything
	s := mustOpen(t, opts)
	defer s.Close()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))

	type key = entryKey
	want := map[key]int{} // the version that must win
	version := map[key]int{}
	addV := func(l base.LedgerID, e base.EntryID) {
		k := key{l, e}
		version[k]++
		p := versioned(l, e, version[k])
		b := pool.Get(len(p))
		copy(b.Bytes(), p)
		if err := s.AddEntry(ctx, l, e, b); err != nil {
			t.Fatalf("AddEntry(%d, %d): %v", l, e, err)
		}
		b.Release()
		want[k] = version[k]
	}
	check := func(stage string) {
		t.Helper()
		for k, v := range want {
			b, err := s.ReadEntry(ctx, k.ledger, k.entry)
			if err != nil {
				t.Fatalf("%s: ReadEntry(%d, %d): %v", stage, k.ledger, k.entry, err)
			}
			if !bytes.Equal(b.Bytes(), versioned(k.ledger, k.entry, v)) {
				t.Fatalf("%s: ReadEntry(%d, %d): not the bytes of add %d (first byte %d)", stage, k.ledger, k.entry, v, b.Bytes()[0])
			}
			b.Release()
		}
		for _, l := range []base.LedgerID{1, 2, 3} {
			var last base.EntryID = -1
			for k := range want {
				if k.ledger == l {
					last = max(last, k.entry)
				}
			}
			if got, err := s.LastEntry(l); err != nil || got != last {
				t.Fatalf("%s: LastEntry(%d) = %d, %v; want %d", stage, l, got, err, last)
			}
		}
	}

	// Ledger 1 in order, ledger 2 in order then re-added in the middle
	// (stays sorted), ledger 3 shuffled with duplicates; adds interleaved.
	var l3 []base.EntryID
	for e := range base.EntryID(200) {
		l3 = append(l3, e, e)
	}
	rng.Shuffle(len(l3), func(i, j int) { l3[i], l3[j] = l3[j], l3[i] })
	for i := range base.EntryID(200) {
		addV(1, i)
		addV(2, i)
		addV(3, l3[2*i])
		if i%50 == 49 {
			addV(2, i-10) // re-add below the last: replaced in place
		}
	}
	check("half added")
	for i := range base.EntryID(200) {
		addV(3, l3[200*2-1-int(i)]) // the rest, after a read sorted ledger 3
		addV(1, 200+i)
	}
	addV(1, 5) // out of order after sorted adds
	addV(1, 5)
	check("all added")
	flush(t, s)
	if _, n, _ := s.wc.usage(); n != 0 {
		t.Fatalf("write cache holds %d entries after the flush", n)
	}
	check("flushed")

	// The flush wrote each ledger's entries in increasing order, ledgers in
	// id order, back to back in one log.
	s.state.RLock()
	var prev slot
	for _, l := range []base.LedgerID{1, 2, 3} {
		li := s.state.ledgers[l]
		li.each(func(e base.EntryID, sl slot) bool {
			if !prev.empty() && (sl.log != prev.log || sl.off != prev.off+prev.size) {
				t.Errorf("%d:%d at log %d offset %d, not right after the previous record (log %d offset %d)",
					l, e, sl.log, sl.off, prev.log, prev.off)
			}
			prev = sl
			return true
		})
	}
	s.state.RUnlock()

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := pool.LiveBuffers(); n != 0 {
		t.Fatalf("%d payload buffers still referenced after Close", n)
	}
}

// TestWriteCacheAddAllocs: an add to a warm write cache allocates nothing.
func TestWriteCacheAddAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	s := mustOpen(t, testOptions(vfs.NewMem(), "/d"))
	defer s.Close()
	ctx := context.Background()
	b := bufs.Wrap(payload(1, 0, 100))
	var e base.EntryID
	for range 10000 { // warm: segments, slices and maps at their size
		if err := s.AddEntry(ctx, 1, e, b); err != nil {
			t.Fatal(err)
		}
		e++
	}
	flush(t, s)
	allocs := testing.AllocsPerRun(200, func() {
		if err := s.AddEntry(ctx, 1, e, b); err != nil {
			t.Fatal(err)
		}
		e++
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per add", allocs)
	}
}

// TestReadCacheRing fills the read cache past its bound several times:
// it holds at most its bound, the newest entries stay, the oldest go, a
// re-put replaces an entry, and every buffer is released in the end.
func TestReadCacheRing(t *testing.T) {
	pool := bufs.NewPool()
	var rc readCache
	rc.init(4 * 64 * (1024 + entryOverhead)) // 64 entries of 1 KiB per segment
	get := func(l base.LedgerID, e base.EntryID) *bufs.Buf {
		b := pool.Get(1024)
		b.Bytes()[0] = byte(e)
		return b
	}
	const n = 1000
	for e := range base.EntryID(n) {
		rc.put(entryKey{1, e}, get(1, e))
		if rc.usage() > 4*rc.segBytes {
			t.Fatalf("read cache holds %d bytes, bound %d", rc.usage(), 4*rc.segBytes)
		}
	}
	for e := base.EntryID(n - 64); e < n; e++ {
		b := rc.get(entryKey{1, e})
		if b == nil || b.Bytes()[0] != byte(e) {
			t.Fatalf("entry %d: not cached", e)
		}
		b.Release()
	}
	if rc.has(entryKey{1, 0}) || rc.has(entryKey{1, n - 4*64 - 1}) {
		t.Fatal("the oldest entries were not evicted")
	}
	out, got, _ := rc.getRun(1, n-10, 100, 1<<20, 0, nil)
	if got != 10 || len(out) != 10 {
		t.Fatalf("getRun: %d entries", got)
	}
	releaseAll(out)
	r := get(1, n-1)
	r.Bytes()[0] = 42
	rc.put(entryKey{1, n - 1}, r) // replaces the cached one
	if b := rc.get(entryKey{1, n - 1}); b == nil || b.Bytes()[0] != 42 {
		t.Fatal("re-put did not replace the entry")
	} else {
		b.Release()
	}
	rc.releaseAll()
	if live := pool.LiveBuffers(); live != 0 {
		t.Fatalf("%d buffers still referenced", live)
	}
}
