package bk

import (
	"fmt"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
)

var benchSizes = []int{100, 1 << 10, 64 << 10, 1 << 20}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("size=%dMiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("size=%dKiB", n>>10)
	}
	return fmt.Sprintf("size=%dB", n)
}

// The hot paths, one iteration each, so that tests can count their
// allocations and benchmarks time them.
type hotPaths struct {
	key     MasterKey
	dig     *Digester
	payload []byte
	addReq  []byte // v2 ADD request frame body
	readReq []byte // v2 READ request frame body
	addRsp  []byte // v2 ADD response frame body
	readRsp []byte // v2 READ response frame body
	v3Add   []byte // v3 ADD request frame body
	v3Read  []byte // v3 READ request frame body
	v3Rsp   []byte // v3 READ response frame body
	out     []byte
	dec     RequestDecoder
	rsp     V2Response
	v3rsp   Response
	v3req   Request
}

func newHotPaths(size int) *hotPaths {
	h := &hotPaths{key: GenerateMasterKey([]byte("pw")), payload: make([]byte, size), out: make([]byte, 0, 256)}
	h.dig, _ = NewDigester(DigestCRC32C, nil)
	entry := h.dig.AppendEntry(nil, EntryHeader{LedgerID: 5, EntryID: 3, LAC: 2, Length: int64(size)}, h.payload)
	h.addReq = AppendAddRequest(nil, 0, &h.key, entry)[FrameLengthSize:]
	h.readReq = AppendReadRequest(nil, 0, 5, 3, nil)[FrameLengthSize:]
	h.addRsp = AppendAddResponse(nil, 2, RCOK, 5, 3)[FrameLengthSize:]
	h.readRsp = AppendReadResponse(nil, 2, RCOK, 5, 3, entry)[FrameLengthSize:]
	add := Request{Header: BKPacketHeader{Version: VersionThree, Operation: OperationAddEntry, TxnID: 1},
		HasAdd: true, Add: AddRequest{LedgerID: 5, EntryID: 3, MasterKey: h.key[:], Body: entry}}
	h.v3Add = add.AppendFrame(nil)[FrameLengthSize:]
	read := Request{Header: BKPacketHeader{Version: VersionThree, Operation: OperationReadEntry, TxnID: 2},
		HasRead: true, Read: ReadRequest{LedgerID: 5, EntryID: 3}}
	h.v3Read = read.AppendFrame(nil)[FrameLengthSize:]
	rsp := Response{Header: read.Header, HasRead: true, Read: ReadResponse{LedgerID: 5, EntryID: 3, Body: entry}}
	h.v3Rsp = rsp.AppendFrame(nil)[FrameLengthSize:]
	return h
}

// bookieV2Add: decode an ADD request, encode its response.
func (h *hotPaths) bookieV2Add() error {
	if _, err := h.dec.Decode(h.addReq); err != nil {
		return err
	}
	r := &h.dec.V2
	h.out = AppendAddResponse(h.out[:0], r.Header.Version, RCOK, r.LedgerID, r.EntryID)
	return nil
}

// bookieV2Read: decode a READ request, encode the response head (the entry
// goes as its own vector).
func (h *hotPaths) bookieV2Read(entryLen int) error {
	if _, err := h.dec.Decode(h.readReq); err != nil {
		return err
	}
	r := &h.dec.V2
	h.out = AppendReadResponseHead(h.out[:0], r.Header.Version, RCOK, r.LedgerID, r.EntryID, entryLen)
	return nil
}

// clientV2Add: build an ADD request head with the entry header and CRC32C
// digest over the payload (sent as its own vector), decode the response.
func (h *hotPaths) clientV2Add() error {
	hl := h.dig.HeaderLen()
	h.out = AppendAddRequestHead(h.out[:0], 0, &h.key, hl+len(h.payload))
	h.out = h.dig.AppendEntryHeader(h.out, EntryHeader{LedgerID: 5, EntryID: 3, LAC: 2, Length: 10}, h.payload)
	return h.rsp.Decode(h.addRsp)
}

