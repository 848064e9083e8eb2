package pulsar

import (
	"encoding/binary"
	"fmt"
)

// RawKeyValue is a property of a message: a KeyValue whose strings alias the
// decoded bytes, so that reading message metadata never allocates.
type RawKeyValue struct {
	Key   []byte // 1, required
	Value []byte // 2, required
}

func (m *RawKeyValue) decode(b []byte) error {
	*m = RawKeyValue{}
	d := newDecoder(b, "KeyValue")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.bytes(); ok {
				m.Key, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.bytes(); ok {
				m.Value, seen = v, seen|1<<2
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func appendRawKeyValues(dst []byte, num int, kvs []RawKeyValue) []byte {
	for i := range kvs {
		var s int
		dst, s = beginMessage(dst, num)
		dst = appendBytes(dst, 1, kvs[i].Key)
		dst = appendBytes(dst, 2, kvs[i].Value)
		dst = endMessage(dst, s)
	}
	return dst
}

func (d *decoder) rawKeyValue(kvs []RawKeyValue) []RawKeyValue {
	kvs, kv := grow(kvs)
	if !d.message(kv.decode) {
		kvs = kvs[:len(kvs)-1]
	}
	return kvs
}

// MessageMetadata is the producer's metadata of an entry. A broker reads it
// but never re-encodes it: the stored bytes go to consumers unchanged (see
// the package comment). Every byte field aliases the decoded buffer; nil
// means absent.
type MessageMetadata struct {
	ProducerName       []byte          // 1, required
	SequenceID         uint64          // 2, required
	PublishTime        uint64          // 3, required, ms
	Properties         []RawKeyValue   // 4
	ReplicatedFrom     []byte          // 5
	PartitionKey       []byte          // 6
	ReplicateTo        [][]byte        // 7
	Compression        CompressionType // 8
	UncompressedSize   uint32          // 9
	NumMessagesInBatch int32           // 11, 1 when absent
	// HasNumMessagesInBatch: field 11 is present. The Go client treats an
	// entry as a batch exactly when it is, even for one message.
	HasNumMessagesInBatch bool
	EventTime             uint64 // 12
	// EncryptionKeys holds each encoded EncryptionKeys message (13) as is.
	EncryptionKeys         [][]byte
	EncryptionAlgo         []byte // 14
	EncryptionParam        []byte // 15
	SchemaVersion          []byte // 16
	PartitionKeyB64Encoded bool   // 17
	OrderingKey            []byte // 18
	DeliverAtTime          int64  // 19, ms
	HasDeliverAtTime       bool   //
	MarkerType             int32  // 20
	HasMarkerType          bool   //
	TxnidLeastBits         uint64 // 22
	TxnidMostBits          uint64 // 23
	HasTxnID               bool   // 22 or 23 present
	HighestSequenceID      uint64 // 24
	NullValue              bool   // 25
	UUID                   []byte // 26
	NumChunksFromMsg       int32  // 27
	TotalChunkMsgSize      int32  // 28
	ChunkID                int32  // 29
	// HasChunk: one of 27-29 is present. Encoding writes all three.
	HasChunk         bool
	NullPartitionKey bool // 30
}

// Reset empties m, keeping the capacity of its slices.
func (m *MessageMetadata) Reset() {
	*m = MessageMetadata{
		NumMessagesInBatch: 1,
		Properties:         m.Properties[:0],
		ReplicateTo:        m.ReplicateTo[:0],
		EncryptionKeys:     m.EncryptionKeys[:0],
	}
}

// Decode decodes an encoded MessageMetadata into m. It does not allocate
// once m's slices have grown to the sizes the input needs.
func (m *MessageMetadata) Decode(b []byte) error {
	m.Reset()
	d := newDecoder(b, "MessageMetadata")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.bytes(); ok {
				m.ProducerName, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.SequenceID, seen = v, seen|1<<2
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.PublishTime, seen = v, seen|1<<3
			}
		case 4:
			m.Properties = d.rawKeyValue(m.Properties)
		case 5:
			if v, ok := d.bytes(); ok {
				m.ReplicatedFrom = v
			}
		case 6:
			if v, ok := d.bytes(); ok {
				m.PartitionKey = v
			}
		case 7:
			if v, ok := d.bytes(); ok {
				m.ReplicateTo = append(m.ReplicateTo, v)
			}
		case 8:
			if v, ok := d.uint64(); ok {
				m.Compression = CompressionType(v)
			}
		case 9:
			if v, ok := d.uint64(); ok {
				m.UncompressedSize = uint32(v)
			}
		case 11:
			if v, ok := d.uint64(); ok {
				m.NumMessagesInBatch, m.HasNumMessagesInBatch = int32(v), true
			}
		case 12:
			if v, ok := d.uint64(); ok {
				m.EventTime = v
			}
		case 13:
			if v, ok := d.bytes(); ok {
				m.EncryptionKeys = append(m.EncryptionKeys, v)
			}
		case 14:
			if v, ok := d.bytes(); ok {
				m.EncryptionAlgo = v
			}
		case 15:
			if v, ok := d.bytes(); ok {
				m.EncryptionParam = v
			}
		case 16:
			if v, ok := d.bytes(); ok {
				m.SchemaVersion = v
			}
		case 17:
			if v, ok := d.uint64(); ok {
				m.PartitionKeyB64Encoded = v != 0
			}
		case 18:
			if v, ok := d.bytes(); ok {
				m.OrderingKey = v
			}
		case 19:
			if v, ok := d.uint64(); ok {
				m.DeliverAtTime, m.HasDeliverAtTime = int64(v), true
			}
		case 20:
			if v, ok := d.uint64(); ok {
				m.MarkerType, m.HasMarkerType = int32(v), true
			}
		case 22:
			if v, ok := d.uint64(); ok {
				m.TxnidLeastBits, m.HasTxnID = v, true
			}
		case 23:
			if v, ok := d.uint64(); ok {
				m.TxnidMostBits, m.HasTxnID = v, true
			}
		case 24:
			if v, ok := d.uint64(); ok {
				m.HighestSequenceID = v
			}
		case 25:
			if v, ok := d.uint64(); ok {
				m.NullValue = v != 0
			}
		case 26:
			if v, ok := d.bytes(); ok {
				m.UUID = v
			}
		case 27:
			if v, ok := d.uint64(); ok {
				m.NumChunksFromMsg, m.HasChunk = int32(v), true
			}
		case 28:
			if v, ok := d.uint64(); ok {
				m.TotalChunkMsgSize, m.HasChunk = int32(v), true
			}
		case 29:
			if v, ok := d.uint64(); ok {
				m.ChunkID, m.HasChunk = int32(v), true
			}
		case 30:
			if v, ok := d.uint64(); ok {
				m.NullPartitionKey = v != 0
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2|1<<3)
}

// AppendTo appends m's protobuf encoding (without a length prefix).
func (m *MessageMetadata) AppendTo(dst []byte) []byte {
	dst = appendBytes(dst, 1, m.ProducerName)
	dst = appendUint64(dst, 2, m.SequenceID)
	dst = appendUint64(dst, 3, m.PublishTime)
	dst = appendRawKeyValues(dst, 4, m.Properties)
	if m.ReplicatedFrom != nil {
		dst = appendBytes(dst, 5, m.ReplicatedFrom)
	}
	if m.PartitionKey != nil {
		dst = appendBytes(dst, 6, m.PartitionKey)
	}
	for _, r := range m.ReplicateTo {
		dst = appendBytes(dst, 7, r)
	}
	if m.Compression != CompressionNone {
		dst = appendInt32(dst, 8, int32(m.Compression))
	}
	if m.UncompressedSize != 0 {
		dst = appendUint64(dst, 9, uint64(m.UncompressedSize))
	}
	if m.HasNumMessagesInBatch {
		dst = appendInt32(dst, 11, m.NumMessagesInBatch)
	}
	if m.EventTime != 0 {
		dst = appendUint64(dst, 12, m.EventTime)
	}
	for _, k := range m.EncryptionKeys {
		dst = appendBytes(dst, 13, k)
	}
	if m.EncryptionAlgo != nil {
		dst = appendBytes(dst, 14, m.EncryptionAlgo)
	}
	if m.EncryptionParam != nil {
		dst = appendBytes(dst, 15, m.EncryptionParam)
	}
	if m.SchemaVersion != nil {
		dst = appendBytes(dst, 16, m.SchemaVersion)
	}
	if m.PartitionKeyB64Encoded {
		dst = appendBool(dst, 17, true)
	}
	if m.OrderingKey != nil {
		dst = appendBytes(dst, 18, m.OrderingKey)
	}
	if m.HasDeliverAtTime {
		dst = appendInt64(dst, 19, m.DeliverAtTime)
	}
	if m.HasMarkerType {
		dst = appendInt32(dst, 20, m.MarkerType)
	}
	if m.HasTxnID {
		dst = appendUint64(dst, 22, m.TxnidLeastBits)
		dst = appendUint64(dst, 23, m.TxnidMostBits)
	}
	if m.HighestSequenceID != 0 {
		dst = appendUint64(dst, 24, m.HighestSequenceID)
	}
	if m.NullValue {
		dst = appendBool(dst, 25, true)
	}
	if m.UUID != nil {
		dst = appendBytes(dst, 26, m.UUID)
	}
	if m.HasChunk {
		dst = appendInt32(dst, 27, m.NumChunksFromMsg)
		dst = appendInt32(dst, 28, m.TotalChunkMsgSize)
		dst = appendInt32(dst, 29, m.ChunkID)
	}
	if m.NullPartitionKey {
		dst = appendBool(dst, 30, true)
	}
	return dst
}

// NumMessages is the number of messages in the entry (the permits it
// takes): NumMessagesInBatch when present and positive, else 1.
func (m *MessageMetadata) NumMessages() int {
	if m.HasNumMessagesInBatch && m.NumMessagesInBatch > 0 {
		return int(m.NumMessagesInBatch)
	}
	return 1
}

// SingleMessageMetadata is the per-message header inside a batch.
type SingleMessageMetadata struct {
	Properties             []RawKeyValue // 1
	PartitionKey           []byte        // 2
	PayloadSize            int32         // 3, required
	CompactedOut           bool          // 4
	EventTime              uint64        // 5
	PartitionKeyB64Encoded bool          // 6
	OrderingKey            []byte        // 7
	SequenceID             uint64        // 8
	HasSequenceID          bool          //
	NullValue              bool          // 9
	NullPartitionKey       bool          // 10
}

// Decode decodes an encoded SingleMessageMetadata into m.
func (m *SingleMessageMetadata) Decode(b []byte) error {
	*m = SingleMessageMetadata{Properties: m.Properties[:0]}
	d := newDecoder(b, "SingleMessageMetadata")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			m.Properties = d.rawKeyValue(m.Properties)
		case 2:
			if v, ok := d.bytes(); ok {
				m.PartitionKey = v
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.PayloadSize, seen = int32(v), seen|1<<3
			}
		case 4:
			if v, ok := d.uint64(); ok {
				m.CompactedOut = v != 0
			}
		case 5:
			if v, ok := d.uint64(); ok {
				m.EventTime = v
			}
		case 6:
			if v, ok := d.uint64(); ok {
				m.PartitionKeyB64Encoded = v != 0
			}
		case 7:
			if v, ok := d.bytes(); ok {
				m.OrderingKey = v
			}
		case 8:
			if v, ok := d.uint64(); ok {
				m.SequenceID, m.HasSequenceID = v, true
			}
		case 9:
			if v, ok := d.uint64(); ok {
				m.NullValue = v != 0
			}
		case 10:
			if v, ok := d.uint64(); ok {
				m.NullPartitionKey = v != 0
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<3)
}

// AppendTo appends m's protobuf encoding (without a length prefix).
func (m *SingleMessageMetadata) AppendTo(dst []byte) []byte {
	dst = appendRawKeyValues(dst, 1, m.Properties)
	if m.PartitionKey != nil {
		dst = appendBytes(dst, 2, m.PartitionKey)
	}
	dst = appendInt32(dst, 3, m.PayloadSize)
	if m.CompactedOut {
		dst = appendBool(dst, 4, true)
	}
	if m.EventTime != 0 {
		dst = appendUint64(dst, 5, m.EventTime)
	}
	if m.PartitionKeyB64Encoded {
		dst = appendBool(dst, 6, true)
	}
	if m.OrderingKey != nil {
		dst = appendBytes(dst, 7, m.OrderingKey)
	}
	if m.HasSequenceID {
		dst = appendUint64(dst, 8, m.SequenceID)
	}
	if m.NullValue {
		dst = appendBool(dst, 9, true)
	}
	if m.NullPartitionKey {
		dst = appendBool(dst, 10, true)
	}
	return dst
}

// BrokerEntryMetadata is what a broker may put in front of an entry (after
// the 0x0e02 magic) when it delivers it.
type BrokerEntryMetadata struct {
	BrokerTimestamp    uint64 // 1, ms
	HasBrokerTimestamp bool   //
	// Index (2) is the 0-based running index of the entry's last message.
	Index    uint64
	HasIndex bool
}

// Decode decodes an encoded BrokerEntryMetadata into m.
func (m *BrokerEntryMetadata) Decode(b []byte) error {
	*m = BrokerEntryMetadata{}
	d := newDecoder(b, "BrokerEntryMetadata")
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.BrokerTimestamp, m.HasBrokerTimestamp = v, true
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.Index, m.HasIndex = v, true
			}
		default:
			d.skip()
		}
	}
	return d.err
}

