package managedledger

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/metastore"
)

// Cursor persistence.
//
// A durable cursor's state is persisted in two places (formats in meta.go):
//
//   - its cursor ledger: every persist appends a snapshot (mark-delete
//     position plus the whole acknowledgement state), split over several
//     entries when it exceeds CursorSnapshotMaxEntryBytes. After
//     CursorMaxEntriesPerLedger entries the cursor moves to a new ledger:
//     it writes the snapshot there first, then points its node at it, then
//     deletes the old ledger.
//   - its node, /managed-ledgers/<name>/<cursor>: the cursor ledger's id and
//     the mark-delete position at the last switch; on a clean close the
//     whole state, inline, when it fits in CursorInlineMaxBytes (the cursor
//     ledger is then deleted), else a pointer to the cursor ledger holding
//     the final snapshot.
//
// Recovery reads the node; if it points to a ledger, that ledger is opened
// with recovery (fencing a previous owner) and its last complete snapshot
// wins (a snapshot whose last part never made it is skipped). Nothing is
// dropped: a million holes are a few hundred KiB.
//
// Persists are coalesced: a change marks the cursor dirty and schedules a
// persist at most MarkDeleteRateLimit times a second; one runs at a time
// (persistMu) and writes the state as it is when it starts. Only a persisted
// mark-delete position lets the managed ledger trim (invariant 5).
type persistState struct {
	ledger      WriteLedger // the cursor ledger being appended to
	entries     int64       // entries in it
	nodeVersion int64
	nodeLedger  base.LedgerID   // the ledger the node points to (-1: inline)
	stale       []base.LedgerID // old cursor ledgers to delete once unreferenced
	seq         uint64
	buf         []byte
}

// changedLocked records a change of the state to persist (c.mu held).
func (c *cursor) changedLocked() {
	if !c.durable || c.mu.closed {
		return
	}
	c.mu.dirty = true
	c.scheduleLocked()
}

func (c *cursor) scheduleLocked() {
	if c.mu.scheduled {
		return
	}
	c.mu.scheduled = true
	rate := c.ml.f.opts.MarkDeleteRateLimit
	wait := time.Duration(0)
	if rate > 0 {
		interval := time.Duration(float64(time.Second) / rate)
		wait = interval - time.Since(c.mu.lastPersist)
	}
	if wait <= 0 {
		go c.persistScheduled()
		return
	}
	if c.mu.timer == nil {
		c.mu.timer = time.AfterFunc(wait, c.persistScheduled)
	} else {
		c.mu.timer.Reset(wait)
	}
}

func (c *cursor) persistScheduled() {
	err := c.Flush(c.ml.ctx)
	c.mu.Lock()
	c.mu.scheduled = false
	if c.mu.dirty && !c.mu.closed && err == nil {
		c.scheduleLocked()
	}
	c.mu.Unlock()
}

// retryPersist persists a dirty cursor whose last persist failed
// (maintenance pass).
func (c *cursor) retryPersist() {
	c.mu.Lock()
	retry := c.mu.dirty && !c.mu.scheduled && !c.mu.closed && c.mu.persistErr != nil
	if retry {
		c.scheduleLocked()
	}
	c.mu.Unlock()
}

// Flush persists the cursor's state now if it changed since the last
// persist, and returns once it is durable.
func (c *cursor) Flush(ctx context.Context) error {
	if !c.durable {
		return nil
	}
	c.persistMu.Lock()
	defer c.persistMu.Unlock()
	c.mu.Lock()
	if !c.mu.dirty {
		c.mu.Unlock()
		return nil
	}
	c.mu.dirty = false
	md := c.mu.md
	blob := appendAckState(c.p.buf[:0], &c.mu.acks, c.mu.batches)
	c.mu.lastPersist = time.Now()
	c.mu.Unlock()
	c.p.buf = blob[:0]

	err := c.writeSnapshot(ctx, md, blob)
	c.mu.Lock()
	c.mu.persistErr = err
	if err != nil {
		c.mu.dirty = true
	}
	c.mu.Unlock()
	if err != nil {
		c.ml.log.Warn("managedledger: persisting a cursor failed", "ml", c.ml.name, "cursor", c.name, "err", err)
		return err
	}
	c.persisted(md)
	return nil
}

