package pulsar

// Nested protobuf messages shared by several commands. Each has decode
// (reset, then read; byte fields alias the input), appendTo (the fields in
// field-number order, as protobuf-go writes them) and reset (zero with the
// protocol defaults, keeping slice capacity).

// MessageIDData is a message id: a ledger entry, and within a batch an index.
// The Go client holds ledger and entry as int64: -1 travels as 2^64-1.
type MessageIDData struct {
	LedgerID   uint64 // 1, required
	EntryID    uint64 // 2, required
	Partition  int32  // 3, -1 when absent; encoded when not -1
	BatchIndex int32  // 4, -1 when absent; encoded when not -1
	// AckSet is the batch-index ack bitmap (5): 64-bit words, bit i = batch
	// index i, 1 = not yet acknowledged.
	AckSet    []int64
	BatchSize int32 // 6, encoded when not 0
	// FirstChunkMessageID (7) is the encoded MessageIdData of a chunked
	// message's first chunk, nil when absent. Decode it with DecodeMessageID.
	FirstChunkMessageID []byte
}

// NewMessageID returns the id of entry (ledger, entry) with the protocol's
// defaults for the other fields (no partition, no batch index).
func NewMessageID(ledger, entry uint64) MessageIDData {
	return MessageIDData{LedgerID: ledger, EntryID: entry, Partition: -1, BatchIndex: -1}
}

func (m *MessageIDData) reset() {
	*m = MessageIDData{Partition: -1, BatchIndex: -1, AckSet: m.AckSet[:0]}
}

// DecodeMessageID decodes an encoded MessageIdData into m.
func DecodeMessageID(m *MessageIDData, b []byte) error { return m.decode(b) }

func (m *MessageIDData) decode(b []byte) error {
	m.reset()
	d := newDecoder(b, "MessageIdData")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.LedgerID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.EntryID, seen = v, seen|1<<2
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.Partition = int32(v)
			}
		case 4:
			if v, ok := d.uint64(); ok {
				m.BatchIndex = int32(v)
			}
		case 5:
			m.AckSet = d.int64s(m.AckSet)
		case 6:
			if v, ok := d.uint64(); ok {
				m.BatchSize = int32(v)
			}
		case 7:
			if v, ok := d.bytes(); ok {
				m.FirstChunkMessageID = v
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

// AppendTo appends m's protobuf encoding (without a length prefix).
func (m *MessageIDData) AppendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.LedgerID)
	dst = appendUint64(dst, 2, m.EntryID)
	if m.Partition != -1 {
		dst = appendInt32(dst, 3, m.Partition)
	}
	if m.BatchIndex != -1 {
		dst = appendInt32(dst, 4, m.BatchIndex)
	}
	for _, w := range m.AckSet {
		dst = appendInt64(dst, 5, w)
	}
	if m.BatchSize != 0 {
		dst = appendInt32(dst, 6, m.BatchSize)
	}
	if m.FirstChunkMessageID != nil {
		dst = appendBytes(dst, 7, m.FirstChunkMessageID)
	}
	return dst
}

func appendMessageIDField(dst []byte, num int, m *MessageIDData) []byte {
	dst, s := beginMessage(dst, num)
	return endMessage(m.AppendTo(dst), s)
}

// KeyValue is a string pair (properties and metadata of control commands).
type KeyValue struct {
	Key   string // 1, required
	Value string // 2, required
}

