package ledgerstore

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/record"
)

// entrySpan is the lowest and highest entry of a ledger in a segment.
type entrySpan struct{ first, last base.EntryID }

type entryKey struct {
	ledger base.LedgerID
	entry  base.EntryID
}

// segment is one part of the write cache. It holds a reference to each
// payload (no copy); it is filled while active, immutable once sealed, and
// emptied after its flush committed.
type segment struct {
	seq     uint64 // flush sequence, given when sealed
	entries map[entryKey]*bufs.Buf
	spans   map[base.LedgerID]entrySpan // lowest and highest entry per ledger
	bytes   int64
}

func charge(b *bufs.Buf) int64 { return int64(cap(b.Bytes())) + entryOverhead }

// writeCache is the bounded write cache: a fixed set of segments that cycle
// through free -> active -> sealed (flushing) -> free.
type writeCache struct {
	segBytes int64
	mu       struct {
		sync.Mutex
		active     *segment   // nil while every segment is sealed
		sealed     []*segment // oldest first; sealed[0] is the one being flushed
		free       []*segment
		nextSeq    uint64
		flushedSeq uint64 // every segment sealed with seq <= flushedSeq is durable
		attempts   uint64 // flush attempts finished
		lastErr    error  // error of the last attempt; nil after a success
		readOnly   bool
		closed     bool
		waiting    int           // adds waiting for a segment
		changed    chan struct{} // closed and replaced whenever any of the above changes
	}
}

func (wc *writeCache) init(segBytes int64, n int, nextSeq uint64) {
	wc.segBytes = segBytes
	for range n {
		wc.mu.free = append(wc.mu.free, &segment{
			entries: map[entryKey]*bufs.Buf{},
			spans:   map[base.LedgerID]entrySpan{},
		})
	}
	wc.mu.active = wc.mu.free[len(wc.mu.free)-1]
	wc.mu.free = wc.mu.free[:len(wc.mu.free)-1]
	wc.mu.nextSeq = nextSeq
	wc.mu.flushedSeq = nextSeq - 1
	wc.mu.changed = make(chan struct{})
}

// broadcastLocked wakes everyone waiting on a change.
func (wc *writeCache) broadcastLocked() {
	close(wc.mu.changed)
	wc.mu.changed = make(chan struct{})
}

// sealLocked seals the active segment (which must be non-empty) and makes
// a free one active, if there is one. It reports whether it sealed.
func (wc *writeCache) sealLocked() bool {
	seg := wc.mu.active
	if seg == nil || len(seg.entries) == 0 {
		return false
	}
	seg.seq = wc.mu.nextSeq
	wc.mu.nextSeq++
	wc.mu.sealed = append(wc.mu.sealed, seg)
	wc.mu.active = nil
	if n := len(wc.mu.free); n > 0 {
		wc.mu.active = wc.mu.free[n-1]
		wc.mu.free = wc.mu.free[:n-1]
	}
	return true
}

func (wc *writeCache) setReadOnly(ro bool) {
	wc.mu.Lock()
	wc.mu.readOnly = ro
	wc.broadcastLocked()
	wc.mu.Unlock()
}

func (wc *writeCache) close() {
	wc.mu.Lock()
	wc.mu.closed = true
	wc.broadcastLocked()
	wc.mu.Unlock()
}

