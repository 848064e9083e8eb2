package compat_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

func subscribe(t *testing.T, c pulsar.Client, opts pulsar.ConsumerOptions) pulsar.Consumer {
	t.Helper()
	cons, err := c.Subscribe(opts)
	if err != nil {
		t.Fatalf("subscribe %s: %v", opts.SubscriptionName, err)
	}
	t.Cleanup(cons.Close)
	return cons
}

func producer(t *testing.T, c pulsar.Client, opts pulsar.ProducerOptions) pulsar.Producer {
	t.Helper()
	p, err := c.CreateProducer(opts)
	if err != nil {
		t.Fatalf("producer on %s: %v", opts.Topic, err)
	}
	t.Cleanup(p.Close)
	return p
}

// noMessage checks that nothing arrives for a short while (used only to
// check that something does not happen; never as synchronisation).
func noMessage(t *testing.T, c pulsar.Consumer, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if m, err := c.Receive(ctx); err == nil {
		t.Fatalf("unexpected message %q (id %v)", m.Payload(), m.ID())
	}
}

func TestExclusive(t *testing.T) {
	n := startNode(t)
	n.log.allow(`ConsumerBusy`)
	c := n.client()
	tp := topic(t, "excl")
	subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Exclusive})
	_, err := c.Subscribe(pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Exclusive})
	if err == nil || !strings.Contains(err.Error(), "ConsumerBusy") {
		t.Fatalf("second exclusive consumer: %v", err)
	}
	_, err = c.Subscribe(pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Shared})
	if err == nil || !strings.Contains(err.Error(), "ConsumerBusy") {
		t.Fatalf("shared consumer on an exclusive subscription: %v", err)
	}
}

// Failover: one consumer gets everything; when it leaves, the other takes
// over from the first unacknowledged message.
func TestFailover(t *testing.T) {
	n := startNode(t)
	c := n.client()
	tp := topic(t, "fo")
	opts := pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Failover}
	opts.Name = "a"
	a := subscribe(t, c, opts)
	opts.Name = "b"
	b := subscribe(t, c, opts)
	// Unbatched: a batch is acknowledged only as a whole.
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	produce(t, p, "m", 20)
	// The active one is the first to join.
	got := receive(t, a, 10)
	if !equal(got, want("m", 0, 10)) {
		t.Fatalf("active consumer received %v", got)
	}
	noMessage(t, b, 100*time.Millisecond)
	a.Close()
	got = receive(t, b, 10)
	if !equal(got, want("m", 10, 20)) {
		t.Fatalf("after failover received %v", got)
	}
}

// Shared: messages are spread over the consumers, each delivered once.
func TestShared(t *testing.T) {
	n := startNode(t)
	c := n.client()
	tp := topic(t, "shared")
	var cs []pulsar.Consumer
	for i := 0; i < 3; i++ {
		cs = append(cs, subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Shared,
			ReceiverQueueSize: 10}))
	}
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	const total = 300
	produce(t, p, "m", total)
	var mu sync.Mutex
	seen := map[string]int{}
	perConsumer := make([]int, len(cs))
	ctx := ctxT(t, 30*time.Second)
	var wg sync.WaitGroup
	done := make(chan struct{})
	for i, cons := range cs {
		wg.Add(1)
		go func(i int, cons pulsar.Consumer) {
			defer wg.Done()
			for {
				select {
				case m := <-cons.Chan():
					mu.Lock()
					seen[string(m.Payload())]++
					perConsumer[i]++
					if len(seen) == total {
						select {
						case <-done:
						default:
							close(done)
						}
					}
					mu.Unlock()
					_ = cons.Ack(m)
				case <-done:
					return
				case <-ctx.Done():
					return
				}
			}
		}(i, cons)
	}
	wg.Wait()
	if len(seen) != total {
		t.Fatalf("received %d distinct messages, want %d", len(seen), total)
	}
	for k, v := range seen {
		if v != 1 {
			t.Fatalf("message %s delivered %d times", k, v)
		}
	}
	for i, n := range perConsumer {
		if n == 0 {
			t.Fatalf("consumer %d received nothing (%v)", i, perConsumer)
		}
	}
}

