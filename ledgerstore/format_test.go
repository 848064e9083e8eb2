package ledgerstore

import (
	"math/rand/v2"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/record"
)

func TestLedgerIndex(t *testing.T) {
	li := newLedgerIndex()
	want := map[base.EntryID]slot{}
	rng := rand.New(rand.NewPCG(1, 2))
	// Sparse, out of order, across pages, below the first page, overwrites.
	for i := 0; i < 20000; i++ {
		e := base.EntryID(5000 + rng.IntN(30000) - 2000*(i%3))
		s := slot{log: uint32(1 + rng.IntN(9)), off: uint32(i), size: uint32(33 + i%7)}
		li.set(e, s)
		want[e] = s
	}
	if li.count != len(want) {
		t.Fatalf("count %d, want %d", li.count, len(want))
	}
	var last base.EntryID = -1
	for e, s := range want {
		got, ok := li.get(e)
		if !ok || got != s {
			t.Fatalf("get(%d) = %v %v, want %v", e, got, ok, s)
		}
		last = max(last, e)
	}
	if li.last != last {
		t.Fatalf("last %d, want %d", li.last, last)
	}
	for _, e := range []base.EntryID{-1, 0, 999, last + 1, last + 100000} {
		if _, ok := want[e]; ok {
			continue
		}
		if _, ok := li.get(e); ok {
			t.Fatalf("get(%d) found a hole", e)
		}
	}
	n := 0
	prev := base.EntryID(-1 << 62)
	li.each(func(e base.EntryID, s slot) bool {
		if e <= prev || want[e] != s {
			t.Fatalf("each: %d after %d", e, prev)
		}
		prev = e
		n++
		return true
	})
	if n != len(want) {
		t.Fatalf("each visited %d of %d", n, len(want))
	}
	from := base.EntryID(20000)
	li.from(from, func(e base.EntryID, s slot) bool {
		if e < from {
			t.Fatalf("from(%d) gave %d", from, e)
		}
		from = e + 1
		return true
	})
}

func TestPartIndexRoundTrip(t *testing.T) {
	var entries []writtenEntry
	off := uint32(record.FileHeaderSize)
	add := func(seq uint64, l base.LedgerID, e base.EntryID, n int) {
		entries = append(entries, writtenEntry{seq: seq, ledger: l, entry: e, off: off, size: uint32(record.HeaderSize + n)})
		off += uint32(record.HeaderSize + n)
	}
	for e := base.EntryID(0); e < 10; e++ {
		add(7, 1, e, int(e)*100)
	}
	add(7, 1, 12, 5) // a hole: same run (entry ids may skip)
	add(7, 2, 0, 0)  // empty payload
	add(3, 2, 1, 9)  // another sequence: a new run
	add(3, -4, 1<<40, 1<<20)
	p := appendPartIndex(nil, int64(off), entries)
	dataEnd, runs, err := decodePartIndex(p, 9, nil)
	if err != nil || dataEnd != int64(off) {
		t.Fatalf("decode: %v, end %d want %d", err, dataEnd, off)
	}
	var got []writtenEntry
	for _, r := range runs {
		r.each(func(e base.EntryID, o, size uint32) {
			got = append(got, writtenEntry{seq: r.seq, ledger: r.ledger, entry: e, off: o, size: size})
		})
	}
	if len(runs) != 4 || len(got) != len(entries) {
		t.Fatalf("%d runs, %d entries", len(runs), len(got))
	}
	for i := range got {
		if got[i] != entries[i] {
			t.Fatalf("entry %d: %+v, want %+v", i, got[i], entries[i])
		}
	}
	// Every truncation fails cleanly.
	for n := 0; n < len(p); n++ {
		if _, _, err := decodePartIndex(p[:n], 9, nil); err == nil {
			t.Fatalf("truncated to %d bytes: decoded", n)
		}
	}
}

func FuzzDecodePartIndex(f *testing.F) {
	f.Add(appendPartIndex(nil, 200, []writtenEntry{{seq: 1, ledger: 1, entry: 0, off: 64, size: 40}, {seq: 1, ledger: 1, entry: 1, off: 104, size: 40}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		end, runs, err := decodePartIndex(p, 1, nil)
		if err != nil {
			return
		}
		for _, r := range runs {
			r.each(func(e base.EntryID, off, size uint32) {
				if int64(off)+int64(size) > end || e < 0 || size < record.HeaderSize {
					t.Fatalf("decoded entry %d at %d+%d past the data end %d", e, off, size, end)
				}
			})
		}
	})
}

func FuzzCatalogBatch(f *testing.F) {
	var m metaTable
	m.init()
	m.mu.ledgers[3] = &ledgerMeta{fenced: true, masterKey: []byte("k"), lac: []byte{1}}
	m.mu.deleted[4] = 9
	f.Add(m.appendSubLocked(m.appendSubLocked(nil, 3), 4))
	f.Fuzz(func(t *testing.T, p []byte) {
		var m metaTable
		m.init()
		_ = m.applyBatch(p) // must not panic
	})
}
