package managedledger

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/metastore"
)

// cursor implements Cursor.
//
// State: the mark-delete position (everything up to it acknowledged), the
// individually acknowledged positions beyond it (an ackSet), the
// acknowledged indexes of partially acknowledged batch entries, and the read
// position. Acknowledgements change memory at once and are persisted in the
// background (persist.go), at most MarkDeleteRateLimit times a second.
//
// Reads: one read is in progress per cursor at a time. ReadEntriesOrWait
// records the request; a single driver (the caller, the goroutine that
// finished a ledger read, or the deliverer of an add that woke the waiting
// cursor) serves requests in a loop, so that a callback that asks for the
// next batch does not recurse and the entry slice handed to one callback is
// reused only after it returned.
type cursor struct {
	ml      *managedLedger
	name    string
	durable bool
	path    string

	// shared is what the managed ledger needs of the cursor, guarded by
	// ml.mu.
	shared struct {
		active      bool
		closed      bool
		deleted     bool
		readPos     base.Position
		persistedMD base.Position
	}

	mu struct {
		sync.Mutex
		md       base.Position
		acks     ackSet
		batches  map[base.Position]*batchAck
		readPos  base.Position
		readGen  uint64
		closed   bool
		consumed int64

		// The read request and its driver.
		hasReq  bool
		req     readReq
		running bool // a driver is serving requests
		waiting bool // registered in ml.mu.waiters
		inMiss  bool // the request is being read from the ledger layer

		// Persistence scheduling (persist.go).
		dirty       bool
		scheduled   bool
		timer       *time.Timer
		lastPersist time.Time
		persistErr  error
	}

	// Owned by the read driver.
	readBuf []Entry

	persistMu sync.Mutex
	p         persistState // guarded by persistMu
}

type readReq struct {
	max      int
	maxBytes int64
	cb       ReadCallback
	noWait   bool
}

var _ CursorControl = (*cursor)(nil)

func (c *cursor) Name() string  { return c.name }
func (c *cursor) Durable() bool { return c.durable }

// newCursor makes a cursor at mark-delete position md, registered with the
// managed ledger (ml.mu held).
func (ml *managedLedger) newCursorLocked(name string, durable bool, md base.Position) *cursor {
	c := &cursor{ml: ml, name: name, durable: durable}
	if durable {
		c.path = ml.path + "/" + encodeCursorName(name)
	}
	c.p.nodeLedger = -1
	c.mu.lastPersist = time.Now() // the rate limit starts now
	c.mu.md = md
	c.mu.readPos = ml.nextLocked(md)
	c.shared.active = true
	c.shared.readPos = c.mu.readPos
	c.shared.persistedMD = md
	ml.mu.cursors = append(ml.mu.cursors, c)
	ml.updateCursorLocked()
	return c
}

// ---- Reading ----

func (c *cursor) ReadEntriesOrWait(max int, maxBytes int64, cb ReadCallback) {
	c.request(readReq{max: max, maxBytes: maxBytes, cb: cb})
}

// syncRead collects the result of a ReadEntries.
type syncRead struct {
	entries []Entry
	err     error
	done    chan struct{}
}

func (s *syncRead) ReadComplete(entries []Entry, err error) {
	s.entries = append([]Entry(nil), entries...)
	s.err = err
	close(s.done)
}

func (c *cursor) ReadEntries(ctx context.Context, max int, maxBytes int64) ([]Entry, error) {
	s := &syncRead{done: make(chan struct{})}
	c.request(readReq{max: max, maxBytes: maxBytes, cb: s, noWait: true})
	select {
	case <-s.done:
		return s.entries, s.err
	case <-ctx.Done():
		// The read completes in the background; release what it returns.
		go func() {
			<-s.done
			releaseEntries(s.entries)
		}()
		return nil, ctx.Err()
	}
}

