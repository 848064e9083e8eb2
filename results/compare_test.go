package results

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// run makes a synthetic result whose metrics are the given values times
// independent lognormal noise of relative spread sigma.
func run(rng *rand.Rand, rate, p50, p99, p999 float64, sigma float64) *Result {
	n := func(v float64) float64 { return v * math.Exp(sigma*rng.NormFloat64()) }
	r := &Result{Scenario: "s", Machine: Machine{Cores: 2, CPUModel: "x"}}
	r.Summary.Measured = Duration(time.Minute)
	r.Summary.PublishRate = n(rate)
	pub := Percentiles{Count: 1e6, P50: int64(n(p50)), P99: int64(n(p99)), P999: int64(n(p999))}
	pub.Max = pub.P999 * 2
	r.Summary.Latency.Publish = pub
	e2e := pub
	e2e.P50, e2e.P99, e2e.P999 = int64(n(2*p50)), int64(n(2*p99)), int64(n(2*p999))
	r.Summary.Latency.EndToEnd = e2e
	return r
}

func runs(rng *rand.Rand, k int, rate, p50, p99, p999, sigma float64) []*Result {
	out := make([]*Result, k)
	for i := range out {
		out[i] = run(rng, rate, p50, p99, p999, sigma)
	}
	return out
}

func outcomes(v Verdict) map[Metric]Outcome {
	m := map[Metric]Outcome{}
	for _, mv := range v.Metrics {
		m[mv.Metric] = mv.Outcome
	}
	return m
}

func TestCompareDetectsLatencyRegression(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	old := runs(rng, 5, 50000, 1e6, 3e6, 6e6, 0.02)
	// p99 and p99.9 30% worse; p50 and throughput unchanged.
	nw := runs(rng, 5, 50000, 1e6, 3.9e6, 7.8e6, 0.02)
	v, err := Compare(old, nw, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o := outcomes(v)
	if v.Outcome != Regressed || !v.Regressed() {
		t.Fatalf("overall %s, want regressed; %v", v.Outcome, o)
	}
	if o[MetricPublishP99] != Regressed || o[MetricPublishP999] != Regressed {
		t.Errorf("p99/p99.9: %v", o)
	}
	if o[MetricPublishP50] != NoChange || o[MetricPublishRate] != NoChange {
		t.Errorf("unchanged metrics flagged: %v", o)
	}
	var buf bytes.Buffer
	if err := v.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "REGRESSED") || !strings.Contains(buf.String(), "publish.p99") {
		t.Errorf("text verdict:\n%s", buf.String())
	}
}

