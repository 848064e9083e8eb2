package results

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/magnetar/magnetar/internal/vfs"
)

// The HTML report is one self-contained file: inline CSS, inline SVG charts,
// no script, no external resource, so it opens offline and can be attached
// to a ticket as is.

// WriteHTML writes the HTML report of r.
func WriteHTML(w io.Writer, r *Result) error {
	page, err := buildPage(r)
	if err != nil {
		return err
	}
	if err := reportTemplate.Execute(w, page); err != nil {
		return fmt.Errorf("results: html report: %w", err)
	}
	return nil
}

// WriteHTMLFile writes the HTML report of r to name atomically through fs.
func WriteHTMLFile(fs vfs.FS, name string, r *Result) error {
	var buf bytes.Buffer
	if err := WriteHTML(&buf, r); err != nil {
		return err
	}
	return writeFileAtomic(fs, name, buf.Bytes())
}

type kv struct{ K, V string }

type section struct {
	Title string
	Rows  []kv
}

type latencyRow struct {
	Name  string
	Cells []string
}

type page struct {
	Title    string
	Sections []section
	Header   []string
	Latency  []latencyRow
	StepHead []string
	Steps    [][]string
	Charts   []template.HTML
	Notes    []string
}

var latencyHeader = []string{"latency", "count", "mean", "p50", "p90", "p99", "p99.9", "p99.99", "max"}

func latencyCells(p Percentiles) []string {
	if p.Count == 0 {
		return []string{"0", "-", "-", "-", "-", "-", "-", "-"}
	}
	return []string{
		strconv.FormatInt(p.Count, 10), formatNanos(p.Mean), formatNanos(float64(p.P50)), formatNanos(float64(p.P90)),
		formatNanos(float64(p.P99)), formatNanos(float64(p.P999)), formatNanos(float64(p.P9999)), formatNanos(float64(p.Max)),
	}
}

func buildPage(r *Result) (*page, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: nil result", ErrFormat)
	}
	p := &page{Title: "Magnetar benchmark: " + r.Scenario, Header: latencyHeader, Notes: r.Notes}
	p.Sections = factSections(r)
	for _, k := range Kinds() {
		if lat := r.Summary.Latency.Get(k); lat.Count > 0 {
			p.Latency = append(p.Latency, latencyRow{Name: k.Label(), Cells: latencyCells(lat)})
		}
	}
	if len(r.Steps) > 0 {
		p.StepHead = []string{"step", "target msg/s", "achieved msg/s", "MiB/s", "publish p50", "publish p99", "publish p99.9", "e2e p99", "slip p99"}
		for _, s := range r.Steps {
			sm := s.Summary
			p.Steps = append(p.Steps, []string{
				s.Name, formatRate(s.TargetRate), formatRate(sm.PublishRate), formatMiBps(sm.PublishBytesRate),
				nanosOrDash(sm.Latency.Publish, sm.Latency.Publish.P50), nanosOrDash(sm.Latency.Publish, sm.Latency.Publish.P99),
				nanosOrDash(sm.Latency.Publish, sm.Latency.Publish.P999), nanosOrDash(sm.Latency.EndToEnd, sm.Latency.EndToEnd.P99),
				nanosOrDash(sm.Latency.SendSlip, sm.Latency.SendSlip.P99),
			})
		}
	}
	charts, err := buildCharts(r)
	if err != nil {
		return nil, err
	}
	for _, c := range charts {
		p.Charts = append(p.Charts, template.HTML(c.svg()))
	}
	return p, nil
}

func nanosOrDash(p Percentiles, v int64) string {
	if p.Count == 0 {
		return "-"
	}
	return formatNanos(float64(v))
}

func formatRate(v float64) string {
	if v == 0 {
		return "max"
	}
	return formatCount(v)
}

func formatMiBps(v float64) string { return strconv.FormatFloat(v/(1<<20), 'f', 1, 64) + " MiB/s" }