// AppendTo appends m's protobuf encoding (without a length prefix).
func (m *BrokerEntryMetadata) AppendTo(dst []byte) []byte {
	if m.HasBrokerTimestamp {
		dst = appendUint64(dst, 1, m.BrokerTimestamp)
	}
	if m.HasIndex {
		dst = appendUint64(dst, 2, m.Index)
	}
	return dst
}

// BatchReader iterates over the messages of an uncompressed batch body:
//
//	repeated { size uint32 BE | SingleMessageMetadata (size bytes) | payload (payload_size bytes) }
//
// It never allocates; payloads and metadata fields alias the body.
type BatchReader struct {
	rest    []byte
	left    int
	index   int
	payload []byte
	err     error
}

// Reset starts iterating over body, which holds n messages (the entry's
// num_messages_in_batch). Bytes after the n-th message are ignored, as the
// clients do.
func (r *BatchReader) Reset(body []byte, n int) {
	*r = BatchReader{rest: body, left: n}
}

// Next decodes the next message's metadata into m and returns true, or
// returns false at the end of the batch or on an error (see Err).
func (r *BatchReader) Next(m *SingleMessageMetadata) bool {
	if r.err != nil || r.left <= 0 {
		return false
	}
	if len(r.rest) < 4 {
		r.err = fmt.Errorf("%w: batch message %d: truncated size", ErrMalformed, r.index)
		return false
	}
	size := binary.BigEndian.Uint32(r.rest)
	if uint64(size) > uint64(len(r.rest)-4) {
		r.err = fmt.Errorf("%w: batch message %d: metadata size %d past the end", ErrMalformed, r.index, size)
		return false
	}
	if err := m.Decode(r.rest[4 : 4+size]); err != nil {
		r.err = fmt.Errorf("batch message %d: %w", r.index, err)
		return false
	}
	rest := r.rest[4+size:]
	if m.PayloadSize < 0 || int(m.PayloadSize) > len(rest) {
		r.err = fmt.Errorf("%w: batch message %d: payload size %d past the end", ErrMalformed, r.index, m.PayloadSize)
		return false
	}
	r.payload = rest[:m.PayloadSize:m.PayloadSize]
	r.rest = rest[m.PayloadSize:]
	r.left--
	r.index++
	return true
}

// Payload is the current message's payload.
func (r *BatchReader) Payload() []byte { return r.payload }

// Index is the batch index of the current message (0-based).
func (r *BatchReader) Index() int { return r.index - 1 }

// Err is the error that stopped the iteration, if any.
func (r *BatchReader) Err() error { return r.err }

// AppendBatchMessage appends one message to a batch body being built. It
// sets m.PayloadSize to len(payload).
func AppendBatchMessage(dst []byte, m *SingleMessageMetadata, payload []byte) []byte {
	m.PayloadSize = int32(len(payload))
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = m.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
	return append(dst, payload...)
}
