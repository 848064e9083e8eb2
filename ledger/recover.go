package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/wire/bk"
)

// recoveryEvent is an answer fed to the recovery machine.
type recoveryEvent struct {
	kind   recoveryActionKind // actFence, actRead or actAdd
	index  int                // fence: ensemble index; read: write-set position
	entry  base.EntryID
	fence  fenceReply
	read   readReply[*bufs.Buf]
	addErr error
}

// recoveryIO is the responder of recovery's requests.
type recoveryIO struct {
	ledger base.LedgerID
	dig    *bk.Digester
	q      *eventQueue[recoveryEvent]
}

func (x *recoveryIO) complete(r *request, res *response) {
	ev := recoveryEvent{kind: recoveryActionKind(r.tag), index: r.index, entry: r.entry}
	switch ev.kind {
	case actFence:
		ev.fence = classifyLastEntry(x.dig, x.ledger, res)
	case actRead:
		err := res.failure()
		switch {
		case err == nil:
			h, payload, perr := x.dig.ParseEntry(res.data, x.ledger, r.entry)
			if perr != nil {
				ev.read.Kind = replyError
				break
			}
			buf := bufs.Get(len(payload))
			copy(buf.Bytes(), payload)
			ev.read = readReply[*bufs.Buf]{Kind: replyEntry, Data: buf, Length: h.Length}
		case errors.Is(err, base.ErrNoEntry), errors.Is(err, base.ErrNoLedger):
			ev.read.Kind = replyMissing
		case errors.Is(err, base.ErrUnauthorized):
			ev.read = readReply[*bufs.Buf]{Kind: replyError, Denied: true}
		default:
			ev.read.Kind = replyError
		}
	}
	if !x.q.push(ev) && ev.read.Data != nil {
		ev.read.Data.Release()
	}
}

// recoveryAdd is the callback of one recovery re-add.
type recoveryAdd struct {
	q     *eventQueue[recoveryEvent]
	entry base.EntryID
}

func (a *recoveryAdd) AddComplete(_ base.EntryID, err error) {
	a.q.push(recoveryEvent{kind: actAdd, entry: a.entry, addErr: err})
}

