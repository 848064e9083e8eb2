package bk

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
)

// The fixtures below are written by hand from BookieProtocol.java and
// BookieProtoEncoding.java (RequestEnDeCoderPreV3, ResponseEnDeCoderPreV3,
// DigestManager.computeDigestAndPackageForSendingV2). Every integer is
// big-endian. The master key is 00..13.

// An opaque 36-byte entry (header + 4 digest bytes): the codec never looks
// past the first 16 bytes, which the bookie reads as ledger and entry id.
const entry5x3Hex = `
	00 00 00 00 00 00 00 05 // entry: ledger id 5
	00 00 00 00 00 00 00 03 // entry: entry id 3
	00 00 00 00 00 00 00 02 // entry: last add confirmed 2
	00 00 00 00 00 00 00 0a // entry: ledger length 10
	de ad be ef             // entry: digest (not checked by the codec)`

var v2AddRequestFixture = `
	00 00 00 3c // frame length 60 = 4 header + 20 key + 36 entry
	02          // header: protocol version 2
	01          // header: opcode 1 ADDENTRY
	00 06       // header: flags RECOVERY_ADD (0x2) | HIGH_PRIORITY (0x4)
	` + key0to19Hex + ` // master key, 20 bytes
	` + entry5x3Hex

func TestV2AddRequestFixture(t *testing.T) {
	frame := hx(t, v2AddRequestFixture)
	entry := hx(t, entry5x3Hex)
	key := masterKey0to19()

	if got := AppendAddRequest(nil, FlagRecoveryAdd|FlagHighPriority, &key, entry); !bytes.Equal(got, frame) {
		t.Fatalf("AppendAddRequest:\n got % x\nwant % x", got, frame)
	}
	// The head plus the entry as a separate vector is the same frame.
	head := AppendAddRequestHead(nil, FlagRecoveryAdd|FlagHighPriority, &key, len(entry))
	if got := append(head, entry...); !bytes.Equal(got, frame) {
		t.Fatalf("AppendAddRequestHead + entry:\n got % x\nwant % x", got, frame)
	}

	var r V2Request
	if err := r.Decode(body(t, frame)); err != nil {
		t.Fatal(err)
	}
	want := V2Request{
		Header:   PacketHeader{Version: 2, Op: OpAddEntry, Flags: FlagRecoveryAdd | FlagHighPriority},
		LedgerID: 5, EntryID: 3, MasterKey: key, HasMasterKey: true, Entry: entry,
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("decoded %+v\nwant %+v", r, want)
	}
	if !r.IsRecoveryAdd() || !r.IsHighPriority() || r.IsFencing() || !r.VersionSupported() {
		t.Fatalf("flag helpers wrong for %+v", r.Header)
	}
	// The entry aliases the frame: no copy.
	b := body(t, frame)
	if err := r.Decode(b); err != nil {
		t.Fatal(err)
	}
	if &r.Entry[0] != &b[PacketHeaderLen+MasterKeyLen] {
		t.Fatal("Entry is not a subslice of the frame")
	}
}

func TestV2AddResponseFixture(t *testing.T) {
	frame := hx(t, `
		00 00 00 18             // frame length 24
		02 01 00 00             // header: version 2, ADDENTRY, no flags
		00 00 00 68             // rc 104 EFENCED
		00 00 00 00 00 00 00 05 // ledger id 5
		00 00 00 00 00 00 00 03 // entry id 3`)
	if got := AppendAddResponse(nil, 2, RCFenced, 5, 3); !bytes.Equal(got, frame) {
		t.Fatalf("AppendAddResponse:\n got % x\nwant % x", got, frame)
	}
	var r V2Response
	if err := r.Decode(body(t, frame)); err != nil {
		t.Fatal(err)
	}
	want := V2Response{Header: PacketHeader{Version: 2, Op: OpAddEntry}, RC: RCFenced, LedgerID: 5, EntryID: 3}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("decoded %+v, want %+v", r, want)
	}
	if !errors.Is(r.RC.Err(), base.ErrFenced) {
		t.Fatalf("RC %v does not map to base.ErrFenced", r.RC)
	}
}

