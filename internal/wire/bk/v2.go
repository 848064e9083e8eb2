package bk

import (
	"encoding/binary"
	"fmt"

	"github.com/magnetar/magnetar/internal/base"
)

// v2 protocol constants (BookieProtocol). They are part of the wire format.
const (
	// ProtocolVersion2 is the version a v2 client writes in its packet
	// headers (BookieProtocol.CURRENT_PROTOCOL_VERSION). Versions 0 to 2 are
	// accepted by a bookie.
	ProtocolVersion2 = 2

	// MasterKeyLen is the size of the master key in v2 frames: always an
	// SHA-1 (see GenerateMasterKey).
	MasterKeyLen = 20

	// PacketHeaderLen is the size of the v2 packet header word.
	PacketHeaderLen = 4

	// V2ResponseHeaderLen is the size of a v2 response body before its data:
	// packet header, rc, ledger id, entry id.
	V2ResponseHeaderLen = 4 + 4 + 8 + 8

	// LastAddConfirmed as the entry id of a read asks for the bookie's last
	// entry of the ledger (used to learn the LAC and by fencing reads).
	LastAddConfirmed base.EntryID = -1
)

// OpCode is a v2 operation.
type OpCode uint8

// v2 operations. Only ADD, READ, BATCH_READ and AUTH travel over v2; a
// BookKeeper bookie's v2 decoder refuses the others.
const (
	OpAddEntry       OpCode = 1 // ADDENTRY
	OpReadEntry      OpCode = 2 // READENTRY
	OpAuth           OpCode = 3 // AUTH
	OpReadLAC        OpCode = 4 // READ_LAC (v3 only in practice)
	OpWriteLAC       OpCode = 5 // WRITE_LAC (v3 only in practice)
	OpGetBookieInfo  OpCode = 6 // GET_BOOKIE_INFO (v3 only in practice)
	OpBatchReadEntry OpCode = 7 // BATCH_READ_ENTRY (BP-62)
)

func (op OpCode) String() string {
	switch op {
	case OpAddEntry:
		return "ADDENTRY"
	case OpReadEntry:
		return "READENTRY"
	case OpAuth:
		return "AUTH"
	case OpReadLAC:
		return "READ_LAC"
	case OpWriteLAC:
		return "WRITE_LAC"
	case OpGetBookieInfo:
		return "GET_BOOKIE_INFO"
	case OpBatchReadEntry:
		return "BATCH_READ_ENTRY"
	}
	return fmt.Sprintf("OpCode(%d)", uint8(op))
}

// Flags are the low 16 bits of a v2 packet header.
type Flags uint16

// v2 request flags.
const (
	FlagDoFencing    Flags = 0x1 // a read that fences the ledger; carries the master key
	FlagRecoveryAdd  Flags = 0x2 // an add by ledger recovery; allowed on a fenced ledger
	FlagHighPriority Flags = 0x4 // recovery traffic; allowed on a read-only bookie
)

// PacketHeader is the first word of every v2 frame body:
//
//	bits 31..24 version | 23..16 opcode | 15..0 flags
//
// A version 0 header is the opcode alone, as an int, with no flags.
type PacketHeader struct {
	Version uint8
	Op      OpCode
	Flags   Flags
}

// Uint32 is the header's wire form.
func (h PacketHeader) Uint32() uint32 {
	if h.Version == 0 {
		return uint32(h.Op)
	}
	return uint32(h.Version)<<24 | uint32(h.Op)<<16 | uint32(h.Flags)
}

// ParsePacketHeader splits a header word.
func ParsePacketHeader(v uint32) PacketHeader {
	version := uint8(v >> 24)
	if version == 0 {
		return PacketHeader{Op: OpCode(v)}
	}
	return PacketHeader{Version: version, Op: OpCode(v >> 16), Flags: Flags(v)}
}

// MasterKey authorises writes to (and fencing of) a ledger.
type MasterKey [MasterKeyLen]byte

