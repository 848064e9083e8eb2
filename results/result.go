package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// FormatVersion is the version of the result file this package writes. It is
// part of the file format: bump it when a field changes meaning or a reader
// of the previous version would misread a new file.
const FormatVersion = 1

// Errors.
var (
	// ErrVersion: the file has a format version this package cannot read.
	ErrVersion = errors.New("results: unsupported format version")
	// ErrFormat: the file is not a well-formed result file.
	ErrFormat = errors.New("results: malformed result file")
)

// Result is one benchmark run: what was run, on what, against what limits,
// and what was measured.
type Result struct {
	FormatVersion int    `json:"formatVersion"`
	Scenario      string `json:"scenario"`
	Description   string `json:"description,omitempty"`
	// Driver names the system under test ("magnetar"); OMB's "driver".
	Driver string `json:"driver"`
	// Target is where the load went: "standalone (in-process)" or a service URL.
	Target      string    `json:"target"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished"`
	GitRevision string    `json:"gitRevision,omitempty"`

	Workload   Workload   `json:"workload"`
	Durability Durability `json:"durability"`
	Machine    Machine    `json:"machine"`
	Limits     Limits     `json:"limits"`

	// Summary covers the whole measured run (warm-up excluded). For a sweep it
	// is the last (highest-rate) step's summary, or zero.
	Summary Summary `json:"summary"`
	// Histograms are the cumulative histograms the Summary was computed from.
	Histograms EncodedSet `json:"histograms,omitzero"`
	Intervals  []Interval `json:"intervals,omitempty"`
	// Steps hold the fixed-rate steps of a latency-versus-throughput sweep.
	Steps      []Step     `json:"steps,omitempty"`
	Efficiency Efficiency `json:"efficiency,omitzero"`
	// Notes carry anything a reader must know to trust the numbers: a
	// fallback taken, a target rate missed, a validity warning.
	Notes []string `json:"notes,omitempty"`
}

// Workload describes the load, with OMB's workload key names where the
// concept is the same.
type Workload struct {
	Name                    string `json:"name,omitempty"`
	Topics                  int    `json:"topics"`
	PartitionsPerTopic      int    `json:"partitionsPerTopic"`
	MessageSize             int    `json:"messageSize"`
	ProducersPerTopic       int    `json:"producersPerTopic"`
	SubscriptionsPerTopic   int    `json:"subscriptionsPerTopic"`
	ConsumerPerSubscription int    `json:"consumerPerSubscription"`
	// ProducerRate is the total target rate in messages per second; 0 means
	// max rate (OMB's rate controller).
	ProducerRate   float64 `json:"producerRate"`
	KeyDistributor string  `json:"keyDistributor,omitempty"`
	// RandomBytesRatio is the share of each payload that is random (the rest
	// compresses well); OMB's randomBytesRatio.
	RandomBytesRatio float64 `json:"randomBytesRatio,omitempty"`
	// ConsumerBacklogSizeBytes > 0: accumulate this backlog before consumers
	// start, then drain it while producers keep publishing.
	ConsumerBacklogSizeBytes int64    `json:"consumerBacklogSizeBytes,omitempty"`
	Duration                 Duration `json:"duration"`
	Warmup                   Duration `json:"warmup"`
	// Interval is the length of one per-interval record.
	Interval Duration `json:"interval,omitzero"`
}

// Durability states how durable an acknowledged message was.
type Durability struct {
	// Level is a short label, e.g. "fsync-per-group E1/W1/A1".
	Level string `json:"level,omitempty"`
	// JournalSync: the bookie acknowledged only after fdatasync of the journal.
	JournalSync      bool     `json:"journalSync"`
	JournalGroupWait Duration `json:"journalGroupWait,omitzero"`
	EnsembleSize     int      `json:"ensembleSize,omitempty"`
	WriteQuorum      int      `json:"writeQuorum,omitempty"`
	AckQuorum        int      `json:"ackQuorum,omitempty"`
	BatchingMaxDelay Duration `json:"batchingMaxDelay,omitzero"`
	BatchingMaxBytes int      `json:"batchingMaxBytes,omitempty"`
	Description      string   `json:"description,omitempty"`
}

// Machine holds facts about the host the run used.
type Machine struct {
	Hostname    string `json:"hostname,omitempty"`
	OS          string `json:"os"`
	Arch        string `json:"arch"`
	Kernel      string `json:"kernel,omitempty"`
	CPUModel    string `json:"cpuModel,omitempty"`
	Cores       int    `json:"cores"`
	MemoryBytes uint64 `json:"memoryBytes,omitempty"`
	GoVersion   string `json:"goVersion"`
}

// Limits are the machine's own limits, measured in the same run.
type Limits struct {
	Cores    int           `json:"cores"`
	Disk     DiskLimit     `json:"disk,omitzero"`
	Fsync    FsyncLimit    `json:"fsync,omitzero"`
	Loopback LoopbackLimit `json:"loopback,omitzero"`
}

