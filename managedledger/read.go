package managedledger

import (
	"context"
	"fmt"
	"slices"

	"github.com/magnetar/magnetar/internal/base"
)

// ledgerReader is what WriteLedger and ReadLedger have in common.
type ledgerReader interface {
	Read(ctx context.Context, first, last base.EntryID) ([]LedgerEntry, error)
}

// pendingRead is a read from the ledger layer that concurrent readers of
// the same range (or a range inside it) share: one read reaches the ledger
// layer and every participant gets references of its own.
type pendingRead struct {
	ledger      base.LedgerID
	first, last base.EntryID
	done        chan struct{}
	entries     []LedgerEntry
	err         error
	refs        int // participants still attached; guarded by ml.readsMu
}

// readRange reads entries [first, last] of ledger id from the ledger layer,
// sharing an identical or enclosing read already in flight. Each returned
// entry holds one reference owned by the caller. Entries read are also
// offered to the cache.
func (ml *managedLedger) readRange(ctx context.Context, id base.LedgerID, first, last base.EntryID) ([]LedgerEntry, error) {
	ml.readsMu.Lock()
	for _, p := range ml.reads {
		if p.ledger == id && p.first <= first && last <= p.last {
			p.refs++
			ml.readsMu.Unlock()
			return ml.joinRead(ctx, p, first, last)
		}
	}
	p := &pendingRead{ledger: id, first: first, last: last, done: make(chan struct{}), refs: 1}
	ml.reads = append(ml.reads, p)
	ml.readsMu.Unlock()
	go ml.doRead(context.WithoutCancel(ctx), p)
	return ml.joinRead(ctx, p, first, last)
}

func (ml *managedLedger) doRead(ctx context.Context, p *pendingRead) {
	h, err := ml.readHandle(ctx, p.ledger)
	if err == nil {
		p.entries, err = h.Read(ctx, p.first, p.last)
		if n := len(p.entries); err == nil && n != int(p.last-p.first+1) {
			for _, e := range p.entries {
				e.Data.Release()
			}
			p.entries = nil
			err = fmt.Errorf("managedledger: ledger %d returned %d entries for [%d, %d]", p.ledger, n, p.first, p.last)
		}
	}
	p.err = err
	if err == nil {
		ml.mu.Lock()
		cache := ml.hasActiveCursorLocked()
		over := false
		if cache {
			for _, e := range p.entries {
				over = ml.cache.insert(base.Position{Ledger: p.ledger, Entry: e.ID}, e.Data.Retain()) || over
			}
		}
		ml.mu.Unlock()
		if over {
			ml.f.cache.evict()
		}
	}
	ml.readsMu.Lock()
	ml.reads = slices.DeleteFunc(ml.reads, func(x *pendingRead) bool { return x == p })
	ml.readsMu.Unlock()
	close(p.done)
}

func (ml *managedLedger) joinRead(ctx context.Context, p *pendingRead, first, last base.EntryID) ([]LedgerEntry, error) {
	var out []LedgerEntry
	var err error
	select {
	case <-p.done:
		if p.err != nil {
			err = p.err
			break
		}
		out = make([]LedgerEntry, 0, last-first+1)
		for e := first; e <= last; e++ {
			le := p.entries[e-p.first]
			out = append(out, LedgerEntry{ID: le.ID, Data: le.Data.Retain()})
		}
	case <-ctx.Done():
		err = ctx.Err()
	}
	ml.readsMu.Lock()
	p.refs--
	lastOut := p.refs == 0
	if lastOut {
		// No one may join a read whose references are being released.
		ml.reads = slices.DeleteFunc(ml.reads, func(x *pendingRead) bool { return x == p })
	}
	ml.readsMu.Unlock()
	if lastOut {
		release := func() {
			<-p.done
			for _, e := range p.entries {
				e.Data.Release()
			}
		}
		select {
		case <-p.done:
			release()
		default:
			// We left on ctx while the read runs: release when it ends.
			go release()
		}
	}
	return out, err
}