// AuthMessage is the AUTH payload of both protocols (BookkeeperProtocol.proto
// AuthMessage). The slices alias the frame they were decoded from.
type AuthMessage struct {
	AuthPluginName []byte
	Payload        []byte
}

// AuthDisabledPluginName is the plugin name a BookKeeper bookie without
// authentication answers an AUTH request with (and an empty payload).
const AuthDisabledPluginName = "AuthDisabledPlugin"

// V2Request is a decoded v2 request. One value is reused for every frame of
// a connection; its slices alias the frame body.
type V2Request struct {
	Header PacketHeader

	// LedgerID and EntryID: ADD (read from the first 16 bytes of the
	// entry), READ and BATCH_READ (the first entry).
	LedgerID base.LedgerID
	EntryID  base.EntryID

	// MasterKey is set for ADD, and for READ and BATCH_READ when they fence
	// (FlagDoFencing with version >= 2).
	MasterKey    MasterKey
	HasMasterKey bool

	// Entry is the ADD payload: the entry exactly as the client built it
	// (32-byte header, digest, data), stored by the bookie opaquely.
	Entry []byte

	// BATCH_READ only.
	RequestID int64
	MaxCount  int32
	MaxSize   int64

	// AUTH only.
	Auth AuthMessage
}

// v2 request layouts (after the 4-byte packet header).
const (
	v2ReadBodyLen      = 8 + 8
	v2BatchReadBodyLen = 8 + 8 + 8 + 4 + 8
	entryIDsLen        = 16 // ledger id and entry id at the start of an entry
)

// Decode parses a v2 request frame body (the bytes after the length word)
// the way BookKeeper's RequestEnDeCoderPreV3 does: trailing bytes after a
// READ or BATCH_READ are ignored; an unknown opcode, a short body or an ADD
// entry shorter than its 16 id bytes is an error wrapping ErrMalformed.
func (r *V2Request) Decode(body []byte) error {
	*r = V2Request{}
	if len(body) < PacketHeaderLen {
		return fmt.Errorf("%w: v2 request of %d bytes", ErrMalformed, len(body))
	}
	r.Header = ParsePacketHeader(binary.BigEndian.Uint32(body))
	p := body[PacketHeaderLen:]
	fencing := r.Header.Flags&FlagDoFencing != 0 && r.Header.Version >= 2
	switch r.Header.Op {
	case OpAddEntry:
		if len(p) < MasterKeyLen+entryIDsLen {
			return fmt.Errorf("%w: v2 add request of %d bytes", ErrMalformed, len(body))
		}
		r.MasterKey = MasterKey(p[:MasterKeyLen])
		r.HasMasterKey = true
		r.Entry = p[MasterKeyLen:]
		r.LedgerID = base.LedgerID(binary.BigEndian.Uint64(r.Entry))
		r.EntryID = base.EntryID(binary.BigEndian.Uint64(r.Entry[8:]))
	case OpReadEntry, OpBatchReadEntry:
		n := v2ReadBodyLen
		if r.Header.Op == OpBatchReadEntry {
			n = v2BatchReadBodyLen
		}
		if fencing {
			n += MasterKeyLen
		}
		if len(p) < n {
			return fmt.Errorf("%w: v2 %v request of %d bytes", ErrMalformed, r.Header.Op, len(body))
		}
		r.LedgerID = base.LedgerID(binary.BigEndian.Uint64(p))
		r.EntryID = base.EntryID(binary.BigEndian.Uint64(p[8:]))
		p = p[16:]
		if r.Header.Op == OpBatchReadEntry {
			r.RequestID = int64(binary.BigEndian.Uint64(p))
			r.MaxCount = int32(binary.BigEndian.Uint32(p[8:]))
			r.MaxSize = int64(binary.BigEndian.Uint64(p[12:]))
			p = p[20:]
		}
		if fencing {
			r.MasterKey = MasterKey(p[:MasterKeyLen])
			r.HasMasterKey = true
		}
	case OpAuth:
		r.LedgerID, r.EntryID = -1, -1
		if err := r.Auth.Unmarshal(p); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: unknown v2 request opcode %d", ErrMalformed, uint8(r.Header.Op))
	}
	return nil
}

