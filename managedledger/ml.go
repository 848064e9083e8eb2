package managedledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/metastore"
)

// managedLedger implements ManagedLedger.
//
// # The add pipeline
//
// Adds are queued in call order (queue) and handed to the current ledger at
// once, many in flight. A completion marks its op done; whoever completes
// the op at the head of the queue delivers every done op from the head, in
// order, outside the lock (a combiner: one deliverer at a time), so
// callbacks arrive in call order even when they complete on different
// ledgers' goroutines across a rollover.
//
// Rollover is decided when an add is handed over: once the current ledger is
// full, the next one (created ahead of need and already registered in the
// metadata) becomes current and the old one is closed when its last add has
// been delivered. If no next ledger is ready, adds wait in the queue
// (state opWaiting) until one is.
//
// When an add fails, its ledger is marked failed, every later ledger this
// instance wrote to is abandoned (none of its entries was delivered: they
// all come after the failed one), and every op from the failed one on is
// re-sent, in order, to a fresh ledger once all of them have returned from
// the broken ledgers. The failed ledger is closed (sealed below the failed
// entry); abandoned ledgers are closed, taken out of the list and deleted.
// So the confirmed sequence has neither gaps nor duplicates. A fenced ledger
// (ErrFenced) means another owner took over: the managed ledger is fenced and
// every pending add fails.
//
// # Locks
//
// Lock order: cursor.persistMu, cursor.mu, managedLedger.submitMu,
// managedLedger.mu, managedLedger.readsMu, entryCache.mu. submitMu
// serialises handing adds to ledgers (so ledgers see them in queue order)
// and is held across WriteLedger.AddEntry, which may call back at once; a
// completion takes only mu, and work that needs submitMu from a completion
// (re-sending) runs on a new goroutine. No lock is held across metadata or
// ledger I/O other than submitMu across AddEntry.
type managedLedger struct {
	f     *MLFactory
	name  string
	path  string
	cfg   Config
	log   *slog.Logger
	cache *entryCache
	// ctx is the factory's: cancelled when the factory closes.
	ctx context.Context

	submitMu sync.Mutex
	mu       struct {
		sync.Mutex
		state   mlState
		failErr error // why the state is fenced

		ledgers []ledgerMeta // the ledger list, ascending
		props   map[string]string

		// Metadata writes: seq counts changes, persisted is the last seq
		// written; one writer goroutine at a time.
		metaVersion   int64
		metaSeq       uint64
		metaPersisted uint64
		metaWriting   bool
		metaErr       error
		metaWaiters   []metaWaiter
		toDelete      []pendingDelete // trimmed or abandoned ledgers

		writers  []*writeLedger // ledgers this instance writes or drains
		current  *writeLedger   // where adds go; nil while none is usable
		ahead    *writeLedger   // created ahead, not yet current
		creating bool           // a ledger creation is under way

		queue      opQueue
		waitingOps int // ops in the queue not handed to a ledger
		// resendAfterSeq: waiting ops are re-sent only once the metadata
		// recording the broken ledgers' fate is persisted.
		resendAfterSeq uint64
		delivering     bool
		deliverBuf     []*addOp
		wakeBuf        []*cursor

		lastConfirmed     base.Position
		entriesAdded      int64
		lastLedgerCreated time.Time

		cursors   []*cursor // open or recovered, durable and not
		anyActive bool      // a cursor is active (kept by updateCursorLocked)
		waiters   []*cursor // cursors with a pending ReadEntriesOrWait

		handles map[base.LedgerID]ReadLedger // read handles of closed ledgers

		trimming  bool
		trimAgain bool
		drained   chan struct{} // closed when the queue empties (Close waits)
	}

	readsMu sync.Mutex
	reads   []*pendingRead // single-flight ledger reads
}

type mlState uint8

const (
	mlOpen mlState = iota
	mlClosing
	mlClosed
	mlFenced
)

func (s mlState) String() string {
	switch s {
	case mlOpen:
		return "LedgerOpened"
	case mlClosing:
		return "Closing"
	case mlClosed:
		return "Closed"
	case mlFenced:
		return "Fenced"
	}
	return "Unknown"
}

type metaWaiter struct {
	seq uint64
	fn  func(error)
}

type pendingDelete struct {
	id  base.LedgerID
	seq uint64 // delete once the metadata at seq is persisted
}

// writeLedger is a ledger this instance writes to.
type writeLedger struct {
	wl             WriteLedger
	id             base.LedgerID
	submitted      int64 // adds handed to it
	submittedBytes int64
	confirmed      int64 // adds it confirmed
	delivered      int64 // of those, delivered to callers
	inflight       int   // handed and not yet called back
	failed         bool  // an add failed: sealed, will be closed
	abandoned      bool  // after a failed ledger: will be deleted
	closing        bool
	registered     bool   // in the persisted metadata
	metaSeq        uint64 // the metadata write that registers it
	since          time.Time
}

func (w *writeLedger) broken() bool { return w.failed || w.abandoned }

type opState uint8

const (
	opWaiting  opState = iota // not handed to a ledger yet (or to be re-sent)
	opInflight                // handed to w
	opDone                    // confirmed at (w.id, entry)
	opFailed                  // failed for good with err
)