func (c *cursor) request(req readReq) {
	if req.max <= 0 {
		req.max = 1
	}
	c.mu.Lock()
	var err error
	switch {
	case c.mu.closed:
		err = fmt.Errorf("%w: %s", ErrCursorClosed, c.name)
	case c.mu.hasReq:
		err = fmt.Errorf("%w: %s", ErrConcurrentRead, c.name)
	}
	if err != nil {
		c.mu.Unlock()
		req.cb.ReadComplete(nil, err)
		return
	}
	c.mu.hasReq, c.mu.req = true, req
	if c.mu.running {
		c.mu.Unlock() // the driver serves it when its callback returns
		return
	}
	c.mu.running = true
	c.driveLocked()
	c.mu.Unlock()
}

// driveLocked serves read requests until none is left, one needs to wait
// for an add, or one went to the ledger layer (whose goroutine continues
// driving). c.mu is held, and c.mu.running set by the caller.
func (c *cursor) driveLocked() {
	for c.mu.hasReq && !c.mu.closed {
		req := c.mu.req
		entries, miss := c.collectLocked(req)
		switch {
		case len(entries) > 0:
			c.mu.hasReq = false
			c.mu.req = readReq{}
			c.mu.Unlock()
			req.cb.ReadComplete(entries, nil)
			clear(entries)
			c.mu.Lock()
		case miss != nil:
			c.mu.inMiss = true
			go c.readMiss(req, *miss)
			return // running stays set: readMiss drives next
		case req.noWait:
			c.mu.hasReq = false
			c.mu.req = readReq{}
			c.mu.Unlock()
			req.cb.ReadComplete(nil, nil)
			c.mu.Lock()
		default:
			// Registered as a waiter by collectLocked.
			c.mu.running = false
			return
		}
	}
	if c.mu.closed && c.mu.hasReq {
		req := c.mu.req
		c.mu.hasReq, c.mu.req = false, readReq{}
		c.mu.Unlock()
		req.cb.ReadComplete(nil, fmt.Errorf("%w: %s", ErrCursorClosed, c.name))
		c.mu.Lock()
	}
	c.mu.running = false
}

// missPlan is a range to read from the ledger layer.
type missPlan struct {
	ledger      base.LedgerID
	first, last base.EntryID
	gen         uint64
}

// collectLocked gathers the entries of req available in the cache from the
// read position on, skipping acknowledged ones and crossing ledgers. With
// none there, it returns the range to read from the ledger layer; with
// nothing confirmed beyond the read position, it registers the cursor as a
// waiter (unless req.noWait).
func (c *cursor) collectLocked(req readReq) ([]Entry, *missPlan) {
	ml := c.ml
	out := c.readBuf[:0]
	var miss *missPlan
	bytes := int64(0)
	ml.mu.Lock()
	lc := ml.mu.lastConfirmed
	pos := c.skipAckedLocked(ml.normalizeLocked(c.mu.readPos))
	for len(out) < req.max && !lc.Less(pos) {
		b := ml.cache.get(pos)
		if b == nil {
			if len(out) == 0 {
				n := ml.ledgerEntriesLocked(pos.Ledger)
				last := pos.Entry + base.EntryID(max(req.max, ml.f.opts.ReadBatchSize)) - 1
				last = min(last, base.EntryID(n)-1)
				if pos.Ledger == lc.Ledger {
					last = min(last, lc.Entry)
				}
				miss = &missPlan{ledger: pos.Ledger, first: pos.Entry, last: last, gen: c.mu.readGen}
			}
			break
		}
		if len(out) > 0 && req.maxBytes > 0 && bytes+int64(b.Len()) > req.maxBytes {
			b.Release()
			break
		}
		out = append(out, Entry{Pos: pos, Data: b})
		bytes += int64(b.Len())
		pos = c.skipAckedLocked(ml.normalizeLocked(base.Position{Ledger: pos.Ledger, Entry: pos.Entry + 1}))
	}
	c.mu.readPos = pos
	c.mu.consumed += int64(len(out))
	c.shared.readPos = pos
	if len(out) == 0 && miss == nil && !req.noWait && !c.mu.waiting {
		c.mu.waiting = true
		ml.mu.waiters = append(ml.mu.waiters, c)
	}
	if len(out) > 0 {
		ml.updateCursorLocked()
	}
	ml.mu.Unlock()
	c.readBuf = out
	return out, miss
}

