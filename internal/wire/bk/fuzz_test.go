package bk

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

// Run one for longer with, for example:
//
//	go test -run '^$' -fuzz FuzzDecodeV3 -fuzztime 60s ./internal/wire/bk/

// FuzzFrameReader checks that SplitFrame and FrameReader agree on any byte
// stream however it is cut into reads, and never panic.
func FuzzFrameReader(f *testing.F) {
	f.Add(frames("a", "", "hello"), uint16(1), uint16(64))
	f.Add([]byte{0, 0, 0, 5, 1, 2}, uint16(3), uint16(16))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, uint16(1), uint16(8))
	f.Add(AppendReadRequest(nil, 0, 1, 2, nil), uint16(7), uint16(8))
	f.Fuzz(func(t *testing.T, stream []byte, chunk, maxFrame uint16) {
		max := int(maxFrame) + FrameLengthSize
		// Reference: repeated SplitFrame over the whole stream.
		var want [][]byte
		var wantErr error
		rest := stream
		for {
			b, n, err := SplitFrame(rest, max)
			if err != nil {
				wantErr = err
				break
			}
			if b == nil {
				if n <= len(rest) {
					t.Fatalf("need %d with %d bytes buffered", n, len(rest))
				}
				if len(rest) > 0 {
					wantErr = io.ErrUnexpectedEOF
				} else {
					wantErr = io.EOF
				}
				break
			}
			if n != FrameLengthSize+len(b) || n > max {
				t.Fatalf("frame of %d bytes for a %d-byte body (max %d)", n, len(b), max)
			}
			want = append(want, b)
			rest = rest[n:]
		}
		r := &chunkReader{data: stream, chunk: int(chunk%64) + 1}
		fr := NewFrameReader(r, max, int(chunk%32)+1)
		for i := 0; ; i++ {
			b, err := fr.Next()
			if err != nil {
				if i != len(want) {
					t.Fatalf("FrameReader stopped after %d frames (%v), SplitFrame found %d", i, err, len(want))
				}
				if !errors.Is(err, wantErr) && !(errors.Is(wantErr, ErrFrameTooLarge) && errors.Is(err, ErrFrameTooLarge)) {
					t.Fatalf("FrameReader error %v, SplitFrame %v", err, wantErr)
				}
				return
			}
			if i >= len(want) || !bytes.Equal(b, want[i]) {
				t.Fatalf("frame %d differs", i)
			}
		}
	})
}

type chunkReader struct {
	data  []byte
	chunk int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.chunk)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// FuzzDecodeV2 decodes arbitrary v2 bodies as requests and responses; what