// persisted records md as durable and lets the managed ledger trim.
func (c *cursor) persisted(md base.Position) {
	ml := c.ml
	ml.mu.Lock()
	advanced := c.shared.persistedMD.Less(md)
	c.shared.persistedMD = md
	ml.mu.Unlock()
	if advanced {
		ml.scheduleTrim()
	}
}

// writeSnapshot appends a snapshot to the cursor ledger, moving to a new
// one when there is none, it is full, or appending failed.
func (c *cursor) writeSnapshot(ctx context.Context, md base.Position, blob []byte) error {
	ml := c.ml
	c.p.seq++
	parts := splitParts(blob, ml.f.opts.CursorSnapshotMaxEntryBytes-snapshotPartOverhead)
	if c.p.ledger != nil && c.p.entries+int64(len(parts)) <= ml.cfg.CursorMaxEntriesPerLedger {
		err := c.appendSnapshot(ctx, c.p.ledger, md, blob, parts)
		if err == nil {
			c.p.entries += int64(len(parts))
			return nil
		}
		if errors.Is(err, base.ErrFenced) {
			return fmt.Errorf("%w: cursor %s of %s: %w", ErrFenced, c.name, ml.name, err)
		}
		ml.log.Warn("managedledger: cursor ledger failed; moving to a new one", "ml", ml.name, "cursor", c.name, "ledger", c.p.ledger.ID(), "err", err)
	}
	wl, err := ml.f.bk.Create(ctx, ml.ledgerConfig(c.name))
	if err != nil {
		return c.persistToNode(ctx, md, blob, err)
	}
	if err := c.appendSnapshot(ctx, wl, md, blob, parts); err != nil {
		ml.discardLedger(wl)
		return c.persistToNode(ctx, md, blob, err)
	}
	if err := c.writeNode(ctx, cursorInfo{cursorLedger: wl.ID(), markDelete: md, lastActive: ml.now().UnixMilli()}); err != nil {
		ml.discardLedger(wl)
		return err
	}
	if old := c.p.ledger; old != nil {
		_ = old.Close(ctx)
		c.p.stale = append(c.p.stale, old.ID())
	}
	c.p.ledger, c.p.entries = wl, int64(len(parts))
	c.deleteStale(ctx, wl.ID())
	return nil
}

// persistToNode is the fallback when no cursor ledger can be written:
// the whole state goes to the node if it fits, else the mark-delete
// position alone (acknowledged entries beyond it would be redelivered after
// a crash, never lost).
func (c *cursor) persistToNode(ctx context.Context, md base.Position, blob []byte, cause error) error {
	ml := c.ml
	info := cursorInfo{cursorLedger: -1, markDelete: md, lastActive: ml.now().UnixMilli()}
	if len(blob) <= ml.f.opts.CursorInlineMaxBytes {
		info.ackState = blob
	} else {
		ml.log.Warn("managedledger: cursor ledger unavailable and state too big for the node; persisting the mark-delete position only",
			"ml", ml.name, "cursor", c.name, "bytes", len(blob), "cause", cause)
	}
	if err := c.writeNode(ctx, info); err != nil {
		return err
	}
	if c.p.ledger != nil {
		_ = c.p.ledger.Close(ctx)
		c.p.stale = append(c.p.stale, c.p.ledger.ID())
		c.p.ledger, c.p.entries = nil, 0
	}
	c.deleteStale(ctx, -1)
	if info.ackState == nil && !emptyAckState(blob) {
		return fmt.Errorf("managedledger: cursor %s: only the mark-delete position was persisted: %w", c.name, cause)
	}
	return nil
}

func emptyAckState(blob []byte) bool {
	acks, batches, err := decodeAckState(blob)
	return err == nil && acks.Len() == 0 && len(batches) == 0
}

// deleteStale deletes old cursor ledgers other than keep.
func (c *cursor) deleteStale(ctx context.Context, keep base.LedgerID) {
	stale := c.p.stale[:0]
	for _, id := range c.p.stale {
		if id == keep {
			stale = append(stale, id)
			continue
		}
		if err := c.ml.f.bk.Delete(ctx, id); err != nil && !errors.Is(err, base.ErrNoLedger) {
			c.ml.log.Warn("managedledger: deleting an old cursor ledger failed", "ml", c.ml.name, "cursor", c.name, "ledger", id, "err", err)
			stale = append(stale, id)
		}
	}
	c.p.stale = stale
}

