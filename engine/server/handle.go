package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/wire/bk"
)

func (c *conn) newAddOp() *addOp {
	o := c.s.addOps.Get().(*addOp)
	o.c = c
	return o
}

// handleV2 serves one v2 request (c.dec.V2). It owns one in-flight token,
// returned when the response is queued.
func (c *conn) handleV2(body []byte) {
	r := &c.dec.V2
	switch r.Header.Op {
	case bk.OpAddEntry:
		c.s.Stats.Adds.Add(1)
		o := c.newAddOp()
		o.version, o.l, o.e = r.Header.Version, r.LedgerID, r.EntryID
		c.add(o, r.MasterKey[:], r.Entry, r.IsRecoveryAdd())
	case bk.OpReadEntry, bk.OpBatchReadEntry:
		j := c.s.readJobs.Get().(*readJob)
		*j = readJob{c: c, version: r.Header.Version, l: r.LedgerID, e: r.EntryID}
		if r.Header.Op == bk.OpBatchReadEntry {
			j.batch, j.requestID, j.maxCount, j.maxSize = true, r.RequestID, int(r.MaxCount), r.MaxSize
		}
		if r.IsFencing() && r.HasMasterKey {
			c.fenceThenRead(j, r.MasterKey[:])
			return
		}
		c.s.submit(j)
	case bk.OpAuth:
		c.out.Lock()
		from := len(c.out.head)
		c.out.head = bk.AppendAuthResponse(c.out.head, r.Header.Version,
			&bk.AuthMessage{AuthPluginName: []byte(bk.AuthDisabledPluginName)})
		c.headLocked(from)
		c.out.Unlock()
		c.signal()
		c.requestDone()
	default:
		c.requestDone()
	}
}

// add hands an entry to the engine. entry is a slice of the current chunk.
func (c *conn) add(o *addOp, key, entry []byte, recovery bool) {
	v := c.view(entry)
	err := c.s.eng.AddEntry(c.s.ctx, o.l, o.e, key, v, recovery, o)
	v.Release()
	if err != nil {
		o.AddComplete(err)
	}
}

func (c *conn) fenceThenRead(j *readJob, key []byte) {
	o := c.newAddOp()
	o.l, o.then = j.l, j
	if err := c.s.eng.Fence(c.s.ctx, j.l, key, o); err != nil {
		o.AddComplete(err)
	}
}

// handleV3 serves one v3 request (c.dec.V3).
func (c *conn) handleV3(body []byte) {
	r := &c.dec.V3
	h := r.Header
	switch {
	case h.Operation == bk.OperationAddEntry && r.HasAdd:
		c.s.Stats.Adds.Add(1)
		o := c.newAddOp()
		o.v3, o.txn, o.op, o.l, o.e = true, h.TxnID, h.Operation, r.Add.LedgerID, r.Add.EntryID
		c.add(o, r.Add.MasterKey, r.Add.Body, r.Add.HasFlag && r.Add.Flag == bk.AddRecoveryAdd)
	case h.Operation == bk.OperationReadEntry && r.HasRead:
		j := c.s.readJobs.Get().(*readJob)
		*j = readJob{c: c, v3: true, txn: h.TxnID, l: r.Read.LedgerID, e: r.Read.EntryID}
		if r.Read.HasPreviousLAC {
			j.longPoll, j.previousLAC = true, base.EntryID(r.Read.PreviousLAC)
			j.timeout = time.Duration(r.Read.TimeOut) * time.Millisecond
			j.piggyback = r.Read.HasFlag && r.Read.Flag == bk.ReadEntryPiggyback
		}
		if r.Read.HasFlag && r.Read.Flag == bk.ReadFenceLedger {
			if r.Read.MasterKey == nil {
				// EUA, as BookKeeper's ReadEntryProcessorV3 answers.
				j.fail(fmt.Errorf("server: fencing read of ledger %d without a master key: %w", j.l, base.ErrUnauthorized))
				return
			}
			c.fenceThenRead(j, r.Read.MasterKey)
			return
		}
		if j.longPoll {
			go c.s.longPoll(j) // rare: parks until the LAC moves
			return
		}
		c.s.submit(j)
	case h.Operation == bk.OperationWriteLAC && r.HasWriteLac:
		o := c.newAddOp()
		o.v3, o.txn, o.op, o.l = true, h.TxnID, h.Operation, r.WriteLac.LedgerID
		err := c.s.eng.WriteLAC(c.s.ctx, r.WriteLac.LedgerID, r.WriteLac.MasterKey, r.WriteLac.LAC, r.WriteLac.Body, o)
		if err != nil {
			o.AddComplete(err)
		}
	case h.Operation == bk.OperationForceLedger && r.HasForceLedger:
		o := c.newAddOp()
		o.v3, o.txn, o.op, o.l = true, h.TxnID, h.Operation, r.ForceLedger.LedgerID
		if err := c.s.eng.Force(c.s.ctx, r.ForceLedger.LedgerID, o); err != nil {
			o.AddComplete(err)
		}
	case h.Operation == bk.OperationReadLAC && r.HasReadLac:
		j := c.s.readJobs.Get().(*readJob)
		*j = readJob{c: c, v3: true, txn: h.TxnID, l: r.ReadLac.LedgerID, readLAC: true}
		c.s.submit(j)
	case h.Operation == bk.OperationGetBookieInfo:
		resp := bk.Response{Header: c.v3Header(h)}
		resp.HasGetBookieInfo = true
		total, free, err := c.s.eng.DiskInfo()
		resp.Status = bk.StatusFromError(err)
		resp.GetBookieInfo = bk.GetBookieInfoResponse{Status: resp.Status,
			TotalDiskCapacity: int64(total), HasTotalDiskCapacity: err == nil,
			FreeDiskSpace: int64(free), HasFreeDiskSpace: err == nil}
		c.sendV3(&resp, nil)
	case h.Operation == bk.OperationAuth:
		resp := bk.Response{Header: c.v3Header(h), HasAuth: true,
			Auth: bk.AuthMessage{AuthPluginName: []byte(bk.AuthDisabledPluginName)}}
		c.sendV3(&resp, nil)
	default:
		// Unknown or unsupported operation (START_TLS, list of entries):
		// EBADREQ, as BookKeeper answers what it cannot serve.
		resp := bk.Response{Header: c.v3Header(h), Status: bk.RCBadRequest.Status()}
		c.sendV3(&resp, nil)
	}
}

