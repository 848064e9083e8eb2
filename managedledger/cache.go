package managedledger

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
)

// The entry cache.
//
// Every managed ledger has an entryCache; a factory's cacheManager bounds
// them together (Options.CacheSizeBytes). An entry is cached by reference:
// the cache holds one reference to the very buffer the producer's bytes
// arrived in (or a ledger read returned), and hands each reader a reference
// of its own. Entries are inserted when an add is confirmed (if the managed
// ledger has an active cursor) and when a cache miss reads from the ledger
// layer. They leave:
//
//  1. as soon as every active cursor has read past them (the read floor the
//     managed ledger keeps up to date);
//  2. when the cache is over budget: oldest first, from the managed ledgers
//     whose oldest entry is oldest, down to 90% of the budget;
//  3. when older than CacheEvictionTimeThreshold (maintenance pass);
//  4. when their ledger is trimmed, or the managed ledger closes.
//
// Per managed ledger, entries live in runs of consecutive entry ids of one
// ledger, kept in position order: a tailing topic has one run that grows at
// the end and shrinks at the front, reusing its array, so inserting and
// evicting allocate nothing in steady state.
//
// Lock order: cacheManager.mu, then entryCache.mu. entryCache.mu is taken
// under managedLedger.mu, never the other way round.
type cacheManager struct {
	max  int64 // bytes; <= 0: caching off
	now  func() time.Time
	size atomic.Int64

	hits, misses, evicted atomic.Int64

	evicting atomic.Bool
	mu       struct {
		sync.Mutex
		caches map[*entryCache]struct{}
		order  []*entryCache // scratch for eviction
	}
}

func newCacheManager(max int64, now func() time.Time) *cacheManager {
	m := &cacheManager{max: max, now: now}
	m.mu.caches = make(map[*entryCache]struct{})
	return m
}

func (m *cacheManager) newCache() *entryCache {
	c := &entryCache{mgr: m}
	m.mu.Lock()
	m.mu.caches[c] = struct{}{}
	m.mu.Unlock()
	return c
}

// remove drops c (after clearing it).
func (m *cacheManager) remove(c *entryCache) {
	c.clear()
	m.mu.Lock()
	delete(m.mu.caches, c)
	m.mu.Unlock()
}

// overBudget reports whether an eviction pass is due.
func (m *cacheManager) overBudget() bool { return m.max > 0 && m.size.Load() > m.max }

// evict brings the cache down to 90% of its budget, oldest entries first.
// Only one pass runs at a time; a caller finding one under way returns.
func (m *cacheManager) evict() {
	if !m.overBudget() || !m.evicting.CompareAndSwap(false, true) {
		return
	}
	defer m.evicting.Store(false)
	target := m.max / 10 * 9
	m.mu.Lock()
	defer m.mu.Unlock()
	order := m.mu.order[:0]
	for c := range m.mu.caches {
		if c.bytes.Load() > 0 {
			order = append(order, c)
		}
	}
	type aged struct {
		c  *entryCache
		at int64
	}
	ages := make([]aged, len(order))
	for i, c := range order {
		ages[i] = aged{c, c.oldest()}
	}
	slices.SortFunc(ages, func(a, b aged) int { return cmpInt(a.at, b.at) })
	for _, a := range ages {
		if m.size.Load() <= target {
			break
		}
		a.c.evictOldest(m.size.Load() - target)
	}
	clear(order)
	m.mu.order = order[:0]
}

// evictOlderThan drops entries inserted before t from every cache.
func (m *cacheManager) evictOlderThan(t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for c := range m.mu.caches {
		c.evictOlderThan(t.UnixNano())
	}
}

type entryCache struct {
	mgr   *cacheManager
	bytes atomic.Int64
	mu    struct {
		sync.Mutex
		runs  []cacheRun  // ascending by position, never overlapping
		spare []cacheSlot // the array of a run that emptied, for the next
	}
}

type cacheRun struct {
	ledger base.LedgerID
	base   base.EntryID // entry id of slots[0]
	head   int          // slots[:head] were evicted
	slots  []cacheSlot
}

type cacheSlot struct {
	buf *bufs.Buf
	at  int64 // insertion time, UnixNano
}

