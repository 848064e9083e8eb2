package pulsar

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden frames in testdata/golden")

const goldenDir = "testdata/golden"

type namedFrame struct {
	name  string
	frame []byte
}

// Deterministic payload-frame inputs shared by golden, frame and benchmark
// tests.
func sampleMetadata() MessageMetadata {
	return MessageMetadata{
		ProducerName:     []byte("standalone-0-1"),
		SequenceID:       7,
		PublishTime:      1700000000000,
		Properties:       []RawKeyValue{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: []byte("2")}},
		PartitionKey:     []byte("key-1"),
		UncompressedSize: 5,
		EventTime:        1699999999999,
		OrderingKey:      []byte("ok"),
	}
}

func sampleBatch() (MessageMetadata, []byte) {
	var body []byte
	for i, p := range []string{"one", "two", "three"} {
		smm := SingleMessageMetadata{
			Properties:    []RawKeyValue{{Key: []byte("i"), Value: []byte{byte('0' + i)}}},
			PartitionKey:  []byte("k" + p),
			SequenceID:    uint64(10 + i),
			HasSequenceID: true,
		}
		body = AppendBatchMessage(body, &smm, []byte(p))
	}
	md := MessageMetadata{
		ProducerName:          []byte("standalone-0-1"),
		SequenceID:            10,
		PublishTime:           1700000000000,
		UncompressedSize:      uint32(len(body)),
		NumMessagesInBatch:    3,
		HasNumMessagesInBatch: true,
	}
	return md, body
}

// goldenFrames builds every golden frame: one simple frame per command
// fixture (built from the official encoding, decoded and re-framed by us),
// and the payload frames.
func goldenFrames(t testing.TB) []namedFrame {
	t.Helper()
	var out []namedFrame
	for _, fx := range commandFixtures {
		_, b := officialMarshal(t, "BaseCommand", fx.json)
		var c Command
		if err := c.Decode(b); err != nil {
			t.Fatalf("%s: %v", fx.name, err)
		}
		out = append(out, namedFrame{"cmd_" + fx.name, AppendFrame(nil, &c)})
	}
	md := sampleMetadata()
	send := CommandSend{ProducerID: 1, SequenceID: 7}
	single := AppendSendFrame(nil, &send, &md, []byte("hello"))
	out = append(out, namedFrame{"send_single", single})

	bmd, body := sampleBatch()
	bsend := CommandSend{ProducerID: 1, SequenceID: 10, NumMessages: 3}
	out = append(out, namedFrame{"send_batch", AppendSendFrame(nil, &bsend, &bmd, body)})

	entry := AppendEntry(nil, &md, []byte("hello"))
	msg := CommandMessage{ConsumerID: 5, MessageID: NewMessageID(12, 34), RedeliveryCount: 1}
	out = append(out, namedFrame{"message", AppendMessageFrame(nil, &msg, nil, entry)})
	bem := BrokerEntryMetadata{BrokerTimestamp: 1700000000001, HasBrokerTimestamp: true, Index: 41, HasIndex: true}
	msg.MessageID.Partition = 0
	msg.AckSet = []int64{5}
	out = append(out, namedFrame{"message_bem", AppendMessageFrame(nil, &msg, &bem, entry)})
	return out
}

func hexLines(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		n := min(32, len(b))
		sb.WriteString(hex.EncodeToString(b[:n]))
		sb.WriteByte('\n')
		b = b[n:]
	}
	return sb.String()
}

