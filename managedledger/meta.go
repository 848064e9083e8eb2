package managedledger

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"sort"

	"github.com/magnetar/magnetar/internal/base"
)

// The metadata formats below are protocol buffers (proto2 wire format)
// written and read by hand. Field numbers 1-99 are those of Pulsar's
// MLDataFormats.proto, so Pulsar's tools decode our nodes; 100 and up are
// Magnetar's and are skipped by a Pulsar reader. These numbers are part of
// the on-disk format: never renumber them.
//
//	ManagedLedgerInfo (node /managed-ledgers/<name>)
//	  1  repeated LedgerInfo ledgerInfo
//	       1 int64 ledgerId   2 int64 entries   3 int64 size
//	       4 int64 timestamp (ms since the epoch; the ledger's close time)
//	  3  repeated KeyValue properties   (1 string key, 2 string value)
//
//	A ledger with entries == 0 is open (or was when the node was written):
//	opening the managed ledger recovers it. Closed empty ledgers are never
//	listed.
//
//	ManagedCursorInfo (node /managed-ledgers/<name>/<encoded cursor name>)
//	  1  int64 cursorsLedgerId   (-1: no cursor ledger; the state is inline)
//	  2  int64 markDeleteLedgerId   3 int64 markDeleteEntryId
//	  6  int64 lastActive (ms)
//	  100 bytes ackState (inline state, see ackstate.go; only when 1 is -1)
//
//	PositionInfo (one entry of a cursor ledger: a snapshot, or one part of
//	a snapshot split over several entries)
//	  1  int64 markDeleteLedgerId   2 int64 markDeleteEntryId
//	  100 bytes ackState part
//	  101 uint32 part index   102 uint32 part count (absent: 0 and 1)
//	  103 uint64 snapshot sequence
//	  104 fixed32 CRC-32C of the whole ackState (all parts joined)

const (
	wireVarint = 0
	wireI64    = 1
	wireBytes  = 2
	wireI32    = 5
)

func appendTag(b []byte, field, wire int) []byte {
	return binary.AppendUvarint(b, uint64(field)<<3|uint64(wire))
}

func appendInt64Field(b []byte, field int, v int64) []byte {
	b = appendTag(b, field, wireVarint)
	return binary.AppendUvarint(b, uint64(v))
}

func appendBytesField(b []byte, field int, v []byte) []byte {
	b = appendTag(b, field, wireBytes)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendFixed32Field(b []byte, field int, v uint32) []byte {
	b = appendTag(b, field, wireI32)
	return binary.LittleEndian.AppendUint32(b, v)
}

// protoField is one decoded field.
type protoField struct {
	num  int
	wire int
	v    uint64 // varint, fixed32 and fixed64 values
	data []byte // length-delimited value
}

// nextField decodes the field at the start of b and returns the rest.
func nextField(b []byte) (protoField, []byte, error) {
	key, n := binary.Uvarint(b)
	if n <= 0 {
		return protoField{}, nil, fmt.Errorf("%w: bad field key", ErrCorruptMetadata)
	}
	b = b[n:]
	f := protoField{num: int(key >> 3), wire: int(key & 7)}
	switch f.wire {
	case wireVarint:
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return f, nil, fmt.Errorf("%w: bad varint in field %d", ErrCorruptMetadata, f.num)
		}
		f.v, b = v, b[n:]
	case wireI64:
		if len(b) < 8 {
			return f, nil, fmt.Errorf("%w: short fixed64 in field %d", ErrCorruptMetadata, f.num)
		}
		f.v, b = binary.LittleEndian.Uint64(b), b[8:]
	case wireI32:
		if len(b) < 4 {
			return f, nil, fmt.Errorf("%w: short fixed32 in field %d", ErrCorruptMetadata, f.num)
		}
		f.v, b = uint64(binary.LittleEndian.Uint32(b)), b[4:]
	case wireBytes:
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return f, nil, fmt.Errorf("%w: bad length in field %d", ErrCorruptMetadata, f.num)
		}
		f.data, b = b[n:n+int(l)], b[n+int(l):]
	default:
		return f, nil, fmt.Errorf("%w: wire type %d in field %d", ErrCorruptMetadata, f.wire, f.num)
	}
	return f, b, nil
}

// ledgerMeta is one ledger of a managed ledger's list.
type ledgerMeta struct {
	id        base.LedgerID
	entries   int64
	size      int64
	timestamp int64 // ms
	// open: being written (in memory only; written as a LedgerInfo with
	// the id alone, as Pulsar writes its current ledger).
	open bool
}

// mlInfo is the content of a managed ledger's node.
type mlInfo struct {
	ledgers    []ledgerMeta
	properties map[string]string
}

func (m *mlInfo) marshal(b []byte) []byte {
	var inner []byte
	for _, l := range m.ledgers {
		inner = inner[:0]
		inner = appendInt64Field(inner, 1, int64(l.id))
		if !l.open {
			inner = appendInt64Field(inner, 2, l.entries)
			inner = appendInt64Field(inner, 3, l.size)
			inner = appendInt64Field(inner, 4, l.timestamp)
		}
		b = appendBytesField(b, 1, inner)
	}
	keys := make([]string, 0, len(m.properties))
	for k := range m.properties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		inner = inner[:0]
		inner = appendBytesField(inner, 1, []byte(k))
		inner = appendBytesField(inner, 2, []byte(m.properties[k]))
		b = appendBytesField(b, 3, inner)
	}
	return b
}

