package ledgerstore

import "github.com/magnetar/magnetar/internal/base"

// The location index: per ledger, a dense array of 12-byte slots indexed by
// entry id, cut into pages so that growing a long ledger never copies more
// than one page. See the package comment for why this structure.

const (
	pageShift = 12
	pageSlots = 1 << pageShift
	pageMask  = pageSlots - 1
)

// slot is where an entry's record lives. log 0 marks an empty slot (a hole:
// an entry this bookie does not store, or one not written yet).
type slot struct {
	log  uint32
	off  uint32 // record offset in the log
	size uint32 // record size: header plus payload
}

func (s slot) empty() bool { return s.log == 0 }

// ledgerIndex holds one ledger's slots. pages[i][j] is entry
// first + i*pageSlots + j; pages may be nil (untouched) or shorter than
// pageSlots (only the tail has been written).
type ledgerIndex struct {
	first base.EntryID // a multiple of pageSlots
	pages [][]slot
	last  base.EntryID // highest occupied entry; InvalidEntry when empty
	count int          // occupied slots
}

func newLedgerIndex() *ledgerIndex { return &ledgerIndex{last: base.InvalidEntry} }

func (li *ledgerIndex) get(e base.EntryID) (slot, bool) {
	if e < li.first {
		return slot{}, false
	}
	rel := e - li.first
	p := int(rel >> pageShift)
	if p >= len(li.pages) {
		return slot{}, false
	}
	page := li.pages[p]
	i := int(rel & pageMask)
	if i >= len(page) {
		return slot{}, false
	}
	s := page[i]
	return s, !s.empty()
}

// set stores s for e and returns what was there.
func (li *ledgerIndex) set(e base.EntryID, s slot) slot {
	if len(li.pages) == 0 {
		li.first = e &^ pageMask
	} else if e < li.first {
		nf := e &^ pageMask
		grow := int((li.first - nf) >> pageShift)
		pages := make([][]slot, grow+len(li.pages))
		copy(pages[grow:], li.pages)
		li.pages, li.first = pages, nf
	}
	rel := e - li.first
	p := int(rel >> pageShift)
	for p >= len(li.pages) {
		li.pages = append(li.pages, nil)
	}
	page := li.pages[p]
	i := int(rel & pageMask)
	if i >= len(page) {
		if i < cap(page) {
			page = page[:i+1]
		} else {
			nc := max(i+1, 2*cap(page), 8)
			nc = min(nc, pageSlots)
			np := make([]slot, i+1, nc)
			copy(np, page)
			page = np
		}
		li.pages[p] = page
	}
	old := page[i]
	page[i] = s
	if old.empty() {
		li.count++
	}
	if e > li.last {
		li.last = e
	}
	return old
}

// each calls fn for every occupied slot in entry order until fn returns false.
func (li *ledgerIndex) each(fn func(e base.EntryID, s slot) bool) {
	for p, page := range li.pages {
		for i, s := range page {
			if !s.empty() && !fn(li.first+base.EntryID(p<<pageShift+i), s) {
				return
			}
		}
	}
}

// from calls fn for the occupied slots at or after e, in order, until fn
// returns false.
func (li *ledgerIndex) from(e base.EntryID, fn func(e base.EntryID, s slot) bool) {
	if e < li.first {
		e = li.first
	}
	rel := e - li.first
	for p := int(rel >> pageShift); p < len(li.pages); p++ {
		page := li.pages[p]
		i := 0
		if p == int(rel>>pageShift) {
			i = int(rel & pageMask)
		}
		for ; i < len(page); i++ {
			if s := page[i]; !s.empty() && !fn(li.first+base.EntryID(p<<pageShift+i), s) {
				return
			}
		}
	}
}

// memBytes is the memory the index's slots take (for Stats).
func (li *ledgerIndex) memBytes() int64 {
	n := int64(len(li.pages)) * 24
	for _, p := range li.pages {
		n += int64(cap(p)) * 12
	}
	return n + 64
}
