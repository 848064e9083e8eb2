package results

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/golden-v1.json")

// goldenResult is a small result touching every field of format version 1.
func goldenResult(t *testing.T) *Result {
	t.Helper()
	start := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	set := NewHistogramSet()
	for i := range int64(10) {
		RecordClamped(set.Publish, 1_000_000+i*100_000)
		RecordClamped(set.PublishSend, 900_000+i*100_000)
		RecordClamped(set.SendSlip, 1_000+i*10)
		RecordClamped(set.EndToEnd, 2_000_000+i*200_000)
	}
	enc, err := set.Encode()
	if err != nil {
		t.Fatal(err)
	}
	lat := set.Summarize()
	c := Counters{PublishedMsgs: 10, PublishedBytes: 10240, PublishErrors: 1, ConsumedMsgs: 9, ConsumedBytes: 9216}
	iv := Interval{Time: start.Add(2 * time.Second), Elapsed: Duration(time.Second), Length: Duration(time.Second),
		Counters: c, Rates: RatesOver(c, time.Second), Backlog: 1, CPUSeconds: 0.25, Latency: lat, Histograms: enc}
	sum := Summary{Measured: Duration(time.Second), TargetRate: 10, Counters: c, Rates: RatesOver(c, time.Second),
		MaxBacklog: 1, FinalBacklog: 1, CPUSeconds: 0.25, Latency: lat}
	r := &Result{
		FormatVersion: FormatVersion, Scenario: "golden", Description: "every field of format version 1",
		Driver: "magnetar", Target: "standalone (in-process)", Started: start, Finished: start.Add(3 * time.Second),
		GitRevision: "0000000000000000000000000000000000000000",
		Workload: Workload{Name: "golden", Topics: 1, PartitionsPerTopic: 2, MessageSize: 1024, ProducersPerTopic: 1,
			SubscriptionsPerTopic: 1, ConsumerPerSubscription: 1, ProducerRate: 10, KeyDistributor: "NO_KEY",
			RandomBytesRatio: 0.5, ConsumerBacklogSizeBytes: 1 << 20, Duration: Duration(time.Second),
			Warmup: Duration(time.Second), Interval: Duration(time.Second)},
		Durability: Durability{Level: "fsync-per-group E1/W1/A1", JournalSync: true, JournalGroupWait: Duration(time.Millisecond),
			EnsembleSize: 1, WriteQuorum: 1, AckQuorum: 1, BatchingMaxDelay: Duration(time.Millisecond),
			BatchingMaxBytes: 131072, Description: "standalone"},
		Machine: Machine{Hostname: "host", OS: "linux", Arch: "amd64", Kernel: "6.18", CPUModel: "cpu", Cores: 2,
			MemoryBytes: 1 << 30, GoVersion: "go1.26.8"},
		Limits: Limits{Cores: 2,
			Disk: DiskLimit{Dir: "/data", Direct: true, BlockSize: 1 << 20, Bytes: 1 << 28, Elapsed: Duration(time.Second),
				BytesPerSec: 1 << 28},
			Fsync: FsyncLimit{Dir: "/data", Direct: true, BlockSize: 4096, Latency: lat.SendSlip, Histogram: enc.SendSlip},
			Loopback: LoopbackLimit{WriteSize: 1 << 20, Bytes: 1 << 31, Elapsed: Duration(time.Second),
				BytesPerSec: 1 << 31}},
		Summary:    sum,
		Histograms: enc,
		Intervals:  []Interval{iv},
		Steps:      []Step{{Name: "100%", TargetRate: 10, Summary: sum, Histograms: enc}},
		Notes:      []string{"golden"},
	}
	r.Efficiency = ComputeEfficiency(r.Summary, r.Limits)
	return r
}

func TestGoldenFile(t *testing.T) {
	name := filepath.Join("testdata", "golden-v1.json")
	b, err := Marshal(goldenResult(t))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	// Encoded histograms are zlib output, which may change with the Go
	// release; the text around them must not, and they must decode to the
	// same counts.
	if !bytes.Equal(encodedHistogram.ReplaceAll(b, []byte(`"<histogram>"`)), encodedHistogram.ReplaceAll(want, []byte(`"<histogram>"`))) {
		t.Fatalf("the writer no longer produces %s; if the format change is intended, bump FormatVersion "+
			"or regenerate with -update and review the diff", name)
	}
	back, err := Unmarshal(want)
	if err != nil {
		t.Fatal(err)
	}
	reencode(t, back)
	if !reflect.DeepEqual(back, goldenResult(t)) {
		t.Fatal("the golden file does not read back to the result it was written from")
	}
}

var encodedHistogram = regexp.MustCompile(`"HISTF[A-Za-z0-9+/=]*"`)

// reencode decodes and re-encodes every histogram of r with this build's
// encoder.
func reencode(t *testing.T, r *Result) {
	t.Helper()
	one := func(s *string) {
		h, err := DecodeHistogram(*s)
		if err != nil {
			t.Fatal(err)
		}
		if *s, err = EncodeHistogram(h); err != nil {
			t.Fatal(err)
		}
	}
	set := func(e *EncodedSet) {
		one(&e.Publish)
		one(&e.PublishSend)
		one(&e.SendSlip)
		one(&e.EndToEnd)
	}
	set(&r.Histograms)
	one(&r.Limits.Fsync.Histogram)
	for i := range r.Intervals {
		set(&r.Intervals[i].Histograms)
	}
	for i := range r.Steps {
		set(&r.Steps[i].Histograms)
	}
}
