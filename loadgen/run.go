package loadgen

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magnetar/magnetar/client"
)

// clock is the run's clock: Unix nanoseconds derived from one wall-clock
// reading at the start plus the monotonic time since, so it never jumps
// within the process, and processes on one host agree to within the
// precision of their start readings.
type clock struct {
	base     time.Time
	baseUnix int64
}

func newClock() clock {
	t := time.Now()
	return clock{base: t, baseUnix: t.UnixNano()}
}

func (c clock) now() int64 { return c.baseUnix + int64(time.Since(c.base)) }

// time converts a clock value back to a time.Time that keeps the monotonic
// reading.
func (c clock) time(v int64) time.Time { return c.base.Add(time.Duration(v - c.baseUnix)) }

// timestampProperty carries the send timestamp of messages shorter than 8
// bytes.
const timestampProperty = "loadgen-ts"

// schedule is the open-loop plan shared by all senders: message k is due
// at start + k/rate. A new rate installs a new schedule.
type schedule struct {
	start int64
	rate  float64
	next  atomic.Int64
}

func (s *schedule) due(k int64) int64 { return s.start + int64(float64(k)*1e9/s.rate) }

// runner is one Run.
type runner struct {
	w   Workload
	o   RunOptions
	clk clock
	cl  *client.Client

	topics    []string
	producers []*client.Producer
	consumers []*client.Consumer
	recs      []*recorder
	payloads  [][]byte
	keys      []string
	size      int
	subs      int
	subType   client.SubscriptionType

	sched       atomic.Pointer[schedule]
	measuring   atomic.Bool
	remaining   atomic.Int64
	exhausted   chan struct{}
	exhaustOnce sync.Once
	stopping    atomic.Bool
	probes      atomic.Int64
	ackCB       client.SendCallback
}

// Run runs workload w against the service at serviceURL and returns its
// report. It creates the topics, consumers and producers, checks with one
// probe message per producer that every subscription receives, then sends
// on the open-loop schedule through the warm-up and the measurement, and
// finally waits (at most DrainTimeout) for receipts in flight and for the
// consumers to catch up.
//
// When ctx is done Run stops at once, without draining, and returns the
// report so far together with ctx's error.
func Run(ctx context.Context, serviceURL string, w Workload, opts RunOptions) (*Report, error) {
	w.EnsureDefaults()
	if err := w.Validate(); err != nil {
		return nil, err
	}
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Duration <= 0 && w.TestDuration() <= 0 && opts.MaxMessages == 0 {
		return nil, fmt.Errorf("%w: the run has no end: no duration and no message count", ErrInvalidOptions)
	}
	subType, _ := client.ParseSubscriptionType(opts.SubscriptionType)
	r := &runner{w: w, o: opts, clk: newClock(), size: w.MessageSize, subs: w.SubscriptionsPerTopic,
		subType: subType, exhausted: make(chan struct{})}
	if err := r.preparePayloads(); err != nil {
		return nil, err
	}
	cl, err := client.Dial(ctx, serviceURL, opts.Client)
	if err != nil {
		return nil, err
	}
	r.cl = cl
	defer r.cl.Close()
	if err := r.setup(ctx); err != nil {
		r.closeAll()
		return nil, err
	}
	rep := r.run(ctx)
	rep.ServiceURL = serviceURL
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	return rep, nil
}

// preparePayloads builds the payload pool and the key pool.
func (r *runner) preparePayloads() error {
	w := &r.w
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	fill := func(b []byte) {
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
	}
	switch {
	case r.o.Payload != nil:
		if len(r.o.Payload) != w.MessageSize {
			return fmt.Errorf("%w: payload of %d bytes for messageSize %d", ErrInvalidOptions, len(r.o.Payload), w.MessageSize)
		}
		r.payloads = [][]byte{r.o.Payload}
	case w.UseRandomizedPayloads:
		random := int(float64(w.MessageSize) * w.RandomBytesRatio)
		for range w.RandomizedPayloadPoolSize {
			p := make([]byte, w.MessageSize)
			fill(p[:random])
			r.payloads = append(r.payloads, p)
		}
	case w.PayloadFile != "" && r.o.PayloadFS != nil:
		p, err := fs.ReadFile(r.o.PayloadFS, w.PayloadFile)
		if err != nil {
			return fmt.Errorf("loadgen: payload file: %w", err)
		}
		if len(p) != w.MessageSize {
			return fmt.Errorf("%w: payload file %s has %d bytes, messageSize is %d", ErrInvalidWorkload, w.PayloadFile, len(p), w.MessageSize)
		}
		r.payloads = [][]byte{p}
	default:
		p := make([]byte, w.MessageSize)
		fill(p)
		r.payloads = [][]byte{p}
	}
	if w.KeyDistributor != NoKey {
		r.keys = make([]string, 10000)
		var b [7]byte
		for i := range r.keys {
			fill(b[:])
			r.keys[i] = base64.RawURLEncoding.EncodeToString(b[:])
		}
	}
	return nil
}

