package ledgertest

import (
	"bytes"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/wire/bk"
)

// wireClient speaks the bookie protocol over one connection, one request
// at a time.
type wireClient struct {
	t  *testing.T
	nc net.Conn
	fr *bk.FrameReader
}

func dial(t *testing.T, b *Bookie) *wireClient {
	t.Helper()
	nc, err := net.Dial("tcp", b.ID())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &wireClient{t: t, nc: nc, fr: bk.NewFrameReader(nc, 0, 0)}
}

func (c *wireClient) send(frame []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(frame); err != nil {
		c.t.Fatal(err)
	}
}

func (c *wireClient) next(timeout time.Duration) ([]byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	return c.fr.Next()
}

func (c *wireClient) v2(frame []byte) *bk.V2Response {
	c.t.Helper()
	c.send(frame)
	body, err := c.next(10 * time.Second)
	if err != nil {
		c.t.Fatal(err)
	}
	var r bk.V2Response
	if err := r.Decode(body); err != nil {
		c.t.Fatal(err)
	}
	r.Data = bytes.Clone(r.Data)
	return &r
}

func (c *wireClient) v3(req *bk.Request, timeout time.Duration) *bk.Response {
	c.t.Helper()
	c.send(req.AppendFrame(nil))
	body, err := c.next(timeout)
	if err != nil {
		c.t.Fatal(err)
	}
	var r bk.Response
	if err := r.Decode(body); err != nil {
		c.t.Fatal(err)
	}
	return &r
}

var dig, _ = bk.NewDigester(bk.DigestCRC32C, nil)

func entry(l base.LedgerID, e, lac base.EntryID, data string) []byte {
	return dig.AppendEntry(nil, bk.EntryHeader{LedgerID: l, EntryID: e, LAC: lac, Length: int64(len(data))}, []byte(data))
}

