package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magnetar/magnetar/client/clienttest"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/testutil"
	"github.com/magnetar/magnetar/internal/wire/pulsar"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 20 * time.Second

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startStub(t testing.TB, opts clienttest.Options) *clienttest.Broker {
	t.Helper()
	b, err := clienttest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func dial(t testing.TB, url string, opts Options) *Client {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := Dial(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls an observable condition until it holds or the test times
// out.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, testTimeout, what, cond)
}

type sent struct {
	payload []byte
	key     string
	props   []Property
	event   time.Time
}

func testMessages(n int) []sent {
	out := make([]sent, n)
	for i := range out {
		out[i].payload = bytes.Repeat([]byte("payload-"+strconv.Itoa(i)+"|"), 1+i%13)
		if i%3 == 0 {
			out[i].key = "key-" + strconv.Itoa(i%7)
		}
		if i%4 == 1 {
			out[i].props = []Property{{"a", strconv.Itoa(i)}, {"empty", ""}}
		}
		if i%5 == 2 {
			out[i].event = time.UnixMilli(1_700_000_000_000 + int64(i))
		}
	}
	return out
}

func checkMessage(t *testing.T, m *Message, want sent, i int) {
	t.Helper()
	if !bytes.Equal(m.Payload(), want.payload) {
		t.Fatalf("message %d: payload %q, want %q", i, m.Payload(), want.payload)
	}
	if m.Key() != want.key || m.HasKey() != (want.key != "") {
		t.Fatalf("message %d: key %q (has %v), want %q", i, m.Key(), m.HasKey(), want.key)
	}
	props := m.Properties()
	if len(props) != len(want.props) {
		t.Fatalf("message %d: properties %v, want %v", i, props, want.props)
	}
	for _, kv := range want.props {
		if v, ok := m.Property(kv.Key); !ok || v != kv.Value {
			t.Fatalf("message %d: property %q = %q, %v; want %q", i, kv.Key, v, ok, kv.Value)
		}
	}
	if !m.EventTime().Equal(want.event) {
		t.Fatalf("message %d: event time %v, want %v", i, m.EventTime(), want.event)
	}
	if pt := m.PublishTime(); time.Since(pt) > time.Hour || time.Until(pt) > time.Minute {
		t.Fatalf("message %d: implausible publish time %v", i, pt)
	}
}

// produceAll sends msgs with SendAsync and waits for every receipt.
func produceAll(t *testing.T, p *Producer, msgs []sent) []MessageID {
	t.Helper()
	ids := make([]MessageID, len(msgs))
	errs := make([]error, len(msgs))
	var wg sync.WaitGroup
	wg.Add(len(msgs))
	for i, m := range msgs {
		p.SendAsync(testCtx(t), ProducerMessage{
			Payload: m.payload, Key: m.key, Properties: m.props, EventTime: m.event, Opaque: uint64(i),
		}, func(id MessageID, opaque uint64, err error) {
			ids[opaque], errs[opaque] = id, err
			wg.Done()
		})
	}
	if err := p.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	return ids
}

func TestProduceConsumeRoundTrip(t *testing.T) {
	b := startStub(t, clienttest.Options{})
	c := dial(t, b.URL(), Options{})
	for _, batching := range []bool{true, false} {
		for _, comp := range []Compression{CompressionNone, CompressionLZ4, CompressionZLib, CompressionZstd, CompressionSnappy} {
			t.Run(fmt.Sprintf("batching=%v/compression=%v", batching, comp), func(t *testing.T) {
				topic := fmt.Sprintf("rt-%v-%v", batching, comp)
				cons, err := c.Subscribe(testCtx(t), ConsumerOptions{Topic: topic, Subscription: "s", ReceiverQueueSize: 50})
				if err != nil {
					t.Fatal(err)
				}
				defer cons.Close()
				p, err := c.CreateProducer(testCtx(t), ProducerOptions{
					Topic: topic, DisableBatching: !batching, Compression: comp,
					BatchingMaxMessages: 37, BatchingMaxDelay: time.Millisecond,
				})
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				msgs := testMessages(300)
				ids := produceAll(t, p, msgs)
				for i := 1; i < len(ids); i++ {
					prev, cur := ids[i-1], ids[i]
					if cur.EntryID < prev.EntryID || (cur.EntryID == prev.EntryID && cur.BatchIndex != prev.BatchIndex+1) {
						t.Fatalf("ids out of order: %v then %v", prev, cur)
					}
				}
				entries := b.Entries(topic)
				if batching && len(entries) >= len(msgs) {
					t.Fatalf("batching produced %d entries for %d messages", len(entries), len(msgs))
				}
				if !batching && len(entries) != len(msgs) {
					t.Fatalf("%d entries for %d unbatched messages", len(entries), len(msgs))
				}
				md, _, err := clienttest.ParseEntry(entries[0])
				if err != nil {
					t.Fatal(err)
				}
				if Compression(md.Compression) != comp || md.HasNumMessagesInBatch != batching {
					t.Fatalf("entry metadata: compression %v, batch %v", md.Compression, md.HasNumMessagesInBatch)
				}
				for i, want := range msgs {
					m, err := cons.Receive(testCtx(t))
					if err != nil {
						t.Fatal(err)
					}
					checkMessage(t, m, want, i)
					if m.ID() != ids[i] {
						t.Fatalf("message %d: id %v, receipt said %v", i, m.ID(), ids[i])
					}
					if err := cons.Ack(m); err != nil {
						t.Fatal(err)
					}
				}
				if err := cons.Close(); err != nil {
					t.Fatal(err)
				}
				if n, _, _ := b.Acked(topic, "s"); n != len(entries) {
					t.Fatalf("broker saw %d entries acknowledged, want %d", n, len(entries))
				}
			})
		}
	}
}

func TestListenerDelivery(t *testing.T) {
	b := startStub(t, clienttest.Options{})
	c := dial(t, b.URL(), Options{})
	msgs := testMessages(200)
	var mu sync.Mutex
	var got []sent
	done := make(chan struct{})
	cons, err := c.Subscribe(testCtx(t), ConsumerOptions{
		Topic: "listener", Subscription: "s", ReceiverQueueSize: 10,
		Listener: func(cons *Consumer, m *Message) {
			mu.Lock()
			defer mu.Unlock()
			s := sent{payload: append([]byte(nil), m.Payload()...), key: m.Key(), event: m.EventTime()}
			for k, v := range m.Properties() {
				s.props = append(s.props, Property{k, v})
			}
			got = append(got, s)
			if err := cons.Ack(m); err != nil {
				t.Error(err)
			}
			if len(got) == len(msgs) {
				close(done)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.CreateProducer(testCtx(t), ProducerOptions{Topic: "listener", BatchingMaxMessages: 16})
	if err != nil {
		t.Fatal(err)
	}
	produceAll(t, p, msgs)
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatal("listener did not get every message")
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range msgs {
		if !bytes.Equal(got[i].payload, msgs[i].payload) || got[i].key != msgs[i].key || !got[i].event.Equal(msgs[i].event) || len(got[i].props) != len(msgs[i].props) {
			t.Fatalf("message %d: got %+v, want %+v", i, got[i], msgs[i])
		}
	}
	if err := cons.Close(); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := b.Acked("listener", "s"); n != len(b.Entries("listener")) {
		t.Fatalf("broker saw %d entries acknowledged of %d", n, len(b.Entries("listener")))
	}
}

func TestPartitionedTopic(t *testing.T) {
	b := startStub(t, clienttest.Options{})
	b.CreatePartitionedTopic("parts", 4)
	c := dial(t, b.URL(), Options{ConnectionsPerBroker: 2})
	if n, err := c.TopicPartitions(testCtx(t), "parts"); err != nil || n != 4 {
		t.Fatalf("TopicPartitions = %d, %v", n, err)
	}
	cons, err := c.Subscribe(testCtx(t), ConsumerOptions{Topic: "parts", Subscription: "s", Type: Shared})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.CreateProducer(testCtx(t), ProducerOptions{Topic: "parts", BatchingMaxMessages: 10, BatchingMaxDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if p.Partitions() != 4 {
		t.Fatalf("producer has %d partitions", p.Partitions())
	}
	msgs := testMessages(400)
	ids := produceAll(t, p, msgs)
	perPart := map[int32]int{}
	for i, id := range ids {
		perPart[id.Partition]++
		if msgs[i].key != "" {
			if want := int32(keyHash(msgs[i].key) % 4); id.Partition != want {
				t.Fatalf("message %d with key %q went to partition %d, want %d", i, msgs[i].key, id.Partition, want)
			}
		}
	}
	total := 0
	for i := range 4 {
		if perPart[int32(i)] == 0 {
			t.Fatalf("partition %d got no message: %v", i, perPart)
		}
		for _, e := range b.Entries(PartitionTopicName("persistent://public/default/parts", i)) {
			md, _, err := clienttest.ParseEntry(e)
			if err != nil {
				t.Fatal(err)
			}
			total += md.NumMessages()
		}
	}
	if total != len(msgs) {
		t.Fatalf("partitions hold %d messages, want %d", total, len(msgs))
	}
	seen := map[string]bool{}
	for range msgs {
		m, err := cons.Receive(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		seen[string(m.Payload())] = true
		if err := cons.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range msgs {
		if !seen[string(m.payload)] {
			t.Fatalf("message %d not received", i)
		}
	}
}

func TestLookupRedirect(t *testing.T) {
	owner := startStub(t, clienttest.Options{})
	front := startStub(t, clienttest.Options{RedirectTo: owner.URL()})
	c := dial(t, front.URL(), Options{})
	p, err := c.CreateProducer(testCtx(t), ProducerOptions{Topic: "redirected", DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(testCtx(t), ProducerMessage{Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if n := len(owner.Entries("redirected")); n != 1 {
		t.Fatalf("owner holds %d entries, want 1", n)
	}
	if n := len(front.Entries("redirected")); n != 0 {
		t.Fatalf("front broker holds %d entries, want 0", n)
	}
}

func TestSendBlocksWhenPendingIsFull(t *testing.T) {
	b := startStub(t, clienttest.Options{})
	c := dial(t, b.URL(), Options{})
	p, err := c.CreateProducer(testCtx(t), ProducerOptions{Topic: "full", DisableBatching: true, MaxPendingMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	b.PauseReceipts()
	var acked atomic.Int64
	for range 10 {
		p.SendAsync(testCtx(t), ProducerMessage{Payload: []byte("x")}, func(_ MessageID, _ uint64, err error) {
			if err != nil {
				t.Error(err)
			}
			acked.Add(1)
		})
	}
	// The queue is full: with a done context the eleventh send fails at
	// once instead of blocking.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var got error
	p.SendAsync(ctx, ProducerMessage{Payload: []byte("y")}, func(_ MessageID, _ uint64, err error) { got = err })
	if !errors.Is(got, context.Canceled) {
		t.Fatalf("send into a full queue: %v, want context.Canceled", got)
	}
	// A blocked send proceeds once receipts free the queue.
	unblocked := make(chan error, 1)
	go p.SendAsync(testCtx(t), ProducerMessage{Payload: []byte("z")}, func(_ MessageID, _ uint64, err error) { unblocked <- err })
	waitFor(t, "ten messages at the broker", func() bool { return b.MessagesReceived() == 10 })
	b.ResumeReceipts()
	if err := <-unblocked; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "receipts", func() bool { return acked.Load() == 10 })
}

func TestSendTimeout(t *testing.T) {
	b := startStub(t, clienttest.Options{})
	c := dial(t, b.URL(), Options{})
	p, err := c.CreateProducer(testCtx(t), ProducerOptions{Topic: "timeout", DisableBatching: true, SendTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b.DropSends(true)
	_, err = p.Send(testCtx(t), ProducerMessage{Payload: []byte("lost")})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("send to a broker that drops it: %v, want ErrTimeout", err)
	}
	b.DropSends(false)
	if _, err := p.Send(testCtx(t), ProducerMessage{Payload: []byte("kept")}); err != nil {
		t.Fatalf("send after the timeout: %v", err)
	}
}

func TestConnectionLossFailsPending(t *testing.T) {
	b := startStub(t, clienttest.Options{})
	c := dial(t, b.URL(), Options{})
	p, err := c.CreateProducer(testCtx(t), ProducerOptions{Topic: "drop", DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := c.Subscribe(testCtx(t), ConsumerOptions{Topic: "drop", Subscription: "s"})
	if err != nil {
		t.Fatal(err)
	}
	b.PauseReceipts()
	errc := make(chan error, 1)
	p.SendAsync(testCtx(t), ProducerMessage{Payload: []byte("x")}, func(_ MessageID, _ uint64, err error) { errc <- err })
	waitFor(t, "the message at the broker", func() bool { return b.MessagesReceived() == 1 })
	b.DropConnections()
	if err := <-errc; !errors.Is(err, ErrConnectionClosed) {
		t.Fatalf("pending send after connection loss: %v", err)
	}
	// Receive returns what was queued before the loss, then the error.
	for {
		_, err := cons.Receive(testCtx(t))
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrConnectionClosed) {
			t.Fatalf("Receive after connection loss: %v", err)
		}
		break
	}
	// A new producer gets a new connection.
	p2, err := c.CreateProducer(testCtx(t), ProducerOptions{Topic: "drop", DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	b.ResumeReceipts()
	if _, err := p2.Send(testCtx(t), ProducerMessage{Payload: []byte("y")}); err != nil {
		t.Fatal(err)
	}
}

func TestFlowControl(t *testing.T) {
	b := startStub(t, clienttest.Options{})
	c := dial(t, b.URL(), Options{})
	p, err := c.CreateProducer(testCtx(t), ProducerOptions{Topic: "flow", DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	produceAll(t, p, testMessages(100))
	cons, err := c.Subscribe(testCtx(t), ConsumerOptions{Topic: "flow", Subscription: "s", InitialPosition: Earliest, ReceiverQueueSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	queued := func() int {
		cons.qmu.Lock()
		defer cons.qmu.Unlock()
		return len(cons.queue) - cons.qhead
	}
	waitFor(t, "the first permits used", func() bool { return queued() == 10 })
	if got := b.Dispatched("flow", "s"); got != 10 {
		t.Fatalf("broker pushed %d entries on 10 permits", got)
	}
	for range 4 {
		if _, err := cons.Receive(testCtx(t)); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.Dispatched("flow", "s"); got != 10 {
		t.Fatalf("permits granted before half the queue was consumed: %d pushed", got)
	}
	if _, err := cons.Receive(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "five more permits", func() bool { return b.Dispatched("flow", "s") == 15 })
	// Paused, the consumer withholds permits; resumed, it grants them.
	cons.Pause()
	for range 5 {
		if _, err := cons.Receive(testCtx(t)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the queue to hold the last pushed messages", func() bool { return queued() == 5 })
	if got := b.Dispatched("flow", "s"); got != 15 {
		t.Fatalf("paused consumer granted permits: %d pushed", got)
	}
	cons.Resume()
	waitFor(t, "permits after resume", func() bool { return b.Dispatched("flow", "s") == 20 })
}

func TestAckCumulative(t *testing.T) {
	b := startStub(t, clienttest.Options{})
	c := dial(t, b.URL(), Options{})
	cons, err := c.Subscribe(testCtx(t), ConsumerOptions{Topic: "cum", Subscription: "s", Type: Failover})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.CreateProducer(testCtx(t), ProducerOptions{Topic: "cum", DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	ids := produceAll(t, p, testMessages(20))
	var last *Message
	for range 20 {
		if last, err = cons.Receive(testCtx(t)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cons.AckCumulative(last); err != nil {
		t.Fatal(err)
	}
	if err := cons.Close(); err != nil {
		t.Fatal(err)
	}
	if _, cum, ok := b.Acked("cum", "s"); !ok || cum != ids[19].EntryID {
		t.Fatalf("cumulative ack at %d (%v), want %d", cum, ok, ids[19].EntryID)
	}
	shared, err := c.Subscribe(testCtx(t), ConsumerOptions{Topic: "cum", Subscription: "sh", Type: Shared})
	if err != nil {
		t.Fatal(err)
	}
	if err := shared.AckCumulative(last); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("cumulative ack on Shared: %v", err)
	}
}

func TestBatchAcker(t *testing.T) {
	a := newBatchAcker(70)
	for i := range int32(70) {
		if i == 69 {
			break
		}
		if a.ack(i) || a.ack(i) {
			t.Fatalf("entry complete after %d of 70 acks", i+1)
		}
	}
	if !a.ack(69) {
		t.Fatal("entry not complete after all 70 acks")
	}
	if a.ack(69) || a.ack(-1) || a.ack(500) {
		t.Fatal("extra acks completed the entry again")
	}
}

func TestBrokerErrors(t *testing.T) {
	b := startStub(t, clienttest.Options{})
	c := dial(t, b.URL(), Options{})
	if _, err := c.Subscribe(testCtx(t), ConsumerOptions{Topic: "busy", Subscription: "s"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Subscribe(testCtx(t), ConsumerOptions{Topic: "busy", Subscription: "s"})
	if !IsServerError(err, pulsar.ConsumerBusy) {
		t.Fatalf("second exclusive consumer: %v, want ConsumerBusy", err)
	}
	if _, err := Dial(testCtx(t), "http://127.0.0.1:1", Options{}); !errors.Is(err, ErrInvalidURL) {
		t.Fatalf("http URL: %v", err)
	}
	if _, err := c.CreateProducer(testCtx(t), ProducerOptions{Topic: "a/b"}); !errors.Is(err, ErrInvalidTopic) {
		t.Fatalf("bad topic: %v", err)
	}
	p, err := c.CreateProducer(testCtx(t), ProducerOptions{Topic: "closed"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(testCtx(t), ProducerMessage{Payload: []byte("x")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("send on a closed producer: %v", err)
	}
}

func TestMessageTooLarge(t *testing.T) {
	b := startStub(t, clienttest.Options{MaxMessageSize: 64 << 10})
	c := dial(t, b.URL(), Options{})
	p, err := c.CreateProducer(testCtx(t), ProducerOptions{Topic: "big"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(testCtx(t), ProducerMessage{Payload: make([]byte, 100<<10)}); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("oversize message: %v", err)
	}
	if _, err := p.Send(testCtx(t), ProducerMessage{Payload: make([]byte, 32<<10)}); err != nil {
		t.Fatal(err)
	}
}

func TestTopicNames(t *testing.T) {
	for in, want := range map[string]string{
		"t":                       "persistent://public/default/t",
		"ten/ns/t":                "persistent://ten/ns/t",
		"persistent://a/b/c":      "persistent://a/b/c",
		"non-persistent://a/b/c":  "non-persistent://a/b/c",
		"a/b":                     "",
		"":                        "",
		"persistent://a/b":        "",
		"kafka://a/b/c":           "",
		"persistent://a//c":       "",
		"persistent://public/d/x": "persistent://public/d/x",
	} {
		got, err := FullTopicName(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("FullTopicName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if got := PartitionTopicName("persistent://a/b/c", 3); got != "persistent://a/b/c-partition-3" {
		t.Errorf("PartitionTopicName = %q", got)
	}
}

func TestNoBufferLeak(t *testing.T) {
	before := bufs.Default.LiveBuffers()
	b := startStub(t, clienttest.Options{})
	c := dial(t, b.URL(), Options{})
	cons, err := c.Subscribe(testCtx(t), ConsumerOptions{Topic: "leak", Subscription: "s", ReceiverQueueSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.CreateProducer(testCtx(t), ProducerOptions{Topic: "leak", BatchingMaxMessages: 5, Compression: CompressionZstd})
	if err != nil {
		t.Fatal(err)
	}
	msgs := testMessages(100)
	produceAll(t, p, msgs)
	for range msgs {
		m, err := cons.Receive(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		_ = cons.Ack(m)
	}
	// Leave some frames queued on a connection that then fails.
	b.PauseReceipts()
	for range 10 {
		p.SendAsync(testCtx(t), ProducerMessage{Payload: []byte("x")}, func(MessageID, uint64, error) {})
	}
	b.DropConnections()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every frame buffer released", func() bool { return bufs.Default.LiveBuffers() == before })
}
