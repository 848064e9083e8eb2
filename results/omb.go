package results

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"
)

// OMB result shape. The field names and units are those of OMB's
// TestResult (openmessaging/benchmark, benchmark-framework/.../TestResult.java
// at 8559989), which its bin/create_charts.py reads:
//
//   - publish and end-to-end latencies in milliseconds (doubles),
//   - publish delay in microseconds (integers),
//   - rates per second, one list entry per reporting window (OMB: 10 s; the
//     plotting script draws entry i at 10·i seconds),
//   - aggregated*Quantiles: percentile → value maps from the cumulative
//     histograms, iterated as HdrHistogram's percentiles(100).
//
// Semantics follow OMB so that charts mixing OMB runs and ours compare like
// with like: publishLatency is ack − actual send (our PublishSend) and
// publishDelayLatency is actual − intended send (our SendSlip). Our
// coordinated-omission-free Publish latency (from the intended time) has no
// OMB field; OMBOptions.PublishFromIntended puts it in publishLatency
// instead.

// OMBResult mirrors OMB's TestResult JSON.
type OMBResult struct {
	Workload          string `json:"workload"`
	Driver            string `json:"driver"`
	MessageSize       int64  `json:"messageSize"`
	Topics            int    `json:"topics"`
	Partitions        int    `json:"partitions"`
	ProducersPerTopic int    `json:"producersPerTopic"`
	ConsumersPerTopic int    `json:"consumersPerTopic"`

	PublishRate      []float64 `json:"publishRate"`
	PublishErrorRate []float64 `json:"publishErrorRate"`
	ConsumeRate      []float64 `json:"consumeRate"`
	Backlog          []int64   `json:"backlog"`

	PublishLatencyAvg     []float64 `json:"publishLatencyAvg"`
	PublishLatency50pct   []float64 `json:"publishLatency50pct"`
	PublishLatency75pct   []float64 `json:"publishLatency75pct"`
	PublishLatency95pct   []float64 `json:"publishLatency95pct"`
	PublishLatency99pct   []float64 `json:"publishLatency99pct"`
	PublishLatency999pct  []float64 `json:"publishLatency999pct"`
	PublishLatency9999pct []float64 `json:"publishLatency9999pct"`
	PublishLatencyMax     []float64 `json:"publishLatencyMax"`

	PublishDelayLatencyAvg     []float64 `json:"publishDelayLatencyAvg"`
	PublishDelayLatency50pct   []int64   `json:"publishDelayLatency50pct"`
	PublishDelayLatency75pct   []int64   `json:"publishDelayLatency75pct"`
	PublishDelayLatency95pct   []int64   `json:"publishDelayLatency95pct"`
	PublishDelayLatency99pct   []int64   `json:"publishDelayLatency99pct"`
	PublishDelayLatency999pct  []int64   `json:"publishDelayLatency999pct"`
	PublishDelayLatency9999pct []int64   `json:"publishDelayLatency9999pct"`
	PublishDelayLatencyMax     []int64   `json:"publishDelayLatencyMax"`

	AggregatedPublishLatencyAvg     float64 `json:"aggregatedPublishLatencyAvg"`
	AggregatedPublishLatency50pct   float64 `json:"aggregatedPublishLatency50pct"`
	AggregatedPublishLatency75pct   float64 `json:"aggregatedPublishLatency75pct"`
	AggregatedPublishLatency95pct   float64 `json:"aggregatedPublishLatency95pct"`
	AggregatedPublishLatency99pct   float64 `json:"aggregatedPublishLatency99pct"`
	AggregatedPublishLatency999pct  float64 `json:"aggregatedPublishLatency999pct"`
	AggregatedPublishLatency9999pct float64 `json:"aggregatedPublishLatency9999pct"`
	AggregatedPublishLatencyMax     float64 `json:"aggregatedPublishLatencyMax"`

	AggregatedPublishDelayLatencyAvg     float64 `json:"aggregatedPublishDelayLatencyAvg"`
	AggregatedPublishDelayLatency50pct   int64   `json:"aggregatedPublishDelayLatency50pct"`
	AggregatedPublishDelayLatency75pct   int64   `json:"aggregatedPublishDelayLatency75pct"`
	AggregatedPublishDelayLatency95pct   int64   `json:"aggregatedPublishDelayLatency95pct"`
	AggregatedPublishDelayLatency99pct   int64   `json:"aggregatedPublishDelayLatency99pct"`
	AggregatedPublishDelayLatency999pct  int64   `json:"aggregatedPublishDelayLatency999pct"`
	AggregatedPublishDelayLatency9999pct int64   `json:"aggregatedPublishDelayLatency9999pct"`
	AggregatedPublishDelayLatencyMax     int64   `json:"aggregatedPublishDelayLatencyMax"`

	AggregatedPublishLatencyQuantiles      OMBQuantiles `json:"aggregatedPublishLatencyQuantiles"`
	AggregatedPublishDelayLatencyQuantiles OMBQuantiles `json:"aggregatedPublishDelayLatencyQuantiles"`

	EndToEndLatencyAvg     []float64 `json:"endToEndLatencyAvg"`
	EndToEndLatency50pct   []float64 `json:"endToEndLatency50pct"`
	EndToEndLatency75pct   []float64 `json:"endToEndLatency75pct"`
	EndToEndLatency95pct   []float64 `json:"endToEndLatency95pct"`
	EndToEndLatency99pct   []float64 `json:"endToEndLatency99pct"`
	EndToEndLatency999pct  []float64 `json:"endToEndLatency999pct"`
	EndToEndLatency9999pct []float64 `json:"endToEndLatency9999pct"`
	EndToEndLatencyMax     []float64 `json:"endToEndLatencyMax"`

	AggregatedEndToEndLatencyQuantiles OMBQuantiles `json:"aggregatedEndToEndLatencyQuantiles"`

	AggregatedEndToEndLatencyAvg     float64 `json:"aggregatedEndToEndLatencyAvg"`
	AggregatedEndToEndLatency50pct   float64 `json:"aggregatedEndToEndLatency50pct"`
	AggregatedEndToEndLatency75pct   float64 `json:"aggregatedEndToEndLatency75pct"`
	AggregatedEndToEndLatency95pct   float64 `json:"aggregatedEndToEndLatency95pct"`
	AggregatedEndToEndLatency99pct   float64 `json:"aggregatedEndToEndLatency99pct"`
	AggregatedEndToEndLatency999pct  float64 `json:"aggregatedEndToEndLatency999pct"`
	AggregatedEndToEndLatency9999pct float64 `json:"aggregatedEndToEndLatency9999pct"`
	AggregatedEndToEndLatencyMax     float64 `json:"aggregatedEndToEndLatencyMax"`
}

