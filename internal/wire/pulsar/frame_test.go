package pulsar

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
)

// readAll drives r the way a connection does: bytes arrive in chunks of the
// given size; whole frames are consumed from the front of the buffer.
func readAll(t *testing.T, r *FrameReader, stream []byte, chunk int) [][]byte {
	t.Helper()
	var buf []byte
	var got [][]byte
	for off := 0; off < len(stream) || len(buf) > 0; {
		var f Frame
		n, err := r.Next(buf, &f)
		if err != nil {
			t.Fatalf("chunk %d: Next: %v", chunk, err)
		}
		if n == 0 {
			if off >= len(stream) {
				t.Fatalf("chunk %d: %d bytes left that are not a frame", chunk, len(buf))
			}
			if need := FrameLen(buf); need <= len(buf) {
				t.Fatalf("chunk %d: FrameLen %d with %d bytes buffered and no frame", chunk, need, len(buf))
			}
			end := min(off+chunk, len(stream))
			buf = append(buf, stream[off:end]...)
			off = end
			continue
		}
		got = append(got, append([]byte(nil), buf[:n]...))
		buf = buf[n:]
	}
	return got
}

func TestFrameReaderIncremental(t *testing.T) {
	frames := goldenFrames(t)
	var stream []byte
	for _, f := range frames {
		stream = append(stream, f.frame...)
	}
	for _, chunk := range []int{1, 2, 3, 7, 64, 4096, len(stream)} {
		var r FrameReader
		got := readAll(t, &r, stream, chunk)
		if len(got) != len(frames) {
			t.Fatalf("chunk %d: %d frames, want %d", chunk, len(got), len(frames))
		}
		for i := range got {
			if !bytes.Equal(got[i], frames[i].frame) {
				t.Fatalf("chunk %d: frame %d (%s) differs", chunk, i, frames[i].name)
			}
		}
	}
}

func TestFrameReaderSplitsPayload(t *testing.T) {
	md := sampleMetadata()
	send := CommandSend{ProducerID: 1, SequenceID: 7}
	frame := AppendSendFrame(nil, &send, &md, []byte("hello"))
	var r FrameReader
	var f Frame
	n, err := r.Next(frame, &f)
	if err != nil || n != len(frame) {
		t.Fatalf("Next = %d, %v", n, err)
	}
	entry := AppendEntry(nil, &md, []byte("hello"))
	if !bytes.Equal(f.Entry, entry) || !bytes.Equal(f.Payload, entry) {
		t.Fatalf("entry %x, want %x", f.Entry, entry)
	}
	if f.BrokerEntryMetadata != nil || !f.HasChecksum || string(f.Body) != "hello" {
		t.Fatalf("frame parts wrong: %+v", f)
	}
	var got MessageMetadata
	if err := got.Decode(f.Metadata); err != nil {
		t.Fatal(err)
	}
	if string(got.ProducerName) != "standalone-0-1" || got.SequenceID != 7 || string(got.PartitionKey) != "key-1" {
		t.Fatalf("metadata %+v", got)
	}
	// ParseEntry on the stored bytes gives the same split.
	mdb, body, err := ParseEntry(f.Entry)
	if err != nil || !bytes.Equal(mdb, f.Metadata) || string(body) != "hello" {
		t.Fatalf("ParseEntry = %x %q %v", mdb, body, err)
	}

	// A MESSAGE with broker entry metadata delivers the same entry bytes.
	bem := BrokerEntryMetadata{BrokerTimestamp: 5, HasBrokerTimestamp: true, Index: 9, HasIndex: true}
	msg := CommandMessage{ConsumerID: 3, MessageID: NewMessageID(1, 2)}
	mframe := AppendMessageFrame(nil, &msg, &bem, f.Entry)
	n, err = r.Next(mframe, &f)
	if err != nil || n != len(mframe) {
		t.Fatalf("Next(message) = %d, %v", n, err)
	}
	if !bytes.Equal(f.Entry, entry) {
		t.Fatalf("delivered entry differs from stored")
	}
	var gotBEM BrokerEntryMetadata
	if err := gotBEM.Decode(f.BrokerEntryMetadata); err != nil || gotBEM != bem {
		t.Fatalf("broker entry metadata %+v %v", gotBEM, err)
	}
	var c Command
	if err := c.Decode(f.Command); err != nil || c.Type != TypeMessage || c.Message.ConsumerID != 3 {
		t.Fatalf("command %v %v", c.Type, err)
	}
}

func TestFrameReaderMaxFrameSize(t *testing.T) {
	frame := AppendFlowFrame(nil, 1, 2)
	total := int(binary.BigEndian.Uint32(frame))
	r := FrameReader{MaxFrameSize: total}
	var f Frame
	if n, err := r.Next(frame, &f); err != nil || n != len(frame) {
		t.Fatalf("frame at the limit: %d, %v", n, err)
	}
	r.MaxFrameSize = total - 1
	// Refused from the size field alone, before the frame is buffered.
	n, err := r.Next(frame[:4], &f)
	if n != 0 || !errors.Is(err, ErrFrameTooLarge) || !errors.Is(err, base.ErrTooLarge) {
		t.Fatalf("oversize: %d, %v", n, err)
	}
	// The default is 5 MiB + 10 KiB, as Pulsar's.
	var def FrameReader
	big := binary.BigEndian.AppendUint32(nil, DefaultMaxFrameSize+1)
	if _, err := def.Next(big, &f); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("default limit: %v", err)
	}
	ok := binary.BigEndian.AppendUint32(nil, DefaultMaxFrameSize)
	if n, err := def.Next(ok, &f); n != 0 || err != nil {
		t.Fatalf("default-size frame header: %d, %v (want: need more)", n, err)
	}
}