// IsFencing reports whether a read request fences the ledger.
func (r *V2Request) IsFencing() bool { return r.Header.Flags&FlagDoFencing != 0 }

// IsRecoveryAdd reports whether an add request comes from ledger recovery.
func (r *V2Request) IsRecoveryAdd() bool { return r.Header.Flags&FlagRecoveryAdd != 0 }

// IsHighPriority reports whether the request carries FlagHighPriority.
func (r *V2Request) IsHighPriority() bool { return r.Header.Flags&FlagHighPriority != 0 }

// VersionSupported reports whether a bookie serves the request's protocol
// version (0 to 2); otherwise it answers RCBadVersion.
func (r *V2Request) VersionSupported() bool { return r.Header.Version <= ProtocolVersion2 }

func appendHeader(dst []byte, h PacketHeader) []byte {
	return binary.BigEndian.AppendUint32(dst, h.Uint32())
}

// AppendAddRequestHead appends a v2 ADD request frame up to its entry:
// length word, packet header (version 2, flags), master key. The frame is
// completed by entryLen bytes of entry that the caller writes next, from one
// or several slices (typically the entry header from AppendEntryHeader and
// the payload), so the payload is never copied. key must not be nil.
func AppendAddRequestHead(dst []byte, flags Flags, key *MasterKey, entryLen int) []byte {
	dst = AppendFrameLength(dst, PacketHeaderLen+MasterKeyLen+entryLen)
	dst = appendHeader(dst, PacketHeader{Version: ProtocolVersion2, Op: OpAddEntry, Flags: flags})
	return append(dst, key[:]...)
}

// AppendAddRequest appends a whole v2 ADD request frame, copying entry.
func AppendAddRequest(dst []byte, flags Flags, key *MasterKey, entry []byte) []byte {
	return append(AppendAddRequestHead(dst, flags, key, len(entry)), entry...)
}

// AppendReadRequest appends a v2 READ request frame. key, when not nil, is
// appended after the ids; a bookie reads it only when flags has
// FlagDoFencing, which requires it.
func AppendReadRequest(dst []byte, flags Flags, ledger base.LedgerID, entry base.EntryID, key *MasterKey) []byte {
	n := PacketHeaderLen + v2ReadBodyLen
	if key != nil {
		n += MasterKeyLen
	}
	dst = AppendFrameLength(dst, n)
	dst = appendHeader(dst, PacketHeader{Version: ProtocolVersion2, Op: OpReadEntry, Flags: flags})
	dst = binary.BigEndian.AppendUint64(dst, uint64(ledger))
	dst = binary.BigEndian.AppendUint64(dst, uint64(entry))
	if key != nil {
		dst = append(dst, key[:]...)
	}
	return dst
}

// AppendBatchReadRequest appends a v2 BATCH_READ_ENTRY request frame (BP-62):
// up to maxCount entries from entry on, at most maxSize bytes in all. The
// requestID matches the response to the request. key as for
// AppendReadRequest.
func AppendBatchReadRequest(dst []byte, flags Flags, ledger base.LedgerID, entry base.EntryID,
	requestID int64, maxCount int32, maxSize int64, key *MasterKey) []byte {
	n := PacketHeaderLen + v2BatchReadBodyLen
	if key != nil {
		n += MasterKeyLen
	}
	dst = AppendFrameLength(dst, n)
	dst = appendHeader(dst, PacketHeader{Version: ProtocolVersion2, Op: OpBatchReadEntry, Flags: flags})
	dst = binary.BigEndian.AppendUint64(dst, uint64(ledger))
	dst = binary.BigEndian.AppendUint64(dst, uint64(entry))
	dst = binary.BigEndian.AppendUint64(dst, uint64(requestID))
	dst = binary.BigEndian.AppendUint32(dst, uint32(maxCount))
	dst = binary.BigEndian.AppendUint64(dst, uint64(maxSize))
	if key != nil {
		dst = append(dst, key[:]...)
	}
	return dst
}

