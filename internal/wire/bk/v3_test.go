package bk

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// v3 fixtures, written by hand from BookkeeperProtocol.proto with the
// protobuf wire rules: a tag is varint(field<<3 | wire type) with wire type
// 0 for varints (enums, int64, uint64, int32) and 2 for bytes, strings and
// sub-messages (then a varint length). Multi-byte tags used below:
//
//	a0 06 = field 100 varint (flag)     a2 06 = field 100 bytes (readRequest/Response)
//	aa 06 = field 101 (add)             b2 06 = field 102 (auth)
//	ba 06 = field 103 (writeLac)        c2 06 = field 104 (readLac)
//	ca 06 = field 105 (getBookieInfo)   d2 06 = field 106 (startTLS)
//	da 06 = field 107 (forceLedger)     e2 06 = field 108 (getListOfEntriesOfLedger)
//	c2 0c = field 200 (requestContext)
//
// The bytes are in field-number order, as protobuf-java writes them. Where
// Magnetar's encoder orders differently (see the package comment) the
// fixture is checked by decoding, and Magnetar's bytes by a second fixture.

type v3RequestFixture struct {
	name string
	hex  string
	want Request
	// javaOrderOnly: our encoder writes these fields in another order; ours
	// is the fixture in oursHex.
	oursHex string
}

