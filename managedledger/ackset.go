package managedledger

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"

	"github.com/magnetar/magnetar/internal/base"
)

// ackSet is the set of individually acknowledged positions beyond a cursor's
// mark-delete position (Pulsar's individuallyDeletedMessages), built to hold
// millions of holes compactly. Per ledger, entries are split into chunks of
// 2^16; a chunk is, as in Roaring bitmaps, a sorted array of 16-bit offsets
// while it holds at most arrayMax of them, a bitmap (8 KiB) past that, and
// nothing at all once full. A million alternate acknowledgements take about
// 250 KiB; a long acknowledged run behind one unacknowledged entry takes a
// few bytes per 65,536 entries.
type ackSet struct {
	ledgers []ackLedger // ascending by id, none empty
	count   int64
}

type ackLedger struct {
	id     base.LedgerID
	chunks []ackChunk // ascending by key, none empty
}

const (
	chunkShift = 16
	chunkSize  = 1 << chunkShift
	chunkMask  = chunkSize - 1
	arrayMax   = 4096
	chunkWords = chunkSize / 64
)

type ackChunk struct {
	key  uint64 // entry >> chunkShift
	n    int32  // members; chunkSize means full (arr and bits nil)
	arr  []uint16
	bits *[chunkWords]uint64
}

func (c *ackChunk) full() bool { return c.n == chunkSize }

func (c *ackChunk) contains(lo uint16) bool {
	switch {
	case c.full():
		return true
	case c.bits != nil:
		return c.bits[lo>>6]&(1<<(lo&63)) != 0
	}
	_, ok := slices.BinarySearch(c.arr, lo)
	return ok
}

func (c *ackChunk) toBitmap() {
	if c.bits != nil {
		return
	}
	b := new([chunkWords]uint64)
	if c.full() {
		for i := range b {
			b[i] = ^uint64(0)
		}
	} else {
		for _, v := range c.arr {
			b[v>>6] |= 1 << (v & 63)
		}
	}
	c.bits, c.arr = b, nil
}

// settle picks the representation after a change of n.
func (c *ackChunk) settle() {
	switch {
	case c.n == chunkSize:
		c.bits, c.arr = nil, nil
	case c.bits != nil && c.n <= arrayMax/2:
		arr := make([]uint16, 0, c.n)
		for w, word := range c.bits {
			for word != 0 {
				t := bits.TrailingZeros64(word)
				arr = append(arr, uint16(w*64+t))
				word &= word - 1
			}
		}
		c.arr, c.bits = arr, nil
	}
}

// addRange adds [lo, hi] and returns how many were new.
func (c *ackChunk) addRange(lo, hi uint16) int32 {
	if c.full() {
		return 0
	}
	if c.bits == nil && int(c.n)+int(hi-lo)+1 <= arrayMax {
		// Replace the members within [lo, hi] by the whole range.
		i, _ := slices.BinarySearch(c.arr, lo)
		j := i
		for j < len(c.arr) && c.arr[j] <= hi {
			j++
		}
		width := int(hi-lo) + 1
		added := int32(width - (j - i))
		if added == 0 {
			return 0
		}
		tail := len(c.arr) - j
		c.arr = slices.Grow(c.arr, int(added))[:len(c.arr)+int(added)]
		copy(c.arr[i+width:], c.arr[j:j+tail])
		for k := 0; k < width; k++ {
			c.arr[i+k] = lo + uint16(k)
		}
		c.n += added
		return added
	}
	c.toBitmap()
	added := int32(0)
	for v := int(lo); v <= int(hi); {
		w := v >> 6
		// Bits [v&63, end] of word w.
		end := min(63, int(hi)-(w<<6))
		mask := (^uint64(0) >> (63 - end)) & (^uint64(0) << (v & 63))
		added += int32(bits.OnesCount64(mask &^ c.bits[w]))
		c.bits[w] |= mask
		v = (w + 1) << 6
	}
	c.n += added
	c.settle()
	return added
}

// removeThrough removes every member <= lo and returns how many it removed.
func (c *ackChunk) removeThrough(lo uint16) int32 {
	if c.full() {
		c.toBitmap()
	}
	before := c.n
	if c.bits == nil {
		i, ok := slices.BinarySearch(c.arr, lo)
		if ok {
			i++
		}
		c.arr = slices.Delete(c.arr, 0, i)
		c.n = int32(len(c.arr))
	} else {
		w := int(lo >> 6)
		for i := 0; i < w; i++ {
			c.bits[i] = 0
		}
		c.bits[w] &^= ^uint64(0) >> (63 - (lo & 63))
		n := 0
		for _, word := range c.bits {
			n += bits.OnesCount64(word)
		}
		c.n = int32(n)
		c.settle()
	}
	return before - c.n
}

