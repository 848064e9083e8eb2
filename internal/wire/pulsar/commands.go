package pulsar

// The commands, one struct per sub-message of BaseCommand. Field comments
// give the protobuf field number. Encoding rules:
//   - required fields are always written;
//   - optional scalars are written when they differ from the protocol
//     default, except the few that the Go client reads for presence or whose
//     default is not the zero value, which are always written (noted);
//   - fields with a HasX flag are written exactly when HasX is set;
//   - optional strings are written when non-empty, optional []byte fields
//     when non-nil (a decoded empty field is a non-nil empty slice).

// CommandConnect opens a connection (client to broker).
type CommandConnect struct {
	ClientVersion      string     // 1, required
	AuthMethod         AuthMethod // 2, deprecated
	AuthData           []byte     // 3
	ProtocolVersion    int32      // 4
	AuthMethodName     string     // 5
	ProxyToBrokerURL   string     // 6
	OriginalPrincipal  string     // 7
	OriginalAuthData   string     // 8
	OriginalAuthMethod string     // 9
	FeatureFlags       FeatureFlags
	HasFeatureFlags    bool // 10
}

func (m *CommandConnect) decode(b []byte) error {
	*m = CommandConnect{}
	d := newDecoder(b, "CommandConnect")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.string(); ok {
				m.ClientVersion, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.AuthMethod = AuthMethod(v)
			}
		case 3:
			if v, ok := d.bytes(); ok {
				m.AuthData = v
			}
		case 4:
			if v, ok := d.uint64(); ok {
				m.ProtocolVersion = int32(v)
			}
		case 5:
			if v, ok := d.string(); ok {
				m.AuthMethodName = v
			}
		case 6:
			if v, ok := d.string(); ok {
				m.ProxyToBrokerURL = v
			}
		case 7:
			if v, ok := d.string(); ok {
				m.OriginalPrincipal = v
			}
		case 8:
			if v, ok := d.string(); ok {
				m.OriginalAuthData = v
			}
		case 9:
			if v, ok := d.string(); ok {
				m.OriginalAuthMethod = v
			}
		case 10:
			m.HasFeatureFlags = d.message(m.FeatureFlags.decode) || m.HasFeatureFlags
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1)
}

func (m *CommandConnect) appendTo(dst []byte) []byte {
	dst = appendString(dst, 1, m.ClientVersion)
	if m.AuthMethod != 0 {
		dst = appendInt32(dst, 2, int32(m.AuthMethod))
	}
	if m.AuthData != nil {
		dst = appendBytes(dst, 3, m.AuthData)
	}
	if m.ProtocolVersion != 0 {
		dst = appendInt32(dst, 4, m.ProtocolVersion)
	}
	if m.AuthMethodName != "" {
		dst = appendString(dst, 5, m.AuthMethodName)
	}
	if m.ProxyToBrokerURL != "" {
		dst = appendString(dst, 6, m.ProxyToBrokerURL)
	}
	if m.OriginalPrincipal != "" {
		dst = appendString(dst, 7, m.OriginalPrincipal)
	}
	if m.OriginalAuthData != "" {
		dst = appendString(dst, 8, m.OriginalAuthData)
	}
	if m.OriginalAuthMethod != "" {
		dst = appendString(dst, 9, m.OriginalAuthMethod)
	}
	if m.HasFeatureFlags {
		var s int
		dst, s = beginMessage(dst, 10)
		dst = endMessage(m.FeatureFlags.appendTo(dst), s)
	}
	return dst
}

// CommandConnected accepts a connection (broker to client).
type CommandConnected struct {
	ServerVersion   string // 1, required
	ProtocolVersion int32  // 2
	MaxMessageSize  int32  // 3; the Go client uses 5 MiB when absent or <= 0
	FeatureFlags    FeatureFlags
	HasFeatureFlags bool // 4
}

func (m *CommandConnected) decode(b []byte) error {
	*m = CommandConnected{}
	d := newDecoder(b, "CommandConnected")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.string(); ok {
				m.ServerVersion, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.ProtocolVersion = int32(v)
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.MaxMessageSize = int32(v)
			}
		case 4:
			m.HasFeatureFlags = d.message(m.FeatureFlags.decode) || m.HasFeatureFlags
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1)
}

func (m *CommandConnected) appendTo(dst []byte) []byte {
	dst = appendString(dst, 1, m.ServerVersion)
	if m.ProtocolVersion != 0 {
		dst = appendInt32(dst, 2, m.ProtocolVersion)
	}
	if m.MaxMessageSize != 0 {
		dst = appendInt32(dst, 3, m.MaxMessageSize)
	}
	if m.HasFeatureFlags {
		var s int
		dst, s = beginMessage(dst, 4)
		dst = endMessage(m.FeatureFlags.appendTo(dst), s)
	}
	return dst
}

// CommandAuthChallenge asks the client for fresh credentials (broker to
// client). AUTH_RESPONSE has the same shape with client_version.
type CommandAuthChallenge struct {
	ServerVersion   string // 1
	Challenge       AuthData
	HasChallenge    bool  // 2
	ProtocolVersion int32 // 3
}

func (m *CommandAuthChallenge) decode(b []byte) error {
	*m = CommandAuthChallenge{}
	d := newDecoder(b, "CommandAuthChallenge")
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.string(); ok {
				m.ServerVersion = v
			}
		case 2:
			m.HasChallenge = d.message(m.Challenge.decode) || m.HasChallenge
		case 3:
			if v, ok := d.uint64(); ok {
				m.ProtocolVersion = int32(v)
			}
		default:
			d.skip()
		}
	}
	return d.err
}

func (m *CommandAuthChallenge) appendTo(dst []byte) []byte {
	if m.ServerVersion != "" {
		dst = appendString(dst, 1, m.ServerVersion)
	}
	if m.HasChallenge {
		var s int
		dst, s = beginMessage(dst, 2)
		dst = endMessage(m.Challenge.appendTo(dst), s)
	}
	if m.ProtocolVersion != 0 {
		dst = appendInt32(dst, 3, m.ProtocolVersion)
	}
	return dst
}

// CommandAuthResponse carries the client's fresh credentials.
type CommandAuthResponse struct {
	ClientVersion   string // 1
	Response        AuthData
	HasResponse     bool  // 2
	ProtocolVersion int32 // 3
}

func (m *CommandAuthResponse) decode(b []byte) error {
	*m = CommandAuthResponse{}
	d := newDecoder(b, "CommandAuthResponse")
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.string(); ok {
				m.ClientVersion = v
			}
		case 2:
			m.HasResponse = d.message(m.Response.decode) || m.HasResponse
		case 3:
			if v, ok := d.uint64(); ok {
				m.ProtocolVersion = int32(v)
			}
		default:
			d.skip()
		}
	}
	return d.err
}

func (m *CommandAuthResponse) appendTo(dst []byte) []byte {
	if m.ClientVersion != "" {
		dst = appendString(dst, 1, m.ClientVersion)
	}
	if m.HasResponse {
		var s int
		dst, s = beginMessage(dst, 2)
		dst = endMessage(m.Response.appendTo(dst), s)
	}
	if m.ProtocolVersion != 0 {
		dst = appendInt32(dst, 3, m.ProtocolVersion)
	}
	return dst
}

// CommandSubscribe creates a consumer.
type CommandSubscribe struct {
	Topic                           string          // 1, required
	Subscription                    string          // 2, required
	SubType                         SubType         // 3, required
	ConsumerID                      uint64          // 4, required
	RequestID                       uint64          // 5, required
	ConsumerName                    string          // 6
	PriorityLevel                   int32           // 7
	Durable                         bool            // 8, default true; always written
	StartMessageID                  MessageIDData   // 9
	HasStartMessageID               bool            //
	Metadata                        []KeyValue      // 10
	ReadCompacted                   bool            // 11
	Schema                          Schema          // 12
	HasSchema                       bool            //
	InitialPosition                 InitialPosition // 13
	ReplicateSubscriptionState      bool            // 14
	ForceTopicCreation              bool            // 15, default true; always written
	StartMessageRollbackDurationSec uint64          // 16
	KeySharedMeta                   KeySharedMeta   // 17
	HasKeySharedMeta                bool            //
	SubscriptionProperties          []KeyValue      // 18
	ConsumerEpoch                   uint64          // 19
	HasConsumerEpoch                bool            //
}

