package bench

import (
	"errors"
	"fmt"
	"time"

	"github.com/magnetar/magnetar/results"
)

// Errors.
var (
	// ErrUnknownScenario: no scenario of that name is registered.
	ErrUnknownScenario = errors.New("bench: unknown scenario")
	// ErrDuplicateScenario: a scenario of that name is already registered.
	ErrDuplicateScenario = errors.New("bench: duplicate scenario")
	// ErrBadScenario: a scenario's definition is inconsistent.
	ErrBadScenario = errors.New("bench: bad scenario")
)

// Kind says how a scenario drives the load.
type Kind string

// Scenario kinds.
const (
	// KindLimits measures only the machine's limits.
	KindLimits Kind = "limits"
	// KindFixedRate publishes open-loop at Workload.ProducerRate.
	KindFixedRate Kind = "fixed-rate"
	// KindMaxRate finds the highest rate at which backlogs stay bounded (OMB's
	// rate controller: start at 10k msg/s, re-evaluate every 3 s, grow while
	// publish and receive backlogs stay at or below 1,000 messages).
	KindMaxRate Kind = "max-rate"
	// KindSweep finds the max rate, then runs fixed-rate steps at
	// SweepFractions of it: the latency-versus-throughput curve.
	KindSweep Kind = "sweep"
	// KindBacklog builds Workload.ConsumerBacklogSizeBytes of backlog with
	// consumers paused, then lets them catch up while producers keep
	// publishing at the fixed rate.
	KindBacklog Kind = "backlog"
)

// Names of the declared scenarios.
const (
	ScenarioLimits        = "limits"
	Scenario1Topic16P1KiB = "1-topic-16-partitions-1kb"
	Scenario1Topic16P100B = "1-topic-16-partitions-100b"
	ScenarioMaxRate1KiB   = "max-rate-1-topic-16-partitions-1kb"
	ScenarioSweep1KiB     = "latency-vs-throughput-1-topic-16-partitions-1kb"
	ScenarioBacklog1KiB   = "backlog-catch-up-1-topic-16-partitions-1kb"
	Scenario10kTopics     = "10000-topics-1kb"

	// DefaultScenario is what `make bench` runs: fixed rate, 1 KiB, 15 s of
	// warm-up and 60 s measured, plus about 10 s of limits: inside two
	// minutes with the node's start-up.
	DefaultScenario = Scenario1Topic16P1KiB

	// DefaultRate is the fixed rate of the declared fixed-rate scenarios:
	// 10,000 msg/s, what a 2-core machine sustains with the broker, the
	// bookie and the load generator in one process. OMB's files of the same
	// names use 50,000 msg/s; pass that as Overrides.Rate (--rate 50000).
	DefaultRate = 10000

	// DefaultSlack is how long one load phase may run beyond its warm-up and
	// measured length (setup, probes, the final drain) before it is cut off.
	DefaultSlack = time.Minute
)

// Scenario is a named benchmark.
type Scenario struct {
	Name        string
	Description string
	Kind        Kind
	Workload    results.Workload
	// SweepFractions are the steps of a sweep as fractions of the max rate,
	// ascending, in (0, 1].
	SweepFractions []float64
	// StepDuration is the measured length of each sweep step (after
	// Workload.Warmup of its own). The max-rate search before the steps
	// measures for Workload.Duration.
	StepDuration time.Duration
	// MaxRate, for a sweep, is the rate of the 100% step; zero means find it
	// first with a max-rate run.
	MaxRate float64
	// StartRate, for max-rate and a sweep's search, is the rate controller's
	// first rate; zero means OMB's 10,000 msg/s.
	StartRate float64
	// Slack bounds each load phase: it is cut off (and the result says so)
	// after warm-up + measured length + Slack. It covers setup, building and
	// draining a backlog, and the final drain. Zero means DefaultSlack.
	Slack time.Duration
}