func TestV2ReadRequestFixtures(t *testing.T) {
	key := masterKey0to19()
	cases := []struct {
		name  string
		frame string
		enc   []byte
		want  V2Request
	}{{
		name: "plain",
		frame: `
			00 00 00 14             // frame length 20
			02 02 00 00             // header: version 2, READENTRY, no flags
			00 00 00 00 00 00 00 05 // ledger id 5
			00 00 00 00 00 00 00 03 // entry id 3`,
		enc:  AppendReadRequest(nil, 0, 5, 3, nil),
		want: V2Request{Header: PacketHeader{Version: 2, Op: OpReadEntry}, LedgerID: 5, EntryID: 3},
	}, {
		name: "fencing the last entry",
		frame: `
			00 00 00 28             // frame length 40 = 20 + master key
			02 02 00 05             // header: version 2, READENTRY, DO_FENCING (0x1) | HIGH_PRIORITY (0x4)
			00 00 00 00 00 00 00 05 // ledger id 5
			ff ff ff ff ff ff ff ff // entry id -1: LAST_ADD_CONFIRMED
			` + key0to19Hex + `     // master key (present because DO_FENCING)`,
		enc: AppendReadRequest(nil, FlagDoFencing|FlagHighPriority, 5, LastAddConfirmed, &key),
		want: V2Request{Header: PacketHeader{Version: 2, Op: OpReadEntry, Flags: FlagDoFencing | FlagHighPriority},
			LedgerID: 5, EntryID: -1, MasterKey: key, HasMasterKey: true},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			frame := hx(t, c.frame)
			if !bytes.Equal(c.enc, frame) {
				t.Fatalf("encoded:\n got % x\nwant % x", c.enc, frame)
			}
			var r V2Request
			if err := r.Decode(body(t, frame)); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r, c.want) {
				t.Fatalf("decoded %+v\nwant %+v", r, c.want)
			}
		})
	}
}

func TestV2ReadResponseFixtures(t *testing.T) {
	ok := hx(t, `
		00 00 00 1e             // frame length 30 = 24 + 6 entry bytes
		02 02 00 00             // header: version 2, READENTRY
		00 00 00 00             // rc 0 EOK
		00 00 00 00 00 00 00 05 // ledger id 5
		00 00 00 00 00 00 00 03 // entry id 3
		"abcdef"                // the entry (as stored)`)
	if got := AppendReadResponse(nil, 2, RCOK, 5, 3, []byte("abcdef")); !bytes.Equal(got, ok) {
		t.Fatalf("AppendReadResponse:\n got % x\nwant % x", got, ok)
	}
	head := AppendReadResponseHead(nil, 2, RCOK, 5, 3, 6)
	if got := append(head, "abcdef"...); !bytes.Equal(got, ok) {
		t.Fatalf("AppendReadResponseHead + entry:\n got % x\nwant % x", got, ok)
	}
	var r V2Response
	if err := r.Decode(body(t, ok)); err != nil {
		t.Fatal(err)
	}
	want := V2Response{Header: PacketHeader{Version: 2, Op: OpReadEntry}, LedgerID: 5, EntryID: 3, Data: []byte("abcdef")}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("decoded %+v, want %+v", r, want)
	}

	noEntry := hx(t, `
		00 00 00 18             // frame length 24: no entry bytes
		02 02 00 00             // header: version 2, READENTRY
		00 00 00 02             // rc 2 ENOENTRY
		00 00 00 00 00 00 00 05 // ledger id 5
		00 00 00 00 00 00 00 09 // entry id 9`)
	if got := AppendReadResponse(nil, 2, RCNoEntry, 5, 9, nil); !bytes.Equal(got, noEntry) {
		t.Fatalf("error response:\n got % x\nwant % x", got, noEntry)
	}
	if err := r.Decode(body(t, noEntry)); err != nil {
		t.Fatal(err)
	}
	if r.RC != RCNoEntry || len(r.Data) != 0 || !errors.Is(r.RC.Err(), base.ErrNoEntry) {
		t.Fatalf("decoded %+v", r)
	}
}