func (m *CommandSubscribe) reset() {
	start, schema, ks := m.StartMessageID, m.Schema, m.KeySharedMeta
	start.reset()
	schema.reset()
	ks.reset()
	*m = CommandSubscribe{
		Durable: true, ForceTopicCreation: true,
		StartMessageID: start, Schema: schema, KeySharedMeta: ks,
		Metadata: m.Metadata[:0], SubscriptionProperties: m.SubscriptionProperties[:0],
	}
}

func (m *CommandSubscribe) decode(b []byte) error {
	m.reset()
	d := newDecoder(b, "CommandSubscribe")
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
		case 3:
			if v, ok := d.uint64(); ok {
				m.SubType, seen = SubType(v), seen|1<<3
			}
		case 4:
			if v, ok := d.uint64(); ok {
				m.ConsumerID, seen = v, seen|1<<4
			}
		case 5:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<5
			}
		case 6:
			if v, ok := d.string(); ok {
				m.ConsumerName = v
			}
		case 7:
			if v, ok := d.uint64(); ok {
				m.PriorityLevel = int32(v)
			}
		case 8:
			if v, ok := d.uint64(); ok {
				m.Durable = v != 0
			}
		case 9:
			m.HasStartMessageID = d.message(m.StartMessageID.decode) || m.HasStartMessageID
		case 10:
			m.Metadata = d.keyValue(m.Metadata)
		case 11:
			if v, ok := d.uint64(); ok {
				m.ReadCompacted = v != 0
			}
		case 12:
			m.HasSchema = d.message(m.Schema.decode) || m.HasSchema
		case 13:
			if v, ok := d.uint64(); ok {
				m.InitialPosition = InitialPosition(v)
			}
		case 14:
			if v, ok := d.uint64(); ok {
				m.ReplicateSubscriptionState = v != 0
			}
		case 15:
			if v, ok := d.uint64(); ok {
				m.ForceTopicCreation = v != 0
			}
		case 16:
			if v, ok := d.uint64(); ok {
				m.StartMessageRollbackDurationSec = v
			}
		case 17:
			m.HasKeySharedMeta = d.message(m.KeySharedMeta.decode) || m.HasKeySharedMeta
		case 18:
			m.SubscriptionProperties = d.keyValue(m.SubscriptionProperties)
		case 19:
			if v, ok := d.uint64(); ok {
				m.ConsumerEpoch, m.HasConsumerEpoch = v, true
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2|1<<3|1<<4|1<<5)
}

func (m *CommandSubscribe) appendTo(dst []byte) []byte {
	dst = appendString(dst, 1, m.Topic)
	dst = appendString(dst, 2, m.Subscription)
	dst = appendInt32(dst, 3, int32(m.SubType))
	dst = appendUint64(dst, 4, m.ConsumerID)
	dst = appendUint64(dst, 5, m.RequestID)
	if m.ConsumerName != "" {
		dst = appendString(dst, 6, m.ConsumerName)
	}
	if m.PriorityLevel != 0 {
		dst = appendInt32(dst, 7, m.PriorityLevel)
	}
	dst = appendBool(dst, 8, m.Durable)
	if m.HasStartMessageID {
		dst = appendMessageIDField(dst, 9, &m.StartMessageID)
	}
	dst = appendKeyValues(dst, 10, m.Metadata)
	if m.ReadCompacted {
		dst = appendBool(dst, 11, true)
	}
	if m.HasSchema {
		dst = appendSchemaField(dst, 12, &m.Schema)
	}
	if m.InitialPosition != 0 {
		dst = appendInt32(dst, 13, int32(m.InitialPosition))
	}
	if m.ReplicateSubscriptionState {
		dst = appendBool(dst, 14, true)
	}
	dst = appendBool(dst, 15, m.ForceTopicCreation)
	if m.StartMessageRollbackDurationSec != 0 {
		dst = appendUint64(dst, 16, m.StartMessageRollbackDurationSec)
	}
	if m.HasKeySharedMeta {
		var s int
		dst, s = beginMessage(dst, 17)
		dst = endMessage(m.KeySharedMeta.appendTo(dst), s)
	}
	dst = appendKeyValues(dst, 18, m.SubscriptionProperties)
	if m.HasConsumerEpoch {
		dst = appendUint64(dst, 19, m.ConsumerEpoch)
	}
	return dst
}

// CommandPartitionedTopicMetadata asks how many partitions a topic has.
type CommandPartitionedTopicMetadata struct {
	Topic              string // 1, required
	RequestID          uint64 // 2, required
	OriginalPrincipal  string // 3
	OriginalAuthData   string // 4
	OriginalAuthMethod string // 5
}

func (m *CommandPartitionedTopicMetadata) decode(b []byte) error {
	*m = CommandPartitionedTopicMetadata{}
	d := newDecoder(b, "CommandPartitionedTopicMetadata")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.string(); ok {
				m.Topic, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<2
			}
		case 3:
			if v, ok := d.string(); ok {
				m.OriginalPrincipal = v
			}
		case 4:
			if v, ok := d.string(); ok {
				m.OriginalAuthData = v
			}
		case 5:
			if v, ok := d.string(); ok {
				m.OriginalAuthMethod = v
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func (m *CommandPartitionedTopicMetadata) appendTo(dst []byte) []byte {
	dst = appendString(dst, 1, m.Topic)
	dst = appendUint64(dst, 2, m.RequestID)
	if m.OriginalPrincipal != "" {
		dst = appendString(dst, 3, m.OriginalPrincipal)
	}
	if m.OriginalAuthData != "" {
		dst = appendString(dst, 4, m.OriginalAuthData)
	}
	if m.OriginalAuthMethod != "" {
		dst = appendString(dst, 5, m.OriginalAuthMethod)
	}
	return dst
}

// CommandPartitionedTopicMetadataResponse answers PARTITIONED_METADATA.
type CommandPartitionedTopicMetadataResponse struct {
	Partitions uint32                    // 1, always written
	RequestID  uint64                    // 2, required
	Response   PartitionedMetadataResult // 3, always written
	Error      ServerError               // 4
	HasError   bool                      //
	Message    string                    // 5
}

func (m *CommandPartitionedTopicMetadataResponse) decode(b []byte) error {
	*m = CommandPartitionedTopicMetadataResponse{}
	d := newDecoder(b, "CommandPartitionedTopicMetadataResponse")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.Partitions = uint32(v)
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<2
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.Response = PartitionedMetadataResult(v)
			}
		case 4:
			if v, ok := d.uint64(); ok {
				m.Error, m.HasError = ServerError(v), true
			}
		case 5:
			if v, ok := d.string(); ok {
				m.Message = v
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<2)
}

func (m *CommandPartitionedTopicMetadataResponse) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, uint64(m.Partitions))
	dst = appendUint64(dst, 2, m.RequestID)
	dst = appendInt32(dst, 3, int32(m.Response))
	if m.HasError {
		dst = appendInt32(dst, 4, int32(m.Error))
	}
	if m.Message != "" {
		dst = appendString(dst, 5, m.Message)
	}
	return dst
}

// CommandLookupTopic asks which broker serves a topic.
type CommandLookupTopic struct {
	Topic                  string     // 1, required
	RequestID              uint64     // 2, required
	Authoritative          bool       // 3
	OriginalPrincipal      string     // 4
	OriginalAuthData       string     // 5
	OriginalAuthMethod     string     // 6
	AdvertisedListenerName string     // 7
	Properties             []KeyValue // 8
}