// Overrides change a declared scenario for one invocation; zero fields keep
// the scenario's values.
type Overrides struct {
	// Rate is the fixed rate (fixed-rate and backlog), the controller's start
	// rate (max-rate), or the 100% rate of a sweep, which then skips the
	// max-rate search.
	Rate float64
	// Duration is the measured length (of each step, for a sweep, and of its
	// max-rate search).
	Duration time.Duration
	// Warmup is the warm-up of each load phase; negative means none.
	Warmup time.Duration
	// Interval is the length of one per-interval record.
	Interval     time.Duration
	Topics       int
	Partitions   int
	MessageSize  int
	BacklogBytes int64 // backlog scenarios only
	// Slack replaces the scenario's Slack.
	Slack time.Duration
}

// Apply returns s changed by o, validated.
func (s Scenario) Apply(o Overrides) (Scenario, error) {
	if s.Kind == KindLimits {
		if o != (Overrides{}) {
			return s, fmt.Errorf("%w: %q measures only the machine: it takes no workload settings", ErrBadScenario, s.Name)
		}
		return s, nil
	}
	w := &s.Workload
	switch {
	case o.Rate < 0 || o.Duration < 0 || o.Interval < 0 || o.Topics < 0 || o.Partitions < 0 || o.MessageSize < 0 ||
		o.BacklogBytes < 0 || o.Slack < 0:
		return s, fmt.Errorf("%w: %q: negative setting in %+v", ErrBadScenario, s.Name, o)
	case o.BacklogBytes > 0 && s.Kind != KindBacklog:
		return s, fmt.Errorf("%w: %q is not a backlog scenario", ErrBadScenario, s.Name)
	}
	if o.Rate > 0 {
		switch s.Kind {
		case KindFixedRate, KindBacklog:
			w.ProducerRate = o.Rate
		case KindMaxRate:
			s.StartRate = o.Rate
		case KindSweep:
			s.MaxRate = o.Rate
		}
	}
	if o.Duration > 0 {
		w.Duration = results.Duration(o.Duration)
		if s.Kind == KindSweep {
			s.StepDuration = o.Duration
		}
	}
	switch {
	case o.Warmup < 0:
		w.Warmup = 0
	case o.Warmup > 0:
		w.Warmup = results.Duration(o.Warmup)
	}
	if o.Interval > 0 {
		w.Interval = results.Duration(o.Interval)
	}
	if o.Topics > 0 {
		w.Topics = o.Topics
	}
	if o.Partitions > 0 {
		w.PartitionsPerTopic = o.Partitions
	}
	if o.MessageSize > 0 {
		w.MessageSize = o.MessageSize
	}
	if o.BacklogBytes > 0 {
		w.ConsumerBacklogSizeBytes = o.BacklogBytes
	}
	if o.Slack > 0 {
		s.Slack = o.Slack
	}
	return s, s.Validate()
}

// slack is s.Slack or the default.
func (s Scenario) slack() time.Duration {
	if s.Slack > 0 {
		return s.Slack
	}
	return DefaultSlack
}

// MaxTime bounds the scenario's load phases: the longest it can run, limits
// and the target's start-up not included.
func (s Scenario) MaxTime() time.Duration {
	if s.Kind == KindLimits {
		return 0
	}
	phase := func(d time.Duration) time.Duration { return s.Workload.Warmup.D() + d + s.slack() }
	if s.Kind != KindSweep {
		return phase(s.Workload.Duration.D())
	}
	var t time.Duration
	if s.MaxRate == 0 {
		t = phase(s.Workload.Duration.D())
	}
	return t + time.Duration(len(s.SweepFractions))*phase(s.StepDuration)
}

