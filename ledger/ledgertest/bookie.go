// Package ledgertest provides a bookie double for tests of the ledger
// client: a real TCP server on 127.0.0.1 that speaks BookKeeper's wire
// protocol (v2 adds, reads and batch reads; v3 reads with long poll, LAC
// reads and writes, force and bookie info) through internal/wire/bk, and
// keeps entries in memory with BookKeeper's bookie rules: the master key
// is fixed by the first add or fencing read and checked afterwards;
// fencing refuses later adds (EFENCED) except recovery adds; the LAC is
// the largest one piggybacked in an entry (or written explicitly).
//
// Faults are injected per request (drop, delay, error code, closed
// connection), and a bookie can be killed (listener and connections
// closed; the entries survive, as on a bookie's disk) and restarted on the
// same address. It is a test double at the wire level: integration tests
// later run the same scenarios against the real bookie.
package ledgertest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/wire/bk"
	"github.com/magnetar/magnetar/metastore"
)

// Request describes a request to a fault function.
type Request struct {
	Protocol bk.Protocol
	// Op: "ADD", "READ", "BATCH_READ", "AUTH", or a v3 operation name
	// ("READ_ENTRY", "ADD_ENTRY", "READ_LAC", "WRITE_LAC", ...).
	Op       string
	Ledger   base.LedgerID
	Entry    base.EntryID
	Fencing  bool
	Recovery bool
	LongPoll bool
}

// Fault is what to do with a request.
type Fault struct {
	// Drop ignores the request: it is not processed and never answered.
	Drop bool
	// Delay answers (after processing) this much later.
	Delay time.Duration
	// RC answers with this error code without processing.
	RC bk.RC
	// Close closes the connection instead of processing the request.
	Close bool
}

// FaultFunc decides the fault for each request; the zero Fault processes
// it normally. It runs on the connection's goroutine.
type FaultFunc func(Request) Fault

// Options configure a Bookie.
type Options struct {
	// Addr to listen on; default "127.0.0.1:0".
	Addr string
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// DiscardEntries keeps only each ledger's last entry (enough for LAC
	// reads and fencing), so that benchmarks do not fill memory.
	DiscardEntries bool
}

// Stats counts the requests a bookie processed.
type Stats struct {
	Adds, RecoveryAdds, Reads, FencingReads, BatchReads, LongPolls, LACReads int64
}

// Bookie is the bookie double.
type Bookie struct {
	addr    string
	logger  *slog.Logger
	discard bool
	wg      sync.WaitGroup

	adds, recoveryAdds, reads, fencingReads, batchReads, longPolls, lacReads atomic.Int64

	mu struct {
		sync.Mutex
		ln      net.Listener
		conns   map[*serverConn]struct{}
		ledgers map[base.LedgerID]*ledgerState
		fault   FaultFunc
		down    bool
		closed  bool
	}
}

type ledgerState struct {
	key         bk.MasterKey
	fenced      bool
	entries     map[base.EntryID][]byte
	last        base.EntryID
	lac         base.EntryID
	explicitLAC []byte
	lacChanged  chan struct{} // closed and replaced when lac advances
}

// Start starts a bookie.
func Start(opts Options) (*Bookie, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	b := &Bookie{logger: opts.Logger, discard: opts.DiscardEntries}
	b.mu.conns = map[*serverConn]struct{}{}
	b.mu.ledgers = map[base.LedgerID]*ledgerState{}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, err
	}
	b.addr = ln.Addr().String()
	b.mu.ln = ln
	b.wg.Add(1)
	go b.accept(ln)
	return b, nil
}

// ID is the bookie id, its "host:port" address.
func (b *Bookie) ID() string { return b.addr }

// Register creates the bookie's ephemeral registration node under
// /ledgers/available, as a bookie does.
func (b *Bookie) Register(ctx context.Context, store metastore.Store) error {
	_, err := store.Create(ctx, metastore.BookiePath(b.ID()), nil, metastore.Ephemeral|metastore.CreateParents)
	return err
}

