package ledger

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"strconv"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/wire/bk"
)

// State is a ledger's state in its metadata. The values are those of
// LedgerMetadataFormat.State; part of the metadata format.
type State int32

// Ledger states.
const (
	StateOpen       State = 1 // OPEN: a writer may add entries
	StateInRecovery State = 2 // IN_RECOVERY: fenced, being closed by recovery
	StateClosed     State = 3 // CLOSED: LastEntry and Length are final
)

func (s State) String() string {
	switch s {
	case StateOpen:
		return "OPEN"
	case StateInRecovery:
		return "IN_RECOVERY"
	case StateClosed:
		return "CLOSED"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// Segment is one ensemble of a ledger's history: the bookies that hold
// the entries from FirstEntry up to the next segment's FirstEntry.
type Segment struct {
	FirstEntry base.EntryID
	Bookies    []string
}

// Metadata is a ledger's metadata (BookKeeper's LedgerMetadata). A
// *Metadata handed out by this package is never modified afterwards; every
// change makes a copy (Clone).
type Metadata struct {
	EnsembleSize int
	WriteQuorum  int
	AckQuorum    int
	State        State
	// LastEntry and Length are meaningful when the ledger is CLOSED
	// (LastEntry is -1 otherwise, as BookKeeper writes it).
	LastEntry base.EntryID
	Length    int64
	// Segments is the ensemble history, ordered by FirstEntry; the first
	// starts at 0.
	Segments   []Segment
	DigestType bk.DigestType
	Password   []byte
	// Ctime is the creation time in Unix milliseconds; HasCtime says
	// whether it is stored (BookKeeper omits it for some old ledgers).
	Ctime    int64
	HasCtime bool
	// Custom is user metadata (customMetadata).
	Custom map[string][]byte
	// CToken is BookKeeper's creator token (0 unless set by its client).
	CToken int64
}

// Clone returns a deep copy of m.
func (m *Metadata) Clone() *Metadata {
	c := *m
	c.Segments = make([]Segment, len(m.Segments))
	for i, s := range m.Segments {
		c.Segments[i] = Segment{FirstEntry: s.FirstEntry, Bookies: slices.Clone(s.Bookies)}
	}
	c.Password = slices.Clone(m.Password)
	if m.Custom != nil {
		c.Custom = make(map[string][]byte, len(m.Custom))
		for k, v := range m.Custom {
			c.Custom[k] = slices.Clone(v)
		}
	}
	return &c
}

// LastSegment is the current (last) segment.
func (m *Metadata) LastSegment() Segment { return m.Segments[len(m.Segments)-1] }

// EnsembleAt returns the bookies that hold entry e.
func (m *Metadata) EnsembleAt(e base.EntryID) []string {
	return ensembleAt(m.Segments, e)
}

func ensembleAt(segs []Segment, e base.EntryID) []string {
	i := len(segs) - 1
	for i > 0 && segs[i].FirstEntry > e {
		i--
	}
	return segs[i].Bookies
}

// Validate checks the invariants every stored metadata must satisfy.
func (m *Metadata) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMetadata, fmt.Sprintf(format, args...))
	}
	switch {
	case m.EnsembleSize < 1 || m.EnsembleSize > MaxEnsembleSize:
		return bad("ensemble size %d", m.EnsembleSize)
	case m.WriteQuorum < 1 || m.WriteQuorum > m.EnsembleSize:
		return bad("write quorum %d with ensemble size %d", m.WriteQuorum, m.EnsembleSize)
	case m.AckQuorum < 1 || m.AckQuorum > m.WriteQuorum:
		return bad("ack quorum %d with write quorum %d", m.AckQuorum, m.WriteQuorum)
	case m.State < StateOpen || m.State > StateClosed:
		return bad("state %d", int32(m.State))
	case m.DigestType < bk.DigestCRC32 || m.DigestType > bk.DigestDummy:
		return bad("digest type %d", int32(m.DigestType))
	case len(m.Segments) == 0:
		return bad("no ensemble")
	case m.Segments[0].FirstEntry != 0:
		return bad("first segment starts at entry %d", m.Segments[0].FirstEntry)
	}
	for i, s := range m.Segments {
		if len(s.Bookies) != m.EnsembleSize {
			return bad("segment %d has %d bookies, ensemble size %d", i, len(s.Bookies), m.EnsembleSize)
		}
		if i > 0 && s.FirstEntry <= m.Segments[i-1].FirstEntry {
			return bad("segment %d starts at %d, not after %d", i, s.FirstEntry, m.Segments[i-1].FirstEntry)
		}
		seen := make(map[string]bool, len(s.Bookies))
		for _, b := range s.Bookies {
			if b == "" || seen[b] {
				return bad("segment %d repeats or lacks a bookie: %q", i, s.Bookies)
			}
			seen[b] = true
		}
	}
	return nil
}

