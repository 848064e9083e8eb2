package loadgen

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/magnetar/magnetar/client"
	"github.com/magnetar/magnetar/client/clienttest"
	"github.com/magnetar/magnetar/internal/testutil"
)

const testTimeout = 60 * time.Second

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startStub(t *testing.T) *clienttest.Broker {
	t.Helper()
	b, err := clienttest.Start(clienttest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func minutes(d time.Duration) *float64 {
	m := d.Minutes()
	return &m
}

// testOptions are RunOptions for tests: quiet, short intervals, timer
// waits only (the test machine is shared), partitioned topics created on
// the stub.
func testOptions(b *clienttest.Broker) RunOptions {
	return RunOptions{
		Interval: 200 * time.Millisecond,
		Logger:   quiet(),
		SpinWait: -1,
		CreateTopic: func(_ context.Context, topic string, n int) error {
			b.CreatePartitionedTopic(topic, n)
			return nil
		},
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// countAtOrAbove counts h's values in buckets from the first bucket
// boundary at or above v, and returns that boundary.
func countAtOrAbove(h *hdrhistogram.Histogram, v int64) (count, boundary int64) {
	boundary = -1
	for _, bar := range h.Distribution() {
		if bar.From >= v && boundary < 0 {
			boundary = bar.From
		}
		if boundary >= 0 {
			count += bar.Count
		}
	}
	return count, boundary
}

// TestStallIsInLatencyFromIntendedTime is the coordinated-omission test: at
// a fixed rate, the broker holds every receipt for 300 ms. The latency from
// the intended send time must show the stall for every message scheduled
// during it, while the latency from the actual send hides it (the sender
// was blocked, so the messages it sent late look fast).
func TestStallIsInLatencyFromIntendedTime(t *testing.T) {
	const (
		rate      = 2000
		pause     = 300 * time.Millisecond
		threshold = 250 * time.Millisecond
		pending   = 10
	)
	b := startStub(t)
	b.PauseReceiptsAfter(1000, pause)
	var mu sync.Mutex
	var samples []Sample
	o := testOptions(b)
	o.Producer = client.ProducerOptions{DisableBatching: true, MaxPendingMessages: pending}
	o.OnSample = func(s Sample) {
		mu.Lock()
		samples = append(samples, s)
		mu.Unlock()
	}
	w := Workload{Name: "stall", Topics: 1, MessageSize: 64, ProducersPerTopic: 1, SubscriptionsPerTopic: 1,
		ConsumerPerSubscription: 1, ProducerRate: rate, TestDurationMinutes: (1500 * time.Millisecond).Minutes(),
		WarmupDurationMinutes: minutes(0)}
	rep, err := Run(testContext(t), b.URL(), w, o)
	if err != nil {
		t.Fatal(err)
	}
	start, end, ok := b.PauseWindow()
	if !ok || end.Sub(start) < pause {
		t.Fatalf("the stub did not stall: %v..%v", start, end)
	}
	if rep.PublishErrors != 0 || rep.PublishedMsgs+rep.Abandoned != rep.Sent || rep.ConsumedMsgs != rep.PublishedMsgs {
		t.Fatalf("counts: %+v", rep.Counters)
	}
	pub, send, slip := rep.Latencies.Publish, rep.Latencies.PublishSend, rep.Latencies.SendSlip
	if time.Duration(pub.Max()) < pause {
		t.Fatalf("max latency from intended time %v is shorter than the %v stall", time.Duration(pub.Max()), pause)
	}
	if time.Duration(slip.Max()) < threshold {
		t.Fatalf("max send slip %v: the blocked sender's lateness is missing", time.Duration(slip.Max()))
	}

	above, boundary := countAtOrAbove(pub, int64(threshold))
	mu.Lock()
	defer mu.Unlock()
	if int64(len(samples)) != rep.Sent {
		t.Fatalf("%d samples for %d messages", len(samples), rep.Sent)
	}
	var inPause, sampledAbove int64
	for _, s := range samples {
		lat := s.Acked.Sub(s.Intended)
		if s.Err != nil {
			continue // abandoned when the run stopped
		}
		if lat != s.Sent.Sub(s.Intended)+s.Acked.Sub(s.Sent) {
			t.Fatalf("sample %+v", s)
		}
		if lat >= time.Duration(boundary) {
			sampledAbove++
		}
		// A message scheduled during the stall cannot be acknowledged
		// before it ends: its latency from the intended time includes the
		// rest of the stall. (After the stall, the sender's catch-up adds
		// more: that is latency too.)
		if !s.Intended.Before(start) && !s.Intended.After(end) && lat < end.Sub(s.Intended) {
			t.Errorf("message intended %v into the stall took only %v", s.Intended.Sub(start), lat)
		}
		if !s.Intended.Before(start) && !s.Intended.After(end.Add(-threshold)) {
			inPause++
		}
	}
	if above != sampledAbove {
		t.Fatalf("histogram counts %d latencies >= %v, the messages say %d", above, time.Duration(boundary), sampledAbove)
	}
	if above < inPause || inPause < rate/40 {
		t.Fatalf("%d latencies >= %v for %d messages scheduled in the first %v of the stall", above, time.Duration(boundary), inPause, pause-threshold)
	}
	// The view from the actual send time hides the stall: only messages
	// already in flight (at most the pending limit) and the one blocked in
	// SendAsync look slow there.
	sendAbove, _ := countAtOrAbove(send, int64(threshold))
	if sendAbove*5 > above {
		t.Fatalf("latency from send counts %d values >= %v (from intended: %d): it should hide the stall", sendAbove, threshold, above)
	}
	var stallSendAbove int
	for _, s := range samples {
		if s.Err == nil && !s.Sent.Before(start.Add(-100*time.Millisecond)) && !s.Sent.After(end) && s.Acked.Sub(s.Sent) >= threshold {
			stallSendAbove++
		}
	}
	if stallSendAbove > pending+1 {
		t.Fatalf("%d messages sent around the stall look slow from their send time; only the %d in flight and the one blocked can", stallSendAbove, pending)
	}
	t.Logf("stall %v: %d messages scheduled in its first %v; >= %v: %d from intended time, %d from actual send; max %v from intended, %v from send",
		end.Sub(start).Round(time.Millisecond), inPause, pause-threshold, threshold, above, sendAbove,
		time.Duration(pub.Max()).Round(time.Millisecond), time.Duration(send.Max()).Round(time.Millisecond))
}

func TestRunPartitionedWithKeys(t *testing.T) {
	b := startStub(t)
	o := testOptions(b)
	var out strings.Builder
	o.Out = &out
	o.Warmup = 300 * time.Millisecond
	o.Duration = 700 * time.Millisecond
	o.Producer = client.ProducerOptions{Compression: client.CompressionLZ4}
	o.SubscriptionType = "Shared"
	w := Workload{Name: "parts", Topics: 2, PartitionsPerTopic: 3, MessageSize: 200, ProducersPerTopic: 2,
		SubscriptionsPerTopic: 2, ConsumerPerSubscription: 2, ProducerRate: 3000, KeyDistributor: KeyRoundRobin,
		UseRandomizedPayloads: true, RandomBytesRatio: 0.5, RandomizedPayloadPoolSize: 10, TestDurationMinutes: 100}
	rep, err := Run(testContext(t), b.URL(), w, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Topics) != 2 {
		t.Fatalf("topics %v", rep.Topics)
	}
	for _, topic := range rep.Topics {
		for i := range 3 {
			if len(b.Entries(client.PartitionTopicName(topic, i))) == 0 {
				t.Fatalf("partition %d of %s got nothing", i, topic)
			}
		}
	}
	c := rep.Counters
	// Messages in flight when the warm-up ended are sent in it and
	// acknowledged after it, so only the whole run's sums must agree.
	var all Counters
	for _, iv := range rep.Intervals {
		all.add(&iv.Counters)
	}
	if all.PublishErrors != 0 || c.PublishedMsgs == 0 || all.PublishedMsgs+all.Abandoned != all.Sent || all.ConsumedMsgs != 2*all.PublishedMsgs {
		t.Fatalf("whole run %+v: want every sent message acknowledged and consumed by both subscriptions\n%s", all, out.String())
	}
	if c.PublishedBytes != 200*c.PublishedMsgs {
		t.Fatalf("published bytes %d for %d messages", c.PublishedBytes, c.PublishedMsgs)
	}
	l := rep.Latency
	if l.Publish.Count != c.PublishedMsgs || l.PublishSend.Count != c.PublishedMsgs || l.SendSlip.Count != c.Sent || l.EndToEnd.Count != c.ConsumedMsgs {
		t.Fatalf("histogram counts %d/%d/%d/%d for counters %+v", l.Publish.Count, l.PublishSend.Count, l.SendSlip.Count, l.EndToEnd.Count, c)
	}
	if l.Publish.P50 < l.PublishSend.P50 || l.Publish.Min <= 0 || l.EndToEnd.Min <= 0 {
		t.Fatalf("implausible latencies %+v", l)
	}
	// Intervals: the warm-up ones are marked and left out of the totals;
	// the measured ones add up to the totals.
	var warm, measured int
	var sum Counters
	for _, iv := range rep.Intervals {
		if iv.Warmup {
			warm++
			continue
		}
		measured++
		sum.add(&iv.Counters)
		if iv.PublishedMsgs > 0 && iv.Histograms.Publish == "" {
			t.Fatal("interval without its encoded histogram")
		}
	}
	if warm == 0 || measured == 0 || sum != rep.Counters {
		t.Fatalf("%d warm-up and %d measured intervals; measured sum %+v, totals %+v", warm, measured, sum, rep.Counters)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(rep.Intervals) || !strings.Contains(lines[0], "(warm-up)") || !strings.Contains(lines[len(lines)-1], "e2e p50") {
		t.Fatalf("progress lines:\n%s", out.String())
	}
	if rep.Warmup < 300*time.Millisecond || rep.Measured < 700*time.Millisecond {
		t.Fatalf("warm-up %v, measured %v", rep.Warmup, rep.Measured)
	}
}

func TestRunStopsAfterMaxMessages(t *testing.T) {
	b := startStub(t)
	o := testOptions(b)
	o.MaxMessages = 500
	o.Warmup = -1
	w := Workload{Name: "count", Topics: 1, MessageSize: 4, ProducersPerTopic: 3, SubscriptionsPerTopic: 1,
		ConsumerPerSubscription: 1, ProducerRate: 5000}
	rep, err := Run(testContext(t), b.URL(), w, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 500 || rep.PublishedMsgs != 500 || rep.ConsumedMsgs != 500 || rep.Latency.EndToEnd.Count != 500 {
		t.Fatalf("counters %+v, e2e count %d: want exactly 500 (4-byte messages carry the timestamp in a property)", rep.Counters, rep.Latency.EndToEnd.Count)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	b := startStub(t)
	o := testOptions(b)
	first := make(chan struct{})
	var once sync.Once
	o.Out = writerFunc(func(p []byte) (int, error) {
		once.Do(func() { close(first) })
		return len(p), nil
	})
	w := Workload{Name: "forever", Topics: 1, PartitionsPerTopic: 2, MessageSize: 100, ProducersPerTopic: 1,
		SubscriptionsPerTopic: 1, ConsumerPerSubscription: 1, ProducerRate: 1000, TestDurationMinutes: 60}
	ctx, cancel := context.WithCancel(testContext(t))
	type result struct {
		rep *Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := Run(ctx, b.URL(), w, o)
		done <- result{rep, err}
	}()
	select {
	case <-first:
	case <-time.After(testTimeout):
		t.Fatal("no progress line")
	}
	cancel()
	var r result
	select {
	case r = <-done:
	case <-time.After(testTimeout):
		t.Fatal("Run did not return after cancel")
	}
	if !errors.Is(r.err, context.Canceled) || r.rep == nil || !r.rep.Interrupted || len(r.rep.Intervals) == 0 {
		t.Fatalf("after cancel: err %v, report %+v", r.err, r.rep)
	}
	var all Counters
	for _, iv := range r.rep.Intervals {
		all.add(&iv.Counters)
	}
	if all.PublishErrors != 0 || all.Sent != all.PublishedMsgs+all.Abandoned {
		t.Fatalf("after cancel: %+v: every send must end published or abandoned, none as an error", all)
	}
	testutil.WaitFor(t, testTimeout, "the connections to close after Run returned", func() bool { return b.Connections() == 0 })
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestMaxRateRampsUp(t *testing.T) {
	b := startStub(t)
	o := testOptions(b)
	o.RateControlPeriod = 150 * time.Millisecond
	o.MaxRateStart = 500
	o.Duration = 1200 * time.Millisecond
	o.Warmup = -1
	w := Workload{Name: "max", Topics: 1, MessageSize: 100, ProducersPerTopic: 1, SubscriptionsPerTopic: 1,
		ConsumerPerSubscription: 1, ProducerRate: 0}
	rep, err := Run(testContext(t), b.URL(), w, o)
	if err != nil {
		t.Fatal(err)
	}
	peak := 0.0
	for _, iv := range rep.Intervals {
		peak = max(peak, iv.TargetRate)
	}
	if peak <= o.MaxRateStart || rep.TargetRate != 0 {
		t.Fatalf("the controller never raised the rate above %v (peak %v)", o.MaxRateStart, peak)
	}
	if rep.PublishedMsgs == 0 || rep.ConsumedMsgs != rep.PublishedMsgs {
		t.Fatalf("counters %+v", rep.Counters)
	}
}

func TestBacklogBuildAndDrain(t *testing.T) {
	b := startStub(t)
	o := testOptions(b)
	o.ReceiverQueueSize = 20
	o.Warmup = -1
	o.Duration = 200 * time.Millisecond
	const size = 1024
	w := Workload{Name: "backlog", Topics: 1, MessageSize: size, ProducersPerTopic: 1, SubscriptionsPerTopic: 1,
		ConsumerPerSubscription: 1, ProducerRate: 4000, ConsumerBacklogSizeGB: 400.0 * size / (1 << 30)}
	rep, err := Run(testContext(t), b.URL(), w, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.MaxBacklog < 300 {
		t.Fatalf("max backlog %d: the paused consumers did not let a backlog of 400 messages build", rep.MaxBacklog)
	}
	if rep.FinalBacklog != 0 || rep.ConsumedMsgs != rep.PublishedMsgs {
		t.Fatalf("backlog not drained: final %d, counters %+v", rep.FinalBacklog, rep.Counters)
	}
	if rep.Measured < o.Duration {
		t.Fatalf("measured %v: the run must last the duration after the drain", rep.Measured)
	}
}