func (c *conn) v3Header(h bk.BKPacketHeader) bk.BKPacketHeader {
	return bk.BKPacketHeader{Version: bk.VersionThree, Operation: h.Operation, TxnID: h.TxnID}
}

// sendV3 queues a v3 response, with body (if any) as the read response's
// body iovec, and returns the request's in-flight token.
func (c *conn) sendV3(r *bk.Response, body *bufs.Buf) {
	c.out.Lock()
	if c.out.closed {
		c.out.Unlock()
		if body != nil {
			body.Release()
		}
		c.requestDone()
		return
	}
	from := len(c.out.head)
	if body != nil {
		c.out.head = r.AppendFrameHead(c.out.head, body.Len())
		c.headLocked(from)
		c.bodyLocked(body)
	} else {
		c.out.head = r.AppendFrame(c.out.head)
		c.headLocked(from)
	}
	c.out.Unlock()
	c.signal()
	c.requestDone()
}

// readJob is a pooled read waiting for a worker.
type readJob struct {
	c       *conn
	v3      bool
	version uint8
	txn     uint64
	l       base.LedgerID
	e       base.EntryID

	batch     bool
	requestID int64
	maxCount  int
	maxSize   int64

	readLAC bool

	longPoll    bool
	previousLAC base.EntryID
	timeout     time.Duration
	piggyback   bool
}

func (s *Server) submit(j *readJob) {
	select {
	case s.jobs <- j:
	case <-s.ctx.Done():
		j.fail(base.ErrClosed)
	}
}

func (s *Server) readWorker() {
	defer s.wg.Done()
	for j := range s.jobs {
		s.Stats.Reads.Add(1)
		j.run()
	}
}

func (s *Server) longPoll(j *readJob) {
	wait := min(max(j.timeout, 0), s.opts.MaxLongPollWait)
	ctx, cancel := context.WithTimeout(s.ctx, wait)
	lac, err := s.eng.WaitLAC(ctx, j.l, j.previousLAC)
	cancel()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		j.fail(err)
		return
	}
	c := j.c
	resp := bk.Response{Header: bk.BKPacketHeader{Version: bk.VersionThree, Operation: bk.OperationReadEntry, TxnID: j.txn}, HasRead: true}
	resp.Read = bk.ReadResponse{LedgerID: j.l, EntryID: j.e, MaxLAC: int64(lac), HasMaxLAC: true}
	var body *bufs.Buf
	if lac > j.previousLAC && j.piggyback {
		if b, rerr := s.eng.ReadEntry(s.ctx, j.l, j.e); rerr == nil {
			body = b
		}
	}
	c.sendV3(&resp, body)
	*j = readJob{}
	s.readJobs.Put(j)
}