// writeNode writes the cursor's node (compare-and-set on its version).
func (c *cursor) writeNode(ctx context.Context, info cursorInfo) error {
	data := info.marshal(nil)
	stat, err := c.ml.f.store.Put(ctx, c.path, data, c.p.nodeVersion)
	if err != nil {
		if errors.Is(err, metastore.ErrBadVersion) || errors.Is(err, metastore.ErrNotFound) {
			return fmt.Errorf("%w: cursor %s of %s changed by another owner: %w", ErrFenced, c.name, c.ml.name, err)
		}
		return err
	}
	c.p.nodeVersion = stat.Version
	c.p.nodeLedger = info.cursorLedger
	return nil
}

func splitParts(blob []byte, max int) [][]byte {
	if len(blob) <= max {
		return [][]byte{blob}
	}
	var parts [][]byte
	for len(blob) > 0 {
		n := min(max, len(blob))
		parts = append(parts, blob[:n])
		blob = blob[n:]
	}
	return parts
}

// partWaiter collects the completions of a snapshot's entries.
type partWaiter chan error

func (w partWaiter) AddComplete(_ base.EntryID, err error) { w <- err }

// appendSnapshot writes the parts of a snapshot to wl and waits for them.
func (c *cursor) appendSnapshot(ctx context.Context, wl WriteLedger, md base.Position, blob []byte, parts [][]byte) error {
	crc := crc32.Checksum(blob, crcTable)
	w := make(partWaiter, len(parts))
	for i, data := range parts {
		p := snapshotPart{markDelete: md, data: data, index: i, of: len(parts), seq: c.p.seq, crc: crc}
		wl.AddEntry(bufs.Wrap(p.marshal(nil)), w)
	}
	var first error
	for range parts {
		select {
		case err := <-w:
			if err != nil && first == nil {
				first = err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return first
}

// persistFinal persists the state on a clean close: inline in the node if
// it fits (deleting the cursor ledger), else to the cursor ledger.
func (c *cursor) persistFinal(ctx context.Context) error {
	c.persistMu.Lock()
	defer c.persistMu.Unlock()
	ml := c.ml
	c.mu.Lock()
	dirty := c.mu.dirty
	c.mu.dirty = false
	md := c.mu.md
	blob := appendAckState(nil, &c.mu.acks, c.mu.batches)
	c.mu.Unlock()
	if !dirty && c.p.ledger == nil && c.p.nodeLedger < 0 {
		return nil // nothing changed since the node was written inline
	}
	if len(blob) <= ml.f.opts.CursorInlineMaxBytes {
		err := c.writeNode(ctx, cursorInfo{cursorLedger: -1, markDelete: md, lastActive: ml.now().UnixMilli(), ackState: blob})
		if err != nil {
			return err
		}
		if c.p.ledger != nil {
			_ = c.p.ledger.Close(ctx)
			c.p.stale = append(c.p.stale, c.p.ledger.ID())
			c.p.ledger = nil
		}
		c.deleteStale(ctx, -1)
		c.persisted(md)
		return nil
	}
	if dirty || c.p.ledger == nil {
		c.mu.Lock()
		c.mu.dirty = false
		c.mu.Unlock()
		if err := c.writeSnapshot(ctx, md, blob); err != nil {
			return err
		}
	}
	if c.p.ledger != nil {
		if err := c.writeNode(ctx, cursorInfo{cursorLedger: c.p.ledger.ID(), markDelete: md, lastActive: ml.now().UnixMilli()}); err != nil {
			return err
		}
		_ = c.p.ledger.Close(ctx)
		c.p.ledger = nil
	}
	c.persisted(md)
	return nil
}

// ---- Recovery ----

// recoverCursorLocked-free: recoverCursor reads a durable cursor's state
// from its node (and cursor ledger).
func (ml *managedLedger) recoverCursor(ctx context.Context, name string) (md base.Position, acks ackSet, batches map[base.Position]*batchAck, p persistState, err error) {
	path := ml.path + "/" + encodeCursorName(name)
	data, stat, err := ml.f.store.Get(ctx, path)
	if err != nil {
		return md, acks, nil, p, err
	}
	info, err := unmarshalCursorInfo(data)
	if err != nil {
		return md, acks, nil, p, fmt.Errorf("%s: %w", path, err)
	}
	// Claim the node: rewriting it moves its version, so a previous owner
	// still running fails its next write of it (compare-and-set) instead of
	// overwriting what we recover.
	stat, err = ml.f.store.Put(ctx, path, data, stat.Version)
	if err != nil {
		return md, acks, nil, p, fmt.Errorf("managedledger: claiming cursor %s of %s: %w", name, ml.name, err)
	}
	p.nodeVersion = stat.Version
	p.nodeLedger = info.cursorLedger
	md = info.markDelete
	if info.cursorLedger < 0 {
		if len(info.ackState) > 0 {
			acks, batches, err = decodeAckState(info.ackState)
			if err != nil {
				return md, acks, nil, p, fmt.Errorf("%s: %w", path, err)
			}
		}
		return md, acks, batches, p, nil
	}
	p.stale = []base.LedgerID{info.cursorLedger}
	snap, found, err := ml.readLastSnapshot(ctx, info.cursorLedger)
	switch {
	case err != nil && (errors.Is(err, base.ErrNoLedger) || errors.Is(err, base.ErrCorruption)):
		ml.log.Warn("managedledger: cursor ledger unreadable; recovering the node's mark-delete position",
			"ml", ml.name, "cursor", name, "ledger", info.cursorLedger, "err", err)
		return md, acks, nil, p, nil
	case err != nil:
		return md, acks, nil, p, fmt.Errorf("managedledger: recovering cursor %s of %s from ledger %d: %w", name, ml.name, info.cursorLedger, err)
	case !found:
		return md, acks, nil, p, nil
	}
	acks, batches, err = decodeAckState(snap.data)
	if err != nil {
		return md, acks, nil, p, fmt.Errorf("managedledger: cursor %s of %s, ledger %d: %w", name, ml.name, info.cursorLedger, err)
	}
	return snap.markDelete, acks, batches, p, nil
}

// readLastSnapshot opens a cursor ledger with recovery and returns its last
// complete snapshot (parts joined and checked).
func (ml *managedLedger) readLastSnapshot(ctx context.Context, id base.LedgerID) (snapshotPart, bool, error) {
	rl, err := ml.f.bk.Open(ctx, id, true)
	if err != nil {
		return snapshotPart{}, false, err
	}
	defer rl.Close()
	readPart := func(e base.EntryID) (snapshotPart, error) {
		es, err := rl.Read(ctx, e, e)
		if err != nil {
			return snapshotPart{}, err
		}
		defer es[0].Data.Release()
		p, err := unmarshalSnapshotPart(es[0].Data.Bytes())
		p.data = slices.Clone(p.data)
		if err != nil {
			return p, fmt.Errorf("ledger %d entry %d: %w", id, e, err)
		}
		return p, nil
	}
	for e := rl.LastAddConfirmed(); e >= 0; {
		last, err := readPart(e)
		if err != nil {
			return snapshotPart{}, false, err
		}
		if last.index != last.of-1 {
			// A snapshot whose last part never made it: skip its parts.
			e -= base.EntryID(last.index) + 1
			continue
		}
		if last.of == 1 {
			if last.crcPresent && crc32.Checksum(last.data, crcTable) != last.crc {
				return snapshotPart{}, false, fmt.Errorf("%w: cursor ledger %d entry %d: checksum mismatch", ErrCorruptMetadata, id, e)
			}
			return last, true, nil
		}
		first := e - base.EntryID(last.of-1)
		if first < 0 {
			return snapshotPart{}, false, fmt.Errorf("%w: cursor ledger %d entry %d: part %d of %d", ErrCorruptMetadata, id, e, last.index, last.of)
		}
		var blob []byte
		for i := first; i <= e; i++ {
			p, err := readPart(i)
			if err != nil {
				return snapshotPart{}, false, err
			}
			if p.seq != last.seq || p.index != int(i-first) || p.of != last.of {
				return snapshotPart{}, false, fmt.Errorf("%w: cursor ledger %d entry %d: part %d/%d of snapshot %d, want part %d/%d of %d",
					ErrCorruptMetadata, id, i, p.index, p.of, p.seq, i-first, last.of, last.seq)
			}
			blob = append(blob, p.data...)
		}
		if crc32.Checksum(blob, crcTable) != last.crc {
			return snapshotPart{}, false, fmt.Errorf("%w: cursor ledger %d entries %d-%d: checksum mismatch", ErrCorruptMetadata, id, first, e)
		}
		last.data = blob
		return last, true, nil
	}
	return snapshotPart{}, false, nil
}