// readHandle returns a handle to read ledger id: the write handle of a
// ledger this instance writes, else a read handle opened (without recovery)
// and kept until the ledger is trimmed or the managed ledger closes.
func (ml *managedLedger) readHandle(ctx context.Context, id base.LedgerID) (ledgerReader, error) {
	ml.mu.Lock()
	for _, w := range ml.mu.writers {
		if w.id == id {
			ml.mu.Unlock()
			return w.wl, nil
		}
	}
	if h := ml.mu.handles[id]; h != nil {
		ml.mu.Unlock()
		return h, nil
	}
	if ml.ledgerIndexLocked(id) < 0 {
		ml.mu.Unlock()
		return nil, fmt.Errorf("managedledger: %s: ledger %d: %w", ml.name, id, base.ErrNoLedger)
	}
	ml.mu.Unlock()
	h, err := ml.f.bk.Open(ctx, id, false)
	if err != nil {
		return nil, err
	}
	ml.mu.Lock()
	if old := ml.mu.handles[id]; old != nil {
		ml.mu.Unlock()
		_ = h.Close()
		return old, nil
	}
	if ml.mu.state == mlClosed {
		ml.mu.Unlock()
		return h, nil // not kept; closed by the GC of the caller's use
	}
	if ml.mu.handles == nil {
		ml.mu.handles = make(map[base.LedgerID]ReadLedger)
	}
	ml.mu.handles[id] = h
	ml.mu.Unlock()
	return h, nil
}

// ReadEntry reads one entry.
func (ml *managedLedger) ReadEntry(ctx context.Context, pos base.Position) (Entry, error) {
	ml.mu.Lock()
	valid := ml.validLocked(pos) && !ml.mu.lastConfirmed.Less(pos)
	ml.mu.Unlock()
	if !valid {
		return Entry{}, fmt.Errorf("%w: %v in %s", ErrInvalidPosition, pos, ml.name)
	}
	if b := ml.cache.get(pos); b != nil {
		return Entry{Pos: pos, Data: b}, nil
	}
	es, err := ml.readRange(ctx, pos.Ledger, pos.Entry, pos.Entry)
	if err != nil {
		return Entry{}, err
	}
	return Entry{Pos: pos, Data: es[0].Data}, nil
}

// FindNewest binary-searches the retained entries for the newest one that
// satisfies pred (true up to some point, false after). If none does, it
// returns the position just before the first retained entry.
func (ml *managedLedger) FindNewest(ctx context.Context, pred func(Entry) bool) (base.Position, error) {
	type span struct {
		id      base.LedgerID
		entries int64
	}
	ml.mu.Lock()
	var spans []span
	total := int64(0)
	for _, l := range ml.mu.ledgers {
		if l.entries > 0 {
			spans = append(spans, span{l.id, l.entries})
			total += l.entries
		}
	}
	first := ml.firstPositionLocked()
	ml.mu.Unlock()
	before := base.Position{Ledger: first.Ledger, Entry: first.Entry - 1}
	at := func(i int64) base.Position {
		for _, s := range spans {
			if i < s.entries {
				return base.Position{Ledger: s.id, Entry: base.EntryID(i)}
			}
			i -= s.entries
		}
		panic("unreachable")
	}
	// Invariant: pred holds at lo-1 (or lo == 0), fails at hi+1.
	lo, hi := int64(0), total-1
	found := int64(-1)
	for lo <= hi {
		mid := lo + (hi-lo)/2
		pos := at(mid)
		e, err := ml.ReadEntry(ctx, pos)
		if err != nil {
			return base.Position{}, err
		}
		ok := pred(e)
		e.Data.Release()
		if ok {
			found, lo = mid, mid+1
		} else {
			hi = mid - 1
		}
	}
	if found < 0 {
		return before, nil
	}
	return at(found), nil
}

// releaseEntries releases the references of es.
func releaseEntries(es []Entry) {
	for i := range es {
		if es[i].Data != nil {
			es[i].Data.Release()
			es[i].Data = nil
		}
	}
}