// AddEntry stores payload as entry of ledger in the write cache. It takes
// its own reference to payload (the caller keeps, and releases, its own);
// the bytes are not copied until the flush writes them into an entry log.
// The entry is readable at once and durable after the next Flush returns.
//
// When every write cache segment is full, AddEntry triggers a flush and
// waits for a segment to free up, or for ctx. It fails with an error
// wrapping base.ErrReadOnly when every directory is full, base.ErrNoLedger
// when the ledger was deleted, and base.ErrTooLarge for an entry larger
// than a write cache segment. Adding an entry that exists replaces it (the
// bookie only re-adds the same bytes, when the journal is replayed).
func (s *Store) AddEntry(ctx context.Context, ledger base.LedgerID, entry base.EntryID, payload *bufs.Buf) error {
	if entry < 0 {
		return fmt.Errorf("ledgerstore: add %d:%d: negative entry id", ledger, entry)
	}
	c := charge(payload)
	if payload.Len() > record.MaxPayload || c > s.wc.segBytes {
		return fmt.Errorf("ledgerstore: add %d:%d of %d bytes: %w (segment holds %d)",
			ledger, entry, payload.Len(), base.ErrTooLarge, s.wc.segBytes)
	}
	if err := s.meta.ensure(ledger); err != nil {
		return err
	}
	wc := &s.wc
	key := entryKey{ledger, entry}
	waited := false
	wc.mu.Lock()
	for {
		if wc.mu.closed {
			wc.mu.Unlock()
			return ErrClosed
		}
		if wc.mu.readOnly {
			wc.mu.Unlock()
			return ErrReadOnly
		}
		seg := wc.mu.active
		if seg != nil && (seg.bytes+c <= wc.segBytes || len(seg.entries) == 0) {
			if s.meta.isDeleted(ledger) {
				if waited {
					wc.mu.waiting--
				}
				wc.mu.Unlock()
				return fmt.Errorf("ledgerstore: ledger %d: %w (deleted)", ledger, base.ErrNoLedger)
			}
			if old, ok := seg.entries[key]; ok {
				seg.bytes -= charge(old)
				old.Release()
			}
			seg.entries[key] = payload.Retain()
			seg.bytes += c
			if sp, ok := seg.spans[ledger]; !ok {
				seg.spans[ledger] = entrySpan{entry, entry}
			} else if entry > sp.last || entry < sp.first {
				seg.spans[ledger] = entrySpan{min(sp.first, entry), max(sp.last, entry)}
			}
			if waited {
				wc.mu.waiting--
			}
			wc.mu.Unlock()
			s.stats.entriesAdded.Add(1)
			s.stats.bytesAdded.Add(int64(payload.Len()))
			return nil
		}
		if wc.sealLocked() {
			s.kickFlush()
			continue
		}
		// Every segment is sealed: wait for the flusher to free one.
		if !waited {
			waited = true
			wc.mu.waiting++
			s.stats.addWaits.Add(1)
		}
		ch := wc.mu.changed
		wc.mu.Unlock()
		s.kickFlush()
		if h := s.hooks.addWait; h != nil {
			h()
		}
		select {
		case <-ch:
		case <-ctx.Done():
			wc.mu.Lock()
			wc.mu.waiting--
			wc.mu.Unlock()
			return fmt.Errorf("ledgerstore: add %d:%d waiting for write cache space: %w", ledger, entry, ctx.Err())
		}
		wc.mu.Lock()
	}
}

// Flush returns when every entry added before the call is durable in the
// entry logs and the location index, and the ledger metadata changes made
// before the call are durable in the catalog. The bookie takes a journal
// mark before calling Flush and persists it as its checkpoint after Flush
// returns nil. On error nothing is lost: unflushed entries stay in the
// write cache (readable) and a later Flush retries.
func (s *Store) Flush(ctx context.Context) error {
	wc := &s.wc
	wc.mu.Lock()
	if wc.mu.closed {
		wc.mu.Unlock()
		return ErrClosed
	}
	wc.sealLocked()
	target := wc.mu.nextSeq - 1
	attempts := wc.mu.attempts
	wc.mu.Unlock()
	s.kickFlush()
	for {
		wc.mu.Lock()
		if wc.mu.flushedSeq >= target {
			wc.mu.Unlock()
			break
		}
		if wc.mu.attempts > attempts && wc.mu.lastErr != nil {
			err := wc.mu.lastErr
			wc.mu.Unlock()
			return err
		}
		ch := wc.mu.changed
		wc.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("ledgerstore: flush: %w", ctx.Err())
		case <-s.closing:
			return ErrClosed
		}
	}
	if err := s.cat.sync(&s.meta); err != nil {
		s.noteCatalogError(err)
		return err
	}
	return nil
}

// kickFlush wakes the flusher.
func (s *Store) kickFlush() {
	select {
	case s.flushKick <- struct{}{}:
	default:
	}
}