// runEnd returns the last member of the run of consecutive members starting
// at lo, which must be a member.
func (c *ackChunk) runEnd(lo uint16) uint16 {
	switch {
	case c.full():
		return chunkMask
	case c.bits != nil:
		w := int(lo >> 6)
		word := ^c.bits[w] >> (lo & 63) // zeros mark members
		if word != 0 {
			return lo + uint16(bits.TrailingZeros64(word)) - 1
		}
		for w++; w < chunkWords; w++ {
			if c.bits[w] != ^uint64(0) {
				return uint16(w*64+bits.TrailingZeros64(^c.bits[w])) - 1
			}
		}
		return chunkMask
	}
	i, _ := slices.BinarySearch(c.arr, lo)
	end := lo
	for i++; i < len(c.arr) && c.arr[i] == end+1; i++ {
		end++
	}
	return end
}

// nextMember returns the smallest member >= lo.
func (c *ackChunk) nextMember(lo uint16) (uint16, bool) {
	switch {
	case c.full():
		return lo, true
	case c.bits != nil:
		w := int(lo >> 6)
		word := c.bits[w] &^ (uint64(1)<<(lo&63) - 1)
		for {
			if word != 0 {
				return uint16(w*64 + bits.TrailingZeros64(word)), true
			}
			w++
			if w == chunkWords {
				return 0, false
			}
			word = c.bits[w]
		}
	}
	i, _ := slices.BinarySearch(c.arr, lo)
	if i < len(c.arr) {
		return c.arr[i], true
	}
	return 0, false
}

// runCount is the number of runs of consecutive members.
func (c *ackChunk) runCount() int {
	switch {
	case c.full():
		return 1
	case c.bits != nil:
		n := 0
		carry := uint64(0)
		for _, w := range c.bits {
			n += bits.OnesCount64(w &^ (w<<1 | carry)) // first members of runs
			carry = w >> 63
		}
		return n
	}
	n := 0
	for i, v := range c.arr {
		if i == 0 || c.arr[i-1]+1 != v {
			n++
		}
	}
	return n
}

// runs calls f for each run [lo, hi] of consecutive members, in order.
func (c *ackChunk) runs(f func(lo, hi uint16) bool) bool {
	if c.full() {
		return f(0, chunkMask)
	}
	v, ok := c.nextMember(0)
	for ok {
		end := c.runEnd(v)
		if !f(v, end) {
			return false
		}
		if end == chunkMask {
			return true
		}
		v, ok = c.nextMember(end + 1)
	}
	return true
}

func (s *ackSet) findLedger(id base.LedgerID) (int, bool) {
	return slices.BinarySearchFunc(s.ledgers, id, func(l ackLedger, id base.LedgerID) int {
		return cmpInt(int64(l.id), int64(id))
	})
}

