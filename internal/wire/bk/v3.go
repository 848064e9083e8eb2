package bk

import (
	"fmt"

	"github.com/magnetar/magnetar/internal/base"
)

// ProtocolVersion is BKPacketHeader.version. The values are part of the wire
// format.
type ProtocolVersion int32

// Protocol versions. A bookie serves v3 requests only with VersionThree
// (otherwise it answers StatusBadVersion).
const (
	VersionOne   ProtocolVersion = 1
	VersionTwo   ProtocolVersion = 2
	VersionThree ProtocolVersion = 3
)

// OperationType is BKPacketHeader.operation. The values are part of the
// wire format.
type OperationType int32

// v3 operations.
const (
	OperationReadEntry                OperationType = 1
	OperationAddEntry                 OperationType = 2
	OperationRangeReadEntry           OperationType = 3 // never implemented by BookKeeper
	OperationRangeAddEntry            OperationType = 4 // never implemented by BookKeeper
	OperationAuth                     OperationType = 5
	OperationWriteLAC                 OperationType = 6
	OperationReadLAC                  OperationType = 7
	OperationGetBookieInfo            OperationType = 8
	OperationStartTLS                 OperationType = 9
	OperationForceLedger              OperationType = 10
	OperationGetListOfEntriesOfLedger OperationType = 11
	OperationBatchReadEntry           OperationType = 12 // sent over v2 only
)

func (op OperationType) String() string {
	names := [...]string{"", "READ_ENTRY", "ADD_ENTRY", "RANGE_READ_ENTRY", "RANGE_ADD_ENTRY", "AUTH",
		"WRITE_LAC", "READ_LAC", "GET_BOOKIE_INFO", "START_TLS", "FORCE_LEDGER",
		"GET_LIST_OF_ENTRIES_OF_LEDGER", "BATCH_READ_ENTRY"}
	if op > 0 && int(op) < len(names) {
		return names[op]
	}
	return fmt.Sprintf("OperationType(%d)", int32(op))
}

// ReadFlag is ReadRequest.flag.
type ReadFlag int32

// Read request flags (one at most per request).
const (
	ReadFenceLedger    ReadFlag = 1 // FENCE_LEDGER: fence; MasterKey required
	ReadEntryPiggyback ReadFlag = 2 // ENTRY_PIGGYBACK: long poll returns the entry too
)

// AddFlag is AddRequest.flag.
type AddFlag int32

// AddRecoveryAdd marks an add by ledger recovery (RECOVERY_ADD).
const AddRecoveryAdd AddFlag = 1

// WriteFlagDeferredSync is bit 0 of AddRequest.writeFlags: the bookie may
// acknowledge before the journal sync; a later FORCE_LEDGER syncs.
const WriteFlagDeferredSync int32 = 1

// GetBookieInfoRequest.requested bits.
const (
	BookieInfoTotalDiskCapacity int64 = 0x1
	BookieInfoFreeDiskSpace     int64 = 0x2
)

// DefaultHighPriority is the BKPacketHeader.priority a BookKeeper client
// sets on high-priority (recovery) requests.
const DefaultHighPriority uint32 = 100

// BKPacketHeader heads every v3 request and response. Responses are matched
// to requests by TxnID (and Operation).
type BKPacketHeader struct {
	Version     ProtocolVersion
	Operation   OperationType
	TxnID       uint64
	Priority    uint32
	HasPriority bool
}

// ContextPair is an MDC key/value pair a client may attach to a request.
type ContextPair struct {
	Key   []byte
	Value []byte
}

// ReadRequest reads an entry, fences a ledger, or long-polls for the LAC.
type ReadRequest struct {
	Flag    ReadFlag
	HasFlag bool

	LedgerID base.LedgerID
	EntryID  base.EntryID // LastAddConfirmed (-1) asks for the last entry

	MasterKey []byte // nil when absent; required with ReadFenceLedger

	// Long poll: wait (up to TimeOut milliseconds) until the LAC passes
	// PreviousLAC.
	PreviousLAC    int64
	HasPreviousLAC bool
	TimeOut        int64
	HasTimeOut     bool
}

// AddRequest adds an entry. Body is the entry as the client built it.
type AddRequest struct {
	Flag    AddFlag
	HasFlag bool

	LedgerID  base.LedgerID
	EntryID   base.EntryID
	MasterKey []byte
	Body      []byte

	WriteFlags    int32
	HasWriteFlags bool
}

// WriteLacRequest records an explicit LAC; Body is the LAC blob
// (AppendLAC).
type WriteLacRequest struct {
	LedgerID  base.LedgerID
	LAC       base.EntryID
	MasterKey []byte
	Body      []byte
}

// ReadLacRequest asks for the explicit LAC and the last entry of a ledger.
type ReadLacRequest struct {
	LedgerID base.LedgerID
}

// ForceLedgerRequest makes the deferred-sync adds of a ledger durable.
type ForceLedgerRequest struct {
	LedgerID base.LedgerID
}

// GetBookieInfoRequest asks for disk capacity and free space (Requested is
// a mask of BookieInfo* bits).
type GetBookieInfoRequest struct {
	Requested    int64
	HasRequested bool
}

// GetListOfEntriesOfLedgerRequest asks which entries of a ledger a bookie
// holds.
type GetListOfEntriesOfLedgerRequest struct {
	LedgerID base.LedgerID
}

