package compat_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/magnetar/magnetar/broker"
)

// Batches with every compression codec the client offers arrive whole and
// in order: the broker stores and delivers the producer's bytes untouched.
func TestBatchingCompression(t *testing.T) {
	n := startNode(t)
	c := n.client()
	for _, tc := range []struct {
		name string
		ct   pulsar.CompressionType
	}{{"none", pulsar.NoCompression}, {"lz4", pulsar.LZ4}, {"zlib", pulsar.ZLib}, {"zstd", pulsar.ZSTD}} {
		t.Run(tc.name, func(t *testing.T) {
			tp := topic(t, tc.name)
			cons, err := c.Subscribe(pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: tp, CompressionType: tc.ct,
				BatchingMaxMessages: 50, BatchingMaxPublishDelay: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			ids := produce(t, p, "m", 300)
			batched := 0
			for _, id := range ids {
				if id.BatchIdx() > 0 {
					batched++
				}
			}
			if batched == 0 {
				t.Fatalf("no message was sent in a batch")
			}
			if got := receive(t, cons, 300); !equal(got, want("m", 0, 300)) {
				t.Fatalf("received %v", got)
			}
		})
	}
}

// Large payloads cross the broker intact, with and without compression,
// also when a frame is larger than the broker's read buffer.
func TestLargeMessages(t *testing.T) {
	n := startNode(t)
	c := n.client()
	tp := topic(t, "large")
	cons, err := c.Subscribe(pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := ctxT(t, 30*time.Second)
	sizes := []int{0, 1, 1000, 64 << 10, 200 << 10, 4 << 20}
	for i, size := range sizes {
		payload := bytes.Repeat([]byte{byte('a' + i)}, size)
		if _, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: payload, Properties: map[string]string{"i": fmt.Sprint(i)}}); err != nil {
			t.Fatalf("send %d bytes: %v", size, err)
		}
	}
	for i, size := range sizes {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Payload()) != size || size > 0 && m.Payload()[0] != byte('a'+i) || m.Properties()["i"] != fmt.Sprint(i) {
			t.Fatalf("message %d: %d bytes, properties %v; want %d bytes", i, len(m.Payload()), m.Properties(), size)
		}
		_ = cons.Ack(m)
	}
}

// A producer with EnableChunking sends a message larger than the broker's
// maximum message size in chunks; the consumer gets it whole.
func TestChunking(t *testing.T) {
	n := startNode(t, func(o *broker.Options) { o.MaxMessageSize = 64 << 10 })
	n.log.allow(`MessageTooBig`) // the client refusing the oversize message, below
	c := n.client()
	tp := topic(t, "chunks")
	cons, err := c.Subscribe(pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: tp, DisableBatching: true, EnableChunking: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := ctxT(t, 30*time.Second)
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(i * 7)
	}
	if _, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: big}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: []byte("small")}); err != nil {
		t.Fatal(err)
	}
	m, err := cons.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Payload(), big) {
		t.Fatalf("chunked message: got %d bytes, want %d", len(m.Payload()), len(big))
	}
	_ = cons.Ack(m)
	m, err = cons.Receive(ctx)
	if err != nil || string(m.Payload()) != "small" {
		t.Fatalf("after the chunked message: %v %q", err, m.Payload())
	}
	_ = cons.Ack(m)

	// Without chunking the same message is refused by the client, which
	// learned the maximum from CONNECTED.
	p2, err := c.CreateProducer(pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if _, err := p2.Send(ctx, &pulsar.ProducerMessage{Payload: big}); !errors.Is(err, pulsar.ErrMessageTooLarge) {
		t.Fatalf("oversize send without chunking: %v", err)
	}
}