// decodes must survive a re-encode unchanged.
func FuzzDecodeV2(f *testing.F) {
	key := masterKey0to19()
	for _, fr := range [][]byte{
		AppendAddRequest(nil, FlagRecoveryAdd, &key, make([]byte, 40)),
		AppendReadRequest(nil, 0, 5, 3, nil),
		AppendReadRequest(nil, FlagDoFencing, 5, -1, &key),
		AppendBatchReadRequest(nil, FlagDoFencing, 5, 3, 9, 100, 1<<20, &key),
		AppendAuthRequest(nil, &AuthMessage{AuthPluginName: []byte(AuthDisabledPluginName), Payload: []byte{}}),
		AppendAddResponse(nil, 2, RCFenced, 5, 3),
		AppendReadResponse(nil, 2, RCOK, 5, 3, []byte("entry")),
		AppendBatchReadResponse(nil, 2, RCOK, 5, 3, 9, [][]byte{[]byte("a"), {}}),
	} {
		f.Add(fr[FrameLengthSize:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r, r2 V2Request
		if err := r.Decode(b); err == nil && r.Header.Version == ProtocolVersion2 {
			var again []byte
			var k *MasterKey
			if r.HasMasterKey {
				k = &r.MasterKey
			}
			switch r.Header.Op {
			case OpAddEntry:
				again = AppendAddRequest(nil, r.Header.Flags, k, r.Entry)
			case OpReadEntry:
				again = AppendReadRequest(nil, r.Header.Flags, r.LedgerID, r.EntryID, k)
			case OpBatchReadEntry:
				again = AppendBatchReadRequest(nil, r.Header.Flags, r.LedgerID, r.EntryID, r.RequestID, r.MaxCount, r.MaxSize, k)
			case OpAuth:
				again = AppendAuthRequest(nil, &r.Auth)
			default:
				t.Fatalf("decoded unknown op %v", r.Header.Op)
			}
			if err := r2.Decode(again[FrameLengthSize:]); err != nil || !reflect.DeepEqual(r, r2) {
				t.Fatalf("request re-encode: %v\n%+v\n%+v", err, r, r2)
			}
		} else if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("request error not ErrMalformed: %v", err)
		}

		var p, p2 V2Response
		if err := p.Decode(b); err == nil {
			var again []byte
			v := p.Header.Version
			switch p.Header.Op {
			case OpAddEntry:
				again = AppendAddResponse(nil, v, p.RC, p.LedgerID, p.EntryID)
			case OpReadEntry:
				again = AppendReadResponse(nil, v, p.RC, p.LedgerID, p.EntryID, p.Data)
			case OpBatchReadEntry:
				again = AppendBatchReadResponseHead(nil, v, p.RC, p.LedgerID, p.EntryID, p.RequestID, len(p.Data))
				again = append(again, p.Data...)
			case OpAuth:
				again = AppendAuthResponse(nil, v, &p.Auth)
			default:
				t.Fatalf("decoded unknown op %v", p.Header.Op)
			}
			p.Header.Flags = 0 // responses carry none
			if err := p2.Decode(again[FrameLengthSize:]); err != nil || !reflect.DeepEqual(p, p2) {
				t.Fatalf("response re-encode: %v\n%+v\n%+v", err, p, p2)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("response error not ErrMalformed: %v", err)
		}

		var d RequestDecoder
		d.Decode(b)
	})
}

// FuzzDecodeV3 decodes arbitrary protobuf bodies as requests and
// responses; what decodes must survive a re-encode (whole, and as head plus
// body vector) unchanged.
func FuzzDecodeV3(f *testing.F) {
	for _, c := range v3RequestFixtures() {
		f.Add(hx(f, c.hex)[FrameLengthSize:])
	}
	for _, c := range v3ResponseFixtures() {
		f.Add(hx(f, c.hex)[FrameLengthSize:])
	}
	f.Add([]byte{0x0b, 0x0c, 0xfb, 0x01, 0xfc, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r, r2 Request
		if err := r.Decode(b); err == nil {
			frame := r.AppendFrame(nil)
			if err := r2.Decode(frame[FrameLengthSize:]); err != nil || !sameRequest(&r, &r2) {
				t.Fatalf("request re-encode: %v\n%+v\n%+v", err, r, r2)
			}
			vec := append(r.AppendFrameHead(nil, len(r.Add.Body)), r.Add.Body...)
			if r.HasAdd && !bytes.Equal(vec, frame) {
				t.Fatalf("head+body % x != frame % x", vec, frame)
			}
			if r.Size() != len(frame)-FrameLengthSize {
				t.Fatalf("Size %d, frame %d", r.Size(), len(frame))
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("request error not ErrMalformed: %v", err)
		}
		var p, p2 Response
		if err := p.Decode(b); err == nil {
			frame := p.AppendFrame(nil)
			if err := p2.Decode(frame[FrameLengthSize:]); err != nil || !reflect.DeepEqual(p, p2) {
				t.Fatalf("response re-encode: %v\n%+v\n%+v", err, p, p2)
			}
			if p.HasRead && p.Read.Body != nil {
				vec := append(p.AppendFrameHead(nil, len(p.Read.Body)), p.Read.Body...)
				if len(p.Read.Body) > 0 && !bytes.Equal(vec, frame) {
					t.Fatalf("head+body % x != frame % x", vec, frame)
				}
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("response error not ErrMalformed: %v", err)
		}
	})
}

func sameRequest(a, b *Request) bool {
	ac, bc := *a, *b
	if len(ac.Context) == 0 {
		ac.Context = nil
	}
	if len(bc.Context) == 0 {
		bc.Context = nil
	}
	return reflect.DeepEqual(ac, bc)
}