// Key_Shared: every key goes to one consumer, in order.
func TestKeyShared(t *testing.T) {
	n := startNode(t)
	c := n.client()
	tp := topic(t, "ks")
	var cs []pulsar.Consumer
	for i := 0; i < 3; i++ {
		cs = append(cs, subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.KeyShared,
			Name: fmt.Sprintf("c%d", i)}))
	}
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	ctx := ctxT(t, 30*time.Second)
	const keys, perKey = 20, 10
	for i := 0; i < perKey; i++ {
		for k := 0; k < keys; k++ {
			p.SendAsync(ctx, &pulsar.ProducerMessage{Key: fmt.Sprintf("k%d", k), Payload: []byte(fmt.Sprintf("k%d-%d", k, i))},
				func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
					if err != nil {
						t.Errorf("send: %v", err)
					}
				})
		}
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	owner := map[string]int{}
	next := map[string]int{}
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	errs := make(chan error, len(cs))
	done := make(chan struct{})
	for i, cons := range cs {
		wg.Add(1)
		go func(i int, cons pulsar.Consumer) {
			defer wg.Done()
			for {
				select {
				case m := <-cons.Chan():
					mu.Lock()
					k := m.Key()
					if o, ok := owner[k]; ok && o != i {
						errs <- fmt.Errorf("key %s went to consumers %d and %d", k, o, i)
					}
					owner[k] = i
					if want := fmt.Sprintf("%s-%d", k, next[k]); string(m.Payload()) != want {
						errs <- fmt.Errorf("consumer %d got %s, want %s", i, m.Payload(), want)
					}
					next[k]++
					total++
					if total == keys*perKey {
						close(done)
					}
					mu.Unlock()
					_ = cons.Ack(m)
				case <-done:
					return
				case <-ctx.Done():
					errs <- ctx.Err()
					return
				}
			}
		}(i, cons)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	used := map[int]bool{}
	for _, o := range owner {
		used[o] = true
	}
	if len(used) < 2 {
		t.Fatalf("all keys went to %d consumer(s)", len(used))
	}
}

// Cumulative acks: after acknowledging up to a message and reconnecting,
// delivery resumes after it.
func TestCumulativeAck(t *testing.T) {
	n := startNode(t)
	c := n.client()
	tp := topic(t, "cum")
	cons := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	produce(t, p, "m", 10)
	ctx := ctxT(t, 30*time.Second)
	var last pulsar.Message
	for i := 0; i < 6; i++ {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		last = m
	}
	if err := cons.AckCumulative(last); err != nil {
		t.Fatal(err)
	}
	cons.Close()
	// Closing flushes the ack; a new consumer starts at m-6.
	cons2 := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
	if got := receive(t, cons2, 4); !equal(got, want("m", 6, 10)) {
		t.Fatalf("after the cumulative ack received %v", got)
	}
}

// Acks with responses (request ids) are answered.
func TestAckWithResponse(t *testing.T) {
	n := startNode(t)
	c := n.client()
	tp := topic(t, "ackresp")
	cons := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", AckWithResponse: true})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp})
	produce(t, p, "m", 5)
	ctx := ctxT(t, 30*time.Second)
	for i := 0; i < 5; i++ {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := cons.Ack(m); err != nil {
			t.Fatalf("ack with response: %v", err)
		}
	}
}