// skipAckedLocked moves p past acknowledged entries (c.mu and ml.mu held).
func (c *cursor) skipAckedLocked(p base.Position) base.Position {
	ml := c.ml
	if !c.mu.md.Less(p) {
		p = ml.normalizeLocked(ml.nextLocked(c.mu.md))
	}
	for {
		end, ok := c.mu.acks.runEnd(p)
		if !ok {
			return p
		}
		p = ml.normalizeLocked(base.Position{Ledger: p.Ledger, Entry: end + 1})
	}
}

// readMiss reads a range from the ledger layer for req and goes on driving.
func (c *cursor) readMiss(req readReq, plan missPlan) {
	ml := c.ml
	les, err := ml.readRange(ml.ctx, plan.ledger, plan.first, plan.last)
	c.mu.Lock()
	c.mu.inMiss = false
	if err == nil && c.mu.readGen != plan.gen {
		// The cursor was moved meanwhile: serve the request afresh.
		for _, le := range les {
			le.Data.Release()
		}
		c.driveLocked()
		c.mu.Unlock()
		return
	}
	if err != nil {
		c.mu.hasReq, c.mu.req = false, readReq{}
		c.mu.Unlock()
		req.cb.ReadComplete(nil, err)
		c.mu.Lock()
		c.driveLocked()
		c.mu.Unlock()
		return
	}
	out := c.readBuf[:0]
	bytes := int64(0)
	ml.mu.Lock()
	pos := c.skipAckedLocked(ml.normalizeLocked(c.mu.readPos))
	for _, le := range les {
		p := base.Position{Ledger: plan.ledger, Entry: le.ID}
		switch {
		case p != pos, len(out) >= req.max,
			len(out) > 0 && req.maxBytes > 0 && bytes+int64(le.Data.Len()) > req.maxBytes:
			le.Data.Release()
			continue
		}
		out = append(out, Entry{Pos: p, Data: le.Data})
		bytes += int64(le.Data.Len())
		pos = c.skipAckedLocked(ml.normalizeLocked(base.Position{Ledger: p.Ledger, Entry: p.Entry + 1}))
	}
	c.mu.readPos = pos
	c.mu.consumed += int64(len(out))
	c.shared.readPos = pos
	ml.updateCursorLocked()
	ml.mu.Unlock()
	c.readBuf = out
	if len(out) == 0 {
		// Everything read was acknowledged meanwhile: look again.
		c.driveLocked()
		c.mu.Unlock()
		return
	}
	c.mu.hasReq, c.mu.req = false, readReq{}
	c.mu.Unlock()
	req.cb.ReadComplete(out, nil)
	clear(out)
	c.mu.Lock()
	c.driveLocked()
	c.mu.Unlock()
}

// entriesAvailable is called (no lock held) when an add was delivered while
// the cursor waited.
func (c *cursor) entriesAvailable() {
	c.mu.Lock()
	if !c.mu.waiting || c.mu.running {
		c.mu.Unlock()
		return
	}
	c.mu.waiting = false
	c.mu.running = true
	c.driveLocked()
	c.mu.Unlock()
}

func (c *cursor) CancelPendingRead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.mu.hasReq || c.mu.req.noWait {
		return false
	}
	switch {
	case c.mu.waiting && !c.mu.running:
		// Parked until an add.
		c.unwaitLocked()
	case c.mu.running && !c.mu.inMiss && !c.mu.waiting:
		// Registered while the driver runs an earlier read's callback (the
		// lock is free only then): not served yet, so it can go. The
		// driver finds no request when the callback returns.
	default:
		return false // being read from the ledger layer: it will complete
	}
	c.mu.hasReq, c.mu.req = false, readReq{}
	return true
}