func (l *ackLedger) findChunk(key uint64) (int, bool) {
	return slices.BinarySearchFunc(l.chunks, key, func(c ackChunk, key uint64) int {
		switch {
		case c.key < key:
			return -1
		case c.key > key:
			return 1
		}
		return 0
	})
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Len is the number of positions in the set.
func (s *ackSet) Len() int64 { return s.count }

// contains reports whether p is in the set.
func (s *ackSet) contains(p base.Position) bool {
	if s.count == 0 || p.Entry < 0 {
		return false
	}
	i, ok := s.findLedger(p.Ledger)
	if !ok {
		return false
	}
	l := &s.ledgers[i]
	j, ok := l.findChunk(uint64(p.Entry) >> chunkShift)
	return ok && l.chunks[j].contains(uint16(p.Entry&chunkMask))
}

// add adds p and reports whether it was new.
func (s *ackSet) add(p base.Position) bool {
	return s.addRange(p.Ledger, p.Entry, p.Entry) == 1
}

// addRange adds entries [first, last] of ledger id and returns how many were
// new.
func (s *ackSet) addRange(id base.LedgerID, first, last base.EntryID) int64 {
	if first < 0 || last < first {
		return 0
	}
	i, ok := s.findLedger(id)
	if !ok {
		s.ledgers = slices.Insert(s.ledgers, i, ackLedger{id: id})
	}
	l := &s.ledgers[i]
	added := int64(0)
	for e := uint64(first); e <= uint64(last); {
		key := e >> chunkShift
		hi := min(uint64(last), key<<chunkShift|chunkMask)
		j, ok := l.findChunk(key)
		if !ok {
			l.chunks = slices.Insert(l.chunks, j, ackChunk{key: key})
		}
		added += int64(l.chunks[j].addRange(uint16(e&chunkMask), uint16(hi&chunkMask)))
		e = hi + 1
	}
	s.count += added
	return added
}

// removeThrough removes every position <= p and returns how many it
// removed.
func (s *ackSet) removeThrough(p base.Position) int64 {
	if s.count == 0 {
		return 0
	}
	removed := int64(0)
	i, ok := s.findLedger(p.Ledger)
	for k := 0; k < i; k++ {
		for _, c := range s.ledgers[k].chunks {
			removed += int64(c.n)
		}
	}
	if ok && p.Entry >= 0 {
		l := &s.ledgers[i]
		key := uint64(p.Entry) >> chunkShift
		j, found := l.findChunk(key)
		for k := 0; k < j; k++ {
			removed += int64(l.chunks[k].n)
		}
		drop := j
		if found {
			removed += int64(l.chunks[j].removeThrough(uint16(p.Entry & chunkMask)))
			if l.chunks[j].n == 0 {
				drop = j + 1
			}
		}
		l.chunks = slices.Delete(l.chunks, 0, drop)
		if len(l.chunks) == 0 {
			i++
		}
	}
	s.ledgers = slices.Delete(s.ledgers, 0, i)
	s.count -= removed
	if s.count == 0 {
		s.ledgers = nil
	}
	return removed
}

// runEnd returns the last entry of the run of consecutive acknowledged
// entries of p's ledger that starts at p, and whether p is in the set.
func (s *ackSet) runEnd(p base.Position) (base.EntryID, bool) {
	if s.count == 0 || p.Entry < 0 {
		return 0, false
	}
	i, ok := s.findLedger(p.Ledger)
	if !ok {
		return 0, false
	}
	l := &s.ledgers[i]
	key := uint64(p.Entry) >> chunkShift
	j, ok := l.findChunk(key)
	if !ok || !l.chunks[j].contains(uint16(p.Entry&chunkMask)) {
		return 0, false
	}
	end := l.chunks[j].runEnd(uint16(p.Entry & chunkMask))
	for end == chunkMask && j+1 < len(l.chunks) && l.chunks[j+1].key == key+1 && l.chunks[j+1].contains(0) {
		j++
		key++
		end = l.chunks[j].runEnd(0)
	}
	return base.EntryID(key<<chunkShift | uint64(end)), true
}

// countIn returns how many members lie in entries [first, last] of ledger id.
func (s *ackSet) countIn(id base.LedgerID, first, last base.EntryID) int64 {
	if s.count == 0 || last < first {
		return 0
	}
	i, ok := s.findLedger(id)
	if !ok {
		return 0
	}
	n := int64(0)
	s.ledgers[i].ranges(func(lo, hi base.EntryID) bool {
		if lo > last {
			return false
		}
		if hi >= first {
			n += int64(min(hi, last) - max(lo, first) + 1)
		}
		return true
	})
	return n
}

// ranges calls f for each maximal run of consecutive entries in the ledger.
func (l *ackLedger) ranges(f func(first, last base.EntryID) bool) bool {
	var cur [2]base.EntryID
	have := false
	for ci := range l.chunks {
		c := &l.chunks[ci]
		base0 := base.EntryID(c.key << chunkShift)
		if !c.runs(func(lo, hi uint16) bool {
			a, b := base0+base.EntryID(lo), base0+base.EntryID(hi)
			if have && cur[1]+1 == a {
				cur[1] = b
				return true
			}
			if have && !f(cur[0], cur[1]) {
				return false
			}
			cur, have = [2]base.EntryID{a, b}, true
			return true
		}) {
			return false
		}
	}
	if have {
		return f(cur[0], cur[1])
	}
	return true
}

// forEachRange calls f for each maximal run of consecutive acknowledged
// entries, in position order, until f returns false.
func (s *ackSet) forEachRange(f func(id base.LedgerID, first, last base.EntryID) bool) {
	for i := range s.ledgers {
		l := &s.ledgers[i]
		if !l.ranges(func(a, b base.EntryID) bool { return f(l.id, a, b) }) {
			return
		}
	}
}

// nextMember returns the first member >= p within p's ledger.
func (s *ackSet) nextMember(p base.Position) (base.EntryID, bool) {
	if s.count == 0 {
		return 0, false
	}
	i, ok := s.findLedger(p.Ledger)
	if !ok {
		return 0, false
	}
	l := &s.ledgers[i]
	e := uint64(max(p.Entry, 0))
	key := e >> chunkShift
	j, _ := l.findChunk(key)
	for ; j < len(l.chunks); j++ {
		c := &l.chunks[j]
		lo := uint16(0)
		if c.key == key {
			lo = uint16(e & chunkMask)
		}
		if v, ok := c.nextMember(lo); ok {
			return base.EntryID(c.key<<chunkShift | uint64(v)), true
		}
	}
	return 0, false
}

// nextUnacked returns the first position >= p (within p's ledger) that is
// not in the set.
func (s *ackSet) nextUnacked(p base.Position) base.Position {
	if end, ok := s.runEnd(p); ok {
		p.Entry = end + 1
	}
	return p
}

// clone returns a deep copy.
func (s *ackSet) clone() ackSet {
	out := ackSet{count: s.count, ledgers: make([]ackLedger, len(s.ledgers))}
	for i, l := range s.ledgers {
		nl := ackLedger{id: l.id, chunks: make([]ackChunk, len(l.chunks))}
		for j, c := range l.chunks {
			nc := ackChunk{key: c.key, n: c.n}
			if c.arr != nil {
				nc.arr = slices.Clone(c.arr)
			}
			if c.bits != nil {
				b := *c.bits
				nc.bits = &b
			}
			nl.chunks[j] = nc
		}
		out.ledgers[i] = nl
	}
	return out
}

// Encoding of the acknowledgement state (the ackState bytes of the cursor
// formats in meta.go), all integers unsigned varints unless noted:
//
//	version (1)
//	ledger count, then per ledger:
//	  ledger id minus the previous ledger id (the first: minus 0)
//	  chunk record count, then per record:
//	    key minus the previous record's last key (the first: the key)
//	    kind byte: 0 runs, 1 bitmap, 2 full
//	    runs:   run count, then per run: start minus the previous run's
//	            end+1 (the first: start), length minus 1
//	    bitmap: 1024 little-endian 64-bit words
//	    full:   how many consecutive full chunks start at key
//	batch count, then per partially acknowledged batch entry:
//	  ledger id, entry id, batch size, then ceil(size/64) little-endian
//	  64-bit words whose set bits are the acknowledged indexes
//
// Each chunk is written in whichever of the two forms is smaller, so a
// million alternate acknowledgements take about 250 KiB.
const ackStateVersion = 1

const (
	kindRuns   = 0
	kindBitmap = 1
	kindFull   = 2
)

// appendAckState appends the encoding of acks and batches to b.
func appendAckState(b []byte, acks *ackSet, batches map[base.Position]*batchAck) []byte {
	b = binary.AppendUvarint(b, ackStateVersion)
	b = binary.AppendUvarint(b, uint64(len(acks.ledgers)))
	prevID := base.LedgerID(0)
	var runBuf []byte
	for _, l := range acks.ledgers {
		b = binary.AppendUvarint(b, uint64(l.id-prevID))
		prevID = l.id
		// Consecutive full chunks are written as one: count them first.
		nChunks := 0
		for j := 0; j < len(l.chunks); j++ {
			if l.chunks[j].full() {
				for j+1 < len(l.chunks) && l.chunks[j+1].full() && l.chunks[j+1].key == l.chunks[j].key+1 {
					j++
				}
			}
			nChunks++
		}
		b = binary.AppendUvarint(b, uint64(nChunks))
		prevKey := uint64(0)
		for j := 0; j < len(l.chunks); j++ {
			c := l.chunks[j]
			b = binary.AppendUvarint(b, c.key-prevKey)
			prevKey = c.key
			if c.full() {
				n := 1
				for j+1 < len(l.chunks) && l.chunks[j+1].full() && l.chunks[j+1].key == l.chunks[j].key+1 {
					j++
					n++
				}
				b = append(b, kindFull)
				b = binary.AppendUvarint(b, uint64(n))
				prevKey = l.chunks[j].key
				continue
			}
			if 2*c.runCount() >= chunkWords*8 {
				// At least two bytes a run: the bitmap is smaller.
				b = append(b, kindBitmap)
				b = appendChunkBitmap(b, &c)
				continue
			}
			runBuf = runBuf[:0]
			nRuns := 0
			next := uint64(0)
			c.runs(func(lo, hi uint16) bool {
				runBuf = binary.AppendUvarint(runBuf, uint64(lo)-next)
				runBuf = binary.AppendUvarint(runBuf, uint64(hi-lo))
				next = uint64(hi) + 1
				nRuns++
				return true
			})
			if len(runBuf)+binary.MaxVarintLen32 < chunkWords*8 {
				b = append(b, kindRuns)
				b = binary.AppendUvarint(b, uint64(nRuns))
				b = append(b, runBuf...)
				continue
			}
			b = append(b, kindBitmap)
			b = appendChunkBitmap(b, &c)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(batches)))
	keys := make([]base.Position, 0, len(batches))
	for p := range batches {
		keys = append(keys, p)
	}
	slices.SortFunc(keys, base.Position.Compare)
	for _, p := range keys {
		ba := batches[p]
		b = binary.AppendUvarint(b, uint64(p.Ledger))
		b = binary.AppendUvarint(b, uint64(p.Entry))
		b = binary.AppendUvarint(b, uint64(ba.size))
		for _, w := range ba.acked {
			b = binary.LittleEndian.AppendUint64(b, w)
		}
	}
	return b
}

func appendChunkBitmap(b []byte, c *ackChunk) []byte {
	if c.bits != nil {
		for _, w := range c.bits {
			b = binary.LittleEndian.AppendUint64(b, w)
		}
		return b
	}
	var words [chunkWords]uint64
	for _, v := range c.arr {
		words[v>>6] |= 1 << (v & 63)
	}
	for _, w := range words {
		b = binary.LittleEndian.AppendUint64(b, w)
	}
	return b
}

type ackReader struct {
	b   []byte
	err error
}

func (r *ackReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = fmt.Errorf("%w: ack state: bad varint", ErrCorruptMetadata)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *ackReader) byte1() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.err = fmt.Errorf("%w: ack state: truncated", ErrCorruptMetadata)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *ackReader) word() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.err = fmt.Errorf("%w: ack state: truncated", ErrCorruptMetadata)
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// count reads a count that cannot exceed the bytes left divided by min
// bytes per item, so corrupt input cannot make us allocate much.
func (r *ackReader) count(minBytes int) int {
	v := r.uvarint()
	if r.err == nil && v > uint64(len(r.b)/minBytes) {
		r.err = fmt.Errorf("%w: ack state: count %d exceeds the data", ErrCorruptMetadata, v)
		return 0
	}
	return int(v)
}