// Unregister deletes the registration node.
func (b *Bookie) Unregister(ctx context.Context, store metastore.Store) error {
	return store.Delete(ctx, metastore.BookiePath(b.ID()), metastore.AnyVersion)
}

// SetFault installs f (nil: no faults).
func (b *Bookie) SetFault(f FaultFunc) {
	b.mu.Lock()
	b.mu.fault = f
	b.mu.Unlock()
}

// Kill closes the listener and every connection, as a crash would; the
// stored entries survive for Restart.
func (b *Bookie) Kill() {
	b.mu.Lock()
	if b.mu.down {
		b.mu.Unlock()
		return
	}
	b.mu.down = true
	ln := b.mu.ln
	conns := make([]*serverConn, 0, len(b.mu.conns))
	for c := range b.mu.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	ln.Close()
	for _, c := range conns {
		c.close()
	}
}

// Restart listens again on the same address after Kill.
func (b *Bookie) Restart() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.mu.down || b.mu.closed {
		return errors.New("ledgertest: bookie is not down")
	}
	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		return err
	}
	b.mu.ln, b.mu.down = ln, false
	b.wg.Add(1)
	go b.accept(ln)
	return nil
}

// Close kills the bookie and waits for its goroutines.
func (b *Bookie) Close() {
	b.Kill()
	b.mu.Lock()
	b.mu.closed = true
	b.mu.Unlock()
	b.wg.Wait()
}

// Entry returns a stored entry (as the client sent it: header, digest,
// payload).
func (b *Bookie) Entry(l base.LedgerID, e base.EntryID) ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ls := b.mu.ledgers[l]
	if ls == nil {
		return nil, false
	}
	d, ok := ls.entries[e]
	return slices.Clone(d), ok
}

// Entries lists the entry ids stored for ledger l, sorted.
func (b *Bookie) Entries(l base.LedgerID) []base.EntryID {
	b.mu.Lock()
	defer b.mu.Unlock()
	ls := b.mu.ledgers[l]
	if ls == nil {
		return nil
	}
	ids := make([]base.EntryID, 0, len(ls.entries))
	for e := range ls.entries {
		ids = append(ids, e)
	}
	slices.Sort(ids)
	return ids
}

// DeleteEntry forgets a stored entry (to simulate a lost replica).
func (b *Bookie) DeleteEntry(l base.LedgerID, e base.EntryID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ls := b.mu.ledgers[l]; ls != nil {
		delete(ls.entries, e)
		ls.last = base.InvalidEntry
		for x := range ls.entries {
			ls.last = max(ls.last, x)
		}
	}
}

// CorruptEntry flips the last byte of a stored entry (its payload, or its
// digest when the payload is empty), so that its digest no longer
// matches. It reports whether the entry existed.
func (b *Bookie) CorruptEntry(l base.LedgerID, e base.EntryID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	ls := b.mu.ledgers[l]
	if ls == nil || len(ls.entries[e]) == 0 {
		return false
	}
	d := slices.Clone(ls.entries[e])
	d[len(d)-1] ^= 0xff
	ls.entries[e] = d
	return true
}

// IsFenced reports whether ledger l is fenced on this bookie.
func (b *Bookie) IsFenced(l base.LedgerID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	ls := b.mu.ledgers[l]
	return ls != nil && ls.fenced
}

// LAC is the bookie's last add confirmed for ledger l (-1 if unknown).
func (b *Bookie) LAC(l base.LedgerID) base.EntryID {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ls := b.mu.ledgers[l]; ls != nil {
		return ls.lac
	}
	return base.InvalidEntry
}

// Stats returns the request counters.
func (b *Bookie) Stats() Stats {
	return Stats{
		Adds: b.adds.Load(), RecoveryAdds: b.recoveryAdds.Load(), Reads: b.reads.Load(),
		FencingReads: b.fencingReads.Load(), BatchReads: b.batchReads.Load(),
		LongPolls: b.longPolls.Load(), LACReads: b.lacReads.Load(),
	}
}

func (b *Bookie) accept(ln net.Listener) {
	defer b.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		c := &serverConn{b: b, nc: nc, bw: bufio.NewWriterSize(nc, 64<<10), done: make(chan struct{})}
		b.mu.Lock()
		if b.mu.down {
			b.mu.Unlock()
			nc.Close()
			continue
		}
		b.mu.conns[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Add(1)
		go c.serve()
	}
}