func v3RequestFixtures() []v3RequestFixture {
	key := masterKey0to19()
	return []v3RequestFixture{{
		name: "add",
		hex: `
			00 00 00 2a       // frame length 42
			0a 06             // field 1 header, 6 bytes
			  08 03           //   version = VERSION_THREE
			  10 02           //   operation = ADD_ENTRY
			  18 07           //   txnId = 7
			aa 06 1f          // field 101 addRequest, 31 bytes
			  08 05           //   ledgerId = 5
			  10 03           //   entryId = 3
			  1a 14 ` + key0to19Hex + ` // masterKey, 20 bytes
			  22 03 "xyz"     //   body, 3 bytes`,
		want: Request{
			Header: BKPacketHeader{Version: VersionThree, Operation: OperationAddEntry, TxnID: 7},
			HasAdd: true,
			Add:    AddRequest{LedgerID: 5, EntryID: 3, MasterKey: key[:], Body: []byte("xyz")},
		},
	}, {
		name: "recovery add, high priority",
		hex: `
			00 00 00 2f       // frame length 47
			0a 08             // header, 8 bytes
			  08 03 10 02     //   VERSION_THREE, ADD_ENTRY
			  18 08           //   txnId = 8
			  20 64           //   priority = 100 (DEFAULT_HIGH_PRIORITY_VALUE)
			aa 06 22          // addRequest, 34 bytes
			  08 05 10 03     //   ledgerId 5, entryId 3
			  1a 14 ` + key0to19Hex + ` // masterKey
			  22 03 "xyz"     //   body
			  a0 06 01        //   flag (field 100) = RECOVERY_ADD`,
		oursHex: `
			00 00 00 2f 0a 08 08 03 10 02 18 08 20 64
			aa 06 22 08 05 10 03 1a 14 ` + key0to19Hex + `
			  a0 06 01        //   flag before the body ...
			  22 03 "xyz"     //   ... so that the body ends the frame`,
		want: Request{
			Header: BKPacketHeader{Version: VersionThree, Operation: OperationAddEntry, TxnID: 8, Priority: 100, HasPriority: true},
			HasAdd: true,
			Add: AddRequest{LedgerID: 5, EntryID: 3, MasterKey: key[:], Body: []byte("xyz"),
				Flag: AddRecoveryAdd, HasFlag: true},
		},
	}, {
		name: "deferred sync add",
		hex: `
			00 00 00 2c 0a 06 08 03 10 02 18 07
			aa 06 21          // addRequest, 33 bytes
			  08 05 10 03 1a 14 ` + key0to19Hex + `
			  22 03 "xyz"
			  28 01           //   writeFlags (field 5) = DEFERRED_SYNC`,
		oursHex: `
			00 00 00 2c 0a 06 08 03 10 02 18 07
			aa 06 21 08 05 10 03 1a 14 ` + key0to19Hex + `
			  28 01 22 03 "xyz"`,
		want: Request{
			Header: BKPacketHeader{Version: VersionThree, Operation: OperationAddEntry, TxnID: 7},
			HasAdd: true,
			Add: AddRequest{LedgerID: 5, EntryID: 3, MasterKey: key[:], Body: []byte("xyz"),
				WriteFlags: WriteFlagDeferredSync, HasWriteFlags: true},
		},
	}, {
		name: "read",
		hex: `
			00 00 00 0f       // frame length 15
			0a 06 08 03       // header: VERSION_THREE
			  10 01           //   operation = READ_ENTRY
			  18 08           //   txnId = 8
			a2 06 04          // field 100 readRequest, 4 bytes
			  08 05           //   ledgerId = 5
			  10 03           //   entryId = 3`,
		want: Request{
			Header:  BKPacketHeader{Version: VersionThree, Operation: OperationReadEntry, TxnID: 8},
			HasRead: true,
			Read:    ReadRequest{LedgerID: 5, EntryID: 3},
		},
	}, {
		name: "fencing read of the LAC",
		hex: `
			00 00 00 33       // frame length 51
			0a 08 08 03 10 01 // header: VERSION_THREE, READ_ENTRY
			  18 09 20 64     //   txnId 9, priority 100
			a2 06 26          // readRequest, 38 bytes
			  08 05           //   ledgerId = 5
			  10 ff ff ff ff ff ff ff ff ff 01 // entryId = -1: ten bytes, two's complement
			  1a 14 ` + key0to19Hex + ` // masterKey
			  a0 06 01        //   flag = FENCE_LEDGER`,
		want: Request{
			Header:  BKPacketHeader{Version: VersionThree, Operation: OperationReadEntry, TxnID: 9, Priority: 100, HasPriority: true},
			HasRead: true,
			Read:    ReadRequest{LedgerID: 5, EntryID: -1, MasterKey: key[:], Flag: ReadFenceLedger, HasFlag: true},
		},
	}, {
		name: "long poll read",
		hex: `
			00 00 00 17             // frame length 23
			0a 06 08 03 10 01 18 0a // header: READ_ENTRY, txnId 10
			a2 06 0c                // readRequest, 12 bytes
			  08 05 10 04           //   ledgerId 5, entryId 4
			  20 03                 //   previousLAC = 3
			  28 90 4e              //   timeOut = 10000 ms
			  a0 06 02              //   flag = ENTRY_PIGGYBACK`,
		want: Request{
			Header:  BKPacketHeader{Version: VersionThree, Operation: OperationReadEntry, TxnID: 10},
			HasRead: true,
			Read: ReadRequest{LedgerID: 5, EntryID: 4, PreviousLAC: 3, HasPreviousLAC: true,
				TimeOut: 10000, HasTimeOut: true, Flag: ReadEntryPiggyback, HasFlag: true},
		},
	}, {
		name: "write lac",
		hex: `
			00 00 00 29             // frame length 41
			0a 06 08 03 10 06 18 0b // header: WRITE_LAC, txnId 11
			ba 06 1e                // field 103 writeLacRequest, 30 bytes
			  08 05                 //   ledgerId 5
			  10 02                 //   lac 2
			  1a 14 ` + key0to19Hex + ` // masterKey
			  22 02 "LB"            //   body (the LAC blob)`,
		want: Request{
			Header:      BKPacketHeader{Version: VersionThree, Operation: OperationWriteLAC, TxnID: 11},
			HasWriteLac: true,
			WriteLac:    WriteLacRequest{LedgerID: 5, LAC: 2, MasterKey: key[:], Body: []byte("LB")},
		},
	}, {
		name: "read lac",
		hex: `
			00 00 00 0d             // frame length 13
			0a 06 08 03 10 07 18 0c // header: READ_LAC, txnId 12
			c2 06 02 08 05          // field 104 readLacRequest {ledgerId 5}`,
		want: Request{
			Header:     BKPacketHeader{Version: VersionThree, Operation: OperationReadLAC, TxnID: 12},
			HasReadLac: true, ReadLac: ReadLacRequest{LedgerID: 5},
		},
	}, {
		name: "get bookie info",
		hex: `
			00 00 00 0d             // frame length 13
			0a 06 08 03 10 08 18 0d // header: GET_BOOKIE_INFO, txnId 13
			ca 06 02 08 03          // field 105 {requested = TOTAL_DISK_CAPACITY | FREE_DISK_SPACE}`,
		want: Request{
			Header:           BKPacketHeader{Version: VersionThree, Operation: OperationGetBookieInfo, TxnID: 13},
			HasGetBookieInfo: true,
			GetBookieInfo:    GetBookieInfoRequest{Requested: BookieInfoTotalDiskCapacity | BookieInfoFreeDiskSpace, HasRequested: true},
		},
	}, {
		name: "force ledger",
		hex: `
			00 00 00 0d             // frame length 13
			0a 06 08 03 10 0a 18 0e // header: FORCE_LEDGER (10), txnId 14
			da 06 02 08 05          // field 107 forceLedgerRequest {ledgerId 5}`,
		want: Request{
			Header:         BKPacketHeader{Version: VersionThree, Operation: OperationForceLedger, TxnID: 14},
			HasForceLedger: true, ForceLedger: ForceLedgerRequest{LedgerID: 5},
		},
	}, {
		name: "auth",
		hex: `
			00 00 00 21             // frame length 33
			0a 06 08 03 10 05 18 0f // header: AUTH, txnId 15
			b2 06 16                // field 102 authRequest, 22 bytes` + authDisabledMessageHex,
		want: Request{
			Header:  BKPacketHeader{Version: VersionThree, Operation: OperationAuth, TxnID: 15},
			HasAuth: true, Auth: AuthMessage{AuthPluginName: []byte(AuthDisabledPluginName), Payload: []byte{}},
		},
	}, {
		name: "start tls",
		hex: `
			00 00 00 0b             // frame length 11
			0a 06 08 03 10 09 18 10 // header: START_TLS, txnId 16
			d2 06 00                // field 106 startTLSRequest, empty`,
		want: Request{
			Header:      BKPacketHeader{Version: VersionThree, Operation: OperationStartTLS, TxnID: 16},
			HasStartTLS: true,
		},
	}, {
		name: "get list of entries",
		hex: `
			00 00 00 0d             // frame length 13
			0a 06 08 03 10 0b 18 11 // header: GET_LIST_OF_ENTRIES_OF_LEDGER (11), txnId 17
			e2 06 02 08 05          // field 108 {ledgerId 5}`,
		want: Request{
			Header:              BKPacketHeader{Version: VersionThree, Operation: OperationGetListOfEntriesOfLedger, TxnID: 17},
			HasGetListOfEntries: true, GetListOfEntriesOfLedger: GetListOfEntriesOfLedgerRequest{LedgerID: 5},
		},
	}, {
		name: "read lac with MDC context",
		hex: `
			00 00 00 16             // frame length 22
			0a 06 08 03 10 07 18 0c // header: READ_LAC, txnId 12
			c2 06 02 08 05          // readLacRequest {ledgerId 5}
			c2 0c 06                // field 200 requestContext, 6 bytes
			  0a 01 "k"             //   key
			  12 01 "v"             //   value`,
		want: Request{
			Header:     BKPacketHeader{Version: VersionThree, Operation: OperationReadLAC, TxnID: 12},
			HasReadLac: true, ReadLac: ReadLacRequest{LedgerID: 5},
			Context: []ContextPair{{Key: []byte("k"), Value: []byte("v")}},
		},
	}}
}