// Request is a v3 request (BookkeeperProtocol.proto Request). Which
// sub-request is meaningful is said by Header.Operation; a Has flag tells
// whether a sub-request was present. One value is reused for every frame of
// a connection; its slices alias the frame body.
type Request struct {
	Header BKPacketHeader

	Read                     ReadRequest
	HasRead                  bool
	Add                      AddRequest
	HasAdd                   bool
	Auth                     AuthMessage
	HasAuth                  bool
	WriteLac                 WriteLacRequest
	HasWriteLac              bool
	ReadLac                  ReadLacRequest
	HasReadLac               bool
	GetBookieInfo            GetBookieInfoRequest
	HasGetBookieInfo         bool
	HasStartTLS              bool // StartTLSRequest has no fields
	ForceLedger              ForceLedgerRequest
	HasForceLedger           bool
	GetListOfEntriesOfLedger GetListOfEntriesOfLedgerRequest
	HasGetListOfEntries      bool

	Context []ContextPair
}

// ReadResponse answers a ReadRequest.
type ReadResponse struct {
	Status   StatusCode
	LedgerID base.LedgerID
	EntryID  base.EntryID
	Body     []byte // nil when absent

	MaxLAC                int64 // piggybacked LAC (long poll)
	HasMaxLAC             bool
	LACUpdateTimestamp    int64
	HasLACUpdateTimestamp bool
}

// AddResponse answers an AddRequest.
type AddResponse struct {
	Status   StatusCode
	LedgerID base.LedgerID
	EntryID  base.EntryID
}

// WriteLacResponse answers a WriteLacRequest.
type WriteLacResponse struct {
	Status   StatusCode
	LedgerID base.LedgerID
}

// ForceLedgerResponse answers a ForceLedgerRequest.
type ForceLedgerResponse struct {
	Status   StatusCode
	LedgerID base.LedgerID
}

// ReadLacResponse answers a ReadLacRequest: LACBody is the explicit LAC
// blob, LastEntryBody the last entry stored (each nil when absent).
type ReadLacResponse struct {
	Status        StatusCode
	LedgerID      base.LedgerID
	LACBody       []byte
	LastEntryBody []byte
}

// GetBookieInfoResponse answers a GetBookieInfoRequest.
type GetBookieInfoResponse struct {
	Status               StatusCode
	TotalDiskCapacity    int64
	HasTotalDiskCapacity bool
	FreeDiskSpace        int64
	HasFreeDiskSpace     bool
}

// GetListOfEntriesOfLedgerResponse answers a GetListOfEntriesOfLedgerRequest
// (Availability in BookKeeper's condensed bitmap format, nil when absent).
type GetListOfEntriesOfLedgerResponse struct {
	Status       StatusCode
	LedgerID     base.LedgerID
	Availability []byte
}

// Response is a v3 response (BookkeeperProtocol.proto Response). Status is
// the overall status (StatusBadRequest for an unsupported operation); each
// sub-response has its own. One value is reused for every frame; its slices
// alias the frame body.
type Response struct {
	Header BKPacketHeader
	Status StatusCode

	Read                     ReadResponse
	HasRead                  bool
	Add                      AddResponse
	HasAdd                   bool
	Auth                     AuthMessage
	HasAuth                  bool
	WriteLac                 WriteLacResponse
	HasWriteLac              bool
	ReadLac                  ReadLacResponse
	HasReadLac               bool
	GetBookieInfo            GetBookieInfoResponse
	HasGetBookieInfo         bool
	HasStartTLS              bool // StartTLSResponse has no fields
	ForceLedger              ForceLedgerResponse
	HasForceLedger           bool
	GetListOfEntriesOfLedger GetListOfEntriesOfLedgerResponse
	HasGetListOfEntries      bool
}

// Field numbers (BookkeeperProtocol.proto); part of the wire format.
const (
	fHeader        = 1
	fStatus        = 2
	fRead          = 100
	fAdd           = 101
	fAuth          = 102
	fWriteLac      = 103
	fReadLac       = 104
	fGetBookieInfo = 105
	fStartTLS      = 106
	fForceLedger   = 107
	fGetListOfEnts = 108
	fContext       = 200
	fFlag          = 100 // ReadRequest.flag, AddRequest.flag
)

// Required-field masks: bit i-1 for field number i.
const (
	reqHeader      = 0b111
	reqReadReq     = 0b11
	reqAddReq      = 0b1111
	reqWriteLacReq = 0b1111
	reqLedgerOnly  = 0b1
	reqPair        = 0b11
	reqReadResp    = 0b111
	reqAddResp     = 0b111
	reqStatusLedg  = 0b11
	reqStatusOnly  = 0b1
)

func seenBit(field int) uint32 {
	if field <= 32 {
		return 1 << (field - 1)
	}
	return 0
}

// ---- BKPacketHeader

func (h *BKPacketHeader) size() int {
	n := sizeVarintField(1, i32(int32(h.Version))) + sizeVarintField(2, i32(int32(h.Operation))) +
		sizeVarintField(3, h.TxnID)
	if h.HasPriority {
		n += sizeVarintField(4, uint64(h.Priority))
	}
	return n
}

func (h *BKPacketHeader) appendTo(dst []byte) []byte {
	dst = appendVarintField(dst, 1, i32(int32(h.Version)))
	dst = appendVarintField(dst, 2, i32(int32(h.Operation)))
	dst = appendVarintField(dst, 3, h.TxnID)
	if h.HasPriority {
		dst = appendVarintField(dst, 4, uint64(h.Priority))
	}
	return dst
}

func (h *BKPacketHeader) unmarshal(b []byte) (uint32, error) {
	r := pbReader{b: b}
	var seen uint32
	for r.more() {
		f, wt := r.next()
		if r.err != nil {
			break
		}
		if wt != wireVarint || f > 4 {
			r.skip(f, wt)
			continue
		}
		v := r.varint()
		seen |= seenBit(f)
		switch f {
		case 1:
			h.Version = ProtocolVersion(int32(v))
		case 2:
			h.Operation = OperationType(int32(v))
		case 3:
			h.TxnID = v
		case 4:
			h.Priority, h.HasPriority = uint32(v), true
		}
	}
	return seen, r.err
}