// parallel runs f(0..n-1) with at most limit at a time and returns the
// first error.
func parallel(n, limit int, f func(i int) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, limit)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := f(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

func randomSuffix() string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 7)
	for i := range b {
		b[i] = letters[rand.IntN(len(letters))]
	}
	return string(b)
}

// setup creates topics, consumers and producers and waits until every
// subscription received a probe message from every producer.
func (r *runner) setup(ctx context.Context) error {
	w, o := &r.w, &r.o
	log := o.Logger
	start := time.Now()
	suffix := randomSuffix()
	for i := range w.Topics {
		r.topics = append(r.topics, fmt.Sprintf("%s-%07d-%s", o.TopicPrefix, i, suffix))
	}
	if w.PartitionsPerTopic > 0 {
		err := parallel(len(r.topics), o.CreateParallelism, func(i int) error {
			if o.CreateTopic != nil {
				if err := o.CreateTopic(ctx, r.topics[i], w.PartitionsPerTopic); err != nil {
					return fmt.Errorf("loadgen: create topic %s: %w", r.topics[i], err)
				}
			}
			n, err := r.cl.TopicPartitions(ctx, r.topics[i])
			if err != nil {
				return err
			}
			if n != w.PartitionsPerTopic {
				return fmt.Errorf("%w: topic %s has %d partitions, the workload wants %d (set RunOptions.CreateTopic)",
					ErrInvalidOptions, r.topics[i], n, w.PartitionsPerTopic)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	senders := o.Senders
	if senders == 0 {
		senders = min(w.Producers(), runtime.GOMAXPROCS(0))
	}
	senders = max(1, min(senders, w.Producers()))
	for range senders {
		r.recs = append(r.recs, newRecorder())
	}
	// Consumers first, so that they see the probes.
	r.consumers = make([]*client.Consumer, w.Consumers())
	perTopic := w.SubscriptionsPerTopic * w.ConsumerPerSubscription
	subNames := make([]string, w.SubscriptionsPerTopic)
	for i := range subNames {
		subNames[i] = fmt.Sprintf("sub-%03d-%s", i, randomSuffix())
	}
	err := parallel(len(r.consumers), o.CreateParallelism, func(i int) error {
		topic := r.topics[i/perTopic]
		sub := subNames[(i%perTopic)/w.ConsumerPerSubscription]
		c, err := r.cl.Subscribe(ctx, client.ConsumerOptions{
			Topic: topic, Subscription: sub, Type: r.subType, InitialPosition: client.Earliest,
			ReceiverQueueSize: o.ReceiverQueueSize, Listener: r.listener(r.recs[i%len(r.recs)]),
		})
		r.consumers[i] = c
		return err
	})
	if err != nil {
		return err
	}
	r.producers = make([]*client.Producer, w.Producers())
	err = parallel(len(r.producers), o.CreateParallelism, func(i int) error {
		po := o.Producer
		po.Topic = r.topics[i%len(r.topics)]
		p, err := r.cl.CreateProducer(ctx, po)
		r.producers[i] = p
		return err
	})
	if err != nil {
		return err
	}
	log.Info("loadgen: created", "topics", len(r.topics), "partitions", w.PartitionsPerTopic,
		"producers", len(r.producers), "consumers", len(r.consumers), "took", time.Since(start).Round(time.Millisecond))
	return r.probe(ctx)
}

// probe sends one message per producer (with timestamp 0, which consumers
// do not measure) and waits until each subscription received all of them.
func (r *runner) probe(ctx context.Context) error {
	want := int64(r.w.Topics * r.w.ProducersPerTopic * r.w.SubscriptionsPerTopic)
	payload := make([]byte, r.size)
	err := parallel(len(r.producers), r.o.CreateParallelism, func(i int) error {
		if _, err := r.producers[i].Send(ctx, client.ProducerMessage{Payload: payload}); err != nil {
			return fmt.Errorf("loadgen: probe message: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(r.o.ReadyTimeout)
	for r.probes.Load() < want {
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %d of %d probe messages received within %v", ErrNotReady, r.probes.Load(), want, r.o.ReadyTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// timestamp reads the send timestamp a message carries; false for a probe
// (or a message that carries none).
func (r *runner) timestamp(m *client.Message) (int64, bool) {
	if p := m.Payload(); len(p) >= 8 {
		ts := int64(binary.BigEndian.Uint64(p))
		return ts, ts != 0
	}
	v, ok := m.Property(timestampProperty)
	if !ok {
		return 0, false
	}
	ts, err := strconv.ParseInt(v, 10, 64)
	return ts, err == nil && ts != 0
}

// listener records each received message in rec and acknowledges it.
func (r *runner) listener(rec *recorder) client.MessageListener {
	return func(c *client.Consumer, m *client.Message) {
		now := r.clk.now()
		if ts, ok := r.timestamp(m); ok {
			rec.consumed(len(m.Payload()), now-ts, true)
		} else {
			r.probes.Add(1)
		}
		_ = c.Ack(m)
	}
}

// onAck completes a sent message (on the client's read loop, or on the
// sender when SendAsync fails at once).
func (r *runner) onAck(_ client.MessageID, opaque uint64, err error) {
	rec := r.recs[opaque>>32]
	ack := r.clk.now()
	count := err == nil || !(r.stopping.Load() && (errors.Is(err, context.Canceled) || errors.Is(err, client.ErrClosed)))
	t := rec.acked(uint32(opaque), ack, r.size, err, count)
	if f := r.o.OnSample; f != nil {
		f(Sample{Intended: r.clk.time(t.intended), Sent: r.clk.time(t.sent), Acked: r.clk.time(ack), Err: err})
	}
}

func (r *runner) setRate(rate float64) {
	s := &schedule{start: r.clk.now(), rate: max(rate, 1)}
	r.sched.Store(s)
}

func (r *runner) exhaust() { r.exhaustOnce.Do(func() { close(r.exhausted) }) }

// sender sends on the shared schedule through its producers, round-robin.
func (r *runner) sender(ctx context.Context, idx int, prods []*client.Producer) {
	rec := r.recs[idx]
	buf := make([]byte, r.size)
	rng := rand.New(rand.NewPCG(rand.Uint64(), uint64(idx)))
	keyIdx := 0
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var props [1]client.Property
	for i := 0; ; i++ {
		s := r.sched.Load()
		due := s.due(s.next.Add(1) - 1)
		if !r.waitUntil(ctx, timer, due) {
			return
		}
		if r.measuring.Load() && r.remaining.Add(-1) < 0 {
			r.exhaust()
			return
		}
		msg := client.ProducerMessage{Payload: buf}
		payload := r.payloads[0]
		if len(r.payloads) > 1 {
			payload = r.payloads[rng.IntN(len(r.payloads))]
		}
		copy(buf, payload)
		switch r.w.KeyDistributor {
		case KeyRoundRobin:
			keyIdx = (keyIdx + 1) % len(r.keys)
			msg.Key = r.keys[keyIdx]
		case RandomNano:
			msg.Key = r.keys[int(time.Now().UnixNano()%int64(len(r.keys)))]
		}
		sent := r.clk.now()
		if len(buf) >= 8 {
			binary.BigEndian.PutUint64(buf, uint64(sent))
		} else {
			props[0] = client.Property{Key: timestampProperty, Value: strconv.FormatInt(sent, 10)}
			msg.Properties = props[:]
		}
		msg.Opaque = uint64(idx)<<32 | uint64(rec.sent(due, sent))
		prods[i%len(prods)].SendAsync(ctx, msg, r.ackCB)
	}
}

// waitUntil waits until the run clock reaches due: on a timer until
// SpinWait before it, then spinning; false when ctx ended.
func (r *runner) waitUntil(ctx context.Context, timer *time.Timer, due int64) bool {
	spin := r.o.SpinWait
	for {
		d := time.Duration(due - r.clk.now())
		if d <= 0 {
			return ctx.Err() == nil
		}
		if spin < 0 || d > spin {
			sleep := d
			if spin > 0 {
				sleep = d - spin
			}
			timer.Reset(sleep)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return false
			}
			continue
		}
		if ctx.Err() != nil {
			return false
		}
		runtime.Gosched()
	}
}

// snapshotter builds the per-interval records.
type snapshotter struct {
	r       *runner
	acc     *window
	cum     *window
	last    int64 // clock at the end of the previous interval
	started int64 // clock when the load started
	rep     *Report
}

// snapshot closes the interval ending at now.
func (s *snapshotter) snapshot(now int64, warmup bool) {
	r := s.r
	var acked, consumed int64
	for _, rec := range r.recs {
		a, c := rec.swapInto(s.acc)
		acked, consumed = acked+a, consumed+c
	}
	backlog := max(0, int64(r.subs)*acked-consumed)
	iv := Interval{
		Time:       r.clk.time(now).Round(0),
		Offset:     time.Duration(now - s.started),
		Length:     time.Duration(now - s.last),
		Warmup:     warmup,
		TargetRate: r.sched.Load().rate,
		Counters:   s.acc.Counters,
		Backlog:    backlog,
		Latency:    s.acc.lat.Summaries(),
	}
	if enc, err := s.acc.lat.Encoded(); err == nil {
		iv.Histograms = enc
	}
	s.last = now
	if !warmup {
		s.cum.merge(s.acc)
		s.rep.MaxBacklog = max(s.rep.MaxBacklog, backlog)
		s.rep.FinalBacklog = backlog
	}
	s.acc.reset()
	s.rep.Intervals = append(s.rep.Intervals, iv)
	if r.o.Out != nil {
		_, _ = fmt.Fprintln(r.o.Out, iv.progressLine())
	}
}

// totals sums the recorders' totals.
func (r *runner) totals() (acked, consumed int64) {
	for _, rec := range r.recs {
		a, c := rec.totals()
		acked, consumed = acked+a, consumed+c
	}
	return acked, consumed
}

// phase of a run.
type phase int

const (
	phaseWarmup phase = iota
	phaseMeasure
	phaseBuildBacklog
	phaseDrainBacklog
)

// run drives the load and returns the report.
func (r *runner) run(ctx context.Context) *Report {
	w, o := &r.w, &r.o
	rep := &Report{Workload: *w, Topics: r.topics, TargetRate: w.ProducerRate}
	maxRate := w.ProducerRate == 0
	if maxRate {
		r.setRate(o.MaxRateStart)
	} else {
		r.setRate(w.ProducerRate)
	}
	warmup := w.Warmup()
	if o.Warmup != 0 {
		warmup = max(0, o.Warmup)
	}
	duration := w.TestDuration()
	if o.Duration > 0 {
		duration = o.Duration
	}
	r.ackCB = r.onAck
	sendCtx, stopSending := context.WithCancel(ctx)
	defer stopSending()

	started := r.clk.now()
	rep.Started = r.clk.time(started).Round(0)
	s := &snapshotter{r: r, acc: newWindow(), cum: newWindow(), last: started, started: started, rep: rep}
	ph := phaseWarmup
	measureStart := started
	startMeasuring := func(now int64) {
		if warmup > 0 {
			s.snapshot(now, true)
		}
		s.cum.reset()
		ph, measureStart = phaseMeasure, now
		rep.MeasureStart = r.clk.time(now).Round(0)
		if o.MaxMessages > 0 {
			r.remaining.Store(o.MaxMessages)
		} else {
			r.remaining.Store(math.MaxInt64)
		}
		r.measuring.Store(true)
		if w.ConsumerBacklogSizeGB > 0 {
			ph = phaseBuildBacklog
			for _, c := range r.consumers {
				c.Pause()
			}
			o.Logger.Info("loadgen: consumers paused to build a backlog", "GiB", w.ConsumerBacklogSizeGB)
		}
	}
	if warmup == 0 {
		startMeasuring(started)
	}

	var senders sync.WaitGroup
	groups := make([][]*client.Producer, len(r.recs))
	for i, p := range r.producers {
		groups[i%len(groups)] = append(groups[i%len(groups)], p)
	}
	for i := range groups {
		senders.Add(1)
		go func() {
			defer senders.Done()
			r.sender(sendCtx, i, groups[i])
		}()
	}

	interval := int64(o.Interval)
	nextInterval := started + interval
	nextControl := started + int64(o.RateControlPeriod)
	ctrl := newRateController(o.PublishBacklogLimit, o.ReceiveBacklogLimit)
	var drainedAt int64 // clock when the backlog was drained (backlog mode)
	backlogTarget := int64(w.ConsumerBacklogSizeGB * (1 << 30))
	tickEvery := min(o.Interval/10, 50*time.Millisecond)
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	interrupted := false
loop:
	for {
		select {
		case <-ctx.Done():
			interrupted = true
			break loop
		case <-r.exhausted:
			break loop
		case <-tick.C:
		}
		now := r.clk.now()
		if ph == phaseWarmup && now-started >= int64(warmup) {
			startMeasuring(now)
			nextInterval = now + interval
		}
		if now >= nextInterval {
			s.snapshot(now, ph == phaseWarmup)
			nextInterval += interval
			if nextInterval <= now {
				nextInterval = now + interval
			}
		}
		if ph != phaseWarmup {
			acked, consumed := r.totals()
			rep.MaxBacklog = max(rep.MaxBacklog, int64(r.subs)*acked-consumed)
		}
		if maxRate && now >= nextControl {
			acked, consumed := r.totals()
			period := time.Duration(now - (nextControl - int64(o.RateControlPeriod)))
			r.setRate(ctrl.next(r.sched.Load().rate, period, acked, consumed, r.subs))
			nextControl = now + int64(o.RateControlPeriod)
		}
		switch ph {
		case phaseBuildBacklog:
			acked, consumed := r.totals()
			if (int64(r.subs)*acked-consumed)*int64(r.size) >= backlogTarget {
				for _, c := range r.consumers {
					c.Resume()
				}
				ph = phaseDrainBacklog
				o.Logger.Info("loadgen: backlog built; draining", "took", time.Duration(now-measureStart).Round(time.Millisecond))
			}
		case phaseDrainBacklog:
			acked, consumed := r.totals()
			capacity := backlogTarget / int64(r.size)
			empty := max(1000, int64((1-w.BacklogDrainRatio)*float64(capacity)))
			if int64(r.subs)*acked-consumed <= empty {
				drainedAt, ph = now, phaseMeasure
				o.Logger.Info("loadgen: backlog drained", "took", time.Duration(now-measureStart).Round(time.Millisecond))
			}
		case phaseMeasure:
			end := measureStart + int64(duration)
			if drainedAt > 0 {
				end = drainedAt + int64(duration)
			}
			if o.MaxMessages == 0 || duration > 0 {
				if now >= end {
					break loop
				}
			}
		}
	}

	// Stop sending; drain unless interrupted.
	stopAt := r.clk.now()
	r.stopping.Store(true)
	stopSending()
	senders.Wait()
	if !interrupted {
		r.drain(ctx, rep)
	}
	end := r.clk.now()
	// Closing fails what is still pending (abandoned sends, when
	// interrupted); the last snapshot counts them.
	r.closeAll()
	if ph == phaseWarmup {
		s.snapshot(end, true) // interrupted during the warm-up: nothing measured
		measureStart = stopAt
	} else {
		s.snapshot(end, false)
	}

	rep.Interrupted = interrupted
	rep.Finished = r.clk.time(end).Round(0)
	rep.Warmup = time.Duration(measureStart - started)
	rep.Measured = time.Duration(stopAt - measureStart)
	rep.FinalRate = r.sched.Load().rate
	rep.Counters = s.cum.Counters
	rep.Latencies = s.cum.lat
	rep.Latency = s.cum.lat.Summaries()
	if enc, err := s.cum.lat.Encoded(); err == nil {
		rep.Histograms = enc
	}
	if sec := rep.Measured.Seconds(); sec > 0 {
		rep.PublishRate = float64(rep.PublishedMsgs) / sec
		rep.PublishBytesRate = float64(rep.PublishedBytes) / sec
		rep.ConsumeRate = float64(rep.ConsumedMsgs) / sec
		rep.ConsumeBytesRate = float64(rep.ConsumedBytes) / sec
	}
	rep.check()
	return rep
}

// drain waits for the receipts of the messages in flight and for the
// consumers to receive every acknowledged message, at most DrainTimeout.
func (r *runner) drain(ctx context.Context, rep *Report) {
	ctx, cancel := context.WithTimeout(ctx, r.o.DrainTimeout)
	defer cancel()
	for _, c := range r.consumers {
		c.Resume()
	}
	for _, p := range r.producers {
		if err := p.Flush(ctx); err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("receipts still missing after the %v drain timeout", r.o.DrainTimeout))
			return
		}
	}
	for {
		acked, consumed := r.totals()
		backlog := int64(r.subs)*acked - consumed
		if backlog <= 0 {
			return
		}
		select {
		case <-ctx.Done():
			rep.Problems = append(rep.Problems, fmt.Sprintf("%d messages not consumed after the %v drain timeout", backlog, r.o.DrainTimeout))
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// closeAll closes producers and consumers (the client is closed by Run).
func (r *runner) closeAll() {
	_ = parallel(len(r.producers), r.o.CreateParallelism, func(i int) error {
		if p := r.producers[i]; p != nil {
			_ = p.Close()
		}
		return nil
	})
	_ = parallel(len(r.consumers), r.o.CreateParallelism, func(i int) error {
		if c := r.consumers[i]; c != nil {
			_ = c.Close()
		}
		return nil
	})
}