func TestV3RequestFixtures(t *testing.T) {
	for _, c := range v3RequestFixtures() {
		t.Run(c.name, func(t *testing.T) {
			frame := hx(t, c.hex)
			var r Request
			if err := r.Decode(body(t, frame)); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r, c.want) {
				t.Fatalf("decoded\n%+v\nwant\n%+v", r, c.want)
			}
			ours := frame
			if c.oursHex != "" {
				ours = hx(t, c.oursHex)
				var r2 Request
				if err := r2.Decode(body(t, ours)); err != nil || !reflect.DeepEqual(r2, c.want) {
					t.Fatalf("our ordering decodes to %+v, %v", r2, err)
				}
			}
			if got := c.want.AppendFrame(nil); !bytes.Equal(got, ours) {
				t.Fatalf("AppendFrame:\n got % x\nwant % x", got, ours)
			}
			if n := c.want.Size(); n != len(ours)-4 {
				t.Fatalf("Size %d, frame body %d", n, len(ours)-4)
			}
			// The head plus the add body as a separate vector is the same frame.
			head := c.want.AppendFrameHead([]byte("prefix"), len(c.want.Add.Body))
			if got := append(head[6:], c.want.Add.Body...); c.want.HasAdd && !bytes.Equal(got, ours) {
				t.Fatalf("AppendFrameHead + body:\n got % x\nwant % x", got, ours)
			}
			// Through the server-side decoder too.
			var d RequestDecoder
			p, err := d.Decode(body(t, frame))
			if err != nil || p != ProtocolV3 || !reflect.DeepEqual(d.V3, c.want) || d.UsingV2() {
				t.Fatalf("RequestDecoder: %v %v %+v", p, err, d.V3)
			}
		})
	}
}