// ---- AuthMessage (shared with v2)

// Size is the protobuf size of m.
func (m *AuthMessage) Size() int {
	return sizeBytesField(1, len(m.AuthPluginName)) + sizeBytesField(2, len(m.Payload))
}

// Append appends m's protobuf encoding.
func (m *AuthMessage) Append(dst []byte) []byte {
	dst = appendBytesField(dst, 1, m.AuthPluginName)
	return appendBytesField(dst, 2, m.Payload)
}

// Unmarshal decodes m from its protobuf encoding; both fields are
// required.
func (m *AuthMessage) Unmarshal(b []byte) error {
	*m = AuthMessage{}
	seen, err := m.merge(b)
	if err == nil && seen&0b11 != 0b11 {
		err = missing("AuthMessage")
	}
	return err
}

func (m *AuthMessage) merge(b []byte) (uint32, error) {
	r := pbReader{b: b}
	var seen uint32
	for r.more() {
		f, wt := r.next()
		if r.err != nil {
			break
		}
		switch {
		case f == 1 && wt == wireBytes:
			m.AuthPluginName = r.bytes()
		case f == 2 && wt == wireBytes:
			m.Payload = r.bytes()
		default:
			r.skip(f, wt)
			continue
		}
		seen |= seenBit(f)
	}
	return seen, r.err
}

func missing(msg string) error {
	return fmt.Errorf("%w: protobuf: %s lacks a required field", ErrMalformed, msg)
}

// ---- ContextPair

func (p *ContextPair) size() int {
	return sizeBytesField(1, len(p.Key)) + sizeBytesField(2, len(p.Value))
}

func (p *ContextPair) appendTo(dst []byte) []byte {
	dst = appendBytesField(dst, 1, p.Key)
	return appendBytesField(dst, 2, p.Value)
}

func (p *ContextPair) unmarshal(b []byte) (uint32, error) {
	var m AuthMessage // same shape: two required bytes fields 1 and 2
	seen, err := m.merge(b)
	p.Key, p.Value = m.AuthPluginName, m.Payload
	return seen, err
}

// ---- ReadRequest

func (m *ReadRequest) size() int {
	n := sizeVarintField(1, uint64(m.LedgerID)) + sizeVarintField(2, uint64(m.EntryID))
	if m.MasterKey != nil {
		n += sizeBytesField(3, len(m.MasterKey))
	}
	if m.HasPreviousLAC {
		n += sizeVarintField(4, uint64(m.PreviousLAC))
	}
	if m.HasTimeOut {
		n += sizeVarintField(5, uint64(m.TimeOut))
	}
	if m.HasFlag {
		n += sizeVarintField(fFlag, i32(int32(m.Flag)))
	}
	return n
}

func (m *ReadRequest) appendTo(dst []byte) []byte {
	dst = appendVarintField(dst, 1, uint64(m.LedgerID))
	dst = appendVarintField(dst, 2, uint64(m.EntryID))
	if m.MasterKey != nil {
		dst = appendBytesField(dst, 3, m.MasterKey)
	}
	if m.HasPreviousLAC {
		dst = appendVarintField(dst, 4, uint64(m.PreviousLAC))
	}
	if m.HasTimeOut {
		dst = appendVarintField(dst, 5, uint64(m.TimeOut))
	}
	if m.HasFlag {
		dst = appendVarintField(dst, fFlag, i32(int32(m.Flag)))
	}
	return dst
}

func (m *ReadRequest) unmarshal(b []byte) (uint32, error) {
	r := pbReader{b: b}
	var seen uint32
	for r.more() {
		f, wt := r.next()
		if r.err != nil {
			break
		}
		switch {
		case f == 3 && wt == wireBytes:
			m.MasterKey = r.bytes()
		case (f == 1 || f == 2 || f == 4 || f == 5 || f == fFlag) && wt == wireVarint:
			v := r.varint()
			switch f {
			case 1:
				m.LedgerID = base.LedgerID(v)
			case 2:
				m.EntryID = base.EntryID(v)
			case 4:
				m.PreviousLAC, m.HasPreviousLAC = int64(v), true
			case 5:
				m.TimeOut, m.HasTimeOut = int64(v), true
			case fFlag:
				m.Flag, m.HasFlag = ReadFlag(int32(v)), true
			}
		default:
			r.skip(f, wt)
			continue
		}
		seen |= seenBit(f)
	}
	return seen, r.err
}

// ---- AddRequest. Body goes last so that it can be a separate write vector.

func (m *AddRequest) size(bodyLen int) int {
	n := sizeVarintField(1, uint64(m.LedgerID)) + sizeVarintField(2, uint64(m.EntryID)) +
		sizeBytesField(3, len(m.MasterKey)) + sizeBytesField(4, bodyLen)
	if m.HasWriteFlags {
		n += sizeVarintField(5, i32(m.WriteFlags))
	}
	if m.HasFlag {
		n += sizeVarintField(fFlag, i32(int32(m.Flag)))
	}
	return n
}

// appendTo appends m; the body is bodyLen bytes, written from m.Body only
// when withBody.
func (m *AddRequest) appendTo(dst []byte, bodyLen int, withBody bool) []byte {
	dst = appendVarintField(dst, 1, uint64(m.LedgerID))
	dst = appendVarintField(dst, 2, uint64(m.EntryID))
	dst = appendBytesField(dst, 3, m.MasterKey)
	if m.HasWriteFlags {
		dst = appendVarintField(dst, 5, i32(m.WriteFlags))
	}
	if m.HasFlag {
		dst = appendVarintField(dst, fFlag, i32(int32(m.Flag)))
	}
	dst = appendBytesHead(dst, 4, bodyLen)
	if withBody {
		dst = append(dst, m.Body...)
	}
	return dst
}

