package results

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Per-goroutine histograms merged by adding counts equal one histogram fed
// every value: the property that lets producers record without sharing a
// lock and still report exact whole-run percentiles.
func TestMergedPerGoroutineHistogramsEqualSingle(t *testing.T) {
	const goroutines, perG = 8, 20000
	values := make([][]int64, goroutines)
	rng := rand.New(rand.NewPCG(7, 7))
	for g := range values {
		for range perG {
			// Spread over nine decades, with some out-of-range values.
			v := int64(rng.ExpFloat64() * float64(int64(1)<<uint(rng.IntN(40))))
			if rng.IntN(1000) == 0 {
				v = HistogramHighest * 2
			}
			values[g] = append(values[g], v)
		}
	}
	single := NewHistogram()
	for _, vs := range values {
		for _, v := range vs {
			RecordClamped(single, v)
		}
	}

	per := make([]*hdrhistogram.Histogram, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := NewHistogram()
			for _, v := range values[g] {
				RecordClamped(h, v)
			}
			per[g] = h
		}()
	}
	wg.Wait()

	merged, dropped := MergeHistograms(per...)
	if dropped != 0 {
		t.Fatalf("dropped %d values", dropped)
	}
	if !merged.Equals(single) {
		t.Fatalf("merged histogram differs from the single one: count %d vs %d", merged.TotalCount(), single.TotalCount())
	}
	if got, want := Summarize(merged), Summarize(single); got != want {
		t.Fatalf("percentiles differ:\nmerged %+v\nsingle %+v", got, want)
	}

	// The same through HistogramSet and through encoded form.
	sets := make([]*HistogramSet, goroutines)
	var encoded []string
	for g := range sets {
		sets[g] = NewHistogramSet()
		sets[g].EndToEnd = per[g]
		e, err := EncodeHistogram(per[g])
		if err != nil {
			t.Fatal(err)
		}
		encoded = append(encoded, e)
	}
	total := NewHistogramSet()
	for _, s := range sets {
		total.Merge(s)
	}
	if !total.EndToEnd.Equals(single) {
		t.Fatal("HistogramSet.Merge differs from the single histogram")
	}
	fromEncoded, err := MergeEncoded(encoded...)
	if err != nil {
		t.Fatal(err)
	}
	if !fromEncoded.Equals(single) {
		t.Fatal("MergeEncoded differs from the single histogram")
	}
}

// Averaging per-goroutine percentiles is wrong; merging is right. This
// guards the reason the package merges: with one slow goroutine, the mean of
// p99s differs from the true p99.
func TestAveragingPercentilesIsNotMerging(t *testing.T) {
	fast, slow := NewHistogram(), NewHistogram()
	for i := range 990 {
		RecordClamped(fast, int64(1000+i))
	}
	for i := range 10 {
		RecordClamped(slow, int64(1e9+i))
	}
	merged, _ := MergeHistograms(fast, slow)
	truth := merged.ValueAtQuantile(99.5)
	avg := (fast.ValueAtQuantile(99.5) + slow.ValueAtQuantile(99.5)) / 2
	if truth < 1e9*0.999 {
		t.Fatalf("merged p99.5 = %d, want about 1s", truth)
	}
	if avg == truth {
		t.Fatal("averaging happened to match; test data is wrong")
	}
}

func TestRecordClamped(t *testing.T) {
	h := NewHistogram()
	RecordClamped(h, -5)
	RecordClamped(h, HistogramHighest*10)
	if h.TotalCount() != 2 {
		t.Fatalf("count = %d, want 2 (out-of-range values are clamped, not dropped)", h.TotalCount())
	}
	if h.Min() != 0 {
		t.Fatalf("min = %d, want 0", h.Min())
	}
	if !h.ValuesAreEquivalent(h.Max(), HistogramHighest) {
		t.Fatalf("max = %d, want about %d", h.Max(), HistogramHighest)
	}
}

func TestEncodeDecode(t *testing.T) {
	if s, err := EncodeHistogram(NewHistogram()); err != nil || s != "" {
		t.Fatalf("empty histogram encodes as %q, %v", s, err)
	}
	h := NewHistogram()
	for i := int64(1); i <= 100000; i += 7 {
		RecordClamped(h, i*i)
	}
	s, err := EncodeHistogram(h)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeHistogram(s)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Equals(h) {
		t.Fatal("decoded histogram differs")
	}
	if _, err := DecodeHistogram("not base64!"); err == nil {
		t.Fatal("garbage decoded")
	}
	if e, err := DecodeHistogram(""); err != nil || e.TotalCount() != 0 {
		t.Fatalf("empty string: %v, %v", e, err)
	}
}

func TestSummarize(t *testing.T) {
	h := NewHistogram()
	for i := int64(1); i <= 10000; i++ {
		RecordClamped(h, i*int64(time.Microsecond))
	}
	p := Summarize(h)
	check := func(name string, got int64, want time.Duration) {
		t.Helper()
		if d := float64(got)/float64(want) - 1; d > 0.001 || d < -0.001 {
			t.Errorf("%s = %d, want %d within 0.1%%", name, got, want)
		}
	}
	check("p50", p.P50, 5000*time.Microsecond)
	check("p90", p.P90, 9000*time.Microsecond)
	check("p99", p.P99, 9900*time.Microsecond)
	check("p99.9", p.P999, 9990*time.Microsecond)
	check("max", p.Max, 10000*time.Microsecond)
	check("min", p.Min, time.Microsecond)
	if p.Count != 10000 {
		t.Errorf("count = %d", p.Count)
	}
	if Summarize(nil) != (Percentiles{}) || Summarize(NewHistogram()) != (Percentiles{}) {
		t.Error("empty histogram gives non-zero percentiles")
	}
}

func TestHistogramSetResetAndDecode(t *testing.T) {
	s := NewHistogramSet()
	fillSet(rand.New(rand.NewPCG(3, 4)), s, 100, 1e6)
	e, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := e.Decode()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Kinds() {
		if !back.Get(k).Equals(s.Get(k)) {
			t.Errorf("%s differs after encode/decode", k)
		}
	}
	s.Reset()
	if got := s.Summarize(); got != (LatencySet{}) {
		t.Errorf("after Reset: %+v", got)
	}
}