func TestV2BatchReadFixtures(t *testing.T) {
	key := masterKey0to19()
	req := hx(t, `
		00 00 00 28             // frame length 40
		02 07 00 00             // header: version 2, BATCH_READ_ENTRY (7)
		00 00 00 00 00 00 00 05 // ledger id 5
		00 00 00 00 00 00 00 03 // first entry id 3
		00 00 00 00 00 00 00 09 // request id 9
		00 00 00 64             // max count 100
		00 00 00 00 00 10 00 00 // max size 1 MiB`)
	if got := AppendBatchReadRequest(nil, 0, 5, 3, 9, 100, 1<<20, nil); !bytes.Equal(got, req) {
		t.Fatalf("AppendBatchReadRequest:\n got % x\nwant % x", got, req)
	}
	var r V2Request
	if err := r.Decode(body(t, req)); err != nil {
		t.Fatal(err)
	}
	want := V2Request{Header: PacketHeader{Version: 2, Op: OpBatchReadEntry}, LedgerID: 5, EntryID: 3,
		RequestID: 9, MaxCount: 100, MaxSize: 1 << 20}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("decoded %+v\nwant %+v", r, want)
	}

	fenced := hx(t, `
		00 00 00 3c             // frame length 60 = 40 + master key
		02 07 00 01             // header: version 2, BATCH_READ_ENTRY, DO_FENCING
		00 00 00 00 00 00 00 05 // ledger id 5
		00 00 00 00 00 00 00 03 // first entry id 3
		00 00 00 00 00 00 00 09 // request id 9
		00 00 00 01             // max count 1
		00 00 00 00 00 00 00 00 // max size 0
		`+key0to19Hex+`         // master key`)
	if got := AppendBatchReadRequest(nil, FlagDoFencing, 5, 3, 9, 1, 0, &key); !bytes.Equal(got, fenced) {
		t.Fatalf("fencing AppendBatchReadRequest:\n got % x\nwant % x", got, fenced)
	}
	if err := r.Decode(body(t, fenced)); err != nil {
		t.Fatal(err)
	}
	if !r.HasMasterKey || r.MasterKey != key || r.MaxCount != 1 {
		t.Fatalf("decoded %+v", r)
	}

	resp := hx(t, `
		00 00 00 2d             // frame length 45 = 24 + 8 request id + 13 entry bytes
		02 07 00 00             // header: version 2, BATCH_READ_ENTRY
		00 00 00 00             // rc EOK
		00 00 00 00 00 00 00 05 // ledger id 5
		00 00 00 00 00 00 00 03 // first entry id 3
		00 00 00 00 00 00 00 09 // request id 9
		00 00 00 02 "ab"        // entry 3: size 2, bytes
		00 00 00 03 "cde"       // entry 4: size 3, bytes`)
	entries := [][]byte{[]byte("ab"), []byte("cde")}
	if got := AppendBatchReadResponse(nil, 2, RCOK, 5, 3, 9, entries); !bytes.Equal(got, resp) {
		t.Fatalf("AppendBatchReadResponse:\n got % x\nwant % x", got, resp)
	}
	// Head + [size][entry] vectors give the same bytes.
	vec := AppendBatchReadResponseHead(nil, 2, RCOK, 5, 3, 9, 4+2+4+3)
	for _, e := range entries {
		vec = append(AppendBatchEntrySize(vec, len(e)), e...)
	}
	if !bytes.Equal(vec, resp) {
		t.Fatalf("head + vectors:\n got % x\nwant % x", vec, resp)
	}
	var rr V2Response
	if err := rr.Decode(body(t, resp)); err != nil {
		t.Fatal(err)
	}
	if rr.RequestID != 9 || rr.LedgerID != 5 || rr.EntryID != 3 || rr.RC != RCOK {
		t.Fatalf("decoded %+v", rr)
	}
	var got [][]byte
	it := BatchEntries(rr.Data)
	for e, ok := it.Next(); ok; e, ok = it.Next() {
		got = append(got, e)
	}
	if it.Err() != nil || !reflect.DeepEqual(got, entries) {
		t.Fatalf("entries %q, err %v", got, it.Err())
	}
}

const authDisabledMessageHex = `
	0a 12 "AuthDisabledPlugin" // field 1 authPluginName, length 18
	12 00                      // field 2 payload, empty`

func TestV2AuthFixtures(t *testing.T) {
	msg := AuthMessage{AuthPluginName: []byte(AuthDisabledPluginName), Payload: []byte{}}
	req := hx(t, `
		00 00 00 1a // frame length 26 = 4 + 22
		02 03 00 00 // header: version 2, AUTH`+authDisabledMessageHex)
	if got := AppendAuthRequest(nil, &msg); !bytes.Equal(got, req) {
		t.Fatalf("AppendAuthRequest:\n got % x\nwant % x", got, req)
	}
	var r V2Request
	if err := r.Decode(body(t, req)); err != nil {
		t.Fatal(err)
	}
	if r.Header.Op != OpAuth || !reflect.DeepEqual(r.Auth, msg) {
		t.Fatalf("decoded %+v", r)
	}
	resp := hx(t, `
		00 00 00 1a // frame length 26
		02 03 00 00 // header: version 2, AUTH, as the bookie answers`+authDisabledMessageHex)
	if got := AppendAuthResponse(nil, 2, &msg); !bytes.Equal(got, resp) {
		t.Fatalf("AppendAuthResponse:\n got % x\nwant % x", got, resp)
	}
	var rr V2Response
	if err := rr.Decode(body(t, resp)); err != nil {
		t.Fatal(err)
	}
	if rr.Header.Op != OpAuth || !reflect.DeepEqual(rr.Auth, msg) {
		t.Fatalf("decoded %+v", rr)
	}
}

