package bench

import (
	"fmt"
	"time"

	"github.com/magnetar/magnetar/loadgen"
	"github.com/magnetar/magnetar/results"
)

// LoadgenWorkload turns a result file's workload into the load generator's
// (OMB's) form. Durations are carried in minutes there; a run should also
// pass them exactly through loadgen.RunOptions (see RunOptionsFor).
func LoadgenWorkload(w results.Workload) loadgen.Workload {
	warmup := w.Warmup.D().Minutes()
	lw := loadgen.Workload{
		Name:                    w.Name,
		Topics:                  w.Topics,
		PartitionsPerTopic:      w.PartitionsPerTopic,
		KeyDistributor:          loadgen.KeyDistributor(w.KeyDistributor),
		MessageSize:             w.MessageSize,
		SubscriptionsPerTopic:   w.SubscriptionsPerTopic,
		ProducersPerTopic:       w.ProducersPerTopic,
		ConsumerPerSubscription: w.ConsumerPerSubscription,
		ProducerRate:            w.ProducerRate,
		ConsumerBacklogSizeGB:   float64(w.ConsumerBacklogSizeBytes) / (1 << 30),
		TestDurationMinutes:     w.Duration.D().Minutes(),
		WarmupDurationMinutes:   &warmup,
	}
	if w.RandomBytesRatio > 0 {
		lw.UseRandomizedPayloads = true
		lw.RandomBytesRatio = w.RandomBytesRatio
	}
	lw.EnsureDefaults()
	return lw
}

// ResultWorkload turns the load generator's workload into a result file's,
// with the warm-up, measured length and interval the run used.
func ResultWorkload(w loadgen.Workload, warmup, duration, interval time.Duration) results.Workload {
	rw := results.Workload{
		Name:                     w.Name,
		Topics:                   w.Topics,
		PartitionsPerTopic:       w.PartitionsPerTopic,
		MessageSize:              w.MessageSize,
		ProducersPerTopic:        w.ProducersPerTopic,
		SubscriptionsPerTopic:    w.SubscriptionsPerTopic,
		ConsumerPerSubscription:  w.ConsumerPerSubscription,
		ProducerRate:             w.ProducerRate,
		KeyDistributor:           string(w.KeyDistributor),
		ConsumerBacklogSizeBytes: int64(w.ConsumerBacklogSizeGB * (1 << 30)),
		Duration:                 results.Duration(duration),
		Warmup:                   results.Duration(warmup),
		Interval:                 results.Duration(interval),
	}
	if w.UseRandomizedPayloads {
		rw.RandomBytesRatio = w.RandomBytesRatio
	}
	return rw
}

// ResultInfo is what a result file holds beside the load generator's
// report: what was run, where, on what machine, against what limits.
type ResultInfo struct {
	Scenario    string
	Description string
	// Target names where the load went (TargetInfo.Name).
	Target      string
	GitRevision string
	// Workload is the workload as configured (the report's measured
	// lengths may differ: a backlog run measures longer, an interrupted
	// one shorter).
	Workload   results.Workload
	Durability results.Durability
	Machine    results.Machine
	Limits     results.Limits
	// CPU, when set, covers the run: each interval and the measured phase
	// get the process's CPU seconds, and the result its efficiency.
	CPU   *CPUTrace
	Notes []string
}

// ResultFromReport converts a load generator report into a result: counts,
// rates, backlog, percentiles and encoded histograms carried over as they
// are (the histograms share package results' geometry), the warm-up's
// intervals left out, the measured intervals timed from the end of the
// warm-up, process CPU per interval and for the measured phase when
// info.CPU covers them, efficiency against info.Limits, and the report's
// problems as notes.
func ResultFromReport(rep *loadgen.Report, info ResultInfo) (*results.Result, error) {
	if rep == nil {
		return nil, fmt.Errorf("bench: no report")
	}
	r := &results.Result{
		FormatVersion: results.FormatVersion,
		Scenario:      info.Scenario,
		Description:   info.Description,
		Driver:        "magnetar",
		Target:        info.Target,
		Started:       rep.Started.Round(0).UTC(),
		Finished:      rep.Finished.Round(0).UTC(),
		GitRevision:   info.GitRevision,
		Workload:      info.Workload,
		Durability:    info.Durability,
		Machine:       info.Machine,
		Limits:        info.Limits,
	}
	if r.Target == "" {
		r.Target = rep.ServiceURL
	}
	sum, hists, notes := summarize(rep, info.CPU)
	r.Summary, r.Histograms = sum, hists
	r.Intervals = intervals(rep, rep.MeasureStart, info.CPU, info.Workload.Interval.D())
	r.Efficiency = results.ComputeEfficiency(r.Summary, r.Limits)
	r.Notes = append(append(append(r.Notes, info.Notes...), notes...), reportNotes(rep)...)
	return r, nil
}

