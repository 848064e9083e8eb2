package loadgen

import (
	"bytes"
	"fmt"
	"io/fs"
	"math"
	"time"

	"gopkg.in/yaml.v3"
)

// KeyDistributor says which key each message gets, as OMB's
// keyDistributor does.
type KeyDistributor string

// Key distributors (OMB's KeyDistributorType names).
const (
	// NoKey sends messages without a key (round-robin over partitions).
	NoKey KeyDistributor = "NO_KEY"
	// KeyRoundRobin cycles through 10,000 random keys.
	KeyRoundRobin KeyDistributor = "KEY_ROUND_ROBIN"
	// RandomNano picks one of 10,000 random keys by the clock's nanoseconds.
	RandomNano KeyDistributor = "RANDOM_NANO"
)

// Workload describes a benchmark as OMB does (its workloads/*.yaml files
// decode into it unchanged; keys OMB forks added and this package does not
// know are ignored, as OMB ignores unknown keys).
type Workload struct {
	Name               string         `yaml:"name" json:"name"`
	Topics             int            `yaml:"topics" json:"topics"`
	PartitionsPerTopic int            `yaml:"partitionsPerTopic" json:"partitionsPerTopic"`
	KeyDistributor     KeyDistributor `yaml:"keyDistributor" json:"keyDistributor"`
	MessageSize        int            `yaml:"messageSize" json:"messageSize"`
	// UseRandomizedPayloads draws each message from a pool of
	// RandomizedPayloadPoolSize payloads whose first RandomBytesRatio of
	// bytes are random and the rest zero (for compression tests).
	UseRandomizedPayloads     bool    `yaml:"useRandomizedPayloads" json:"useRandomizedPayloads,omitempty"`
	RandomBytesRatio          float64 `yaml:"randomBytesRatio" json:"randomBytesRatio,omitempty"`
	RandomizedPayloadPoolSize int     `yaml:"randomizedPayloadPoolSize" json:"randomizedPayloadPoolSize,omitempty"`
	// PayloadFile is a file of exactly MessageSize bytes sent as every
	// message's payload (OMB's payload/payload-1Kb.data); it is read from
	// RunOptions.PayloadFS. Without it (or without a PayloadFS) the payload
	// is pseudo-random bytes.
	PayloadFile             string `yaml:"payloadFile" json:"payloadFile,omitempty"`
	SubscriptionsPerTopic   int    `yaml:"subscriptionsPerTopic" json:"subscriptionsPerTopic"`
	ProducersPerTopic       int    `yaml:"producersPerTopic" json:"producersPerTopic"`
	ConsumerPerSubscription int    `yaml:"consumerPerSubscription" json:"consumerPerSubscription"`
	// ProducerRate is the total publish rate, msg/s, over all producers;
	// 0 finds the maximum sustainable rate (OMB's rate controller).
	ProducerRate float64 `yaml:"producerRate" json:"producerRate"`
	// ConsumerBacklogSizeGB, when positive, pauses the consumers after the
	// warm-up until this many GiB of backlog built up, then lets them drain
	// it while producers keep publishing; the run lasts until the backlog
	// is drained and then TestDurationMinutes more.
	ConsumerBacklogSizeGB float64 `yaml:"consumerBacklogSizeGB" json:"consumerBacklogSizeGB,omitempty"`
	// BacklogDrainRatio is the share of the backlog that must be drained to
	// call it drained (OMB's backlogDrainRatio, default 1).
	BacklogDrainRatio float64 `yaml:"backlogDrainRatio" json:"backlogDrainRatio,omitempty"`
	// TestDurationMinutes is the measured length (after the warm-up).
	// Fractions are accepted.
	TestDurationMinutes float64 `yaml:"testDurationMinutes" json:"testDurationMinutes"`
	// WarmupDurationMinutes is the warm-up whose results are discarded;
	// absent means 1, as in OMB.
	WarmupDurationMinutes *float64 `yaml:"warmupDurationMinutes" json:"warmupDurationMinutes,omitempty"`
}

// ParseWorkload decodes a workload YAML document (OMB's format) and
// validates it.
func ParseWorkload(data []byte) (Workload, error) {
	var w Workload
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&w); err != nil {
		return Workload{}, fmt.Errorf("%w: %v", ErrInvalidWorkload, err)
	}
	w.EnsureDefaults()
	if err := w.Validate(); err != nil {
		return Workload{}, err
	}
	return w, nil
}