// DiskLimit is the sequential write bandwidth of a directory's device with a
// data sync after every block, as a journal writes.
type DiskLimit struct {
	Dir string `json:"dir"`
	// Direct: written with O_DIRECT. False means the filesystem refused it and
	// the figure is buffered writes plus fdatasync.
	Direct      bool     `json:"direct"`
	BlockSize   int      `json:"blockSize"`
	Bytes       int64    `json:"bytes"`
	Elapsed     Duration `json:"elapsed"`
	BytesPerSec float64  `json:"bytesPerSec"`
}

// FsyncLimit is the latency of one small aligned write plus fdatasync.
type FsyncLimit struct {
	Dir       string      `json:"dir"`
	Direct    bool        `json:"direct"`
	BlockSize int         `json:"blockSize"`
	Latency   Percentiles `json:"latency"`
	// Histogram is the encoded latency histogram (nanoseconds).
	Histogram string `json:"histogram,omitempty"`
}

// LoopbackLimit is the TCP throughput of one connection over 127.0.0.1.
type LoopbackLimit struct {
	WriteSize   int      `json:"writeSize"`
	Bytes       int64    `json:"bytes"`
	Elapsed     Duration `json:"elapsed"`
	BytesPerSec float64  `json:"bytesPerSec"`
}

// Percentiles summarise one latency histogram. Values are nanoseconds; a zero
// Count means nothing was recorded.
type Percentiles struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	Min   int64   `json:"min"`
	P50   int64   `json:"p50"`
	P75   int64   `json:"p75"`
	P90   int64   `json:"p90"`
	P95   int64   `json:"p95"`
	P99   int64   `json:"p99"`
	P999  int64   `json:"p99.9"`
	P9999 int64   `json:"p99.99"`
	Max   int64   `json:"max"`
}

// Kind names one of the four latency histograms of a run.
type Kind string

// The latency kinds, in report order.
const (
	// Publish is ack − intended send time: the latency a user of an open-loop
	// system sees, including any wait behind a stalled predecessor.
	Publish Kind = "publish"
	// PublishSend is ack − actual send time (OMB's publish latency).
	PublishSend Kind = "publishSend"
	// SendSlip is actual − intended send time (OMB's publish delay).
	SendSlip Kind = "sendSlip"
	// EndToEnd is consumer receive time − publish timestamp in the message.
	EndToEnd Kind = "endToEnd"
)

// Kinds lists every latency kind in report order.
func Kinds() []Kind { return []Kind{Publish, PublishSend, SendSlip, EndToEnd} }

// Label is the kind's human name.
func (k Kind) Label() string {
	switch k {
	case Publish:
		return "publish (from intended time)"
	case PublishSend:
		return "publish (from actual send)"
	case SendSlip:
		return "send slip (actual - intended)"
	case EndToEnd:
		return "end-to-end"
	}
	return string(k)
}

// Short is the kind's name in chart legends.
func (k Kind) Short() string {
	switch k {
	case Publish:
		return "publish (intended)"
	case PublishSend:
		return "publish (sent)"
	case SendSlip:
		return "send slip"
	case EndToEnd:
		return "end-to-end"
	}
	return string(k)
}

// LatencySet holds the percentiles of each latency kind.
type LatencySet struct {
	Publish     Percentiles `json:"publish"`
	PublishSend Percentiles `json:"publishSend"`
	SendSlip    Percentiles `json:"sendSlip"`
	EndToEnd    Percentiles `json:"endToEnd"`
}

// Get returns the percentiles of kind k (zero for an unknown kind).
func (s LatencySet) Get(k Kind) Percentiles {
	if p := s.ptr(k); p != nil {
		return *p
	}
	return Percentiles{}
}

// Set stores the percentiles of kind k; unknown kinds are ignored.
func (s *LatencySet) Set(k Kind, p Percentiles) {
	if q := s.ptr(k); q != nil {
		*q = p
	}
}

func (s *LatencySet) ptr(k Kind) *Percentiles {
	switch k {
	case Publish:
		return &s.Publish
	case PublishSend:
		return &s.PublishSend
	case SendSlip:
		return &s.SendSlip
	case EndToEnd:
		return &s.EndToEnd
	}
	return nil
}

// EncodedSet holds an encoded histogram (see EncodeHistogram) per latency
// kind; an empty string means none was recorded.
type EncodedSet struct {
	Publish     string `json:"publish,omitempty"`
	PublishSend string `json:"publishSend,omitempty"`
	SendSlip    string `json:"sendSlip,omitempty"`
	EndToEnd    string `json:"endToEnd,omitempty"`
}

// Get returns the encoded histogram of kind k.
func (e EncodedSet) Get(k Kind) string {
	switch k {
	case Publish:
		return e.Publish
	case PublishSend:
		return e.PublishSend
	case SendSlip:
		return e.SendSlip
	case EndToEnd:
		return e.EndToEnd
	}
	return ""
}

// Set stores the encoded histogram of kind k; unknown kinds are ignored.
func (e *EncodedSet) Set(k Kind, s string) {
	switch k {
	case Publish:
		e.Publish = s
	case PublishSend:
		e.PublishSend = s
	case SendSlip:
		e.SendSlip = s
	case EndToEnd:
		e.EndToEnd = s
	}
}