type v3ResponseFixture struct {
	name    string
	hex     string
	oursHex string
	want    Response
}

func v3ResponseFixtures() []v3ResponseFixture {
	return []v3ResponseFixture{{
		name: "add",
		hex: `
			00 00 00 13             // frame length 19
			0a 06 08 03 10 02 18 07 // header: VERSION_THREE, ADD_ENTRY, txnId 7
			10 00                   // field 2 status = EOK
			aa 06 06                // field 101 addResponse, 6 bytes
			  08 00                 //   status EOK
			  10 05                 //   ledgerId 5
			  18 03                 //   entryId 3`,
		want: Response{
			Header: BKPacketHeader{Version: VersionThree, Operation: OperationAddEntry, TxnID: 7},
			HasAdd: true, Add: AddResponse{LedgerID: 5, EntryID: 3},
		},
	}, {
		name: "add fenced",
		hex: `
			00 00 00 15             // frame length 21
			0a 06 08 03 10 02 18 07 // header
			10 f8 03                // status = EFENCED (504)
			aa 06 07                // addResponse, 7 bytes
			  08 f8 03              //   status EFENCED
			  10 05 18 03           //   ledgerId 5, entryId 3`,
		want: Response{
			Header: BKPacketHeader{Version: VersionThree, Operation: OperationAddEntry, TxnID: 7},
			Status: StatusFenced,
			HasAdd: true, Add: AddResponse{Status: StatusFenced, LedgerID: 5, EntryID: 3},
		},
	}, {
		name: "read",
		hex: `
			00 00 00 1b             // frame length 27
			0a 06 08 03 10 01 18 08 // header: READ_ENTRY, txnId 8
			10 00                   // status EOK
			a2 06 0e                // field 100 readResponse, 14 bytes
			  08 00                 //   status EOK
			  10 05                 //   ledgerId 5
			  18 03                 //   entryId 3
			  22 06 "abcdef"        //   body: the entry`,
		want: Response{
			Header:  BKPacketHeader{Version: VersionThree, Operation: OperationReadEntry, TxnID: 8},
			HasRead: true, Read: ReadResponse{LedgerID: 5, EntryID: 3, Body: []byte("abcdef")},
		},
	}, {
		name: "long poll read",
		hex: `
			00 00 00 20             // frame length 32
			0a 06 08 03 10 01 18 0a // header: READ_ENTRY, txnId 10
			10 00                   // status EOK
			a2 06 13                // readResponse, 19 bytes
			  08 00 10 05 18 04     //   EOK, ledgerId 5, entryId 4
			  22 02 "e4"            //   body
			  28 04                 //   maxLAC = 4
			  30 80 d0 95 ff bc 31  //   lacUpdateTimestamp = 1700000000000`,
		oursHex: `
			00 00 00 20 0a 06 08 03 10 01 18 0a 10 00
			a2 06 13 08 00 10 05 18 04
			  28 04 30 80 d0 95 ff bc 31 // maxLAC and timestamp first ...
			  22 02 "e4"                 // ... the body last`,
		want: Response{
			Header:  BKPacketHeader{Version: VersionThree, Operation: OperationReadEntry, TxnID: 10},
			HasRead: true,
			Read: ReadResponse{LedgerID: 5, EntryID: 4, Body: []byte("e4"), MaxLAC: 4, HasMaxLAC: true,
				LACUpdateTimestamp: 1700000000000, HasLACUpdateTimestamp: true},
		},
	}, {
		name: "read no entry",
		hex: `
			00 00 00 15             // frame length 21
			0a 06 08 03 10 01 18 08 // header
			10 93 03                // status = ENOENTRY (403)
			a2 06 07                // readResponse, 7 bytes
			  08 93 03              //   status ENOENTRY
			  10 05 18 09           //   ledgerId 5, entryId 9; no body`,
		want: Response{
			Header: BKPacketHeader{Version: VersionThree, Operation: OperationReadEntry, TxnID: 8},
			Status: StatusNoEntry, HasRead: true, Read: ReadResponse{Status: StatusNoEntry, LedgerID: 5, EntryID: 9},
		},
	}, {
		name: "write lac",
		hex: `
			00 00 00 11             // frame length 17
			0a 06 08 03 10 06 18 0b // header: WRITE_LAC, txnId 11
			10 00                   // status EOK
			ba 06 04 08 00 10 05    // writeLacResponse {EOK, ledgerId 5}`,
		want: Response{
			Header:      BKPacketHeader{Version: VersionThree, Operation: OperationWriteLAC, TxnID: 11},
			HasWriteLac: true, WriteLac: WriteLacResponse{LedgerID: 5},
		},
	}, {
		name: "read lac",
		hex: `
			00 00 00 1a             // frame length 26
			0a 06 08 03 10 07 18 0c // header: READ_LAC, txnId 12
			10 00                   // status EOK
			c2 06 0d                // readLacResponse, 13 bytes
			  08 00 10 05           //   EOK, ledgerId 5
			  1a 02 "LB"            //   lacBody
			  22 03 "ENT"           //   lastEntryBody`,
		want: Response{
			Header:     BKPacketHeader{Version: VersionThree, Operation: OperationReadLAC, TxnID: 12},
			HasReadLac: true, ReadLac: ReadLacResponse{LedgerID: 5, LACBody: []byte("LB"), LastEntryBody: []byte("ENT")},
		},
	}, {
		name: "get bookie info",
		hex: `
			00 00 00 1c             // frame length 28
			0a 06 08 03 10 08 18 0d // header: GET_BOOKIE_INFO, txnId 13
			10 00                   // status EOK
			ca 06 0f                // getBookieInfoResponse, 15 bytes
			  08 00                 //   status EOK
			  10 80 80 80 80 80 20  //   totalDiskCapacity = 2^40
			  18 80 80 80 80 04     //   freeDiskSpace = 2^30`,
		want: Response{
			Header:           BKPacketHeader{Version: VersionThree, Operation: OperationGetBookieInfo, TxnID: 13},
			HasGetBookieInfo: true,
			GetBookieInfo: GetBookieInfoResponse{TotalDiskCapacity: 1 << 40, HasTotalDiskCapacity: true,
				FreeDiskSpace: 1 << 30, HasFreeDiskSpace: true},
		},
	}, {
		name: "force ledger",
		hex: `
			00 00 00 11             // frame length 17
			0a 06 08 03 10 0a 18 0e // header: FORCE_LEDGER, txnId 14
			10 00                   // status EOK
			da 06 04 08 00 10 05    // forceLedgerResponse {EOK, ledgerId 5}`,
		want: Response{
			Header:         BKPacketHeader{Version: VersionThree, Operation: OperationForceLedger, TxnID: 14},
			HasForceLedger: true, ForceLedger: ForceLedgerResponse{LedgerID: 5},
		},
	}, {
		name: "auth",
		hex: `
			00 00 00 23             // frame length 35
			0a 06 08 03 10 05 18 0f // header: AUTH, txnId 15
			10 00                   // status EOK
			b2 06 16                // authResponse, 22 bytes` + authDisabledMessageHex,
		want: Response{
			Header:  BKPacketHeader{Version: VersionThree, Operation: OperationAuth, TxnID: 15},
			HasAuth: true, Auth: AuthMessage{AuthPluginName: []byte(AuthDisabledPluginName), Payload: []byte{}},
		},
	}, {
		name: "start tls",
		hex: `
			00 00 00 0d             // frame length 13
			0a 06 08 03 10 09 18 10 // header: START_TLS, txnId 16
			10 00                   // status EOK
			d2 06 00                // startTLSResponse, empty`,
		want: Response{
			Header:      BKPacketHeader{Version: VersionThree, Operation: OperationStartTLS, TxnID: 16},
			HasStartTLS: true,
		},
	}, {
		name: "get list of entries",
		hex: `
			00 00 00 15             // frame length 21
			0a 06 08 03 10 0b 18 11 // header: GET_LIST_OF_ENTRIES_OF_LEDGER, txnId 17
			10 00                   // status EOK
			e2 06 08                // field 108, 8 bytes
			  08 00 10 05           //   EOK, ledgerId 5
			  1a 02 01 02           //   availabilityOfEntriesOfLedger`,
		want: Response{
			Header:                   BKPacketHeader{Version: VersionThree, Operation: OperationGetListOfEntriesOfLedger, TxnID: 17},
			HasGetListOfEntries:      true,
			GetListOfEntriesOfLedger: GetListOfEntriesOfLedgerResponse{LedgerID: 5, Availability: []byte{1, 2}},
		},
	}, {
		name: "unknown operation answered EBADREQ",
		hex: `
			00 00 00 0b             // frame length 11
			0a 06 08 03 10 2a 18 63 // header copied from the request: operation 42, txnId 99
			10 94 03                // status = EBADREQ (404); no sub-response`,
		want: Response{
			Header: BKPacketHeader{Version: VersionThree, Operation: 42, TxnID: 99},
			Status: StatusBadRequest,
		},
	}}
}

