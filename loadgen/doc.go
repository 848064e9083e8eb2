// Package loadgen is Magnetar's load generator: open-loop producers and
// listening consumers over the Pulsar protocol (package client), against any
// service URL, measured with HdrHistograms. It measures only through the
// socket; it knows nothing of the broker behind it.
//
// It promises:
//
//   - Open loop. All senders share one schedule: message k is due at
//     start + k/rate (a new schedule when the rate changes), never "sleep
//     between sends", and a send never waits for an earlier receipt (only
//     the client's bounded pending queue can hold a sender back, and that
//     shows as slip).
//   - Four latencies per message, each in its own histogram:
//     publish = receipt − intended send time (free of coordinated
//     omission), publish-send = receipt − actual send (OMB's publish
//     latency), send slip = actual − intended send (OMB's publish delay),
//     and end-to-end = consumer receipt − the send timestamp in the message.
//   - Nanoseconds. Histograms hold 1 ns to 12 h at 3 significant digits
//     (the geometry of package results). The send timestamp is the run
//     clock: Unix nanoseconds from one wall-clock reading at the start plus
//     the monotonic time since, so it never jumps, and producers and
//     consumers in one process share it exactly (across processes on one
//     host, up to their start readings).
//   - Histograms are merged by adding counts: every sender goroutine has a
//     recorder (its sends' slip; its messages' publish latencies, recorded
//     by the receipt callbacks; consumers' end-to-end latencies spread over
//     the recorders), swapped for an empty one at each interval and added
//     into the interval's histograms, which the measured ones are added
//     into the cumulative ones. Percentiles are never averaged.
//   - The warm-up is discarded (its intervals are kept, marked); the run
//     ends by duration or message count, drains what is in flight, and
//     stops promptly, without draining, when its context is cancelled.
//
// The timestamp travels in the payload, so reading it costs nothing extra:
//
//	 0               8                                   messageSize
//	+---------------+-----------------------------------+
//	| send time     | payload template (file, random)   |
//	| int64 BE, ns  |                                   |
//	+---------------+-----------------------------------+
//
// A zero timestamp marks the probe messages that check, before measuring,
// that every subscription receives. Messages shorter than 8 bytes carry
// the timestamp in the property "loadgen-ts" (decimal) instead.
//
// Workloads are OMB's (openmessaging/benchmark workloads/*.yaml decode into
// Workload unchanged), including max-rate mode (producerRate 0: OMB's rate
// controller, the highest rate at which publish and receive backlogs stay
// under 1,000 messages) and backlog mode (consumerBacklogSizeGB: consumers
// paused until the backlog is built, then drained while producers go on).
package loadgen
