package pulsar

import (
	"bytes"
	"fmt"
	"testing"
)

// The hot paths of a broker connection, each as decode and encode:
//   - SEND: split the frame (verifying the CRC), decode the command and the
//     entry's metadata, answer with SEND_RECEIPT;
//   - MESSAGE: build the header for a stored entry (the entry itself goes
//     out as a second iovec), and on the client side split and decode it;
//   - FLOW and ACK: encode, split, decode.
// Every one must run without allocating (TestHotPathsDoNotAllocate).

var benchSizes = []int{100, 1 << 10, 64 << 10}

func sendFrame(size int) []byte {
	md := sampleMetadata()
	md.UncompressedSize = uint32(size)
	return AppendSendFrame(nil, &CommandSend{ProducerID: 1, SequenceID: 7}, &md, bytes.Repeat([]byte{'x'}, size))
}

// hotPaths are the operations measured by the benchmarks and checked for
// allocations; each returns a closure over its own reused state.
func hotPaths(size int) map[string]func() {
	paths := map[string]func(){}

	send := sendFrame(size)
	var sr FrameReader
	var sf Frame
	var sc Command
	var smd MessageMetadata
	out := make([]byte, 0, 256)
	paths["send"] = func() {
		if _, err := sr.Next(send, &sf); err != nil {
			panic(err)
		}
		if err := sc.Decode(sf.Command); err != nil {
			panic(err)
		}
		if err := smd.Decode(sf.Metadata); err != nil {
			panic(err)
		}
		receipt := CommandSendReceipt{ProducerID: sc.Send.ProducerID, SequenceID: sc.Send.SequenceID,
			MessageID: NewMessageID(12, 34)}
		out = AppendSendReceiptFrame(out[:0], &receipt)
	}

	md := sampleMetadata()
	entry := AppendEntry(nil, &md, bytes.Repeat([]byte{'x'}, size))
	msg := CommandMessage{ConsumerID: 5, MessageID: NewMessageID(12, 34), RedeliveryCount: 1}
	bem := BrokerEntryMetadata{BrokerTimestamp: 1700000000001, HasBrokerTimestamp: true, Index: 41, HasIndex: true}
	hdr := make([]byte, 0, 128)
	paths["message_header"] = func() {
		hdr = AppendMessageHeader(hdr[:0], &msg, &bem, len(entry))
	}
	delivered := AppendMessageFrame(nil, &msg, &bem, entry)
	var mr FrameReader
	var mf Frame
	var mc Command
	var mmd MessageMetadata
	var mbem BrokerEntryMetadata
	paths["message_decode"] = func() {
		if _, err := mr.Next(delivered, &mf); err != nil {
			panic(err)
		}
		if err := mc.Decode(mf.Command); err != nil {
			panic(err)
		}
		if err := mbem.Decode(mf.BrokerEntryMetadata); err != nil {
			panic(err)
		}
		if err := mmd.Decode(mf.Metadata); err != nil {
			panic(err)
		}
	}

	var fr FrameReader
	var ff Frame
	var fc Command
	flow := make([]byte, 0, 64)
	paths["flow"] = func() {
		flow = AppendFlowFrame(flow[:0], 5, 500)
		if _, err := fr.Next(flow, &ff); err != nil {
			panic(err)
		}
		if err := fc.Decode(ff.Command); err != nil {
			panic(err)
		}
	}

	ack := CommandAck{ConsumerID: 5}
	for i := 0; i < 100; i++ {
		id := NewMessageID(12, uint64(i))
		if i%10 == 0 {
			id.AckSet = []int64{-2}
		}
		ack.MessageIDs = append(ack.MessageIDs, id)
	}
	var ar FrameReader
	var af Frame
	var ac Command
	ackBuf := make([]byte, 0, 4096)
	paths["ack"] = func() {
		ackBuf = AppendAckFrame(ackBuf[:0], &ack)
		if _, err := ar.Next(ackBuf, &af); err != nil {
			panic(err)
		}
		if err := ac.Decode(af.Command); err != nil {
			panic(err)
		}
	}

	_, body := sampleBatch()
	var br BatchReader
	var smm SingleMessageMetadata
	paths["batch_iterate"] = func() {
		br.Reset(body, 3)
		for br.Next(&smm) {
		}
	}
	return paths
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	for _, size := range benchSizes {
		for name, op := range hotPaths(size) {
			op() // grow the reused slices
			if n := testing.AllocsPerRun(100, op); n != 0 {
				t.Errorf("%s size=%d: %v allocations per run", name, size, n)
			}
		}
	}
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

func benchPath(b *testing.B, name string, bytesPerOp func(size int) int) {
	for _, size := range benchSizes {
		b.Run("size="+sizeName(size), func(b *testing.B) {
			op := hotPaths(size)[name]
			op()
			b.SetBytes(int64(bytesPerOp(size)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				op()
			}
		})
	}
}

func BenchmarkSend(b *testing.B) {
	benchPath(b, "send", func(size int) int { return len(sendFrame(size)) })
}

func BenchmarkMessageHeader(b *testing.B) {
	benchPath(b, "message_header", func(size int) int { return size })
}

func BenchmarkMessageDecode(b *testing.B) {
	benchPath(b, "message_decode", func(size int) int { return size })
}

func benchOne(b *testing.B, sub, name string) {
	b.Run(sub, func(b *testing.B) {
		op := hotPaths(0)[name]
		op()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			op()
		}
	})
}

func BenchmarkFlow(b *testing.B) { benchOne(b, "permits=500", "flow") }

func BenchmarkAck(b *testing.B) { benchOne(b, "ids=100", "ack") }

func BenchmarkBatchIterate(b *testing.B) { benchOne(b, "messages=3", "batch_iterate") }
