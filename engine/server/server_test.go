package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/magnetar/magnetar/engine"
	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/wire/bk"
	"github.com/magnetar/magnetar/journal"
	"github.com/magnetar/magnetar/ledgerstore"
	"github.com/magnetar/magnetar/metastore"
)

var (
	password = []byte("pw")
	mkey     = bk.GenerateMasterKey(password)
)

func startBookie(t *testing.T) (*engine.Bookie, *Server) {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	eng, err := engine.Open(engine.Options{
		Logger:        log,
		FlushInterval: -1,
		GCInterval:    -1,
		Journal:       journal.Options{Dirs: []string{filepath.Join(dir, "j")}, PreallocBytes: 1 << 20, QueueMaxBytes: 4 << 20},
		Storage: ledgerstore.Options{Dirs: []string{filepath.Join(dir, "l")}, WriteCacheMaxBytes: 4 << 20,
			GCInterval: -1, DiskCheckInterval: -1, PreallocateBytes: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(eng, Options{Addr: "127.0.0.1:0", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve()
	t.Cleanup(func() {
		_ = srv.Close()
		_ = eng.Close()
	})
	return eng, srv
}

type client struct {
	t  *testing.T
	nc net.Conn
	fr *bk.FrameReader
}

func dial(t *testing.T, s *Server) *client {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &client{t: t, nc: nc, fr: bk.NewFrameReader(nc, bk.DefaultMaxFrameSize, 64<<10)}
}

func (c *client) send(frame []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(frame); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) v2() bk.V2Response {
	c.t.Helper()
	body, err := c.fr.Next()
	if err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	var r bk.V2Response
	if err := r.Decode(body); err != nil {
		c.t.Fatal(err)
	}
	r.Data = bytes.Clone(r.Data)
	return r
}

func (c *client) v3() bk.Response {
	c.t.Helper()
	body, err := c.fr.Next()
	if err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	var r bk.Response
	if err := r.Decode(body); err != nil {
		c.t.Fatal(err)
	}
	r.Read.Body = bytes.Clone(r.Read.Body)
	r.ReadLac.LACBody = bytes.Clone(r.ReadLac.LACBody)
	r.ReadLac.LastEntryBody = bytes.Clone(r.ReadLac.LastEntryBody)
	return r
}

func entry(t *testing.T, l base.LedgerID, e, lac base.EntryID) []byte {
	d, err := bk.NewDigester(bk.DigestCRC32C, password)
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte{byte(e)}, 50+int(e))
	return d.AppendEntry(nil, bk.EntryHeader{LedgerID: l, EntryID: e, LAC: lac, Length: int64(e) * 100}, payload)
}

func TestV2AddReadFence(t *testing.T) {
	_, srv := startBookie(t)
	c := dial(t, srv)
	// Pipelined adds: responses come back in order.
	var frames []byte
	for e := base.EntryID(0); e < 20; e++ {
		frames = bk.AppendAddRequest(frames, 0, &mkey, entry(t, 1, e, e-1))
	}
	c.send(frames)
	for e := base.EntryID(0); e < 20; e++ {
		r := c.v2()
		if r.Header.Op != bk.OpAddEntry || r.RC != bk.RCOK || r.LedgerID != 1 || r.EntryID != e {
			t.Fatalf("add %d: response %+v", e, r)
		}
	}
	c.send(bk.AppendReadRequest(nil, 0, 1, 7, nil))
	if r := c.v2(); r.RC != bk.RCOK || !bytes.Equal(r.Data, entry(t, 1, 7, 6)) {
		t.Fatalf("read 7: rc %v, %d bytes", r.RC, len(r.Data))
	}
	c.send(bk.AppendReadRequest(nil, 0, 1, 99, nil))
	if r := c.v2(); r.RC != bk.RCNoEntry {
		t.Fatalf("read missing entry: rc %v", r.RC)
	}
	c.send(bk.AppendBatchReadRequest(nil, 0, 1, 5, 42, 4, 1<<20, nil))
	r := c.v2()
	if r.RC != bk.RCOK || r.RequestID != 42 {
		t.Fatalf("batch read: rc %v id %d", r.RC, r.RequestID)
	}
	it := bk.BatchEntries(r.Data)
	n := 0
	for data, ok := it.Next(); ok; data, ok = it.Next() {
		if !bytes.Equal(data, entry(t, 1, base.EntryID(5+n), base.EntryID(4+n))) {
			t.Fatalf("batch entry %d wrong", 5+n)
		}
		n++
	}
	if n != 4 {
		t.Fatalf("batch read returned %d entries, want 4", n)
	}
	// Fencing read of the LAC (entry -1) with the master key.
	c.send(bk.AppendReadRequest(nil, bk.FlagDoFencing, 1, -1, &mkey))
	if r := c.v2(); r.RC != bk.RCOK || !bytes.Equal(r.Data, entry(t, 1, 19, 18)) {
		t.Fatalf("fencing read: rc %v", r.RC)
	}
	c.send(bk.AppendAddRequest(nil, 0, &mkey, entry(t, 1, 20, 19)))
	if r := c.v2(); r.RC != bk.RCFenced {
		t.Fatalf("add after fence: rc %v, want EFENCED", r.RC)
	}
	c.send(bk.AppendAddRequest(nil, bk.FlagRecoveryAdd, &mkey, entry(t, 1, 20, 19)))
	if r := c.v2(); r.RC != bk.RCOK {
		t.Fatalf("recovery add after fence: rc %v", r.RC)
	}
	other := bk.GenerateMasterKey([]byte("other"))
	c.send(bk.AppendAddRequest(nil, bk.FlagRecoveryAdd, &other, entry(t, 1, 21, 20)))
	if r := c.v2(); r.RC != bk.RCUnauthorized {
		t.Fatalf("add with the wrong key: rc %v, want EUA", r.RC)
	}
}

func TestV3Operations(t *testing.T) {
	_, srv := startBookie(t)
	c := dial(t, srv)
	hdr := func(op bk.OperationType, txn uint64) bk.BKPacketHeader {
		return bk.BKPacketHeader{Version: bk.VersionThree, Operation: op, TxnID: txn}
	}
	for e := base.EntryID(0); e < 3; e++ {
		req := bk.Request{Header: hdr(bk.OperationAddEntry, uint64(100+e)), HasAdd: true,
			Add: bk.AddRequest{LedgerID: 2, EntryID: e, MasterKey: mkey[:], Body: entry(t, 2, e, e-1)}}
		c.send(req.AppendFrame(nil))
		r := c.v3()
		if r.Header.TxnID != uint64(100+e) || r.Status != 0 || !r.HasAdd || r.Add.EntryID != e {
			t.Fatalf("v3 add %d: %+v", e, r)
		}
	}
	req := bk.Request{Header: hdr(bk.OperationReadEntry, 7), HasRead: true, Read: bk.ReadRequest{LedgerID: 2, EntryID: 1}}
	c.send(req.AppendFrame(nil))
	if r := c.v3(); r.Header.TxnID != 7 || r.Status != 0 || !bytes.Equal(r.Read.Body, entry(t, 2, 1, 0)) {
		t.Fatalf("v3 read: %+v", r)
	}
	// Explicit LAC.
	req = bk.Request{Header: hdr(bk.OperationWriteLAC, 8), HasWriteLac: true,
		WriteLac: bk.WriteLacRequest{LedgerID: 2, LAC: 2, MasterKey: mkey[:], Body: []byte("lac-blob")}}
	c.send(req.AppendFrame(nil))
	if r := c.v3(); r.Status != 0 || !r.HasWriteLac {
		t.Fatalf("write LAC: %+v", r)
	}
	req = bk.Request{Header: hdr(bk.OperationReadLAC, 9), HasReadLac: true, ReadLac: bk.ReadLacRequest{LedgerID: 2}}
	c.send(req.AppendFrame(nil))
	if r := c.v3(); r.Status != 0 || string(r.ReadLac.LACBody) != "lac-blob" || !bytes.Equal(r.ReadLac.LastEntryBody, entry(t, 2, 2, 1)) {
		t.Fatalf("read LAC: %+v", r)
	}
	req = bk.Request{Header: hdr(bk.OperationForceLedger, 10), HasForceLedger: true, ForceLedger: bk.ForceLedgerRequest{LedgerID: 2}}
	c.send(req.AppendFrame(nil))
	if r := c.v3(); r.Status != 0 || !r.HasForceLedger {
		t.Fatalf("force: %+v", r)
	}
	req = bk.Request{Header: hdr(bk.OperationGetBookieInfo, 11), HasGetBookieInfo: true}
	c.send(req.AppendFrame(nil))
	if r := c.v3(); r.Status != 0 || r.GetBookieInfo.TotalDiskCapacity <= 0 || r.GetBookieInfo.FreeDiskSpace <= 0 {
		t.Fatalf("bookie info: %+v", r)
	}
	req = bk.Request{Header: hdr(bk.OperationStartTLS, 12), HasStartTLS: true}
	c.send(req.AppendFrame(nil))
	if r := c.v3(); r.Status == 0 {
		t.Fatalf("START_TLS answered OK; TLS is not supported")
	}

	// Long poll: parked until an add from another connection moves the LAC.
	req = bk.Request{Header: hdr(bk.OperationReadEntry, 13), HasRead: true,
		Read: bk.ReadRequest{LedgerID: 2, EntryID: 3, PreviousLAC: 2, HasPreviousLAC: true, TimeOut: 10000, HasTimeOut: true,
			Flag: bk.ReadEntryPiggyback, HasFlag: true}}
	c.send(req.AppendFrame(nil))
	writer := dial(t, srv)
	for e := base.EntryID(3); e < 5; e++ {
		add := bk.Request{Header: hdr(bk.OperationAddEntry, uint64(200+e)), HasAdd: true,
			Add: bk.AddRequest{LedgerID: 2, EntryID: e, MasterKey: mkey[:], Body: entry(t, 2, e, e-1)}}
		writer.send(add.AppendFrame(nil))
		if r := writer.v3(); r.Status != 0 {
			t.Fatalf("add %d: %+v", e, r)
		}
	}
	r := c.v3()
	if r.Header.TxnID != 13 || r.Status != 0 || !r.Read.HasMaxLAC || r.Read.MaxLAC < 3 || !bytes.Equal(r.Read.Body, entry(t, 2, 3, 2)) {
		t.Fatalf("long poll: %+v", r)
	}
}

func TestBadFramesCloseOnlyTheirConnection(t *testing.T) {
	_, srv := startBookie(t)
	good := dial(t, srv)
	garbage := dial(t, srv)
	garbage.send([]byte{0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4})
	if _, err := garbage.fr.Next(); err == nil {
		t.Fatal("garbage frame answered; want the connection closed")
	}
	huge := dial(t, srv)
	huge.send([]byte{0x7f, 0, 0, 0})
	if _, err := huge.fr.Next(); !errors.Is(err, io.EOF) && err == nil {
		t.Fatal("oversize frame answered; want the connection closed")
	}
	good.send(bk.AppendAddRequest(nil, 0, &mkey, entry(t, 3, 0, -1)))
	if r := good.v2(); r.RC != bk.RCOK {
		t.Fatalf("good connection after bad ones: rc %v", r.RC)
	}
	if srv.Stats.BadFrames.Load() == 0 {
		t.Fatal("bad frame not counted")
	}
}

func TestRegistration(t *testing.T) {
	store, err := metastore.Open("memory:", metastore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	reg, err := Register(ctx, store, "/ledgers", "127.0.0.1:3181", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	exists := func(p string) bool {
		_, ok, err := store.Exists(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !exists("/ledgers/available/127.0.0.1:3181") {
		t.Fatal("not registered as writable")
	}
	if err := reg.SetReadOnly(ctx, true); err != nil {
		t.Fatal(err)
	}
	if exists("/ledgers/available/127.0.0.1:3181") || !exists("/ledgers/available/readonly/127.0.0.1:3181") {
		t.Fatal("read-only move did not happen")
	}
	if err := reg.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if exists("/ledgers/available/readonly/127.0.0.1:3181") {
		t.Fatal("registration left behind after Close")
	}
}
