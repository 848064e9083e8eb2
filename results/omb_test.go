package results

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ombFields are the keys of OMB's TestResult as Jackson writes it
// (openmessaging/benchmark 8559989, TestResult.java), which
// bin/create_charts.py reads.
var ombFields = []string{
	"workload", "driver", "messageSize", "topics", "partitions", "producersPerTopic", "consumersPerTopic",
	"publishRate", "publishErrorRate", "consumeRate", "backlog",
	"publishLatencyAvg", "publishLatency50pct", "publishLatency75pct", "publishLatency95pct", "publishLatency99pct",
	"publishLatency999pct", "publishLatency9999pct", "publishLatencyMax",
	"publishDelayLatencyAvg", "publishDelayLatency50pct", "publishDelayLatency75pct", "publishDelayLatency95pct",
	"publishDelayLatency99pct", "publishDelayLatency999pct", "publishDelayLatency9999pct", "publishDelayLatencyMax",
	"aggregatedPublishLatencyAvg", "aggregatedPublishLatency50pct", "aggregatedPublishLatency75pct",
	"aggregatedPublishLatency95pct", "aggregatedPublishLatency99pct", "aggregatedPublishLatency999pct",
	"aggregatedPublishLatency9999pct", "aggregatedPublishLatencyMax",
	"aggregatedPublishDelayLatencyAvg", "aggregatedPublishDelayLatency50pct", "aggregatedPublishDelayLatency75pct",
	"aggregatedPublishDelayLatency95pct", "aggregatedPublishDelayLatency99pct", "aggregatedPublishDelayLatency999pct",
	"aggregatedPublishDelayLatency9999pct", "aggregatedPublishDelayLatencyMax",
	"aggregatedPublishLatencyQuantiles", "aggregatedPublishDelayLatencyQuantiles",
	"endToEndLatencyAvg", "endToEndLatency50pct", "endToEndLatency75pct", "endToEndLatency95pct",
	"endToEndLatency99pct", "endToEndLatency999pct", "endToEndLatency9999pct", "endToEndLatencyMax",
	"aggregatedEndToEndLatencyQuantiles",
	"aggregatedEndToEndLatencyAvg", "aggregatedEndToEndLatency50pct", "aggregatedEndToEndLatency75pct",
	"aggregatedEndToEndLatency95pct", "aggregatedEndToEndLatency99pct", "aggregatedEndToEndLatency999pct",
	"aggregatedEndToEndLatency9999pct", "aggregatedEndToEndLatencyMax",
}

func TestOMBShape(t *testing.T) {
	r := sampleResult(t)
	var buf bytes.Buffer
	if err := WriteOMB(&buf, r, OMBOptions{}); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	var got []string
	for k := range doc {
		got = append(got, k)
	}
	want := slices.Clone(ombFields)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("fields differ:\ngot  %v\nwant %v", got, want)
	}

	// What create_charts.py does with it: group by workload, label by driver,
	// plot lists against 10 s windows, quantile maps keyed by percentile.
	if doc["workload"] != r.Workload.Name || doc["driver"] != "magnetar" {
		t.Errorf("workload %v driver %v", doc["workload"], doc["driver"])
	}
	// 20 one-second intervals with histograms become two 10 s windows.
	rates := doc["publishRate"].([]any)
	if len(rates) != 2 || rates[0].(float64) != 1000 {
		t.Fatalf("publishRate %v, want two 10 s windows at 1000 msg/s", rates)
	}
	// Units: publish and end-to-end in ms, publish delay in whole µs.
	p99 := doc["aggregatedPublishLatency99pct"].(float64)
	if want := float64(r.Summary.Latency.PublishSend.P99) / 1e6; p99 != want {
		t.Errorf("aggregatedPublishLatency99pct = %v, want %v ms", p99, want)
	}
	if d := doc["aggregatedPublishDelayLatency99pct"].(float64); d != float64(r.Summary.Latency.SendSlip.P99/1000) || d != math.Trunc(d) {
		t.Errorf("aggregatedPublishDelayLatency99pct = %v, want whole µs %d", d, r.Summary.Latency.SendSlip.P99/1000)
	}
	if e := doc["aggregatedEndToEndLatencyMax"].(float64); e != float64(r.Summary.Latency.EndToEnd.Max)/1e6 {
		t.Errorf("aggregatedEndToEndLatencyMax = %v", e)
	}
	// Quantile maps: numeric keys, Java-style "50.0", in ascending order in
	// the text, values consistent with the aggregated percentiles.
	q := doc["aggregatedPublishLatencyQuantiles"].(map[string]any)
	if len(q) < 50 {
		t.Fatalf("only %d quantiles", len(q))
	}
	if _, ok := q["0.0"]; !ok {
		t.Errorf("no \"0.0\" key; keys like %v", firstKeys(q))
	}
	for k := range q {
		if _, err := strconv.ParseFloat(k, 64); err != nil || !strings.Contains(k, ".") {
			t.Fatalf("key %q is not a Java double", k)
		}
	}
	raw := buf.String()
	obj := raw[strings.Index(raw, `"aggregatedPublishLatencyQuantiles"`):]
	obj = obj[strings.Index(obj, "{")+1 : strings.Index(obj, "}")]
	prev := -1.0
	for _, kv := range strings.Split(obj, ",") {
		k, _, _ := strings.Cut(kv, ":")
		p, err := strconv.ParseFloat(strings.Trim(strings.TrimSpace(k), `"`), 64)
		if err != nil || p < prev {
			t.Fatalf("quantile keys out of order at %q", k)
		}
		prev = p
	}
	if prev != 100 {
		t.Errorf("last quantile %v, want 100", prev)
	}
	// Lists are never null.
	if _, ok := doc["publishErrorRate"].([]any); !ok {
		t.Error("publishErrorRate is not a list")
	}
}