func (m *AddRequest) unmarshal(b []byte) (uint32, error) {
	r := pbReader{b: b}
	var seen uint32
	for r.more() {
		f, wt := r.next()
		if r.err != nil {
			break
		}
		switch {
		case f == 3 && wt == wireBytes:
			m.MasterKey = r.bytes()
		case f == 4 && wt == wireBytes:
			m.Body = r.bytes()
		case (f == 1 || f == 2 || f == 5 || f == fFlag) && wt == wireVarint:
			v := r.varint()
			switch f {
			case 1:
				m.LedgerID = base.LedgerID(v)
			case 2:
				m.EntryID = base.EntryID(v)
			case 5:
				m.WriteFlags, m.HasWriteFlags = int32(v), true
			case fFlag:
				m.Flag, m.HasFlag = AddFlag(int32(v)), true
			}
		default:
			r.skip(f, wt)
			continue
		}
		seen |= seenBit(f)
	}
	return seen, r.err
}

// ---- WriteLacRequest

func (m *WriteLacRequest) size() int {
	return sizeVarintField(1, uint64(m.LedgerID)) + sizeVarintField(2, uint64(m.LAC)) +
		sizeBytesField(3, len(m.MasterKey)) + sizeBytesField(4, len(m.Body))
}

func (m *WriteLacRequest) appendTo(dst []byte) []byte {
	dst = appendVarintField(dst, 1, uint64(m.LedgerID))
	dst = appendVarintField(dst, 2, uint64(m.LAC))
	dst = appendBytesField(dst, 3, m.MasterKey)
	return appendBytesField(dst, 4, m.Body)
}

func (m *WriteLacRequest) unmarshal(b []byte) (uint32, error) {
	r := pbReader{b: b}
	var seen uint32
	for r.more() {
		f, wt := r.next()
		if r.err != nil {
			break
		}
		switch {
		case f == 1 && wt == wireVarint:
			m.LedgerID = base.LedgerID(r.varint())
		case f == 2 && wt == wireVarint:
			m.LAC = base.EntryID(r.varint())
		case f == 3 && wt == wireBytes:
			m.MasterKey = r.bytes()
		case f == 4 && wt == wireBytes:
			m.Body = r.bytes()
		default:
			r.skip(f, wt)
			continue
		}
		seen |= seenBit(f)
	}
	return seen, r.err
}

// ---- messages holding a single varint field 1 (ledger id, or requested)

func sizeLedgerOnly(l base.LedgerID) int { return sizeVarintField(1, uint64(l)) }

func unmarshalVarint1(b []byte, v *uint64) (uint32, error) {
	r := pbReader{b: b}
	var seen uint32
	for r.more() {
		f, wt := r.next()
		if r.err != nil {
			break
		}
		if f == 1 && wt == wireVarint {
			*v = r.varint()
			seen |= 1
			continue
		}
		r.skip(f, wt)
	}
	return seen, r.err
}

func unmarshalLedgerOnly(b []byte, l *base.LedgerID) (uint32, error) {
	var v uint64
	seen, err := unmarshalVarint1(b, &v)
	if seen != 0 {
		*l = base.LedgerID(v)
	}
	return seen, err
}

// emptyMessage skips whatever fields an empty message (StartTLS) carries.
func unmarshalEmpty(b []byte) error {
	r := pbReader{b: b}
	for r.more() {
		f, wt := r.next()
		if r.err != nil {
			break
		}
		r.skip(f, wt)
	}
	return r.err
}

// ---- Request

// Size is the protobuf size of r (its frame body).
func (r *Request) Size() int { return r.size(len(r.Add.Body)) }

func (r *Request) size(addBodyLen int) int {
	n := sizeBytesField(fHeader, r.Header.size())
	if r.HasRead {
		n += sizeBytesField(fRead, r.Read.size())
	}
	if r.HasAdd {
		n += sizeBytesField(fAdd, r.Add.size(addBodyLen))
	}
	if r.HasAuth {
		n += sizeBytesField(fAuth, r.Auth.Size())
	}
	if r.HasWriteLac {
		n += sizeBytesField(fWriteLac, r.WriteLac.size())
	}
	if r.HasReadLac {
		n += sizeBytesField(fReadLac, sizeLedgerOnly(r.ReadLac.LedgerID))
	}
	if r.HasGetBookieInfo {
		n += sizeBytesField(fGetBookieInfo, r.GetBookieInfo.size())
	}
	if r.HasStartTLS {
		n += sizeBytesField(fStartTLS, 0)
	}
	if r.HasForceLedger {
		n += sizeBytesField(fForceLedger, sizeLedgerOnly(r.ForceLedger.LedgerID))
	}
	if r.HasGetListOfEntries {
		n += sizeBytesField(fGetListOfEnts, sizeLedgerOnly(r.GetListOfEntriesOfLedger.LedgerID))
	}
	for i := range r.Context {
		n += sizeBytesField(fContext, r.Context[i].size())
	}
	return n
}

func (m *GetBookieInfoRequest) size() int {
	if m.HasRequested {
		return sizeVarintField(1, uint64(m.Requested))
	}
	return 0
}

// AppendFrame appends r as a whole frame: length word and protobuf
// message.
func (r *Request) AppendFrame(dst []byte) []byte {
	return r.appendFrame(dst, len(r.Add.Body), true)
}

// AppendFrameHead appends r as a frame without the bytes of its add body:
// with HasAdd, the frame is completed by bodyLen bytes (the entry) that the
// caller writes next, from one or several slices, and r.Add.Body is not
// used. Without HasAdd it is AppendFrame and bodyLen is ignored. The add
// request is encoded last, and its body last within it, which protobuf
// permits, so the body can be a separate write vector.
func (r *Request) AppendFrameHead(dst []byte, bodyLen int) []byte {
	if !r.HasAdd {
		return r.AppendFrame(dst)
	}
	return r.appendFrame(dst, bodyLen, false)
}

