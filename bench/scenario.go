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

	// DefaultScenario is what `make bench` runs: fixed rate, 1 KiB, about
	// 75 s of load plus the limits, well inside two minutes.
	DefaultScenario = Scenario1Topic16P1KiB
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
	// Workload.Warmup of its own).
	StepDuration time.Duration
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
// 50k msg/s, 1 KiB or 100 B) with durations cut to fit a local run.
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
	backlog := base(1024, 50000)
	backlog.ConsumerBacklogSizeBytes = 1 << 30
	backlog.Duration = results.Duration(120 * time.Second)
	manyTopics := base(1024, 10000)
	manyTopics.Topics, manyTopics.PartitionsPerTopic = 10000, 1
	manyTopics.Warmup = results.Duration(30 * time.Second)
	sweep := base(1024, 0)
	sweep.Warmup = results.Duration(10 * time.Second)

	declared := []Scenario{
		{Name: ScenarioLimits, Kind: KindLimits,
			Description: "machine limits only: disk direct-write bandwidth with fdatasync, fdatasync latency, loopback TCP bandwidth, cores"},
		{Name: Scenario1Topic16P1KiB, Kind: KindFixedRate, Workload: named(base(1024, 50000), "1 topic / 16 partitions / 1 KiB"),
			Description: "1 topic x 16 partitions, 1 KiB messages, 1 producer and 1 consumer, 50k msg/s open loop"},
		{Name: Scenario1Topic16P100B, Kind: KindFixedRate, Workload: named(base(100, 50000), "1 topic / 16 partitions / 100 B"),
			Description: "1 topic x 16 partitions, 100 B messages, 1 producer and 1 consumer, 50k msg/s open loop"},
		{Name: ScenarioMaxRate1KiB, Kind: KindMaxRate, Workload: named(maxRate, "max rate 1 topic / 16 partitions / 1 KiB"),
			Description: "highest rate at which publish and receive backlogs stay within 1,000 messages (OMB's controller)"},
		{Name: ScenarioSweep1KiB, Kind: KindSweep, Workload: named(sweep, "latency vs throughput 1 topic / 16 partitions / 1 KiB"),
			SweepFractions: []float64{0.1, 0.25, 0.5, 0.75, 0.9, 1.0}, StepDuration: 20 * time.Second,
			Description: "find the max rate, then fixed-rate steps at 10/25/50/75/90/100% of it: the latency-versus-throughput curve"},
		{Name: ScenarioBacklog1KiB, Kind: KindBacklog, Workload: named(backlog, "backlog catch-up 1 topic / 16 partitions / 1 KiB"),
			Description: "build a 1 GiB backlog with consumers paused, then drain it while producers keep publishing at 50k msg/s"},
		{Name: Scenario10kTopics, Kind: KindFixedRate, Workload: named(manyTopics, "10,000 topics / 1 KiB"),
			Description: "10,000 topics of 1 partition, 1 producer and 1 consumer each, 10k msg/s in all: topic-count scaling"},
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