func (r *cacheRun) first() base.EntryID { return r.base + base.EntryID(r.head) }
func (r *cacheRun) end() base.EntryID   { return r.base + base.EntryID(len(r.slots)) } // exclusive
func (r *cacheRun) empty() bool         { return r.head == len(r.slots) }

// popFront evicts the run's first entry and returns its size.
func (r *cacheRun) popFront() int64 {
	s := &r.slots[r.head]
	n := int64(s.buf.Len())
	s.buf.Release()
	*s = cacheSlot{}
	r.head++
	if r.head == len(r.slots) {
		r.base += base.EntryID(r.head)
		r.slots, r.head = r.slots[:0], 0
	} else if r.head >= 64 && r.head*2 >= len(r.slots) {
		n := copy(r.slots, r.slots[r.head:])
		clear(r.slots[n:])
		r.base += base.EntryID(r.head)
		r.slots, r.head = r.slots[:n], 0
	}
	return n
}

// findRunLocked returns the index of the run holding (or, with want, the
// first run after) position p.
func (c *entryCache) findRunLocked(l base.LedgerID, e base.EntryID) (int, bool) {
	runs := c.mu.runs
	// Tailing reads hit the last run: look there first.
	if n := len(runs); n > 0 {
		r := &runs[n-1]
		if r.ledger == l && e >= r.first() && e < r.end() {
			return n - 1, true
		}
	}
	i, _ := slices.BinarySearchFunc(runs, base.Position{Ledger: l, Entry: e}, func(r cacheRun, p base.Position) int {
		if r.ledger != p.Ledger {
			return cmpInt(int64(r.ledger), int64(p.Ledger))
		}
		if r.end() <= p.Entry {
			return -1
		}
		if r.first() > p.Entry {
			return 1
		}
		return 0
	})
	if i < len(runs) && runs[i].ledger == l && e >= runs[i].first() && e < runs[i].end() {
		return i, true
	}
	return i, false
}

// get returns a new reference to the cached entry at p, or nil.
func (c *entryCache) get(p base.Position) *bufs.Buf {
	if c.bytes.Load() == 0 {
		c.mgr.misses.Add(1)
		return nil
	}
	c.mu.Lock()
	i, ok := c.findRunLocked(p.Ledger, p.Entry)
	var b *bufs.Buf
	if ok {
		r := &c.mu.runs[i]
		b = r.slots[p.Entry-r.base].buf.Retain()
	}
	c.mu.Unlock()
	if b == nil {
		c.mgr.misses.Add(1)
	} else {
		c.mgr.hits.Add(1)
	}
	return b
}

// insert caches buf at p, taking over the caller's reference (released at
// once if p is cached already or caching is off). It reports whether the
// cache is now over budget (the caller runs mgr.evict once it holds no
// lock).
func (c *entryCache) insert(p base.Position, buf *bufs.Buf) bool {
	if c.mgr.max <= 0 {
		buf.Release()
		return false
	}
	at := c.mgr.now().UnixNano()
	c.mu.Lock()
	runs := c.mu.runs
	n := len(runs)
	switch {
	case n > 0 && runs[n-1].ledger == p.Ledger && runs[n-1].end() == p.Entry:
		// The tail: append.
		runs[n-1].slots = append(runs[n-1].slots, cacheSlot{buf, at})
	default:
		i, ok := c.findRunLocked(p.Ledger, p.Entry)
		if ok {
			c.mu.Unlock()
			buf.Release()
			return false
		}
		switch {
		case i > 0 && runs[i-1].ledger == p.Ledger && runs[i-1].end() == p.Entry:
			runs[i-1].slots = append(runs[i-1].slots, cacheSlot{buf, at})
			if i < n && runs[i].ledger == p.Ledger && runs[i].first() == p.Entry+1 {
				// Join with the next run.
				runs[i-1].slots = append(runs[i-1].slots, runs[i].slots[runs[i].head:]...)
				c.mu.runs = slices.Delete(runs, i, i+1)
			}
		case i < n && runs[i].ledger == p.Ledger && runs[i].first() == p.Entry+1:
			r := &runs[i]
			if r.head > 0 {
				r.head--
				r.slots[r.head] = cacheSlot{buf, at}
			} else {
				r.slots = slices.Insert(r.slots, 0, cacheSlot{buf, at})
				r.base--
			}
		default:
			slots := c.mu.spare
			c.mu.spare = nil
			if cap(slots) == 0 {
				slots = make([]cacheSlot, 0, 8)
			}
			slots = append(slots[:0], cacheSlot{buf, at})
			c.mu.runs = slices.Insert(runs, i, cacheRun{ledger: p.Ledger, base: p.Entry, slots: slots})
		}
	}
	c.mu.Unlock()
	sz := int64(buf.Len())
	c.bytes.Add(sz)
	return c.mgr.size.Add(sz) > c.mgr.max
}

