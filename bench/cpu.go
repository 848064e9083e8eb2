package bench

import (
	"sort"
	"sync"
	"time"
)

// CPUTrace samples the process's CPU time (ProcessCPU) at a fixed period
// while a run goes on, so that the CPU spent in any span of the run (an
// interval, the measured phase) can be read afterwards by interpolating
// between samples: the per-interval records and the load generator's
// report are built after the fact, from wall-clock times.
type CPUTrace struct {
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	samples []cpuSample // ascending in time
	err     error
}

type cpuSample struct {
	at  time.Time // wall clock, no monotonic reading
	cpu time.Duration
}

// maxCPUSamples bounds a trace's memory: beyond it, every other sample is
// dropped and the period doubles (about 3 h of 100 ms samples fit first).
const maxCPUSamples = 1 << 17

// StartCPUTrace takes a sample now and then every period (default 100 ms
// when period <= 0) until Stop.
func StartCPUTrace(period time.Duration) *CPUTrace {
	if period <= 0 {
		period = 100 * time.Millisecond
	}
	t := &CPUTrace{stop: make(chan struct{}), done: make(chan struct{})}
	t.sample()
	go func() {
		defer close(t.done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		skip, n := 1, 0
		for {
			select {
			case <-t.stop:
				return
			case <-tick.C:
			}
			if n++; n%skip != 0 {
				continue
			}
			if t.sample() >= maxCPUSamples {
				t.thin()
				skip *= 2
			}
		}
	}()
	return t
}

func (t *CPUTrace) sample() int {
	c, err := ProcessCPU()
	at := time.Now().Round(0)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		if t.err == nil {
			t.err = err
		}
		return len(t.samples)
	}
	t.samples = append(t.samples, cpuSample{at: at, cpu: c.Total()})
	return len(t.samples)
}

func (t *CPUTrace) thin() {
	t.mu.Lock()
	defer t.mu.Unlock()
	kept := t.samples[:0]
	for i, s := range t.samples {
		if i%2 == 0 || i == len(t.samples)-1 {
			kept = append(kept, s)
		}
	}
	t.samples = kept
}

// Stop takes a last sample and ends the sampling; it returns the first
// error getrusage gave, if any. Stop is idempotent.
func (t *CPUTrace) Stop() error {
	select {
	case <-t.done:
	default:
		close(t.stop)
		<-t.done
		t.sample()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Between returns the CPU time the process spent from a to b, interpolated
// linearly between the samples around each end. ok is false when the trace
// does not cover [a, b] (a span outside the sampling, fewer than two
// samples, or a nil trace).
func (t *CPUTrace) Between(a, b time.Time) (cpu time.Duration, ok bool) {
	if t == nil || b.Before(a) {
		return 0, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ca, okA := t.at(a)
	cb, okB := t.at(b)
	if !okA || !okB {
		return 0, false
	}
	return max(0, cb-ca), true
}

// at interpolates the cumulative CPU time at x. Callers hold mu.
func (t *CPUTrace) at(x time.Time) (time.Duration, bool) {
	s := t.samples
	if len(s) < 2 || x.Before(s[0].at) || x.After(s[len(s)-1].at) {
		return 0, false
	}
	// First sample at or after x.
	i := sort.Search(len(s), func(i int) bool { return !s[i].at.Before(x) })
	if s[i].at.Equal(x) || i == 0 {
		return s[i].cpu, true
	}
	lo, hi := s[i-1], s[i]
	span := hi.at.Sub(lo.at)
	if span <= 0 {
		return hi.cpu, true
	}
	frac := float64(x.Sub(lo.at)) / float64(span)
	return lo.cpu + time.Duration(frac*float64(hi.cpu-lo.cpu)), true
}