func (m *CommandLookupTopic) decode(b []byte) error {
	*m = CommandLookupTopic{Properties: m.Properties[:0]}
	d := newDecoder(b, "CommandLookupTopic")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.string(); ok {
				m.Topic, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<2
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.Authoritative = v != 0
			}
		case 4:
			if v, ok := d.string(); ok {
				m.OriginalPrincipal = v
			}
		case 5:
			if v, ok := d.string(); ok {
				m.OriginalAuthData = v
			}
		case 6:
			if v, ok := d.string(); ok {
				m.OriginalAuthMethod = v
			}
		case 7:
			if v, ok := d.string(); ok {
				m.AdvertisedListenerName = v
			}
		case 8:
			m.Properties = d.keyValue(m.Properties)
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func (m *CommandLookupTopic) appendTo(dst []byte) []byte {
	dst = appendString(dst, 1, m.Topic)
	dst = appendUint64(dst, 2, m.RequestID)
	if m.Authoritative {
		dst = appendBool(dst, 3, true)
	}
	if m.OriginalPrincipal != "" {
		dst = appendString(dst, 4, m.OriginalPrincipal)
	}
	if m.OriginalAuthData != "" {
		dst = appendString(dst, 5, m.OriginalAuthData)
	}
	if m.OriginalAuthMethod != "" {
		dst = appendString(dst, 6, m.OriginalAuthMethod)
	}
	if m.AdvertisedListenerName != "" {
		dst = appendString(dst, 7, m.AdvertisedListenerName)
	}
	return appendKeyValues(dst, 8, m.Properties)
}

// CommandLookupTopicResponse answers LOOKUP. Response is always written: the
// Go client dereferences it without a check.
type CommandLookupTopicResponse struct {
	BrokerServiceURL       string      // 1
	BrokerServiceURLTLS    string      // 2
	Response               LookupType  // 3, always written
	RequestID              uint64      // 4, required
	Authoritative          bool        // 5
	Error                  ServerError // 6
	HasError               bool        //
	Message                string      // 7
	ProxyThroughServiceURL bool        // 8
}

func (m *CommandLookupTopicResponse) decode(b []byte) error {
	*m = CommandLookupTopicResponse{}
	d := newDecoder(b, "CommandLookupTopicResponse")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.string(); ok {
				m.BrokerServiceURL = v
			}
		case 2:
			if v, ok := d.string(); ok {
				m.BrokerServiceURLTLS = v
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.Response = LookupType(v)
			}
		case 4:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<4
			}
		case 5:
			if v, ok := d.uint64(); ok {
				m.Authoritative = v != 0
			}
		case 6:
			if v, ok := d.uint64(); ok {
				m.Error, m.HasError = ServerError(v), true
			}
		case 7:
			if v, ok := d.string(); ok {
				m.Message = v
			}
		case 8:
			if v, ok := d.uint64(); ok {
				m.ProxyThroughServiceURL = v != 0
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<4)
}

func (m *CommandLookupTopicResponse) appendTo(dst []byte) []byte {
	if m.BrokerServiceURL != "" {
		dst = appendString(dst, 1, m.BrokerServiceURL)
	}
	if m.BrokerServiceURLTLS != "" {
		dst = appendString(dst, 2, m.BrokerServiceURLTLS)
	}
	dst = appendInt32(dst, 3, int32(m.Response))
	dst = appendUint64(dst, 4, m.RequestID)
	if m.Authoritative {
		dst = appendBool(dst, 5, true)
	}
	if m.HasError {
		dst = appendInt32(dst, 6, int32(m.Error))
	}
	if m.Message != "" {
		dst = appendString(dst, 7, m.Message)
	}
	if m.ProxyThroughServiceURL {
		dst = appendBool(dst, 8, true)
	}
	return dst
}

// CommandProducer creates a producer.
type CommandProducer struct {
	Topic                    string             // 1, required
	ProducerID               uint64             // 2, required
	RequestID                uint64             // 3, required
	ProducerName             string             // 4
	Encrypted                bool               // 5
	Metadata                 []KeyValue         // 6
	Schema                   Schema             // 7
	HasSchema                bool               //
	Epoch                    uint64             // 8
	UserProvidedProducerName bool               // 9, default true; always written
	ProducerAccessMode       ProducerAccessMode // 10
	TopicEpoch               uint64             // 11
	HasTopicEpoch            bool               //
	TxnEnabled               bool               // 12
	InitialSubscriptionName  string             // 13
}

func (m *CommandProducer) decode(b []byte) error {
	schema := m.Schema
	schema.reset()
	*m = CommandProducer{UserProvidedProducerName: true, Schema: schema, Metadata: m.Metadata[:0]}
	d := newDecoder(b, "CommandProducer")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.string(); ok {
				m.Topic, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.ProducerID, seen = v, seen|1<<2
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<3
			}
		case 4:
			if v, ok := d.string(); ok {
				m.ProducerName = v
			}
		case 5:
			if v, ok := d.uint64(); ok {
				m.Encrypted = v != 0
			}
		case 6:
			m.Metadata = d.keyValue(m.Metadata)
		case 7:
			m.HasSchema = d.message(m.Schema.decode) || m.HasSchema
		case 8:
			if v, ok := d.uint64(); ok {
				m.Epoch = v
			}
		case 9:
			if v, ok := d.uint64(); ok {
				m.UserProvidedProducerName = v != 0
			}
		case 10:
			if v, ok := d.uint64(); ok {
				m.ProducerAccessMode = ProducerAccessMode(v)
			}
		case 11:
			if v, ok := d.uint64(); ok {
				m.TopicEpoch, m.HasTopicEpoch = v, true
			}
		case 12:
			if v, ok := d.uint64(); ok {
				m.TxnEnabled = v != 0
			}
		case 13:
			if v, ok := d.string(); ok {
				m.InitialSubscriptionName = v
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2|1<<3)
}

func (m *CommandProducer) appendTo(dst []byte) []byte {
	dst = appendString(dst, 1, m.Topic)
	dst = appendUint64(dst, 2, m.ProducerID)
	dst = appendUint64(dst, 3, m.RequestID)
	if m.ProducerName != "" {
		dst = appendString(dst, 4, m.ProducerName)
	}
	if m.Encrypted {
		dst = appendBool(dst, 5, true)
	}
	dst = appendKeyValues(dst, 6, m.Metadata)
	if m.HasSchema {
		dst = appendSchemaField(dst, 7, &m.Schema)
	}
	if m.Epoch != 0 {
		dst = appendUint64(dst, 8, m.Epoch)
	}
	dst = appendBool(dst, 9, m.UserProvidedProducerName)
	if m.ProducerAccessMode != 0 {
		dst = appendInt32(dst, 10, int32(m.ProducerAccessMode))
	}
	if m.HasTopicEpoch {
		dst = appendUint64(dst, 11, m.TopicEpoch)
	}
	if m.TxnEnabled {
		dst = appendBool(dst, 12, true)
	}
	if m.InitialSubscriptionName != "" {
		dst = appendString(dst, 13, m.InitialSubscriptionName)
	}
	return dst
}

// CommandSend publishes one entry (a message, a batch or a chunk); the
// payload follows the command in the frame.
type CommandSend struct {
	ProducerID uint64 // 1, required
	SequenceID uint64 // 2, required
	// NumMessages (3) is the number of messages in the entry; 1 when absent.
	// Written when greater than 1.
	NumMessages       int32
	TxnidLeastBits    uint64 // 4
	TxnidMostBits     uint64 // 5
	HighestSequenceID uint64 // 6
	IsChunk           bool   // 7
	Marker            bool   // 8
	MessageID         MessageIDData
	HasMessageID      bool // 9
}