// AppendAuthRequest appends a v2 AUTH request frame.
func AppendAuthRequest(dst []byte, m *AuthMessage) []byte {
	dst = AppendFrameLength(dst, PacketHeaderLen+m.Size())
	dst = appendHeader(dst, PacketHeader{Version: ProtocolVersion2, Op: OpAuth})
	return m.Append(dst)
}

// V2Response is a decoded v2 response. One value is reused for every frame;
// its slices alias the frame body.
type V2Response struct {
	Header   PacketHeader
	RC       RC
	LedgerID base.LedgerID
	EntryID  base.EntryID

	// Data: for READ the entry (empty on error); for BATCH_READ the
	// sequence of [4-byte size][entry], checked by Decode and walked with
	// BatchEntries.
	Data []byte

	// BATCH_READ only.
	RequestID int64

	// AUTH only.
	Auth AuthMessage
}

// Decode parses a v2 response frame body the way BookKeeper's
// ResponseEnDeCoderPreV3 does; a short body, an unknown opcode or a batch
// whose entry sizes overrun the frame is an error wrapping ErrMalformed.
func (r *V2Response) Decode(body []byte) error {
	*r = V2Response{}
	if len(body) < PacketHeaderLen {
		return fmt.Errorf("%w: v2 response of %d bytes", ErrMalformed, len(body))
	}
	r.Header = ParsePacketHeader(binary.BigEndian.Uint32(body))
	switch r.Header.Op {
	case OpAddEntry, OpReadEntry, OpBatchReadEntry:
		n := V2ResponseHeaderLen
		if r.Header.Op == OpBatchReadEntry {
			n += 8
		}
		if len(body) < n {
			return fmt.Errorf("%w: v2 %v response of %d bytes", ErrMalformed, r.Header.Op, len(body))
		}
		r.RC = RC(binary.BigEndian.Uint32(body[4:]))
		r.LedgerID = base.LedgerID(binary.BigEndian.Uint64(body[8:]))
		r.EntryID = base.EntryID(binary.BigEndian.Uint64(body[16:]))
		switch r.Header.Op {
		case OpReadEntry:
			r.Data = body[n:]
		case OpBatchReadEntry:
			r.RequestID = int64(binary.BigEndian.Uint64(body[24:]))
			r.Data = body[n:]
			it := BatchEntries(r.Data)
			for _, ok := it.Next(); ok; _, ok = it.Next() {
			}
			if it.Err() != nil {
				return it.Err()
			}
		}
		// ADD: BookKeeper ignores anything after the entry id.
	case OpAuth:
		r.RC = RCOK
		r.LedgerID, r.EntryID = -1, -1
		if err := r.Auth.Unmarshal(body[PacketHeaderLen:]); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: unknown v2 response opcode %d", ErrMalformed, uint8(r.Header.Op))
	}
	return nil
}

// BatchIter walks the [4-byte size][entry] sequence of a BATCH_READ
// response without allocating.
type BatchIter struct {
	rest []byte
	err  error
}

// BatchEntries iterates over the entries of a batch read response's Data.
func BatchEntries(data []byte) BatchIter { return BatchIter{rest: data} }

// Next returns the next entry (aliasing the data) and true, or false at the
// end or on malformed data (see Err).
func (it *BatchIter) Next() ([]byte, bool) {
	if len(it.rest) == 0 || it.err != nil {
		return nil, false
	}
	if len(it.rest) < 4 {
		it.err = fmt.Errorf("%w: batch read response: %d stray bytes", ErrMalformed, len(it.rest))
		return nil, false
	}
	n := binary.BigEndian.Uint32(it.rest)
	if uint64(n) > uint64(len(it.rest)-4) {
		it.err = fmt.Errorf("%w: batch read response: entry of %d bytes, %d left", ErrMalformed, n, len(it.rest)-4)
		return nil, false
	}
	e := it.rest[4 : 4+n : 4+n]
	it.rest = it.rest[4+n:]
	return e, true
}