// Batch-index acks: acknowledging some messages of a batch and
// reconnecting redelivers only the others.
func TestBatchIndexAck(t *testing.T) {
	n := startNode(t)
	c := n.client()
	tp := topic(t, "bia")
	opts := pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", EnableBatchIndexAcknowledgment: true,
		Type: pulsar.Shared}
	cons := subscribe(t, c, opts)
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, BatchingMaxMessages: 10, BatchingMaxPublishDelay: time.Second})
	ids := produce(t, p, "m", 10)
	if ids[9].BatchIdx() != 9 {
		t.Fatalf("the messages were not sent as one batch: %v", ids)
	}
	ctx := ctxT(t, 30*time.Second)
	for i := 0; i < 10; i++ {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := cons.Ack(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	cons.Close()
	cons2 := subscribe(t, c, opts)
	defer n.dumpOnFailure(t, tp)
	got := receive(t, cons2, 5)
	if !equal(got, []string{"m-1", "m-3", "m-5", "m-7", "m-9"}) {
		t.Fatalf("after partial batch ack received %v", got)
	}
	noMessage(t, cons2, 100*time.Millisecond)
}

// Negative acks on a Shared subscription come back with a redelivery
// count.
func TestNegativeAck(t *testing.T) {
	n := startNode(t)
	c := n.client()
	tp := topic(t, "nack")
	cons := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Shared,
		NackRedeliveryDelay: 50 * time.Millisecond})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	produce(t, p, "m", 3)
	ctx := ctxT(t, 30*time.Second)
	for i := 0; i < 3; i++ {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.RedeliveryCount() != 0 {
			t.Fatalf("first delivery with redelivery count %d", m.RedeliveryCount())
		}
		if string(m.Payload()) == "m-1" {
			cons.Nack(m)
		} else {
			_ = cons.Ack(m)
		}
	}
	m, err := cons.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Payload()) != "m-1" || m.RedeliveryCount() != 1 {
		t.Fatalf("redelivered %q with count %d", m.Payload(), m.RedeliveryCount())
	}
	_ = cons.Ack(m)
}

// Messages a Shared consumer did not acknowledge go to another consumer
// when it leaves (what an ack timeout achieves in other clients).
func TestRedeliveryOnClose(t *testing.T) {
	n := startNode(t)
	c := n.client()
	tp := topic(t, "redeliver")
	a := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Shared})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	produce(t, p, "m", 5)
	ctx := ctxT(t, 30*time.Second)
	for i := 0; i < 5; i++ {
		if _, err := a.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	b := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Shared})
	a.Close()
	var got []string
	for i := 0; i < 5; i++ {
		m, err := b.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.RedeliveryCount() != 1 {
			t.Fatalf("redelivery count %d", m.RedeliveryCount())
		}
		got = append(got, string(m.Payload()))
		_ = b.Ack(m)
	}
	slices.Sort(got)
	if !equal(got, want("m", 0, 5)) {
		t.Fatalf("redelivered %v", got)
	}
}

// Durable subscriptions keep their position: an initial position of
// Earliest or Latest applies only when the subscription is created.
func TestInitialPosition(t *testing.T) {
	n := startNode(t)
	c := n.client()
	tp := topic(t, "initpos")
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	produce(t, p, "old", 3)
	early := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "early",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	late := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "late"})
	produce(t, p, "new", 2)
	if got := receive(t, early, 5); !equal(got, append(want("old", 0, 3), want("new", 0, 2)...)) {
		t.Fatalf("earliest received %v", got)
	}
	if got := receive(t, late, 2); !equal(got, want("new", 0, 2)) {
		t.Fatalf("latest received %v", got)
	}
}