func (m *CommandSend) decode(b []byte) error {
	id := m.MessageID
	id.reset()
	*m = CommandSend{NumMessages: 1, MessageID: id}
	d := newDecoder(b, "CommandSend")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.ProducerID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.SequenceID, seen = v, seen|1<<2
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.NumMessages = int32(v)
			}
		case 4:
			if v, ok := d.uint64(); ok {
				m.TxnidLeastBits = v
			}
		case 5:
			if v, ok := d.uint64(); ok {
				m.TxnidMostBits = v
			}
		case 6:
			if v, ok := d.uint64(); ok {
				m.HighestSequenceID = v
			}
		case 7:
			if v, ok := d.uint64(); ok {
				m.IsChunk = v != 0
			}
		case 8:
			if v, ok := d.uint64(); ok {
				m.Marker = v != 0
			}
		case 9:
			m.HasMessageID = d.message(m.MessageID.decode) || m.HasMessageID
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func (m *CommandSend) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.ProducerID)
	dst = appendUint64(dst, 2, m.SequenceID)
	if m.NumMessages > 1 {
		dst = appendInt32(dst, 3, m.NumMessages)
	}
	if m.TxnidLeastBits != 0 {
		dst = appendUint64(dst, 4, m.TxnidLeastBits)
	}
	if m.TxnidMostBits != 0 {
		dst = appendUint64(dst, 5, m.TxnidMostBits)
	}
	if m.HighestSequenceID != 0 {
		dst = appendUint64(dst, 6, m.HighestSequenceID)
	}
	if m.IsChunk {
		dst = appendBool(dst, 7, true)
	}
	if m.Marker {
		dst = appendBool(dst, 8, true)
	}
	if m.HasMessageID {
		dst = appendMessageIDField(dst, 9, &m.MessageID)
	}
	return dst
}

// CommandSendReceipt confirms a SEND. MessageID is always written: the client
// builds the message id from it.
type CommandSendReceipt struct {
	ProducerID        uint64        // 1, required
	SequenceID        uint64        // 2, required
	MessageID         MessageIDData // 3, always written
	HasMessageID      bool          // set by decode
	HighestSequenceID uint64        // 4
}

func (m *CommandSendReceipt) decode(b []byte) error {
	id := m.MessageID
	id.reset()
	*m = CommandSendReceipt{MessageID: id}
	d := newDecoder(b, "CommandSendReceipt")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.ProducerID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.SequenceID, seen = v, seen|1<<2
			}
		case 3:
			m.HasMessageID = d.message(m.MessageID.decode) || m.HasMessageID
		case 4:
			if v, ok := d.uint64(); ok {
				m.HighestSequenceID = v
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func (m *CommandSendReceipt) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.ProducerID)
	dst = appendUint64(dst, 2, m.SequenceID)
	dst = appendMessageIDField(dst, 3, &m.MessageID)
	if m.HighestSequenceID != 0 {
		dst = appendUint64(dst, 4, m.HighestSequenceID)
	}
	return dst
}

// CommandSendError fails a SEND. The Go client tolerates only NotAllowedError
// and TopicTerminatedError; any other code makes it close the connection.
type CommandSendError struct {
	ProducerID uint64      // 1, required
	SequenceID uint64      // 2, required
	Error      ServerError // 3, required
	Message    string      // 4, required
}

func (m *CommandSendError) decode(b []byte) error {
	*m = CommandSendError{}
	d := newDecoder(b, "CommandSendError")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.ProducerID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.SequenceID, seen = v, seen|1<<2
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.Error, seen = ServerError(v), seen|1<<3
			}
		case 4:
			if v, ok := d.string(); ok {
				m.Message, seen = v, seen|1<<4
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2|1<<3|1<<4)
}

func (m *CommandSendError) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.ProducerID)
	dst = appendUint64(dst, 2, m.SequenceID)
	dst = appendInt32(dst, 3, int32(m.Error))
	return appendString(dst, 4, m.Message)
}

// CommandMessage delivers one entry to a consumer; the stored entry follows
// the command in the frame.
type CommandMessage struct {
	ConsumerID       uint64        // 1, required
	MessageID        MessageIDData // 2, required
	RedeliveryCount  uint32        // 3
	AckSet           []int64       // 4
	ConsumerEpoch    uint64        // 5
	HasConsumerEpoch bool          //
}

func (m *CommandMessage) decode(b []byte) error {
	id := m.MessageID
	*m = CommandMessage{MessageID: id, AckSet: m.AckSet[:0]}
	d := newDecoder(b, "CommandMessage")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.ConsumerID, seen = v, seen|1<<1
			}
		case 2:
			if d.message(m.MessageID.decode) {
				seen |= 1 << 2
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.RedeliveryCount = uint32(v)
			}
		case 4:
			m.AckSet = d.int64s(m.AckSet)
		case 5:
			if v, ok := d.uint64(); ok {
				m.ConsumerEpoch, m.HasConsumerEpoch = v, true
			}
		default:
			d.skip()
		}
	}
	if seen&(1<<2) == 0 {
		m.MessageID.reset()
	}
	return d.check(seen, 1<<1|1<<2)
}

func (m *CommandMessage) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.ConsumerID)
	dst = appendMessageIDField(dst, 2, &m.MessageID)
	if m.RedeliveryCount != 0 {
		dst = appendUint64(dst, 3, uint64(m.RedeliveryCount))
	}
	for _, w := range m.AckSet {
		dst = appendInt64(dst, 4, w)
	}
	if m.HasConsumerEpoch {
		dst = appendUint64(dst, 5, m.ConsumerEpoch)
	}
	return dst
}

// CommandAck acknowledges messages.
type CommandAck struct {
	ConsumerID         uint64          // 1, required
	AckType            AckType         // 2, required
	MessageIDs         []MessageIDData // 3
	ValidationError    ValidationError // 4
	HasValidationError bool            //
	Properties         []KeyLongValue  // 5
	TxnidLeastBits     uint64          // 6
	TxnidMostBits      uint64          // 7
	RequestID          uint64          // 8
	HasRequestID       bool            // set: the client waits for ACK_RESPONSE
}

func (m *CommandAck) decode(b []byte) error {
	*m = CommandAck{MessageIDs: m.MessageIDs[:0], Properties: m.Properties[:0]}
	d := newDecoder(b, "CommandAck")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.ConsumerID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.AckType, seen = AckType(v), seen|1<<2
			}
		case 3:
			m.MessageIDs = d.messageID(m.MessageIDs)
		case 4:
			if v, ok := d.uint64(); ok {
				m.ValidationError, m.HasValidationError = ValidationError(v), true
			}
		case 5:
			var p *KeyLongValue
			m.Properties, p = grow(m.Properties)
			if !d.message(p.decode) {
				m.Properties = m.Properties[:len(m.Properties)-1]
			}
		case 6:
			if v, ok := d.uint64(); ok {
				m.TxnidLeastBits = v
			}
		case 7:
			if v, ok := d.uint64(); ok {
				m.TxnidMostBits = v
			}
		case 8:
			if v, ok := d.uint64(); ok {
				m.RequestID, m.HasRequestID = v, true
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func (d *decoder) messageID(ids []MessageIDData) []MessageIDData {
	ids, id := grow(ids)
	if !d.message(id.decode) {
		ids = ids[:len(ids)-1]
	}
	return ids
}

func (m *CommandAck) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.ConsumerID)
	dst = appendInt32(dst, 2, int32(m.AckType))
	for i := range m.MessageIDs {
		dst = appendMessageIDField(dst, 3, &m.MessageIDs[i])
	}
	if m.HasValidationError {
		dst = appendInt32(dst, 4, int32(m.ValidationError))
	}
	for i := range m.Properties {
		var s int
		dst, s = beginMessage(dst, 5)
		dst = endMessage(m.Properties[i].appendTo(dst), s)
	}
	if m.TxnidLeastBits != 0 {
		dst = appendUint64(dst, 6, m.TxnidLeastBits)
	}
	if m.TxnidMostBits != 0 {
		dst = appendUint64(dst, 7, m.TxnidMostBits)
	}
	if m.HasRequestID {
		dst = appendUint64(dst, 8, m.RequestID)
	}
	return dst
}