// unwaitLocked removes the cursor from the waiters (c.mu held).
func (c *cursor) unwaitLocked() {
	if !c.mu.waiting {
		return
	}
	c.mu.waiting = false
	ml := c.ml
	ml.mu.Lock()
	ml.mu.waiters = slices.DeleteFunc(ml.mu.waiters, func(x *cursor) bool { return x == c })
	ml.mu.Unlock()
}

// kickLocked re-serves a waiting request after the read position moved.
func (c *cursor) kickLocked() {
	if c.mu.waiting && !c.mu.running {
		c.unwaitLocked()
		c.mu.running = true
		c.driveLocked()
	}
}

func (c *cursor) ReplayEntries(ctx context.Context, positions []base.Position) ([]Entry, error) {
	ps := slices.Clone(positions)
	slices.SortFunc(ps, base.Position.Compare)
	ps = slices.Compact(ps)
	ml := c.ml
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrCursorClosed, c.name)
	}
	ml.mu.Lock()
	keep := ps[:0]
	for _, p := range ps {
		if c.mu.md.Less(p) && !c.mu.acks.contains(p) && ml.validLocked(p) && !ml.mu.lastConfirmed.Less(p) {
			keep = append(keep, p)
		}
	}
	ml.mu.Unlock()
	c.mu.Unlock()
	out := make([]Entry, 0, len(keep))
	for i := 0; i < len(keep); {
		p := keep[i]
		if b := ml.cache.get(p); b != nil {
			out = append(out, Entry{Pos: p, Data: b})
			i++
			continue
		}
		// Read the run of consecutive misses of this ledger at once.
		j := i + 1
		for j < len(keep) && keep[j].Ledger == p.Ledger && keep[j].Entry == keep[j-1].Entry+1 && j-i < ml.f.opts.ReadBatchSize {
			j++
		}
		les, err := ml.readRange(ctx, p.Ledger, p.Entry, keep[j-1].Entry)
		if err != nil {
			releaseEntries(out)
			return nil, err
		}
		for _, le := range les {
			out = append(out, Entry{Pos: base.Position{Ledger: p.Ledger, Entry: le.ID}, Data: le.Data})
		}
		i = j
	}
	return out, nil
}

func (c *cursor) ReadPosition() base.Position {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ml.mu.Lock()
	defer c.ml.mu.Unlock()
	return c.skipAckedLocked(c.ml.normalizeLocked(c.mu.readPos))
}

func (c *cursor) MarkDeletePosition() base.Position {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.md
}

// ---- Acknowledging ----

func (c *cursor) MarkDelete(pos base.Position) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return fmt.Errorf("%w: %s", ErrCursorClosed, c.name)
	}
	ml := c.ml
	ml.mu.Lock()
	if ml.mu.lastConfirmed.Less(pos) {
		ml.mu.Unlock()
		return fmt.Errorf("%w: mark-delete %v beyond the last confirmed entry %v of %s", ErrInvalidPosition, pos, ml.mu.lastConfirmed, ml.name)
	}
	if !c.mu.md.Less(pos) {
		ml.mu.Unlock()
		return nil
	}
	c.mu.md = pos
	c.advanceLocked()
	ml.mu.Unlock()
	c.changedLocked()
	return nil
}

func (c *cursor) Delete(positions ...base.Position) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return fmt.Errorf("%w: %s", ErrCursorClosed, c.name)
	}
	ml := c.ml
	ml.mu.Lock()
	var bad error
	changed := false
	for _, p := range positions {
		if !c.mu.md.Less(p) {
			continue
		}
		if ml.mu.lastConfirmed.Less(p) || !ml.validLocked(p) {
			if bad == nil {
				bad = fmt.Errorf("%w: delete %v in %s (last confirmed %v)", ErrInvalidPosition, p, ml.name, ml.mu.lastConfirmed)
			}
			continue
		}
		if c.mu.acks.add(p) {
			changed = true
		}
		delete(c.mu.batches, p)
	}
	if changed {
		c.advanceLocked()
	}
	ml.mu.Unlock()
	if changed {
		c.changedLocked()
	}
	return bad
}