// fail answers the read with err's return code.
func (j *readJob) fail(err error) {
	c := j.c
	c.s.Stats.Errors.Add(1)
	if j.v3 {
		resp := bk.Response{Header: bk.BKPacketHeader{Version: bk.VersionThree, TxnID: j.txn}}
		resp.Status = bk.StatusFromError(err)
		if j.readLAC {
			resp.Header.Operation = bk.OperationReadLAC
			resp.HasReadLac = true
			resp.ReadLac = bk.ReadLacResponse{Status: resp.Status, LedgerID: j.l}
		} else {
			resp.Header.Operation = bk.OperationReadEntry
			resp.HasRead = true
			resp.Read = bk.ReadResponse{Status: resp.Status, LedgerID: j.l, EntryID: j.e}
		}
		c.sendV3(&resp, nil)
	} else {
		rc := bk.RCFromError(err)
		if rc == bk.RCUnknownLedgerState {
			rc = bk.RCIO // the Java client cannot take 107 over v2
		}
		c.out.Lock()
		if !c.out.closed {
			from := len(c.out.head)
			if j.batch {
				c.out.head = bk.AppendBatchReadResponseHead(c.out.head, j.version, rc, j.l, j.e, j.requestID, 0)
			} else {
				c.out.head = bk.AppendReadResponseHead(c.out.head, j.version, rc, j.l, j.e, 0)
			}
			c.headLocked(from)
		}
		c.out.Unlock()
		c.signal()
		c.requestDone()
	}
	*j = readJob{}
	c.s.readJobs.Put(j)
}

func (j *readJob) run() {
	c, s := j.c, j.c.s
	ctx := s.ctx
	switch {
	case j.readLAC:
		explicit, last, err := s.eng.ReadLAC(ctx, j.l)
		if err != nil {
			j.fail(err)
			return
		}
		resp := bk.Response{Header: bk.BKPacketHeader{Version: bk.VersionThree, Operation: bk.OperationReadLAC, TxnID: j.txn}, HasReadLac: true}
		resp.ReadLac = bk.ReadLacResponse{LedgerID: j.l, LACBody: explicit}
		if last != nil {
			resp.ReadLac.LastEntryBody = last.Bytes()
		}
		c.sendV3(&resp, nil) // copies the bodies: READ_LAC is not a hot path
		if last != nil {
			last.Release()
		}
	case j.batch:
		entries, err := s.eng.ReadRange(ctx, j.l, j.e, max(j.maxCount, 1), j.maxSize)
		if err == nil && len(entries) == 0 {
			err = fmt.Errorf("ledger %d entry %d: %w", j.l, j.e, base.ErrNoEntry)
		}
		if err != nil {
			j.fail(err)
			return
		}
		n := 0
		for _, e := range entries {
			n += 4 + e.Len()
		}
		c.out.Lock()
		if c.out.closed {
			c.out.Unlock()
			for _, e := range entries {
				e.Release()
			}
			c.requestDone()
			break
		}
		from := len(c.out.head)
		c.out.head = bk.AppendBatchReadResponseHead(c.out.head, j.version, bk.RCOK, j.l, j.e, j.requestID, n)
		c.headLocked(from)
		for _, e := range entries {
			from = len(c.out.head)
			c.out.head = bk.AppendBatchEntrySize(c.out.head, e.Len())
			c.headLocked(from)
			c.bodyLocked(e)
		}
		c.out.Unlock()
		c.signal()
		c.requestDone()
	default:
		buf, err := s.eng.ReadEntry(ctx, j.l, j.e)
		if err != nil {
			j.fail(err)
			return
		}
		if j.v3 {
			resp := bk.Response{Header: bk.BKPacketHeader{Version: bk.VersionThree, Operation: bk.OperationReadEntry, TxnID: j.txn}, HasRead: true}
			resp.Read = bk.ReadResponse{LedgerID: j.l, EntryID: j.e}
			c.sendV3(&resp, buf)
			break
		}
		c.out.Lock()
		if c.out.closed {
			c.out.Unlock()
			buf.Release()
			c.requestDone()
			break
		}
		from := len(c.out.head)
		c.out.head = bk.AppendReadResponseHead(c.out.head, j.version, bk.RCOK, j.l, j.e, buf.Len())
		c.headLocked(from)
		c.bodyLocked(buf)
		c.out.Unlock()
		c.signal()
		c.requestDone()
	}
	*j = readJob{}
	s.readJobs.Put(j)
}