// summarize returns the measured phase's summary and cumulative histograms,
// and notes on what could not be computed.
func summarize(rep *loadgen.Report, cpu *CPUTrace) (results.Summary, results.EncodedSet, []string) {
	c := counters(rep.Counters)
	s := results.Summary{
		Measured:     results.Duration(rep.Measured),
		TargetRate:   rep.TargetRate,
		Counters:     c,
		Rates:        results.RatesOver(c, rep.Measured),
		MaxBacklog:   rep.MaxBacklog,
		FinalBacklog: rep.FinalBacklog,
		Latency:      latencySet(rep.Latency),
	}
	var notes []string
	if cpu != nil && rep.Measured > 0 {
		if d, ok := cpu.Between(rep.MeasureStart, rep.MeasureStart.Add(rep.Measured)); ok {
			s.CPUSeconds = d.Seconds()
		} else {
			notes = append(notes, "process CPU was not sampled over the measured phase: no busy-core figures")
		}
	}
	return s, encodedSet(rep.Histograms), notes
}

// intervals converts the report's measured intervals (warm-up ones are
// left out), timing each from base. The run's last record covers only the
// moments between the last full interval and the end of the drain; when it
// is shorter than half the nominal interval it is merged into the one
// before (counts and histograms added), so that a few milliseconds of
// flushed receipts do not show as a spike of throughput.
func intervals(rep *loadgen.Report, base time.Time, cpu *CPUTrace, nominal time.Duration) []results.Interval {
	var out []results.Interval
	for i := range rep.Intervals {
		iv := &rep.Intervals[i]
		if iv.Warmup {
			continue
		}
		c := counters(iv.Counters)
		ri := results.Interval{
			Time:       iv.Time.Round(0).UTC(),
			Elapsed:    results.Duration(iv.Time.Sub(base)),
			Length:     results.Duration(iv.Length),
			Counters:   c,
			Rates:      results.RatesOver(c, iv.Length),
			Backlog:    iv.Backlog,
			Latency:    latencySet(iv.Latency),
			Histograms: encodedSet(iv.Histograms),
		}
		if d, ok := cpu.Between(iv.Time.Add(-iv.Length), iv.Time); ok {
			ri.CPUSeconds = d.Seconds()
		}
		out = append(out, ri)
	}
	if n := len(out); n >= 2 && nominal > 0 && out[n-1].Length.D() < nominal/2 {
		if merged, ok := mergeIntervals(out[n-2], out[n-1]); ok {
			out = append(out[:n-2], merged)
		}
	}
	return out
}

// mergeIntervals returns the record covering a and then b: counts, CPU and
// histograms added, percentiles recomputed from the merged histograms,
// b's end time and backlog. ok is false when a histogram does not decode.
func mergeIntervals(a, b results.Interval) (results.Interval, bool) {
	ha, err := a.Histograms.Decode()
	if err != nil {
		return a, false
	}
	hb, err := b.Histograms.Decode()
	if err != nil {
		return a, false
	}
	ha.Merge(hb)
	enc, err := ha.Encode()
	if err != nil {
		return a, false
	}
	m := b
	m.Length = a.Length + b.Length
	m.Counters = results.Counters{
		PublishedMsgs: a.PublishedMsgs + b.PublishedMsgs, PublishedBytes: a.PublishedBytes + b.PublishedBytes,
		PublishErrors: a.PublishErrors + b.PublishErrors,
		ConsumedMsgs:  a.ConsumedMsgs + b.ConsumedMsgs, ConsumedBytes: a.ConsumedBytes + b.ConsumedBytes,
	}
	m.Rates = results.RatesOver(m.Counters, m.Length.D())
	m.CPUSeconds = a.CPUSeconds + b.CPUSeconds
	m.Latency = ha.Summarize()
	m.Histograms = enc
	return m, true
}

// reportNotes are the report's problems and the counts a result file has
// no field for.
func reportNotes(rep *loadgen.Report) []string {
	var notes []string
	for _, p := range rep.Problems {
		notes = append(notes, "load generator: "+p)
	}
	if rep.Abandoned > 0 {
		notes = append(notes, fmt.Sprintf("load generator: %d sends abandoned when the run stopped (neither published nor failed)", rep.Abandoned))
	}
	if rep.TargetRate == 0 && rep.FinalRate > 0 {
		notes = append(notes, fmt.Sprintf("max rate: %.0f msg/s published on average over the measured phase; the rate controller's last rate was %.0f msg/s",
			rep.PublishRate, rep.FinalRate))
	}
	return notes
}

func counters(c loadgen.Counters) results.Counters {
	return results.Counters{
		PublishedMsgs: c.PublishedMsgs, PublishedBytes: c.PublishedBytes, PublishErrors: c.PublishErrors,
		ConsumedMsgs: c.ConsumedMsgs, ConsumedBytes: c.ConsumedBytes,
	}
}

func latencySet(l loadgen.LatencySummary) results.LatencySet {
	return results.LatencySet{
		Publish:     results.Percentiles(l.Publish),
		PublishSend: results.Percentiles(l.PublishSend),
		SendSlip:    results.Percentiles(l.SendSlip),
		EndToEnd:    results.Percentiles(l.EndToEnd),
	}
}

func encodedSet(e loadgen.EncodedLatencies) results.EncodedSet {
	return results.EncodedSet{Publish: e.Publish, PublishSend: e.PublishSend, SendSlip: e.SendSlip, EndToEnd: e.EndToEnd}
}