// The metadata format (BookKeeper's LedgerMetadataSerDe, version 3):
//
//	"BookieMetadataFormatVersion\t3\n"   text header
//	varint n                             length of the message
//	n bytes                              LedgerMetadataFormat, protobuf (proto2) binary
//
// LedgerMetadataFormat fields (DataFormats.proto), written in field-number
// order as protobuf-java does:
//
//	1  quorumSize     int32, required (W)
//	2  ensembleSize   int32, required (E)
//	3  length         int64, required
//	4  lastEntryId    int64 (-1 while not closed)
//	5  state          enum  OPEN=1 IN_RECOVERY=2 CLOSED=3, required
//	6  segment        repeated { 1 ensembleMember repeated string; 2 firstEntryId int64, required }
//	7  digestType     enum  CRC32=1 HMAC=2 CRC32C=3 DUMMY=4
//	8  password       bytes
//	9  ackQuorumSize  int32 (A; W when absent)
//	10 ctime          int64, Unix milliseconds
//	11 customMetadata repeated { 1 key string; 2 value bytes }
//	12 cToken         int64
//
// Custom metadata is written sorted by key (BookKeeper writes its hash
// map's order). Versions 1 and 2 (text formats of BookKeeper before 4.9)
// are not read.
const (
	metadataHeaderKey     = "BookieMetadataFormatVersion\t"
	metadataFormatVersion = 3
)

// metadata field numbers; part of the format.
const (
	mfQuorumSize    = 1
	mfEnsembleSize  = 2
	mfLength        = 3
	mfLastEntryID   = 4
	mfState         = 5
	mfSegment       = 6
	mfDigestType    = 7
	mfPassword      = 8
	mfAckQuorumSize = 9
	mfCtime         = 10
	mfCustom        = 11
	mfCToken        = 12

	sfEnsembleMember = 1
	sfFirstEntryID   = 2

	cfKey   = 1
	cfValue = 2
)

// Marshal encodes m in BookKeeper's metadata format version 3.
func (m *Metadata) Marshal() []byte {
	body := m.appendProto(nil)
	out := make([]byte, 0, len(metadataHeaderKey)+4+binary.MaxVarintLen64+len(body))
	out = append(out, metadataHeaderKey...)
	out = strconv.AppendInt(out, metadataFormatVersion, 10)
	out = append(out, '\n')
	out = binary.AppendUvarint(out, uint64(len(body)))
	return append(out, body...)
}

