package loadgen

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// sameDistribution fails unless a and b hold the same counts in every
// bucket.
func sameDistribution(t *testing.T, what string, a, b *hdrhistogram.Histogram) {
	t.Helper()
	if a.TotalCount() != b.TotalCount() || a.Min() != b.Min() || a.Max() != b.Max() || a.Mean() != b.Mean() {
		t.Fatalf("%s: count %d/%d min %d/%d max %d/%d mean %v/%v", what,
			a.TotalCount(), b.TotalCount(), a.Min(), b.Min(), a.Max(), b.Max(), a.Mean(), b.Mean())
	}
	da, db := a.Distribution(), b.Distribution()
	if len(da) != len(db) {
		t.Fatalf("%s: %d buckets vs %d", what, len(da), len(db))
	}
	for i := range da {
		if da[i] != db[i] {
			t.Fatalf("%s: bucket %d: %+v vs %+v", what, i, da[i], db[i])
		}
	}
	if Summarize(a) != Summarize(b) {
		t.Fatalf("%s: percentiles %+v vs %+v", what, Summarize(a), Summarize(b))
	}
}

// latencyValues draws a latency-like mix: mostly tens of microseconds, a
// tail of milliseconds, a few seconds, and out-of-range values.
func latencyValues(seed uint64, n int) []int64 {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]int64, n)
	for i := range out {
		switch r := rng.IntN(1000); {
		case r < 900:
			out[i] = 10_000 + rng.Int64N(90_000)
		case r < 995:
			out[i] = int64(time.Millisecond) + rng.Int64N(int64(50*time.Millisecond))
		case r < 999:
			out[i] = int64(time.Second) + rng.Int64N(int64(20*time.Second))
		default:
			out[i] = []int64{-5, 0, int64(13 * time.Hour)}[rng.IntN(3)]
		}
	}
	return out
}

func TestMergedPerGoroutineHistogramsEqualOne(t *testing.T) {
	const goroutines, perGoroutine = 8, 20000
	values := make([][]int64, goroutines)
	single := NewHistogram()
	singleClamped := 0
	for g := range values {
		values[g] = latencyValues(uint64(g), perGoroutine)
		for _, v := range values[g] {
			if record(single, v) {
				singleClamped++
			}
		}
	}

	// The way Run records: a recorder per goroutine, recording
	// concurrently, swapped into an interval window and merged.
	recs := make([]*recorder, goroutines)
	var wg sync.WaitGroup
	for g := range recs {
		recs[g] = newRecorder()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, v := range values[g] {
				recs[g].consumed(100, v, true)
			}
		}()
	}
	wg.Wait()
	acc := newWindow()
	for _, r := range recs {
		r.swapInto(acc)
	}
	sameDistribution(t, "recorders merged", acc.lat.EndToEnd, single)
	if acc.ConsumedMsgs != goroutines*perGoroutine || acc.Clamped != int64(singleClamped) {
		t.Fatalf("counters: consumed %d clamped %d, want %d and %d", acc.ConsumedMsgs, acc.Clamped, goroutines*perGoroutine, singleClamped)
	}
	// A second swap yields an empty window: nothing is counted twice.
	empty := newWindow()
	for _, r := range recs {
		r.swapInto(empty)
	}
	if empty.lat.EndToEnd.TotalCount() != 0 || empty.ConsumedMsgs != 0 {
		t.Fatal("second swap returned values again")
	}

	// Merging in any grouping gives the same histogram: per-interval
	// windows into a cumulative one, or the plain histograms with Merge.
	parts := make([]*hdrhistogram.Histogram, goroutines)
	for g := range parts {
		parts[g] = NewHistogram()
		for _, v := range values[g] {
			record(parts[g], v)
		}
	}
	sameDistribution(t, "Merge", Merge(parts...), single)
	sameDistribution(t, "Merge of merges", Merge(Merge(parts[:3]...), Merge(parts[3:]...)), single)

	// Encoding round trip keeps every count.
	enc, err := Encode(single)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := hdrhistogram.Decode([]byte(enc))
	if err != nil {
		t.Fatal(err)
	}
	sameDistribution(t, "encode/decode", dec, single)
}

func TestRecordClamps(t *testing.T) {
	h := NewHistogram()
	if record(h, 5) || !record(h, -1) || !record(h, HistogramHighest+1) || record(h, HistogramHighest) {
		t.Fatal("clamping reported wrongly")
	}
	if h.TotalCount() != 4 {
		t.Fatalf("a clamped value vanished: %d values recorded", h.TotalCount())
	}
	if h.Max() < HistogramHighest {
		t.Fatalf("max %d below the range's top", h.Max())
	}
}