// recover fences the ledger and closes it at the last entry that may have
// been confirmed (see recoveryMachine for the decisions). It returns the
// closed metadata; when another client closes the ledger first, that
// client's metadata stands.
func (c *Client) recover(ctx context.Context, id base.LedgerID, md *Metadata, version int64,
	key bk.MasterKey, dig *bk.Digester) (_ *Metadata, _ int64, err error) {
	if hook := c.opts.Hooks.Recovered; hook != nil {
		defer func() {
			last := base.InvalidEntry
			if md != nil {
				last = md.LastEntry
			}
			hook(id, last, err)
		}()
	}
	md, version, err = c.meta.update(ctx, id, md, version, func(m *Metadata) (*Metadata, error) {
		if m.State != StateOpen {
			return nil, nil
		}
		m.State = StateInRecovery
		return m, nil
	})
	if err != nil {
		return nil, 0, err
	}
	if md.State == StateClosed {
		return md, version, nil
	}
	c.log.Info("ledger: recovering", "ledger", id, "ensemble", md.LastSegment().Bookies,
		"from_entry", md.LastSegment().FirstEntry)

	snap := md // the ensembles recovery reads from (BookKeeper's metadataForRecovery)
	rio := &recoveryIO{ledger: id, dig: dig, q: newEventQueue[recoveryEvent]()}
	m := newRecoveryMachine[*bufs.Buf](snap.EnsembleSize, snap.WriteQuorum, snap.AckQuorum,
		snap.LastSegment().FirstEntry, c.opts.RecoveryReadWindow)
	var writer *WriteHandle
	defer func() {
		for _, ev := range rio.q.close() {
			if ev.read.Data != nil {
				ev.read.Data.Release()
			}
		}
		if writer != nil {
			writer.abort(ErrHandleClosed)
		}
	}()

	var (
		closeAt  base.EntryID
		closeLen int64
	)
	act := func(actions []recoveryAction[*bufs.Buf]) error {
		for _, a := range actions {
			switch a.Kind {
			case actFence:
				b := snap.LastSegment().Bookies[a.Index]
				r := c.newLastEntryRead(id, &key, b, a.Index, rio)
				r.tag = uint64(actFence)
				c.pool.get(b, bk.ProtocolV2, id).send(r)
			case actRead:
				ens := snap.EnsembleAt(a.Entry)
				b := ens[writeSetIndex(a.Entry, a.Replica, snap.EnsembleSize)]
				r := newRequest()
				r.key = reqKey{ledger: id, entry: int64(a.Entry), op: bk.OpReadEntry}
				r.head = bk.AppendReadRequest(r.head, bk.FlagDoFencing|bk.FlagHighPriority, id, a.Entry, &key)
				r.bookie, r.index, r.entry, r.target, r.tag = b, a.Replica, a.Entry, rio, uint64(actRead)
				r.deadline = c.pool.deadline(c.opts.ReadTimeout)
				c.pool.get(b, bk.ProtocolV2, id).send(r)
			case actAdd:
				if writer == nil {
					writer = newWriteHandle(c, id, snap, version, key, dig, true, m.LAC(), 0)
				}
				writer.addRecovered(a.Entry, a.Data, a.Length-int64(a.Data.Len()), &recoveryAdd{q: rio.q, entry: a.Entry})
			case actDiscard:
				a.Data.Release()
			case actClose:
				closeAt, closeLen = a.Entry, a.Length
			case actFail:
				return a.Err
			}
		}
		return nil
	}
	if err := act(m.start()); err != nil {
		return nil, 0, err
	}
	var evs []recoveryEvent
	for !m.done() {
		select {
		case <-rio.q.signal:
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("ledger %d: recovery: %w", id, ctx.Err())
		}
		evs = rio.q.drain(evs[:0])
		for _, ev := range evs {
			var actions []recoveryAction[*bufs.Buf]
			switch ev.kind {
			case actFence:
				actions = m.onFence(ev.index, ev.fence)
			case actRead:
				actions = m.onRead(ev.entry, ev.index, ev.read)
			case actAdd:
				actions = m.onAdded(ev.entry, ev.addErr)
			}
			if err := act(actions); err != nil {
				return nil, 0, fmt.Errorf("ledger %d: %w", id, err)
			}
		}
		clear(evs)
	}

	segs := snap.Segments
	if writer != nil {
		writer.shutdown()
		segs = writer.Metadata().Segments
	}
	md, version, err = c.meta.update(ctx, id, md, version, func(m *Metadata) (*Metadata, error) {
		switch m.State {
		case StateClosed:
			return nil, nil // closed by a concurrent recovery: its decision stands
		case StateOpen:
			return nil, fmt.Errorf("%w: ledger %d was reopened during recovery", ErrMetadataConflict, id)
		}
		m.State, m.LastEntry, m.Length = StateClosed, closeAt, closeLen
		m.Segments = segs
		return m, nil
	})
	if err != nil {
		return nil, 0, err
	}
	c.log.Info("ledger: recovered", "ledger", id, "last_entry", md.LastEntry, "length", md.Length)
	return md, version, nil
}

// newLastEntryRead makes a READ_ENTRY(-1) request, fencing when key is
// not nil.
func (c *Client) newLastEntryRead(ledger base.LedgerID, key *bk.MasterKey, bookie string, idx int, target responder) *request {
	var flags bk.Flags
	if key != nil {
		flags = bk.FlagDoFencing | bk.FlagHighPriority
	}
	r := newRequest()
	r.key = reqKey{ledger: ledger, entry: int64(bk.LastAddConfirmed), op: bk.OpReadEntry}
	r.head = bk.AppendReadRequest(r.head, flags, ledger, bk.LastAddConfirmed, key)
	r.bookie, r.index, r.entry, r.target = bookie, idx, bk.LastAddConfirmed, target
	r.deadline = c.pool.deadline(c.opts.ReadTimeout)
	return r
}