func TestCompareDetectsThroughputDropAndImprovement(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	old := runs(rng, 5, 50000, 1e6, 3e6, 6e6, 0.02)
	nw := runs(rng, 5, 40000, 1e6, 3e6, 6e6, 0.02)
	v, err := Compare(old, nw, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if o := outcomes(v); o[MetricPublishRate] != Regressed || v.Outcome != Regressed {
		t.Fatalf("20%% throughput drop: %s, %v", v.Outcome, o)
	}
	// The same pair the other way round is an improvement.
	v, err = Compare(nw, old, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if o := outcomes(v); o[MetricPublishRate] != Improved || v.Outcome != Improved {
		t.Fatalf("20%% throughput gain: %s, %v", v.Outcome, o)
	}
}

// Noise alone is not flagged: many comparisons of two samples from one
// distribution, with a large run-to-run spread (20%), flag a regression no
// more often than the significance level allows.
func TestCompareNoiseNotFlagged(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	const trials = 400
	flaggedMetric, flaggedAny := 0, 0
	for range trials {
		old := runs(rng, 5, 50000, 1e6, 3e6, 6e6, 0.2)
		nw := runs(rng, 5, 50000, 1e6, 3e6, 6e6, 0.2)
		v, err := Compare(old, nw, CompareOptions{Metrics: []Metric{MetricPublishP99}})
		if err != nil {
			t.Fatal(err)
		}
		if v.Outcome == Regressed {
			flaggedMetric++
		}
		v, err = Compare(old, nw, CompareOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if v.Outcome == Regressed {
			flaggedAny++
		}
	}
	// One metric, or all default metrics under Holm, one-sided at 0.05:
	// expect at most 5% (the exact test is conservative); allow two binomial
	// standard deviations.
	if rate := float64(flaggedMetric) / trials; rate > 0.072 {
		t.Errorf("noise flagged publish.p99 as regressed in %.1f%% of trials", 100*rate)
	}
	if rate := float64(flaggedAny) / trials; rate > 0.072 {
		t.Errorf("noise flagged some default metric as regressed in %.1f%% of trials", 100*rate)
	}
	// Small noise (1%) is never flagged: it cannot reach the 5% threshold.
	for range 100 {
		old := runs(rng, 5, 50000, 1e6, 3e6, 6e6, 0.01)
		nw := runs(rng, 5, 50000, 1e6, 3e6, 6e6, 0.01)
		v, err := Compare(old, nw, CompareOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if v.Outcome != NoChange {
			t.Fatalf("1%% noise gave %s: %+v", v.Outcome, outcomes(v))
		}
	}
	t.Logf("20%% noise: publish.p99 flagged in %d/%d trials, any default metric in %d/%d", flaggedMetric, trials, flaggedAny, trials)
}

// A consistent shift below the threshold is significant but not reported;
// lowering the threshold reports it.
func TestCompareThresholdRespected(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	old := runs(rng, 5, 50000, 1e6, 3e6, 6e6, 0.002)
	nw := runs(rng, 5, 50000, 1e6, 3.09e6, 6e6, 0.002) // p99 +3%
	opts := CompareOptions{Metrics: []Metric{MetricPublishP99}}
	v, err := Compare(old, nw, opts)
	if err != nil {
		t.Fatal(err)
	}
	mv := v.Metrics[0]
	if mv.PWorse > 0.05 {
		t.Fatalf("p = %v: the shift should be significant", mv.PWorse)
	}
	if v.Outcome != NoChange {
		t.Fatalf("3%% shift with a 5%% threshold: %s", v.Outcome)
	}
	opts.MinEffect = 0.02
	v, err = Compare(old, nw, opts)
	if err != nil {
		t.Fatal(err)
	}
	if v.Outcome != Regressed {
		t.Fatalf("3%% shift with a 2%% threshold: %s (change %.3f)", v.Outcome, v.Metrics[0].Change)
	}
}

func TestCompareInsufficientRuns(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	old := runs(rng, 2, 50000, 1e6, 3e6, 6e6, 0.01)
	nw := runs(rng, 2, 50000, 1e6, 9e6, 6e6, 0.01) // a huge regression, but two runs
	v, err := Compare(old, nw, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Outcome != Insufficient {
		t.Fatalf("2 runs a side: %s", v.Outcome)
	}
	for _, mv := range v.Metrics {
		if mv.Outcome != Insufficient {
			t.Errorf("%s: %s", mv.Metric, mv.Outcome)
		}
	}
	// Three a side, completely separated: exact one-sided p = 1/20. That
	// passes at alpha 0.05 for one metric, but not under Holm over the five
	// default metrics (first threshold 0.01): the verdict asks for more runs
	// instead of saying "no change".
	old = runs(rng, 3, 50000, 1e6, 3e6, 6e6, 0.01)
	nw = runs(rng, 3, 50000, 1e6, 9e6, 6e6, 0.01)
	v, err = Compare(old, nw, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Outcome != Insufficient || !strings.Contains(v.Reason, "at least 5 runs a side") {
		t.Fatalf("3 runs a side, 5 metrics: %s (%s)", v.Outcome, v.Reason)
	}
	v, err = Compare(old, nw, CompareOptions{Metrics: []Metric{MetricPublishP99}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Outcome != Regressed {
		t.Fatalf("3 runs a side, separated, one metric: %s (%s)", v.Outcome, v.Reason)
	}
	if p := v.Metrics[0].PWorse; math.Abs(p-0.05) > 1e-12 {
		t.Fatalf("p = %v, want 0.05", p)
	}
	// No runs at all.
	if v, err := Compare(nil, nil, CompareOptions{}); err != nil || v.Outcome != Insufficient {
		t.Fatalf("no runs: %v, %v", v.Outcome, err)
	}
}

func TestRunsNeeded(t *testing.T) {
	for _, c := range []struct {
		alpha float64
		m     int
		want  int
	}{{0.05, 1, 3}, {0.05, 4, 5}, {0.05, 5, 5}, {0.01, 1, 5}, {0.05, 20, 6}} {
		if got := RunsNeeded(c.alpha, c.m); got != c.want {
			t.Errorf("RunsNeeded(%v, %d) = %d, want %d", c.alpha, c.m, got, c.want)
		}
	}
	if p := minPValue(3, 3); math.Abs(p-0.05) > 1e-12 {
		t.Errorf("minPValue(3,3) = %v", p)
	}
}

func TestCompareOptions(t *testing.T) {
	bad := []CompareOptions{
		{Alpha: 1.5},
		{MinEffect: -0.1},
		{MinRuns: 1},
		{Metrics: []Metric{"publish.p42"}},
		{Metrics: []Metric{"nonsense"}},
	}
	for _, o := range bad {
		if _, err := Compare(nil, nil, o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	if _, err := Compare(nil, nil, CompareOptions{Metrics: []Metric{"x.p99"}}); !errors.Is(err, ErrMetric) {
		t.Errorf("unknown kind: %v", err)
	}
	for _, m := range []Metric{"sendSlip.p99.99", "endToEnd.max", "publishSend.mean", MetricConsumeRate} {
		if _, _, _, err := m.parse(); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
}

func TestCompareWarnsWhenRunsDiffer(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	old := runs(rng, 3, 50000, 1e6, 3e6, 6e6, 0.01)
	nw := runs(rng, 3, 50000, 1e6, 3e6, 6e6, 0.01)
	nw[1].Scenario = "other"
	for _, r := range old {
		r.Limits.Disk.BytesPerSec = 500e6
	}
	for _, r := range nw {
		r.Limits.Disk.BytesPerSec = 200e6
	}
	v, err := Compare(old, nw, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(v.Warnings, "\n")
	if !strings.Contains(w, "scenario") || !strings.Contains(w, "disk bandwidth") {
		t.Fatalf("warnings: %q", v.Warnings)
	}
}

// The exact null distribution of the rank sum agrees with brute-force
// enumeration of every split, ties included.
func TestMannWhitneyExactMatchesEnumeration(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	for trial := range 200 {
		n1, n2 := 1+rng.IntN(6), 1+rng.IntN(6)
		draw := func(n int) []float64 {
			out := make([]float64, n)
			for i := range out {
				out[i] = float64(rng.IntN(5)) // many ties
			}
			return out
		}
		x, y := draw(n1), draw(n2)
		u, pg, pl := mannWhitney(x, y)
		wantU, wantG, wantL := bruteMannWhitney(x, y)
		if math.Abs(u-wantU) > 1e-9 || math.Abs(pg-wantG) > 1e-12 || math.Abs(pl-wantL) > 1e-12 {
			t.Fatalf("trial %d x=%v y=%v: got U=%v p>=%v p<=%v, want %v %v %v", trial, x, y, u, pg, pl, wantU, wantG, wantL)
		}
	}
	// A textbook value: x = 1,2,3, y = 4,5,6: U = 9, P(U >= 9) = 1/20.
	u, pg, pl := mannWhitney([]float64{1, 2, 3}, []float64{4, 5, 6})
	if u != 9 || math.Abs(pg-0.05) > 1e-12 || pl != 1 {
		t.Fatalf("U=%v p>=%v p<=%v", u, pg, pl)
	}
}

// bruteMannWhitney computes U directly from pairs and the p-values by
// enumerating every way to pick the y positions among the pooled values.
func bruteMannWhitney(x, y []float64) (u, pGE, pLE float64) {
	uOf := func(a, b []float64) float64 {
		s := 0.0
		for _, xi := range a {
			for _, yj := range b {
				switch {
				case yj > xi:
					s++
				case yj == xi:
					s += 0.5
				}
			}
		}
		return s
	}
	u = uOf(x, y)
	pool := append(append([]float64(nil), x...), y...)
	n, k := len(pool), len(y)
	var total, ge, le float64
	for mask := 0; mask < 1<<n; mask++ {
		if popcount(mask) != k {
			continue
		}
		var a, b []float64
		for i, v := range pool {
			if mask&(1<<i) != 0 {
				b = append(b, v)
			} else {
				a = append(a, v)
			}
		}
		total++
		s := uOf(a, b)
		if s >= u-1e-9 {
			ge++
		}
		if s <= u+1e-9 {
			le++
		}
	}
	return u, ge / total, le / total
}

func popcount(m int) int {
	c := 0
	for ; m != 0; m &= m - 1 {
		c++
	}
	return c
}

// Beyond the exact limit the normal approximation is used; it agrees with
// the exact distribution to within a percent.
func TestMannWhitneyNormalApproximation(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	x, y := make([]float64, 35), make([]float64, 35)
	for i := range x {
		x[i] = rng.NormFloat64()
		y[i] = rng.NormFloat64() + 0.4
	}
	_, pg, pl := mannWhitney(x, y) // 70 > exactMaxN: normal
	ranks2 := make([]int, 0, 70)
	_ = ranks2
	// Exact reference through the same DP, called directly.
	all := append(append([]float64(nil), x...), y...)
	sorted := append([]float64(nil), all...)
	sortFloats(sorted)
	rank := map[float64]int{}
	for i, v := range sorted {
		rank[v] = 2 * (i + 1) // no ties in continuous data
	}
	r2 := make([]int, len(sorted))
	for i, v := range sorted {
		r2[i] = rank[v]
	}
	obs := 0
	for _, v := range y {
		obs += rank[v]
	}
	eg, el := exactRankSum(r2, len(y), obs)
	if math.Abs(pg-eg) > 0.01 || math.Abs(pl-el) > 0.01 {
		t.Fatalf("normal p>=%v p<=%v, exact %v %v", pg, pl, eg, el)
	}
}

func sortFloats(s []float64) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