// addOp is one pending add. Ops are pooled per factory.
type addOp struct {
	ml    *managedLedger
	data  *bufs.Buf
	cb    AddEntryCallback
	w     *writeLedger
	entry base.EntryID
	pos   base.Position
	size  int64
	state opState
	err   error
}

// opQueue is a FIFO ring of ops.
type opQueue struct {
	buf        []*addOp
	head, size int
}

func (q *opQueue) len() int { return q.size }

func (q *opQueue) at(i int) *addOp { return q.buf[(q.head+i)%len(q.buf)] }

func (q *opQueue) push(op *addOp) {
	if q.size == len(q.buf) {
		nb := make([]*addOp, max(16, 2*len(q.buf)))
		for i := 0; i < q.size; i++ {
			nb[i] = q.at(i)
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.size)%len(q.buf)] = op
	q.size++
}

func (q *opQueue) pop() *addOp {
	op := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.size--
	if q.size == 0 && len(q.buf) > 1024 {
		q.buf, q.head = nil, 0 // give a burst's memory back
	}
	return op
}

func (ml *managedLedger) Name() string { return ml.name }

func (ml *managedLedger) now() time.Time { return ml.f.opts.Now() }

func (ml *managedLedger) ledgerConfig(cursor string) LedgerConfig {
	custom := map[string][]byte{
		"component":             []byte("managed-ledger"),
		"pulsar/managed-ledger": []byte(ml.name),
	}
	if cursor != "" {
		custom["pulsar/cursor"] = []byte(cursor)
	}
	return LedgerConfig{
		EnsembleSize: ml.cfg.EnsembleSize, WriteQuorum: ml.cfg.WriteQuorum, AckQuorum: ml.cfg.AckQuorum,
		Password: ml.cfg.Password, Custom: custom,
	}
}

// ---- Adding entries ----

func (ml *managedLedger) AddEntry(data *bufs.Buf, cb AddEntryCallback) {
	op := ml.f.getOp()
	op.ml, op.data, op.cb, op.size = ml, data, cb, int64(data.Len())
	now := ml.now()

	ml.submitMu.Lock()
	ml.mu.Lock()
	if err := ml.writableErrLocked(); err != nil {
		ml.mu.Unlock()
		ml.submitMu.Unlock()
		data.Release()
		ml.f.putOp(op)
		cb.AddEntryComplete(base.Position{}, err)
		return
	}
	ml.mu.queue.push(op)
	w := ml.pickLedgerLocked(now)
	if w != nil && ml.mu.waitingOps == 0 {
		ml.handLocked(op, w)
		ml.maybeCreateAheadLocked(w, now)
	} else {
		op.state = opWaiting
		ml.mu.waitingOps++
		w = nil
	}
	ml.mu.Unlock()
	if w != nil {
		w.wl.AddEntry(op.data.Retain(), op)
	}
	ml.submitMu.Unlock()
}

// activeLocked: adds are accepted (open) or still being completed
// (closing): ledgers may be created and adds re-sent.
func (ml *managedLedger) activeLocked() bool {
	return ml.mu.state == mlOpen || ml.mu.state == mlClosing
}

func (ml *managedLedger) writableErrLocked() error {
	switch ml.mu.state {
	case mlOpen:
		return nil
	case mlFenced:
		return ml.mu.failErr
	}
	return fmt.Errorf("%w: managed ledger %s", ErrClosed, ml.name)
}

func (ml *managedLedger) handLocked(op *addOp, w *writeLedger) {
	op.w, op.state = w, opInflight
	w.inflight++
	w.submitted++
	w.submittedBytes += op.size
}

// pickLedgerLocked returns the ledger the next add goes to (rolling over
// if the current one is full), or nil if none is ready; it starts creating
// the next ledger when the current one nears its end.
func (ml *managedLedger) pickLedgerLocked(now time.Time) *writeLedger {
	w := ml.mu.current
	if w != nil && ml.fullLocked(w, now) {
		ml.rollLocked(now)
		w = ml.mu.current
	}
	if w != nil {
		ml.maybeCreateAheadLocked(w, now)
	} else if ml.mu.ahead == nil && !ml.mu.creating {
		ml.startCreateLocked() // an earlier creation failed: try again
	}
	return w
}

// maybeCreateAheadLocked starts creating the next ledger once the current
// one nears its end.
func (ml *managedLedger) maybeCreateAheadLocked(w *writeLedger, now time.Time) {
	if ml.mu.ahead == nil && !ml.mu.creating && ml.nearFullLocked(w, now) {
		ml.startCreateLocked()
	}
}

// fullLocked is Pulsar's currentLedgerIsFull: the entry or size quota or
// the maximum age reached, and the minimum age passed.
func (ml *managedLedger) fullLocked(w *writeLedger, now time.Time) bool {
	age := now.Sub(w.since)
	quota := w.submitted >= ml.cfg.MaxEntriesPerLedger || w.submittedBytes >= ml.cfg.MaxSizePerLedgerBytes
	expired := w.submitted > 0 && age >= ml.cfg.MaxRolloverTime
	if !quota && !expired {
		return false
	}
	return ml.cfg.MinRolloverTime <= 0 || age >= ml.cfg.MinRolloverTime
}