// clientV2Read: build a READ request, decode the response, verify the
// entry's digest and ids.
func (h *hotPaths) clientV2Read() error {
	h.out = AppendReadRequest(h.out[:0], 0, 5, 3, nil)
	if err := h.rsp.Decode(h.readRsp); err != nil {
		return err
	}
	_, _, err := h.dig.ParseEntry(h.rsp.Data, h.rsp.LedgerID, h.rsp.EntryID)
	return err
}

// bookieV3Add: decode a v3 ADD request, encode its response.
func (h *hotPaths) bookieV3Add() error {
	if err := h.v3req.Decode(h.v3Add); err != nil {
		return err
	}
	a := &h.v3req.Add
	h.v3rsp = Response{Header: h.v3req.Header, HasAdd: true, Add: AddResponse{LedgerID: a.LedgerID, EntryID: a.EntryID}}
	h.out = h.v3rsp.AppendFrame(h.out[:0])
	return nil
}

// bookieV3Read: decode a v3 READ request, encode the response head.
func (h *hotPaths) bookieV3Read(entryLen int) error {
	if err := h.v3req.Decode(h.v3Read); err != nil {
		return err
	}
	rd := &h.v3req.Read
	h.v3rsp = Response{Header: h.v3req.Header, HasRead: true, Read: ReadResponse{LedgerID: rd.LedgerID, EntryID: rd.EntryID}}
	h.out = h.v3rsp.AppendFrameHead(h.out[:0], entryLen)
	return nil
}

// clientV3Read: decode a v3 READ response and verify the entry.
func (h *hotPaths) clientV3Read() error {
	if err := h.v3rsp.Decode(h.v3Rsp); err != nil {
		return err
	}
	_, _, err := h.dig.ParseEntry(h.v3rsp.Read.Body, base.LedgerID(5), 3)
	return err
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	h := newHotPaths(1 << 10)
	// The RequestDecoder switches to v2 on the first v2 frame; do that once.
	if err := h.bookieV2Add(); err != nil {
		t.Fatal(err)
	}
	paths := map[string]func() error{
		"bookie v2 add":  h.bookieV2Add,
		"bookie v2 read": func() error { return h.bookieV2Read(1 << 10) },
		"client v2 add":  h.clientV2Add,
		"client v2 read": h.clientV2Read,
		"bookie v3 add":  h.bookieV3Add,
		"bookie v3 read": func() error { return h.bookieV3Read(1 << 10) },
		"client v3 read": h.clientV3Read,
	}
	for name, fn := range paths {
		var err error
		allocs := testing.AllocsPerRun(100, func() {
			if e := fn(); e != nil {
				err = e
			}
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per run, want 0", name, allocs)
		}
	}
}

func benchHot(b *testing.B, size int, fn func(h *hotPaths) error) {
	h := newHotPaths(size)
	if err := fn(h); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := fn(h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBookieV2Add(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) { benchHot(b, size, (*hotPaths).bookieV2Add) })
	}
}

func BenchmarkBookieV2Read(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			benchHot(b, size, func(h *hotPaths) error { return h.bookieV2Read(size) })
		})
	}
}

func BenchmarkClientV2Add(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) { benchHot(b, size, (*hotPaths).clientV2Add) })
	}
}

func BenchmarkClientV2Read(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) { benchHot(b, size, (*hotPaths).clientV2Read) })
	}
}

func BenchmarkBookieV3Add(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) { benchHot(b, size, (*hotPaths).bookieV3Add) })
	}
}

func BenchmarkBookieV3Read(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			benchHot(b, size, func(h *hotPaths) error { return h.bookieV3Read(size) })
		})
	}
}

func BenchmarkClientV3Read(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(sizeName(size), func(b *testing.B) { benchHot(b, size, (*hotPaths).clientV3Read) })
	}
}

func BenchmarkDigest(b *testing.B) {
	for _, typ := range []DigestType{DigestCRC32C, DigestCRC32, DigestHMAC} {
		d, _ := NewDigester(typ, []byte("pw"))
		for _, size := range benchSizes {
			payload := make([]byte, size)
			b.Run(fmt.Sprintf("type=%v/%s", typ, sizeName(size)), func(b *testing.B) {
				out := make([]byte, 0, 64)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					out = d.AppendEntryHeader(out[:0], EntryHeader{LedgerID: 1, EntryID: 2}, payload)
				}
			})
		}
	}
}