func (r *Request) appendFrame(dst []byte, addBodyLen int, withBody bool) []byte {
	dst = AppendFrameLength(dst, r.size(addBodyLen))
	dst = appendBytesHead(dst, fHeader, r.Header.size())
	dst = r.Header.appendTo(dst)
	if r.HasRead {
		dst = appendBytesHead(dst, fRead, r.Read.size())
		dst = r.Read.appendTo(dst)
	}
	if r.HasAuth {
		dst = appendBytesHead(dst, fAuth, r.Auth.Size())
		dst = r.Auth.Append(dst)
	}
	if r.HasWriteLac {
		dst = appendBytesHead(dst, fWriteLac, r.WriteLac.size())
		dst = r.WriteLac.appendTo(dst)
	}
	if r.HasReadLac {
		dst = appendBytesHead(dst, fReadLac, sizeLedgerOnly(r.ReadLac.LedgerID))
		dst = appendVarintField(dst, 1, uint64(r.ReadLac.LedgerID))
	}
	if r.HasGetBookieInfo {
		dst = appendBytesHead(dst, fGetBookieInfo, r.GetBookieInfo.size())
		if r.GetBookieInfo.HasRequested {
			dst = appendVarintField(dst, 1, uint64(r.GetBookieInfo.Requested))
		}
	}
	if r.HasStartTLS {
		dst = appendBytesHead(dst, fStartTLS, 0)
	}
	if r.HasForceLedger {
		dst = appendBytesHead(dst, fForceLedger, sizeLedgerOnly(r.ForceLedger.LedgerID))
		dst = appendVarintField(dst, 1, uint64(r.ForceLedger.LedgerID))
	}
	if r.HasGetListOfEntries {
		dst = appendBytesHead(dst, fGetListOfEnts, sizeLedgerOnly(r.GetListOfEntriesOfLedger.LedgerID))
		dst = appendVarintField(dst, 1, uint64(r.GetListOfEntriesOfLedger.LedgerID))
	}
	for i := range r.Context {
		dst = appendBytesHead(dst, fContext, r.Context[i].size())
		dst = r.Context[i].appendTo(dst)
	}
	if r.HasAdd {
		dst = appendBytesHead(dst, fAdd, r.Add.size(addBodyLen))
		dst = r.Add.appendTo(dst, addBodyLen, withBody)
	}
	return dst
}

// Decode parses a v3 request frame body (the bytes after the length word).
// Unknown fields are skipped; a repeated sub-message is merged into the
// earlier one, as protobuf does; bytes that are not a valid encoding, or a
// message that lacks a required field, give an error wrapping ErrMalformed.
// Unknown enum numbers (an operation this package does not know) are kept,
// so that a server can answer StatusBadRequest.
func (r *Request) Decode(body []byte) error {
	ctx := r.Context[:0]
	*r = Request{Context: ctx}
	var (
		hdrSeen, readSeen, addSeen, authSeen, wlacSeen uint32
		rlacSeen, forceSeen, listSeen                  uint32
		haveHeader                                     bool
	)
	rd := pbReader{b: body}
	for rd.more() {
		f, wt := rd.next()
		if rd.err != nil {
			break
		}
		if wt != wireBytes {
			rd.skip(f, wt)
			continue
		}
		var (
			s   uint32
			err error
		)
		switch f {
		case fHeader:
			haveHeader = true
			s, err = r.Header.unmarshal(rd.bytes())
			hdrSeen |= s
		case fRead:
			r.HasRead = true
			s, err = r.Read.unmarshal(rd.bytes())
			readSeen |= s
		case fAdd:
			r.HasAdd = true
			s, err = r.Add.unmarshal(rd.bytes())
			addSeen |= s
		case fAuth:
			r.HasAuth = true
			s, err = r.Auth.merge(rd.bytes())
			authSeen |= s
		case fWriteLac:
			r.HasWriteLac = true
			s, err = r.WriteLac.unmarshal(rd.bytes())
			wlacSeen |= s
		case fReadLac:
			r.HasReadLac = true
			s, err = unmarshalLedgerOnly(rd.bytes(), &r.ReadLac.LedgerID)
			rlacSeen |= s
		case fGetBookieInfo:
			r.HasGetBookieInfo = true
			var v uint64
			s, err = unmarshalVarint1(rd.bytes(), &v)
			if s != 0 {
				r.GetBookieInfo.Requested, r.GetBookieInfo.HasRequested = int64(v), true
			}
		case fStartTLS:
			r.HasStartTLS = true
			err = unmarshalEmpty(rd.bytes())
		case fForceLedger:
			r.HasForceLedger = true
			s, err = unmarshalLedgerOnly(rd.bytes(), &r.ForceLedger.LedgerID)
			forceSeen |= s
		case fGetListOfEnts:
			r.HasGetListOfEntries = true
			s, err = unmarshalLedgerOnly(rd.bytes(), &r.GetListOfEntriesOfLedger.LedgerID)
			listSeen |= s
		case fContext:
			var p ContextPair
			s, err = p.unmarshal(rd.bytes())
			if err == nil && s&reqPair != reqPair {
				err = missing("ContextPair")
			}
			r.Context = append(r.Context, p)
		default:
			rd.skip(f, wt)
		}
		if rd.err != nil {
			return rd.err
		}
		if err != nil {
			return err
		}
	}
	if rd.err != nil {
		return rd.err
	}
	switch {
	case !haveHeader || hdrSeen&reqHeader != reqHeader:
		return missing("Request.header")
	case r.HasRead && readSeen&reqReadReq != reqReadReq:
		return missing("ReadRequest")
	case r.HasAdd && addSeen&reqAddReq != reqAddReq:
		return missing("AddRequest")
	case r.HasAuth && authSeen&0b11 != 0b11:
		return missing("AuthMessage")
	case r.HasWriteLac && wlacSeen&reqWriteLacReq != reqWriteLacReq:
		return missing("WriteLacRequest")
	case r.HasReadLac && rlacSeen&reqLedgerOnly != reqLedgerOnly:
		return missing("ReadLacRequest")
	case r.HasForceLedger && forceSeen&reqLedgerOnly != reqLedgerOnly:
		return missing("ForceLedgerRequest")
	case r.HasGetListOfEntries && listSeen&reqLedgerOnly != reqLedgerOnly:
		return missing("GetListOfEntriesOfLedgerRequest")
	}
	return nil
}

