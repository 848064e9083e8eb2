package ledgerstore

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/magnetar/magnetar/internal/base"
)

// LedgerInfo is the bookie-side metadata of a ledger.
type LedgerInfo struct {
	Fenced    bool
	MasterKey []byte
	// ExplicitLAC is the last explicit LAC blob written; nil if none.
	ExplicitLAC []byte
	// LastEntry is the highest entry the store holds; InvalidEntry if none.
	LastEntry base.EntryID
}

// Metadata durability contract: SetMasterKey, SetFenced and SetExplicitLAC
// change the metadata at once (every later call sees the change) and make
// it durable with the next Flush or SyncMetadata. The bookie journals the
// same facts (key, fence and LAC records) before acknowledging them, so a
// crash before that Flush loses nothing: journal replay from the last
// checkpoint sets them again. DeleteLedger is durable when it returns.

// SetMasterKey creates the ledger if it does not exist and records its
// master key. A ledger that exists with a different non-empty key fails
// with base.ErrUnauthorized; one created by an add (with no key) takes it.
func (s *Store) SetMasterKey(ledger base.LedgerID, key []byte) error {
	m := &s.meta
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, del := m.mu.deleted[ledger]; del {
		return fmt.Errorf("ledgerstore: ledger %d: %w (deleted)", ledger, base.ErrNoLedger)
	}
	lm := m.mu.ledgers[ledger]
	if lm == nil {
		lm = &ledgerMeta{}
		m.mu.ledgers[ledger] = lm
	}
	if len(lm.masterKey) > 0 {
		if !bytes.Equal(lm.masterKey, key) {
			return fmt.Errorf("ledgerstore: ledger %d: %w: master key mismatch", ledger, base.ErrUnauthorized)
		}
		return nil
	}
	lm.masterKey = bytes.Clone(key)
	m.mu.dirty[ledger] = struct{}{}
	return nil
}

// SetFenced marks the ledger fenced and reports whether it already was.
func (s *Store) SetFenced(ledger base.LedgerID) (wasFenced bool, err error) {
	m := &s.meta
	m.mu.Lock()
	defer m.mu.Unlock()
	lm, err := s.ledgerLocked(ledger)
	if err != nil {
		return false, err
	}
	if lm.fenced {
		return true, nil
	}
	lm.fenced = true
	m.mu.dirty[ledger] = struct{}{}
	return false, nil
}

// SetExplicitLAC stores the ledger's explicit LAC blob (a copy of lac).
func (s *Store) SetExplicitLAC(ledger base.LedgerID, lac []byte) error {
	m := &s.meta
	m.mu.Lock()
	defer m.mu.Unlock()
	lm, err := s.ledgerLocked(ledger)
	if err != nil {
		return err
	}
	lm.lac = append(make([]byte, 0, len(lac)), lac...)
	m.mu.dirty[ledger] = struct{}{}
	return nil
}

func (s *Store) ledgerLocked(ledger base.LedgerID) (*ledgerMeta, error) {
	lm := s.meta.mu.ledgers[ledger]
	if lm == nil {
		return nil, fmt.Errorf("ledgerstore: ledger %d: %w", ledger, base.ErrNoLedger)
	}
	return lm, nil
}

// Ledger returns the ledger's metadata (copies), or base.ErrNoLedger.
func (s *Store) Ledger(ledger base.LedgerID) (LedgerInfo, error) {
	s.meta.mu.RLock()
	lm, err := s.ledgerLocked(ledger)
	var info LedgerInfo
	if err == nil {
		info = LedgerInfo{Fenced: lm.fenced, MasterKey: bytes.Clone(lm.masterKey), ExplicitLAC: bytes.Clone(lm.lac)}
	}
	s.meta.mu.RUnlock()
	if err != nil {
		return LedgerInfo{}, err
	}
	info.LastEntry, err = s.LastEntry(ledger)
	return info, err
}

// Ledgers lists the ledgers the store holds, in id order (for the bookie's
// garbage collection against the metadata store).
func (s *Store) Ledgers() []base.LedgerID {
	s.meta.mu.RLock()
	defer s.meta.mu.RUnlock()
	return slices.Sorted(maps.Keys(s.meta.mu.ledgers))
}

// SyncMetadata makes every metadata change made before the call durable.
func (s *Store) SyncMetadata(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.cat.sync(&s.meta); err != nil {
		s.noteCatalogError(err)
		return err
	}
	return nil
}

// DeleteLedger removes the ledger: its metadata, its index entries, and
// (through garbage collection) the space its entries take. It is durable
// when it returns; reads and adds of the ledger fail with base.ErrNoLedger
// from then on. Deleting an unknown ledger is not an error.
func (s *Store) DeleteLedger(ctx context.Context, ledger base.LedgerID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// The tombstone remembers the highest log id allocated now: only logs
	// up to it can hold the ledger's records (a log allocated later sees the
	// tombstone before its first commit), and the tombstone is dropped once
	// none of them does. Holding state.mu keeps ids from being allocated and
	// flushes from being applied meanwhile.
	s.state.Lock()
	m := &s.meta
	m.mu.Lock()
	if _, del := m.mu.deleted[ledger]; del {
		m.mu.Unlock()
		s.state.Unlock()
		return nil
	}
	delete(m.mu.ledgers, ledger)
	m.mu.deleted[ledger] = s.state.nextLogID - 1
	m.mu.dirty[ledger] = struct{}{}
	m.mu.Unlock()
	if li := s.state.ledgers[ledger]; li != nil {
		li.each(func(_ base.EntryID, sl slot) bool {
			s.replaceSlotLocked(ledger, sl)
			return true
		})
		delete(s.state.ledgers, ledger)
	}
	s.state.Unlock()
	s.stats.ledgersDeleted.Add(1)

	if err := s.cat.sync(&s.meta); err != nil {
		s.noteCatalogError(err)
		return fmt.Errorf("ledgerstore: delete ledger %d: %w", ledger, err)
	}
	return nil
}