// nextToFlush returns the oldest sealed segment, or nil.
func (wc *writeCache) nextToFlush() *segment {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	if len(wc.mu.sealed) == 0 {
		return nil
	}
	return wc.mu.sealed[0]
}

// finish records the outcome of a flush of seg, the oldest sealed segment.
// After a success the segment leaves the cache (its entries are in the
// index now) and returns to the free list.
func (wc *writeCache) finish(seg *segment, err error) {
	wc.mu.Lock()
	wc.mu.attempts++
	wc.mu.lastErr = err
	if err != nil {
		wc.broadcastLocked()
		wc.mu.Unlock()
		return
	}
	wc.mu.sealed = wc.mu.sealed[1:]
	wc.mu.flushedSeq = seg.seq
	wc.mu.Unlock()

	// Unreachable by readers now: release outside the lock.
	for k, b := range seg.entries {
		b.Release()
		delete(seg.entries, k)
	}
	clear(seg.spans)
	seg.bytes = 0

	wc.mu.Lock()
	if wc.mu.active == nil {
		wc.mu.active = seg
	} else {
		wc.mu.free = append(wc.mu.free, seg)
	}
	wc.broadcastLocked()
	wc.mu.Unlock()
}

// get returns a reference to the cached payload of (ledger, entry).
func (wc *writeCache) get(k entryKey) *bufs.Buf {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	return wc.getLocked(k)
}

func (wc *writeCache) getLocked(k entryKey) *bufs.Buf {
	if seg := wc.mu.active; seg != nil {
		if b, ok := seg.entries[k]; ok {
			return b.Retain()
		}
	}
	for i := len(wc.mu.sealed) - 1; i >= 0; i-- {
		if b, ok := wc.mu.sealed[i].entries[k]; ok {
			return b.Retain()
		}
	}
	return nil
}

// holdsLocked reports whether any segment holds entries of l.
func (wc *writeCache) holdsLocked(l base.LedgerID) bool {
	if seg := wc.mu.active; seg != nil {
		if _, ok := seg.spans[l]; ok {
			return true
		}
	}
	for _, seg := range wc.mu.sealed {
		if _, ok := seg.spans[l]; ok {
			return true
		}
	}
	return false
}

// lastEntry is the highest entry of ledger in the cache.
func (wc *writeCache) lastEntry(l base.LedgerID) (base.EntryID, bool) {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	last, found := base.InvalidEntry, false
	check := func(seg *segment) {
		if sp, ok := seg.spans[l]; ok && sp.last > last {
			last, found = sp.last, true
		}
	}
	if wc.mu.active != nil {
		check(wc.mu.active)
	}
	for _, seg := range wc.mu.sealed {
		check(seg)
	}
	return last, found
}

// floor is the lowest entry of ledger l in the cache (MaxInt64 when none):
// entries below it are not in the cache.
func (wc *writeCache) floor(l base.LedgerID) base.EntryID {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	f := base.EntryID(math.MaxInt64)
	if seg := wc.mu.active; seg != nil {
		if sp, ok := seg.spans[l]; ok {
			f = min(f, sp.first)
		}
	}
	for _, seg := range wc.mu.sealed {
		if sp, ok := seg.spans[l]; ok {
			f = min(f, sp.first)
		}
	}
	return f
}

// usage is the bytes held and the entries held.
func (wc *writeCache) usage() (bytes int64, entries int, waiting int) {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	if seg := wc.mu.active; seg != nil {
		bytes += seg.bytes
		entries += len(seg.entries)
	}
	for _, seg := range wc.mu.sealed {
		bytes += seg.bytes
		entries += len(seg.entries)
	}
	return bytes, entries, wc.mu.waiting
}

// releaseAll drops every reference (at Close).
func (wc *writeCache) releaseAll() {
	wc.mu.Lock()
	segs := append([]*segment{}, wc.mu.sealed...)
	if wc.mu.active != nil {
		segs = append(segs, wc.mu.active)
	}
	wc.mu.sealed, wc.mu.active = nil, nil
	wc.mu.Unlock()
	for _, seg := range segs {
		for k, b := range seg.entries {
			b.Release()
			delete(seg.entries, k)
		}
	}
}