func (m *KeyValue) decode(b []byte) error {
	*m = KeyValue{}
	d := newDecoder(b, "KeyValue")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.string(); ok {
				m.Key, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.string(); ok {
				m.Value, seen = v, seen|1<<2
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func (m *KeyValue) appendTo(dst []byte) []byte {
	dst = appendString(dst, 1, m.Key)
	return appendString(dst, 2, m.Value)
}

func appendKeyValues(dst []byte, num int, kvs []KeyValue) []byte {
	for i := range kvs {
		var s int
		dst, s = beginMessage(dst, num)
		dst = endMessage(kvs[i].appendTo(dst), s)
	}
	return dst
}

func (d *decoder) keyValue(kvs []KeyValue) []KeyValue {
	kvs, kv := grow(kvs)
	if !d.message(kv.decode) {
		kvs = kvs[:len(kvs)-1]
	}
	return kvs
}

// KeyLongValue is a string/uint64 pair (CommandAck.properties).
type KeyLongValue struct {
	Key   string // 1, required
	Value uint64 // 2, required
}

func (m *KeyLongValue) decode(b []byte) error {
	*m = KeyLongValue{}
	d := newDecoder(b, "KeyLongValue")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.string(); ok {
				m.Key, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.Value, seen = v, seen|1<<2
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func (m *KeyLongValue) appendTo(dst []byte) []byte {
	dst = appendString(dst, 1, m.Key)
	return appendUint64(dst, 2, m.Value)
}

// IntRange is an inclusive hash range [Start, End] of a sticky Key_Shared
// consumer.
type IntRange struct {
	Start int32 // 1, required
	End   int32 // 2, required
}

func (m *IntRange) decode(b []byte) error {
	*m = IntRange{}
	d := newDecoder(b, "IntRange")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.Start, seen = int32(v), seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.End, seen = int32(v), seen|1<<2
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func (m *IntRange) appendTo(dst []byte) []byte {
	dst = appendInt32(dst, 1, m.Start)
	return appendInt32(dst, 2, m.End)
}

// KeySharedMeta is CommandSubscribe.keySharedMeta.
type KeySharedMeta struct {
	Mode                    KeySharedMode // 1, required
	HashRanges              []IntRange    // 3
	AllowOutOfOrderDelivery bool          // 4
}

func (m *KeySharedMeta) reset() {
	*m = KeySharedMeta{HashRanges: m.HashRanges[:0]}
}

func (m *KeySharedMeta) decode(b []byte) error {
	m.reset()
	d := newDecoder(b, "KeySharedMeta")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.Mode, seen = KeySharedMode(v), seen|1<<1
			}
		case 3:
			var r *IntRange
			m.HashRanges, r = grow(m.HashRanges)
			if !d.message(r.decode) {
				m.HashRanges = m.HashRanges[:len(m.HashRanges)-1]
			}
		case 4:
			if v, ok := d.uint64(); ok {
				m.AllowOutOfOrderDelivery = v != 0
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1)
}

func (m *KeySharedMeta) appendTo(dst []byte) []byte {
	dst = appendInt32(dst, 1, int32(m.Mode))
	for i := range m.HashRanges {
		var s int
		dst, s = beginMessage(dst, 3)
		dst = endMessage(m.HashRanges[i].appendTo(dst), s)
	}
	if m.AllowOutOfOrderDelivery {
		dst = appendBool(dst, 4, true)
	}
	return dst
}

// Schema is a schema definition as PRODUCER, SUBSCRIBE and the schema
// commands carry it.
type Schema struct {
	Name       string     // 1, required
	SchemaData []byte     // 3, required (aliases the input)
	Type       SchemaType // 4, required
	Properties []KeyValue // 5
}

func (m *Schema) reset() {
	*m = Schema{Properties: m.Properties[:0]}
}

func (m *Schema) decode(b []byte) error {
	m.reset()
	d := newDecoder(b, "Schema")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.string(); ok {
				m.Name, seen = v, seen|1<<1
			}
		case 3:
			if v, ok := d.bytes(); ok {
				m.SchemaData, seen = v, seen|1<<3
			}
		case 4:
			if v, ok := d.uint64(); ok {
				m.Type, seen = SchemaType(v), seen|1<<4
			}
		case 5:
			m.Properties = d.keyValue(m.Properties)
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<3|1<<4)
}

func (m *Schema) appendTo(dst []byte) []byte {
	dst = appendString(dst, 1, m.Name)
	dst = appendBytes(dst, 3, m.SchemaData)
	dst = appendInt32(dst, 4, int32(m.Type))
	return appendKeyValues(dst, 5, m.Properties)
}

func appendSchemaField(dst []byte, num int, m *Schema) []byte {
	dst, s := beginMessage(dst, num)
	return endMessage(m.appendTo(dst), s)
}

// FeatureFlags are the capabilities announced in CONNECT and CONNECTED.
type FeatureFlags struct {
	SupportsAuthRefresh         bool // 1
	SupportsBrokerEntryMetadata bool // 2
	SupportsPartialProducer     bool // 3
	SupportsTopicWatchers       bool // 4
}

func (m *FeatureFlags) decode(b []byte) error {
	*m = FeatureFlags{}
	d := newDecoder(b, "FeatureFlags")
	for d.next() {
		var p *bool
		switch d.num {
		case 1:
			p = &m.SupportsAuthRefresh
		case 2:
			p = &m.SupportsBrokerEntryMetadata
		case 3:
			p = &m.SupportsPartialProducer
		case 4:
			p = &m.SupportsTopicWatchers
		default:
			d.skip()
			continue
		}
		if v, ok := d.uint64(); ok {
			*p = v != 0
		}
	}
	return d.err
}

func (m *FeatureFlags) appendTo(dst []byte) []byte {
	if m.SupportsAuthRefresh {
		dst = appendBool(dst, 1, true)
	}
	if m.SupportsBrokerEntryMetadata {
		dst = appendBool(dst, 2, true)
	}
	if m.SupportsPartialProducer {
		dst = appendBool(dst, 3, true)
	}
	if m.SupportsTopicWatchers {
		dst = appendBool(dst, 4, true)
	}
	return dst
}

// AuthData is the credential of AUTH_CHALLENGE and AUTH_RESPONSE.
type AuthData struct {
	AuthMethodName string // 1
	AuthData       []byte // 2, nil when absent
}

func (m *AuthData) decode(b []byte) error {
	*m = AuthData{}
	d := newDecoder(b, "AuthData")
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.string(); ok {
				m.AuthMethodName = v
			}
		case 2:
			if v, ok := d.bytes(); ok {
				m.AuthData = v
			}
		default:
			d.skip()
		}
	}
	return d.err
}

func (m *AuthData) appendTo(dst []byte) []byte {
	if m.AuthMethodName != "" {
		dst = appendString(dst, 1, m.AuthMethodName)
	}
	if m.AuthData != nil {
		dst = appendBytes(dst, 2, m.AuthData)
	}
	return dst
}

// TxnSubscription is the transaction protocol's Subscription message.
type TxnSubscription struct {
	Topic        string // 1, required
	Subscription string // 2, required
}

func (m *TxnSubscription) decode(b []byte) error {
	*m = TxnSubscription{}
	d := newDecoder(b, "Subscription")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.string(); ok {
				m.Topic, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.string(); ok {
				m.Subscription, seen = v, seen|1<<2
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func (m *TxnSubscription) appendTo(dst []byte) []byte {
	dst = appendString(dst, 1, m.Topic)
	return appendString(dst, 2, m.Subscription)
}