// ---- Response sub-messages

func (m *ReadResponse) size(bodyLen int, hasBody bool) int {
	n := sizeVarintField(1, i32(int32(m.Status))) + sizeVarintField(2, uint64(m.LedgerID)) +
		sizeVarintField(3, uint64(m.EntryID))
	if m.HasMaxLAC {
		n += sizeVarintField(5, uint64(m.MaxLAC))
	}
	if m.HasLACUpdateTimestamp {
		n += sizeVarintField(6, uint64(m.LACUpdateTimestamp))
	}
	if hasBody {
		n += sizeBytesField(4, bodyLen)
	}
	return n
}

func (m *ReadResponse) appendTo(dst []byte, bodyLen int, hasBody, withBody bool) []byte {
	dst = appendVarintField(dst, 1, i32(int32(m.Status)))
	dst = appendVarintField(dst, 2, uint64(m.LedgerID))
	dst = appendVarintField(dst, 3, uint64(m.EntryID))
	if m.HasMaxLAC {
		dst = appendVarintField(dst, 5, uint64(m.MaxLAC))
	}
	if m.HasLACUpdateTimestamp {
		dst = appendVarintField(dst, 6, uint64(m.LACUpdateTimestamp))
	}
	if hasBody {
		dst = appendBytesHead(dst, 4, bodyLen)
		if withBody {
			dst = append(dst, m.Body...)
		}
	}
	return dst
}

func (m *ReadResponse) unmarshal(b []byte) (uint32, error) {
	r := pbReader{b: b}
	var seen uint32
	for r.more() {
		f, wt := r.next()
		if r.err != nil {
			break
		}
		switch {
		case f == 4 && wt == wireBytes:
			m.Body = r.bytes()
		case f >= 1 && f <= 6 && f != 4 && wt == wireVarint:
			v := r.varint()
			switch f {
			case 1:
				m.Status = StatusCode(int32(v))
			case 2:
				m.LedgerID = base.LedgerID(v)
			case 3:
				m.EntryID = base.EntryID(v)
			case 5:
				m.MaxLAC, m.HasMaxLAC = int64(v), true
			case 6:
				m.LACUpdateTimestamp, m.HasLACUpdateTimestamp = int64(v), true
			}
		default:
			r.skip(f, wt)
			continue
		}
		seen |= seenBit(f)
	}
	return seen, r.err
}

// statusLedger is the shape of AddResponse, WriteLacResponse,
// ForceLedgerResponse, ReadLacResponse and GetListOfEntriesOfLedgerResponse:
// status (1), ledger id (2), then an entry id (3, varint) or bytes fields
// 3 and 4.
type statusLedger struct {
	status StatusCode
	ledger base.LedgerID
	entry  base.EntryID // field 3 as a varint
	b3, b4 []byte       // fields 3 and 4 as bytes
}

func (m *statusLedger) unmarshal(b []byte, f3varint bool) (uint32, error) {
	r := pbReader{b: b}
	var seen uint32
	for r.more() {
		f, wt := r.next()
		if r.err != nil {
			break
		}
		switch {
		case f == 1 && wt == wireVarint:
			m.status = StatusCode(int32(r.varint()))
		case f == 2 && wt == wireVarint:
			m.ledger = base.LedgerID(r.varint())
		case f == 3 && f3varint && wt == wireVarint:
			m.entry = base.EntryID(r.varint())
		case f == 3 && !f3varint && wt == wireBytes:
			m.b3 = r.bytes()
		case f == 4 && !f3varint && wt == wireBytes:
			m.b4 = r.bytes()
		default:
			r.skip(f, wt)
			continue
		}
		seen |= seenBit(f)
	}
	return seen, r.err
}

func sizeStatusLedger(s StatusCode, l base.LedgerID) int {
	return sizeVarintField(1, i32(int32(s))) + sizeVarintField(2, uint64(l))
}

func appendStatusLedger(dst []byte, s StatusCode, l base.LedgerID) []byte {
	dst = appendVarintField(dst, 1, i32(int32(s)))
	return appendVarintField(dst, 2, uint64(l))
}

func (m *AddResponse) size() int {
	return sizeStatusLedger(m.Status, m.LedgerID) + sizeVarintField(3, uint64(m.EntryID))
}

func (m *ReadLacResponse) size() int {
	n := sizeStatusLedger(m.Status, m.LedgerID)
	if m.LACBody != nil {
		n += sizeBytesField(3, len(m.LACBody))
	}
	if m.LastEntryBody != nil {
		n += sizeBytesField(4, len(m.LastEntryBody))
	}
	return n
}

func (m *GetBookieInfoResponse) size() int {
	n := sizeVarintField(1, i32(int32(m.Status)))
	if m.HasTotalDiskCapacity {
		n += sizeVarintField(2, uint64(m.TotalDiskCapacity))
	}
	if m.HasFreeDiskSpace {
		n += sizeVarintField(3, uint64(m.FreeDiskSpace))
	}
	return n
}