func (m *Metadata) appendProto(b []byte) []byte {
	b = pbVarint(b, mfQuorumSize, uint64(int64(m.WriteQuorum)))
	b = pbVarint(b, mfEnsembleSize, uint64(int64(m.EnsembleSize)))
	b = pbVarint(b, mfLength, uint64(m.Length))
	b = pbVarint(b, mfLastEntryID, uint64(m.LastEntry))
	b = pbVarint(b, mfState, uint64(int64(m.State)))
	for _, s := range m.Segments {
		n := pbVarintSize(sfFirstEntryID, uint64(s.FirstEntry))
		for _, id := range s.Bookies {
			n += pbBytesSize(sfEnsembleMember, len(id))
		}
		b = pbTagLen(b, mfSegment, n)
		for _, id := range s.Bookies {
			b = pbBytes(b, sfEnsembleMember, []byte(id))
		}
		b = pbVarint(b, sfFirstEntryID, uint64(s.FirstEntry))
	}
	b = pbVarint(b, mfDigestType, uint64(int64(m.DigestType)))
	b = pbBytes(b, mfPassword, m.Password)
	b = pbVarint(b, mfAckQuorumSize, uint64(int64(m.AckQuorum)))
	if m.HasCtime {
		b = pbVarint(b, mfCtime, uint64(m.Ctime))
	}
	keys := make([]string, 0, len(m.Custom))
	for k := range m.Custom {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := m.Custom[k]
		b = pbTagLen(b, mfCustom, pbBytesSize(cfKey, len(k))+pbBytesSize(cfValue, len(v)))
		b = pbBytes(b, cfKey, []byte(k))
		b = pbBytes(b, cfValue, v)
	}
	return pbVarint(b, mfCToken, uint64(m.CToken))
}

// UnmarshalMetadata decodes metadata in format version 3 and validates
// it. Errors wrap ErrMetadata.
func UnmarshalMetadata(data []byte) (*Metadata, error) {
	bad := func(format string, args ...any) (*Metadata, error) {
		return nil, fmt.Errorf("%w: %s", ErrMetadata, fmt.Sprintf(format, args...))
	}
	rest, ok := bytes.CutPrefix(data, []byte(metadataHeaderKey))
	if !ok {
		return bad("no format header")
	}
	nl := bytes.IndexByte(rest, '\n')
	if nl < 1 || nl > 10 {
		return bad("no format version")
	}
	version, err := strconv.Atoi(string(rest[:nl]))
	if err != nil {
		return bad("format version %q", rest[:nl])
	}
	if version != metadataFormatVersion {
		return bad("format version %d not supported (only %d)", version, metadataFormatVersion)
	}
	rest = rest[nl+1:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)-k) {
		return bad("bad message length")
	}
	m, err := decodeMetadataProto(rest[k : k+int(n)])
	if err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