// maxDecodedChunks bounds the chunks of one ledger a decoded state may
// expand to (2^18 chunks: 17 billion entries), so that corrupt input cannot
// make the decoder allocate without bound.
const maxDecodedChunks = 1 << 18

// decodeAckState is the inverse of appendAckState.
func decodeAckState(b []byte) (ackSet, map[base.Position]*batchAck, error) {
	var acks ackSet
	r := &ackReader{b: b}
	if v := r.uvarint(); r.err == nil && v != ackStateVersion {
		return acks, nil, fmt.Errorf("%w: ack state version %d", ErrCorruptMetadata, v)
	}
	nLedgers := r.count(2)
	prevID := uint64(0)
	for i := 0; i < nLedgers && r.err == nil; i++ {
		id := prevID + r.uvarint()
		if i > 0 && id <= prevID || id > 1<<62 {
			r.err = fmt.Errorf("%w: ack state: ledger ids out of order", ErrCorruptMetadata)
			break
		}
		prevID = id
		l := ackLedger{id: base.LedgerID(id)}
		nChunks := r.count(2)
		if r.err == nil {
			l.chunks = make([]ackChunk, 0, nChunks)
		}
		prevKey := uint64(0)
		for j := 0; j < nChunks && r.err == nil; j++ {
			key := prevKey + r.uvarint()
			if j > 0 && key <= prevKey || key > 1<<46 {
				r.err = fmt.Errorf("%w: ack state: chunk keys out of order", ErrCorruptMetadata)
				break
			}
			prevKey = key
			c := ackChunk{key: key}
			switch kind := r.byte1(); kind {
			case kindFull:
				n := r.uvarint()
				if r.err == nil && (n == 0 || n > maxDecodedChunks || key+n-1 > 1<<46 || len(l.chunks)+int(n) > maxDecodedChunks) {
					r.err = fmt.Errorf("%w: ack state: %d full chunks", ErrCorruptMetadata, n)
					break
				}
				for k := uint64(1); k < n && r.err == nil; k++ {
					l.chunks = append(l.chunks, ackChunk{key: key + k - 1, n: chunkSize})
					acks.count += chunkSize
				}
				c.key = key + n - 1
				prevKey = c.key
				c.n = chunkSize
			case kindBitmap:
				c.bits = new([chunkWords]uint64)
				n := 0
				for w := range c.bits {
					c.bits[w] = r.word()
					n += bits.OnesCount64(c.bits[w])
				}
				c.n = int32(n)
				if r.err == nil && n == 0 {
					r.err = fmt.Errorf("%w: ack state: empty chunk", ErrCorruptMetadata)
				}
				c.settle()
			case kindRuns:
				nRuns := r.count(2)
				next := uint64(0)
				for k := 0; k < nRuns && r.err == nil; k++ {
					lo := next + r.uvarint()
					hi := lo + r.uvarint()
					if hi > chunkMask || (k > 0 && lo < next) {
						r.err = fmt.Errorf("%w: ack state: bad run", ErrCorruptMetadata)
						break
					}
					c.addRange(uint16(lo), uint16(hi))
					next = hi + 1
					if next > chunkMask && k+1 < nRuns {
						r.err = fmt.Errorf("%w: ack state: runs past the chunk", ErrCorruptMetadata)
					}
				}
				if r.err == nil && c.n == 0 {
					r.err = fmt.Errorf("%w: ack state: empty chunk", ErrCorruptMetadata)
				}
			default:
				if r.err == nil {
					r.err = fmt.Errorf("%w: ack state: chunk kind %d", ErrCorruptMetadata, kind)
				}
			}
			l.chunks = append(l.chunks, c)
			acks.count += int64(c.n)
		}
		if r.err == nil && len(l.chunks) == 0 {
			r.err = fmt.Errorf("%w: ack state: empty ledger", ErrCorruptMetadata)
		}
		acks.ledgers = append(acks.ledgers, l)
	}
	var batches map[base.Position]*batchAck
	nBatches := r.count(3)
	for i := 0; i < nBatches && r.err == nil; i++ {
		p := base.Position{Ledger: base.LedgerID(r.uvarint()), Entry: base.EntryID(r.uvarint())}
		size := r.uvarint()
		if r.err == nil && (size == 0 || size > uint64(len(r.b))*8) {
			r.err = fmt.Errorf("%w: ack state: batch size %d", ErrCorruptMetadata, size)
			break
		}
		ba := newBatchAck(int(size))
		for w := range ba.acked {
			ba.acked[w] = r.word()
		}
		ba.recount()
		if batches == nil {
			batches = make(map[base.Position]*batchAck)
		}
		batches[p] = ba
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: ack state: %d trailing bytes", ErrCorruptMetadata, len(r.b))
	}
	if r.err != nil {
		return ackSet{}, nil, r.err
	}
	return acks, batches, nil
}

// batchAck records the acknowledged indexes of a partially acknowledged
// batch entry.
type batchAck struct {
	size  int
	n     int // acknowledged indexes
	acked []uint64
}

func newBatchAck(size int) *batchAck {
	return &batchAck{size: size, acked: make([]uint64, (size+63)/64)}
}

func (b *batchAck) recount() {
	if rem := b.size % 64; rem != 0 {
		b.acked[len(b.acked)-1] &= 1<<rem - 1
	}
	n := 0
	for _, w := range b.acked {
		n += bits.OnesCount64(w)
	}
	b.n = n
}

func (b *batchAck) set(i int) {
	if i < 0 || i >= b.size {
		return
	}
	if b.acked[i>>6]&(1<<(i&63)) == 0 {
		b.acked[i>>6] |= 1 << (i & 63)
		b.n++
	}
}

func (b *batchAck) indexes() []int {
	out := make([]int, 0, b.n)
	for w, word := range b.acked {
		for word != 0 {
			t := bits.TrailingZeros64(word)
			out = append(out, w*64+t)
			word &= word - 1
		}
	}
	return out
}