// advanceLocked moves the mark-delete position over acknowledged entries
// that follow it, and drops the state it covers (c.mu and ml.mu held).
func (c *cursor) advanceLocked() {
	ml := c.ml
	for c.mu.acks.Len() > 0 {
		nx := ml.nextLocked(c.mu.md)
		end, ok := c.mu.acks.runEnd(nx)
		if !ok {
			break
		}
		c.mu.md = base.Position{Ledger: nx.Ledger, Entry: end}
		c.mu.acks.removeThrough(c.mu.md)
	}
	c.mu.acks.removeThrough(c.mu.md)
	for p := range c.mu.batches {
		if !c.mu.md.Less(p) {
			delete(c.mu.batches, p)
		}
	}
	if next := ml.nextLocked(c.mu.md); c.mu.readPos.Less(next) {
		c.mu.readPos = next
		c.shared.readPos = next
		ml.updateCursorLocked()
	}
}

func (c *cursor) DeleteBatchIndexes(pos base.Position, batchSize int, indexes []int) error {
	if batchSize <= 0 {
		return fmt.Errorf("%w: batch size %d", ErrInvalidPosition, batchSize)
	}
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrCursorClosed, c.name)
	}
	if !c.mu.md.Less(pos) || c.mu.acks.contains(pos) {
		c.mu.Unlock()
		return nil
	}
	c.ml.mu.Lock()
	valid := c.ml.validLocked(pos) && !c.ml.mu.lastConfirmed.Less(pos)
	c.ml.mu.Unlock()
	if !valid {
		c.mu.Unlock()
		return fmt.Errorf("%w: batch ack of %v in %s", ErrInvalidPosition, pos, c.ml.name)
	}
	ba := c.mu.batches[pos]
	if ba == nil || ba.size != batchSize {
		ba = newBatchAck(batchSize)
		if c.mu.batches == nil {
			c.mu.batches = make(map[base.Position]*batchAck)
		}
		c.mu.batches[pos] = ba
	}
	for _, i := range indexes {
		ba.set(i)
	}
	complete := ba.n == ba.size
	c.mu.Unlock()
	if complete {
		return c.Delete(pos)
	}
	c.mu.Lock()
	c.changedLocked()
	c.mu.Unlock()
	return nil
}

func (c *cursor) AckedBatchIndexes(pos base.Position) []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ba := c.mu.batches[pos]; ba != nil {
		return ba.indexes()
	}
	return nil
}

func (c *cursor) IsAcknowledged(pos base.Position) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.mu.md.Less(pos) || c.mu.acks.contains(pos)
}

// ---- Moving ----

func (c *cursor) Seek(pos base.Position) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ml := c.ml
	ml.mu.Lock()
	if next := ml.nextLocked(c.mu.md); pos.Less(next) {
		pos = next
	}
	c.mu.readPos = pos
	c.mu.readGen++
	c.shared.readPos = pos
	ml.updateCursorLocked()
	ml.mu.Unlock()
	c.kickLocked()
}

func (c *cursor) Rewind() {
	c.mu.Lock()
	defer c.mu.Unlock()
	ml := c.ml
	ml.mu.Lock()
	c.mu.readPos = ml.nextLocked(c.mu.md)
	c.mu.readGen++
	c.shared.readPos = c.mu.readPos
	ml.updateCursorLocked()
	ml.mu.Unlock()
	c.kickLocked()
}

func (c *cursor) ResetCursor(ctx context.Context, pos base.Position) error {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrCursorClosed, c.name)
	}
	ml := c.ml
	ml.mu.Lock()
	if first := ml.firstPositionLocked(); pos.Less(first) {
		pos = first
	}
	if end := ml.nextLocked(ml.mu.lastConfirmed); end.Less(pos) {
		pos = end
	}
	pos = ml.normalizeLocked(pos)
	c.mu.md = base.Position{Ledger: pos.Ledger, Entry: pos.Entry - 1}
	c.mu.acks = ackSet{}
	c.mu.batches = nil
	c.mu.readPos = pos
	c.mu.readGen++
	c.shared.readPos = pos
	ml.updateCursorLocked()
	ml.mu.Unlock()
	c.changedLocked()
	c.kickLocked()
	c.mu.Unlock()
	if c.durable {
		return c.Flush(ctx)
	}
	return nil
}

