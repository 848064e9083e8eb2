package engine

import (
	"context"
	"fmt"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/journal"
)

// op is a pooled journal callback: one per add, fence or LAC write, so that
// the hot path allocates nothing.
type op struct {
	b   *Bookie
	st  *ledgerState
	lac base.EntryID
	cb  AddCallback
}

// Done implements journal.Callback.
func (o *op) Done(_ journal.Pos, err error) {
	b, st, lac, cb := o.b, o.st, o.lac, o.cb
	*o = op{b: b}
	b.ops.Put(o)
	if err != nil {
		b.stats.addErrors.Add(1)
		cb.AddComplete(fmt.Errorf("engine: journal: %w", err))
		return
	}
	if st != nil && lac >= 0 {
		st.advanceLAC(lac)
	}
	cb.AddComplete(nil)
}

func (b *Bookie) newOp(st *ledgerState, lac base.EntryID, cb AddCallback) *op {
	o := b.ops.Get().(*op)
	o.st, o.lac, o.cb = st, lac, cb
	return o
}

// AddEntry stores an entry and calls cb once its journal record is durable.
// The payload is the entry as the BookKeeper client sent it (its header
// carries the piggybacked LAC); AddEntry does not take over the caller's
// reference, which may be released when it returns. A normal add to a fenced
// ledger fails with ErrFenced; a recovery add is accepted. An error returned
// directly means cb will not be called.
func (b *Bookie) AddEntry(ctx context.Context, l base.LedgerID, e base.EntryID, masterKey []byte, payload *bufs.Buf, recoveryAdd bool, cb AddCallback) error {
	if b.closed.Load() {
		return ErrClosed
	}
	if b.ReadOnly() {
		return fmt.Errorf("add %d:%d: %w", l, e, ErrReadOnly)
	}
	st, created, fenced, err := b.ledgerForWrite(ctx, l, masterKey)
	if err != nil {
		return err
	}
	if !recoveryAdd && fenced {
		return fmt.Errorf("add %d:%d: %w", l, e, ErrFenced)
	}
	if created {
		// The key is journaled before the ledger's first entry in the same
		// directory, so it is durable whenever that entry is.
		if err := b.j.Append(record.KindMeta, int64(l), -1, masterKey, discard{}); err != nil {
			return fmt.Errorf("engine: journal: %w", err)
		}
	}
	if err := b.store.AddEntry(ctx, l, e, payload); err != nil {
		return fmt.Errorf("engine: add %d:%d: %w", l, e, err)
	}
	b.stats.adds.Add(1)
	if err := b.j.Append(record.KindEntry, int64(l), int64(e), payload.Bytes(), b.newOp(st, entryLAC(payload.Bytes()), cb)); err != nil {
		return fmt.Errorf("engine: journal: %w", err)
	}
	return nil
}

// discard is the callback of records whose durability is implied by a later
// record's (the master key before an entry).
type discard struct{}

func (discard) Done(journal.Pos, error) {}

// Fence fences ledger l (creating it with masterKey if it does not exist, as
// BookKeeper does) and calls cb once the fence is durable. From then on
// normal adds fail with ErrFenced.
func (b *Bookie) Fence(ctx context.Context, l base.LedgerID, masterKey []byte, cb AddCallback) error {
	if b.closed.Load() {
		return ErrClosed
	}
	st, created, _, err := b.ledgerForWrite(ctx, l, masterKey)
	if err != nil {
		return err
	}
	if created {
		if err := b.j.Append(record.KindMeta, int64(l), -1, masterKey, discard{}); err != nil {
			return fmt.Errorf("engine: journal: %w", err)
		}
	}
	st.mu.Lock()
	st.mu.fenced = true
	st.mu.Unlock()
	if _, err := b.store.SetFenced(l); err != nil {
		return fmt.Errorf("engine: fence %d: %w", l, err)
	}
	b.stats.fences.Add(1)
	if err := b.j.Append(record.KindFence, int64(l), -1, nil, b.newOp(nil, base.InvalidEntry, cb)); err != nil {
		return fmt.Errorf("engine: journal: %w", err)
	}
	return nil
}

// WriteLAC records an explicit LAC for l (the blob is the client's LAC
// record, kept opaque) and calls cb once it is durable.
func (b *Bookie) WriteLAC(ctx context.Context, l base.LedgerID, masterKey []byte, lac base.EntryID, blob []byte, cb AddCallback) error {
	if b.closed.Load() {
		return ErrClosed
	}
	st, created, _, err := b.ledgerForWrite(ctx, l, masterKey)
	if err != nil {
		return err
	}
	if created {
		if err := b.j.Append(record.KindMeta, int64(l), -1, masterKey, discard{}); err != nil {
			return fmt.Errorf("engine: journal: %w", err)
		}
	}
	if err := b.store.SetExplicitLAC(l, blob); err != nil {
		return fmt.Errorf("engine: write LAC %d: %w", l, err)
	}
	if err := b.j.Append(record.KindLAC, int64(l), int64(lac), blob, b.newOp(st, lac, cb)); err != nil {
		return fmt.Errorf("engine: journal: %w", err)
	}
	return nil
}

// DeleteLedger removes a ledger from ledger storage (durably) and forgets it.
func (b *Bookie) DeleteLedger(ctx context.Context, l base.LedgerID) error {
	if err := b.store.DeleteLedger(ctx, l); err != nil {
		return fmt.Errorf("engine: delete ledger %d: %w", l, err)
	}
	b.mu.Lock()
	delete(b.mu.ledgers, l)
	b.mu.Unlock()
	return nil
}

// Force calls cb once every record of l journaled before the call is durable
// (BookKeeper's FORCE_LEDGER, for writers that use deferred sync).
func (b *Bookie) Force(ctx context.Context, l base.LedgerID, cb AddCallback) error {
	if b.closed.Load() {
		return ErrClosed
	}
	// Every record of l goes to one journal directory in order, so a record
	// appended now is durable only after all earlier ones of l.
	return b.j.Append(record.KindBarrier, int64(l), -1, nil, b.newOp(nil, base.InvalidEntry, cb))
}