func (c *entryCache) account(freed int64) {
	if freed != 0 {
		c.bytes.Add(-freed)
		c.mgr.size.Add(-freed)
		c.mgr.evicted.Add(1)
	}
}

// dropEmptyLocked removes empty runs.
func (c *entryCache) dropEmptyLocked() {
	c.mu.runs = slices.DeleteFunc(c.mu.runs, func(r cacheRun) bool {
		if r.empty() && cap(r.slots) > cap(c.mu.spare) {
			c.mu.spare = r.slots[:0]
		}
		return r.empty()
	})
	if len(c.mu.runs) == 0 {
		c.mu.runs = c.mu.runs[:0]
	}
}

// evictBelow drops every entry before p.
func (c *entryCache) evictBelow(p base.Position) {
	if c.bytes.Load() == 0 {
		return
	}
	freed := int64(0)
	c.mu.Lock()
	changed := false
	for i := range c.mu.runs {
		r := &c.mu.runs[i]
		if r.ledger > p.Ledger || (r.ledger == p.Ledger && r.first() >= p.Entry) {
			break
		}
		for !r.empty() && (r.ledger < p.Ledger || r.first() < p.Entry) {
			freed += r.popFront()
		}
		changed = true
	}
	if changed {
		c.dropEmptyLocked()
	}
	c.mu.Unlock()
	c.account(freed)
}

// evictLedger drops every entry of ledger l.
func (c *entryCache) evictLedger(l base.LedgerID) {
	if c.bytes.Load() == 0 {
		return
	}
	freed := int64(0)
	c.mu.Lock()
	for i := range c.mu.runs {
		r := &c.mu.runs[i]
		if r.ledger == l {
			for !r.empty() {
				freed += r.popFront()
			}
		}
	}
	c.dropEmptyLocked()
	c.mu.Unlock()
	c.account(freed)
}

// evictOldest drops entries from the front (lowest positions) until want
// bytes were freed or the cache is empty.
func (c *entryCache) evictOldest(want int64) {
	freed := int64(0)
	c.mu.Lock()
	for i := range c.mu.runs {
		r := &c.mu.runs[i]
		for !r.empty() && freed < want {
			freed += r.popFront()
		}
		if freed >= want {
			break
		}
	}
	c.dropEmptyLocked()
	c.mu.Unlock()
	c.account(freed)
}

// evictOlderThan drops entries inserted before t (UnixNano).
func (c *entryCache) evictOlderThan(t int64) {
	if c.bytes.Load() == 0 {
		return
	}
	freed := int64(0)
	c.mu.Lock()
	for i := range c.mu.runs {
		r := &c.mu.runs[i]
		for !r.empty() && r.slots[r.head].at < t {
			freed += r.popFront()
		}
	}
	c.dropEmptyLocked()
	c.mu.Unlock()
	c.account(freed)
}

// oldest is the insertion time of the cache's oldest entry (MaxInt64 when
// empty).
func (c *entryCache) oldest() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := int64(1<<63 - 1)
	for i := range c.mu.runs {
		r := &c.mu.runs[i]
		if !r.empty() {
			t = min(t, r.slots[r.head].at)
		}
	}
	return t
}

// clear drops everything.
func (c *entryCache) clear() {
	freed := int64(0)
	c.mu.Lock()
	for i := range c.mu.runs {
		r := &c.mu.runs[i]
		for !r.empty() {
			freed += r.popFront()
		}
	}
	c.mu.runs, c.mu.spare = nil, nil
	c.mu.Unlock()
	c.account(freed)
}

// entries is the number of cached entries (tests).
func (c *entryCache) entries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.mu.runs {
		n += len(r.slots) - r.head
	}
	return n
}