// Validate reports an inconsistent definition.
func (s Scenario) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %q: %s", ErrBadScenario, s.Name, fmt.Sprintf(format, args...))
	}
	if s.Name == "" {
		return fmt.Errorf("%w: empty name", ErrBadScenario)
	}
	for _, c := range s.Name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return bad("name may hold only a-z, 0-9, '-' and '.'")
		}
	}
	switch s.Kind {
	case KindLimits:
		return nil
	case KindFixedRate, KindMaxRate, KindSweep, KindBacklog:
	default:
		return bad("unknown kind %q", s.Kind)
	}
	w := s.Workload
	switch {
	case w.Topics <= 0 || w.PartitionsPerTopic <= 0:
		return bad("topics %d x partitions %d", w.Topics, w.PartitionsPerTopic)
	case w.MessageSize <= 0:
		return bad("message size %d", w.MessageSize)
	case w.ProducersPerTopic <= 0 || w.SubscriptionsPerTopic <= 0 || w.ConsumerPerSubscription <= 0:
		return bad("producers %d, subscriptions %d, consumers %d per topic", w.ProducersPerTopic, w.SubscriptionsPerTopic, w.ConsumerPerSubscription)
	case w.Duration <= 0 || w.Warmup < 0:
		return bad("duration %s, warm-up %s", w.Duration, w.Warmup)
	case w.ProducerRate < 0:
		return bad("rate %v", w.ProducerRate)
	}
	if (s.Kind == KindMaxRate || s.Kind == KindSweep) != (w.ProducerRate == 0) {
		return bad("kind %s with producer rate %v (0 means max rate, and only max-rate and sweep use it)", s.Kind, w.ProducerRate)
	}
	if s.MaxRate < 0 || s.StartRate < 0 || s.Slack < 0 {
		return bad("max rate %v, start rate %v, slack %v", s.MaxRate, s.StartRate, s.Slack)
	}
	if s.Kind == KindBacklog && w.ConsumerBacklogSizeBytes <= 0 {
		return bad("backlog scenario without a backlog size")
	}
	if s.Kind == KindSweep {
		if len(s.SweepFractions) == 0 || s.StepDuration <= 0 {
			return bad("sweep needs fractions and a step duration")
		}
		prev := 0.0
		for _, f := range s.SweepFractions {
			if f <= prev || f > 1 {
				return bad("sweep fractions %v must ascend within (0, 1]", s.SweepFractions)
			}
			prev = f
		}
	}
	return nil
}

// Registry holds scenarios by name, in registration order. It is not safe
// for concurrent registration.
type Registry struct {
	byName map[string]Scenario
	order  []string
}