func (ml *managedLedger) nearFullLocked(w *writeLedger, now time.Time) bool {
	f := ml.cfg.CreateAheadFraction
	return float64(w.submitted) >= f*float64(ml.cfg.MaxEntriesPerLedger) ||
		float64(w.submittedBytes) >= f*float64(ml.cfg.MaxSizePerLedgerBytes) ||
		(w.submitted > 0 && float64(now.Sub(w.since)) >= f*float64(ml.cfg.MaxRolloverTime))
}

// rollLocked retires the current ledger and makes the ledger created ahead
// current, if it is ready.
func (ml *managedLedger) rollLocked(now time.Time) {
	old := ml.mu.current
	ml.mu.current = nil
	if a := ml.mu.ahead; a != nil && a.registered {
		ml.mu.ahead = nil
		ml.makeCurrentLocked(a, now)
	} else if a == nil && !ml.mu.creating {
		ml.startCreateLocked()
	}
	if old != nil {
		ml.maybeCloseLocked(old)
	}
}

func (ml *managedLedger) makeCurrentLocked(w *writeLedger, now time.Time) {
	w.since = now
	ml.mu.current = w
	ml.mu.lastLedgerCreated = now
	if ml.mu.lastConfirmed.Entry < 0 && ml.mu.queue.len() == 0 {
		// Nothing confirmed anywhere yet: report the new ledger, as Pulsar
		// does for an empty managed ledger.
		ml.mu.lastConfirmed = base.Position{Ledger: w.id, Entry: -1}
	}
}

// startCreateLocked creates a ledger in the background; it becomes the
// ahead ledger once registered in the metadata, and current at once if
// there is none.
func (ml *managedLedger) startCreateLocked() {
	if !ml.activeLocked() {
		return
	}
	ml.mu.creating = true
	go ml.createLedger()
}

func (ml *managedLedger) createLedger() {
	wl, err := ml.f.bk.Create(ml.ctx, ml.ledgerConfig(""))
	ml.mu.Lock()
	ml.mu.creating = false
	if err != nil {
		ml.log.Warn("managedledger: creating a ledger failed", "ml", ml.name, "err", err)
		failed := false
		if ml.mu.current == nil && ml.mu.waitingOps > 0 {
			// Adds wait for this ledger: fail them, as Pulsar does (adds
			// still out on a broken ledger are re-sent when they return,
			// which tries again, as does the next add).
			ml.failWaitingLocked(fmt.Errorf("%w: %w", ErrNoLedger, err))
			failed = true
		}
		ml.mu.Unlock()
		if failed {
			ml.deliver()
		}
		return
	}
	if !ml.activeLocked() {
		ml.mu.Unlock()
		ml.discardLedger(wl)
		return
	}
	w := &writeLedger{wl: wl, id: wl.ID()}
	ml.mu.writers = append(ml.mu.writers, w)
	ml.mu.ledgers = append(ml.mu.ledgers, ledgerMeta{id: w.id, open: true})
	ml.mu.ahead = w
	w.metaSeq = ml.requestMetaWriteLocked()
	ml.mu.Unlock()
}

// discardLedger closes and deletes a ledger this instance will not use.
func (ml *managedLedger) discardLedger(wl WriteLedger) {
	ctx := context.WithoutCancel(ml.ctx)
	_ = wl.Close(ctx)
	if err := ml.f.bk.Delete(ctx, wl.ID()); err != nil {
		ml.log.Warn("managedledger: deleting an unused ledger failed", "ml", ml.name, "ledger", wl.ID(), "err", err)
	}
}

// registeredLocked runs when the metadata naming ahead ledger w is
// persisted: w becomes usable.
func (ml *managedLedger) registeredLocked(w *writeLedger) (resend bool) {
	w.registered = true
	if ml.mu.current == nil && ml.mu.ahead == w {
		ml.mu.ahead = nil
		ml.makeCurrentLocked(w, ml.now())
		return ml.mu.waitingOps > 0
	}
	return false
}

// AddComplete is the ledger's completion of op.
func (op *addOp) AddComplete(entry base.EntryID, err error) {
	ml := op.ml
	ml.mu.Lock()
	w := op.w
	w.inflight--
	resend := false
	switch {
	case op.state == opFailed:
		// Failed already (the managed ledger was fenced): it stays failed
		// even if the ledger confirms it, since a new owner may not know
		// this ledger.
	case err == nil && !w.broken():
		op.entry, op.state = entry, opDone
		op.pos = base.Position{Ledger: w.id, Entry: entry}
		w.confirmed++
	case errors.Is(err, base.ErrFenced) && !w.broken():
		ml.fenceLocked(fmt.Errorf("%w: ledger %d of %s: %w", ErrFenced, w.id, ml.name, err))
	default:
		if !w.broken() {
			ml.log.Warn("managedledger: add failed; moving to a new ledger", "ml", ml.name, "ledger", w.id, "entry", entry, "err", err)
			ml.ledgerFailedLocked(w)
		}
		switch {
		case op.state == opFailed:
		case ml.mu.state != mlOpen:
			op.state, op.w, op.err = opFailed, nil, fmt.Errorf("%w: managed ledger %s: %w", ErrClosed, ml.name, err)
		default:
			op.state, op.w = opWaiting, nil
			ml.mu.waitingOps++
			ml.ensureLedgerLocked()
		}
		resend = true
	}
	if w.inflight == 0 {
		ml.maybeCloseLocked(w)
	}
	resend = resend && ml.readyToResendLocked()
	ml.mu.Unlock()
	if resend {
		go ml.resend()
	}
	ml.deliver()
}

