package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/wire/bk"
)

// Entry is an entry read from a ledger. Data is the payload (the digest
// checked and the header stripped) and holds one reference, released by
// the receiver.
type Entry struct {
	ID   base.EntryID
	Data *bufs.Buf
}

// ReleaseEntries releases the data of every entry.
func ReleaseEntries(es []Entry) {
	for i := range es {
		if es[i].Data != nil {
			es[i].Data.Release()
			es[i].Data = nil
		}
	}
}

// readSpec says what a read reads from.
type readSpec struct {
	ledger base.LedgerID
	dig    *bk.Digester
	md     *Metadata
	onLAC  func(base.EntryID) // a piggybacked LAC seen in an entry (may be nil)
}

// readChunk is a run of entries asked for from one replica at a time: one
// entry (READ_ENTRY), or several when every bookie of the segment holds
// every entry (E == W) and batch reads are on (BATCH_READ_ENTRY).
type readChunk struct {
	first       base.EntryID
	count       int
	origin      base.EntryID // the first entry when planned: its write set orders the replicas
	ens         []string
	next        int // next write-set position to ask
	outstanding int
	sentAt      int64
	done        bool
	lastErr     error
}

type readResult struct {
	chunk   int
	first   base.EntryID
	entries []Entry // a batch's entries, or one aliasing single
	single  [1]Entry
	err     error
}

// readOp is the responder of one Read's requests.
type readOp struct {
	spec readSpec
	q    *eventQueue[readResult]
}