func unmarshalMLInfo(b []byte) (mlInfo, error) {
	var m mlInfo
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return m, err
		}
		b = rest
		switch {
		case f.num == 1 && f.wire == wireBytes:
			var l ledgerMeta
			hasID := false
			for in := f.data; len(in) > 0; {
				g, r, err := nextField(in)
				if err != nil {
					return m, err
				}
				in = r
				if g.wire != wireVarint {
					continue
				}
				switch g.num {
				case 1:
					l.id, hasID = base.LedgerID(g.v), true
				case 2:
					l.entries = int64(g.v)
				case 3:
					l.size = int64(g.v)
				case 4:
					l.timestamp = int64(g.v)
				}
			}
			if !hasID {
				return m, fmt.Errorf("%w: LedgerInfo without ledgerId", ErrCorruptMetadata)
			}
			m.ledgers = append(m.ledgers, l)
		case f.num == 3 && f.wire == wireBytes:
			var k, v string
			for in := f.data; len(in) > 0; {
				g, r, err := nextField(in)
				if err != nil {
					return m, err
				}
				in = r
				switch {
				case g.num == 1 && g.wire == wireBytes:
					k = string(g.data)
				case g.num == 2 && g.wire == wireBytes:
					v = string(g.data)
				}
			}
			if m.properties == nil {
				m.properties = make(map[string]string)
			}
			m.properties[k] = v
		}
	}
	if !slices.IsSortedFunc(m.ledgers, func(a, b ledgerMeta) int { return cmpInt(int64(a.id), int64(b.id)) }) {
		return m, fmt.Errorf("%w: ledger list not in ascending order", ErrCorruptMetadata)
	}
	return m, nil
}

// cursorInfo is the content of a cursor's node.
type cursorInfo struct {
	cursorLedger base.LedgerID // -1: none, state inline
	markDelete   base.Position
	lastActive   int64 // ms
	ackState     []byte
}

func (c *cursorInfo) marshal(b []byte) []byte {
	b = appendInt64Field(b, 1, int64(c.cursorLedger))
	b = appendInt64Field(b, 2, int64(c.markDelete.Ledger))
	b = appendInt64Field(b, 3, int64(c.markDelete.Entry))
	b = appendInt64Field(b, 6, c.lastActive)
	if c.cursorLedger < 0 && len(c.ackState) > 0 {
		b = appendBytesField(b, 100, c.ackState)
	}
	return b
}

func unmarshalCursorInfo(b []byte) (cursorInfo, error) {
	c := cursorInfo{cursorLedger: -1}
	seen := false
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return c, err
		}
		b = rest
		switch {
		case f.num == 1 && f.wire == wireVarint:
			c.cursorLedger, seen = base.LedgerID(int64(f.v)), true
		case f.num == 2 && f.wire == wireVarint:
			c.markDelete.Ledger = base.LedgerID(int64(f.v))
		case f.num == 3 && f.wire == wireVarint:
			c.markDelete.Entry = base.EntryID(int64(f.v))
		case f.num == 6 && f.wire == wireVarint:
			c.lastActive = int64(f.v)
		case f.num == 100 && f.wire == wireBytes:
			c.ackState = f.data
		}
	}
	if !seen {
		return c, fmt.Errorf("%w: ManagedCursorInfo without cursorsLedgerId", ErrCorruptMetadata)
	}
	return c, nil
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// snapshotPart is one entry of a cursor ledger.
type snapshotPart struct {
	markDelete  base.Position
	data        []byte
	index, of   int
	seq         uint64
	crc         uint32
	crcPresent  bool
	hasPosition bool
}

func (p *snapshotPart) marshal(b []byte) []byte {
	b = appendInt64Field(b, 1, int64(p.markDelete.Ledger))
	b = appendInt64Field(b, 2, int64(p.markDelete.Entry))
	b = appendBytesField(b, 100, p.data)
	if p.of > 1 {
		b = appendInt64Field(b, 101, int64(p.index))
		b = appendInt64Field(b, 102, int64(p.of))
	}
	b = appendInt64Field(b, 103, int64(p.seq))
	b = appendFixed32Field(b, 104, p.crc)
	return b
}

// snapshotPartOverhead bounds the bytes marshal adds around data.
const snapshotPartOverhead = 64

func unmarshalSnapshotPart(b []byte) (snapshotPart, error) {
	p := snapshotPart{of: 1}
	var hasL, hasE bool
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return p, err
		}
		b = rest
		switch {
		case f.num == 1 && f.wire == wireVarint:
			p.markDelete.Ledger, hasL = base.LedgerID(int64(f.v)), true
		case f.num == 2 && f.wire == wireVarint:
			p.markDelete.Entry, hasE = base.EntryID(int64(f.v)), true
		case f.num == 100 && f.wire == wireBytes:
			p.data = f.data
		case f.num == 101 && f.wire == wireVarint:
			p.index = int(f.v)
		case f.num == 102 && f.wire == wireVarint:
			p.of = int(f.v)
		case f.num == 103 && f.wire == wireVarint:
			p.seq = f.v
		case f.num == 104 && f.wire == wireI32:
			p.crc, p.crcPresent = uint32(f.v), true
		}
	}
	p.hasPosition = hasL && hasE
	if !p.hasPosition {
		return p, fmt.Errorf("%w: PositionInfo without a position", ErrCorruptMetadata)
	}
	if p.of < 1 || p.index < 0 || p.index >= p.of {
		return p, fmt.Errorf("%w: snapshot part %d of %d", ErrCorruptMetadata, p.index, p.of)
	}
	return p, nil
}