// ledgerFailedLocked marks w failed and abandons every later ledger: their
// ops (all after the failed one) are re-sent.
func (ml *managedLedger) ledgerFailedLocked(w *writeLedger) {
	w.failed = true
	after := false
	for _, x := range ml.mu.writers {
		if x == w {
			after = true
			continue
		}
		if after && !x.broken() && x.submitted > 0 {
			// None of its entries was delivered; it leaves the list
			// before anything is re-sent, so that after a crash its
			// entries cannot appear beside their re-sent copies.
			x.abandoned = true
			if i := ml.ledgerIndexLocked(x.id); i >= 0 {
				ml.mu.ledgers = slices.Delete(ml.mu.ledgers, i, i+1)
			}
		}
	}
	ml.mu.resendAfterSeq = ml.requestMetaWriteLocked()
	if ml.mu.current != nil && ml.mu.current.broken() {
		ml.mu.current = nil
	}
	// Ops already confirmed by an abandoned ledger come after the failed
	// one: they must be re-sent too.
	for i := 0; i < ml.mu.queue.len(); i++ {
		op := ml.mu.queue.at(i)
		if op.state == opDone && op.w.abandoned {
			op.state, op.w = opWaiting, nil
			ml.mu.waitingOps++
		}
	}
	if ml.mu.current == nil {
		if a := ml.mu.ahead; a != nil && a.registered {
			ml.mu.ahead = nil
			ml.makeCurrentLocked(a, ml.now())
		} else if a == nil && !ml.mu.creating {
			ml.startCreateLocked()
		}
	}
}

// brokenLocked reports whether a failed or abandoned ledger is not closed
// yet. Re-sending waits for them: for their adds to come back (so that no
// op is in two ledgers' hands at once) and for the failed ledger to be
// sealed below its failed entry (so that recovery after a crash cannot
// find an entry there that was also re-sent).
func (ml *managedLedger) brokenLocked() bool {
	for _, w := range ml.mu.writers {
		if w.broken() {
			return true
		}
	}
	return false
}

func (ml *managedLedger) readyToResendLocked() bool {
	return ml.activeLocked() && ml.mu.waitingOps > 0 && ml.mu.current != nil && !ml.brokenLocked() &&
		ml.mu.metaPersisted >= ml.mu.resendAfterSeq
}

// resend hands the waiting ops, in queue order, to the current ledger.
func (ml *managedLedger) resend() {
	ml.submitMu.Lock()
	defer ml.submitMu.Unlock()
	ml.mu.Lock()
	if !ml.readyToResendLocked() {
		ml.mu.Unlock()
		return
	}
	now := ml.now()
	var ops []*addOp
	for i := 0; i < ml.mu.queue.len() && ml.mu.waitingOps > 0; i++ {
		op := ml.mu.queue.at(i)
		if op.state != opWaiting {
			continue
		}
		w := ml.pickLedgerLocked(now) // rolls over as AddEntry would
		if w == nil {
			break // the rest waits for the next ledger
		}
		ml.handLocked(op, w)
		ml.maybeCreateAheadLocked(w, now)
		ml.mu.waitingOps--
		ops = append(ops, op)
	}
	ml.mu.Unlock()
	for _, op := range ops {
		op.w.wl.AddEntry(op.data.Retain(), op)
	}
}

// ensureLedgerLocked starts creating a ledger if adds wait and none is
// current, ahead or being created.
func (ml *managedLedger) ensureLedgerLocked() {
	if ml.mu.waitingOps > 0 && ml.mu.current == nil && ml.mu.ahead == nil && !ml.mu.creating {
		ml.startCreateLocked()
	}
}

// failWaitingLocked fails every op not handed to a ledger.
func (ml *managedLedger) failWaitingLocked(err error) {
	for i := 0; i < ml.mu.queue.len(); i++ {
		if op := ml.mu.queue.at(i); op.state == opWaiting {
			op.state, op.err = opFailed, err
		}
	}
	ml.mu.waitingOps = 0
}

// fenceLocked: another owner took over. Every op not yet done fails.
func (ml *managedLedger) fenceLocked(err error) {
	if ml.mu.state == mlFenced || ml.mu.state == mlClosed {
		return
	}
	ml.log.Warn("managedledger: fenced", "ml", ml.name, "err", err)
	ml.mu.state = mlFenced
	ml.mu.failErr = err
	for i := 0; i < ml.mu.queue.len(); i++ {
		if op := ml.mu.queue.at(i); op.state != opDone {
			if op.state == opWaiting {
				ml.mu.waitingOps--
			}
			op.state, op.err = opFailed, err
		}
	}
	ml.mu.current, ml.mu.ahead = nil, nil
}

// maybeCloseLocked closes w once it is no longer current and everything it
// confirmed has been delivered.
func (ml *managedLedger) maybeCloseLocked(w *writeLedger) {
	if w == ml.mu.current || w == ml.mu.ahead || w.closing || w.inflight > 0 {
		return
	}
	if !w.abandoned && w.delivered < w.confirmed {
		return
	}
	w.closing = true
	go ml.closeWriter(w)
}

