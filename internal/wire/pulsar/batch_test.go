package pulsar

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestBatchReaderRoundTrip(t *testing.T) {
	md, body := sampleBatch()
	var r BatchReader
	r.Reset(body, md.NumMessages())
	var smm SingleMessageMetadata
	want := []string{"one", "two", "three"}
	i := 0
	for r.Next(&smm) {
		if r.Index() != i || string(r.Payload()) != want[i] || string(smm.PartitionKey) != "k"+want[i] ||
			!smm.HasSequenceID || smm.SequenceID != uint64(10+i) || len(smm.Properties) != 1 ||
			string(smm.Properties[0].Value) != string(rune('0'+i)) {
			t.Fatalf("message %d: %q %+v", i, r.Payload(), smm)
		}
		i++
	}
	if r.Err() != nil || i != 3 {
		t.Fatalf("read %d messages, err %v", i, r.Err())
	}
	// Trailing bytes after the announced count are ignored, as the clients do.
	r.Reset(append(body, 1, 2, 3), 3)
	for r.Next(&smm) {
	}
	if r.Err() != nil {
		t.Fatalf("trailing bytes: %v", r.Err())
	}
}

func TestBatchReaderErrors(t *testing.T) {
	_, body := sampleBatch()
	first := 4 + int(binary.BigEndian.Uint32(body))
	// A message whose payload_size is -1.
	smm := SingleMessageMetadata{PayloadSize: -1}
	enc := smm.AppendTo(nil)
	negative := append(binary.BigEndian.AppendUint32(nil, uint32(len(enc))), enc...)
	cases := []struct {
		name string
		body []byte
		n    int
	}{
		{"more messages than bytes", body, 4},
		{"truncated size", body[:2], 1},
		{"metadata past the end", body[:first-1], 1},
		{"payload past the end", body[:first+1], 1},
		{"negative payload size", negative, 1},
		{"bad metadata", []byte{0, 0, 0, 2, 0x08, 0x80}, 1},
		{"metadata without payload_size", []byte{0, 0, 0, 0}, 1},
	}
	for _, tc := range cases {
		var r BatchReader
		r.Reset(tc.body, tc.n)
		var m SingleMessageMetadata
		for r.Next(&m) {
		}
		if !errors.Is(r.Err(), ErrMalformed) && !errors.Is(r.Err(), ErrMissingField) {
			t.Errorf("%s: err %v", tc.name, r.Err())
		}
	}
}

func TestNumMessages(t *testing.T) {
	for _, tc := range []struct {
		has  bool
		n    int32
		want int
	}{{false, 1, 1}, {true, 1, 1}, {true, 100, 100}, {true, 0, 1}, {true, -4, 1}} {
		m := MessageMetadata{HasNumMessagesInBatch: tc.has, NumMessagesInBatch: tc.n}
		if got := m.NumMessages(); got != tc.want {
			t.Errorf("%+v: NumMessages = %d, want %d", tc, got, tc.want)
		}
	}
}