// CommandAckResponse answers an ACK that carried a request id. The client
// reports success when Message is empty. RequestID is always written.
type CommandAckResponse struct {
	ConsumerID     uint64      // 1, required
	TxnidLeastBits uint64      // 2
	TxnidMostBits  uint64      // 3
	Error          ServerError // 4
	HasError       bool        //
	Message        string      // 5
	RequestID      uint64      // 6, always written
}

func (m *CommandAckResponse) decode(b []byte) error {
	*m = CommandAckResponse{}
	d := newDecoder(b, "CommandAckResponse")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.ConsumerID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.TxnidLeastBits = v
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.TxnidMostBits = v
			}
		case 4:
			if v, ok := d.uint64(); ok {
				m.Error, m.HasError = ServerError(v), true
			}
		case 5:
			if v, ok := d.string(); ok {
				m.Message = v
			}
		case 6:
			if v, ok := d.uint64(); ok {
				m.RequestID = v
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1)
}

func (m *CommandAckResponse) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.ConsumerID)
	if m.TxnidLeastBits != 0 {
		dst = appendUint64(dst, 2, m.TxnidLeastBits)
	}
	if m.TxnidMostBits != 0 {
		dst = appendUint64(dst, 3, m.TxnidMostBits)
	}
	if m.HasError {
		dst = appendInt32(dst, 4, int32(m.Error))
	}
	if m.Message != "" {
		dst = appendString(dst, 5, m.Message)
	}
	return appendUint64(dst, 6, m.RequestID)
}

// CommandActiveConsumerChange tells a Failover consumer whether it is the
// active one. IsActive is always written.
type CommandActiveConsumerChange struct {
	ConsumerID uint64 // 1, required
	IsActive   bool   // 2, always written
}

func (m *CommandActiveConsumerChange) decode(b []byte) error {
	*m = CommandActiveConsumerChange{}
	d := newDecoder(b, "CommandActiveConsumerChange")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.ConsumerID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.IsActive = v != 0
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1)
}

func (m *CommandActiveConsumerChange) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.ConsumerID)
	return appendBool(dst, 2, m.IsActive)
}

// CommandFlow grants a consumer permits, counted in messages.
type CommandFlow struct {
	ConsumerID     uint64 // 1, required
	MessagePermits uint32 // 2, required
}

func (m *CommandFlow) decode(b []byte) error {
	*m = CommandFlow{}
	d := newDecoder(b, "CommandFlow")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.ConsumerID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.MessagePermits, seen = uint32(v), seen|1<<2
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func (m *CommandFlow) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.ConsumerID)
	return appendUint64(dst, 2, uint64(m.MessagePermits))
}

// CommandUnsubscribe deletes a consumer's subscription.
type CommandUnsubscribe struct {
	ConsumerID uint64 // 1, required
	RequestID  uint64 // 2, required
	Force      bool   // 3
}

func (m *CommandUnsubscribe) decode(b []byte) error {
	*m = CommandUnsubscribe{}
	d := newDecoder(b, "CommandUnsubscribe")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.ConsumerID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<2
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.Force = v != 0
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func (m *CommandUnsubscribe) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.ConsumerID)
	dst = appendUint64(dst, 2, m.RequestID)
	if m.Force {
		dst = appendBool(dst, 3, true)
	}
	return dst
}

// CommandSeek moves a subscription to a message id or a publish time.
type CommandSeek struct {
	ConsumerID            uint64        // 1, required
	RequestID             uint64        // 2, required
	MessageID             MessageIDData // 3
	HasMessageID          bool          //
	MessagePublishTime    uint64        // 4, ms
	HasMessagePublishTime bool          //
}

func (m *CommandSeek) decode(b []byte) error {
	id := m.MessageID
	id.reset()
	*m = CommandSeek{MessageID: id}
	d := newDecoder(b, "CommandSeek")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.ConsumerID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<2
			}
		case 3:
			m.HasMessageID = d.message(m.MessageID.decode) || m.HasMessageID
		case 4:
			if v, ok := d.uint64(); ok {
				m.MessagePublishTime, m.HasMessagePublishTime = v, true
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func (m *CommandSeek) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.ConsumerID)
	dst = appendUint64(dst, 2, m.RequestID)
	if m.HasMessageID {
		dst = appendMessageIDField(dst, 3, &m.MessageID)
	}
	if m.HasMessagePublishTime {
		dst = appendUint64(dst, 4, m.MessagePublishTime)
	}
	return dst
}

// CommandReachedEndOfTopic tells a consumer its topic is terminated. Never
// send it to a Go client: it closes the connection on this command.
type CommandReachedEndOfTopic struct {
	ConsumerID uint64 // 1, required
}

func (m *CommandReachedEndOfTopic) decode(b []byte) error {
	*m = CommandReachedEndOfTopic{}
	d := newDecoder(b, "CommandReachedEndOfTopic")
	var seen uint64
	for d.next() {
		if d.num == 1 {
			if v, ok := d.uint64(); ok {
				m.ConsumerID, seen = v, seen|1<<1
			}
			continue
		}
		d.skip()
	}
	return d.check(seen, 1<<1)
}

func (m *CommandReachedEndOfTopic) appendTo(dst []byte) []byte {
	return appendUint64(dst, 1, m.ConsumerID)
}

// CommandTopicMigrated redirects a producer or consumer to another cluster.
type CommandTopicMigrated struct {
	ResourceID          uint64       // 1, required
	ResourceType        ResourceType // 2, required
	BrokerServiceURL    string       // 3
	BrokerServiceURLTLS string       // 4
}

func (m *CommandTopicMigrated) decode(b []byte) error {
	*m = CommandTopicMigrated{}
	d := newDecoder(b, "CommandTopicMigrated")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.ResourceID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.ResourceType, seen = ResourceType(v), seen|1<<2
			}
		case 3:
			if v, ok := d.string(); ok {
				m.BrokerServiceURL = v
			}
		case 4:
			if v, ok := d.string(); ok {
				m.BrokerServiceURLTLS = v
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func (m *CommandTopicMigrated) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.ResourceID)
	dst = appendInt32(dst, 2, int32(m.ResourceType))
	if m.BrokerServiceURL != "" {
		dst = appendString(dst, 3, m.BrokerServiceURL)
	}
	if m.BrokerServiceURLTLS != "" {
		dst = appendString(dst, 4, m.BrokerServiceURLTLS)
	}
	return dst
}

// CommandCloseProducer closes a producer. From the broker it tells the
// client to reconnect (optionally straight to the assigned broker).
type CommandCloseProducer struct {
	ProducerID                  uint64 // 1, required
	RequestID                   uint64 // 2, required
	AssignedBrokerServiceURL    string // 3
	AssignedBrokerServiceURLTLS string // 4
}

func (m *CommandCloseProducer) decode(b []byte) error {
	*m = CommandCloseProducer{}
	d := newDecoder(b, "CommandCloseProducer")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.ProducerID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<2
			}
		case 3:
			if v, ok := d.string(); ok {
				m.AssignedBrokerServiceURL = v
			}
		case 4:
			if v, ok := d.string(); ok {
				m.AssignedBrokerServiceURLTLS = v
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func (m *CommandCloseProducer) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.ProducerID)
	dst = appendUint64(dst, 2, m.RequestID)
	if m.AssignedBrokerServiceURL != "" {
		dst = appendString(dst, 3, m.AssignedBrokerServiceURL)
	}
	if m.AssignedBrokerServiceURLTLS != "" {
		dst = appendString(dst, 4, m.AssignedBrokerServiceURLTLS)
	}
	return dst
}

// CommandCloseConsumer closes a consumer; see CommandCloseProducer.
type CommandCloseConsumer struct {
	ConsumerID                  uint64 // 1, required
	RequestID                   uint64 // 2, required
	AssignedBrokerServiceURL    string // 3
	AssignedBrokerServiceURLTLS string // 4
}

