package ledger

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/metastore"
)

// metaIO reads and writes ledger metadata and allocates ledger ids, at
// BookKeeper's paths (HierarchicalLedgerManager and ZkLedgerIdGenerator).
type metaIO struct {
	store    metastore.Store
	root     string
	attempts int
}

func (m *metaIO) path(id base.LedgerID) string { return metastore.LedgerPath(m.root, int64(id)) }

// newLedgerID allocates an id the way BookKeeper's ZkLedgerIdGenerator
// does: create an ephemeral sequential node <root>/idgen/ID-, take its
// ten-digit sequence number, delete the node. Ids are below 2^31-1 (the
// long generator for larger ids is not implemented).
func (m *metaIO) newLedgerID(ctx context.Context) (base.LedgerID, error) {
	created, err := m.store.Create(ctx, m.root+"/idgen/ID-", nil,
		metastore.Ephemeral|metastore.Sequential|metastore.CreateParents)
	if err != nil {
		return 0, fmt.Errorf("ledger: allocating a ledger id: %w", err)
	}
	seq, perr := metastore.ParseSequence(path.Base(created))
	// A failed delete is harmless: the node is ephemeral and goes with the
	// session at the latest.
	_ = m.store.Delete(ctx, created, metastore.AnyVersion)
	if perr != nil {
		return 0, fmt.Errorf("ledger: allocating a ledger id: %w", perr)
	}
	if seq >= math.MaxInt32 {
		return 0, fmt.Errorf("ledger: ledger id %d needs the long id generator, which is not implemented", seq)
	}
	return base.LedgerID(seq), nil
}

// create stores the metadata of a new ledger, allocating its id.
func (m *metaIO) create(ctx context.Context, md *Metadata) (base.LedgerID, int64, error) {
	data := md.Marshal()
	for attempt := 0; attempt < m.attempts; attempt++ {
		id, err := m.newLedgerID(ctx)
		if err != nil {
			return 0, 0, err
		}
		_, err = m.store.Create(ctx, m.path(id), data, metastore.CreateParents)
		if errors.Is(err, metastore.ErrNodeExists) {
			continue // an id some other generator handed out; take another
		}
		if err != nil {
			return 0, 0, fmt.Errorf("ledger: creating metadata of ledger %d: %w", id, err)
		}
		return id, 0, nil
	}
	return 0, 0, fmt.Errorf("ledger: no free ledger id after %d attempts", m.attempts)
}

// read returns a ledger's metadata and its version.
func (m *metaIO) read(ctx context.Context, id base.LedgerID) (*Metadata, int64, error) {
	data, st, err := m.store.Get(ctx, m.path(id))
	if errors.Is(err, metastore.ErrNotFound) {
		return nil, 0, fmt.Errorf("%w: ledger %d", ErrNoLedger, id)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("ledger: reading metadata of ledger %d: %w", id, err)
	}
	md, err := UnmarshalMetadata(data)
	if err != nil {
		return nil, 0, fmt.Errorf("ledger %d (%s): %w", id, m.path(id), err)
	}
	return md, st.Version, nil
}

// update applies change to the ledger's metadata with compare-and-set,
// starting from cur at version: on a version conflict it re-reads the
// metadata and applies change again (BookKeeper's MetadataUpdateLoop).
// change gets a copy it may modify and returns the metadata to store, or
// nil to store nothing (the stored one is returned), or an error to stop.
func (m *metaIO) update(ctx context.Context, id base.LedgerID, cur *Metadata, version int64,
	change func(*Metadata) (*Metadata, error)) (*Metadata, int64, error) {
	for attempt := 0; attempt < m.attempts; attempt++ {
		if cur == nil {
			var err error
			if cur, version, err = m.read(ctx, id); err != nil {
				return nil, 0, err
			}
		}
		next, err := change(cur.Clone())
		if err != nil {
			return cur, version, err
		}
		if next == nil {
			return cur, version, nil
		}
		if err := next.Validate(); err != nil {
			return cur, version, err
		}
		st, err := m.store.Put(ctx, m.path(id), next.Marshal(), version)
		if errors.Is(err, metastore.ErrBadVersion) {
			cur = nil
			continue
		}
		if errors.Is(err, metastore.ErrNotFound) {
			return nil, 0, fmt.Errorf("%w: ledger %d was deleted", ErrNoLedger, id)
		}
		if err != nil {
			return cur, version, fmt.Errorf("ledger: updating metadata of ledger %d: %w", id, err)
		}
		return next, st.Version, nil
	}
	return nil, 0, fmt.Errorf("%w: ledger %d: metadata still changing after %d attempts", ErrMetadataConflict, id, m.attempts)
}

// remove deletes a ledger's metadata.
func (m *metaIO) remove(ctx context.Context, id base.LedgerID) error {
	err := m.store.Delete(ctx, m.path(id), metastore.AnyVersion)
	if errors.Is(err, metastore.ErrNotFound) {
		return fmt.Errorf("%w: ledger %d", ErrNoLedger, id)
	}
	if err != nil {
		return fmt.Errorf("ledger: deleting metadata of ledger %d: %w", id, err)
	}
	return nil
}
