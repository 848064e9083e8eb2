package bk

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestRequestDecoderSwitchesToV2ForGood(t *testing.T) {
	key := masterKey0to19()
	v3 := body(t, (&Request{
		Header:     BKPacketHeader{Version: VersionThree, Operation: OperationReadLAC, TxnID: 1},
		HasReadLac: true, ReadLac: ReadLacRequest{LedgerID: 5},
	}).AppendFrame(nil))
	v2 := body(t, AppendAddRequest(nil, 0, &key, hx(t, entry5x3Hex)))

	var d RequestDecoder
	for range 2 {
		if p, err := d.Decode(v3); p != ProtocolV3 || err != nil || d.V3.ReadLac.LedgerID != 5 {
			t.Fatalf("v3 frame: %v %v", p, err)
		}
	}
	if d.UsingV2() {
		t.Fatal("switched to v2 early")
	}
	if p, err := d.Decode(v2); p != ProtocolV2 || err != nil || d.V2.EntryID != 3 || !d.UsingV2() {
		t.Fatalf("v2 frame: %v %v %+v", p, err, d.V2)
	}
	// From now on even a v3 frame is read as v2 (and is garbage there), as
	// BookKeeper's decoder does; the server closes the connection.
	if p, err := d.Decode(v3); p != ProtocolV2 || !errors.Is(err, ErrMalformed) {
		t.Fatalf("v3 frame after the switch: %v %v", p, err)
	}

	// A frame that is neither switches too, and is an error.
	var d2 RequestDecoder
	if p, err := d2.Decode([]byte{0x0a}); p != ProtocolV2 || err == nil || !d2.UsingV2() {
		t.Fatalf("garbage: %v %v", p, err)
	}
}

// Every v2 request a BookKeeper client can send fails to parse as v3, so it
// can never be mistaken for one: the first byte (the version: 0, 1 or 2) is
// a protobuf tag for field 0.
func TestV2NeverParsesAsV3(t *testing.T) {
	key := masterKey0to19()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		var frame []byte
		switch i % 4 {
		case 0:
			entry := make([]byte, 16+rng.IntN(100))
			for j := range entry {
				entry[j] = byte(rng.Uint32())
			}
			frame = AppendAddRequest(nil, Flags(rng.Uint32()), &key, entry)
		case 1:
			frame = AppendReadRequest(nil, Flags(rng.Uint32()), 0, 0, &key)
		case 2:
			frame = AppendBatchReadRequest(nil, 0, 1, 2, 3, 4, 5, nil)
		case 3:
			frame = AppendAuthRequest(nil, &AuthMessage{AuthPluginName: []byte("x"), Payload: []byte{byte(i)}})
		}
		b := body(t, frame)
		for _, version := range []byte{0, 1, 2} {
			b[0] = version
			var r Request
			if err := r.Decode(b); err == nil {
				t.Fatalf("v2 frame % x parsed as v3: %+v", b, r)
			}
		}
	}
}
