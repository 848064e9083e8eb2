package results

import (
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Regression verdicts. A single run of a benchmark says little: run-to-run
// noise on a shared machine easily moves p99 by 10%. Compare therefore takes
// several result files per side, reduces each run to one number per metric,
// and asks two questions of each metric:
//
//  1. Is the shift unlikely to be noise? Mann–Whitney U, one-sided in the
//     direction in question (worse for "regressed", better for "improved").
//     The test is on ranks, so one wild run cannot dominate it, and it
//     assumes nothing about the distribution. The p-value is exact (the
//     permutation distribution of the rank sum, ties included) for up to 60
//     runs in all, normal with tie correction beyond. Several metrics are
//     tested at once, so Holm's step-down procedure holds the chance of
//     flagging any metric by noise alone at Alpha (without it, seven noisy
//     metrics at 0.05 each flag about a third of identical comparisons).
//  2. Is it large enough to matter? The medians must differ by at least
//     MinEffect (relative).
//
// Only when both hold is a metric "regressed" (or "improved"). The verdict is
// "insufficient runs" with fewer than MinRuns runs on a side, and also when
// the runs are too few for the test to ever reach significance: the smallest
// one-sided p-value with n1 and n2 runs is 1/C(n1+n2, n1), so three runs a
// side (1/20) can flag one metric at 0.05, but the five default metrics
// (Holm's first threshold 0.05/5) need five runs a side (1/252); RunsNeeded
// computes this. Tests in this package check that a clear regression is
// detected, noise alone is not flagged, and the threshold is respected.

// Metric names one number taken from each run: "publishRate",
// "consumeRate", "publishBytesRate", or "<kind>.<statistic>" where kind is a
// latency Kind and statistic one of mean, min, p50, p75, p90, p95, p99, p99.9,
// p99.99, max (for example "publish.p99", "endToEnd.p99.9").
type Metric string

// Common metrics.
const (
	MetricPublishRate  Metric = "publishRate"
	MetricConsumeRate  Metric = "consumeRate"
	MetricPublishBytes Metric = "publishBytesRate"
	MetricPublishP50   Metric = "publish.p50"
	MetricPublishP99   Metric = "publish.p99"
	MetricPublishP999  Metric = "publish.p99.9"
	MetricEndToEndP50  Metric = "endToEnd.p50"
	MetricEndToEndP99  Metric = "endToEnd.p99"
	MetricEndToEndP999 Metric = "endToEnd.p99.9"
)

// DefaultMetrics are the metrics Compare tests when none are given:
// throughput, publish latency (from the intended time) p50, p99 and p99.9,
// and end-to-end p99.
func DefaultMetrics() []Metric {
	return []Metric{MetricPublishRate, MetricPublishP50, MetricPublishP99, MetricPublishP999, MetricEndToEndP99}
}

// ErrMetric: a metric name Compare does not know.
var ErrMetric = errors.New("results: unknown metric")

func (m Metric) parse() (rate string, kind Kind, stat string, err error) {
	switch m {
	case MetricPublishRate, MetricConsumeRate, MetricPublishBytes:
		return string(m), "", "", nil
	}
	k, st, ok := strings.Cut(string(m), ".")
	if !ok || !slices.Contains(Kinds(), Kind(k)) {
		return "", "", "", fmt.Errorf("%w: %q", ErrMetric, string(m))
	}
	switch st {
	case "mean", "min", "p50", "p75", "p90", "p95", "p99", "p99.9", "p99.99", "max":
		return "", Kind(k), st, nil
	}
	return "", "", "", fmt.Errorf("%w: %q: statistic %q", ErrMetric, string(m), st)
}

// HigherIsBetter reports whether an increase of the metric is an
// improvement (rates) rather than a regression (latencies).
func (m Metric) HigherIsBetter() bool {
	rate, _, _, _ := m.parse()
	return rate != ""
}

// Value extracts the metric from a run's summary. ok is false when the run
// did not measure it (no messages of that kind, no measured span).
func (m Metric) Value(r *Result) (v float64, ok bool) {
	rate, kind, stat, err := m.parse()
	if err != nil || r == nil {
		return 0, false
	}
	s := r.Summary
	switch rate {
	case string(MetricPublishRate):
		return s.PublishRate, s.Measured > 0
	case string(MetricConsumeRate):
		return s.ConsumeRate, s.Measured > 0
	case string(MetricPublishBytes):
		return s.PublishBytesRate, s.Measured > 0
	}
	p := s.Latency.Get(kind)
	if p.Count == 0 {
		return 0, false
	}
	switch stat {
	case "mean":
		return p.Mean, true
	case "min":
		return float64(p.Min), true
	case "p50":
		return float64(p.P50), true
	case "p75":
		return float64(p.P75), true
	case "p90":
		return float64(p.P90), true
	case "p95":
		return float64(p.P95), true
	case "p99":
		return float64(p.P99), true
	case "p99.9":
		return float64(p.P999), true
	case "p99.99":
		return float64(p.P9999), true
	}
	return float64(p.Max), true
}

// CompareOptions configure Compare. The zero value means the defaults.
type CompareOptions struct {
	// Alpha is the family-wise significance level over all metrics tested in
	// one direction (Holm); default 0.05.
	Alpha float64
	// MinEffect is the smallest relative change of the median that counts;
	// default 0.05 (5%).
	MinEffect float64
	// MinRuns is the fewest runs per side a verdict needs; default 3,
	// at least 2.
	MinRuns int
	// Metrics to test; default DefaultMetrics(). A metric that no run on
	// either side measured is left out of the verdict.
	Metrics []Metric
}

// EnsureDefaults fills zero fields with the defaults.
func (o *CompareOptions) EnsureDefaults() {
	if o.Alpha == 0 {
		o.Alpha = 0.05
	}
	if o.MinEffect == 0 {
		o.MinEffect = 0.05
	}
	if o.MinRuns == 0 {
		o.MinRuns = 3
	}
	if len(o.Metrics) == 0 {
		o.Metrics = DefaultMetrics()
	}
}

// Validate reports options that make no sense.
func (o *CompareOptions) Validate() error {
	if !(o.Alpha > 0 && o.Alpha < 1) {
		return fmt.Errorf("results: compare: Alpha %v not in (0, 1)", o.Alpha)
	}
	if !(o.MinEffect > 0) || math.IsInf(o.MinEffect, 0) {
		return fmt.Errorf("results: compare: MinEffect %v must be positive", o.MinEffect)
	}
	if o.MinRuns < 2 {
		return fmt.Errorf("results: compare: MinRuns %d must be at least 2", o.MinRuns)
	}
	for _, m := range o.Metrics {
		if _, _, _, err := m.parse(); err != nil {
			return err
		}
	}
	return nil
}

// Outcome is the verdict on one metric or on the whole comparison.
type Outcome string

// Outcomes.
const (
	NoChange     Outcome = "no significant change"
	Improved     Outcome = "improved"
	Regressed    Outcome = "regressed"
	Insufficient Outcome = "insufficient runs"
)

// MetricVerdict is the verdict on one metric.
type MetricVerdict struct {
	Metric         Metric    `json:"metric"`
	HigherIsBetter bool      `json:"higherIsBetter"`
	Old            []float64 `json:"old"`
	New            []float64 `json:"new"`
	OldMedian      float64   `json:"oldMedian"`
	NewMedian      float64   `json:"newMedian"`
	// Change is (NewMedian − OldMedian) / |OldMedian|; ±1 when OldMedian is
	// zero and NewMedian is not.
	Change float64 `json:"change"`
	// U is the Mann–Whitney statistic of the new runs: the number of
	// (old, new) pairs where new is larger, ties counting one half.
	U float64 `json:"u"`
	// PWorse and PBetter are the one-sided p-values of "new is worse" and
	// "new is better".
	PWorse  float64 `json:"pWorse"`
	PBetter float64 `json:"pBetter"`
	Outcome Outcome `json:"outcome"`
}

// Verdict is the outcome of Compare.
type Verdict struct {
	Outcome   Outcome         `json:"outcome"`
	OldRuns   int             `json:"oldRuns"`
	NewRuns   int             `json:"newRuns"`
	Alpha     float64         `json:"alpha"`
	MinEffect float64         `json:"minEffect"`
	MinRuns   int             `json:"minRuns"`
	Metrics   []MetricVerdict `json:"metrics"`
	// Reason explains an "insufficient runs" verdict.
	Reason string `json:"reason,omitempty"`
	// Warnings say why the two sides may not be comparable (different
	// scenarios, workloads, durability, machines).
	Warnings []string `json:"warnings,omitempty"`
}

// Regressed reports whether any metric regressed: the condition on which a
// CI gate should fail.
func (v Verdict) Regressed() bool { return v.Outcome == Regressed }

// Compare gives the regression verdict of the runs in newRuns against those
// in oldRuns. It is a pure function of its arguments.
func Compare(oldRuns, newRuns []*Result, opts CompareOptions) (Verdict, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return Verdict{}, err
	}
	oldRuns, newRuns = nonNil(oldRuns), nonNil(newRuns)
	v := Verdict{
		OldRuns: len(oldRuns), NewRuns: len(newRuns),
		Alpha: opts.Alpha, MinEffect: opts.MinEffect, MinRuns: opts.MinRuns,
		Warnings: comparability(oldRuns, newRuns),
	}
	var tested []int // indices into v.Metrics of metrics with enough runs
	for _, m := range opts.Metrics {
		old, nw := values(m, oldRuns), values(m, newRuns)
		if len(old) == 0 && len(nw) == 0 {
			continue
		}
		mv := measure(m, old, nw, opts.MinRuns)
		if mv.Outcome != Insufficient {
			tested = append(tested, len(v.Metrics))
		}
		v.Metrics = append(v.Metrics, mv)
	}
	if v.OldRuns < opts.MinRuns || v.NewRuns < opts.MinRuns {
		v.Outcome = Insufficient
		v.Reason = fmt.Sprintf("%d old and %d new runs; at least %d a side are needed", v.OldRuns, v.NewRuns, opts.MinRuns)
		return v, nil
	}
	if len(tested) == 0 {
		v.Outcome = Insufficient
		v.Reason = "no metric was measured in enough runs on both sides"
		return v, nil
	}
	// Holm's step-down procedure needs the smallest p-value at or below
	// Alpha/m. When no metric can get there, more runs are needed, not a
	// verdict of "no change".
	m := len(tested)
	attainable := false
	for _, i := range tested {
		mv := v.Metrics[i]
		if minPValue(len(mv.Old), len(mv.New)) <= opts.Alpha/float64(m) {
			attainable = true
		}
	}
	if !attainable {
		for _, i := range tested {
			v.Metrics[i].Outcome = Insufficient
		}
		v.Outcome = Insufficient
		v.Reason = fmt.Sprintf("with %d and %d runs the smallest attainable p-value is %.3g, above alpha/%d = %.3g "+
			"(Holm over %d metrics); at least %d runs a side are needed",
			v.OldRuns, v.NewRuns, minPValue(v.OldRuns, v.NewRuns), m, opts.Alpha/float64(m), m, RunsNeeded(opts.Alpha, m))
		return v, nil
	}
	regressed := holm(v.Metrics, tested, opts.Alpha, func(mv MetricVerdict) float64 { return mv.PWorse })
	improved := holm(v.Metrics, tested, opts.Alpha, func(mv MetricVerdict) float64 { return mv.PBetter })
	for _, i := range tested {
		mv := &v.Metrics[i]
		worseChange := mv.Change
		if mv.HigherIsBetter {
			worseChange = -mv.Change
		}
		switch {
		case regressed[i] && worseChange >= opts.MinEffect:
			mv.Outcome = Regressed
		case improved[i] && -worseChange >= opts.MinEffect:
			mv.Outcome = Improved
		default:
			mv.Outcome = NoChange
		}
	}
	switch {
	case slices.ContainsFunc(v.Metrics, func(m MetricVerdict) bool { return m.Outcome == Regressed }):
		v.Outcome = Regressed
	case slices.ContainsFunc(v.Metrics, func(m MetricVerdict) bool { return m.Outcome == Improved }):
		v.Outcome = Improved
	default:
		v.Outcome = NoChange
	}
	return v, nil
}