func (m *CommandCloseConsumer) decode(b []byte) error {
	*m = CommandCloseConsumer{}
	d := newDecoder(b, "CommandCloseConsumer")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.ConsumerID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<2
			}
		case 3:
			if v, ok := d.string(); ok {
				m.AssignedBrokerServiceURL = v
			}
		case 4:
			if v, ok := d.string(); ok {
				m.AssignedBrokerServiceURLTLS = v
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func (m *CommandCloseConsumer) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.ConsumerID)
	dst = appendUint64(dst, 2, m.RequestID)
	if m.AssignedBrokerServiceURL != "" {
		dst = appendString(dst, 3, m.AssignedBrokerServiceURL)
	}
	if m.AssignedBrokerServiceURLTLS != "" {
		dst = appendString(dst, 4, m.AssignedBrokerServiceURLTLS)
	}
	return dst
}

// CommandRedeliverUnacknowledgedMessages asks for redelivery (of the listed
// entries, or of everything unacknowledged when the list is empty).
type CommandRedeliverUnacknowledgedMessages struct {
	ConsumerID       uint64          // 1, required
	MessageIDs       []MessageIDData // 2
	ConsumerEpoch    uint64          // 3
	HasConsumerEpoch bool            //
}

func (m *CommandRedeliverUnacknowledgedMessages) decode(b []byte) error {
	*m = CommandRedeliverUnacknowledgedMessages{MessageIDs: m.MessageIDs[:0]}
	d := newDecoder(b, "CommandRedeliverUnacknowledgedMessages")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.ConsumerID, seen = v, seen|1<<1
			}
		case 2:
			m.MessageIDs = d.messageID(m.MessageIDs)
		case 3:
			if v, ok := d.uint64(); ok {
				m.ConsumerEpoch, m.HasConsumerEpoch = v, true
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1)
}

func (m *CommandRedeliverUnacknowledgedMessages) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.ConsumerID)
	for i := range m.MessageIDs {
		dst = appendMessageIDField(dst, 2, &m.MessageIDs[i])
	}
	if m.HasConsumerEpoch {
		dst = appendUint64(dst, 3, m.ConsumerEpoch)
	}
	return dst
}

// CommandSuccess completes SUBSCRIBE, UNSUBSCRIBE, SEEK and the CLOSE_*
// requests.
type CommandSuccess struct {
	RequestID uint64 // 1, required
	Schema    Schema // 2
	HasSchema bool   //
}

func (m *CommandSuccess) decode(b []byte) error {
	schema := m.Schema
	schema.reset()
	*m = CommandSuccess{Schema: schema}
	d := newDecoder(b, "CommandSuccess")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 2:
			m.HasSchema = d.message(m.Schema.decode) || m.HasSchema
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1)
}

func (m *CommandSuccess) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.RequestID)
	if m.HasSchema {
		dst = appendSchemaField(dst, 2, &m.Schema)
	}
	return dst
}

// CommandProducerSuccess completes PRODUCER. LastSequenceID (default -1) and
// ProducerReady (default true) are always written.
type CommandProducerSuccess struct {
	RequestID      uint64 // 1, required
	ProducerName   string // 2, required
	LastSequenceID int64  // 3, always written
	// SchemaVersion (4): set it only when the PRODUCER carried a schema.
	// The Go client (v0.19.0) caches a non-empty version under the
	// producer's schema, and panics on a nil schema when it had none.
	SchemaVersion []byte
	TopicEpoch    uint64 // 5
	HasTopicEpoch bool   //
	ProducerReady bool   // 6, always written
}

func (m *CommandProducerSuccess) decode(b []byte) error {
	*m = CommandProducerSuccess{LastSequenceID: -1, ProducerReady: true}
	d := newDecoder(b, "CommandProducerSuccess")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.string(); ok {
				m.ProducerName, seen = v, seen|1<<2
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.LastSequenceID = int64(v)
			}
		case 4:
			if v, ok := d.bytes(); ok {
				m.SchemaVersion = v
			}
		case 5:
			if v, ok := d.uint64(); ok {
				m.TopicEpoch, m.HasTopicEpoch = v, true
			}
		case 6:
			if v, ok := d.uint64(); ok {
				m.ProducerReady = v != 0
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func (m *CommandProducerSuccess) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.RequestID)
	dst = appendString(dst, 2, m.ProducerName)
	dst = appendInt64(dst, 3, m.LastSequenceID)
	if m.SchemaVersion != nil {
		dst = appendBytes(dst, 4, m.SchemaVersion)
	}
	if m.HasTopicEpoch {
		dst = appendUint64(dst, 5, m.TopicEpoch)
	}
	return appendBool(dst, 6, m.ProducerReady)
}

// CommandError fails a request.
type CommandError struct {
	RequestID uint64      // 1, required
	Error     ServerError // 2, required
	Message   string      // 3, required
}

func (m *CommandError) decode(b []byte) error {
	*m = CommandError{}
	d := newDecoder(b, "CommandError")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.Error, seen = ServerError(v), seen|1<<2
			}
		case 3:
			if v, ok := d.string(); ok {
				m.Message, seen = v, seen|1<<3
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2|1<<3)
}

func (m *CommandError) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.RequestID)
	dst = appendInt32(dst, 2, int32(m.Error))
	return appendString(dst, 3, m.Message)
}

// CommandConsumerStats asks for a consumer's broker-side statistics.
type CommandConsumerStats struct {
	RequestID  uint64 // 1, required
	ConsumerID uint64 // 4, required
}

func (m *CommandConsumerStats) decode(b []byte) error {
	*m = CommandConsumerStats{}
	d := newDecoder(b, "CommandConsumerStats")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 4:
			if v, ok := d.uint64(); ok {
				m.ConsumerID, seen = v, seen|1<<4
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<4)
}

func (m *CommandConsumerStats) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.RequestID)
	return appendUint64(dst, 4, m.ConsumerID)
}

// CommandConsumerStatsResponse answers CONSUMER_STATS. ErrorMessage is
// written whenever HasErrorCode is set.
type CommandConsumerStatsResponse struct {
	RequestID                    uint64      // 1, required
	ErrorCode                    ServerError // 2
	HasErrorCode                 bool        //
	ErrorMessage                 string      // 3
	MsgRateOut                   float64     // 4
	MsgThroughputOut             float64     // 5
	MsgRateRedeliver             float64     // 6
	ConsumerName                 string      // 7
	AvailablePermits             uint64      // 8
	UnackedMessages              uint64      // 9
	BlockedConsumerOnUnackedMsgs bool        // 10
	Address                      string      // 11
	ConnectedSince               string      // 12
	Type                         string      // 13
	MsgRateExpired               float64     // 14
	MsgBacklog                   uint64      // 15
	MessageAckRate               float64     // 16
}

func (m *CommandConsumerStatsResponse) decode(b []byte) error {
	*m = CommandConsumerStatsResponse{}
	d := newDecoder(b, "CommandConsumerStatsResponse")
	var seen uint64
	for d.next() {
		var f *float64
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.ErrorCode, m.HasErrorCode = ServerError(v), true
			}
		case 3:
			if v, ok := d.string(); ok {
				m.ErrorMessage = v
			}
		case 4:
			f = &m.MsgRateOut
		case 5:
			f = &m.MsgThroughputOut
		case 6:
			f = &m.MsgRateRedeliver
		case 7:
			if v, ok := d.string(); ok {
				m.ConsumerName = v
			}
		case 8:
			if v, ok := d.uint64(); ok {
				m.AvailablePermits = v
			}
		case 9:
			if v, ok := d.uint64(); ok {
				m.UnackedMessages = v
			}
		case 10:
			if v, ok := d.uint64(); ok {
				m.BlockedConsumerOnUnackedMsgs = v != 0
			}
		case 11:
			if v, ok := d.string(); ok {
				m.Address = v
			}
		case 12:
			if v, ok := d.string(); ok {
				m.ConnectedSince = v
			}
		case 13:
			if v, ok := d.string(); ok {
				m.Type = v
			}
		case 14:
			f = &m.MsgRateExpired
		case 15:
			if v, ok := d.uint64(); ok {
				m.MsgBacklog = v
			}
		case 16:
			f = &m.MessageAckRate
		default:
			d.skip()
		}
		if f != nil {
			if v, ok := d.double(); ok {
				*f = v
			}
		}
	}
	return d.check(seen, 1<<1)
}

