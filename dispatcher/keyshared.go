package dispatcher

import (
	"fmt"
	"slices"
	"strconv"
)

// keySelector maps a key hash to the Key_Shared consumer that serves it.
//
// AutoSplit is a consistent hash ring over the hash space 0..65535, as
// Pulsar's ConsistentHashingStickyKeyConsumerSelector: a consumer named N
// owns the points StickyKeyHash(N + "\x00" + i + "\x00" + p) for p in
// 0..points-1, where i tells apart consumers of the same name (the lowest
// index no connected consumer of that name holds). A hash goes to the owner
// of the first point at or after it, wrapping to the first point. When two
// consumers claim one point, the later one takes it. A joining consumer thus
// takes over a few arcs from the others and a leaving one hands its arcs to
// its ring neighbours; every other hash keeps its consumer.
//
// Sticky mode uses the ranges each consumer names.
type keySelector struct {
	mode   KeySharedMode
	points int

	owners map[uint32]*Consumer // AutoSplit: point -> owner
	ring   []ringPoint          // AutoSplit: owners sorted by point
	names  map[string][]bool    // AutoSplit: name -> indexes in use

	ranges []rangeOwner // Sticky: sorted by start, disjoint
}

type ringPoint struct {
	hash uint32
	c    *Consumer
}

type rangeOwner struct {
	HashRange
	c *Consumer
}

func newKeySelector(mode KeySharedMode, points int) *keySelector {
	s := &keySelector{mode: mode, points: points}
	if mode == AutoSplit {
		s.owners = make(map[uint32]*Consumer)
		s.names = make(map[string][]bool)
	}
	return s
}

func (s *keySelector) pointHash(name string, index, point int) uint32 {
	key := make([]byte, 0, len(name)+24)
	key = append(key, name...)
	key = append(key, 0)
	key = strconv.AppendInt(key, int64(index), 10)
	key = append(key, 0)
	key = strconv.AppendInt(key, int64(point), 10)
	return StickyKeyHash(key)
}

// add places c; in Sticky mode it fails with ErrConsumerAssign if c's
// ranges are empty, out of bounds or overlap another consumer's.
func (s *keySelector) add(c *Consumer) error {
	if s.mode == Sticky {
		return s.addRanges(c)
	}
	used := s.names[c.name]
	idx := slices.Index(used, false)
	if idx < 0 {
		idx = len(used)
		used = append(used, true)
	} else {
		used[idx] = true
	}
	s.names[c.name] = used
	c.ringIndex = idx
	for p := 0; p < s.points; p++ {
		s.owners[s.pointHash(c.name, idx, p)] = c
	}
	s.rebuildRing()
	return nil
}

func (s *keySelector) addRanges(c *Consumer) error {
	if len(c.hashRanges) == 0 {
		return fmt.Errorf("%w: a sticky consumer must name at least one range", ErrConsumerAssign)
	}
	next := slices.Clone(s.ranges)
	for _, r := range c.hashRanges {
		if r.Start > r.End || r.End >= KeyHashRange {
			return fmt.Errorf("%w: range %v outside [0, %d]", ErrConsumerAssign, r, KeyHashRange-1)
		}
		for _, o := range next {
			if r.Start <= o.End && o.Start <= r.End {
				return fmt.Errorf("%w: range %v overlaps %v of consumer %q", ErrConsumerAssign, r, o.HashRange, o.c.name)
			}
		}
		next = append(next, rangeOwner{HashRange: r, c: c})
	}
	slices.SortFunc(next, func(a, b rangeOwner) int { return int(a.Start) - int(b.Start) })
	s.ranges = next
	return nil
}

func (s *keySelector) remove(c *Consumer) {
	if s.mode == Sticky {
		s.ranges = slices.DeleteFunc(s.ranges, func(r rangeOwner) bool { return r.c == c })
		return
	}
	for p := 0; p < s.points; p++ {
		h := s.pointHash(c.name, c.ringIndex, p)
		if s.owners[h] == c {
			delete(s.owners, h)
		}
	}
	if used := s.names[c.name]; c.ringIndex < len(used) {
		used[c.ringIndex] = false
		for len(used) > 0 && !used[len(used)-1] {
			used = used[:len(used)-1]
		}
		if len(used) == 0 {
			delete(s.names, c.name)
		} else {
			s.names[c.name] = used
		}
	}
	s.rebuildRing()
}

func (s *keySelector) rebuildRing() {
	s.ring = s.ring[:0]
	for h, c := range s.owners {
		s.ring = append(s.ring, ringPoint{hash: h, c: c})
	}
	slices.SortFunc(s.ring, func(a, b ringPoint) int { return int(a.hash) - int(b.hash) })
}

// pick returns the consumer serving hash, or nil if none does.
func (s *keySelector) pick(hash uint32) *Consumer {
	if s.mode == Sticky {
		i, _ := slices.BinarySearchFunc(s.ranges, hash, func(r rangeOwner, h uint32) int {
			switch {
			case r.End < h:
				return -1
			case r.Start > h:
				return 1
			}
			return 0
		})
		if i < len(s.ranges) && s.ranges[i].Start <= hash && hash <= s.ranges[i].End {
			return s.ranges[i].c
		}
		return nil
	}
	if len(s.ring) == 0 {
		return nil
	}
	i, _ := slices.BinarySearchFunc(s.ring, hash, func(p ringPoint, h uint32) int { return int(p.hash) - int(h) })
	if i == len(s.ring) {
		i = 0
	}
	return s.ring[i].c
}

// rangesOf lists the hash ranges c serves (for stats and tests).
func (s *keySelector) rangesOf(c *Consumer) []HashRange {
	var out []HashRange
	if s.mode == Sticky {
		for _, r := range s.ranges {
			if r.c == c {
				out = append(out, r.HashRange)
			}
		}
		return out
	}
	if len(s.ring) == 0 {
		return nil
	}
	start := uint32(0)
	for _, p := range s.ring {
		if p.c == c {
			out = append(out, HashRange{Start: start, End: p.hash})
		}
		start = p.hash + 1
	}
	if start < KeyHashRange && s.ring[0].c == c {
		out = append(out, HashRange{Start: start, End: KeyHashRange - 1})
	}
	return out
}