func TestV3ResponseFixtures(t *testing.T) {
	for _, c := range v3ResponseFixtures() {
		t.Run(c.name, func(t *testing.T) {
			frame := hx(t, c.hex)
			var r Response
			if err := r.Decode(body(t, frame)); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r, c.want) {
				t.Fatalf("decoded\n%+v\nwant\n%+v", r, c.want)
			}
			ours := frame
			if c.oursHex != "" {
				ours = hx(t, c.oursHex)
				var r2 Response
				if err := r2.Decode(body(t, ours)); err != nil || !reflect.DeepEqual(r2, c.want) {
					t.Fatalf("our ordering decodes to %+v, %v", r2, err)
				}
			}
			if got := c.want.AppendFrame(nil); !bytes.Equal(got, ours) {
				t.Fatalf("AppendFrame:\n got % x\nwant % x", got, ours)
			}
			if n := c.want.Size(); n != len(ours)-4 {
				t.Fatalf("Size %d, frame body %d", n, len(ours)-4)
			}
			if c.want.HasRead {
				head := c.want.AppendFrameHead(nil, len(c.want.Read.Body))
				if got := append(head, c.want.Read.Body...); !bytes.Equal(got, ours) {
					t.Fatalf("AppendFrameHead + body:\n got % x\nwant % x", got, ours)
				}
			}
		})
	}
}