func start(t *testing.T) *Bookie {
	t.Helper()
	b, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func TestAddReadFenceV2(t *testing.T) {
	b := start(t)
	c := dial(t, b)
	key := bk.GenerateMasterKey([]byte("pw"))
	other := bk.GenerateMasterKey([]byte("other"))
	if r := c.v2(bk.AppendReadRequest(nil, 0, 7, 0, nil)); r.RC != bk.RCNoLedger {
		t.Fatalf("read of an unknown ledger: %v", r.RC)
	}
	for e := base.EntryID(0); e < 3; e++ {
		if r := c.v2(bk.AppendAddRequest(nil, 0, &key, entry(7, e, e-1, "x"))); r.RC != bk.RCOK || r.EntryID != e {
			t.Fatalf("add %d: %v %d", e, r.RC, r.EntryID)
		}
	}
	if r := c.v2(bk.AppendAddRequest(nil, 0, &other, entry(7, 3, 2, "x"))); r.RC != bk.RCUnauthorized {
		t.Fatalf("add with another key: %v", r.RC)
	}
	r := c.v2(bk.AppendReadRequest(nil, 0, 7, 1, nil))
	if r.RC != bk.RCOK || !bytes.Equal(r.Data, entry(7, 1, 0, "x")) {
		t.Fatalf("read 1: %v %x", r.RC, r.Data)
	}
	if r := c.v2(bk.AppendReadRequest(nil, 0, 7, 9, nil)); r.RC != bk.RCNoEntry {
		t.Fatalf("read of a missing entry: %v", r.RC)
	}
	r = c.v2(bk.AppendReadRequest(nil, 0, 7, bk.LastAddConfirmed, nil))
	if r.RC != bk.RCOK || r.EntryID != bk.LastAddConfirmed || !bytes.Equal(r.Data, entry(7, 2, 1, "x")) {
		t.Fatalf("read of the last entry: %v %d", r.RC, r.EntryID)
	}
	if b.LAC(7) != 1 {
		t.Fatalf("LAC %d", b.LAC(7))
	}
	// Fencing needs the master key.
	if r := c.v2(bk.AppendReadRequest(nil, bk.FlagDoFencing, 7, bk.LastAddConfirmed, &other)); r.RC != bk.RCUnauthorized {
		t.Fatalf("fencing with another key: %v", r.RC)
	}
	if r := c.v2(bk.AppendReadRequest(nil, bk.FlagDoFencing, 7, bk.LastAddConfirmed, &key)); r.RC != bk.RCOK || !b.IsFenced(7) {
		t.Fatalf("fencing: %v", r.RC)
	}
	if r := c.v2(bk.AppendAddRequest(nil, 0, &key, entry(7, 3, 2, "x"))); r.RC != bk.RCFenced {
		t.Fatalf("add after fencing: %v", r.RC)
	}
	if r := c.v2(bk.AppendAddRequest(nil, bk.FlagRecoveryAdd, &key, entry(7, 3, 2, "x"))); r.RC != bk.RCOK {
		t.Fatalf("recovery add after fencing: %v", r.RC)
	}
	// Fencing an unknown ledger creates it fenced.
	if r := c.v2(bk.AppendReadRequest(nil, bk.FlagDoFencing, 8, bk.LastAddConfirmed, &key)); r.RC != bk.RCNoEntry {
		t.Fatalf("fencing a new ledger: %v", r.RC)
	}
	if r := c.v2(bk.AppendAddRequest(nil, 0, &key, entry(8, 0, -1, "x"))); r.RC != bk.RCFenced {
		t.Fatalf("add to a ledger fenced before its first add: %v", r.RC)
	}
}

func TestBatchRead(t *testing.T) {
	b := start(t)
	c := dial(t, b)
	key := bk.GenerateMasterKey(nil)
	for e := base.EntryID(0); e < 10; e++ {
		if e == 6 {
			continue
		}
		c.v2(bk.AppendAddRequest(nil, 0, &key, entry(1, e, e-1, "0123456789")))
	}
	count := func(r *bk.V2Response) int {
		n := 0
		it := bk.BatchEntries(r.Data)
		for _, ok := it.Next(); ok; _, ok = it.Next() {
			n++
		}
		return n
	}
	r := c.v2(bk.AppendBatchReadRequest(nil, 0, 1, 0, 42, 100, 1<<20, nil))
	if r.RC != bk.RCOK || r.RequestID != 42 || count(r) != 6 {
		t.Fatalf("batch stops at the missing entry: %v %d entries", r.RC, count(r))
	}
	one := int64(len(entry(1, 0, -1, "0123456789")) + 4)
	if r := c.v2(bk.AppendBatchReadRequest(nil, 0, 1, 1, 43, 100, 2*one, nil)); count(r) != 2 {
		t.Fatalf("batch limited by size: %d entries", count(r))
	}
	if r := c.v2(bk.AppendBatchReadRequest(nil, 0, 1, 0, 44, 3, 1<<20, nil)); count(r) != 3 {
		t.Fatalf("batch limited by count: %d entries", count(r))
	}
	if r := c.v2(bk.AppendBatchReadRequest(nil, 0, 1, 6, 45, 3, 1<<20, nil)); r.RC != bk.RCNoEntry {
		t.Fatalf("batch from a missing entry: %v", r.RC)
	}
}

func TestV3LongPollAndLAC(t *testing.T) {
	b := start(t)
	key := bk.GenerateMasterKey(nil)
	w := dial(t, b)
	w.v2(bk.AppendAddRequest(nil, 0, &key, entry(3, 0, -1, "a")))

	c := dial(t, b)
	poll := func(prev int64, timeoutMs int64, txn uint64) {
		c.send((&bk.Request{
			Header:  bk.BKPacketHeader{Version: bk.VersionThree, Operation: bk.OperationReadEntry, TxnID: txn},
			HasRead: true,
			Read: bk.ReadRequest{LedgerID: 3, EntryID: bk.LastAddConfirmed, PreviousLAC: prev, HasPreviousLAC: true,
				TimeOut: timeoutMs, HasTimeOut: true},
		}).AppendFrame(nil))
	}
	// Nothing past LAC -1 yet: the poll times out with the current state.
	poll(-1, 50, 1)
	body, err := c.next(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r bk.Response
	if err := r.Decode(body); err != nil || r.Header.TxnID != 1 || !r.HasRead || r.Read.MaxLAC != -1 {
		t.Fatalf("timed-out poll: %+v, %v", r.Read, err)
	}
	// A poll parked until an add advances the LAC.
	poll(-1, 10_000, 2)
	if _, err := c.next(50 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("poll answered before the LAC moved: %v", err)
	}
	w.v2(bk.AppendAddRequest(nil, 0, &key, entry(3, 1, 0, "b")))
	body, err = c.next(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Decode(body); err != nil || r.Header.TxnID != 2 || r.Read.MaxLAC != 0 ||
		!bytes.Equal(r.Read.Body, entry(3, 1, 0, "b")) {
		t.Fatalf("poll after the add: %+v, %v", r.Read, err)
	}
	lac := c.v3(&bk.Request{Header: bk.BKPacketHeader{Version: bk.VersionThree, Operation: bk.OperationReadLAC, TxnID: 3},
		HasReadLac: true, ReadLac: bk.ReadLacRequest{LedgerID: 3}}, 10*time.Second)
	if !lac.HasReadLac || !bytes.Equal(lac.ReadLac.LastEntryBody, entry(3, 1, 0, "b")) {
		t.Fatalf("READ_LAC: %+v", lac.ReadLac)
	}
	bad := c.v3(&bk.Request{Header: bk.BKPacketHeader{Version: bk.VersionThree, Operation: 99, TxnID: 4}}, 10*time.Second)
	if bad.Status != bk.StatusBadRequest {
		t.Fatalf("unknown operation: %v", bad.Status)
	}
}

func TestFaultsAndRestart(t *testing.T) {
	b := start(t)
	key := bk.GenerateMasterKey(nil)
	c := dial(t, b)
	c.v2(bk.AppendAddRequest(nil, 0, &key, entry(5, 0, -1, "a")))

	b.SetFault(func(r Request) Fault { return Fault{RC: bk.RCReadOnly} })
	if r := c.v2(bk.AppendAddRequest(nil, 0, &key, entry(5, 1, 0, "b"))); r.RC != bk.RCReadOnly {
		t.Fatalf("error fault: %v", r.RC)
	}
	if _, ok := b.Entry(5, 1); ok {
		t.Fatal("a refused add was stored")
	}
	b.SetFault(func(r Request) Fault { return Fault{Drop: true} })
	c.send(bk.AppendReadRequest(nil, 0, 5, 0, nil))
	if _, err := c.next(50 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("dropped request answered: %v", err)
	}
	b.SetFault(func(r Request) Fault { return Fault{Delay: 20 * time.Millisecond} })
	start := time.Now()
	if r := c.v2(bk.AppendReadRequest(nil, 0, 5, 0, nil)); r.RC != bk.RCOK {
		t.Fatalf("delayed read: %v", r.RC)
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Fatal("delayed answer came early")
	}
	b.SetFault(func(r Request) Fault { return Fault{Close: true} })
	c.send(bk.AppendReadRequest(nil, 0, 5, 0, nil))
	if _, err := c.next(10 * time.Second); err == nil {
		t.Fatal("connection not closed")
	}
	b.SetFault(nil)

	b.Kill()
	if _, err := net.Dial("tcp", b.ID()); err == nil {
		t.Fatal("a killed bookie accepts connections")
	}
	if err := b.Restart(); err != nil {
		t.Skipf("port taken meanwhile: %v", err)
	}
	if r := dial(t, b).v2(bk.AppendReadRequest(nil, 0, 5, 0, nil)); r.RC != bk.RCOK {
		t.Fatalf("entry after restart: %v", r.RC)
	}
}

func TestBadFrameClosesConnection(t *testing.T) {
	b := start(t)
	c := dial(t, b)
	c.send([]byte{0, 0, 0, 4, 2, 99, 0, 0}) // v2 header with an unknown opcode
	if _, err := c.next(10 * time.Second); err == nil {
		t.Fatal("connection survived a bad frame")
	}
	// Other connections are unaffected.
	if r := dial(t, b).v2(bk.AppendReadRequest(nil, 0, 1, 0, nil)); r.RC != bk.RCNoLedger {
		t.Fatalf("other connection: %v", r.RC)
	}
}