func (b *Bookie) faultFor(r Request) Fault {
	b.mu.Lock()
	f := b.mu.fault
	b.mu.Unlock()
	if f == nil {
		return Fault{}
	}
	return f(r)
}

// ledgerLocked returns ledger l's state, creating it when create.
func (b *Bookie) ledgerLocked(l base.LedgerID, create bool) *ledgerState {
	ls := b.mu.ledgers[l]
	if ls == nil && create {
		ls = &ledgerState{entries: map[base.EntryID][]byte{}, last: base.InvalidEntry, lac: base.InvalidEntry,
			lacChanged: make(chan struct{})}
		b.mu.ledgers[l] = ls
	}
	return ls
}

// checkKeyLocked fixes the master key on first use and checks it after.
func checkKeyLocked(ls *ledgerState, isNew bool, key bk.MasterKey) bool {
	if isNew {
		ls.key = key
		return true
	}
	return ls.key == key
}

func (ls *ledgerState) advanceLAC(lac base.EntryID) {
	if lac > ls.lac {
		ls.lac = lac
		close(ls.lacChanged)
		ls.lacChanged = make(chan struct{})
	}
}

// add stores an entry. recovery adds pass a fenced ledger.
func (b *Bookie) add(l base.LedgerID, key bk.MasterKey, entry []byte, recovery bool) bk.RC {
	h, err := bk.ParseEntryHeader(entry)
	if err != nil || h.LedgerID != l {
		return bk.RCBadRequest
	}
	if recovery {
		b.recoveryAdds.Add(1)
	} else {
		b.adds.Add(1)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	isNew := b.mu.ledgers[l] == nil
	ls := b.ledgerLocked(l, true)
	if !checkKeyLocked(ls, isNew, key) {
		return bk.RCUnauthorized
	}
	if ls.fenced && !recovery {
		return bk.RCFenced
	}
	if b.discard && h.EntryID > ls.last {
		clear(ls.entries)
	}
	if !b.discard || h.EntryID >= ls.last {
		ls.entries[h.EntryID] = slices.Clone(entry)
	}
	ls.last = max(ls.last, h.EntryID)
	ls.advanceLAC(h.LAC)
	return bk.RCOK
}

// fence fences ledger l (creating it, as a bookie does) after checking key.
func (b *Bookie) fence(l base.LedgerID, key []byte) bk.RC {
	b.fencingReads.Add(1)
	if len(key) != bk.MasterKeyLen {
		return bk.RCUnauthorized
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	isNew := b.mu.ledgers[l] == nil
	ls := b.ledgerLocked(l, true)
	if !checkKeyLocked(ls, isNew, bk.MasterKey(key)) {
		return bk.RCUnauthorized
	}
	ls.fenced = true
	return bk.RCOK
}

// read returns entry e (the last one for -1).
func (b *Bookie) read(l base.LedgerID, e base.EntryID) ([]byte, bk.RC) {
	b.reads.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	ls := b.mu.ledgers[l]
	if ls == nil {
		return nil, bk.RCNoLedger
	}
	if e == bk.LastAddConfirmed {
		e = ls.last
	}
	d, ok := ls.entries[e]
	if !ok {
		return nil, bk.RCNoEntry
	}
	return d, bk.RCOK
}

// batch returns up to maxCount consecutive entries from e, at most maxSize
// bytes (but at least one), stopping at the first missing one.
func (b *Bookie) batch(l base.LedgerID, e base.EntryID, maxCount int32, maxSize int64) ([][]byte, bk.RC) {
	b.batchReads.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	ls := b.mu.ledgers[l]
	if ls == nil {
		return nil, bk.RCNoLedger
	}
	var out [][]byte
	size := int64(0)
	for i := int32(0); i < max(maxCount, 1); i++ {
		d, ok := ls.entries[e+base.EntryID(i)]
		if !ok || (len(out) > 0 && size+int64(len(d))+4 > maxSize) {
			break
		}
		out = append(out, d)
		size += int64(len(d)) + 4
	}
	if len(out) == 0 {
		return nil, bk.RCNoEntry
	}
	return out, bk.RCOK
}

// lacState returns the LAC, the last entry and a channel closed when the
// LAC advances.
func (b *Bookie) lacState(l base.LedgerID) (base.EntryID, []byte, []byte, <-chan struct{}, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ls := b.mu.ledgers[l]
	if ls == nil {
		return base.InvalidEntry, nil, nil, nil, false
	}
	return ls.lac, ls.entries[ls.last], ls.explicitLAC, ls.lacChanged, true
}

type serverConn struct {
	b       *Bookie
	scratch []byte // response frames answered at once (serve goroutine only)
	nc      net.Conn
	wmu     sync.Mutex
	bw      *bufio.Writer
	dec     bk.RequestDecoder
	done    chan struct{}
	once    sync.Once
}

func (c *serverConn) close() {
	c.once.Do(func() {
		close(c.done)
		c.nc.Close()
	})
}

func (c *serverConn) serve() {
	defer c.b.wg.Done()
	defer func() {
		c.close()
		c.b.mu.Lock()
		delete(c.b.mu.conns, c)
		c.b.mu.Unlock()
	}()
	fr := bk.NewFrameReader(c.nc, 0, 0)
	for {
		body, err := fr.Next()
		if err != nil {
			return
		}
		proto, err := c.dec.Decode(body)
		if err != nil {
			return // as BookKeeper: a frame that does not decode closes the connection
		}
		var ok bool
		if proto == bk.ProtocolV2 {
			ok = c.serveV2(&c.dec.V2)
		} else {
			ok = c.serveV3(&c.dec.V3)
		}
		if !ok {
			return
		}
		if fr.Buffered() == 0 {
			c.flush()
		}
	}
}

func (c *serverConn) flush() {
	c.wmu.Lock()
	err := c.bw.Flush()
	c.wmu.Unlock()
	if err != nil {
		c.close()
	}
}

// respond writes frame now, or after delay (flushing it then).
func (c *serverConn) respond(frame []byte, delay time.Duration) {
	if delay <= 0 {
		c.wmu.Lock()
		_, err := c.bw.Write(frame)
		c.wmu.Unlock()
		if err != nil {
			c.close()
		}
		return
	}
	t := time.NewTimer(delay)
	c.b.wg.Add(1)
	go func() {
		defer c.b.wg.Done()
		select {
		case <-t.C:
		case <-c.done:
			t.Stop()
			return
		}
		c.respond(frame, 0)
		c.flush()
	}()
}

var v2Ops = map[bk.OpCode]string{bk.OpAddEntry: "ADD", bk.OpReadEntry: "READ", bk.OpBatchReadEntry: "BATCH_READ", bk.OpAuth: "AUTH"}

// serveV2 handles one v2 request; false closes the connection.
func (c *serverConn) serveV2(r *bk.V2Request) bool {
	if !r.VersionSupported() {
		return false
	}
	req := Request{Protocol: bk.ProtocolV2, Op: v2Ops[r.Header.Op], Ledger: r.LedgerID, Entry: r.EntryID,
		Fencing: r.IsFencing(), Recovery: r.IsRecoveryAdd()}
	f := c.b.faultFor(req)
	switch {
	case f.Close:
		return false
	case f.Drop:
		return true
	}
	v := r.Header.Version
	frame := c.scratch[:0]
	if f.Delay > 0 {
		frame = nil // respond keeps it for later
	}
	switch r.Header.Op {
	case bk.OpAddEntry:
		rc := f.RC
		if rc == bk.RCOK {
			rc = c.b.add(r.LedgerID, r.MasterKey, r.Entry, r.IsRecoveryAdd())
		}
		frame = bk.AppendAddResponse(frame, v, rc, r.LedgerID, r.EntryID)
	case bk.OpReadEntry:
		rc := f.RC
		if rc == bk.RCOK && r.IsFencing() {
			if !r.HasMasterKey {
				rc = bk.RCUnauthorized
			} else {
				rc = c.b.fence(r.LedgerID, r.MasterKey[:])
			}
		}
		var data []byte
		if rc == bk.RCOK {
			data, rc = c.b.read(r.LedgerID, r.EntryID)
		}
		frame = bk.AppendReadResponse(frame, v, rc, r.LedgerID, r.EntryID, data)
	case bk.OpBatchReadEntry:
		rc := f.RC
		if rc == bk.RCOK && r.IsFencing() {
			rc = c.b.fence(r.LedgerID, r.MasterKey[:])
		}
		var entries [][]byte
		if rc == bk.RCOK {
			entries, rc = c.b.batch(r.LedgerID, r.EntryID, r.MaxCount, r.MaxSize)
		}
		frame = bk.AppendBatchReadResponse(frame, v, rc, r.LedgerID, r.EntryID, r.RequestID, entries)
	case bk.OpAuth:
		frame = bk.AppendAuthResponse(frame, v, &bk.AuthMessage{AuthPluginName: []byte(bk.AuthDisabledPluginName), Payload: []byte{}})
	default:
		return false
	}
	if f.Delay <= 0 {
		c.scratch = frame
	}
	c.respond(frame, f.Delay)
	return true
}

// serveV3 handles one v3 request; false closes the connection.
func (c *serverConn) serveV3(r *bk.Request) bool {
	h := r.Header
	req := Request{Protocol: bk.ProtocolV3, Op: h.Operation.String()}
	switch {
	case r.HasRead:
		req.Ledger, req.Entry = r.Read.LedgerID, r.Read.EntryID
		req.Fencing = r.Read.HasFlag && r.Read.Flag == bk.ReadFenceLedger
		req.LongPoll = r.Read.HasPreviousLAC && r.Read.HasTimeOut
	case r.HasAdd:
		req.Ledger, req.Entry = r.Add.LedgerID, r.Add.EntryID
		req.Recovery = r.Add.HasFlag && r.Add.Flag == bk.AddRecoveryAdd
	case r.HasReadLac:
		req.Ledger = r.ReadLac.LedgerID
	case r.HasWriteLac:
		req.Ledger = r.WriteLac.LedgerID
	}
	f := c.b.faultFor(req)
	switch {
	case f.Close:
		return false
	case f.Drop:
		return true
	}
	resp := bk.Response{Header: bk.BKPacketHeader{Version: bk.VersionThree, Operation: h.Operation, TxnID: h.TxnID}}
	if f.RC != bk.RCOK {
		resp.Status = f.RC.Status()
		c.respond(resp.AppendFrame(nil), f.Delay)
		return true
	}
	if h.Version != bk.VersionThree {
		resp.Status = bk.StatusBadVersion
		c.respond(resp.AppendFrame(nil), f.Delay)
		return true
	}
	switch {
	case h.Operation == bk.OperationReadEntry && r.HasRead:
		if req.LongPoll {
			c.longPoll(r.Read.LedgerID, base.EntryID(r.Read.PreviousLAC), time.Duration(r.Read.TimeOut)*time.Millisecond, resp, f.Delay)
			return true
		}
		resp.HasRead = true
		resp.Read = c.b.readV3(&r.Read)
	case h.Operation == bk.OperationAddEntry && r.HasAdd:
		rc := bk.RCUnauthorized
		if len(r.Add.MasterKey) == bk.MasterKeyLen {
			rc = c.b.add(r.Add.LedgerID, bk.MasterKey(r.Add.MasterKey), r.Add.Body, req.Recovery)
		}
		resp.HasAdd = true
		resp.Add = bk.AddResponse{Status: rc.Status(), LedgerID: r.Add.LedgerID, EntryID: r.Add.EntryID}
	case h.Operation == bk.OperationReadLAC && r.HasReadLac:
		c.b.lacReads.Add(1)
		resp.HasReadLac = true
		resp.ReadLac = bk.ReadLacResponse{LedgerID: r.ReadLac.LedgerID}
		_, last, explicit, _, ok := c.b.lacState(r.ReadLac.LedgerID)
		if !ok {
			resp.ReadLac.Status = bk.StatusNoLedger
		} else {
			resp.ReadLac.LACBody, resp.ReadLac.LastEntryBody = explicit, last
		}
	case h.Operation == bk.OperationWriteLAC && r.HasWriteLac:
		resp.HasWriteLac = true
		resp.WriteLac = bk.WriteLacResponse{LedgerID: r.WriteLac.LedgerID, Status: c.b.writeLAC(&r.WriteLac).Status()}
	case h.Operation == bk.OperationForceLedger && r.HasForceLedger:
		resp.HasForceLedger = true
		resp.ForceLedger = bk.ForceLedgerResponse{LedgerID: r.ForceLedger.LedgerID}
	case h.Operation == bk.OperationGetBookieInfo:
		resp.HasGetBookieInfo = true
		resp.GetBookieInfo = bk.GetBookieInfoResponse{TotalDiskCapacity: 1 << 40, HasTotalDiskCapacity: true,
			FreeDiskSpace: 1 << 39, HasFreeDiskSpace: true}
	default:
		resp.Status = bk.StatusBadRequest
	}
	c.respond(resp.AppendFrame(nil), f.Delay)
	return true
}

func (b *Bookie) readV3(r *bk.ReadRequest) bk.ReadResponse {
	out := bk.ReadResponse{LedgerID: r.LedgerID, EntryID: r.EntryID}
	if r.HasFlag && r.Flag == bk.ReadFenceLedger {
		if rc := b.fence(r.LedgerID, r.MasterKey); rc != bk.RCOK {
			out.Status = rc.Status()
			return out
		}
	}
	data, rc := b.read(r.LedgerID, r.EntryID)
	out.Status = rc.Status()
	if rc == bk.RCOK {
		out.Body = data
		lac, _, _, _, _ := b.lacState(r.LedgerID)
		out.MaxLAC, out.HasMaxLAC = int64(lac), true
	}
	return out
}

func (b *Bookie) writeLAC(r *bk.WriteLacRequest) bk.RC {
	if len(r.MasterKey) != bk.MasterKeyLen {
		return bk.RCUnauthorized
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	isNew := b.mu.ledgers[r.LedgerID] == nil
	ls := b.ledgerLocked(r.LedgerID, true)
	if !checkKeyLocked(ls, isNew, bk.MasterKey(r.MasterKey)) {
		return bk.RCUnauthorized
	}
	ls.explicitLAC = slices.Clone(r.Body)
	ls.advanceLAC(r.LAC)
	return bk.RCOK
}

// longPoll answers a v3 long-poll read once the LAC passes prev or after
// timeout, with the LAC and the last entry (BookKeeper's
// LongPollReadEntryProcessorV3 without entry piggyback).
func (c *serverConn) longPoll(l base.LedgerID, prev base.EntryID, timeout time.Duration, resp bk.Response, delay time.Duration) {
	c.b.longPolls.Add(1)
	answer := func() {
		resp.HasRead = true
		resp.Read = bk.ReadResponse{LedgerID: l, EntryID: bk.LastAddConfirmed}
		lac, last, _, _, ok := c.b.lacState(l)
		switch {
		case !ok:
			resp.Read.Status = bk.StatusNoLedger
		case last == nil:
			resp.Read.Status = bk.StatusNoEntry
		default:
			resp.Read.Body = last
			resp.Read.MaxLAC, resp.Read.HasMaxLAC = int64(lac), true
		}
		c.respond(resp.AppendFrame(nil), delay)
		c.flush()
	}
	lac, _, _, changed, ok := c.b.lacState(l)
	if !ok || lac > prev {
		answer()
		return
	}
	c.b.wg.Add(1)
	go func() {
		defer c.b.wg.Done()
		t := time.NewTimer(timeout)
		defer t.Stop()
		for {
			select {
			case <-c.done:
				return
			case <-t.C:
				answer()
				return
			case <-changed:
				var lac base.EntryID
				lac, _, _, changed, _ = c.b.lacState(l)
				if lac > prev {
					answer()
					return
				}
			}
		}
	}()
}

// String describes the bookie.
func (b *Bookie) String() string { return fmt.Sprintf("bookie %s", b.addr) }