// Readers: earliest, latest, a given id, inclusive; HasNext.
func TestReaders(t *testing.T) {
	n := startNode(t)
	c := n.client()
	tp := topic(t, "readers")
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	ids := produce(t, p, "m", 10)
	ctx := ctxT(t, 30*time.Second)
	read := func(r pulsar.Reader, k int) []string {
		t.Helper()
		var out []string
		for i := 0; i < k; i++ {
			m, err := r.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(m.Payload()))
		}
		return out
	}
	newReader := func(opts pulsar.ReaderOptions) pulsar.Reader {
		t.Helper()
		opts.Topic = tp
		r, err := c.CreateReader(opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		return r
	}
	r := newReader(pulsar.ReaderOptions{StartMessageID: pulsar.EarliestMessageID()})
	if got := read(r, 10); !equal(got, want("m", 0, 10)) {
		t.Fatalf("earliest read %v", got)
	}
	if r.HasNext() {
		t.Fatal("HasNext after the last message")
	}
	r = newReader(pulsar.ReaderOptions{StartMessageID: ids[4]})
	if got := read(r, 5); !equal(got, want("m", 5, 10)) {
		t.Fatalf("from id 4 (exclusive) read %v", got)
	}
	r = newReader(pulsar.ReaderOptions{StartMessageID: ids[4], StartMessageIDInclusive: true})
	if got := read(r, 6); !equal(got, want("m", 4, 10)) {
		t.Fatalf("from id 4 (inclusive) read %v", got)
	}
	latest := newReader(pulsar.ReaderOptions{StartMessageID: pulsar.LatestMessageID()})
	if latest.HasNext() {
		t.Fatal("a reader at latest has something to read")
	}
	inclusiveLatest := newReader(pulsar.ReaderOptions{StartMessageID: pulsar.LatestMessageID(), StartMessageIDInclusive: true})
	if got := read(inclusiveLatest, 1); !equal(got, []string{"m-9"}) {
		t.Fatalf("inclusive latest read %v", got)
	}
	produce(t, p, "n", 2)
	if got := read(latest, 2); !equal(got, want("n", 0, 2)) {
		t.Fatalf("latest read %v", got)
	}
	if !r.HasNext() {
		t.Fatal("HasNext false with new messages")
	}
}

// Readers over batches: HasNext sees the messages left in the last batch.
func TestReaderBatches(t *testing.T) {
	n := startNode(t)
	c := n.client()
	tp := topic(t, "rbatch")
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, BatchingMaxMessages: 5, BatchingMaxPublishDelay: time.Second})
	produce(t, p, "m", 5)
	r, err := c.CreateReader(pulsar.ReaderOptions{Topic: tp, StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := ctxT(t, 30*time.Second)
	for i := 0; i < 5; i++ {
		if !r.HasNext() {
			t.Fatalf("HasNext false before message %d", i)
		}
		if _, err := r.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if r.HasNext() {
		t.Fatal("HasNext true after the batch")
	}
}

// Seek by message id and by publish time, on a consumer and a reader.
func TestSeek(t *testing.T) {
	n := startNode(t)
	c := n.client()
	tp := topic(t, "seek")
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	ctx := ctxT(t, 30*time.Second)
	ids := produce(t, p, "a", 5)
	mid := time.Now()
	// Publish times are in milliseconds: make sure the second group is
	// published after mid's millisecond.
	for time.Now().UnixMilli() <= mid.UnixMilli() {
		time.Sleep(time.Millisecond)
	}
	produce(t, p, "b", 5)
	all := append(want("a", 0, 5), want("b", 0, 5)...)
	// Each kind of seek on a subscription of its own: the client keeps
	// the last seek's id to filter what follows.
	fresh := func(name string) pulsar.Consumer {
		t.Helper()
		cons := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: name,
			SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
		if got := receive(t, cons, 10); !equal(got, all) {
			t.Fatalf("first read %v", got)
		}
		return cons
	}
	// The Go client's seek by id is exclusive: it drops the message sought.
	cons := fresh("by-id")
	if err := cons.Seek(ids[2]); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, cons, 7); !equal(got, all[3:]) {
		t.Fatalf("after seek to a-2 received %v", got)
	}
	cons = fresh("by-time")
	if err := cons.SeekByTime(mid.Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, cons, 5); !equal(got, all[5:]) {
		t.Fatalf("after seek by time received %v", got)
	}
	noMessage(t, cons, 50*time.Millisecond)
	cons = fresh("to-start")
	if err := cons.SeekByTime(time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, cons, 10); !equal(got, all) {
		t.Fatalf("after seek to the beginning received %v", got)
	}

	r, err := c.CreateReader(pulsar.ReaderOptions{Topic: tp, StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Seek(ids[3]); err != nil {
		t.Fatal(err)
	}
	m, err := r.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Payload()) != "a-4" && string(m.Payload()) != "a-3" {
		t.Fatalf("reader after seek to a-3 read %q", m.Payload())
	}
}

// Unsubscribe deletes the subscription; with other consumers connected it
// fails unless forced.
func TestUnsubscribe(t *testing.T) {
	n := startNode(t)
	n.log.allow(`MetadataError`, `Failed to unsubscribe`)
	c := n.client()
	tp := topic(t, "unsub")
	a := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Shared})
	b := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Shared})
	if err := a.Unsubscribe(); err == nil {
		t.Fatal("unsubscribe with another consumer connected succeeded")
	}
	b.Close()
	if err := a.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	subs, err := n.admin().Subscriptions().List(*mustTopicName(t, tp))
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 0 {
		t.Fatalf("subscriptions after unsubscribe: %v", subs)
	}
}