// closeWriter closes a retired ledger and records its final size in the
// metadata; an empty or abandoned one leaves the list and is deleted.
func (ml *managedLedger) closeWriter(w *writeLedger) {
	ctx := context.WithoutCancel(ml.ctx)
	err := w.wl.Close(ctx)
	if err != nil && !w.broken() && !errors.Is(err, base.ErrFenced) {
		ml.log.Warn("managedledger: closing a ledger failed", "ml", ml.name, "ledger", w.id, "err", err)
	}
	ml.mu.Lock()
	ml.mu.writers = slices.DeleteFunc(ml.mu.writers, func(x *writeLedger) bool { return x == w })
	i := ml.ledgerIndexLocked(w.id)
	var seq uint64
	switch {
	case i >= 0 && ml.mu.ledgers[i].entries > 0:
		l := &ml.mu.ledgers[i]
		l.open = false
		l.timestamp = ml.now().UnixMilli()
		seq = ml.requestMetaWriteLocked()
	default:
		// Empty or abandoned: out of the list, then deleted.
		if i >= 0 {
			ml.mu.ledgers = slices.Delete(ml.mu.ledgers, i, i+1)
		}
		seq = ml.requestMetaWriteLocked()
		ml.mu.toDelete = append(ml.mu.toDelete, pendingDelete{id: w.id, seq: seq})
	}
	if w.broken() {
		ml.mu.resendAfterSeq = max(ml.mu.resendAfterSeq, seq)
	}
	ml.mu.Unlock()
	ml.scheduleTrim()
}

// deliver hands done (and failed) ops to their callers in queue order. One
// deliverer runs at a time; others leave their work to it.
func (ml *managedLedger) deliver() {
	ml.mu.Lock()
	if ml.mu.delivering {
		ml.mu.Unlock()
		return
	}
	ml.mu.delivering = true
	for {
		batch := ml.mu.deliverBuf[:0]
		overBudget := false
		for ml.mu.queue.len() > 0 {
			op := ml.mu.queue.at(0)
			if op.state != opDone && op.state != opFailed {
				break
			}
			ml.mu.queue.pop()
			if op.state == opDone {
				overBudget = ml.confirmLocked(op) || overBudget
			}
			batch = append(batch, op)
		}
		var wake []*cursor
		if len(batch) > 0 && len(ml.mu.waiters) > 0 && ml.mu.lastConfirmed.Entry >= 0 {
			wake = append(ml.mu.wakeBuf[:0], ml.mu.waiters...)
			clear(ml.mu.waiters)
			ml.mu.waiters = ml.mu.waiters[:0]
		}
		if ml.mu.queue.len() == 0 && ml.mu.drained != nil {
			close(ml.mu.drained)
			ml.mu.drained = nil
		}
		if len(batch) == 0 {
			ml.mu.delivering = false
			ml.mu.deliverBuf = batch
			ml.mu.Unlock()
			return
		}
		ml.mu.deliverBuf = nil // ours while unlocked
		ml.mu.Unlock()
		if overBudget {
			ml.f.cache.evict()
		}
		for i, op := range batch {
			cb, pos, err := op.cb, op.pos, op.err
			if op.state == opFailed {
				op.data.Release()
				pos = base.Position{}
			}
			ml.f.putOp(op)
			batch[i] = nil
			cb.AddEntryComplete(pos, err)
		}
		for i, c := range wake {
			c.entriesAvailable()
			wake[i] = nil
		}
		ml.mu.Lock()
		ml.mu.deliverBuf = batch[:0]
		if wake != nil {
			ml.mu.wakeBuf = wake[:0]
		}
	}
}

// confirmLocked records a delivered op: the last confirmed position, the
// ledger's counts, and the cache (which takes over the op's reference). It
// reports whether the cache went over budget.
func (ml *managedLedger) confirmLocked(op *addOp) bool {
	w := op.w
	w.delivered++
	ml.mu.lastConfirmed = op.pos
	ml.mu.entriesAdded++
	if i := ml.ledgerIndexLocked(w.id); i >= 0 {
		ml.mu.ledgers[i].entries++
		ml.mu.ledgers[i].size += op.size
	}
	over := false
	if ml.hasActiveCursorLocked() {
		over = ml.cache.insert(op.pos, op.data)
	} else {
		op.data.Release()
	}
	op.data = nil
	if w != ml.mu.current && w.delivered == w.confirmed && w.inflight == 0 {
		ml.maybeCloseLocked(w)
	}
	return over
}

// ledgerIndexLocked finds ledger id in the list (-1 if absent). Writers are
// at the end, so look there first.
func (ml *managedLedger) ledgerIndexLocked(id base.LedgerID) int {
	ls := ml.mu.ledgers
	for i := len(ls) - 1; i >= 0 && i >= len(ls)-3; i-- {
		if ls[i].id == id {
			return i
		}
	}
	i, ok := slices.BinarySearchFunc(ls, id, func(l ledgerMeta, id base.LedgerID) int { return cmpInt(int64(l.id), int64(id)) })
	if !ok {
		return -1
	}
	return i
}

// ---- Metadata ----