// NewRegistry returns a registry holding scenarios.
func NewRegistry(scenarios ...Scenario) (*Registry, error) {
	r := &Registry{byName: map[string]Scenario{}}
	for _, s := range scenarios {
		if err := r.Register(s); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Register adds s.
func (r *Registry) Register(s Scenario) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if _, dup := r.byName[s.Name]; dup {
		return fmt.Errorf("%w: %q", ErrDuplicateScenario, s.Name)
	}
	r.byName[s.Name] = s
	r.order = append(r.order, s.Name)
	return nil
}

// Lookup returns the scenario called name.
func (r *Registry) Lookup(name string) (Scenario, bool) {
	s, ok := r.byName[name]
	return s, ok
}

// Scenarios returns every scenario in registration order.
func (r *Registry) Scenarios() []Scenario {
	out := make([]Scenario, len(r.order))
	for i, n := range r.order {
		out[i] = r.byName[n]
	}
	return out
}

// DefaultRegistry returns a new registry holding the declared scenarios. The
// workloads follow OMB's files of the same shape (1 topic x 16 partitions,
// 1 KiB or 100 B, one producer and one consumer, batching 1 ms / 128 KiB)
// with the rates and durations cut to fit a local run on a small machine:
//
//	scenario                    rate                warm-up  measured
//	1-topic-16-partitions-1kb   10k msg/s           15 s     60 s
//	1-topic-16-partitions-100b  10k msg/s           15 s     60 s
//	max-rate-...                OMB's controller    15 s     60 s
//	latency-vs-throughput-...   max-rate search,    10 s     30 s search,
//	                            then 10..100% of it  each     20 s per step
//	backlog-catch-up-...        10k msg/s           10 s     256 MiB backlog built
//	                                                         and drained, then 30 s
//	10000-topics-1kb            10k msg/s in all    15 s     60 s
//
// Each load phase is cut off after warm-up + measured length + Slack
// (Scenario.MaxTime; `magnetar bench list` prints it). The many-topics
// scenario spends most of its time creating 10,000 topics, producers and
// consumers (about a minute against an in-memory stub broker on a loaded
// 2-core machine); Overrides.Topics (--topics) changes the count.
func DefaultRegistry() *Registry {
	base := func(size int, rate float64) results.Workload {
		return results.Workload{
			Topics: 1, PartitionsPerTopic: 16, MessageSize: size,
			ProducersPerTopic: 1, SubscriptionsPerTopic: 1, ConsumerPerSubscription: 1,
			ProducerRate: rate, KeyDistributor: "NO_KEY",
			Duration: results.Duration(60 * time.Second), Warmup: results.Duration(15 * time.Second),
			Interval: results.Duration(time.Second),
		}
	}
	named := func(w results.Workload, name string) results.Workload { w.Name = name; return w }

	maxRate := base(1024, 0)
	backlog := base(1024, DefaultRate)
	backlog.ConsumerBacklogSizeBytes = 256 << 20
	backlog.Duration = results.Duration(30 * time.Second)
	backlog.Warmup = results.Duration(10 * time.Second)
	manyTopics := base(1024, DefaultRate)
	manyTopics.Topics, manyTopics.PartitionsPerTopic = 10000, 1
	sweep := base(1024, 0)
	sweep.Warmup = results.Duration(10 * time.Second)
	sweep.Duration = results.Duration(30 * time.Second)

	declared := []Scenario{
		{Name: ScenarioLimits, Kind: KindLimits,
			Description: "machine limits only: disk direct-write bandwidth with fdatasync, fdatasync latency, loopback TCP bandwidth, cores"},
		{Name: Scenario1Topic16P1KiB, Kind: KindFixedRate, Workload: named(base(1024, DefaultRate), "1 topic / 16 partitions / 1 KiB"),
			Description: "1 topic x 16 partitions, 1 KiB messages, 1 producer and 1 consumer, 10k msg/s open loop (OMB's file: 50k, --rate 50000)"},
		{Name: Scenario1Topic16P100B, Kind: KindFixedRate, Workload: named(base(100, DefaultRate), "1 topic / 16 partitions / 100 B"),
			Description: "1 topic x 16 partitions, 100 B messages, 1 producer and 1 consumer, 10k msg/s open loop (OMB's file: 50k, --rate 50000)"},
		{Name: ScenarioMaxRate1KiB, Kind: KindMaxRate, Workload: named(maxRate, "max rate 1 topic / 16 partitions / 1 KiB"),
			Description: "highest rate at which publish and receive backlogs stay within 1,000 messages (OMB's controller)"},
		{Name: ScenarioSweep1KiB, Kind: KindSweep, Workload: named(sweep, "latency vs throughput 1 topic / 16 partitions / 1 KiB"),
			SweepFractions: []float64{0.1, 0.25, 0.5, 0.75, 0.9, 1.0}, StepDuration: 20 * time.Second,
			Description: "find the max rate (or take --rate), then fixed-rate steps at 10/25/50/75/90/100% of it: the latency-versus-throughput curve"},
		{Name: ScenarioBacklog1KiB, Kind: KindBacklog, Workload: named(backlog, "backlog catch-up 1 topic / 16 partitions / 1 KiB"),
			Slack:       3 * time.Minute,
			Description: "build a 256 MiB backlog with consumers paused, then drain it while producers keep publishing at 10k msg/s, then 30 s more"},
		{Name: Scenario10kTopics, Kind: KindFixedRate, Workload: named(manyTopics, "10,000 topics / 1 KiB"),
			Slack:       4 * time.Minute,
			Description: "10,000 topics of 1 partition, 1 producer and 1 consumer each, 10k msg/s in all: topic-count scaling (--topics to change the count)"},
	}
	// The declarations are constants of this package, validated by a test;
	// they are stored without Register's checks so that this cannot fail.
	r := &Registry{byName: map[string]Scenario{}}
	for _, s := range declared {
		r.byName[s.Name] = s
		r.order = append(r.order, s.Name)
	}
	return r
}