func TestV3DecodeErrors(t *testing.T) {
	cases := map[string]string{
		"empty request":            ``,
		"field 0":                  `02 01 00 00`,
		"truncated varint":         `0a 06 08 03 10 02 18 87`,
		"varint overflow":          `08 ff ff ff ff ff ff ff ff ff ff 01`,
		"length overruns":          `0a 09 08 03 10 02 18 07`,
		"sub-message overruns":     `0a 06 08 03 10 02 18 07 a2 06 05 08 05 10`,
		"header missing txnId":     `0a 04 08 03 10 01`,
		"no header":                `a2 06 04 08 05 10 03`,
		"read missing entryId":     `0a 06 08 03 10 01 18 01 a2 06 02 08 05`,
		"add missing body":         `0a 06 08 03 10 02 18 01 aa 06 1a 08 05 10 03 1a 14 00 x20`,
		"write lac missing key":    `0a 06 08 03 10 06 18 01 ba 06 08 08 05 10 02 22 02 "LB"`,
		"read lac missing ledger":  `0a 06 08 03 10 07 18 01 c2 06 00`,
		"force missing ledger":     `0a 06 08 03 10 0a 18 01 da 06 00`,
		"list missing ledger":      `0a 06 08 03 10 0b 18 01 e2 06 00`,
		"auth missing payload":     `0a 06 08 03 10 05 18 01 b2 06 03 0a 01 "p"`,
		"context missing value":    `0a 06 08 03 10 07 18 01 c2 06 02 08 05 c2 0c 03 0a 01 "k"`,
		"bad sub-message":          `0a 06 08 03 10 07 18 01 c2 06 02 00 05`,
		"end group without start":  `0a 06 08 03 10 07 18 01 c2 06 02 08 05 0c`,
		"unterminated group":       `0a 06 08 03 10 07 18 01 c2 06 02 08 05 0b 08 01`,
		"mismatched end group":     `0a 06 08 03 10 07 18 01 c2 06 02 08 05 0b 14`,
		"wire type 6":              `0a 06 08 03 10 07 18 01 c2 06 02 08 05 0e`,
		"truncated fixed64":        `0a 06 08 03 10 07 18 01 c2 06 02 08 05 09 00 00`,
		"field number too large":   `0a 06 08 03 10 07 18 01 f8 ff ff ff 1f 00`,
		"header with wrong wire":   `09 00 00 00 00 00 00 00 00`,
		"v2 add frame":             `02 01 00 00 ` + key0to19Hex + entry5x3Hex,
		"v2 read frame (version0)": `00 00 00 02 00 x16`,
	}
	for name, h := range cases {
		var r Request
		if err := r.Decode(hx(t, h)); !errors.Is(err, ErrMalformed) {
			t.Errorf("request %s: err %v, want ErrMalformed", name, err)
		}
	}
	respCases := map[string]string{
		"empty":                    ``,
		"missing status":           `0a 06 08 03 10 02 18 07`,
		"missing header":           `10 00`,
		"add missing entryId":      `0a 06 08 03 10 02 18 07 10 00 aa 06 04 08 00 10 05`,
		"read missing status":      `0a 06 08 03 10 01 18 07 10 00 a2 06 04 10 05 18 03`,
		"write lac missing ledger": `0a 06 08 03 10 06 18 07 10 00 ba 06 02 08 00`,
		"read lac missing ledger":  `0a 06 08 03 10 07 18 07 10 00 c2 06 02 08 00`,
		"info missing status":      `0a 06 08 03 10 08 18 07 10 00 ca 06 02 10 01`,
		"force missing ledger":     `0a 06 08 03 10 0a 18 07 10 00 da 06 02 08 00`,
		"list missing ledger":      `0a 06 08 03 10 0b 18 07 10 00 e2 06 02 08 00`,
		"auth missing name":        `0a 06 08 03 10 05 18 07 10 00 b2 06 02 12 00`,
		"bad start tls":            `0a 06 08 03 10 09 18 07 10 00 d2 06 01 08`,
	}
	for name, h := range respCases {
		var r Response
		if err := r.Decode(hx(t, h)); !errors.Is(err, ErrMalformed) {
			t.Errorf("response %s: err %v, want ErrMalformed", name, err)
		}
	}
}

