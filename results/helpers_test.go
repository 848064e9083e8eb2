package results

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// lognormalNanos draws a latency around median m (ns) with log-spread sigma.
func lognormalNanos(rng *rand.Rand, m, sigma float64) int64 {
	return int64(m * math.Exp(sigma*rng.NormFloat64()))
}

// fillSet records n synthetic samples of every kind into s.
func fillSet(rng *rand.Rand, s *HistogramSet, n int, publishMedian float64) {
	for range n {
		slip := lognormalNanos(rng, 2e3, 0.8)
		send := lognormalNanos(rng, publishMedian, 0.4)
		RecordClamped(s.SendSlip, slip)
		RecordClamped(s.PublishSend, send)
		RecordClamped(s.Publish, send+slip)
		RecordClamped(s.EndToEnd, lognormalNanos(rng, 2*publishMedian, 0.5))
	}
}

var sample struct {
	once sync.Once
	doc  []byte
	err  error
}

// sampleResult returns a fresh copy of the sample result (built once: the
// histograms are slow to build under the race detector).
func sampleResult(t testing.TB) *Result {
	t.Helper()
	sample.once.Do(func() {
		sample.doc, sample.err = Marshal(buildSampleResult(t))
	})
	if sample.err != nil {
		t.Fatal(sample.err)
	}
	r, err := Unmarshal(sample.doc)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// buildSampleResult builds a complete, deterministic result: intervals with
// histograms, cumulative histograms, a sweep, limits and efficiency.
func buildSampleResult(t testing.TB) *Result {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 11, 21, 5, 30, 0, 0, time.UTC)
	r := &Result{
		FormatVersion: FormatVersion,
		Scenario:      "1-topic-16-partitions-1kb",
		Description:   "1 topic x 16 partitions, 1 KiB, fixed rate",
		Driver:        "magnetar",
		Target:        "standalone (in-process)",
		Started:       start,
		Finished:      start.Add(75 * time.Second),
		GitRevision:   "96b545e34c00",
		Workload: Workload{
			Name: "1 producer / 1 consumers on 1 topic", Topics: 1, PartitionsPerTopic: 16, MessageSize: 1024,
			ProducersPerTopic: 1, SubscriptionsPerTopic: 1, ConsumerPerSubscription: 1, ProducerRate: 1000,
			KeyDistributor: "NO_KEY", Duration: Duration(20 * time.Second), Warmup: Duration(5 * time.Second),
			Interval: Duration(time.Second),
		},
		Durability: Durability{
			Level: "fsync-per-group E1/W1/A1", JournalSync: true, JournalGroupWait: Duration(time.Millisecond),
			EnsembleSize: 1, WriteQuorum: 1, AckQuorum: 1, BatchingMaxDelay: Duration(time.Millisecond), BatchingMaxBytes: 128 << 10,
		},
		Machine: Machine{Hostname: "vm", OS: "linux", Arch: "amd64", Kernel: "6.18.44", CPUModel: "AMD EPYC",
			Cores: 2, MemoryBytes: 24 << 30, GoVersion: "go1.26.8"},
		Limits: Limits{
			Cores: 2,
			Disk:  DiskLimit{Dir: "/tmp/x", Direct: true, BlockSize: 1 << 20, Bytes: 256 << 20, Elapsed: Duration(time.Second), BytesPerSec: 256 << 20},
			Loopback: LoopbackLimit{WriteSize: 1 << 20, Bytes: 4 << 30, Elapsed: Duration(time.Second),
				BytesPerSec: 4 << 30},
		},
	}
	fs := NewHistogram()
	for range 500 {
		RecordClamped(fs, lognormalNanos(rng, 1.5e6, 0.3))
	}
	enc, err := EncodeHistogram(fs)
	if err != nil {
		t.Fatal(err)
	}
	r.Limits.Fsync = FsyncLimit{Dir: "/tmp/x", Direct: true, BlockSize: 4096, Latency: Summarize(fs), Histogram: enc}

	total := NewHistogramSet()
	var sum Counters
	var cpu float64
	for i := range 20 {
		s := NewHistogramSet()
		median := 1e6
		if i == 12 {
			median = 8e6 // a stall
		}
		fillSet(rng, s, 1000, median)
		total.Merge(s)
		e, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		c := Counters{PublishedMsgs: 1000, PublishedBytes: 1000 * 1024, ConsumedMsgs: 1000 - int64(i%3), ConsumedBytes: (1000 - int64(i%3)) * 1024}
		sum.PublishedMsgs += c.PublishedMsgs
		sum.PublishedBytes += c.PublishedBytes
		sum.ConsumedMsgs += c.ConsumedMsgs
		sum.ConsumedBytes += c.ConsumedBytes
		cpu += 0.4
		r.Intervals = append(r.Intervals, Interval{
			Time: start.Add(time.Duration(6+i) * time.Second), Elapsed: Duration(time.Duration(i+1) * time.Second),
			Length: Duration(time.Second), Counters: c, Rates: RatesOver(c, time.Second), Backlog: int64(i % 3),
			CPUSeconds: 0.4, Latency: s.Summarize(), Histograms: e,
		})
	}
	r.Summary = Summary{Measured: Duration(20 * time.Second), TargetRate: 1000, Counters: sum,
		Rates: RatesOver(sum, 20*time.Second), MaxBacklog: 2, FinalBacklog: 1, CPUSeconds: cpu, Latency: total.Summarize()}
	if r.Histograms, err = total.Encode(); err != nil {
		t.Fatal(err)
	}
	for i, rate := range []float64{500, 1000, 2000, 4000} {
		s := NewHistogramSet()
		fillSet(rng, s, 2000, 1e6*math.Pow(1.8, float64(i)))
		e, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		c := Counters{PublishedMsgs: int64(rate * 10), PublishedBytes: int64(rate * 10 * 1024)}
		r.Steps = append(r.Steps, Step{Name: []string{"12%", "25%", "50%", "100%"}[i], TargetRate: rate,
			Summary: Summary{Measured: Duration(10 * time.Second), TargetRate: rate, Counters: c,
				Rates: RatesOver(c, 10*time.Second), Latency: s.Summarize()}, Histograms: e})
	}
	r.Efficiency = ComputeEfficiency(r.Summary, r.Limits)
	r.Notes = []string{"sample result for tests"}
	return r
}