func factSections(r *Result) []section {
	run := section{Title: "Run", Rows: []kv{
		{"scenario", r.Scenario},
		{"description", r.Description},
		{"driver", r.Driver},
		{"target", r.Target},
		{"started", formatTime(r.Started)},
		{"finished", formatTime(r.Finished)},
		{"git revision", r.GitRevision},
	}}
	w := r.Workload
	work := section{Title: "Workload", Rows: []kv{
		{"topics x partitions", fmt.Sprintf("%d x %d", w.Topics, w.PartitionsPerTopic)},
		{"message size", fmt.Sprintf("%d B", w.MessageSize)},
		{"producers per topic", strconv.Itoa(w.ProducersPerTopic)},
		{"subscriptions x consumers", fmt.Sprintf("%d x %d", w.SubscriptionsPerTopic, w.ConsumerPerSubscription)},
		{"target rate", rateText(w.ProducerRate)},
		{"duration (+ warm-up)", fmt.Sprintf("%s (+ %s)", w.Duration, w.Warmup)},
	}}
	if w.KeyDistributor != "" {
		work.Rows = append(work.Rows, kv{"key distribution", w.KeyDistributor})
	}
	if w.ConsumerBacklogSizeBytes > 0 {
		work.Rows = append(work.Rows, kv{"consumer backlog", formatBytes(float64(w.ConsumerBacklogSizeBytes))})
	}
	d := r.Durability
	dur := section{Title: "Durability", Rows: []kv{
		{"level", d.Level},
		{"journal fdatasync before ack", strconv.FormatBool(d.JournalSync)},
		{"journal group wait", d.JournalGroupWait.String()},
		{"ensemble / write / ack quorum", fmt.Sprintf("%d / %d / %d", d.EnsembleSize, d.WriteQuorum, d.AckQuorum)},
		{"batching max delay / bytes", fmt.Sprintf("%s / %d", d.BatchingMaxDelay, d.BatchingMaxBytes)},
		{"notes", d.Description},
	}}
	m := r.Machine
	mach := section{Title: "Machine", Rows: []kv{
		{"host", m.Hostname},
		{"cpu", fmt.Sprintf("%d cores, %s", m.Cores, m.CPUModel)},
		{"memory", formatBytes(float64(m.MemoryBytes))},
		{"os / kernel", fmt.Sprintf("%s/%s %s", m.OS, m.Arch, m.Kernel)},
		{"go", m.GoVersion},
	}}
	lim := section{Title: "Machine limits (measured in this run)", Rows: limitRows(r.Limits)}
	out := []section{run}
	if w.Topics > 0 {
		out = append(out, work)
	}
	if d != (Durability{}) {
		out = append(out, dur)
	}
	out = append(out, mach, lim)
	if r.Summary.Measured > 0 {
		s := r.Summary
		thr := section{Title: "Throughput", Rows: []kv{
			{"measured", s.Measured.String()},
			{"publish", fmt.Sprintf("%s msg/s, %s", formatCount(s.PublishRate), formatMiBps(s.PublishBytesRate))},
			{"consume", fmt.Sprintf("%s msg/s, %s", formatCount(s.ConsumeRate), formatMiBps(s.ConsumeBytesRate))},
			{"publish errors", strconv.FormatInt(s.PublishErrors, 10)},
			{"backlog max / final", fmt.Sprintf("%d / %d", s.MaxBacklog, s.FinalBacklog)},
		}}
		out = append(out, thr)
	}
	if e := r.Efficiency; e != (Efficiency{}) {
		out = append(out, section{Title: "Efficiency", Rows: []kv{
			{"busy cores (CPU s / wall s)", strconv.FormatFloat(e.BusyCores, 'f', 2, 64)},
			{"payload per busy core", fmt.Sprintf("%s, %s msg/s", formatMiBps(e.PublishBytesPerSecPerBusyCore), formatCount(e.PublishMsgsPerSecPerBusyCore))},
			{"share of disk direct-write bandwidth", formatPercent(e.DiskShare)},
			{"share of loopback bandwidth", formatPercent(e.LoopbackShare)},
		}})
	}
	for i := range out {
		out[i].Rows = dropEmpty(out[i].Rows)
	}
	return out
}

func limitRows(l Limits) []kv {
	rows := []kv{{"cores", strconv.Itoa(l.Cores)}}
	if l.Disk.BytesPerSec > 0 {
		rows = append(rows, kv{"disk write + fdatasync per block", fmt.Sprintf("%s (%s, %s blocks, %s in %s, %s)",
			formatMiBps(l.Disk.BytesPerSec), directText(l.Disk.Direct), formatBytes(float64(l.Disk.BlockSize)),
			formatBytes(float64(l.Disk.Bytes)), formatElapsed(l.Disk.Elapsed), l.Disk.Dir)})
	}
	if f := l.Fsync; f.Latency.Count > 0 {
		rows = append(rows, kv{"write + fdatasync latency", fmt.Sprintf("p50 %s, p99 %s, max %s (%d x %d B, %s, %s)",
			formatNanos(float64(f.Latency.P50)), formatNanos(float64(f.Latency.P99)), formatNanos(float64(f.Latency.Max)),
			f.Latency.Count, f.BlockSize, directText(f.Direct), f.Dir)})
	}
	if lb := l.Loopback; lb.BytesPerSec > 0 {
		rows = append(rows, kv{"loopback TCP", fmt.Sprintf("%s (one connection, %s writes, %s in %s)",
			formatMiBps(lb.BytesPerSec), formatBytes(float64(lb.WriteSize)), formatBytes(float64(lb.Bytes)), formatElapsed(lb.Elapsed))})
	}
	return rows
}