func TestV3UnknownFieldsAndMerging(t *testing.T) {
	// A read request with unknown fields of every wire type, a known field
	// number with the wrong wire type (skipped, as protobuf does), and the
	// header split over two occurrences (merged).
	b := hx(t, `
		0a 04 08 03 10 01       // header part 1: version, operation
		f8 01 07                // unknown field 31, varint
		a2 06 1b                // readRequest, 27 bytes
		  08 05                 //   ledgerId 5
		  11 01 02 03 04 05 06 07 08 // unknown field 2 as fixed64: not entryId, skipped
		  10 03                 //   entryId 3
		  35 aa bb cc dd        //   unknown field 6, fixed32
		  3b 08 01 1a 01 "x" 3c //   unknown group 7 holding a varint and bytes
		  42 00                 //   unknown field 8, empty bytes
		0a 02 18 2a             // header part 2: txnId 42 (merged into the header)
		fb 01 fc 01             // unknown empty group 31 at the top level`)
	var r Request
	if err := r.Decode(b); err != nil {
		t.Fatal(err)
	}
	want := Request{
		Header:  BKPacketHeader{Version: VersionThree, Operation: OperationReadEntry, TxnID: 42},
		HasRead: true, Read: ReadRequest{LedgerID: 5, EntryID: 3},
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("decoded %+v\nwant %+v", r, want)
	}
	// Later scalar values win; sub-message fields merge.
	b = hx(t, `
		0a 06 08 03 10 02 18 01
		aa 06 04 08 05 10 03          // add: ids
		aa 06 08 1a 01 "k" 22 03 "abc" // add again: key and body
		aa 06 02 10 04                 // and a later entry id wins`)
	if err := r.Decode(b); err != nil {
		t.Fatal(err)
	}
	if r.Add.LedgerID != 5 || r.Add.EntryID != 4 || string(r.Add.MasterKey) != "k" || string(r.Add.Body) != "abc" {
		t.Fatalf("merged add %+v", r.Add)
	}
	// Unknown enum numbers are kept.
	b = hx(t, `0a 06 08 07 10 63 18 01`)
	if err := r.Decode(b); err != nil {
		t.Fatal(err)
	}
	if r.Header.Version != 7 || r.Header.Operation != 99 {
		t.Fatalf("header %+v", r.Header)
	}
}

