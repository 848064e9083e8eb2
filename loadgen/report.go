package loadgen

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Interval is one interval's record: counts, backlog, and each latency
// kind's percentiles and encoded histogram (HdrHistogram V2 compressed,
// base64: the lines of an HdrHistogram log).
type Interval struct {
	// Time is the wall clock at the interval's end; Offset the end since
	// the load started; Length the interval's length.
	Time   time.Time     `json:"time"`
	Offset time.Duration `json:"offset"`
	Length time.Duration `json:"length"`
	// Warmup marks the intervals of the warm-up, which the report's
	// totals and histograms exclude.
	Warmup bool `json:"warmup,omitempty"`
	// TargetRate is the schedule's rate at the interval's end (it moves in
	// max-rate mode).
	TargetRate float64 `json:"targetRate"`
	Counters
	// Backlog is subscriptions × acknowledged − consumed messages at the
	// interval's end.
	Backlog    int64            `json:"backlog"`
	Latency    LatencySummary   `json:"latency"`
	Histograms EncodedLatencies `json:"histograms"`
}

// Rate is the interval's acknowledged messages per second.
func (iv *Interval) Rate() float64 { return perSecond(iv.PublishedMsgs, iv.Length) }

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Report is the outcome of a Run. Totals, rates and histograms cover the
// measured phase only (after the warm-up, including the receipts and
// deliveries of messages in flight when sending stopped); Intervals cover
// the whole run.
type Report struct {
	Workload   Workload  `json:"workload"`
	ServiceURL string    `json:"serviceURL"`
	Topics     []string  `json:"topics"`
	Started    time.Time `json:"started"`
	// MeasureStart is when the warm-up ended (zero if it never did).
	MeasureStart time.Time     `json:"measureStart"`
	Finished     time.Time     `json:"finished"`
	Warmup       time.Duration `json:"warmup"`
	// Measured is the time spent sending after the warm-up.
	Measured time.Duration `json:"measured"`
	// TargetRate is the workload's rate (0: max-rate mode); FinalRate the
	// schedule's rate at the end, the controller's last word in max-rate
	// mode.
	TargetRate float64 `json:"targetRate"`
	FinalRate  float64 `json:"finalRate"`
	Counters
	PublishRate      float64 `json:"publishRate"`
	PublishBytesRate float64 `json:"publishBytesRate"`
	ConsumeRate      float64 `json:"consumeRate"`
	ConsumeBytesRate float64 `json:"consumeBytesRate"`
	// MaxBacklog is the largest backlog seen in the measured phase
	// (sampled every few tens of milliseconds).
	MaxBacklog   int64 `json:"maxBacklog"`
	FinalBacklog int64 `json:"finalBacklog"`
	// Latencies are the cumulative histograms (nanoseconds), merged from
	// every goroutine's by adding counts.
	Latencies  Latencies        `json:"-"`
	Latency    LatencySummary   `json:"latency"`
	Histograms EncodedLatencies `json:"histograms"`
	Intervals  []Interval       `json:"intervals"`
	// Interrupted: the run was stopped by its context.
	Interrupted bool `json:"interrupted,omitempty"`
	// Problems say why the numbers should not be trusted (empty for a
	// clean run): the rate was not held, the schedule slipped, errors.
	Problems []string `json:"problems,omitempty"`
}

// Validity thresholds of a fixed-rate run (benchmarking.md, section 4).
const (
	// MinRateShare is the least share of the target rate a valid run
	// publishes.
	MinRateShare = 0.995
	// MaxSlipP99 is the largest p99 send slip of a valid run.
	MaxSlipP99 = time.Millisecond
)

// check fills Problems.
func (r *Report) check() {
	if r.Interrupted {
		r.Problems = append(r.Problems, "interrupted before the end")
	}
	if r.Measured <= 0 {
		r.Problems = append(r.Problems, "nothing was measured (the run ended during the warm-up)")
		return
	}
	if r.TargetRate > 0 && r.PublishRate < MinRateShare*r.TargetRate {
		r.Problems = append(r.Problems, fmt.Sprintf("publish rate %.0f msg/s is below %.1f%% of the target %.0f msg/s",
			r.PublishRate, 100*MinRateShare, r.TargetRate))
	}
	if p := r.Latency.SendSlip.P99; time.Duration(p) > MaxSlipP99 {
		r.Problems = append(r.Problems, fmt.Sprintf("send slip p99 %s exceeds %s: the generator fell behind its schedule (latency from intended time includes it)",
			FormatNanos(p), FormatNanos(int64(MaxSlipP99))))
	}
	if r.PublishErrors > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d publish errors", r.PublishErrors))
	}
	if r.Clamped > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d latencies outside the histogram range were clamped", r.Clamped))
	}
}