// requestMetaWriteLocked records a change of the metadata and makes sure a
// writer will persist it; it returns the change's sequence number.
func (ml *managedLedger) requestMetaWriteLocked() uint64 {
	ml.mu.metaSeq++
	if !ml.mu.metaWriting && (ml.mu.state == mlOpen || ml.mu.state == mlClosing) {
		ml.mu.metaWriting = true
		go ml.metaWriteLoop()
	}
	return ml.mu.metaSeq
}

// waitMetaLocked calls fn once the metadata at seq is persisted (or the
// write failed).
func (ml *managedLedger) waitMetaLocked(seq uint64, fn func(error)) {
	ml.mu.metaWaiters = append(ml.mu.metaWaiters, metaWaiter{seq, fn})
}

func (ml *managedLedger) encodeLocked() []byte {
	info := mlInfo{ledgers: ml.mu.ledgers, properties: ml.mu.props}
	return info.marshal(nil)
}

// metaWriteLoop persists the metadata until it is up to date.
func (ml *managedLedger) metaWriteLoop() {
	for {
		ml.mu.Lock()
		if ml.mu.metaPersisted >= ml.mu.metaSeq || ml.mu.state == mlFenced || ml.mu.state == mlClosed {
			ml.mu.metaWriting = false
			ml.mu.Unlock()
			return
		}
		seq := ml.mu.metaSeq
		data := ml.encodeLocked()
		version := ml.mu.metaVersion
		ml.mu.Unlock()

		stat, err := ml.f.store.Put(context.WithoutCancel(ml.ctx), ml.path, data, version)

		ml.mu.Lock()
		var done []metaWaiter
		var deletes []base.LedgerID
		resend := false
		switch {
		case err == nil:
			ml.mu.metaVersion = stat.Version
			ml.mu.metaPersisted = seq
			ml.mu.metaErr = nil
			for _, w := range []*writeLedger{ml.mu.ahead, ml.mu.current} {
				if w != nil && !w.registered && w.metaSeq <= seq {
					resend = ml.registeredLocked(w) || resend
				}
			}
			ml.mu.metaWaiters = slices.DeleteFunc(ml.mu.metaWaiters, func(mw metaWaiter) bool {
				if mw.seq <= seq {
					done = append(done, mw)
					return true
				}
				return false
			})
			ml.mu.toDelete = slices.DeleteFunc(ml.mu.toDelete, func(d pendingDelete) bool {
				if d.seq <= seq {
					deletes = append(deletes, d.id)
					return true
				}
				return false
			})
			resend = ml.readyToResendLocked()
		case errors.Is(err, metastore.ErrBadVersion) || errors.Is(err, metastore.ErrNotFound):
			ml.fenceLocked(fmt.Errorf("%w: metadata of %s changed by another owner: %w", ErrFenced, ml.name, err))
			done, ml.mu.metaWaiters = ml.mu.metaWaiters, nil
		default:
			// Retried by the next change or the maintenance pass.
			ml.log.Warn("managedledger: writing metadata failed", "ml", ml.name, "err", err)
			ml.mu.metaErr = err
			ml.mu.metaWriting = false
			done, ml.mu.metaWaiters = ml.mu.metaWaiters, nil
		}
		fenced := ml.mu.state == mlFenced
		if fenced {
			if err != nil {
				err = ml.mu.failErr
			}
			ml.mu.metaWriting = false
		}
		ml.mu.Unlock()
		if resend {
			ml.resend()
		}
		if fenced {
			ml.deliver()
		}
		for _, id := range deletes {
			ml.deleteLedger(id)
		}
		for _, mw := range done {
			mw.fn(err)
		}
		if err != nil || fenced {
			return
		}
	}
}

// deleteLedger deletes a ledger that left the persisted list.
func (ml *managedLedger) deleteLedger(id base.LedgerID) {
	ml.cache.evictLedger(id)
	ml.mu.Lock()
	h := ml.mu.handles[id]
	delete(ml.mu.handles, id)
	ml.mu.Unlock()
	if h != nil {
		_ = h.Close()
	}
	if err := ml.f.bk.Delete(context.WithoutCancel(ml.ctx), id); err != nil && !errors.Is(err, base.ErrNoLedger) {
		ml.log.Warn("managedledger: deleting a ledger failed", "ml", ml.name, "ledger", id, "err", err)
	}
}

