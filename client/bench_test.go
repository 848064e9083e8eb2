package client

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magnetar/magnetar/client/clienttest"
	"github.com/magnetar/magnetar/internal/wire/pulsar"
)

// The client's ceiling: producing to, and consuming from, the stub broker,
// which acknowledges at once and pushes from memory, over loopback TCP in
// the same process. The figures include the stub's own work (it shares the
// CPUs), so they are a lower bound of the client's ceiling.
//
//	go test -run '^$' -bench . -benchtime 2s ./client/
//
// Payloads are half random, half zeros.

var benchSizes = []struct {
	name string
	size int
}{{"100B", 100}, {"1KiB", 1024}}

func BenchmarkProduce(b *testing.B) {
	for _, sz := range benchSizes {
		for _, batching := range []bool{true, false} {
			b.Run(fmt.Sprintf("size=%s/batching=%v", sz.name, batching), func(b *testing.B) {
				benchProduce(b, sz.size, batching)
			})
		}
	}
}

// BenchmarkProduceCompressed is the batched 1 KiB case with each codec, on
// payloads half random and half zeros (OMB's randomized payloads with
// randomBytesRatio 0.5).
func BenchmarkProduceCompressed(b *testing.B) {
	for _, comp := range []Compression{CompressionLZ4, CompressionZLib, CompressionZstd, CompressionSnappy} {
		b.Run("size=1KiB/compression="+comp.String(), func(b *testing.B) {
			benchProduceWith(b, 1024, true, comp)
		})
	}
}

func benchProduce(b *testing.B, size int, batching bool) {
	benchProduceWith(b, size, batching, CompressionNone)
}

func benchProduceWith(b *testing.B, size int, batching bool, comp Compression) {
	stub := startStub(b, clienttest.Options{DiscardEntries: true})
	c := dial(b, stub.URL(), Options{})
	ctx := context.Background()
	p, err := c.CreateProducer(ctx, ProducerOptions{
		Topic: "bench-produce", DisableBatching: !batching, Compression: comp,
		BatchingMaxDelay: time.Millisecond, MaxPendingMessages: 20000,
	})
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range payload[:size/2] {
		payload[i] = byte(rng.Uint32())
	}
	var acked, failed atomic.Int64
	done := make(chan struct{})
	n := int64(b.N)
	cb := func(_ MessageID, _ uint64, err error) {
		if err != nil {
			failed.Add(1)
		}
		if acked.Add(1) == n {
			close(done)
		}
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		p.SendAsync(ctx, ProducerMessage{Payload: payload}, cb)
	}
	p.parts[0].flush()
	<-done
	b.StopTimer()
	if failed.Load() != 0 {
		b.Fatalf("%d sends failed", failed.Load())
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkConsume(b *testing.B) {
	for _, sz := range benchSizes {
		for _, batch := range []int{100, 1} {
			b.Run(fmt.Sprintf("size=%s/batch=%d", sz.name, batch), func(b *testing.B) {
				benchConsume(b, sz.size, batch)
			})
		}
	}
}

// benchConsume consumes b.N messages, acknowledging each, from a topic that
// the stub generates from one entry of batch messages of size bytes.
func benchConsume(b *testing.B, size, batch int) {
	stub := startStub(b, clienttest.Options{DiscardEntries: true})
	payload := make([]byte, size)
	md := pulsar.MessageMetadata{ProducerName: []byte("gen"), PublishTime: uint64(time.Now().UnixMilli())}
	var body []byte
	if batch > 1 {
		var smd pulsar.SingleMessageMetadata
		for i := range batch {
			smd = pulsar.SingleMessageMetadata{SequenceID: uint64(i), HasSequenceID: true}
			body = pulsar.AppendBatchMessage(body, &smd, payload)
		}
		md.NumMessagesInBatch, md.HasNumMessagesInBatch = int32(batch), true
	} else {
		body = payload
	}
	md.UncompressedSize = uint32(len(body))
	stub.Generate("bench-consume", clienttest.BuildEntry(&md, body), batch)
	c := dial(b, stub.URL(), Options{})
	var got atomic.Int64
	done := make(chan struct{})
	n := int64(b.N)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	start := make(chan struct{})
	cons, err := c.Subscribe(context.Background(), ConsumerOptions{
		Topic: "bench-consume", Subscription: "s",
		Listener: func(cons *Consumer, m *Message) {
			<-start
			_ = cons.Ack(m)
			if got.Add(1) == n {
				close(done)
			}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	close(start)
	<-done
	b.StopTimer()
	_ = cons.Close()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