// With deduplication on, messages sent again with sequence ids already
// persisted are acknowledged and not stored twice; a new producer with the
// same name resumes after the last sequence id.
func TestDeduplication(t *testing.T) {
	n := startNode(t)
	a := n.admin()
	if err := a.Namespaces().SetDeduplicationStatus("public/default", true); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.Namespaces().SetDeduplicationStatus("public/default", false) }()
	c := n.client()
	tp := topic(t, "dedup")
	cons, err := c.Subscribe(pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	ctx := ctxT(t, 30*time.Second)
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: tp, Name: "dedup-producer", DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	send := func(p pulsar.Producer, seq int64, payload string) pulsar.MessageID {
		t.Helper()
		id, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: []byte(payload), SequenceID: &seq})
		if err != nil {
			t.Fatalf("send %d: %v", seq, err)
		}
		return id
	}
	for i := int64(0); i < 5; i++ {
		send(p, i, fmt.Sprint("m-", i))
	}
	// The same sequence ids again: duplicates.
	for i := int64(0); i < 5; i++ {
		send(p, i, fmt.Sprint("dup-", i))
	}
	if got := p.LastSequenceID(); got != 4 {
		t.Fatalf("last sequence id %d, want 4", got)
	}
	p.Close()
	// A new producer under the same name continues after the last
	// sequence id the broker persisted for it.
	p, err = c.CreateProducer(pulsar.ProducerOptions{Topic: tp, Name: "dedup-producer", DisableBatching: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	send(p, 3, "dup-again")
	if _, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: []byte("m-5")}); err != nil {
		t.Fatal(err)
	}
	if got := p.LastSequenceID(); got != 5 {
		t.Fatalf("new producer: last sequence id %d, want 5", got)
	}
	got := receive(t, cons, 6)
	if !equal(got, want("m", 0, 6)) {
		t.Fatalf("received %v", got)
	}
	st, err := a.Topics().GetStats(*mustTopicName(t, tp))
	if err != nil {
		t.Fatal(err)
	}
	if st.MsgCounterIn != 6 || st.DeDuplicationStatus != "Enabled" {
		t.Fatalf("stats: msgInCounter %d, deduplicationStatus %q", st.MsgCounterIn, st.DeDuplicationStatus)
	}
}

// Producer access modes: a second exclusive producer is fenced; a
// WaitForExclusive producer gets the topic when the holder leaves.
func TestProducerAccessModes(t *testing.T) {
	n := startNode(t)
	n.log.allow(`ProducerFenced`, `ProducerBusy`)
	c := n.client()
	tp := topic(t, "access")
	p1, err := c.CreateProducer(pulsar.ProducerOptions{Topic: tp, ProducerAccessMode: pulsar.ProducerAccessModeExclusive})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateProducer(pulsar.ProducerOptions{Topic: tp, ProducerAccessMode: pulsar.ProducerAccessModeExclusive}); err == nil ||
		!strings.Contains(err.Error(), "ProducerFenced") {
		t.Fatalf("second exclusive producer: %v", err)
	}
	if _, err := c.CreateProducer(pulsar.ProducerOptions{Topic: tp}); err == nil || !strings.Contains(err.Error(), "ProducerBusy") {
		t.Fatalf("shared producer beside an exclusive one: %v", err)
	}
	got := make(chan error, 1)
	var p2 pulsar.Producer
	go func() {
		var err error
		p2, err = c.CreateProducer(pulsar.ProducerOptions{Topic: tp, ProducerAccessMode: pulsar.ProducerAccessModeWaitForExclusive})
		got <- err
	}()
	ctx := ctxT(t, 30*time.Second)
	if _, err := p1.Send(ctx, &pulsar.ProducerMessage{Payload: []byte("one")}); err != nil {
		t.Fatal(err)
	}
	p1.Close()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("the waiting producer never got the topic")
	}
	defer p2.Close()
	if _, err := p2.Send(ctx, &pulsar.ProducerMessage{Payload: []byte("two")}); err != nil {
		t.Fatal(err)
	}
}

// Producers without a name get unique generated ones.
func TestGeneratedProducerNames(t *testing.T) {
	n := startNode(t)
	c := n.client()
	tp := topic(t, "names")
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: tp})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		name := p.Name()
		if !strings.HasPrefix(name, "standalone-") || seen[name] {
			t.Fatalf("producer name %q (seen %v)", name, seen)
		}
		seen[name] = true
	}
}