// syncMeta persists the metadata as it is now and waits for it.
func (ml *managedLedger) syncMeta(ctx context.Context) error {
	ml.mu.Lock()
	if ml.mu.state == mlFenced {
		err := ml.mu.failErr
		ml.mu.Unlock()
		return err
	}
	seq := ml.requestMetaWriteLocked()
	if !ml.mu.metaWriting {
		ml.mu.metaWriting = true
		go ml.metaWriteLoop()
	}
	ch := make(chan error, 1)
	ml.waitMetaLocked(seq, func(err error) { ch <- err })
	ml.mu.Unlock()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ---- Properties ----

func (ml *managedLedger) Properties() map[string]string {
	ml.mu.Lock()
	defer ml.mu.Unlock()
	return maps.Clone(ml.mu.props)
}

func (ml *managedLedger) SetProperties(ctx context.Context, props map[string]string) error {
	ml.mu.Lock()
	if err := ml.writableErrLocked(); err != nil {
		ml.mu.Unlock()
		return err
	}
	for k, v := range props {
		if v == "" {
			delete(ml.mu.props, k)
			continue
		}
		if ml.mu.props == nil {
			ml.mu.props = make(map[string]string)
		}
		ml.mu.props[k] = v
	}
	ml.mu.Unlock()
	return ml.syncMeta(ctx)
}

// ---- Positions ----

// LastConfirmed is the position of the last confirmed entry; (current
// ledger, -1) when there is none.
func (ml *managedLedger) LastConfirmed() base.Position {
	ml.mu.Lock()
	defer ml.mu.Unlock()
	return ml.mu.lastConfirmed
}

// FirstPosition is the position of the oldest retained entry, or the
// position after the last confirmed one if there is none.
func (ml *managedLedger) FirstPosition() base.Position {
	ml.mu.Lock()
	defer ml.mu.Unlock()
	return ml.firstPositionLocked()
}

func (ml *managedLedger) firstPositionLocked() base.Position {
	for _, l := range ml.mu.ledgers {
		if l.entries > 0 {
			return base.Position{Ledger: l.id, Entry: 0}
		}
	}
	return ml.nextLocked(ml.mu.lastConfirmed)
}

func (ml *managedLedger) NumberOfEntries() int64 {
	ml.mu.Lock()
	defer ml.mu.Unlock()
	n := int64(0)
	for _, l := range ml.mu.ledgers {
		n += l.entries
	}
	return n
}

func (ml *managedLedger) TotalSize() int64 {
	ml.mu.Lock()
	defer ml.mu.Unlock()
	n := int64(0)
	for _, l := range ml.mu.ledgers {
		n += l.size
	}
	return n
}

// nextLocked returns the position after p: the next entry of p's ledger,
// or the first entry of the next ledger with entries once p's ledger is
// exhausted and closed. The position after the last confirmed entry is
// where the next add will land, as far as it is known.
func (ml *managedLedger) nextLocked(p base.Position) base.Position {
	ls := ml.mu.ledgers
	i, ok := slices.BinarySearchFunc(ls, p.Ledger, func(l ledgerMeta, id base.LedgerID) int { return cmpInt(int64(l.id), int64(id)) })
	if ok {
		if p.Entry+1 < base.EntryID(ls[i].entries) || ls[i].open && p.Ledger == ml.mu.lastConfirmed.Ledger {
			return base.Position{Ledger: p.Ledger, Entry: p.Entry + 1}
		}
		i++
	}
	// The first entry of the first ledger after p's that has entries.
	for ; i < len(ls); i++ {
		if ls[i].entries > 0 {
			return base.Position{Ledger: ls[i].id, Entry: 0}
		}
	}
	// Nothing after p: the slot after the last confirmed entry.
	lc := ml.mu.lastConfirmed
	if p.Less(lc) {
		return base.Position{Ledger: lc.Ledger, Entry: lc.Entry + 1}
	}
	if ok && p.Ledger == lc.Ledger {
		return base.Position{Ledger: p.Ledger, Entry: p.Entry + 1}
	}
	return base.Position{Ledger: lc.Ledger, Entry: lc.Entry + 1}
}

// normalizeLocked maps a read position onto an existing entry position if
// there is one at or after it (skipping exhausted and trimmed ledgers).
func (ml *managedLedger) normalizeLocked(p base.Position) base.Position {
	ls := ml.mu.ledgers
	i, ok := slices.BinarySearchFunc(ls, p.Ledger, func(l ledgerMeta, id base.LedgerID) int { return cmpInt(int64(l.id), int64(id)) })
	if ok && p.Entry < base.EntryID(ls[i].entries) {
		if p.Entry < 0 {
			p.Entry = 0
		}
		return p
	}
	if ok && ls[i].open && p.Ledger == ml.mu.lastConfirmed.Ledger {
		return p // the tail of the ledger being written
	}
	if ok {
		i++
	}
	for ; i < len(ls); i++ {
		if ls[i].entries > 0 {
			return base.Position{Ledger: ls[i].id, Entry: 0}
		}
	}
	lc := ml.mu.lastConfirmed
	if p.Less(lc) || p.Ledger != lc.Ledger {
		return base.Position{Ledger: lc.Ledger, Entry: lc.Entry + 1}
	}
	return p
}

// entriesAfterLocked counts the entries in (p, lastConfirmed].
func (ml *managedLedger) entriesAfterLocked(p base.Position) int64 {
	n := int64(0)
	for _, l := range ml.mu.ledgers {
		switch {
		case l.id < p.Ledger:
		case l.id == p.Ledger:
			n += max(0, l.entries-int64(p.Entry)-1)
		default:
			n += l.entries
		}
	}
	return n
}

// ledgerEntriesLocked is the number of confirmed entries of ledger id (-1 if
// it is not in the list).
func (ml *managedLedger) ledgerEntriesLocked(id base.LedgerID) int64 {
	if i := ml.ledgerIndexLocked(id); i >= 0 {
		return ml.mu.ledgers[i].entries
	}
	return -1
}

// validLocked reports whether p names a confirmed entry.
func (ml *managedLedger) validLocked(p base.Position) bool {
	n := ml.ledgerEntriesLocked(p.Ledger)
	return p.Entry >= 0 && int64(p.Entry) < n
}

// ---- Cursors bookkeeping ----

// hasActiveCursorLocked reports whether a cursor has consumers: only then
// are entries cached.
func (ml *managedLedger) hasActiveCursorLocked() bool { return ml.mu.anyActive }

// updateCursorLocked records a cursor's new positions and evicts cache
// entries every active cursor has read.
func (ml *managedLedger) updateCursorLocked() {
	floor := base.Position{Ledger: 1<<63 - 1}
	any := false
	for _, c := range ml.mu.cursors {
		if c.shared.active {
			any = true
			if c.shared.readPos.Less(floor) {
				floor = c.shared.readPos
			}
		}
	}
	ml.mu.anyActive = any
	if any {
		ml.cache.evictBelow(floor)
	} else {
		ml.cache.clear()
	}
}

// slowestPersistedLocked is the lowest persisted mark-delete position of the
// durable cursors (ok false if there are none).
func (ml *managedLedger) slowestPersistedLocked() (base.Position, bool) {
	var p base.Position
	ok := false
	for _, c := range ml.mu.cursors {
		if !c.durable || c.shared.deleted {
			continue
		}
		if !ok || c.shared.persistedMD.Less(p) {
			p, ok = c.shared.persistedMD, true
		}
	}
	return p, ok
}

// ---- Trimming ----

// scheduleTrim runs a trim pass in the background (one at a time; a request
// during a pass runs another after it).
func (ml *managedLedger) scheduleTrim() {
	ml.mu.Lock()
	if ml.mu.state != mlOpen {
		ml.mu.Unlock()
		return
	}
	if ml.mu.trimming {
		ml.mu.trimAgain = true
		ml.mu.Unlock()
		return
	}
	ml.mu.trimming = true
	ml.mu.Unlock()
	go ml.trimLoop()
}

func (ml *managedLedger) trimLoop() {
	for {
		ml.trimOnce()
		ml.mu.Lock()
		if !ml.mu.trimAgain || ml.mu.state != mlOpen {
			ml.mu.trimming, ml.mu.trimAgain = false, false
			ml.mu.Unlock()
			return
		}
		ml.mu.trimAgain = false
		ml.mu.Unlock()
	}
}

// trimOnce removes from the list the ledgers that every durable cursor has
// wholly consumed, as far as its persisted position says (and that are past
// retention); they are deleted once the shorter list is persisted.
func (ml *managedLedger) trimOnce() {
	ml.mu.Lock()
	defer ml.mu.Unlock()
	if ml.mu.state != mlOpen {
		return
	}
	slowest, ok := ml.slowestPersistedLocked()
	if !ok {
		slowest = ml.mu.lastConfirmed // no subscription: everything is consumed
	}
	now := ml.now().UnixMilli()
	total := int64(0)
	for _, l := range ml.mu.ledgers {
		total += l.size
	}
	retTime, retSize := ml.cfg.RetentionTime, ml.cfg.RetentionSizeBytes
	n := 0
	sizeToDelete := int64(0)
	for _, l := range ml.mu.ledgers {
		if l.open || ml.isWriterLocked(l.id) {
			break
		}
		consumed := l.id < slowest.Ledger || (l.id == slowest.Ledger && int64(slowest.Entry) >= l.entries-1)
		if !consumed {
			break
		}
		expired := retTime >= 0 && now-l.timestamp >= retTime.Milliseconds()
		overQuota := retSize >= 0 && total-sizeToDelete > retSize
		if !expired && !overQuota {
			break
		}
		n++
		sizeToDelete += l.size
	}
	if n == 0 {
		return
	}
	removed := slices.Clone(ml.mu.ledgers[:n])
	ml.mu.ledgers = slices.Delete(ml.mu.ledgers, 0, n)
	seq := ml.requestMetaWriteLocked()
	for _, l := range removed {
		ml.mu.toDelete = append(ml.mu.toDelete, pendingDelete{id: l.id, seq: seq})
	}
}

func (ml *managedLedger) isWriterLocked(id base.LedgerID) bool {
	for _, w := range ml.mu.writers {
		if w.id == id {
			return true
		}
	}
	return false
}

// ---- Maintenance ----

// maintain runs the periodic checks: time-based rollover, creating the next
// ledger ahead, retrying a failed metadata write, trimming.
func (ml *managedLedger) maintain(now time.Time) {
	ml.submitMu.Lock()
	ml.mu.Lock()
	if ml.mu.state != mlOpen {
		ml.mu.Unlock()
		ml.submitMu.Unlock()
		return
	}
	ml.pickLedgerLocked(now)
	if ml.mu.metaPersisted < ml.mu.metaSeq && !ml.mu.metaWriting {
		ml.mu.metaWriting = true
		go ml.metaWriteLoop()
	}
	if ml.mu.current == nil && ml.mu.ahead == nil && !ml.mu.creating {
		ml.startCreateLocked()
	}
	cursors := slices.Clone(ml.mu.cursors)
	ml.mu.Unlock()
	ml.submitMu.Unlock()
	for _, c := range cursors {
		c.retryPersist()
	}
	ml.trimOnce() // cheap without I/O; what it removes is deleted once persisted
}