func (m *CommandConsumerStatsResponse) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.RequestID)
	if m.HasErrorCode {
		dst = appendInt32(dst, 2, int32(m.ErrorCode))
		dst = appendString(dst, 3, m.ErrorMessage)
	} else if m.ErrorMessage != "" {
		dst = appendString(dst, 3, m.ErrorMessage)
	}
	if m.MsgRateOut != 0 {
		dst = appendDouble(dst, 4, m.MsgRateOut)
	}
	if m.MsgThroughputOut != 0 {
		dst = appendDouble(dst, 5, m.MsgThroughputOut)
	}
	if m.MsgRateRedeliver != 0 {
		dst = appendDouble(dst, 6, m.MsgRateRedeliver)
	}
	if m.ConsumerName != "" {
		dst = appendString(dst, 7, m.ConsumerName)
	}
	if m.AvailablePermits != 0 {
		dst = appendUint64(dst, 8, m.AvailablePermits)
	}
	if m.UnackedMessages != 0 {
		dst = appendUint64(dst, 9, m.UnackedMessages)
	}
	if m.BlockedConsumerOnUnackedMsgs {
		dst = appendBool(dst, 10, true)
	}
	if m.Address != "" {
		dst = appendString(dst, 11, m.Address)
	}
	if m.ConnectedSince != "" {
		dst = appendString(dst, 12, m.ConnectedSince)
	}
	if m.Type != "" {
		dst = appendString(dst, 13, m.Type)
	}
	if m.MsgRateExpired != 0 {
		dst = appendDouble(dst, 14, m.MsgRateExpired)
	}
	if m.MsgBacklog != 0 {
		dst = appendUint64(dst, 15, m.MsgBacklog)
	}
	if m.MessageAckRate != 0 {
		dst = appendDouble(dst, 16, m.MessageAckRate)
	}
	return dst
}

// CommandGetLastMessageID asks for the id of a topic's last message.
type CommandGetLastMessageID struct {
	ConsumerID uint64 // 1, required
	RequestID  uint64 // 2, required
}

func (m *CommandGetLastMessageID) decode(b []byte) error {
	*m = CommandGetLastMessageID{}
	d := newDecoder(b, "CommandGetLastMessageId")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.ConsumerID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<2
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func (m *CommandGetLastMessageID) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.ConsumerID)
	return appendUint64(dst, 2, m.RequestID)
}

// CommandGetLastMessageIDResponse answers GET_LAST_MESSAGE_ID. Send the
// mark-delete position always: the Go client uses it without a nil check
// after a seek by time.
type CommandGetLastMessageIDResponse struct {
	LastMessageID                 MessageIDData // 1, required
	RequestID                     uint64        // 2, required
	ConsumerMarkDeletePosition    MessageIDData // 3
	HasConsumerMarkDeletePosition bool          //
}

func (m *CommandGetLastMessageIDResponse) decode(b []byte) error {
	last, mark := m.LastMessageID, m.ConsumerMarkDeletePosition
	last.reset()
	mark.reset()
	*m = CommandGetLastMessageIDResponse{LastMessageID: last, ConsumerMarkDeletePosition: mark}
	d := newDecoder(b, "CommandGetLastMessageIdResponse")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if d.message(m.LastMessageID.decode) {
				seen |= 1 << 1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<2
			}
		case 3:
			m.HasConsumerMarkDeletePosition = d.message(m.ConsumerMarkDeletePosition.decode) ||
				m.HasConsumerMarkDeletePosition
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func (m *CommandGetLastMessageIDResponse) appendTo(dst []byte) []byte {
	dst = appendMessageIDField(dst, 1, &m.LastMessageID)
	dst = appendUint64(dst, 2, m.RequestID)
	if m.HasConsumerMarkDeletePosition {
		dst = appendMessageIDField(dst, 3, &m.ConsumerMarkDeletePosition)
	}
	return dst
}

// CommandGetTopicsOfNamespace lists a namespace's topics (regex consumers
// poll it).
type CommandGetTopicsOfNamespace struct {
	RequestID     uint64     // 1, required
	Namespace     string     // 2, required
	Mode          TopicsMode // 3
	TopicsPattern string     // 4
	TopicsHash    string     // 5
}

func (m *CommandGetTopicsOfNamespace) decode(b []byte) error {
	*m = CommandGetTopicsOfNamespace{}
	d := newDecoder(b, "CommandGetTopicsOfNamespace")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.string(); ok {
				m.Namespace, seen = v, seen|1<<2
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.Mode = TopicsMode(v)
			}
		case 4:
			if v, ok := d.string(); ok {
				m.TopicsPattern = v
			}
		case 5:
			if v, ok := d.string(); ok {
				m.TopicsHash = v
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func (m *CommandGetTopicsOfNamespace) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.RequestID)
	dst = appendString(dst, 2, m.Namespace)
	if m.Mode != 0 {
		dst = appendInt32(dst, 3, int32(m.Mode))
	}
	if m.TopicsPattern != "" {
		dst = appendString(dst, 4, m.TopicsPattern)
	}
	if m.TopicsHash != "" {
		dst = appendString(dst, 5, m.TopicsHash)
	}
	return dst
}

// CommandGetTopicsOfNamespaceResponse answers GET_TOPICS_OF_NAMESPACE.
// Changed (default true) is always written.
type CommandGetTopicsOfNamespaceResponse struct {
	RequestID  uint64   // 1, required
	Topics     []string // 2
	Filtered   bool     // 3
	TopicsHash string   // 4
	Changed    bool     // 5, always written
}

func (m *CommandGetTopicsOfNamespaceResponse) decode(b []byte) error {
	*m = CommandGetTopicsOfNamespaceResponse{Topics: m.Topics[:0], Changed: true}
	d := newDecoder(b, "CommandGetTopicsOfNamespaceResponse")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.string(); ok {
				m.Topics = append(m.Topics, v)
			}
		case 3:
			if v, ok := d.uint64(); ok {
				m.Filtered = v != 0
			}
		case 4:
			if v, ok := d.string(); ok {
				m.TopicsHash = v
			}
		case 5:
			if v, ok := d.uint64(); ok {
				m.Changed = v != 0
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1)
}

func (m *CommandGetTopicsOfNamespaceResponse) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.RequestID)
	for _, t := range m.Topics {
		dst = appendString(dst, 2, t)
	}
	if m.Filtered {
		dst = appendBool(dst, 3, true)
	}
	if m.TopicsHash != "" {
		dst = appendString(dst, 4, m.TopicsHash)
	}
	return appendBool(dst, 5, m.Changed)
}

// CommandWatchTopicList starts a topic-list watcher. The Go client never
// sends it; a broker without watchers answers ERROR.
type CommandWatchTopicList struct {
	RequestID     uint64 // 1, required
	WatcherID     uint64 // 2, required
	Namespace     string // 3, required
	TopicsPattern string // 4, required
	TopicsHash    string // 5
}

func (m *CommandWatchTopicList) decode(b []byte) error {
	*m = CommandWatchTopicList{}
	d := newDecoder(b, "CommandWatchTopicList")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.WatcherID, seen = v, seen|1<<2
			}
		case 3:
			if v, ok := d.string(); ok {
				m.Namespace, seen = v, seen|1<<3
			}
		case 4:
			if v, ok := d.string(); ok {
				m.TopicsPattern, seen = v, seen|1<<4
			}
		case 5:
			if v, ok := d.string(); ok {
				m.TopicsHash = v
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2|1<<3|1<<4)
}

func (m *CommandWatchTopicList) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.RequestID)
	dst = appendUint64(dst, 2, m.WatcherID)
	dst = appendString(dst, 3, m.Namespace)
	dst = appendString(dst, 4, m.TopicsPattern)
	if m.TopicsHash != "" {
		dst = appendString(dst, 5, m.TopicsHash)
	}
	return dst
}