// OMBQuantile is one percentile → value pair.
type OMBQuantile struct {
	Percentile float64
	Value      float64
}

// OMBQuantiles is a percentile → value map written as a JSON object in
// ascending percentile order, keys formatted as Java's Double.toString
// ("50.0", "99.9"), as Jackson writes OMB's TreeMap<Double, ...>.
type OMBQuantiles []OMBQuantile

// MarshalJSON writes the ordered object.
func (q OMBQuantiles) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range q {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(javaDouble(e.Percentile)))
		b.WriteByte(':')
		b.WriteString(javaDouble(e.Value))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads an object of numeric keys (order is not preserved by
// JSON objects in general; the result is sorted by percentile).
func (q *OMBQuantiles) UnmarshalJSON(b []byte) error {
	var m map[string]float64
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	out := make(OMBQuantiles, 0, len(m))
	for k, v := range m {
		p, err := strconv.ParseFloat(k, 64)
		if err != nil {
			return fmt.Errorf("%w: quantile key %q", ErrFormat, k)
		}
		out = append(out, OMBQuantile{p, v})
	}
	slices.SortFunc(out, func(a, b OMBQuantile) int { return cmp.Compare(a.Percentile, b.Percentile) })
	*q = out
	return nil
}

// javaDouble formats f as Java's Double.toString does for ordinary
// magnitudes: shortest round-trip digits, always with a decimal point.
func javaDouble(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "0.0"
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	for _, c := range s {
		if c == '.' {
			return s
		}
	}
	return s + ".0"
}

// OMBOptions configure the OMB shape.
type OMBOptions struct {
	// Driver is OMB's "driver" field (the legend of OMB's charts); default
	// the result's Driver, or "Magnetar".
	Driver string
	// Window is the reporting window OMB's charts assume; per-interval
	// records are merged into windows this long when every interval kept
	// its histograms. Default 10 s; a negative value keeps our intervals.
	Window time.Duration
	// PublishFromIntended puts our Publish latency (from the intended send
	// time) in publishLatency instead of OMB's ack − actual send.
	PublishFromIntended bool
}

// EnsureDefaults fills zero fields.
func (o *OMBOptions) EnsureDefaults(r *Result) {
	if o.Driver == "" {
		o.Driver = r.Driver
	}
	if o.Driver == "" {
		o.Driver = "Magnetar"
	}
	if o.Window == 0 {
		o.Window = 10 * time.Second
	}
}

// WriteOMB writes r in OMB's result shape.
func WriteOMB(w io.Writer, r *Result, opts OMBOptions) error {
	o, err := ToOMB(r, opts)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return fmt.Errorf("results: omb: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// ToOMB converts r to OMB's result shape.
func ToOMB(r *Result, opts OMBOptions) (*OMBResult, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: nil result", ErrFormat)
	}
	opts.EnsureDefaults(r)
	pubKind := PublishSend
	if opts.PublishFromIntended {
		pubKind = Publish
	}
	name := r.Workload.Name
	if name == "" {
		name = r.Scenario
	}
	o := &OMBResult{
		Workload:          name,
		Driver:            opts.Driver,
		MessageSize:       int64(r.Workload.MessageSize),
		Topics:            r.Workload.Topics,
		Partitions:        r.Workload.PartitionsPerTopic,
		ProducersPerTopic: r.Workload.ProducersPerTopic,
		ConsumersPerTopic: r.Workload.ConsumerPerSubscription,
		// OMB writes empty lists, never null.
		PublishRate: []float64{}, PublishErrorRate: []float64{}, ConsumeRate: []float64{}, Backlog: []int64{},
		PublishLatencyAvg: []float64{}, PublishLatency50pct: []float64{}, PublishLatency75pct: []float64{},
		PublishLatency95pct: []float64{}, PublishLatency99pct: []float64{}, PublishLatency999pct: []float64{},
		PublishLatency9999pct: []float64{}, PublishLatencyMax: []float64{},
		PublishDelayLatencyAvg: []float64{}, PublishDelayLatency50pct: []int64{}, PublishDelayLatency75pct: []int64{},
		PublishDelayLatency95pct: []int64{}, PublishDelayLatency99pct: []int64{}, PublishDelayLatency999pct: []int64{},
		PublishDelayLatency9999pct: []int64{}, PublishDelayLatencyMax: []int64{},
		EndToEndLatencyAvg: []float64{}, EndToEndLatency50pct: []float64{}, EndToEndLatency75pct: []float64{},
		EndToEndLatency95pct: []float64{}, EndToEndLatency99pct: []float64{}, EndToEndLatency999pct: []float64{},
		EndToEndLatency9999pct: []float64{}, EndToEndLatencyMax: []float64{},
		AggregatedPublishLatencyQuantiles:      OMBQuantiles{},
		AggregatedPublishDelayLatencyQuantiles: OMBQuantiles{},
		AggregatedEndToEndLatencyQuantiles:     OMBQuantiles{},
	}

	windows, err := ombWindows(r.Intervals, opts.Window)
	if err != nil {
		return nil, err
	}
	for _, iv := range windows {
		o.PublishRate = append(o.PublishRate, iv.PublishRate)
		o.PublishErrorRate = append(o.PublishErrorRate, iv.PublishErrorRate)
		o.ConsumeRate = append(o.ConsumeRate, iv.ConsumeRate)
		o.Backlog = append(o.Backlog, iv.Backlog)

		p := iv.Latency.Get(pubKind)
		o.PublishLatencyAvg = append(o.PublishLatencyAvg, p.Mean/1e6)
		o.PublishLatency50pct = append(o.PublishLatency50pct, ms(p.P50))
		o.PublishLatency75pct = append(o.PublishLatency75pct, ms(p.P75))
		o.PublishLatency95pct = append(o.PublishLatency95pct, ms(p.P95))
		o.PublishLatency99pct = append(o.PublishLatency99pct, ms(p.P99))
		o.PublishLatency999pct = append(o.PublishLatency999pct, ms(p.P999))
		o.PublishLatency9999pct = append(o.PublishLatency9999pct, ms(p.P9999))
		o.PublishLatencyMax = append(o.PublishLatencyMax, ms(p.Max))

		d := iv.Latency.SendSlip
		o.PublishDelayLatencyAvg = append(o.PublishDelayLatencyAvg, d.Mean/1e3)
		o.PublishDelayLatency50pct = append(o.PublishDelayLatency50pct, us(d.P50))
		o.PublishDelayLatency75pct = append(o.PublishDelayLatency75pct, us(d.P75))
		o.PublishDelayLatency95pct = append(o.PublishDelayLatency95pct, us(d.P95))
		o.PublishDelayLatency99pct = append(o.PublishDelayLatency99pct, us(d.P99))
		o.PublishDelayLatency999pct = append(o.PublishDelayLatency999pct, us(d.P999))
		o.PublishDelayLatency9999pct = append(o.PublishDelayLatency9999pct, us(d.P9999))
		o.PublishDelayLatencyMax = append(o.PublishDelayLatencyMax, us(d.Max))

		e := iv.Latency.EndToEnd
		o.EndToEndLatencyAvg = append(o.EndToEndLatencyAvg, e.Mean/1e6)
		o.EndToEndLatency50pct = append(o.EndToEndLatency50pct, ms(e.P50))
		o.EndToEndLatency75pct = append(o.EndToEndLatency75pct, ms(e.P75))
		o.EndToEndLatency95pct = append(o.EndToEndLatency95pct, ms(e.P95))
		o.EndToEndLatency99pct = append(o.EndToEndLatency99pct, ms(e.P99))
		o.EndToEndLatency999pct = append(o.EndToEndLatency999pct, ms(e.P999))
		o.EndToEndLatency9999pct = append(o.EndToEndLatency9999pct, ms(e.P9999))
		o.EndToEndLatencyMax = append(o.EndToEndLatencyMax, ms(e.Max))
	}

	p := r.Summary.Latency.Get(pubKind)
	o.AggregatedPublishLatencyAvg = p.Mean / 1e6
	o.AggregatedPublishLatency50pct = ms(p.P50)
	o.AggregatedPublishLatency75pct = ms(p.P75)
	o.AggregatedPublishLatency95pct = ms(p.P95)
	o.AggregatedPublishLatency99pct = ms(p.P99)
	o.AggregatedPublishLatency999pct = ms(p.P999)
	o.AggregatedPublishLatency9999pct = ms(p.P9999)
	o.AggregatedPublishLatencyMax = ms(p.Max)

	d := r.Summary.Latency.SendSlip
	o.AggregatedPublishDelayLatencyAvg = d.Mean / 1e3
	o.AggregatedPublishDelayLatency50pct = us(d.P50)
	o.AggregatedPublishDelayLatency75pct = us(d.P75)
	o.AggregatedPublishDelayLatency95pct = us(d.P95)
	o.AggregatedPublishDelayLatency99pct = us(d.P99)
	o.AggregatedPublishDelayLatency999pct = us(d.P999)
	o.AggregatedPublishDelayLatency9999pct = us(d.P9999)
	o.AggregatedPublishDelayLatencyMax = us(d.Max)

	e := r.Summary.Latency.EndToEnd
	o.AggregatedEndToEndLatencyAvg = e.Mean / 1e6
	o.AggregatedEndToEndLatency50pct = ms(e.P50)
	o.AggregatedEndToEndLatency75pct = ms(e.P75)
	o.AggregatedEndToEndLatency95pct = ms(e.P95)
	o.AggregatedEndToEndLatency99pct = ms(e.P99)
	o.AggregatedEndToEndLatency999pct = ms(e.P999)
	o.AggregatedEndToEndLatency9999pct = ms(e.P9999)
	o.AggregatedEndToEndLatencyMax = ms(e.Max)

	if o.AggregatedPublishLatencyQuantiles, err = ombQuantiles(r.Histograms.Get(pubKind), 1e6, false); err != nil {
		return nil, err
	}
	if o.AggregatedPublishDelayLatencyQuantiles, err = ombQuantiles(r.Histograms.SendSlip, 1e3, true); err != nil {
		return nil, err
	}
	if o.AggregatedEndToEndLatencyQuantiles, err = ombQuantiles(r.Histograms.EndToEnd, 1e6, false); err != nil {
		return nil, err
	}
	return o, nil
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// us converts to whole microseconds, as OMB's delay histogram records them.
func us(ns int64) int64 { return ns / 1e3 }

// ombQuantiles iterates an encoded histogram's percentiles with 100 ticks
// per half distance (HdrHistogram's percentiles(100)), values divided by
// scale (and truncated when integral).
func ombQuantiles(encoded string, scale float64, integral bool) (OMBQuantiles, error) {
	out := OMBQuantiles{}
	if encoded == "" {
		return out, nil
	}
	h, err := DecodeHistogram(encoded)
	if err != nil {
		return nil, fmt.Errorf("results: omb: %w", err)
	}
	for _, b := range h.CumulativeDistributionWithTicks(100) {
		v := float64(b.ValueAt) / scale
		if integral {
			v = math.Trunc(v)
		}
		if n := len(out); n > 0 && out[n-1].Percentile == b.Quantile {
			out[n-1].Value = v
			continue
		}
		out = append(out, OMBQuantile{Percentile: b.Quantile, Value: v})
	}
	return out, nil
}

// ombWindows merges consecutive intervals into windows at least window long,
// by adding counts and histograms. It keeps the intervals as they are when
// window is negative, when they are already that long, or when any interval
// lacks histograms (percentiles cannot be merged without them).
func ombWindows(ivs []Interval, window time.Duration) ([]Interval, error) {
	if window <= 0 || len(ivs) == 0 {
		return ivs, nil
	}
	for _, iv := range ivs {
		if iv.Histograms.IsZero() {
			return ivs, nil
		}
	}
	var out []Interval
	var cur Interval
	var hs *HistogramSet
	flush := func() error {
		cur.Rates = RatesOver(cur.Counters, cur.Length.D())
		cur.Latency = hs.Summarize()
		enc, err := hs.Encode()
		if err != nil {
			return err
		}
		cur.Histograms = enc
		out = append(out, cur)
		return nil
	}
	for _, iv := range ivs {
		if hs == nil {
			cur = Interval{}
			hs = NewHistogramSet()
		}
		d, err := iv.Histograms.Decode()
		if err != nil {
			return nil, fmt.Errorf("results: omb: interval at %s: %w", iv.Elapsed, err)
		}
		hs.Merge(d)
		cur.Time, cur.Elapsed, cur.Backlog = iv.Time, iv.Elapsed, iv.Backlog
		cur.Length += iv.Length
		cur.PublishedMsgs += iv.PublishedMsgs
		cur.PublishedBytes += iv.PublishedBytes
		cur.PublishErrors += iv.PublishErrors
		cur.ConsumedMsgs += iv.ConsumedMsgs
		cur.ConsumedBytes += iv.ConsumedBytes
		cur.CPUSeconds += iv.CPUSeconds
		if cur.Length.D() >= window {
			if err := flush(); err != nil {
				return nil, err
			}
			hs = nil
		}
	}
	if hs != nil {
		if err := flush(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