// read reads entries first..last, failing over between replicas; every
// entry's digest, ledger id and entry id are checked.
func (c *Client) read(ctx context.Context, spec readSpec, first, last base.EntryID) (es []Entry, err error) {
	if first < 0 || last < first {
		return nil, fmt.Errorf("%w: read of entries %d..%d", ErrBadOptions, first, last)
	}
	start := c.pool.now()
	if hook := c.opts.Hooks.ReadCompleted; hook != nil {
		defer func() { hook(spec.ledger, len(es), time.Duration(c.pool.now()-start), err) }()
	}
	op := &readOp{spec: spec, q: newEventQueue[readResult]()}
	out := make([]Entry, int(last-first)+1)
	defer func() {
		for _, r := range op.q.close() {
			ReleaseEntries(r.entries)
			ReleaseEntries(r.single[:])
		}
		if err != nil {
			ReleaseEntries(out)
		}
	}()

	chunks := c.planRead(spec.md, first, last)
	next, inflight, remaining := 0, 0, len(out)
	issue := func(ci int) {
		ch := &chunks[ci]
		pos := ch.next
		ch.next++
		ch.outstanding++
		ch.sentAt = c.pool.now()
		c.sendRead(op, ci, ch, pos)
	}
	var spec2 <-chan time.Time
	if c.opts.SpeculativeReadTimeout > 0 {
		t := time.NewTicker(max(c.opts.SpeculativeReadTimeout/2, time.Millisecond))
		defer t.Stop()
		spec2 = t.C
	}
	var results []readResult
	for remaining > 0 {
		for next < len(chunks) && (inflight == 0 || inflight+chunks[next].count <= c.opts.ReadWindow) {
			inflight += chunks[next].count
			issue(next)
			next++
		}
		select {
		case <-op.q.signal:
		case <-spec2:
			now := c.pool.now()
			for i := 0; i < next; i++ {
				ch := &chunks[i]
				if !ch.done && ch.outstanding > 0 && ch.next < spec.md.WriteQuorum &&
					now-ch.sentAt >= int64(c.opts.SpeculativeReadTimeout) {
					issue(i)
				}
			}
			continue
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		results = op.q.drain(results[:0])
		for ri := range results {
			r := &results[ri]
			if r.single[0].Data != nil {
				r.entries = r.single[:]
			}
			ch := &chunks[r.chunk]
			if ch.done || r.first != ch.first {
				ReleaseEntries(r.entries) // a slower replica, or a remainder already re-asked
				continue
			}
			for _, e := range r.entries {
				out[e.ID-first] = e
			}
			n := len(r.entries)
			remaining -= n
			inflight -= n
			ch.first += base.EntryID(n)
			ch.count -= n
			switch {
			case ch.count == 0:
				ch.done = true
			case n > 0 && r.err == nil:
				// A batch answered in part (size limit): ask the same
				// replica for the rest.
				ch.next--
				ch.outstanding = 0
				issue(r.chunk)
			default:
				ch.outstanding--
				if r.err != nil {
					ch.lastErr = r.err
				}
				if ch.outstanding > 0 {
					continue
				}
				if ch.next >= spec.md.WriteQuorum {
					if ch.lastErr == nil {
						ch.lastErr = fmt.Errorf("%w: empty answers", ErrProtocol)
					}
					return nil, fmt.Errorf("ledger %d: reading entry %d from every replica %v: %w",
						spec.ledger, ch.first, replicas(spec.md, ch), ch.lastErr)
				}
				issue(r.chunk)
			}
		}
		clear(results)
	}
	return out, nil
}

func replicas(md *Metadata, ch *readChunk) []string {
	out := make([]string, md.WriteQuorum)
	for i := range out {
		out[i] = ch.ens[writeSetIndex(ch.origin, i, md.EnsembleSize)]
	}
	return out
}

// planRead splits first..last into chunks.
func (c *Client) planRead(md *Metadata, first, last base.EntryID) []readChunk {
	batch := c.opts.BatchReadMaxCount > 1 && md.EnsembleSize == md.WriteQuorum
	var chunks []readChunk
	for e := first; e <= last; {
		si := len(md.Segments) - 1
		for si > 0 && md.Segments[si].FirstEntry > e {
			si--
		}
		end := last
		if si+1 < len(md.Segments) && md.Segments[si+1].FirstEntry-1 < end {
			end = md.Segments[si+1].FirstEntry - 1
		}
		n := 1
		if batch {
			n = int(min(int64(end-e)+1, int64(c.opts.BatchReadMaxCount)))
		}
		chunks = append(chunks, readChunk{first: e, origin: e, count: n, ens: md.Segments[si].Bookies})
		e += base.EntryID(n)
	}
	return chunks
}

func (c *Client) sendRead(op *readOp, ci int, ch *readChunk, pos int) {
	md := op.spec.md
	r := newRequest()
	r.bookie = ch.ens[writeSetIndex(ch.origin, pos, md.EnsembleSize)]
	r.target = op
	r.index = pos
	r.entry = ch.first
	r.count = ch.count
	r.tag = uint64(ci)
	r.deadline = c.pool.deadline(c.opts.ReadTimeout)
	if ch.count == 1 {
		r.key = reqKey{ledger: op.spec.ledger, entry: int64(ch.first), op: bk.OpReadEntry}
		r.head = bk.AppendReadRequest(r.head, 0, op.spec.ledger, ch.first, nil)
	} else {
		id := c.batchIDs.Add(1)
		r.key = reqKey{ledger: op.spec.ledger, entry: id, op: bk.OpBatchReadEntry}
		r.head = bk.AppendBatchReadRequest(r.head, 0, op.spec.ledger, ch.first, id,
			int32(ch.count), int64(c.opts.BatchReadMaxSize), nil)
	}
	c.pool.get(r.bookie, bk.ProtocolV2, op.spec.ledger).send(r)
}

// complete verifies and copies the entries of a read response.
func (op *readOp) complete(r *request, res *response) {
	out := readResult{chunk: int(r.tag), first: r.entry}
	if err := res.failure(); err != nil {
		out.err = fmt.Errorf("bookie %s: %w", r.bookie, err)
	} else if r.key.op == bk.OpReadEntry {
		e, err := op.copyEntry(res.data, r.entry)
		if err != nil {
			out.err = fmt.Errorf("bookie %s: %w", r.bookie, err)
		} else {
			out.single[0] = e // entries is set by the reader: the result is copied
		}
	} else {
		it := bk.BatchEntries(res.data)
		want := r.entry
		for data, ok := it.Next(); ok && len(out.entries) < r.count; data, ok = it.Next() {
			e, err := op.copyEntry(data, want)
			if err != nil {
				out.err = fmt.Errorf("bookie %s: %w", r.bookie, err)
				break
			}
			out.entries = append(out.entries, e)
			want++
		}
		if out.err == nil && len(out.entries) == 0 {
			out.err = fmt.Errorf("bookie %s: empty batch read answer: %w", r.bookie, base.ErrNoEntry)
		}
	}
	if !op.q.push(out) {
		ReleaseEntries(out.entries)
		ReleaseEntries(out.single[:])
	}
}

func (op *readOp) copyEntry(data []byte, want base.EntryID) (Entry, error) {
	h, payload, err := op.spec.dig.ParseEntry(data, op.spec.ledger, want)
	if err != nil {
		return Entry{}, err
	}
	if op.spec.onLAC != nil {
		op.spec.onLAC(h.LAC)
	}
	buf := bufs.Get(len(payload))
	copy(buf.Bytes(), payload)
	return Entry{ID: want, Data: buf}, nil
}

// ReadHandle is a ledger open for reading. Methods are safe for concurrent
// use.
type ReadHandle struct {
	c   *Client
	id  base.LedgerID
	key bk.MasterKey
	dig *bk.Digester

	lac        atomic.Int64
	noLongPoll atomic.Bool // the bookies refused v3 long polls: poll instead
	closed     atomic.Bool
	md         atomic.Pointer[Metadata]
	// mdLAC: md was read after the LAC reached this, so it names the
	// ensembles of every entry up to it (a writer stores a new segment
	// before it confirms anything in it).
	mdLAC atomic.Int64
}

func newReadHandle(c *Client, id base.LedgerID, md *Metadata, key bk.MasterKey, dig *bk.Digester) *ReadHandle {
	r := &ReadHandle{c: c, id: id, key: key, dig: dig}
	r.md.Store(md)
	lac := base.InvalidEntry
	if md.State == StateClosed {
		lac = md.LastEntry
	}
	r.lac.Store(int64(lac))
	r.mdLAC.Store(int64(lac))
	return r
}

// ID is the ledger id.
func (r *ReadHandle) ID() base.LedgerID { return r.id }

// Metadata is the ledger's metadata as last read.
func (r *ReadHandle) Metadata() *Metadata { return r.md.Load() }

// IsClosed reports whether the ledger was CLOSED when its metadata was
// last read.
func (r *ReadHandle) IsClosed() bool { return r.md.Load().State == StateClosed }

// LastAddConfirmed is the last confirmed entry this handle knows of: the
// last entry of a closed ledger, else the largest LAC learned from the
// bookies (-1 before any).
func (r *ReadHandle) LastAddConfirmed() base.EntryID { return base.EntryID(r.lac.Load()) }

func (r *ReadHandle) learnLAC(lac base.EntryID) {
	for {
		cur := r.lac.Load()
		if int64(lac) <= cur || r.lac.CompareAndSwap(cur, int64(lac)) {
			return
		}
	}
}

// Close releases the handle (it holds no bookie resources).
func (r *ReadHandle) Close() error {
	r.closed.Store(true)
	return nil
}

// Read reads entries first..last. Without recovery a reader may read only
// up to the last add confirmed: when last is past the LAC known, Read asks
// the bookies (ReadLastAddConfirmed) first, and fails with ErrBeyondLAC if
// last is still past it. Each entry is read from one replica of its write
// set, the next replica being tried on an error or a timeout (and, with
// SpeculativeReadTimeout, also when the first is slow).
func (r *ReadHandle) Read(ctx context.Context, first, last base.EntryID) ([]Entry, error) {
	if r.closed.Load() {
		return nil, ErrHandleClosed
	}
	if last > r.LastAddConfirmed() {
		if _, err := r.ReadLastAddConfirmed(ctx); err != nil {
			return nil, err
		}
		if lac := r.LastAddConfirmed(); last > lac {
			return nil, fmt.Errorf("%w: ledger %d, entry %d, last confirmed %d", ErrBeyondLAC, r.id, last, lac)
		}
	}
	if last > base.EntryID(r.mdLAC.Load()) {
		if err := r.refreshMetadata(ctx); err != nil {
			return nil, err
		}
	}
	return r.c.read(ctx, readSpec{ledger: r.id, dig: r.dig, md: r.md.Load(), onLAC: r.learnLAC}, first, last)
}

// ReadLastAddConfirmed learns the LAC: the last entry of the ledger if its
// metadata now says CLOSED, else the largest LAC piggybacked in the last
// entry of each bookie of the current ensemble (READ_ENTRY of entry -1),
// once the answers cover every write quorum (as BookKeeper's
// readLastConfirmed). The LAC never goes backwards.
func (r *ReadHandle) ReadLastAddConfirmed(ctx context.Context) (base.EntryID, error) {
	if err := r.refreshMetadata(ctx); err != nil {
		return r.LastAddConfirmed(), err
	}
	md := r.md.Load()
	if md.State == StateClosed {
		return r.LastAddConfirmed(), nil
	}
	lac, err := r.c.readLAC(ctx, r.id, r.dig, md)
	if err != nil {
		return r.LastAddConfirmed(), err
	}
	r.learnLAC(lac)
	return r.LastAddConfirmed(), nil
}

func (r *ReadHandle) refreshMetadata(ctx context.Context) error {
	if r.md.Load().State == StateClosed {
		return nil
	}
	lac := r.lac.Load()
	md, _, err := r.c.meta.read(ctx, r.id)
	if err != nil {
		return err
	}
	r.md.Store(md)
	if md.State == StateClosed {
		r.learnLAC(md.LastEntry)
		lac = int64(md.LastEntry)
	}
	for {
		cur := r.mdLAC.Load()
		if lac <= cur || r.mdLAC.CompareAndSwap(cur, lac) {
			return nil
		}
	}
}

// lacEvent is one bookie's answer to a read of its last entry.
type lacEvent struct {
	index int
	reply fenceReply
}

// lastEntryOp is the responder of reads of entry -1 (LAC reads and
// fencing).
type lastEntryOp struct {
	ledger base.LedgerID
	dig    *bk.Digester
	q      *eventQueue[lacEvent]
}

func (op *lastEntryOp) complete(r *request, res *response) {
	op.q.push(lacEvent{index: r.index, reply: classifyLastEntry(op.dig, op.ledger, res)})
}

func classifyLastEntry(dig *bk.Digester, ledger base.LedgerID, res *response) fenceReply {
	err := res.failure()
	switch {
	case err == nil:
		h, _, perr := dig.ParseEntry(res.data, ledger, bk.LastAddConfirmed)
		if perr != nil {
			return fenceReply{Kind: replyError}
		}
		return fenceReply{Kind: replyEntry, Entry: h.EntryID, LAC: h.LAC, Length: h.Length}
	case errors.Is(err, base.ErrNoEntry), errors.Is(err, base.ErrNoLedger):
		return fenceReply{Kind: replyMissing}
	case errors.Is(err, base.ErrUnauthorized):
		return fenceReply{Kind: replyError, Denied: true}
	}
	return fenceReply{Kind: replyError}
}

// sendLastEntryReads sends READ_ENTRY(-1) to every member of the last
// ensemble.
func (c *Client) sendLastEntryReads(op *lastEntryOp, md *Metadata) {
	for i, b := range md.LastSegment().Bookies {
		c.pool.get(b, bk.ProtocolV2, op.ledger).send(c.newLastEntryRead(op.ledger, nil, b, i, op))
	}
}

// readLAC reads the LAC from the last ensemble (see ReadLastAddConfirmed).
func (c *Client) readLAC(ctx context.Context, id base.LedgerID, dig *bk.Digester, md *Metadata) (base.EntryID, error) {
	op := &lastEntryOp{ledger: id, dig: dig, q: newEventQueue[lacEvent]()}
	defer op.q.close()
	c.sendLastEntryReads(op, md)
	cov := newCoverage(md.EnsembleSize, md.WriteQuorum, md.AckQuorum)
	lac := max(md.LastSegment().FirstEntry-1, base.InvalidEntry)
	valid := false
	var evs []lacEvent
	for {
		select {
		case <-op.q.signal:
		case <-ctx.Done():
			return base.InvalidEntry, ctx.Err()
		}
		evs = op.q.drain(evs[:0])
		for _, ev := range evs {
			if cov.replies[ev.index] != replyNone {
				continue
			}
			if ev.reply.Denied {
				return base.InvalidEntry, fmt.Errorf("%w: ledger %d", ErrUnauthorized, id)
			}
			cov.set(ev.index, ev.reply.Kind)
			switch ev.reply.Kind {
			case replyEntry:
				valid = true
				lac = max(lac, ev.reply.LAC)
			case replyMissing:
				valid = true
			}
		}
		if valid && cov.covered() {
			return lac, nil
		}
		if cov.answered() == md.EnsembleSize {
			return base.InvalidEntry, fmt.Errorf("ledger: ledger %d: reading the LAC: too few bookies answered (%v)",
				id, cov.replies)
		}
	}
}

// LongPollLAC waits until the LAC passes prev and returns it, or returns
// prev with ctx's error when ctx ends first. A closed ledger returns its
// last entry if it is past prev, else ErrLedgerClosed.
//
// It sends a v3 long-poll read (ReadRequest with previousLAC and timeOut)
// to every bookie of the current ensemble: a bookie answers when its LAC
// passes prev or after LongPollTimeout. If the bookies refuse v3 long
// polls (bad request or bad version), the handle falls back to polling
// ReadLastAddConfirmed with a backoff from 1ms doubling to 500ms. Between
// polls the metadata is re-read, so a ledger closed meanwhile ends the
// wait.
func (r *ReadHandle) LongPollLAC(ctx context.Context, prev base.EntryID) (base.EntryID, error) {
	backoff := time.Millisecond
	for {
		if lac := r.LastAddConfirmed(); lac > prev {
			return lac, nil
		}
		if err := r.refreshMetadata(ctx); err != nil {
			return prev, err
		}
		md := r.md.Load()
		if md.State == StateClosed {
			if md.LastEntry > prev {
				return md.LastEntry, nil
			}
			return prev, fmt.Errorf("%w: ledger %d ends at entry %d", ErrLedgerClosed, r.id, md.LastEntry)
		}
		if !r.noLongPoll.Load() {
			lac, err := r.longPoll(ctx, md, prev)
			switch {
			case err == nil:
				r.learnLAC(lac)
				continue
			case errors.Is(err, ErrNotSupported):
				r.noLongPoll.Store(true)
			default:
				if ctx.Err() != nil {
					return prev, ctx.Err()
				}
				// Bookies unreachable: fall through to one poll and a
				// backoff before trying again.
			}
		}
		if _, err := r.ReadLastAddConfirmed(ctx); err != nil && ctx.Err() != nil {
			return prev, ctx.Err()
		}
		if lac := r.LastAddConfirmed(); lac > prev {
			return lac, nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return prev, ctx.Err()
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// longPollOp is the responder of v3 long-poll reads.
type longPollOp struct {
	ledger base.LedgerID
	dig    *bk.Digester
	q      *eventQueue[longPollEvent]
}

type longPollEvent struct {
	lac         base.EntryID
	err         error
	unsupported bool
}

func (op *longPollOp) complete(r *request, res *response) {
	ev := longPollEvent{lac: base.InvalidEntry}
	switch {
	case res.err != nil:
		ev.err = res.err
	case res.v3 == nil || res.v3.Status == bk.StatusBadRequest || res.v3.Status == bk.StatusBadVersion:
		ev.err, ev.unsupported = fmt.Errorf("%w: bookie %s: v3 long poll", ErrNotSupported, r.bookie), true
	case res.v3.Status != bk.StatusOK:
		ev.err = res.v3.Status.Err()
	case !res.v3.HasRead:
		ev.err = fmt.Errorf("%w: bookie %s: v3 read response without a read", ErrProtocol, r.bookie)
	default:
		rr := &res.v3.Read
		switch {
		case rr.Status == bk.StatusOK:
			if rr.HasMaxLAC {
				ev.lac = base.EntryID(rr.MaxLAC)
			}
			if rr.Body != nil {
				if h, _, err := op.dig.ParseEntry(rr.Body, op.ledger, bk.LastAddConfirmed); err == nil {
					ev.lac = max(ev.lac, h.LAC)
				}
			}
		case rr.Status == bk.StatusNoEntry || rr.Status == bk.StatusNoLedger:
		default:
			ev.err = rr.Status.Err()
		}
	}
	op.q.push(ev)
}

// longPoll runs one round of v3 long polls; it returns the largest LAC
// heard (which may not pass prev when every bookie timed out).
func (r *ReadHandle) longPoll(ctx context.Context, md *Metadata, prev base.EntryID) (base.EntryID, error) {
	c := r.c
	op := &longPollOp{ledger: r.id, dig: r.dig, q: newEventQueue[longPollEvent]()}
	defer op.q.close()
	ens := md.LastSegment().Bookies
	timeoutMs := c.opts.LongPollTimeout.Milliseconds()
	if dl, ok := ctx.Deadline(); ok {
		timeoutMs = max(min(timeoutMs, time.Until(dl).Milliseconds()), 1)
	}
	type sent struct {
		conn *conn
		req  *request
		txn  uint64
	}
	reqs := make([]sent, 0, len(ens))
	defer func() {
		for _, s := range reqs {
			s.conn.cancel(s.req, s.txn, context.Canceled)
		}
	}()
	for i, b := range ens {
		q := newRequest()
		q.v3 = true
		q.bookie, q.index, q.target = b, i, op
		q.deadline = c.pool.deadline(time.Duration(timeoutMs)*time.Millisecond + c.opts.ReadTimeout)
		ledger := r.id
		q.v3Build = func(dst []byte, txn uint64) []byte {
			req := bk.Request{
				Header:  bk.BKPacketHeader{Version: bk.VersionThree, Operation: bk.OperationReadEntry, TxnID: txn},
				HasRead: true,
				Read: bk.ReadRequest{LedgerID: ledger, EntryID: bk.LastAddConfirmed,
					PreviousLAC: int64(prev), HasPreviousLAC: true, TimeOut: timeoutMs, HasTimeOut: true},
			}
			return req.AppendFrame(dst)
		}
		cn := c.pool.get(b, bk.ProtocolV3, r.id)
		if txn := cn.send(q); txn != 0 {
			reqs = append(reqs, sent{conn: cn, req: q, txn: txn})
		}
	}
	best := base.InvalidEntry
	answered, unsupported := 0, 0
	var lastErr error
	var evs []longPollEvent
	for answered < len(ens) {
		select {
		case <-op.q.signal:
		case <-ctx.Done():
			return best, ctx.Err()
		}
		evs = op.q.drain(evs[:0])
		for _, ev := range evs {
			answered++
			if ev.unsupported {
				unsupported++
			}
			if ev.err != nil {
				lastErr = ev.err
				continue
			}
			best = max(best, ev.lac)
		}
		if best > prev {
			return best, nil
		}
	}
	if unsupported == len(ens) {
		return best, lastErr
	}
	if best == base.InvalidEntry && lastErr != nil {
		return best, lastErr
	}
	return best, nil
}