// Err is the error that stopped the iteration, if any.
func (it *BatchIter) Err() error { return it.err }

// AppendAddResponse appends a v2 ADD response frame (28 bytes). version is
// the request's protocol version, which BookKeeper echoes.
func AppendAddResponse(dst []byte, version uint8, rc RC, ledger base.LedgerID, entry base.EntryID) []byte {
	return appendResponseHead(dst, version, OpAddEntry, rc, ledger, entry, 0)
}

func appendResponseHead(dst []byte, version uint8, op OpCode, rc RC, ledger base.LedgerID, entry base.EntryID, extra int) []byte {
	dst = AppendFrameLength(dst, V2ResponseHeaderLen+extra)
	dst = appendHeader(dst, PacketHeader{Version: version, Op: op})
	dst = binary.BigEndian.AppendUint32(dst, uint32(rc))
	dst = binary.BigEndian.AppendUint64(dst, uint64(ledger))
	return binary.BigEndian.AppendUint64(dst, uint64(entry))
}

// AppendReadResponseHead appends a v2 READ response frame up to its entry.
// The frame is completed by entryLen bytes the caller writes next (the
// stored entry, as its own write vector, uncopied). An error response has
// entryLen 0.
func AppendReadResponseHead(dst []byte, version uint8, rc RC, ledger base.LedgerID, entry base.EntryID, entryLen int) []byte {
	return appendResponseHead(dst, version, OpReadEntry, rc, ledger, entry, entryLen)
}

// AppendReadResponse appends a whole v2 READ response frame, copying data.
func AppendReadResponse(dst []byte, version uint8, rc RC, ledger base.LedgerID, entry base.EntryID, data []byte) []byte {
	return append(AppendReadResponseHead(dst, version, rc, ledger, entry, len(data)), data...)
}

// AppendBatchReadResponseHead appends a v2 BATCH_READ response frame up to
// its entries. The frame is completed by dataLen bytes the caller writes
// next: for each entry, AppendBatchEntrySize then the entry itself, so
// dataLen is the sum of 4+len(entry).
func AppendBatchReadResponseHead(dst []byte, version uint8, rc RC, ledger base.LedgerID, entry base.EntryID,
	requestID int64, dataLen int) []byte {
	dst = appendResponseHead(dst, version, OpBatchReadEntry, rc, ledger, entry, 8+dataLen)
	return binary.BigEndian.AppendUint64(dst, uint64(requestID))
}

// AppendBatchEntrySize appends the 4-byte size that precedes each entry of
// a batch read response.
func AppendBatchEntrySize(dst []byte, n int) []byte {
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// AppendBatchReadResponse appends a whole v2 BATCH_READ response, copying
// the entries.
func AppendBatchReadResponse(dst []byte, version uint8, rc RC, ledger base.LedgerID, entry base.EntryID,
	requestID int64, entries [][]byte) []byte {
	n := 0
	for _, e := range entries {
		n += 4 + len(e)
	}
	dst = AppendBatchReadResponseHead(dst, version, rc, ledger, entry, requestID, n)
	for _, e := range entries {
		dst = AppendBatchEntrySize(dst, len(e))
		dst = append(dst, e...)
	}
	return dst
}

// AppendAuthResponse appends a v2 AUTH response frame.
func AppendAuthResponse(dst []byte, version uint8, m *AuthMessage) []byte {
	dst = AppendFrameLength(dst, PacketHeaderLen+m.Size())
	dst = appendHeader(dst, PacketHeader{Version: version, Op: OpAuth})
	return m.Append(dst)
}