// holm applies Holm's step-down procedure at family-wise level alpha to the
// p-values of the metrics at indices idx, and reports which are rejected.
func holm(ms []MetricVerdict, idx []int, alpha float64, p func(MetricVerdict) float64) map[int]bool {
	order := slices.Clone(idx)
	slices.SortStableFunc(order, func(a, b int) int { return cmpFloat(p(ms[a]), p(ms[b])) })
	rejected := map[int]bool{}
	for rank, i := range order {
		if p(ms[i]) > alpha/float64(len(order)-rank) {
			break
		}
		rejected[i] = true
	}
	return rejected
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// minPValue is the smallest one-sided p-value the rank test can give with
// n1 and n2 runs (no ties): 1 / C(n1+n2, n1).
func minPValue(n1, n2 int) float64 {
	if n1 == 0 || n2 == 0 {
		return 1
	}
	c := 1.0
	for i := 1; i <= n1; i++ {
		c = c * float64(n2+i) / float64(i)
	}
	return 1 / c
}

// RunsNeeded is the fewest runs per side (equal sides) with which the rank
// test can flag a change among m metrics at family-wise level alpha.
func RunsNeeded(alpha float64, m int) int {
	if m < 1 {
		m = 1
	}
	n := 1
	for minPValue(n, n) > alpha/float64(m) {
		n++
	}
	return n
}

func nonNil(rs []*Result) []*Result {
	out := make([]*Result, 0, len(rs))
	for _, r := range rs {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}

func values(m Metric, rs []*Result) []float64 {
	var out []float64
	for _, r := range rs {
		if v, ok := m.Value(r); ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
			out = append(out, v)
		}
	}
	return out
}

// measure computes medians, change and the one-sided p-values of a metric.
// The outcome is Insufficient when a side has fewer than minRuns values, and
// left for Compare to decide otherwise.
func measure(m Metric, old, nw []float64, minRuns int) MetricVerdict {
	mv := MetricVerdict{Metric: m, HigherIsBetter: m.HigherIsBetter(), Old: old, New: nw, Outcome: Insufficient}
	if len(old) > 0 {
		mv.OldMedian = median(old)
	}
	if len(nw) > 0 {
		mv.NewMedian = median(nw)
	}
	switch {
	case mv.OldMedian != 0:
		mv.Change = (mv.NewMedian - mv.OldMedian) / math.Abs(mv.OldMedian)
	case mv.NewMedian != 0:
		mv.Change = math.Copysign(1, mv.NewMedian)
	}
	if len(old) < minRuns || len(nw) < minRuns {
		return mv
	}
	var pGreater, pLess float64
	mv.U, pGreater, pLess = mannWhitney(old, nw)
	mv.PWorse, mv.PBetter = pGreater, pLess
	if mv.HigherIsBetter {
		mv.PWorse, mv.PBetter = pLess, pGreater
	}
	mv.Outcome = NoChange
	return mv
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// exactMaxN is the largest combined sample for which the exact permutation
// distribution is computed.
const exactMaxN = 60

// mannWhitney tests whether y tends to be larger (pGreater) or smaller
// (pLess) than x, one-sided each. u is the U statistic of y: pairs (x_i, y_j)
// with y_j > x_i, ties counting one half.
func mannWhitney(x, y []float64) (u, pGreater, pLess float64) {
	n1, n2 := len(x), len(y)
	n := n1 + n2
	type obs struct {
		v   float64
		isY bool
	}
	all := make([]obs, 0, n)
	for _, v := range x {
		all = append(all, obs{v, false})
	}
	for _, v := range y {
		all = append(all, obs{v, true})
	}
	slices.SortStableFunc(all, func(a, b obs) int {
		switch {
		case a.v < b.v:
			return -1
		case a.v > b.v:
			return 1
		}
		return 0
	})
	// Midranks, doubled so they stay integers: positions i..j-1 (0-based)
	// share the rank (i+1 + j)/2, doubled i+1+j.
	ranks2 := make([]int, n)
	var tieTerm float64 // Σ (t³ − t) over tie groups
	for i := 0; i < n; {
		j := i + 1
		for j < n && all[j].v == all[i].v {
			j++
		}
		for k := i; k < j; k++ {
			ranks2[k] = i + 1 + j
		}
		t := float64(j - i)
		tieTerm += t*t*t - t
		i = j
	}
	obs2 := 0 // doubled rank sum of y
	for i, o := range all {
		if o.isY {
			obs2 += ranks2[i]
		}
	}
	u = float64(obs2)/2 - float64(n2*(n2+1))/2

	if n <= exactMaxN {
		pGreater, pLess = exactRankSum(ranks2, n2, obs2)
		return u, pGreater, pLess
	}
	mean := float64(n1*n2) / 2
	variance := float64(n1*n2) / 12 * (float64(n+1) - tieTerm/float64(n*(n-1)))
	if variance <= 0 {
		return u, 1, 1
	}
	sd := math.Sqrt(variance)
	zg := (u - mean - 0.5) / sd
	zl := (u - mean + 0.5) / sd
	return u, upperNormal(zg), 1 - upperNormal(zl)
}

// upperNormal is P(Z ≥ z) for a standard normal Z.
func upperNormal(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }

// exactRankSum returns P(S ≥ obs) and P(S ≤ obs) where S is the (doubled)
// rank sum of a uniformly random subset of size k of ranks2: the exact null
// distribution of the Mann–Whitney statistic, ties included. Counts are
// float64: exact up to 2^53, relative error 1e-16 beyond.
func exactRankSum(ranks2 []int, k, obs int) (pGE, pLE float64) {
	maxSum := 0
	for _, r := range ranks2 {
		maxSum += r
	}
	// ways[j][s]: subsets of size j of the ranks seen so far with sum s.
	ways := make([][]float64, k+1)
	for j := range ways {
		ways[j] = make([]float64, maxSum+1)
	}
	ways[0][0] = 1
	for i, r := range ranks2 {
		for j := min(i+1, k); j >= 1; j-- {
			prev, cur := ways[j-1], ways[j]
			for s := maxSum; s >= r; s-- {
				cur[s] += prev[s-r]
			}
		}
	}
	var total, ge, le float64
	for s, c := range ways[k] {
		total += c
		if s >= obs {
			ge += c
		}
		if s <= obs {
			le += c
		}
	}
	if total == 0 {
		return 1, 1
	}
	return ge / total, le / total
}

// comparability lists reasons the two sides may not be comparable.
func comparability(oldRuns, newRuns []*Result) []string {
	var w []string
	all := append(slices.Clone(oldRuns), newRuns...)
	if len(all) == 0 {
		return nil
	}
	first := all[0]
	diff := func(what string, same func(a, b *Result) bool) {
		for _, r := range all[1:] {
			if !same(first, r) {
				w = append(w, "runs differ in "+what)
				return
			}
		}
	}
	diff("scenario", func(a, b *Result) bool { return a.Scenario == b.Scenario })
	diff("workload", func(a, b *Result) bool { return reflect.DeepEqual(a.Workload, b.Workload) })
	diff("durability", func(a, b *Result) bool { return a.Durability == b.Durability })
	diff("target", func(a, b *Result) bool { return a.Target == b.Target })
	diff("machine (cores, CPU model)", func(a, b *Result) bool {
		return a.Machine.Cores == b.Machine.Cores && a.Machine.CPUModel == b.Machine.CPUModel
	})
	limit := func(what string, get func(*Result) float64) {
		o, n := positive(oldRuns, get), positive(newRuns, get)
		if len(o) == 0 || len(n) == 0 {
			return
		}
		ratio := median(n) / median(o)
		if ratio > 1.25 || ratio < 0.8 {
			w = append(w, fmt.Sprintf("measured %s differs between the sides: new/old median = %.2f", what, ratio))
		}
	}
	limit("disk bandwidth", func(r *Result) float64 { return r.Limits.Disk.BytesPerSec })
	limit("fdatasync p99", func(r *Result) float64 { return float64(r.Limits.Fsync.Latency.P99) })
	limit("loopback bandwidth", func(r *Result) float64 { return r.Limits.Loopback.BytesPerSec })
	return w
}

func positive(rs []*Result, get func(*Result) float64) []float64 {
	var out []float64
	for _, r := range rs {
		if v := get(r); v > 0 {
			out = append(out, v)
		}
	}
	return out
}

// WriteText writes the verdict as a table for a terminal or a CI log.
func (v Verdict) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "verdict: %s (%d old runs, %d new runs; Mann-Whitney U one-sided, Holm over metrics at alpha %g, min effect %s)\n",
		strings.ToUpper(string(v.Outcome)), v.OldRuns, v.NewRuns, v.Alpha, formatPercent(v.MinEffect))
	if v.Reason != "" {
		fmt.Fprintln(w, "reason: "+v.Reason)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\told median\tnew median\tchange\tp(worse)\tp(better)\toutcome")
	for _, m := range v.Metrics {
		f := formatNanos
		if m.HigherIsBetter {
			f = formatCount
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Metric, f(m.OldMedian), f(m.NewMedian),
			signedPercent(m.Change), pText(m, m.PWorse), pText(m, m.PBetter), m.Outcome)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, warn := range v.Warnings {
		if _, err := fmt.Fprintln(w, "warning: "+warn); err != nil {
			return err
		}
	}
	return nil
}

func pText(m MetricVerdict, p float64) string {
	if m.Outcome == Insufficient {
		return "-"
	}
	return strconv.FormatFloat(p, 'g', 3, 64)
}

func signedPercent(f float64) string {
	s := strconv.FormatFloat(100*f, 'f', 1, 64) + "%"
	if f > 0 {
		s = "+" + s
	}
	return s
}