func (c *cursor) SkipEntries(ctx context.Context, n int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return fmt.Errorf("%w: %s", ErrCursorClosed, c.name)
	}
	ml := c.ml
	ml.mu.Lock()
	lc := ml.mu.lastConfirmed
	p := ml.normalizeLocked(ml.nextLocked(c.mu.md))
	for n > 0 && !lc.Less(p) {
		if end, ok := c.mu.acks.runEnd(p); ok {
			p = ml.normalizeLocked(base.Position{Ledger: p.Ledger, Entry: end + 1})
			continue
		}
		// An unacknowledged run from p: up to the next acknowledged entry,
		// the ledger's end, or n entries.
		last := base.EntryID(ml.ledgerEntriesLocked(p.Ledger)) - 1
		if p.Ledger == lc.Ledger {
			last = min(last, lc.Entry)
		}
		last = min(last, p.Entry+base.EntryID(n)-1)
		if na, ok := c.mu.acks.nextMember(p); ok && na <= last {
			last = na - 1
		}
		n -= c.mu.acks.addRange(p.Ledger, p.Entry, last)
		p = ml.normalizeLocked(base.Position{Ledger: p.Ledger, Entry: last + 1})
	}
	c.advanceLocked()
	ml.mu.Unlock()
	c.changedLocked()
	return nil
}

func (c *cursor) Backlog() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ml.mu.Lock()
	defer c.ml.mu.Unlock()
	return max(0, c.ml.entriesAfterLocked(c.mu.md)-c.mu.acks.Len())
}

// SetActive marks the cursor active (it has consumers: the cache keeps
// what it has yet to read) or not. New cursors are active.
func (c *cursor) SetActive(active bool) {
	ml := c.ml
	ml.mu.Lock()
	c.shared.active = active && !c.shared.closed
	ml.updateCursorLocked()
	ml.mu.Unlock()
}

// ---- Closing ----

// stop marks the cursor closed, stops its persist timer and fails a read
// waiting for entries (a read in progress fails when it ends). keepDirty
// leaves the state to persist for the caller. It reports whether the
// cursor was open.
func (c *cursor) stop(keepDirty bool) bool {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return false
	}
	c.mu.closed = true
	if !keepDirty {
		c.mu.dirty = false
	}
	c.unwaitLocked()
	var req readReq
	had := c.mu.hasReq && !c.mu.running
	if had {
		req = c.mu.req
		c.mu.hasReq, c.mu.req = false, readReq{}
	}
	if c.mu.timer != nil {
		c.mu.timer.Stop()
	}
	c.mu.Unlock()
	if had {
		req.cb.ReadComplete(nil, fmt.Errorf("%w: %s", ErrCursorClosed, c.name))
	}
	return true
}

func (c *cursor) Close(ctx context.Context) error {
	if !c.stop(true) {
		return nil
	}
	var err error
	if c.durable {
		err = c.persistFinal(ctx)
	}
	ml := c.ml
	ml.mu.Lock()
	c.shared.closed, c.shared.active = true, false
	if !c.durable {
		ml.mu.cursors = slices.DeleteFunc(ml.mu.cursors, func(x *cursor) bool { return x == c })
	}
	ml.updateCursorLocked()
	ml.mu.Unlock()
	return err
}

// ---- Names ----

// encodeCursorName makes a cursor name one path element, as Pulsar encodes
// names (metastore.EncodeName); decodeCursorName reverses it.
func encodeCursorName(name string) string { return metastore.EncodeName(name) }

func decodeCursorName(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; ch {
		case '+':
			b.WriteByte(' ')
		case '%':
			if i+2 >= len(s) {
				return "", fmt.Errorf("%w: cursor node name %q", ErrCorruptMetadata, s)
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf("%w: cursor node name %q", ErrCorruptMetadata, s)
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			b.WriteByte(ch)
		}
	}
	return b.String(), nil
}
