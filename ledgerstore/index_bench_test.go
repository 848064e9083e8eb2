package ledgerstore

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
)

// The location index comparison (see the package comment for the figures
// and the choice). Three structures hold the same (ledger, entry) ->
// (log, offset, size) map, built in flush order:
//
//   - dense: ours, per-ledger paged arrays of 12-byte slots;
//   - map: one Go map keyed by (ledger, entry);
//   - runs: one sorted array per flush, merged into one big sorted array
//     every 8 flushes (a two-level LSM without a WAL: roughly what an
//     embedded LSM keeps per key, minus its block compression).
//
// Layouts, 1M entries each, flushes of 10,000 entries:
//
//   - long: 100 ledgers, each flush carries 100 consecutive entries of each;
//   - interleaved: 100,000 ledgers of 10 entries, one entry of each per flush;
//   - striped: 100 ledgers, the bookie holds 2 entries of every 3
//     (ensemble 3, write quorum 2).

type locIndex interface {
	put(l base.LedgerID, e base.EntryID, s slot)
	get(l base.LedgerID, e base.EntryID) (slot, bool)
	endFlush()
}

type denseIndex map[base.LedgerID]*ledgerIndex

func (d denseIndex) put(l base.LedgerID, e base.EntryID, s slot) {
	li := d[l]
	if li == nil {
		li = newLedgerIndex()
		d[l] = li
	}
	li.set(e, s)
}

func (d denseIndex) get(l base.LedgerID, e base.EntryID) (slot, bool) {
	if li := d[l]; li != nil {
		return li.get(e)
	}
	return slot{}, false
}

func (denseIndex) endFlush() {}

type mapIndex map[entryKey]slot

func (m mapIndex) put(l base.LedgerID, e base.EntryID, s slot) { m[entryKey{l, e}] = s }
func (m mapIndex) get(l base.LedgerID, e base.EntryID) (slot, bool) {
	s, ok := m[entryKey{l, e}]
	return s, ok
}
func (mapIndex) endFlush() {}

type keyedSlot struct {
	k entryKey
	s slot
}

type runsIndex struct {
	pending []keyedSlot
	runs    [][]keyedSlot // newest last
}

func cmpKey(a, b entryKey) int {
	if c := cmp.Compare(a.ledger, b.ledger); c != 0 {
		return c
	}
	return cmp.Compare(a.entry, b.entry)
}

func (r *runsIndex) put(l base.LedgerID, e base.EntryID, s slot) {
	r.pending = append(r.pending, keyedSlot{entryKey{l, e}, s})
}

func (r *runsIndex) endFlush() {
	run := r.pending
	r.pending = nil
	slices.SortFunc(run, func(a, b keyedSlot) int { return cmpKey(a.k, b.k) })
	r.runs = append(r.runs, run)
	if len(r.runs) > 8 {
		n := 0
		for _, x := range r.runs {
			n += len(x)
		}
		merged := make([]keyedSlot, 0, n)
		for _, x := range r.runs {
			merged = append(merged, x...)
		}
		// Stable: for equal keys the newer run (later) wins below.
		slices.SortStableFunc(merged, func(a, b keyedSlot) int { return cmpKey(a.k, b.k) })
		out := merged[:0]
		for i, x := range merged {
			if i+1 < len(merged) && merged[i+1].k == x.k {
				continue
			}
			out = append(out, x)
		}
		r.runs = [][]keyedSlot{slices.Clip(out)}
	}
}

func (r *runsIndex) get(l base.LedgerID, e base.EntryID) (slot, bool) {
	k := entryKey{l, e}
	for i := len(r.runs) - 1; i >= 0; i-- {
		run := r.runs[i]
		j, ok := slices.BinarySearchFunc(run, k, func(a keyedSlot, k entryKey) int { return cmpKey(a.k, k) })
		if ok {
			return run[j].s, true
		}
	}
	return slot{}, false
}

type indexLayout struct {
	name    string
	entries func(yield func(l base.LedgerID, e base.EntryID, flushEnd bool))
}

const benchIndexEntries = 1_000_000

var indexLayouts = []indexLayout{
	{"long", func(yield func(base.LedgerID, base.EntryID, bool)) {
		for f := 0; f < benchIndexEntries/10000; f++ {
			for l := base.LedgerID(1); l <= 100; l++ {
				for i := 0; i < 100; i++ {
					yield(l, base.EntryID(f*100+i), l == 100 && i == 99)
				}
			}
		}
	}},
	{"interleaved", func(yield func(base.LedgerID, base.EntryID, bool)) {
		for e := base.EntryID(0); e < 10; e++ {
			for l := base.LedgerID(1); l <= 100000; l++ {
				yield(l, e, l%10000 == 0)
			}
		}
	}},
	{"striped", func(yield func(base.LedgerID, base.EntryID, bool)) {
		n := 0
		for f := 0; f < benchIndexEntries/10000; f++ {
			for l := base.LedgerID(1); l <= 100; l++ {
				for i := 0; i < 150; i++ {
					e := base.EntryID(f*150 + i)
					if e%3 == base.EntryID(l%3) {
						continue
					}
					n++
					yield(l, e, l == 100 && i == 149)
				}
			}
		}
	}},
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func BenchmarkIndex(b *testing.B) {
	structures := []struct {
		name string
		make func() locIndex
	}{
		{"dense", func() locIndex { return denseIndex{} }},
		{"map", func() locIndex { return mapIndex{} }},
		{"runs", func() locIndex { return &runsIndex{} }},
	}
	for _, layout := range indexLayouts {
		for _, st := range structures {
			b.Run(fmt.Sprintf("layout=%s/structure=%s", layout.name, st.name), func(b *testing.B) {
				before := heapInUse()
				start := time.Now()
				idx := st.make()
				var keys []entryKey
				off := uint32(0)
				layout.entries(func(l base.LedgerID, e base.EntryID, end bool) {
					idx.put(l, e, slot{log: 1 + off>>30, off: off, size: 1056})
					off += 1056
					if end {
						idx.endFlush()
					}
				})
				idx.endFlush()
				build := time.Since(start)
				after := heapInUse()
				layout.entries(func(l base.LedgerID, e base.EntryID, _ bool) {
					keys = append(keys, entryKey{l, e})
				})
				rng := rand.New(rand.NewPCG(1, 2))
				rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					k := keys[i%len(keys)]
					if _, ok := idx.get(k.ledger, k.entry); !ok {
						b.Fatal("missing")
					}
				}
				b.ReportMetric(float64(after-before)/float64(len(keys)), "B/entry")
				b.ReportMetric(float64(build.Nanoseconds())/float64(len(keys)), "build-ns/entry")
				runtime.KeepAlive(idx)
			})
		}
	}
}
