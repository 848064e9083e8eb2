package ledgerstore

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/record"
)

// entryKey names an entry.
type entryKey struct {
	ledger base.LedgerID
	entry  base.EntryID
}

// cachedEntry is one entry held by a write cache segment.
type cachedEntry struct {
	entry base.EntryID
	buf   *bufs.Buf
}

// ledgerEntries is what a segment holds of one ledger: its entries in
// arrival order. A ledger's entries almost always arrive in increasing
// order, so the slice is almost always sorted and an add is an append. An
// entry at or below the last one is looked up by binary search while the
// slice is sorted (a re-add replaces the entry in place); otherwise it is
// appended and the slice marked unsorted. An unsorted slice is sorted (the
// latest of equal entries kept) when a lookup needs it and when the segment
// is sealed, under the write cache's lock; a sealed segment's slices are
// sorted and never change.
type ledgerEntries struct {
	ledger      base.LedgerID
	ents        []cachedEntry
	sorted      bool         // ents strictly increasing by entry
	first, last base.EntryID // lowest and highest entry held
}

// normalize sorts ents by entry, keeping the latest of equal entries and
// releasing the others (seg's accounting follows).
func (le *ledgerEntries) normalize(seg *segment) {
	if le.sorted {
		return
	}
	// Stable: equal entries keep their arrival order, the last one wins.
	slices.SortStableFunc(le.ents, func(a, b cachedEntry) int { return cmp.Compare(a.entry, b.entry) })
	out := le.ents[:0]
	for i, ce := range le.ents {
		if i+1 < len(le.ents) && le.ents[i+1].entry == ce.entry {
			seg.bytes -= charge(ce.buf)
			seg.count--
			ce.buf.Release()
			continue
		}
		out = append(out, ce)
	}
	clear(le.ents[len(out):])
	le.ents = out
	le.sorted = true
}

// find returns the index of entry e in the sorted ents.
func (le *ledgerEntries) find(e base.EntryID) (int, bool) {
	if len(le.ents) == 0 || e < le.first || e > le.last {
		return 0, false
	}
	if n := len(le.ents); le.ents[n-1].entry == e {
		return n - 1, true // the newest entry: readers at the tail ask for it
	}
	return slices.BinarySearchFunc(le.ents, e, func(ce cachedEntry, e base.EntryID) int { return cmp.Compare(ce.entry, e) })
}

// segment is one part of the write cache. It holds a reference to each
// payload (no copy); it is filled while active, immutable once sealed, and
// emptied after its flush committed.
type segment struct {
	seq     uint64 // flush sequence, given when sealed
	ledgers map[base.LedgerID]*ledgerEntries
	list    []*ledgerEntries // the values of ledgers, in order of first add
	recent  *ledgerEntries   // the ledger of the latest add (skips the map)
	spare   []*ledgerEntries // emptied, kept for reuse with their memory
	count   int              // entries held
	bytes   int64
}

// maxSpareLedgers bounds the emptied per-ledger slices a segment keeps.
const maxSpareLedgers = 1 << 14

// add stores b (a reference the segment takes over) as entry e of ledger l.
func (seg *segment) add(l base.LedgerID, e base.EntryID, b *bufs.Buf) {
	le := seg.recent
	if le == nil || le.ledger != l {
		le = seg.ledgers[l]
		if le == nil {
			if n := len(seg.spare); n > 0 {
				le = seg.spare[n-1]
				seg.spare = seg.spare[:n-1]
			} else {
				le = &ledgerEntries{}
			}
			le.ledger, le.sorted, le.first, le.last = l, true, e, e
			seg.ledgers[l] = le
			seg.list = append(seg.list, le)
		}
		seg.recent = le
	}
	c := charge(b)
	switch {
	case len(le.ents) == 0:
		le.first, le.last = e, e
	case e > le.last:
		le.last = e
	default:
		if le.sorted {
			if i, ok := le.find(e); ok {
				// A re-add (journal replay): replace in place.
				old := le.ents[i].buf
				seg.bytes += c - charge(old)
				old.Release()
				le.ents[i].buf = b
				return
			}
		}
		// Out of order: sorted (and deduplicated) when needed.
		le.sorted = false
		le.first = min(le.first, e)
	}
	le.ents = append(le.ents, cachedEntry{e, b})
	seg.count++
	seg.bytes += c
}

// get returns a reference to entry e of ledger l, or nil. The caller holds
// the write cache's lock (an active segment's slice may be sorted here).
func (seg *segment) get(l base.LedgerID, e base.EntryID) *bufs.Buf {
	le := seg.ledgers[l]
	if le == nil || e < le.first || e > le.last {
		return nil
	}
	le.normalize(seg)
	if i, ok := le.find(e); ok {
		return le.ents[i].buf.Retain()
	}
	return nil
}

// seal sorts what is unsorted: a sealed segment is immutable.
func (seg *segment) seal() {
	for _, le := range seg.list {
		le.normalize(seg)
	}
}

// reset releases every entry and empties the segment, keeping its memory.
func (seg *segment) reset() {
	for _, le := range seg.list {
		for _, ce := range le.ents {
			ce.buf.Release()
		}
		clear(le.ents)
		le.ents = le.ents[:0]
		if len(seg.spare) < maxSpareLedgers {
			seg.spare = append(seg.spare, le)
		}
	}
	clear(seg.list)
	seg.list = seg.list[:0]
	clear(seg.ledgers)
	seg.recent = nil
	seg.count, seg.bytes = 0, 0
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
			ledgers: map[base.LedgerID]*ledgerEntries{},
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
	if seg == nil || seg.count == 0 {
		return false
	}
	seg.seal()
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
		if seg != nil && (seg.bytes+c <= wc.segBytes || seg.count == 0) {
			if s.meta.isDeleted(ledger) {
				if waited {
					wc.mu.waiting--
				}
				wc.mu.Unlock()
				return fmt.Errorf("ledgerstore: ledger %d: %w (deleted)", ledger, base.ErrNoLedger)
			}
			seg.add(ledger, entry, payload.Retain())
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
	seg.reset()

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
		if b := seg.get(k.ledger, k.entry); b != nil {
			return b
		}
	}
	for i := len(wc.mu.sealed) - 1; i >= 0; i-- {
		if b := wc.mu.sealed[i].get(k.ledger, k.entry); b != nil {
			return b
		}
	}
	return nil
}

// holdsLocked reports whether any segment holds entries of l.
func (wc *writeCache) holdsLocked(l base.LedgerID) bool {
	if seg := wc.mu.active; seg != nil {
		if _, ok := seg.ledgers[l]; ok {
			return true
		}
	}
	for _, seg := range wc.mu.sealed {
		if _, ok := seg.ledgers[l]; ok {
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
		if le, ok := seg.ledgers[l]; ok && le.last > last {
			last, found = le.last, true
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
		if le, ok := seg.ledgers[l]; ok {
			f = min(f, le.first)
		}
	}
	for _, seg := range wc.mu.sealed {
		if le, ok := seg.ledgers[l]; ok {
			f = min(f, le.first)
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
		entries += seg.count
	}
	for _, seg := range wc.mu.sealed {
		bytes += seg.bytes
		entries += seg.count
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
		seg.reset()
	}
}