func TestPacketHeader(t *testing.T) {
	cases := []struct {
		word uint32
		h    PacketHeader
	}{
		{0x02010000, PacketHeader{2, OpAddEntry, 0}},
		{0x02020005, PacketHeader{2, OpReadEntry, FlagDoFencing | FlagHighPriority}},
		{0x0107ffff, PacketHeader{1, OpBatchReadEntry, 0xffff}},
		{0x00000002, PacketHeader{0, OpReadEntry, 0}}, // version 0: the opcode alone
	}
	for _, c := range cases {
		if got := ParsePacketHeader(c.word); got != c.h {
			t.Errorf("ParsePacketHeader(%#08x) = %+v, want %+v", c.word, got, c.h)
		}
		if got := c.h.Uint32(); got != c.word {
			t.Errorf("%+v.Uint32() = %#08x, want %#08x", c.h, got, c.word)
		}
	}
	// Version 0 cannot carry flags.
	if got := (PacketHeader{0, OpAddEntry, FlagRecoveryAdd}).Uint32(); got != 1 {
		t.Errorf("version 0 header = %#x, want 1", got)
	}
}

func TestV2Version0And1Requests(t *testing.T) {
	// A version 0 READ (header = opcode) never carries a master key.
	v0 := hx(t, `00 00 00 02  00 00 00 00 00 00 00 05  00 00 00 00 00 00 00 03`)
	var r V2Request
	if err := r.Decode(v0); err != nil {
		t.Fatal(err)
	}
	if r.Header != (PacketHeader{0, OpReadEntry, 0}) || r.LedgerID != 5 || r.EntryID != 3 || r.HasMasterKey {
		t.Fatalf("v0 read %+v", r)
	}
	// A version 1 READ with DO_FENCING: only version >= 2 reads the key.
	v1 := hx(t, `01 02 00 01  00 00 00 00 00 00 00 05  00 00 00 00 00 00 00 03`)
	if err := r.Decode(v1); err != nil {
		t.Fatal(err)
	}
	if r.HasMasterKey || !r.VersionSupported() {
		t.Fatalf("v1 read %+v", r)
	}
	// Version 3 in a v2 frame decodes, but a bookie refuses it.
	v3 := hx(t, `03 02 00 00  00 00 00 00 00 00 00 05  00 00 00 00 00 00 00 03`)
	if err := r.Decode(v3); err != nil {
		t.Fatal(err)
	}
	if r.VersionSupported() {
		t.Fatal("version 3 v2 request reported supported")
	}
}

func TestV2DecodeErrors(t *testing.T) {
	key := masterKey0to19()
	fullAdd := body(t, AppendAddRequest(nil, 0, &key, hx(t, entry5x3Hex)))
	fenceRead := body(t, AppendReadRequest(nil, FlagDoFencing, 1, 2, &key))
	cases := map[string][]byte{
		"empty":                     {},
		"short header":              {2, 1, 0},
		"add without key":           fullAdd[:4+10],
		"add entry shorter than 16": fullAdd[:4+20+15],
		"read without ids":          hx(t, `02 02 00 00  00 00 00 00 00 00 00 05`),
		"fencing read without key":  fenceRead[:len(fenceRead)-1],
		"batch read short":          hx(t, `02 07 00 00`+` 00 x35`),
		"unknown opcode":            hx(t, `02 09 00 00  00 x16`),
		"read lac over v2":          hx(t, `02 04 00 00  00 x16`),
		"auth not protobuf":         hx(t, `02 03 00 00  00`),
		"auth missing payload":      hx(t, `02 03 00 00  0a 01 "x"`),
	}
	for name, b := range cases {
		var r V2Request
		if err := r.Decode(b); !errors.Is(err, ErrMalformed) || !errors.Is(err, base.ErrCorruption) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
	// Trailing bytes after a read are ignored, as BookKeeper does.
	var r V2Request
	if err := r.Decode(append(body(t, AppendReadRequest(nil, 0, 1, 2, nil)), 0xff, 0xff)); err != nil {
		t.Errorf("read with trailing bytes: %v", err)
	}

	respCases := map[string][]byte{
		"empty":           {},
		"short add":       hx(t, `02 01 00 00  00 00 00 00`),
		"short batch":     hx(t, `02 07 00 00  00 x24`),
		"batch overrun":   hx(t, `02 07 00 00  00 x28  00 00 00 05 "abc"`),
		"batch stray":     hx(t, `02 07 00 00  00 x28  00 00 00`),
		"unknown opcode":  hx(t, `02 06 00 00  00 x20`),
		"auth bad varint": hx(t, `02 03 00 00  0a ff`),
	}
	for name, b := range respCases {
		var r V2Response
		if err := r.Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("response %s: err %v, want ErrMalformed", name, err)
		}
	}
}

