package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/magnetar/magnetar/internal/base"
)

// ledgerState is what the engine keeps in memory about a ledger: its master
// key, whether it is fenced, and the highest LAC seen (piggybacked on adds),
// with waiters for long-poll reads. It is rebuilt lazily from ledger storage
// after a restart.
type ledgerState struct {
	mu struct {
		sync.Mutex
		key     []byte
		fenced  bool
		lac     base.EntryID
		lacWait chan struct{} // closed when lac advances; nil until a long poll waits
	}
}

// lacOffset is where a BookKeeper entry carries the writer's LAC: the entry
// starts with ledger id, entry id, LAC and length as big-endian int64s.
const (
	lacOffset       = 16
	entryHeaderSize = 32
)

// entryLAC extracts the piggybacked LAC of a BookKeeper-format entry, or
// InvalidEntry when payload is too short to carry one.
func entryLAC(payload []byte) base.EntryID {
	if len(payload) < entryHeaderSize {
		return base.InvalidEntry
	}
	return base.EntryID(int64(binary.BigEndian.Uint64(payload[lacOffset:])))
}

// ledger returns the state of l, loading it from ledger storage if needed. It
// returns nil and no error when the ledger does not exist.
func (b *Bookie) ledger(ctx context.Context, l base.LedgerID) (*ledgerState, error) {
	b.mu.Lock()
	st := b.mu.ledgers[l]
	b.mu.Unlock()
	if st != nil {
		return st, nil
	}
	info, err := b.store.Ledger(l)
	if errors.Is(err, base.ErrNoLedger) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st = &ledgerState{}
	st.mu.key = info.MasterKey
	st.mu.fenced = info.Fenced
	st.mu.lac = base.InvalidEntry
	if info.LastEntry >= 0 {
		if buf, err := b.store.ReadEntry(ctx, l, info.LastEntry); err == nil {
			st.mu.lac = entryLAC(buf.Bytes())
			buf.Release()
		}
	}
	b.mu.Lock()
	if cur := b.mu.ledgers[l]; cur != nil {
		st = cur
	} else {
		b.mu.ledgers[l] = st
	}
	b.mu.Unlock()
	return st, nil
}

// ledgerForWrite returns l's state, creating the ledger with masterKey if it
// does not exist (as BookKeeper does on the first add or fence), and checks
// the key. created reports whether this call created it; fenced whether the
// ledger was fenced then.
func (b *Bookie) ledgerForWrite(ctx context.Context, l base.LedgerID, masterKey []byte) (st *ledgerState, created, fenced bool, err error) {
	st, err = b.ledger(ctx, l)
	if err != nil {
		return nil, false, false, err
	}
	if st == nil {
		if err := b.store.SetMasterKey(l, masterKey); err != nil {
			return nil, false, false, fmt.Errorf("engine: ledger %d: %w", l, err)
		}
		st = &ledgerState{}
		st.mu.key = bytes.Clone(masterKey)
		st.mu.lac = base.InvalidEntry
		b.mu.Lock()
		if cur := b.mu.ledgers[l]; cur != nil {
			st = cur
		} else {
			b.mu.ledgers[l] = st
			created = true
		}
		b.mu.Unlock()
	}
	st.mu.Lock()
	ok := bytes.Equal(st.mu.key, masterKey)
	if len(st.mu.key) == 0 && !ok {
		st.mu.key = bytes.Clone(masterKey)
		ok = true
	}
	fenced = st.mu.fenced
	st.mu.Unlock()
	if !ok {
		return nil, false, false, fmt.Errorf("ledger %d: %w", l, ErrUnauthorized)
	}
	return st, created, fenced, nil
}

// advanceLAC raises the ledger's known LAC and wakes long-poll waiters.
func (st *ledgerState) advanceLAC(lac base.EntryID) {
	st.mu.Lock()
	if lac > st.mu.lac {
		st.mu.lac = lac
		if st.mu.lacWait != nil {
			close(st.mu.lacWait)
			st.mu.lacWait = nil
		}
	}
	st.mu.Unlock()
}

func (st *ledgerState) fenced() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.mu.fenced
}