func (m *GetBookieInfoResponse) unmarshal(b []byte) (uint32, error) {
	r := pbReader{b: b}
	var seen uint32
	for r.more() {
		f, wt := r.next()
		if r.err != nil {
			break
		}
		if f > 3 || wt != wireVarint {
			r.skip(f, wt)
			continue
		}
		v := r.varint()
		switch f {
		case 1:
			m.Status = StatusCode(int32(v))
		case 2:
			m.TotalDiskCapacity, m.HasTotalDiskCapacity = int64(v), true
		case 3:
			m.FreeDiskSpace, m.HasFreeDiskSpace = int64(v), true
		}
		seen |= seenBit(f)
	}
	return seen, r.err
}

func (m *GetListOfEntriesOfLedgerResponse) size() int {
	n := sizeStatusLedger(m.Status, m.LedgerID)
	if m.Availability != nil {
		n += sizeBytesField(3, len(m.Availability))
	}
	return n
}

// ---- Response

// Size is the protobuf size of r (its frame body).
func (r *Response) Size() int { return r.size(len(r.Read.Body)) }

func (r *Response) size(readBodyLen int) int {
	n := sizeBytesField(fHeader, r.Header.size()) + sizeVarintField(fStatus, i32(int32(r.Status)))
	if r.HasRead {
		n += sizeBytesField(fRead, r.Read.size(readBodyLen, r.readHasBody(readBodyLen)))
	}
	if r.HasAdd {
		n += sizeBytesField(fAdd, r.Add.size())
	}
	if r.HasAuth {
		n += sizeBytesField(fAuth, r.Auth.Size())
	}
	if r.HasWriteLac {
		n += sizeBytesField(fWriteLac, sizeStatusLedger(r.WriteLac.Status, r.WriteLac.LedgerID))
	}
	if r.HasReadLac {
		n += sizeBytesField(fReadLac, r.ReadLac.size())
	}
	if r.HasGetBookieInfo {
		n += sizeBytesField(fGetBookieInfo, r.GetBookieInfo.size())
	}
	if r.HasStartTLS {
		n += sizeBytesField(fStartTLS, 0)
	}
	if r.HasForceLedger {
		n += sizeBytesField(fForceLedger, sizeStatusLedger(r.ForceLedger.Status, r.ForceLedger.LedgerID))
	}
	if r.HasGetListOfEntries {
		n += sizeBytesField(fGetListOfEnts, r.GetListOfEntriesOfLedger.size())
	}
	return n
}

// readHasBody: a read response body is written when Body is not nil, or
// when the caller gives a body length for a separate write vector.
func (r *Response) readHasBody(bodyLen int) bool { return r.Read.Body != nil || bodyLen > 0 }

// AppendFrame appends r as a whole frame: length word and protobuf
// message.
func (r *Response) AppendFrame(dst []byte) []byte {
	return r.appendFrame(dst, len(r.Read.Body), true)
}

// AppendFrameHead appends r as a frame without the bytes of its read body:
// with HasRead, the frame is completed by bodyLen bytes (the entry) that the
// caller writes next, and r.Read.Body is not used (bodyLen 0 with a nil
// Read.Body means no body field). Without HasRead it is AppendFrame and
// bodyLen is ignored. The read response is encoded last, and its body last
// within it, so the body can be a separate write vector.
func (r *Response) AppendFrameHead(dst []byte, bodyLen int) []byte {
	if !r.HasRead {
		return r.AppendFrame(dst)
	}
	return r.appendFrame(dst, bodyLen, false)
}

func (r *Response) appendFrame(dst []byte, readBodyLen int, withBody bool) []byte {
	dst = AppendFrameLength(dst, r.size(readBodyLen))
	dst = appendBytesHead(dst, fHeader, r.Header.size())
	dst = r.Header.appendTo(dst)
	dst = appendVarintField(dst, fStatus, i32(int32(r.Status)))
	if r.HasAdd {
		dst = appendBytesHead(dst, fAdd, r.Add.size())
		dst = appendStatusLedger(dst, r.Add.Status, r.Add.LedgerID)
		dst = appendVarintField(dst, 3, uint64(r.Add.EntryID))
	}
	if r.HasAuth {
		dst = appendBytesHead(dst, fAuth, r.Auth.Size())
		dst = r.Auth.Append(dst)
	}
	if r.HasWriteLac {
		dst = appendBytesHead(dst, fWriteLac, sizeStatusLedger(r.WriteLac.Status, r.WriteLac.LedgerID))
		dst = appendStatusLedger(dst, r.WriteLac.Status, r.WriteLac.LedgerID)
	}
	if r.HasReadLac {
		m := &r.ReadLac
		dst = appendBytesHead(dst, fReadLac, m.size())
		dst = appendStatusLedger(dst, m.Status, m.LedgerID)
		if m.LACBody != nil {
			dst = appendBytesField(dst, 3, m.LACBody)
		}
		if m.LastEntryBody != nil {
			dst = appendBytesField(dst, 4, m.LastEntryBody)
		}
	}
	if r.HasGetBookieInfo {
		m := &r.GetBookieInfo
		dst = appendBytesHead(dst, fGetBookieInfo, m.size())
		dst = appendVarintField(dst, 1, i32(int32(m.Status)))
		if m.HasTotalDiskCapacity {
			dst = appendVarintField(dst, 2, uint64(m.TotalDiskCapacity))
		}
		if m.HasFreeDiskSpace {
			dst = appendVarintField(dst, 3, uint64(m.FreeDiskSpace))
		}
	}
	if r.HasStartTLS {
		dst = appendBytesHead(dst, fStartTLS, 0)
	}
	if r.HasForceLedger {
		dst = appendBytesHead(dst, fForceLedger, sizeStatusLedger(r.ForceLedger.Status, r.ForceLedger.LedgerID))
		dst = appendStatusLedger(dst, r.ForceLedger.Status, r.ForceLedger.LedgerID)
	}
	if r.HasGetListOfEntries {
		m := &r.GetListOfEntriesOfLedger
		dst = appendBytesHead(dst, fGetListOfEnts, m.size())
		dst = appendStatusLedger(dst, m.Status, m.LedgerID)
		if m.Availability != nil {
			dst = appendBytesField(dst, 3, m.Availability)
		}
	}
	if r.HasRead {
		hasBody := r.readHasBody(readBodyLen)
		dst = appendBytesHead(dst, fRead, r.Read.size(readBodyLen, hasBody))
		dst = r.Read.appendTo(dst, readBodyLen, hasBody, withBody)
	}
	return dst
}