func directText(direct bool) string {
	if direct {
		return "O_DIRECT"
	}
	return "buffered: O_DIRECT refused"
}

func rateText(r float64) string {
	if r == 0 {
		return "max rate (backlog-bounded controller)"
	}
	return formatCount(r) + " msg/s"
}

func formatPercent(f float64) string {
	if p := 100 * f; p != 0 && p < 1 && p > -1 {
		return strconv.FormatFloat(p, 'f', 2, 64) + "%"
	}
	return strconv.FormatFloat(100*f, 'f', 1, 64) + "%"
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func dropEmpty(rows []kv) []kv {
	out := rows[:0]
	for _, r := range rows {
		if r.V != "" {
			out = append(out, r)
		}
	}
	return out
}

// percentileSeries turns a histogram into points for a nines axis: the
// HdrHistogram percentile iteration (5 ticks per half distance), the maximum
// placed at 1 − 1/count, where the data's resolution ends.
func percentileSeries(name string, h *hdrhistogram.Histogram) series {
	s := series{name: name}
	n := h.TotalCount()
	if n == 0 {
		return s
	}
	last := 1 - 1/float64(n)
	for _, b := range h.CumulativeDistributionWithTicks(5) {
		q := b.Quantile / 100
		if q > last || b.Quantile >= 100 {
			q = last
		}
		s.xs = append(s.xs, q)
		s.ys = append(s.ys, float64(b.ValueAt))
	}
	return s
}

// percentileSeriesFrom builds the same points from stored percentiles when no
// histogram was kept.
func percentileSeriesFrom(name string, p Percentiles) series {
	s := series{name: name, markers: true}
	if p.Count == 0 {
		return s
	}
	pts := []struct {
		q float64
		v int64
	}{{0.5, p.P50}, {0.75, p.P75}, {0.9, p.P90}, {0.95, p.P95}, {0.99, p.P99}, {0.999, p.P999}, {0.9999, p.P9999}}
	last := 1 - 1/float64(p.Count)
	for _, pt := range pts {
		if pt.q <= last {
			s.xs, s.ys = append(s.xs, pt.q), append(s.ys, float64(pt.v))
		}
	}
	s.xs, s.ys = append(s.xs, last), append(s.ys, float64(p.Max))
	return s
}

func latencyDistribution(name string, encoded string, p Percentiles) (series, error) {
	if encoded != "" {
		h, err := DecodeHistogram(encoded)
		if err != nil {
			return series{}, fmt.Errorf("%s: %w", name, err)
		}
		return percentileSeries(name, h), nil
	}
	return percentileSeriesFrom(name, p), nil
}

var nanosAxis = axis{label: "latency", kind: scaleLog, format: formatNanos}
var ninesAxis = axis{label: "percentile", kind: scaleNines}

func buildCharts(r *Result) ([]*chart, error) {
	var charts []*chart
	add := func(c *chart) {
		c.id = "c" + strconv.Itoa(len(charts))
		charts = append(charts, c)
	}

	// Latency percentile distribution of the whole run, one series per kind.
	dist := &chart{title: "Latency by percentile (whole run)", x: ninesAxis, y: nanosAxis}
	for _, k := range Kinds() {
		p := r.Summary.Latency.Get(k)
		enc := r.Histograms.Get(k)
		if p.Count == 0 && enc == "" {
			continue
		}
		s, err := latencyDistribution(k.Short(), enc, p)
		if err != nil {
			return nil, err
		}
		dist.series = append(dist.series, s)
	}
	if len(dist.series) > 0 {
		add(dist)
	}

	// Per-step publish latency distributions of a sweep.
	if len(r.Steps) > 0 {
		c := &chart{title: "Publish latency by percentile, per step", x: ninesAxis, y: nanosAxis}
		for _, st := range r.Steps {
			if st.Summary.Latency.Publish.Count == 0 && st.Histograms.Publish == "" {
				continue
			}
			name := st.Name
			if name == "" {
				name = formatCount(st.TargetRate) + " msg/s"
			}
			s, err := latencyDistribution(name, st.Histograms.Publish, st.Summary.Latency.Publish)
			if err != nil {
				return nil, err
			}
			c.series = append(c.series, s)
		}
		if len(c.series) > 0 {
			add(c)
		}
		add(sweepChart(r.Steps))
	}

	if len(r.Intervals) > 0 {
		add(timeChart("Throughput over time", axis{label: "msg/s", kind: scaleLinear, format: formatCount}, r.Intervals,
			[]string{"publish msg/s", "consume msg/s"},
			func(iv Interval) []float64 { return []float64{iv.PublishRate, iv.ConsumeRate} }))
		var names []string
		var kinds []Kind
		for _, k := range Kinds() {
			for _, iv := range r.Intervals {
				if iv.Latency.Get(k).Count > 0 {
					names, kinds = append(names, k.Short()+" p99"), append(kinds, k)
					break
				}
			}
		}
		if len(kinds) > 0 {
			add(timeChart("p99 latency over time", axis{label: "p99 latency", kind: scaleAuto, format: formatNanos}, r.Intervals, names,
				func(iv Interval) []float64 {
					out := make([]float64, len(kinds))
					for i, k := range kinds {
						if p := iv.Latency.Get(k); p.Count > 0 {
							out[i] = float64(p.P99)
						} else {
							out[i] = math.NaN()
						}
					}
					return out
				}))
		}
		for _, iv := range r.Intervals {
			if iv.Backlog != 0 {
				add(timeChart("Backlog over time", axis{label: "messages", kind: scaleLinear, format: formatCount}, r.Intervals,
					[]string{"backlog"}, func(iv Interval) []float64 { return []float64{float64(iv.Backlog)} }))
				break
			}
		}
	}

	if f := r.Limits.Fsync; f.Latency.Count > 0 {
		c := &chart{title: fmt.Sprintf("Disk: %d B write + fdatasync latency by percentile", f.BlockSize), x: ninesAxis, y: nanosAxis}
		s, err := latencyDistribution("write + fdatasync", f.Histogram, f.Latency)
		if err != nil {
			return nil, err
		}
		c.series = append(c.series, s)
		add(c)
	}
	return charts, nil
}

func timeChart(title string, y axis, ivs []Interval, names []string, values func(Interval) []float64) *chart {
	c := &chart{title: title, x: axis{label: "elapsed (s)", kind: scaleLinear, format: formatSeconds}, y: y}
	c.series = make([]series, len(names))
	for i, n := range names {
		c.series[i].name = n
	}
	for _, iv := range ivs {
		x := iv.Elapsed.D().Seconds()
		for i, v := range values(iv) {
			c.series[i].xs = append(c.series[i].xs, x)
			c.series[i].ys = append(c.series[i].ys, v)
		}
	}
	return c
}

// sweepChart is the latency-versus-throughput curve: one point per step at
// its achieved publish rate.
func sweepChart(steps []Step) *chart {
	sorted := append([]Step(nil), steps...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Summary.PublishRate < sorted[j].Summary.PublishRate })
	type pick struct {
		name string
		kind Kind
		get  func(Percentiles) int64
	}
	picks := []pick{
		{"publish p50", Publish, func(p Percentiles) int64 { return p.P50 }},
		{"publish p99", Publish, func(p Percentiles) int64 { return p.P99 }},
		{"publish p99.9", Publish, func(p Percentiles) int64 { return p.P999 }},
		{"end-to-end p99", EndToEnd, func(p Percentiles) int64 { return p.P99 }},
	}
	c := &chart{title: "Latency versus throughput", x: axis{label: "achieved publish rate (msg/s)", kind: scaleLinear, format: formatCount},
		y: nanosAxis}
	for _, pk := range picks {
		s := series{name: pk.name, markers: true}
		for _, st := range sorted {
			p := st.Summary.Latency.Get(pk.kind)
			if p.Count == 0 {
				continue
			}
			s.xs = append(s.xs, st.Summary.PublishRate)
			s.ys = append(s.ys, float64(pk.get(p)))
		}
		if len(s.xs) > 0 {
			c.series = append(c.series, s)
		}
	}
	return c
}

var reportTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1100px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.facts { display: flex; flex-wrap: wrap; gap: 0 24px; }
.note { color: #8a4b00; }
svg.chart { display: block; margin: 12px 0; border: 1px solid #eee; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{with .Notes}}<h2>Notes</h2><ul>{{range .}}<li class="note">{{.}}</li>{{end}}</ul>{{end}}
<div class="facts">
{{range .Sections}}{{if .Rows}}<div><h2>{{.Title}}</h2><table>{{range .Rows}}<tr><th>{{.K}}</th><td>{{.V}}</td></tr>{{end}}</table></div>{{end}}
{{end}}</div>
{{with .Latency}}<h2>Latency (whole run, from cumulative histograms)</h2>
<table><tr>{{range $.Header}}<th>{{.}}</th>{{end}}</tr>
{{range .}}<tr><th>{{.Name}}</th>{{range .Cells}}<td class="num">{{.}}</td>{{end}}</tr>
{{end}}</table>{{end}}
{{with .Steps}}<h2>Sweep steps</h2>
<table><tr>{{range $.StepHead}}<th>{{.}}</th>{{end}}</tr>
{{range .}}<tr>{{range .}}<td class="num">{{.}}</td>{{end}}</tr>
{{end}}</table>{{end}}
{{with .Charts}}<h2>Charts</h2>
{{range .}}{{.}}
{{end}}{{end}}
</body>
</html>
`))

// WriteSummary writes a short plain-text summary of r for a terminal.
func WriteSummary(w io.Writer, r *Result) error {
	// Key-value lines: a fixed first column, so the blocks before and after
	// the latency table line up.
	var werr error
	line := func(format string, args ...any) {
		key, rest, _ := strings.Cut(fmt.Sprintf(format, args...), "\t")
		if _, err := fmt.Fprintf(w, "%-11s %s\n", key, rest); err != nil && werr == nil {
			werr = err
		}
	}
	head := r.Scenario
	if r.GitRevision != "" {
		head += "  (git " + r.GitRevision + ")"
	}
	if !r.Started.IsZero() {
		head += "  " + formatTime(r.Started)
	}
	line("scenario\t%s", head)
	wl := r.Workload
	if wl.Topics > 0 {
		line("workload\t%d topic(s) x %d partitions, %d B, %dp/%dc, %s, %s (+%s warm-up)",
			wl.Topics, wl.PartitionsPerTopic, wl.MessageSize, wl.ProducersPerTopic, wl.ConsumerPerSubscription,
			rateText(wl.ProducerRate), wl.Duration, wl.Warmup)
	}
	if d := r.Durability; d.Level != "" || d.JournalSync {
		line("durability\t%s (journal fdatasync before ack: %t, E/W/A %d/%d/%d)", d.Level, d.JournalSync, d.EnsembleSize, d.WriteQuorum, d.AckQuorum)
	}
	if s := r.Summary; s.Measured > 0 {
		line("publish\t%s msg/s  %s  errors %d", formatCount(s.PublishRate), formatMiBps(s.PublishBytesRate), s.PublishErrors)
		line("consume\t%s msg/s  %s  backlog max %d", formatCount(s.ConsumeRate), formatMiBps(s.ConsumeBytesRate), s.MaxBacklog)
	}
	if len(r.Steps) > 0 {
		line("sweep\t%d steps:", len(r.Steps))
		for _, st := range r.Steps {
			line("\t%s target %s: %s msg/s, publish p99 %s, e2e p99 %s", st.Name, formatRate(st.TargetRate),
				formatCount(st.Summary.PublishRate), nanosOrDash(st.Summary.Latency.Publish, st.Summary.Latency.Publish.P99),
				nanosOrDash(st.Summary.Latency.EndToEnd, st.Summary.Latency.EndToEnd.P99))
		}
	}
	if werr != nil {
		return werr
	}
	var rows [][]string
	for _, k := range Kinds() {
		if p := r.Summary.Latency.Get(k); p.Count > 0 {
			rows = append(rows, append([]string{k.Label()}, latencyCells(p)...))
		}
	}
	if len(rows) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, strings.Join(latencyHeader, "\t")+"\t")
		for _, row := range rows {
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	m := r.Machine
	line("machine\t%d cores %s, %s, %s/%s %s, %s", m.Cores, m.CPUModel, formatBytes(float64(m.MemoryBytes)), m.OS, m.Arch, m.Kernel, m.GoVersion)
	for _, row := range limitRows(r.Limits) {
		line("limit\t%s: %s", row.K, row.V)
	}
	if e := r.Efficiency; e != (Efficiency{}) {
		line("efficiency\t%.2f busy cores, %s per busy core, %s of disk bandwidth, %s of loopback",
			e.BusyCores, formatMiBps(e.PublishBytesPerSecPerBusyCore), formatPercent(e.DiskShare), formatPercent(e.LoopbackShare))
	}
	for _, n := range r.Notes {
		line("note\t%s", n)
	}
	return werr
}