func decodeMetadataProto(b []byte) (*Metadata, error) {
	m := &Metadata{LastEntry: base.InvalidEntry}
	var seen uint32
	hasAck := false
	r := pbReader{b: b}
	for r.more() {
		f, wt := r.next()
		if r.err != nil {
			break
		}
		switch {
		case wt == pbWireVarint && f <= mfCToken && f != mfSegment && f != mfPassword && f != mfCustom:
			v := r.varint()
			switch f {
			case mfQuorumSize:
				m.WriteQuorum = int(int32(v))
			case mfEnsembleSize:
				m.EnsembleSize = int(int32(v))
			case mfLength:
				m.Length = int64(v)
			case mfLastEntryID:
				m.LastEntry = base.EntryID(v)
			case mfState:
				m.State = State(int32(v))
			case mfDigestType:
				m.DigestType = bk.DigestType(int32(v))
			case mfAckQuorumSize:
				m.AckQuorum, hasAck = int(int32(v)), true
			case mfCtime:
				m.Ctime, m.HasCtime = int64(v), true
			case mfCToken:
				m.CToken = int64(v)
			}
			seen |= 1 << f
		case wt == pbWireBytes && f == mfSegment:
			seg, err := decodeSegment(r.bytes())
			if err != nil {
				return nil, err
			}
			m.Segments = append(m.Segments, seg)
		case wt == pbWireBytes && f == mfPassword:
			m.Password = bytes.Clone(r.bytes())
		case wt == pbWireBytes && f == mfCustom:
			k, v, err := decodeCustom(r.bytes())
			if err != nil {
				return nil, err
			}
			if m.Custom == nil {
				m.Custom = map[string][]byte{}
			}
			m.Custom[k] = v
		default:
			r.skip(wt)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	const required = 1<<mfQuorumSize | 1<<mfEnsembleSize | 1<<mfLength | 1<<mfState
	if seen&required != required {
		return nil, fmt.Errorf("%w: a required field is missing", ErrMetadata)
	}
	if !hasAck {
		m.AckQuorum = m.WriteQuorum
	}
	if m.Password == nil {
		m.Password = []byte{}
	}
	if seen&(1<<mfDigestType) == 0 {
		m.DigestType = bk.DigestCRC32 // the enum's default (its first value)
	}
	return m, nil
}

func decodeSegment(b []byte) (Segment, error) {
	var s Segment
	hasFirst := false
	r := pbReader{b: b}
	for r.more() {
		f, wt := r.next()
		if r.err != nil {
			break
		}
		switch {
		case f == sfEnsembleMember && wt == pbWireBytes:
			s.Bookies = append(s.Bookies, string(r.bytes()))
		case f == sfFirstEntryID && wt == pbWireVarint:
			s.FirstEntry, hasFirst = base.EntryID(r.varint()), true
		default:
			r.skip(wt)
		}
	}
	if r.err == nil && !hasFirst {
		r.err = fmt.Errorf("%w: segment without firstEntryId", ErrMetadata)
	}
	return s, r.err
}

func decodeCustom(b []byte) (string, []byte, error) {
	var k string
	v := []byte{}
	r := pbReader{b: b}
	for r.more() {
		f, wt := r.next()
		if r.err != nil {
			break
		}
		switch {
		case f == cfKey && wt == pbWireBytes:
			k = string(r.bytes())
		case f == cfValue && wt == pbWireBytes:
			v = bytes.Clone(r.bytes())
		default:
			r.skip(wt)
		}
	}
	return k, v, r.err
}

// Protocol buffers primitives (proto2 wire format) for the metadata.

const (
	pbWireVarint  = 0
	pbWireFixed64 = 1
	pbWireBytes   = 2
	pbWireFixed32 = 5
)

func pbTag(b []byte, field, wt int) []byte {
	return binary.AppendUvarint(b, uint64(field)<<3|uint64(wt))
}

func pbVarint(b []byte, field int, v uint64) []byte {
	return binary.AppendUvarint(pbTag(b, field, pbWireVarint), v)
}

func pbTagLen(b []byte, field, n int) []byte {
	return binary.AppendUvarint(pbTag(b, field, pbWireBytes), uint64(n))
}

func pbBytes(b []byte, field int, v []byte) []byte { return append(pbTagLen(b, field, len(v)), v...) }

func uvarintLen(v uint64) int { return 1 + (bits.Len64(v|1)-1)/7 }

func pbVarintSize(field int, v uint64) int { return uvarintLen(uint64(field)<<3) + uvarintLen(v) }

func pbBytesSize(field, n int) int { return uvarintLen(uint64(field)<<3) + uvarintLen(uint64(n)) + n }

type pbReader struct {
	b   []byte
	err error
}

func (r *pbReader) more() bool { return r.err == nil && len(r.b) > 0 }

func (r *pbReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: protobuf: %s", ErrMetadata, what)
	}
	r.b = nil
}

func (r *pbReader) varint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *pbReader) next() (field, wt int) {
	t := r.varint()
	field, wt = int(t>>3), int(t&7)
	if r.err == nil && (field < 1 || field > 1<<29-1) {
		r.fail("bad field number")
	}
	return field, wt
}

func (r *pbReader) bytes() []byte {
	n := r.varint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("length past the end")
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *pbReader) skip(wt int) {
	switch wt {
	case pbWireVarint:
		r.varint()
	case pbWireBytes:
		r.bytes()
	case pbWireFixed64, pbWireFixed32:
		n := 8
		if wt == pbWireFixed32 {
			n = 4
		}
		if len(r.b) < n {
			r.fail("fixed field past the end")
			return
		}
		r.b = r.b[n:]
	default:
		r.fail("unsupported wire type")
	}
}
