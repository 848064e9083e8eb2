package client

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	official "github.com/apache/pulsar-client-go/pulsar"
	officiallog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/magnetar/magnetar/client/clienttest"
)

// These tests run the official Go client (apache/pulsar-client-go) against
// the stub broker next to ours: they show that the stub is a faithful
// stand-in (the official client works against it) and that the frames our
// client writes (batches, every codec, checksums) are read by the official
// client, and the other way round.

func officialClient(t *testing.T, url string) official.Client {
	t.Helper()
	c, err := official.NewClient(official.ClientOptions{
		URL:               url,
		Logger:            officiallog.NewLoggerWithSlog(quietLogger()),
		MetricsRegisterer: prometheus.NewRegistry(),
		OperationTimeout:  testTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

var officialCodec = map[Compression]official.CompressionType{
	CompressionNone:   official.NoCompression,
	CompressionLZ4:    official.LZ4,
	CompressionZLib:   official.ZLib,
	CompressionZstd:   official.ZSTD,
	CompressionSnappy: official.SNAPPY,
}

func TestOfficialProducerToOurConsumer(t *testing.T) {
	b := startStub(t, clienttest.Options{})
	oc := officialClient(t, b.URL())
	c := dial(t, b.URL(), Options{})
	for _, comp := range []Compression{CompressionNone, CompressionLZ4, CompressionZLib, CompressionZstd, CompressionSnappy} {
		t.Run("compression="+comp.String(), func(t *testing.T) {
			topic := "from-official-" + comp.String()
			cons, err := c.Subscribe(testCtx(t), ConsumerOptions{Topic: topic, Subscription: "s"})
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			p, err := oc.CreateProducer(official.ProducerOptions{
				Topic: topic, CompressionType: officialCodec[comp],
				BatchingMaxMessages: 25, BatchingMaxPublishDelay: time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			msgs := testMessages(120)
			done := make(chan error, len(msgs))
			for _, m := range msgs {
				om := &official.ProducerMessage{Payload: m.payload, Key: m.key, EventTime: m.event}
				if len(m.props) > 0 {
					om.Properties = map[string]string{}
					for _, kv := range m.props {
						om.Properties[kv.Key] = kv.Value
					}
				}
				p.SendAsync(testCtx(t), om, func(_ official.MessageID, _ *official.ProducerMessage, err error) { done <- err })
			}
			if err := p.FlushWithCtx(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			for range msgs {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			if len(b.Entries(topic)) >= len(msgs) {
				t.Fatalf("official producer did not batch: %d entries", len(b.Entries(topic)))
			}
			for i, want := range msgs {
				m, err := cons.Receive(testCtx(t))
				if err != nil {
					t.Fatal(err)
				}
				checkMessage(t, m, want, i)
				if err := cons.Ack(m); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestOurProducerToOfficialConsumer(t *testing.T) {
	b := startStub(t, clienttest.Options{})
	oc := officialClient(t, b.URL())
	c := dial(t, b.URL(), Options{})
	for _, batching := range []bool{true, false} {
		for _, comp := range []Compression{CompressionNone, CompressionLZ4, CompressionZLib, CompressionZstd, CompressionSnappy} {
			t.Run(fmt.Sprintf("batching=%v/compression=%v", batching, comp), func(t *testing.T) {
				topic := fmt.Sprintf("to-official-%v-%v", batching, comp)
				cons, err := oc.Subscribe(official.ConsumerOptions{
					Topic: topic, SubscriptionName: "s", SubscriptionInitialPosition: official.SubscriptionPositionEarliest,
				})
				if err != nil {
					t.Fatal(err)
				}
				defer cons.Close()
				p, err := c.CreateProducer(testCtx(t), ProducerOptions{
					Topic: topic, DisableBatching: !batching, Compression: comp, BatchingMaxMessages: 30,
				})
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
				msgs := testMessages(150)
				produceAll(t, p, msgs)
				for i, want := range msgs {
					m, err := cons.Receive(testCtx(t))
					if err != nil {
						t.Fatal(err)
					}
					event := m.EventTime()
					if event.UnixMilli() == 0 {
						event = time.Time{} // the official client's "no event time"
					}
					if !bytes.Equal(m.Payload(), want.payload) || m.Key() != want.key || !event.Equal(want.event) {
						t.Fatalf("message %d: payload %q key %q event %v; want %q %q %v",
							i, m.Payload(), m.Key(), m.EventTime(), want.payload, want.key, want.event)
					}
					props := m.Properties()
					if len(props) != len(want.props) {
						t.Fatalf("message %d: properties %v, want %v", i, props, want.props)
					}
					for _, kv := range want.props {
						if props[kv.Key] != kv.Value {
							t.Fatalf("message %d: property %q = %q, want %q", i, kv.Key, props[kv.Key], kv.Value)
						}
					}
					if err := cons.Ack(m); err != nil {
						t.Fatal(err)
					}
				}
			})
		}
	}
}