func readGolden(t testing.TB, path string) []byte {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(string(text)), ""))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// goldenSeeds returns every golden frame on disk, for fuzz seeds.
func goldenSeeds(t testing.TB) [][]byte {
	paths, err := filepath.Glob(filepath.Join(goldenDir, "*.hex"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	var out [][]byte
	for _, p := range paths {
		out = append(out, readGolden(t, p))
	}
	return out
}

// TestGoldenFrames pins the exact bytes of every frame type. The frames'
// BaseCommands are the official encoder's bytes (TestCommandsMatchOfficial
// Encoding proves we reproduce them); here the framing, the checksums and
// the payload layouts are pinned too, and each frame is parsed back and
// decoded strictly by the official types. Run with -update to rewrite.
func TestGoldenFrames(t *testing.T) {
	frames := goldenFrames(t)
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		old, _ := filepath.Glob(filepath.Join(goldenDir, "*.hex"))
		for _, p := range old {
			os.Remove(p)
		}
		for _, f := range frames {
			if err := os.WriteFile(filepath.Join(goldenDir, f.name+".hex"), []byte(hexLines(f.frame)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	onDisk, _ := filepath.Glob(filepath.Join(goldenDir, "*.hex"))
	if len(onDisk) != len(frames) {
		t.Errorf("%d golden files on disk, %d frames built (run with -update)", len(onDisk), len(frames))
	}
	var r FrameReader
	for _, f := range frames {
		want := readGolden(t, filepath.Join(goldenDir, f.name+".hex"))
		if !bytes.Equal(f.frame, want) {
			t.Errorf("%s: frame differs from golden\n got %x\nwant %x", f.name, f.frame, want)
			continue
		}
		var fr Frame
		n, err := r.Next(want, &fr)
		if err != nil || n != len(want) {
			t.Errorf("%s: Next = %d, %v; want %d", f.name, n, err, len(want))
			continue
		}
		if _, err := officialUnmarshal("BaseCommand", fr.Command); err != nil {
			t.Errorf("%s: official decode: %v", f.name, err)
		}
		var c Command
		if err := c.Decode(fr.Command); err != nil {
			t.Errorf("%s: decode: %v", f.name, err)
		}
		if fr.Payload != nil {
			if _, err := officialUnmarshal("MessageMetadata", fr.Metadata); err != nil {
				t.Errorf("%s: official metadata decode: %v", f.name, err)
			}
			if !fr.HasChecksum || Checksum(fr.Entry[6:]) != fr.Checksum {
				t.Errorf("%s: checksum not present or wrong", f.name)
			}
		}
	}
}

// TestTypedEncodersMatchGeneric checks that the hot-path encoders write the
// same bytes as AppendFrame does for the equivalent Command.
func TestTypedEncodersMatchGeneric(t *testing.T) {
	check := func(name string, got []byte, c *Command) {
		t.Helper()
		if want := AppendFrame(nil, c); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %x\nwant %x", name, got, want)
		}
	}
	check("flow", AppendFlowFrame(nil, 5, 1000), &Command{Type: TypeFlow, Flow: CommandFlow{ConsumerID: 5, MessagePermits: 1000}})
	ack := CommandAck{ConsumerID: 5, MessageIDs: []MessageIDData{NewMessageID(1, 2), NewMessageID(1, 3)}}
	check("ack", AppendAckFrame(nil, &ack), &Command{Type: TypeAck, Ack: ack})
	receipt := CommandSendReceipt{ProducerID: 1, SequenceID: 2, MessageID: NewMessageID(3, 4)}
	check("receipt", AppendSendReceiptFrame(nil, &receipt), &Command{Type: TypeSendReceipt, SendReceipt: receipt})
	check("ping", AppendPingFrame(nil), &Command{Type: TypePing})
	check("pong", AppendPongFrame(nil), &Command{Type: TypePong})
	check("success", AppendSuccessFrame(nil, 9), &Command{Type: TypeSuccess, Success: CommandSuccess{RequestID: 9}})
	check("error", AppendErrorFrame(nil, 9, ConsumerBusy, "busy"),
		&Command{Type: TypeError, Error: CommandError{RequestID: 9, Error: ConsumerBusy, Message: "busy"}})

	// Header + entry (the vectored delivery) equals the copied frame; and a
	// SEND header before an entry equals a whole SEND frame.
	md := sampleMetadata()
	entry := AppendEntry(nil, &md, []byte("hello"))
	msg := CommandMessage{ConsumerID: 5, MessageID: NewMessageID(12, 34)}
	bem := BrokerEntryMetadata{Index: 3, HasIndex: true}
	for _, b := range []*BrokerEntryMetadata{nil, &bem} {
		hdr := AppendMessageHeader(nil, &msg, b, len(entry))
		if whole := AppendMessageFrame(nil, &msg, b, entry); !bytes.Equal(append(hdr, entry...), whole) {
			t.Errorf("message header + entry != message frame (bem %v)", b != nil)
		}
	}
	send := CommandSend{ProducerID: 1, SequenceID: 7}
	hdr := AppendSendHeader(nil, &send, len(entry))
	if whole := AppendSendFrame(nil, &send, &md, []byte("hello")); !bytes.Equal(append(hdr, entry...), whole) {
		t.Errorf("send header + entry != send frame")
	}
	// AppendEntryRaw with the encoded metadata equals AppendEntry.
	if raw := AppendEntryRaw(nil, md.AppendTo(nil), []byte("hello")); !bytes.Equal(raw, entry) {
		t.Errorf("AppendEntryRaw != AppendEntry")
	}
}