func TestV3RoundTrips(t *testing.T) {
	for _, c := range v3RequestFixtures() {
		var r Request
		frame := c.want.AppendFrame(nil)
		if err := r.Decode(body(t, frame)); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !reflect.DeepEqual(r, c.want) {
			t.Fatalf("%s: round trip gave %+v", c.name, r)
		}
	}
	// Extremes.
	big := Request{
		Header:  BKPacketHeader{Version: VersionThree, Operation: OperationReadEntry, TxnID: ^uint64(0), Priority: ^uint32(0), HasPriority: true},
		HasRead: true,
		Read: ReadRequest{LedgerID: -1 << 63, EntryID: 1<<63 - 1, MasterKey: []byte{}, PreviousLAC: -1, HasPreviousLAC: true,
			TimeOut: 0, HasTimeOut: true, Flag: -1, HasFlag: true},
		HasAdd: true,
		Add: AddRequest{LedgerID: 0, EntryID: 0, MasterKey: []byte{}, Body: make([]byte, 300),
			WriteFlags: -2, HasWriteFlags: true},
		HasGetBookieInfo: true,
		HasForceLedger:   true, ForceLedger: ForceLedgerRequest{LedgerID: 1 << 62},
		Context: []ContextPair{{Key: []byte{}, Value: []byte{}}, {Key: []byte("a"), Value: bytes.Repeat([]byte("v"), 200)}},
	}
	var r Request
	if err := r.Decode(body(t, big.AppendFrame(nil))); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, big) {
		t.Fatalf("round trip\n got %+v\nwant %+v", r, big)
	}
	// A Request reused for a smaller one keeps nothing of the first.
	small := v3RequestFixtures()[3].want
	if err := r.Decode(body(t, small.AppendFrame(nil))); err != nil {
		t.Fatal(err)
	}
	if len(r.Context) == 0 {
		r.Context = nil // the capacity is kept for reuse
	}
	if !reflect.DeepEqual(r, small) {
		t.Fatalf("reused Request kept state: %+v", r)
	}

	for _, c := range v3ResponseFixtures() {
		var r Response
		if err := r.Decode(body(t, c.want.AppendFrame(nil))); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !reflect.DeepEqual(r, c.want) {
			t.Fatalf("%s: round trip gave %+v", c.name, r)
		}
	}
	// A read response sent as head + body vector, with the body given only
	// as a length.
	resp := Response{Header: BKPacketHeader{Version: VersionThree, Operation: OperationReadEntry, TxnID: 1},
		HasRead: true, Read: ReadResponse{LedgerID: 1, EntryID: 2, MaxLAC: 3, HasMaxLAC: true}}
	entry := bytes.Repeat([]byte{0xab}, 1000)
	frame := append(resp.AppendFrameHead(nil, len(entry)), entry...)
	var rr Response
	if err := rr.Decode(body(t, frame)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rr.Read.Body, entry) || rr.Read.MaxLAC != 3 {
		t.Fatalf("vectored read response decoded to %+v", rr.Read)
	}
}
