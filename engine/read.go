package engine

import (
	"context"
	"fmt"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
)

// LastEntryID asks for the ledger's last entry in ReadEntry (BookKeeper's
// "read LAC" read: entry id -1).
const LastEntryID base.EntryID = -1

// ReadEntry returns entry e of ledger l (e == LastEntryID: the last entry the
// bookie holds, from which readers learn the piggybacked LAC). The buffer
// holds one reference the caller releases. Errors wrap base.ErrNoLedger,
// base.ErrNoEntry or base.ErrCorruption.
func (b *Bookie) ReadEntry(ctx context.Context, l base.LedgerID, e base.EntryID) (*bufs.Buf, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if e == LastEntryID {
		last, err := b.store.LastEntry(l)
		if err != nil {
			return nil, fmt.Errorf("engine: read %d:last: %w", l, err)
		}
		if last < 0 {
			return nil, fmt.Errorf("engine: read %d:last: %w", l, base.ErrNoEntry)
		}
		e = last
	}
	buf, err := b.store.ReadEntry(ctx, l, e)
	if err != nil {
		return nil, fmt.Errorf("engine: read %d:%d: %w", l, e, err)
	}
	return buf, nil
}

// ReadRange returns up to maxCount consecutive entries of l from first (about
// maxBytes at most), for batch reads; it stops early at the first missing
// entry. Each buffer holds one reference the caller releases.
func (b *Bookie) ReadRange(ctx context.Context, l base.LedgerID, first base.EntryID, maxCount int, maxBytes int64) ([]*bufs.Buf, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	out, err := b.store.ReadRange(ctx, l, first, maxCount, maxBytes)
	if err != nil {
		return nil, fmt.Errorf("engine: read %d:%d+%d: %w", l, first, maxCount, err)
	}
	return out, nil
}

// Fenced reports whether ledger l is fenced (false if it does not exist).
func (b *Bookie) Fenced(ctx context.Context, l base.LedgerID) (bool, error) {
	st, err := b.ledger(ctx, l)
	if err != nil || st == nil {
		return false, err
	}
	return st.fenced(), nil
}

// LastAddConfirmed is the highest LAC the bookie has seen for l on durable
// adds and explicit LAC writes (InvalidEntry if none), and whether the ledger
// exists.
func (b *Bookie) LastAddConfirmed(ctx context.Context, l base.LedgerID) (base.EntryID, bool, error) {
	st, err := b.ledger(ctx, l)
	if err != nil || st == nil {
		return base.InvalidEntry, false, err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.mu.lac, true, nil
}

// WaitLAC waits until l's LAC is beyond previous (a long-poll read) or ctx
// ends, and returns the LAC then known.
func (b *Bookie) WaitLAC(ctx context.Context, l base.LedgerID, previous base.EntryID) (base.EntryID, error) {
	st, err := b.ledger(ctx, l)
	if err != nil {
		return base.InvalidEntry, err
	}
	if st == nil {
		return base.InvalidEntry, fmt.Errorf("engine: ledger %d: %w", l, base.ErrNoLedger)
	}
	for {
		st.mu.Lock()
		lac := st.mu.lac
		if lac <= previous && st.mu.lacWait == nil {
			st.mu.lacWait = make(chan struct{})
		}
		ch := st.mu.lacWait
		st.mu.Unlock()
		if lac > previous {
			return lac, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return lac, ctx.Err()
		case <-b.closing:
			return lac, ErrClosed
		}
	}
}

// ReadLAC returns the explicit LAC blob last written for l (nil if none) and
// the ledger's last entry (nil if it has none): BookKeeper's READ_LAC answer.
func (b *Bookie) ReadLAC(ctx context.Context, l base.LedgerID) (explicit []byte, lastEntry *bufs.Buf, err error) {
	info, err := b.store.Ledger(l)
	if err != nil {
		return nil, nil, fmt.Errorf("engine: read LAC %d: %w", l, err)
	}
	if info.LastEntry >= 0 {
		lastEntry, err = b.store.ReadEntry(ctx, l, info.LastEntry)
		if err != nil {
			return nil, nil, fmt.Errorf("engine: read LAC %d: %w", l, err)
		}
	}
	return info.ExplicitLAC, lastEntry, nil
}

// DiskInfo sums the capacity and free space of the ledger directories'
// filesystems (GET_BOOKIE_INFO); a filesystem shared by several directories
// is counted once per directory, as BookKeeper does.
func (b *Bookie) DiskInfo() (total, free uint64, err error) {
	for _, d := range b.opts.Storage.Dirs {
		u, err := b.opts.FS.DiskUsage(d)
		if err != nil {
			return 0, 0, fmt.Errorf("engine: disk usage of %s: %w", d, err)
		}
		total += u.TotalBytes
		free += u.FreeBytes
	}
	return total, free, nil
}
