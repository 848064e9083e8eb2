package dispatcher

import (
	"slices"

	"github.com/magnetar/magnetar/internal/base"
)

// replayRec is an entry of a Shared or Key_Shared subscription that waits
// to be (re)delivered: its position and what the dispatcher knows of it, not
// its bytes (they are read again from the cursor when it goes out).
type replayRec struct {
	pos          base.Position
	msgs         int32
	hash         uint32
	redeliveries uint32
	// reserved is the consumer a replay read in flight is for (its permits
	// are taken); nil when the record waits.
	reserved *Consumer
	dead     bool // removed; dropped at the next compaction
}

// replaySet keeps the waiting entries in position order, so redeliveries go
// out oldest first and, for Key_Shared, a key's entries keep their order.
// Removal marks a record dead and compaction drops the dead ones in bulk, so
// removing from the middle costs no copying each time.
type replaySet struct {
	recs []replayRec
	live int
	// hashes counts live records per key hash (Key_Shared only): a new entry
	// whose key has waiting entries must wait behind them.
	hashes map[uint32]int32
}

func (s *replaySet) len() int { return s.live }

// waitingFor reports whether entries of key hash h are waiting.
func (s *replaySet) waitingFor(h uint32) bool { return s.hashes != nil && s.hashes[h] > 0 }

// find returns the index of the live record at pos, or -1.
func (s *replaySet) find(pos base.Position) int {
	i, ok := slices.BinarySearchFunc(s.recs, pos, func(r replayRec, p base.Position) int { return r.pos.Compare(p) })
	if !ok || s.recs[i].dead {
		return -1
	}
	return i
}

func (s *replaySet) count(r *replayRec) {
	s.live++
	if s.hashes != nil {
		s.hashes[r.hash]++
	}
}

// add inserts a record; a record already there for the same position keeps
// the larger redelivery count.
func (s *replaySet) add(r replayRec) {
	n := len(s.recs)
	if n == 0 || s.recs[n-1].pos.Less(r.pos) {
		s.recs = append(s.recs, r)
		s.count(&r)
		return
	}
	i, ok := slices.BinarySearchFunc(s.recs, r.pos, func(x replayRec, p base.Position) int { return x.pos.Compare(p) })
	if ok {
		old := &s.recs[i]
		if old.dead {
			*old = r
			s.count(old)
		} else {
			old.redeliveries = max(old.redeliveries, r.redeliveries)
		}
		return
	}
	s.recs = slices.Insert(s.recs, i, r)
	s.count(&r)
}

// addSorted inserts records sorted by position, merging them in one pass.
func (s *replaySet) addSorted(rs []replayRec) {
	if len(rs) == 0 {
		return
	}
	if len(rs) < 8 || (len(s.recs) > 0 && s.recs[len(s.recs)-1].pos.Less(rs[0].pos)) {
		for _, r := range rs {
			s.add(r)
		}
		return
	}
	s.compact()
	merged := make([]replayRec, 0, len(s.recs)+len(rs))
	i, j := 0, 0
	for i < len(s.recs) || j < len(rs) {
		switch {
		case j == len(rs) || (i < len(s.recs) && s.recs[i].pos.Less(rs[j].pos)):
			merged = append(merged, s.recs[i])
			i++
		case i == len(s.recs) || rs[j].pos.Less(s.recs[i].pos):
			merged = append(merged, rs[j])
			s.count(&rs[j])
			j++
		default: // same position
			r := s.recs[i]
			r.redeliveries = max(r.redeliveries, rs[j].redeliveries)
			merged = append(merged, r)
			i++
			j++
		}
	}
	s.recs = merged
}

// remove drops the record at index i.
func (s *replaySet) remove(i int) {
	r := &s.recs[i]
	r.dead = true
	r.reserved = nil
	s.live--
	if s.hashes != nil {
		if s.hashes[r.hash]--; s.hashes[r.hash] <= 0 {
			delete(s.hashes, r.hash)
		}
	}
}

// compact drops dead records once they outnumber the live ones.
func (s *replaySet) compactIfSparse() {
	if dead := len(s.recs) - s.live; dead > 32 && dead > s.live {
		s.compact()
	}
}

func (s *replaySet) compact() {
	if len(s.recs) == s.live {
		return
	}
	n := 0
	for _, r := range s.recs {
		if !r.dead {
			s.recs[n] = r
			n++
		}
	}
	clear(s.recs[n:])
	s.recs = s.recs[:n]
}

// reset empties the set.
func (s *replaySet) reset() {
	clear(s.recs)
	s.recs = s.recs[:0]
	s.live = 0
	if s.hashes != nil {
		clear(s.hashes)
	}
}
