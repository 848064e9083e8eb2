package loadgen

import "time"

// rateController finds the maximum sustainable publish rate with the
// semantics of OMB's RateController: every period it compares what was
// published and received with what the rate asked for. If consumers fall
// behind (receive backlog above its limit) or producers cannot keep up
// (publish backlog above its limit), the ramping factor halves and the rate
// drops to what was actually achieved, less the backlog; otherwise the
// factor doubles (up to its maximum) and the rate grows by it. So "max
// rate" is the highest rate at which both backlogs stay bounded, not a
// burst peak.
//
// One deliberate difference: OMB's receive backlog is published − received
// even with several subscriptions, where every subscription receives every
// message; here it is subscriptions × published − received, the messages
// actually waiting.
type rateController struct {
	publishLimit, receiveLimit int64
	minRamp, maxRamp, ramp     float64
	prevPublished, prevRecv    int64
}

func newRateController(publishLimit, receiveLimit int64) *rateController {
	return &rateController{
		publishLimit: publishLimit, receiveLimit: receiveLimit,
		minRamp: 0.01, maxRamp: 1, ramp: 1,
	}
}

// next returns the rate for the next period, given the current rate, the
// period's length, and the totals published (acknowledged) and received
// (expected = subscriptions × published when consumers keep up).
func (c *rateController) next(rate float64, period time.Duration, totalPublished, totalReceived int64, subscriptions int) float64 {
	expected := int64(rate * period.Seconds())
	published := totalPublished - c.prevPublished
	received := totalReceived - c.prevRecv
	c.prevPublished, c.prevRecv = totalPublished, totalReceived
	perSecond := func(n int64) float64 { return float64(n) / period.Seconds() }

	if subscriptions > 0 {
		if backlog := int64(subscriptions)*totalPublished - totalReceived; backlog > c.receiveLimit {
			c.rampDown()
			// Received and the backlog count per subscription; compare them
			// per message.
			subs := int64(subscriptions)
			return min(perSecond(received/subs), perSecond(max(0, expected-backlog/subs)))
		}
	}
	if backlog := expected - published; backlog > c.publishLimit {
		c.rampDown()
		return min(perSecond(published), perSecond(max(0, expected-backlog)))
	}
	c.ramp = min(c.maxRamp, c.ramp*2)
	return rate + rate*c.ramp
}

func (c *rateController) rampDown() { c.ramp = max(c.minRamp, c.ramp/2) }