// A topic that does not exist is not created when automatic creation is
// off.
func TestNoAutoCreation(t *testing.T) {
	n := startNode(t)
	n.log.allow(`TopicNotFound`, `Failed to create`, `topic not found`)
	a := n.admin()
	if err := a.Namespaces().CreateNamespace("public/strict"); err != nil {
		t.Fatal(err)
	}
	if err := a.Namespaces().SetTopicAutoCreation(*mustNS(t, "public/strict"), autoCreation(false)); err != nil {
		t.Fatal(err)
	}
	c := n.client()
	_, err := c.CreateProducer(pulsar.ProducerOptions{Topic: "persistent://public/strict/nothing"})
	if err == nil || !strings.Contains(err.Error(), "TopicNotFound") {
		t.Fatalf("producer on a missing topic: %v", err)
	}
	if err := a.Topics().Create(*mustTopicName(t, "persistent://public/strict/something"), 0); err != nil {
		t.Fatal(err)
	}
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: "persistent://public/strict/something"})
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	_, err = c.CreateProducer(pulsar.ProducerOptions{Topic: "persistent://nosuch/ns/t"})
	if err == nil || !errors.Is(err, err) {
		t.Fatalf("producer in a missing namespace: %v", err)
	}
}

// Non-persistent topics deliver to connected consumers and keep nothing.
func TestNonPersistent(t *testing.T) {
	n := startNode(t)
	c := n.client()
	tp := "non-persistent://public/default/" + strings.TrimPrefix(topic(t, "np"), "persistent://public/default/")
	a := n.admin()
	// Messages for a consumer without permits are dropped: produce once
	// the consumer's FLOW arrived.
	hasPermits := func(sub string) func() bool {
		return func() bool {
			st, err := a.Topics().GetStats(*mustTopicName(t, tp))
			cs := st.Subscriptions[sub].Consumers
			return err == nil && len(cs) == 1 && cs[0].AvailablePermits > 0
		}
	}
	cons := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp})
	waitFor(t, "the consumer's permits", hasPermits("s"))
	produce(t, p, "m", 50)
	if got := receive(t, cons, 50); !equal(got, want("m", 0, 50)) {
		t.Fatalf("received %v", got)
	}
	cons.Close()
	produce(t, p, "lost", 5)
	late := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s2",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	waitFor(t, "the late consumer's permits", hasPermits("s2"))
	produce(t, p, "x", 1)
	if got := receive(t, late, 1); !equal(got, []string{"x-0"}) {
		t.Fatalf("late consumer received %v", got)
	}
}

// Batches of more than half the receiver queue: the Go client grants
// permits in FLOWs of half its queue, counting messages it consumed, so a
// broker that waits until a consumer's permits cover a whole batch
// deadlocks with it (Pulsar's dispatcher delivers an entry while the
// permits are positive and lets them go negative).
//
// The client grants permits in steps of half its receiver queue; batches
// larger than that must still flow (the dispatcher delivers a whole entry
// while any permit is left).
func TestBatchesLargerThanHalfTheQueue(t *testing.T) {
	n := startNode(t)
	c := n.client()
	tp := topic(t, "bigbatch")
	cons := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, BatchingMaxMessages: 700, BatchingMaxPublishDelay: time.Second})
	produce(t, p, "m", 7000)
	defer n.dumpOnFailure(t, tp)
	if got := receive(t, cons, 7000); !equal(got, want("m", 0, 7000)) {
		t.Fatal("messages out of order")
	}
}