// CommandWatchTopicListSuccess answers WATCH_TOPIC_LIST.
type CommandWatchTopicListSuccess struct {
	RequestID  uint64   // 1, required
	WatcherID  uint64   // 2, required
	Topics     []string // 3
	TopicsHash string   // 4, required
}

func (m *CommandWatchTopicListSuccess) decode(b []byte) error {
	*m = CommandWatchTopicListSuccess{Topics: m.Topics[:0]}
	d := newDecoder(b, "CommandWatchTopicListSuccess")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.WatcherID, seen = v, seen|1<<2
			}
		case 3:
			if v, ok := d.string(); ok {
				m.Topics = append(m.Topics, v)
			}
		case 4:
			if v, ok := d.string(); ok {
				m.TopicsHash, seen = v, seen|1<<4
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2|1<<4)
}

func (m *CommandWatchTopicListSuccess) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.RequestID)
	dst = appendUint64(dst, 2, m.WatcherID)
	for _, t := range m.Topics {
		dst = appendString(dst, 3, t)
	}
	return appendString(dst, 4, m.TopicsHash)
}

// CommandWatchTopicUpdate reports topics added and removed to a watcher.
type CommandWatchTopicUpdate struct {
	WatcherID     uint64   // 1, required
	NewTopics     []string // 2
	DeletedTopics []string // 3
	TopicsHash    string   // 4, required
}

func (m *CommandWatchTopicUpdate) decode(b []byte) error {
	*m = CommandWatchTopicUpdate{NewTopics: m.NewTopics[:0], DeletedTopics: m.DeletedTopics[:0]}
	d := newDecoder(b, "CommandWatchTopicUpdate")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.WatcherID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.string(); ok {
				m.NewTopics = append(m.NewTopics, v)
			}
		case 3:
			if v, ok := d.string(); ok {
				m.DeletedTopics = append(m.DeletedTopics, v)
			}
		case 4:
			if v, ok := d.string(); ok {
				m.TopicsHash, seen = v, seen|1<<4
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<4)
}

func (m *CommandWatchTopicUpdate) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.WatcherID)
	for _, t := range m.NewTopics {
		dst = appendString(dst, 2, t)
	}
	for _, t := range m.DeletedTopics {
		dst = appendString(dst, 3, t)
	}
	return appendString(dst, 4, m.TopicsHash)
}

// CommandWatchTopicListClose stops a watcher.
type CommandWatchTopicListClose struct {
	RequestID uint64 // 1, required
	WatcherID uint64 // 2, required
}

func (m *CommandWatchTopicListClose) decode(b []byte) error {
	*m = CommandWatchTopicListClose{}
	d := newDecoder(b, "CommandWatchTopicListClose")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.WatcherID, seen = v, seen|1<<2
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func (m *CommandWatchTopicListClose) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.RequestID)
	return appendUint64(dst, 2, m.WatcherID)
}

// CommandGetSchema asks for a topic's schema (a given version, or the
// latest when SchemaVersion is nil).
type CommandGetSchema struct {
	RequestID     uint64 // 1, required
	Topic         string // 2, required
	SchemaVersion []byte // 3
}

func (m *CommandGetSchema) decode(b []byte) error {
	*m = CommandGetSchema{}
	d := newDecoder(b, "CommandGetSchema")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.string(); ok {
				m.Topic, seen = v, seen|1<<2
			}
		case 3:
			if v, ok := d.bytes(); ok {
				m.SchemaVersion = v
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2)
}

func (m *CommandGetSchema) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.RequestID)
	dst = appendString(dst, 2, m.Topic)
	if m.SchemaVersion != nil {
		dst = appendBytes(dst, 3, m.SchemaVersion)
	}
	return dst
}

// CommandGetSchemaResponse answers GET_SCHEMA. ErrorMessage is written
// whenever HasErrorCode is set.
type CommandGetSchemaResponse struct {
	RequestID     uint64      // 1, required
	ErrorCode     ServerError // 2
	HasErrorCode  bool        //
	ErrorMessage  string      // 3
	Schema        Schema      // 4
	HasSchema     bool        //
	SchemaVersion []byte      // 5
}

func (m *CommandGetSchemaResponse) decode(b []byte) error {
	schema := m.Schema
	schema.reset()
	*m = CommandGetSchemaResponse{Schema: schema}
	d := newDecoder(b, "CommandGetSchemaResponse")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.ErrorCode, m.HasErrorCode = ServerError(v), true
			}
		case 3:
			if v, ok := d.string(); ok {
				m.ErrorMessage = v
			}
		case 4:
			m.HasSchema = d.message(m.Schema.decode) || m.HasSchema
		case 5:
			if v, ok := d.bytes(); ok {
				m.SchemaVersion = v
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1)
}

func (m *CommandGetSchemaResponse) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.RequestID)
	if m.HasErrorCode {
		dst = appendInt32(dst, 2, int32(m.ErrorCode))
		dst = appendString(dst, 3, m.ErrorMessage)
	} else if m.ErrorMessage != "" {
		dst = appendString(dst, 3, m.ErrorMessage)
	}
	if m.HasSchema {
		dst = appendSchemaField(dst, 4, &m.Schema)
	}
	if m.SchemaVersion != nil {
		dst = appendBytes(dst, 5, m.SchemaVersion)
	}
	return dst
}

// CommandGetOrCreateSchema registers a producer's schema.
type CommandGetOrCreateSchema struct {
	RequestID uint64 // 1, required
	Topic     string // 2, required
	Schema    Schema // 3, required
}

func (m *CommandGetOrCreateSchema) decode(b []byte) error {
	schema := m.Schema
	schema.reset()
	*m = CommandGetOrCreateSchema{Schema: schema}
	d := newDecoder(b, "CommandGetOrCreateSchema")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.string(); ok {
				m.Topic, seen = v, seen|1<<2
			}
		case 3:
			if d.message(m.Schema.decode) {
				seen |= 1 << 3
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1|1<<2|1<<3)
}

func (m *CommandGetOrCreateSchema) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.RequestID)
	dst = appendString(dst, 2, m.Topic)
	return appendSchemaField(dst, 3, &m.Schema)
}

// CommandGetOrCreateSchemaResponse answers GET_OR_CREATE_SCHEMA.
// ErrorMessage is written whenever HasErrorCode is set: the Go client
// dereferences it when error_code is present.
type CommandGetOrCreateSchemaResponse struct {
	RequestID     uint64      // 1, required
	ErrorCode     ServerError // 2
	HasErrorCode  bool        //
	ErrorMessage  string      // 3
	SchemaVersion []byte      // 4
}

func (m *CommandGetOrCreateSchemaResponse) decode(b []byte) error {
	*m = CommandGetOrCreateSchemaResponse{}
	d := newDecoder(b, "CommandGetOrCreateSchemaResponse")
	var seen uint64
	for d.next() {
		switch d.num {
		case 1:
			if v, ok := d.uint64(); ok {
				m.RequestID, seen = v, seen|1<<1
			}
		case 2:
			if v, ok := d.uint64(); ok {
				m.ErrorCode, m.HasErrorCode = ServerError(v), true
			}
		case 3:
			if v, ok := d.string(); ok {
				m.ErrorMessage = v
			}
		case 4:
			if v, ok := d.bytes(); ok {
				m.SchemaVersion = v
			}
		default:
			d.skip()
		}
	}
	return d.check(seen, 1<<1)
}

func (m *CommandGetOrCreateSchemaResponse) appendTo(dst []byte) []byte {
	dst = appendUint64(dst, 1, m.RequestID)
	if m.HasErrorCode {
		dst = appendInt32(dst, 2, int32(m.ErrorCode))
		dst = appendString(dst, 3, m.ErrorMessage)
	} else if m.ErrorMessage != "" {
		dst = appendString(dst, 3, m.ErrorMessage)
	}
	if m.SchemaVersion != nil {
		dst = appendBytes(dst, 4, m.SchemaVersion)
	}
	return dst
}
