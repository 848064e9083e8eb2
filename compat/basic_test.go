package compat_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
)

// produce sends n messages "<prefix>-<i>" and returns their ids.
func produce(t *testing.T, p pulsar.Producer, prefix string, n int) []pulsar.MessageID {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	ids := make([]pulsar.MessageID, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		i := i
		p.SendAsync(ctx, &pulsar.ProducerMessage{Payload: []byte(fmt.Sprintf("%s-%d", prefix, i))},
			func(id pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
				ids[i] = id
				errs <- err
			})
	}
	if err := p.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	return ids
}

// receive receives n messages, acknowledging each, and returns their
// payloads.
func receive(t *testing.T, c pulsar.Consumer, n int) []string {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	out := make([]string, 0, n)
	for len(out) < n {
		m, err := c.Receive(ctx)
		if err != nil {
			t.Fatalf("receive %d of %d: %v", len(out)+1, n, err)
		}
		out = append(out, string(m.Payload()))
		if err := c.Ack(m); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	return out
}

func want(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestProduceConsume(t *testing.T) {
	n := startNode(t)
	c := n.client()
	tp := topic(t, "t")
	cons, err := c.Subscribe(pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: tp})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	produce(t, p, "m", 100)
	got := receive(t, cons, 100)
	if !equal(got, want("m", 0, 100)) {
		t.Fatalf("received %v", got)
	}
}