func TestFrameReaderChecksum(t *testing.T) {
	md := sampleMetadata()
	send := CommandSend{ProducerID: 4, SequenceID: 77}
	good := AppendSendFrame(nil, &send, &md, []byte("hello"))
	entryAt := len(good) - len(AppendEntry(nil, &md, []byte("hello")))
	for _, at := range []int{len(good) - 1, entryAt + 2, entryAt + 10} { // payload, crc field, metadata
		bad := append([]byte(nil), good...)
		bad[at] ^= 0x40
		var r FrameReader
		var f Frame
		n, err := r.Next(bad, &f)
		if !errors.Is(err, ErrChecksum) || !errors.Is(err, base.ErrCorruption) {
			t.Fatalf("flip at %d: err %v", at, err)
		}
		// The frame is consumed and its command readable, so the broker
		// can answer SEND_ERROR for the right producer and sequence id.
		if n != len(bad) {
			t.Fatalf("flip at %d: n = %d, want %d", at, n, len(bad))
		}
		var c Command
		if err := c.Decode(f.Command); err != nil || c.Send.ProducerID != 4 || c.Send.SequenceID != 77 {
			t.Fatalf("command after checksum error: %+v %v", c.Send, err)
		}
		r.SkipChecksum = true
		if _, err := r.Next(bad, &f); err != nil {
			t.Fatalf("SkipChecksum: %v", err)
		}
		if _, _, err := ParseEntry(bad[entryAt:]); !errors.Is(err, ErrChecksum) {
			t.Fatalf("ParseEntry of corrupted entry: %v", err)
		}
	}
}

func TestFrameReaderMalformed(t *testing.T) {
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	frame := func(cmd []byte, payload ...[]byte) []byte {
		body := append(u32(uint32(len(cmd))), cmd...)
		for _, p := range payload {
			body = append(body, p...)
		}
		return append(u32(uint32(len(body))), body...)
	}
	ping := AppendBaseCommand(nil, &Command{Type: TypePing})
	cases := []struct {
		name string
		in   []byte
	}{
		{"total below 4", append(u32(3), 0, 0, 0)},
		{"command size past total", append(u32(4), u32(5)...)},
		{"one payload byte", frame(ping, []byte{0x0e})},
		{"broker entry header cut", frame(ping, []byte{0x0e, 0x02, 0, 0})},
		{"broker entry size past end", frame(ping, []byte{0x0e, 0x02, 0, 0, 0, 9, 1})},
		{"entry shorter than header", frame(ping, []byte{0x0e, 0x01, 0, 0, 0, 0, 0, 0})},
		{"entry metadata past end", frame(ping, []byte{0x0e, 0x01, 0, 0, 0, 0, 0, 0, 0, 9})},
		{"no magic, metadata past end", frame(ping, []byte{0, 0, 0, 9, 1})},
		{"bem then garbage", frame(ping, []byte{0x0e, 0x02, 0, 0, 0, 0, 1, 2})},
	}
	for _, tc := range cases {
		var r FrameReader
		var f Frame
		n, err := r.Next(tc.in, &f)
		if n != 0 || !errors.Is(err, ErrMalformed) || !errors.Is(err, base.ErrCorruption) {
			t.Errorf("%s: Next = %d, %v", tc.name, n, err)
		}
	}
}

func TestFrameWithoutChecksumMagic(t *testing.T) {
	md := sampleMetadata()
	mdb := md.AppendTo(nil)
	payload := append(binary.BigEndian.AppendUint32(nil, uint32(len(mdb))), mdb...)
	payload = append(payload, "hi"...)
	hdr := AppendSendHeader(nil, &CommandSend{ProducerID: 1, SequenceID: 2}, len(payload))
	in := append(hdr, payload...)
	var r FrameReader
	var f Frame
	if n, err := r.Next(in, &f); err != nil || n != len(in) {
		t.Fatalf("Next = %d, %v", n, err)
	}
	if f.HasChecksum || f.Entry != nil || !bytes.Equal(f.Metadata, mdb) || string(f.Body) != "hi" {
		t.Fatalf("old-format payload parsed as %+v", f)
	}
	// A broker adds the checksum before storing it.
	entry := AppendEntryRaw(nil, f.Metadata, f.Body)
	if m, body, err := ParseEntry(entry); err != nil || !bytes.Equal(m, mdb) || string(body) != "hi" {
		t.Fatalf("ParseEntry(AppendEntryRaw) = %v", err)
	}
	if _, _, err := ParseEntry(payload); !errors.Is(err, ErrBadMagic) {
		t.Fatalf("ParseEntry without magic: %v", err)
	}
}

func TestFrameLen(t *testing.T) {
	if FrameLen(nil) != 4 || FrameLen([]byte{0, 0}) != 4 {
		t.Fatal("FrameLen without a size field")
	}
	if got := FrameLen([]byte{0, 0, 1, 0}); got != 4+256 {
		t.Fatalf("FrameLen = %d", got)
	}
}