func firstKeys(m map[string]any) []string {
	var out []string
	for k := range m {
		if len(out) == 5 {
			break
		}
		out = append(out, k)
	}
	return out
}

func TestOMBOptions(t *testing.T) {
	r := sampleResult(t)
	o, err := ToOMB(r, OMBOptions{Driver: "Magnetar-fsync", Window: -1, PublishFromIntended: true})
	if err != nil {
		t.Fatal(err)
	}
	if o.Driver != "Magnetar-fsync" || len(o.PublishRate) != len(r.Intervals) {
		t.Fatalf("driver %q, %d windows, want %d", o.Driver, len(o.PublishRate), len(r.Intervals))
	}
	if o.AggregatedPublishLatency99pct != float64(r.Summary.Latency.Publish.P99)/1e6 {
		t.Error("PublishFromIntended did not use the intended-time histogram")
	}
	if o.PublishLatency99pct[12] != float64(r.Intervals[12].Latency.Publish.P99)/1e6 {
		t.Error("interval 12 not carried as is")
	}
	// Without interval histograms the intervals cannot be merged; they are
	// kept as they are.
	for i := range r.Intervals {
		r.Intervals[i].Histograms = EncodedSet{}
	}
	o, err = ToOMB(r, OMBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.PublishRate) != len(r.Intervals) {
		t.Fatalf("%d windows, want %d", len(o.PublishRate), len(r.Intervals))
	}
	// An empty result still writes every field, with empty lists.
	var buf bytes.Buffer
	if err := WriteOMB(&buf, &Result{Scenario: "empty"}, OMBOptions{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "null") {
		t.Errorf("empty result has nulls:\n%s", buf.String())
	}
}

func TestOMBWindowsMergeHistograms(t *testing.T) {
	r := sampleResult(t)
	ws, err := ombWindows(r.Intervals, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 2 {
		t.Fatalf("%d windows", len(ws))
	}
	var enc []string
	for _, iv := range r.Intervals[10:] {
		enc = append(enc, iv.Histograms.EndToEnd)
	}
	h, err := MergeEncoded(enc...)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ws[1].Latency.EndToEnd, Summarize(h); got != want {
		t.Fatalf("window percentiles %+v, want %+v (from merged histograms)", got, want)
	}
	if ws[1].Elapsed.D() != 20*time.Second || ws[1].Length.D() != 10*time.Second || ws[1].PublishedMsgs != 10000 {
		t.Fatalf("window %+v", ws[1])
	}
}

func TestJavaDouble(t *testing.T) {
	for _, c := range []struct {
		f    float64
		want string
	}{{50, "50.0"}, {99.9, "99.9"}, {0, "0.0"}, {96.875, "96.875"}, {1.25, "1.25"}} {
		if got := javaDouble(c.f); got != c.want {
			t.Errorf("javaDouble(%v) = %q, want %q", c.f, got, c.want)
		}
	}
	var q OMBQuantiles
	if err := json.Unmarshal([]byte(`{"99.0": 5.5, "50.0": 1.0}`), &q); err != nil {
		t.Fatal(err)
	}
	if len(q) != 2 || q[0].Percentile != 50 || q[1].Value != 5.5 {
		t.Fatalf("%+v", q)
	}
}
