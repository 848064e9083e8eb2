package loadgen

import (
	"testing"
	"time"
)

func TestRateController(t *testing.T) {
	c := newRateController(1000, 1000)
	period := 3 * time.Second
	rate := 10000.0
	var published, received int64
	step := func(pub, recv int64, subs int) float64 {
		published += pub
		received += recv
		rate = c.next(rate, period, published, received, subs)
		return rate
	}
	// Everything keeps up: the rate doubles (ramp factor 1).
	if got := step(30000, 30000, 1); got != 20000 {
		t.Fatalf("ramp up: %v, want 20000", got)
	}
	// Producers fall short by more than the limit: the rate drops to what
	// was achieved, and the ramp factor halves.
	if got := step(50000, 50000, 1); got != 50000.0/3 {
		t.Fatalf("publish backlog: %v, want %v", got, 50000.0/3)
	}
	if c.ramp != 0.5 {
		t.Fatalf("ramp factor %v, want 0.5", c.ramp)
	}
	// Consumers fall behind: the receive backlog (2000 > 1000) cuts the
	// rate to the consumption rate.
	if got := step(50000, 48000, 1); got != 16000 {
		t.Fatalf("receive backlog: %v, want 16000", got)
	}
	if c.ramp != 0.25 {
		t.Fatalf("ramp factor %v, want 0.25", c.ramp)
	}
	// Caught up again: growth resumes with a doubled factor (0.5).
	if got := step(48000, 50000, 1); got != 24000 {
		t.Fatalf("recovery: %v, want 24000", got)
	}
	// With two subscriptions every message is received twice: 2 x published
	// received is no backlog.
	c2 := newRateController(1000, 1000)
	if got := c2.next(1000, period, 3000, 6000, 2); got != 2000 {
		t.Fatalf("two subscriptions keeping up: %v, want 2000", got)
	}
	// The factor never drops below its minimum.
	c3 := newRateController(1000, 1000)
	for range 20 {
		c3.next(1e6, period, 0, 0, 0)
	}
	if c3.ramp != c3.minRamp {
		t.Fatalf("ramp factor %v, want the minimum %v", c3.ramp, c3.minRamp)
	}
}