func TestV2RoundTrips(t *testing.T) {
	key := GenerateMasterKey([]byte("secret"))
	entry := make([]byte, 100)
	copy(entry, hx(t, entry5x3Hex))
	reqs := [][]byte{
		AppendAddRequest(nil, 0, &key, entry),
		AppendAddRequest(nil, FlagRecoveryAdd, &key, entry),
		AppendReadRequest(nil, 0, 1<<40, 1<<33, nil),
		AppendReadRequest(nil, FlagDoFencing, 7, LastAddConfirmed, &key),
		AppendBatchReadRequest(nil, FlagHighPriority, 7, 0, -1, 1<<30, 5<<20, nil),
		AppendBatchReadRequest(nil, FlagDoFencing, 7, 0, 1, 1, 1, &key),
		AppendAuthRequest(nil, &AuthMessage{AuthPluginName: []byte("p"), Payload: []byte{1, 2, 3}}),
	}
	for i, frame := range reqs {
		var r V2Request
		if err := r.Decode(body(t, frame)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		var again []byte
		switch r.Header.Op {
		case OpAddEntry:
			again = AppendAddRequest(nil, r.Header.Flags, &r.MasterKey, r.Entry)
		case OpReadEntry:
			var k *MasterKey
			if r.HasMasterKey {
				k = &r.MasterKey
			}
			again = AppendReadRequest(nil, r.Header.Flags, r.LedgerID, r.EntryID, k)
		case OpBatchReadEntry:
			var k *MasterKey
			if r.HasMasterKey {
				k = &r.MasterKey
			}
			again = AppendBatchReadRequest(nil, r.Header.Flags, r.LedgerID, r.EntryID, r.RequestID, r.MaxCount, r.MaxSize, k)
		case OpAuth:
			again = AppendAuthRequest(nil, &r.Auth)
		}
		if !bytes.Equal(again, frame) {
			t.Errorf("request %d (%v) did not round-trip:\n got % x\nwant % x", i, r.Header.Op, again, frame)
		}
	}

	resps := [][]byte{
		AppendAddResponse(nil, 2, RCOK, 1, 2),
		AppendAddResponse(nil, 1, RCUnknownLedgerState, -1, -1),
		AppendReadResponse(nil, 2, RCOK, 1, 2, entry),
		AppendReadResponse(nil, 0, RCNoLedger, 1, 2, nil),
		AppendBatchReadResponse(nil, 2, RCOK, 1, 2, 3, [][]byte{entry, {}, entry[:1]}),
		AppendBatchReadResponse(nil, 2, RCTooManyRequests, 1, 2, 3, nil),
		AppendAuthResponse(nil, 2, &AuthMessage{AuthPluginName: []byte{}, Payload: []byte{}}),
	}
	for i, frame := range resps {
		var r V2Response
		if err := r.Decode(body(t, frame)); err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		var again []byte
		switch r.Header.Op {
		case OpAddEntry:
			again = AppendAddResponse(nil, r.Header.Version, r.RC, r.LedgerID, r.EntryID)
		case OpReadEntry:
			again = AppendReadResponse(nil, r.Header.Version, r.RC, r.LedgerID, r.EntryID, r.Data)
		case OpBatchReadEntry:
			var es [][]byte
			it := BatchEntries(r.Data)
			for e, ok := it.Next(); ok; e, ok = it.Next() {
				es = append(es, e)
			}
			again = AppendBatchReadResponse(nil, r.Header.Version, r.RC, r.LedgerID, r.EntryID, r.RequestID, es)
		case OpAuth:
			again = AppendAuthResponse(nil, r.Header.Version, &r.Auth)
		}
		if !bytes.Equal(again, frame) {
			t.Errorf("response %d (%v) did not round-trip:\n got % x\nwant % x", i, r.Header.Op, again, frame)
		}
	}
}