// LoadWorkload reads and parses the workload file name from fsys.
func LoadWorkload(fsys fs.FS, name string) (Workload, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return Workload{}, fmt.Errorf("loadgen: workload %s: %w", name, err)
	}
	w, err := ParseWorkload(data)
	if err != nil {
		return Workload{}, fmt.Errorf("workload %s: %w", name, err)
	}
	return w, nil
}

// EnsureDefaults fills the fields OMB defaults.
func (w *Workload) EnsureDefaults() {
	if w.KeyDistributor == "" {
		w.KeyDistributor = NoKey
	}
	if w.BacklogDrainRatio == 0 {
		w.BacklogDrainRatio = 1
	}
	if w.UseRandomizedPayloads && w.RandomizedPayloadPoolSize == 0 {
		w.RandomizedPayloadPoolSize = 1
	}
}

// Validate reports a workload that cannot run.
func (w *Workload) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidWorkload}, args...)...)
	}
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	switch {
	case w.Topics < 1:
		return bad("topics %d < 1", w.Topics)
	case w.PartitionsPerTopic < 0:
		return bad("partitionsPerTopic %d < 0", w.PartitionsPerTopic)
	case w.MessageSize < 1:
		return bad("messageSize %d < 1", w.MessageSize)
	case w.ProducersPerTopic < 1:
		return bad("producersPerTopic %d < 1", w.ProducersPerTopic)
	case w.SubscriptionsPerTopic < 0 || w.ConsumerPerSubscription < 0:
		return bad("negative subscriptions or consumers")
	case w.SubscriptionsPerTopic > 0 && w.ConsumerPerSubscription < 1:
		return bad("subscriptions without consumers")
	case !finite(w.ProducerRate) || w.ProducerRate < 0:
		return bad("producerRate %v", w.ProducerRate)
	case !finite(w.TestDurationMinutes) || w.TestDurationMinutes < 0:
		return bad("testDurationMinutes %v", w.TestDurationMinutes)
	case w.WarmupDurationMinutes != nil && (!finite(*w.WarmupDurationMinutes) || *w.WarmupDurationMinutes < 0):
		return bad("warmupDurationMinutes %v", *w.WarmupDurationMinutes)
	case !finite(w.ConsumerBacklogSizeGB) || w.ConsumerBacklogSizeGB < 0:
		return bad("consumerBacklogSizeGB %v", w.ConsumerBacklogSizeGB)
	case w.ConsumerBacklogSizeGB > 0 && w.ProducerRate == 0:
		return bad("a backlog cannot be built at max rate (producerRate 0), as in OMB")
	case w.ConsumerBacklogSizeGB > 0 && w.SubscriptionsPerTopic == 0:
		return bad("a backlog needs subscriptions")
	case w.BacklogDrainRatio < 0 || w.BacklogDrainRatio > 1:
		return bad("backlogDrainRatio %v outside [0, 1]", w.BacklogDrainRatio)
	case w.UseRandomizedPayloads && (w.RandomBytesRatio < 0 || w.RandomBytesRatio > 1 || w.RandomizedPayloadPoolSize < 1):
		return bad("randomized payloads need randomBytesRatio in [0, 1] and a pool size >= 1")
	}
	switch w.KeyDistributor {
	case NoKey, KeyRoundRobin, RandomNano:
	default:
		return bad("unknown keyDistributor %q", w.KeyDistributor)
	}
	return nil
}

// TestDuration is the measured length the workload asks for.
func (w *Workload) TestDuration() time.Duration {
	return time.Duration(w.TestDurationMinutes * float64(time.Minute))
}

// Warmup is the warm-up the workload asks for (1 minute when absent).
func (w *Workload) Warmup() time.Duration {
	if w.WarmupDurationMinutes == nil {
		return time.Minute
	}
	return time.Duration(*w.WarmupDurationMinutes * float64(time.Minute))
}

// Producers is the number of producers, Consumers the number of consumers.
func (w *Workload) Producers() int { return w.Topics * w.ProducersPerTopic }

// Consumers is the number of consumers.
func (w *Workload) Consumers() int {
	return w.Topics * w.SubscriptionsPerTopic * w.ConsumerPerSubscription
}