// FormatNanos formats a latency in nanoseconds with three significant
// digits and a unit (ns, µs, ms, s).
func FormatNanos(ns int64) string {
	f := float64(ns)
	switch {
	case ns < 1_000:
		return strconv.FormatInt(ns, 10) + "ns"
	case ns < 1_000_000:
		return trim3(f/1e3) + "µs"
	case ns < 1_000_000_000:
		return trim3(f/1e6) + "ms"
	}
	return trim3(f/1e9) + "s"
}

func trim3(f float64) string {
	switch {
	case f >= 100:
		return strconv.FormatFloat(f, 'f', 0, 64)
	case f >= 10:
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	return strconv.FormatFloat(f, 'f', 2, 64)
}

const mib = 1 << 20

// progressLine is the interval's one-line summary.
func (iv *Interval) progressLine() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%7.1fs] pub %9.0f msg/s %8.2f MiB/s | cons %9.0f msg/s %8.2f MiB/s | backlog %8d",
		iv.Offset.Seconds(), iv.Rate(), perSecond(iv.PublishedBytes, iv.Length)/mib,
		perSecond(iv.ConsumedMsgs, iv.Length), perSecond(iv.ConsumedBytes, iv.Length)/mib, iv.Backlog)
	lat := func(name string, p Percentiles) {
		fmt.Fprintf(&b, " | %s p50 %s p99 %s max %s", name, FormatNanos(p.P50), FormatNanos(p.P99), FormatNanos(p.Max))
	}
	lat("pub", iv.Latency.Publish)
	lat("e2e", iv.Latency.EndToEnd)
	fmt.Fprintf(&b, " | slip p99 %s", FormatNanos(iv.Latency.SendSlip.P99))
	if iv.PublishErrors > 0 {
		fmt.Fprintf(&b, " | errors %d", iv.PublishErrors)
	}
	if iv.Warmup {
		b.WriteString(" (warm-up)")
	}
	return b.String()
}

// Summary is a multi-line human summary of the report.
func (r *Report) Summary() string {
	var b strings.Builder
	rate := "max rate"
	if r.TargetRate > 0 {
		rate = fmt.Sprintf("%.0f msg/s", r.TargetRate)
	}
	fmt.Fprintf(&b, "workload %q: %d topics x %d partitions, %d B messages, target %s, final rate %.0f msg/s\n",
		r.Workload.Name, r.Workload.Topics, r.Workload.PartitionsPerTopic, r.Workload.MessageSize, rate, r.FinalRate)
	fmt.Fprintf(&b, "measured %v after %v warm-up: published %d msgs (%.0f msg/s, %.2f MiB/s), consumed %d msgs (%.0f msg/s), errors %d, max backlog %d\n",
		r.Measured.Round(time.Millisecond), r.Warmup.Round(time.Millisecond), r.PublishedMsgs, r.PublishRate,
		r.PublishBytesRate/mib, r.ConsumedMsgs, r.ConsumeRate, r.PublishErrors, r.MaxBacklog)
	row := func(name string, p Percentiles) {
		fmt.Fprintf(&b, "  %-26s n=%-9d p50 %-8s p90 %-8s p99 %-8s p99.9 %-8s p99.99 %-8s max %s\n", name, p.Count,
			FormatNanos(p.P50), FormatNanos(p.P90), FormatNanos(p.P99), FormatNanos(p.P999), FormatNanos(p.P9999), FormatNanos(p.Max))
	}
	row("publish (from intended)", r.Latency.Publish)
	row("publish (from send)", r.Latency.PublishSend)
	row("send slip", r.Latency.SendSlip)
	row("end-to-end", r.Latency.EndToEnd)
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "  problem: %s\n", p)
	}
	return b.String()
}
