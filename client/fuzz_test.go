package client

import (
	"math"
	"testing"

	"github.com/magnetar/magnetar/internal/wire/pulsar"
)

// FuzzDeliver feeds arbitrary metadata and bodies to a consumer's delivery
// path (decompression, batch splitting, in listener and in queue mode): it
// must never panic, and whatever it cannot decode it must discard.
//
//	go test -run '^$' -fuzz FuzzDeliver ./client/
func FuzzDeliver(f *testing.F) {
	md := pulsar.MessageMetadata{ProducerName: []byte("p"), SequenceID: 1, PublishTime: 1, NumMessagesInBatch: 2, HasNumMessagesInBatch: true}
	var body []byte
	smd := pulsar.SingleMessageMetadata{PartitionKey: []byte("k")}
	body = pulsar.AppendBatchMessage(body, &smd, []byte("one"))
	body = pulsar.AppendBatchMessage(body, &smd, []byte("two"))
	f.Add(md.AppendTo(nil), body, false)
	single := pulsar.MessageMetadata{ProducerName: []byte("p"), SequenceID: 1, PublishTime: 1, Compression: pulsar.CompressionLZ4, UncompressedSize: 5}
	f.Add(single.AppendTo(nil), appendLZ4Literals(nil, []byte("hello")), true)
	f.Fuzz(func(t *testing.T, metadata, body []byte, listen bool) {
		done := make(chan struct{})
		close(done)
		cl := &Client{log: quietLogger()}
		cons := &Consumer{cl: cl, qsig: make(chan struct{}, 1), done: done}
		cons.opts.EnsureDefaults()
		delivered := 0
		if listen {
			cons.opts.Listener = func(_ *Consumer, m *Message) {
				delivered++
				_ = m.Payload()
				_ = m.Properties()
			}
		}
		pc := &partConsumer{parent: cons, conn: &conn{wclosed: true, done: done}, threshold: math.MaxInt64, dec: decompressor{zstd: &cl.zstd}}
		cm := pulsar.CommandMessage{MessageID: pulsar.NewMessageID(1, 2)}
		pc.deliver(&cm, &pulsar.Frame{Metadata: metadata, Body: body})
		// Every permit the broker took comes back: as a consumed message, a
		// queued one, or a discarded entry's.
		want := 1
		var md pulsar.MessageMetadata
		if md.Decode(metadata) == nil {
			want = md.NumMessages()
		}
		returned := int(pc.consumed.Load()) + len(cons.queue)
		if returned != want {
			t.Fatalf("%d permits returned (%d delivered), the entry took %d", returned, delivered, want)
		}
		cl.zstd.close()
	})
}