// Counters are the message and byte counts of a span of time.
type Counters struct {
	PublishedMsgs  int64 `json:"publishedMsgs"`
	PublishedBytes int64 `json:"publishedBytes"`
	PublishErrors  int64 `json:"publishErrors"`
	ConsumedMsgs   int64 `json:"consumedMsgs"`
	ConsumedBytes  int64 `json:"consumedBytes"`
}

// Rates are Counters divided by the span's length.
type Rates struct {
	PublishRate      float64 `json:"publishRate"`      // msg/s
	PublishBytesRate float64 `json:"publishBytesRate"` // bytes/s
	PublishErrorRate float64 `json:"publishErrorRate"` // errors/s
	ConsumeRate      float64 `json:"consumeRate"`      // msg/s
	ConsumeBytesRate float64 `json:"consumeBytesRate"` // bytes/s
}

// RatesOver divides c by d; a non-positive d gives zero rates.
func RatesOver(c Counters, d time.Duration) Rates {
	if d <= 0 {
		return Rates{}
	}
	s := d.Seconds()
	return Rates{
		PublishRate:      float64(c.PublishedMsgs) / s,
		PublishBytesRate: float64(c.PublishedBytes) / s,
		PublishErrorRate: float64(c.PublishErrors) / s,
		ConsumeRate:      float64(c.ConsumedMsgs) / s,
		ConsumeBytesRate: float64(c.ConsumedBytes) / s,
	}
}

// Interval is one per-interval record.
type Interval struct {
	// Time is the wall-clock end of the interval.
	Time time.Time `json:"time"`
	// Elapsed is the end of the interval since the measurement started
	// (warm-up excluded).
	Elapsed Duration `json:"elapsed"`
	Length  Duration `json:"length"`
	Counters
	Rates
	// Backlog is messages published but not yet consumed, summed over
	// subscriptions, at the end of the interval.
	Backlog int64 `json:"backlog"`
	// CPUSeconds is the process's user+system CPU time spent in the interval.
	CPUSeconds float64    `json:"cpuSeconds"`
	Latency    LatencySet `json:"latency"`
	Histograms EncodedSet `json:"histograms,omitzero"`
}

// Summary covers a whole measured span: a run, or one step of a sweep.
type Summary struct {
	// Measured is the wall time measured (warm-up excluded).
	Measured Duration `json:"measured"`
	// TargetRate is the rate asked for, msg/s; 0 for max rate.
	TargetRate float64 `json:"targetRate"`
	Counters
	Rates
	MaxBacklog   int64      `json:"maxBacklog"`
	FinalBacklog int64      `json:"finalBacklog"`
	CPUSeconds   float64    `json:"cpuSeconds"`
	Latency      LatencySet `json:"latency"`
}

// Step is one fixed-rate step of a latency-versus-throughput sweep.
type Step struct {
	Name       string     `json:"name,omitempty"`
	TargetRate float64    `json:"targetRate"`
	Summary    Summary    `json:"summary"`
	Histograms EncodedSet `json:"histograms,omitzero"`
}

// Efficiency states the run against the machine's limits.
type Efficiency struct {
	// BusyCores is process CPU seconds per wall second.
	BusyCores float64 `json:"busyCores"`
	// PublishBytesPerSecPerBusyCore is payload bytes/s divided by BusyCores.
	PublishBytesPerSecPerBusyCore float64 `json:"publishBytesPerSecPerBusyCore"`
	PublishMsgsPerSecPerBusyCore  float64 `json:"publishMsgsPerSecPerBusyCore"`
	// DiskShare is publish payload bytes/s over the measured direct-write
	// bandwidth: the share of the journal device the payload alone uses.
	DiskShare float64 `json:"diskShare"`
	// LoopbackShare is (publish + consume) payload bytes/s over the measured
	// loopback bandwidth.
	LoopbackShare float64 `json:"loopbackShare"`
}

// ComputeEfficiency states s against l. Figures whose denominator was not
// measured are zero.
func ComputeEfficiency(s Summary, l Limits) Efficiency {
	var e Efficiency
	wall := time.Duration(s.Measured).Seconds()
	if wall > 0 && s.CPUSeconds > 0 {
		e.BusyCores = s.CPUSeconds / wall
		e.PublishBytesPerSecPerBusyCore = s.PublishBytesRate / e.BusyCores
		e.PublishMsgsPerSecPerBusyCore = s.PublishRate / e.BusyCores
	}
	if l.Disk.BytesPerSec > 0 {
		e.DiskShare = s.PublishBytesRate / l.Disk.BytesPerSec
	}
	if l.Loopback.BytesPerSec > 0 {
		e.LoopbackShare = (s.PublishBytesRate + s.ConsumeBytesRate) / l.Loopback.BytesPerSec
	}
	return e
}

// Duration is a time.Duration written as a Go duration string ("1m30s").
// Unmarshalling also accepts a JSON number of nanoseconds.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, time.Duration(d).String()), nil
}

// UnmarshalJSON reads a duration string or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%w: duration %q: %v", ErrFormat, s, err)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("%w: duration %s: %v", ErrFormat, b, err)
	}
	*d = Duration(n)
	return nil
}