// Decode parses a v3 response frame body, with the rules of
// Request.Decode.
func (r *Response) Decode(body []byte) error {
	*r = Response{}
	var (
		hdrSeen, readSeen, addSeen, authSeen, wlacSeen uint32
		rlacSeen, infoSeen, forceSeen, listSeen        uint32
		haveHeader, haveStatus                         bool
	)
	rd := pbReader{b: body}
	for rd.more() {
		f, wt := rd.next()
		if rd.err != nil {
			break
		}
		if f == fStatus && wt == wireVarint {
			r.Status = StatusCode(int32(rd.varint()))
			haveStatus = true
			continue
		}
		if wt != wireBytes {
			rd.skip(f, wt)
			continue
		}
		var (
			s   uint32
			err error
			sl  statusLedger
		)
		switch f {
		case fHeader:
			haveHeader = true
			s, err = r.Header.unmarshal(rd.bytes())
			hdrSeen |= s
		case fRead:
			r.HasRead = true
			s, err = r.Read.unmarshal(rd.bytes())
			readSeen |= s
		case fAdd:
			r.HasAdd = true
			sl = statusLedger{status: r.Add.Status, ledger: r.Add.LedgerID, entry: r.Add.EntryID}
			s, err = sl.unmarshal(rd.bytes(), true)
			r.Add = AddResponse{Status: sl.status, LedgerID: sl.ledger, EntryID: sl.entry}
			addSeen |= s
		case fAuth:
			r.HasAuth = true
			s, err = r.Auth.merge(rd.bytes())
			authSeen |= s
		case fWriteLac:
			r.HasWriteLac = true
			sl = statusLedger{status: r.WriteLac.Status, ledger: r.WriteLac.LedgerID}
			s, err = sl.unmarshal(rd.bytes(), true)
			r.WriteLac = WriteLacResponse{Status: sl.status, LedgerID: sl.ledger}
			wlacSeen |= s
		case fReadLac:
			r.HasReadLac = true
			m := &r.ReadLac
			sl = statusLedger{status: m.Status, ledger: m.LedgerID, b3: m.LACBody, b4: m.LastEntryBody}
			s, err = sl.unmarshal(rd.bytes(), false)
			*m = ReadLacResponse{Status: sl.status, LedgerID: sl.ledger, LACBody: sl.b3, LastEntryBody: sl.b4}
			rlacSeen |= s
		case fGetBookieInfo:
			r.HasGetBookieInfo = true
			s, err = r.GetBookieInfo.unmarshal(rd.bytes())
			infoSeen |= s
		case fStartTLS:
			r.HasStartTLS = true
			err = unmarshalEmpty(rd.bytes())
		case fForceLedger:
			r.HasForceLedger = true
			sl = statusLedger{status: r.ForceLedger.Status, ledger: r.ForceLedger.LedgerID}
			s, err = sl.unmarshal(rd.bytes(), true)
			r.ForceLedger = ForceLedgerResponse{Status: sl.status, LedgerID: sl.ledger}
			forceSeen |= s
		case fGetListOfEnts:
			r.HasGetListOfEntries = true
			m := &r.GetListOfEntriesOfLedger
			sl = statusLedger{status: m.Status, ledger: m.LedgerID, b3: m.Availability}
			s, err = sl.unmarshal(rd.bytes(), false)
			*m = GetListOfEntriesOfLedgerResponse{Status: sl.status, LedgerID: sl.ledger, Availability: sl.b3}
			listSeen |= s
		default:
			rd.skip(f, wt)
		}
		if rd.err != nil {
			return rd.err
		}
		if err != nil {
			return err
		}
	}
	if rd.err != nil {
		return rd.err
	}
	switch {
	case !haveHeader || hdrSeen&reqHeader != reqHeader:
		return missing("Response.header")
	case !haveStatus:
		return missing("Response.status")
	case r.HasRead && readSeen&reqReadResp != reqReadResp:
		return missing("ReadResponse")
	case r.HasAdd && addSeen&reqAddResp != reqAddResp:
		return missing("AddResponse")
	case r.HasAuth && authSeen&0b11 != 0b11:
		return missing("AuthMessage")
	case r.HasWriteLac && wlacSeen&reqStatusLedg != reqStatusLedg:
		return missing("WriteLacResponse")
	case r.HasReadLac && rlacSeen&reqStatusLedg != reqStatusLedg:
		return missing("ReadLacResponse")
	case r.HasGetBookieInfo && infoSeen&reqStatusOnly != reqStatusOnly:
		return missing("GetBookieInfoResponse")
	case r.HasForceLedger && forceSeen&reqStatusLedg != reqStatusLedg:
		return missing("ForceLedgerResponse")
	case r.HasGetListOfEntries && listSeen&reqStatusLedg != reqStatusLedg:
		return missing("GetListOfEntriesOfLedgerResponse")
	}
	return nil
}
