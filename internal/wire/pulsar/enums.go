package pulsar

import "strconv"

// ProtocolVersion is the newest protocol version this codec knows (v20:
// topic migration). The Go client announces 20.
const ProtocolVersion = 20

// Type is BaseCommand.type. Each command's sub-message sits in the
// BaseCommand field whose number equals its Type.
type Type int32

// Command types (PulsarApi.proto BaseCommand.Type).
const (
	TypeConnect                         Type = 2
	TypeConnected                       Type = 3
	TypeSubscribe                       Type = 4
	TypeProducer                        Type = 5
	TypeSend                            Type = 6
	TypeSendReceipt                     Type = 7
	TypeSendError                       Type = 8
	TypeMessage                         Type = 9
	TypeAck                             Type = 10
	TypeFlow                            Type = 11
	TypeUnsubscribe                     Type = 12
	TypeSuccess                         Type = 13
	TypeError                           Type = 14
	TypeCloseProducer                   Type = 15
	TypeCloseConsumer                   Type = 16
	TypeProducerSuccess                 Type = 17
	TypePing                            Type = 18
	TypePong                            Type = 19
	TypeRedeliverUnacknowledgedMessages Type = 20
	TypePartitionedMetadata             Type = 21
	TypePartitionedMetadataResponse     Type = 22
	TypeLookup                          Type = 23
	TypeLookupResponse                  Type = 24
	TypeConsumerStats                   Type = 25
	TypeConsumerStatsResponse           Type = 26
	TypeReachedEndOfTopic               Type = 27
	TypeSeek                            Type = 28
	TypeGetLastMessageID                Type = 29
	TypeGetLastMessageIDResponse        Type = 30
	TypeActiveConsumerChange            Type = 31
	TypeGetTopicsOfNamespace            Type = 32
	TypeGetTopicsOfNamespaceResponse    Type = 33
	TypeGetSchema                       Type = 34
	TypeGetSchemaResponse               Type = 35
	TypeAuthChallenge                   Type = 36
	TypeAuthResponse                    Type = 37
	TypeAckResponse                     Type = 38
	TypeGetOrCreateSchema               Type = 39
	TypeGetOrCreateSchemaResponse       Type = 40
	TypeNewTxn                          Type = 50
	TypeNewTxnResponse                  Type = 51
	TypeAddPartitionToTxn               Type = 52
	TypeAddPartitionToTxnResponse       Type = 53
	TypeAddSubscriptionToTxn            Type = 54
	TypeAddSubscriptionToTxnResponse    Type = 55
	TypeEndTxn                          Type = 56
	TypeEndTxnResponse                  Type = 57
	TypeEndTxnOnPartition               Type = 58
	TypeEndTxnOnPartitionResponse       Type = 59
	TypeEndTxnOnSubscription            Type = 60
	TypeEndTxnOnSubscriptionResponse    Type = 61
	TypeTcClientConnectRequest          Type = 62
	TypeTcClientConnectResponse         Type = 63
	TypeWatchTopicList                  Type = 64
	TypeWatchTopicListSuccess           Type = 65
	TypeWatchTopicUpdate                Type = 66
	TypeWatchTopicListClose             Type = 67
	TypeTopicMigrated                   Type = 68
)

var typeNames = [...]string{
	TypeConnect:                         "CONNECT",
	TypeConnected:                       "CONNECTED",
	TypeSubscribe:                       "SUBSCRIBE",
	TypeProducer:                        "PRODUCER",
	TypeSend:                            "SEND",
	TypeSendReceipt:                     "SEND_RECEIPT",
	TypeSendError:                       "SEND_ERROR",
	TypeMessage:                         "MESSAGE",
	TypeAck:                             "ACK",
	TypeFlow:                            "FLOW",
	TypeUnsubscribe:                     "UNSUBSCRIBE",
	TypeSuccess:                         "SUCCESS",
	TypeError:                           "ERROR",
	TypeCloseProducer:                   "CLOSE_PRODUCER",
	TypeCloseConsumer:                   "CLOSE_CONSUMER",
	TypeProducerSuccess:                 "PRODUCER_SUCCESS",
	TypePing:                            "PING",
	TypePong:                            "PONG",
	TypeRedeliverUnacknowledgedMessages: "REDELIVER_UNACKNOWLEDGED_MESSAGES",
	TypePartitionedMetadata:             "PARTITIONED_METADATA",
	TypePartitionedMetadataResponse:     "PARTITIONED_METADATA_RESPONSE",
	TypeLookup:                          "LOOKUP",
	TypeLookupResponse:                  "LOOKUP_RESPONSE",
	TypeConsumerStats:                   "CONSUMER_STATS",
	TypeConsumerStatsResponse:           "CONSUMER_STATS_RESPONSE",
	TypeReachedEndOfTopic:               "REACHED_END_OF_TOPIC",
	TypeSeek:                            "SEEK",
	TypeGetLastMessageID:                "GET_LAST_MESSAGE_ID",
	TypeGetLastMessageIDResponse:        "GET_LAST_MESSAGE_ID_RESPONSE",
	TypeActiveConsumerChange:            "ACTIVE_CONSUMER_CHANGE",
	TypeGetTopicsOfNamespace:            "GET_TOPICS_OF_NAMESPACE",
	TypeGetTopicsOfNamespaceResponse:    "GET_TOPICS_OF_NAMESPACE_RESPONSE",
	TypeGetSchema:                       "GET_SCHEMA",
	TypeGetSchemaResponse:               "GET_SCHEMA_RESPONSE",
	TypeAuthChallenge:                   "AUTH_CHALLENGE",
	TypeAuthResponse:                    "AUTH_RESPONSE",
	TypeAckResponse:                     "ACK_RESPONSE",
	TypeGetOrCreateSchema:               "GET_OR_CREATE_SCHEMA",
	TypeGetOrCreateSchemaResponse:       "GET_OR_CREATE_SCHEMA_RESPONSE",
	TypeNewTxn:                          "NEW_TXN",
	TypeNewTxnResponse:                  "NEW_TXN_RESPONSE",
	TypeAddPartitionToTxn:               "ADD_PARTITION_TO_TXN",
	TypeAddPartitionToTxnResponse:       "ADD_PARTITION_TO_TXN_RESPONSE",
	TypeAddSubscriptionToTxn:            "ADD_SUBSCRIPTION_TO_TXN",
	TypeAddSubscriptionToTxnResponse:    "ADD_SUBSCRIPTION_TO_TXN_RESPONSE",
	TypeEndTxn:                          "END_TXN",
	TypeEndTxnResponse:                  "END_TXN_RESPONSE",
	TypeEndTxnOnPartition:               "END_TXN_ON_PARTITION",
	TypeEndTxnOnPartitionResponse:       "END_TXN_ON_PARTITION_RESPONSE",
	TypeEndTxnOnSubscription:            "END_TXN_ON_SUBSCRIPTION",
	TypeEndTxnOnSubscriptionResponse:    "END_TXN_ON_SUBSCRIPTION_RESPONSE",
	TypeTcClientConnectRequest:          "TC_CLIENT_CONNECT_REQUEST",
	TypeTcClientConnectResponse:         "TC_CLIENT_CONNECT_RESPONSE",
	TypeWatchTopicList:                  "WATCH_TOPIC_LIST",
	TypeWatchTopicListSuccess:           "WATCH_TOPIC_LIST_SUCCESS",
	TypeWatchTopicUpdate:                "WATCH_TOPIC_UPDATE",
	TypeWatchTopicListClose:             "WATCH_TOPIC_LIST_CLOSE",
	TypeTopicMigrated:                   "TOPIC_MIGRATED",
}

// Known reports whether t is a command type this codec decodes.
func (t Type) Known() bool {
	return t >= 0 && int(t) < len(typeNames) && typeNames[t] != ""
}

func (t Type) String() string {
	if t.Known() {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// ServerError is the error code carried by ERROR, SEND_ERROR and the
// responses that report failures. The Go client matches its names as
// substrings of error texts, so String returns the proto names exactly.
type ServerError int32

// Server error codes (PulsarApi.proto ServerError).
const (
	UnknownError                          ServerError = 0
	MetadataError                         ServerError = 1
	PersistenceError                      ServerError = 2
	AuthenticationError                   ServerError = 3
	AuthorizationError                    ServerError = 4
	ConsumerBusy                          ServerError = 5
	ServiceNotReady                       ServerError = 6
	ProducerBlockedQuotaExceededError     ServerError = 7
	ProducerBlockedQuotaExceededException ServerError = 8
	ChecksumError                         ServerError = 9
	UnsupportedVersionError               ServerError = 10
	TopicNotFound                         ServerError = 11
	SubscriptionNotFound                  ServerError = 12
	ConsumerNotFound                      ServerError = 13
	TooManyRequests                       ServerError = 14
	TopicTerminatedError                  ServerError = 15
	ProducerBusy                          ServerError = 16
	InvalidTopicName                      ServerError = 17
	IncompatibleSchema                    ServerError = 18
	ConsumerAssignError                   ServerError = 19
	TransactionCoordinatorNotFound        ServerError = 20
	InvalidTxnStatus                      ServerError = 21
	NotAllowedError                       ServerError = 22
	TransactionConflict                   ServerError = 23
	TransactionNotFound                   ServerError = 24
	ProducerFenced                        ServerError = 25
)

var serverErrorNames = [...]string{
	"UnknownError", "MetadataError", "PersistenceError", "AuthenticationError",
	"AuthorizationError", "ConsumerBusy", "ServiceNotReady",
	"ProducerBlockedQuotaExceededError", "ProducerBlockedQuotaExceededException",
	"ChecksumError", "UnsupportedVersionError", "TopicNotFound",
	"SubscriptionNotFound", "ConsumerNotFound", "TooManyRequests",
	"TopicTerminatedError", "ProducerBusy", "InvalidTopicName",
	"IncompatibleSchema", "ConsumerAssignError", "TransactionCoordinatorNotFound",
	"InvalidTxnStatus", "NotAllowedError", "TransactionConflict",
	"TransactionNotFound", "ProducerFenced",
}

func (e ServerError) String() string {
	if e >= 0 && int(e) < len(serverErrorNames) {
		return serverErrorNames[e]
	}
	return "ServerError(" + strconv.Itoa(int(e)) + ")"
}

// AuthMethod is the deprecated CommandConnect.auth_method.
type AuthMethod int32

// Auth methods.
const (
	AuthMethodNone   AuthMethod = 0
	AuthMethodYcaV1  AuthMethod = 1
	AuthMethodAthens AuthMethod = 2
)

// SubType is a subscription type.
type SubType int32

// Subscription types.
const (
	SubExclusive SubType = 0
	SubShared    SubType = 1
	SubFailover  SubType = 2
	SubKeyShared SubType = 3
)

func (s SubType) String() string {
	switch s {
	case SubExclusive:
		return "Exclusive"
	case SubShared:
		return "Shared"
	case SubFailover:
		return "Failover"
	case SubKeyShared:
		return "Key_Shared"
	}
	return "SubType(" + strconv.Itoa(int(s)) + ")"
}

// InitialPosition is where a new subscription starts.
type InitialPosition int32

// Initial positions.
const (
	PositionLatest   InitialPosition = 0
	PositionEarliest InitialPosition = 1
)

// KeySharedMode is KeySharedMeta.keySharedMode.
type KeySharedMode int32

// Key_Shared modes.
const (
	KeySharedAutoSplit KeySharedMode = 0
	KeySharedSticky    KeySharedMode = 1
)

// ProducerAccessMode is CommandProducer.producer_access_mode.
type ProducerAccessMode int32

// Producer access modes.
const (
	AccessShared               ProducerAccessMode = 0
	AccessExclusive            ProducerAccessMode = 1
	AccessWaitForExclusive     ProducerAccessMode = 2
	AccessExclusiveWithFencing ProducerAccessMode = 3
)

// CompressionType is MessageMetadata.compression.
type CompressionType int32

// Compression codecs.
const (
	CompressionNone   CompressionType = 0
	CompressionLZ4    CompressionType = 1
	CompressionZLib   CompressionType = 2
	CompressionZstd   CompressionType = 3
	CompressionSnappy CompressionType = 4
)

// AckType is CommandAck.ack_type.
type AckType int32

// Ack types.
const (
	AckIndividual AckType = 0
	AckCumulative AckType = 1
)

// ValidationError is CommandAck.validation_error: why a client discarded a
// delivery.
type ValidationError int32

// Validation errors.
const (
	UncompressedSizeCorruption ValidationError = 0
	DecompressionError         ValidationError = 1
	ChecksumMismatch           ValidationError = 2
	BatchDeSerializeError      ValidationError = 3
	DecryptionError            ValidationError = 4
)

// LookupType is CommandLookupTopicResponse.response.
type LookupType int32

// Lookup results.
const (
	LookupRedirect LookupType = 0
	LookupConnect  LookupType = 1
	LookupFailed   LookupType = 2
)

// PartitionedMetadataResult is CommandPartitionedTopicMetadataResponse.response.
type PartitionedMetadataResult int32

// Partitioned-metadata results.
const (
	PartitionedMetadataSuccess PartitionedMetadataResult = 0
	PartitionedMetadataFailed  PartitionedMetadataResult = 1
)

// TopicsMode is CommandGetTopicsOfNamespace.mode.
type TopicsMode int32

// Topic list modes.
const (
	TopicsPersistent    TopicsMode = 0
	TopicsNonPersistent TopicsMode = 1
	TopicsAll           TopicsMode = 2
)

// SchemaType is Schema.type. The AUTO types are negative and are encoded as
// ten-byte varints, as protobuf does.
type SchemaType int32

// Schema types.
const (
	SchemaNone           SchemaType = 0
	SchemaString         SchemaType = 1
	SchemaJSON           SchemaType = 2
	SchemaProtobuf       SchemaType = 3
	SchemaAvro           SchemaType = 4
	SchemaBool           SchemaType = 5
	SchemaInt8           SchemaType = 6
	SchemaInt16          SchemaType = 7
	SchemaInt32          SchemaType = 8
	SchemaInt64          SchemaType = 9
	SchemaFloat          SchemaType = 10
	SchemaDouble         SchemaType = 11
	SchemaDate           SchemaType = 12
	SchemaTime           SchemaType = 13
	SchemaTimestamp      SchemaType = 14
	SchemaKeyValue       SchemaType = 15
	SchemaInstant        SchemaType = 16
	SchemaLocalDate      SchemaType = 17
	SchemaLocalTime      SchemaType = 18
	SchemaLocalDateTime  SchemaType = 19
	SchemaProtobufNative SchemaType = 20
)

// ResourceType is CommandTopicMigrated.resource_type.
type ResourceType int32

// Migrated resource types.
const (
	ResourceProducer ResourceType = 0
	ResourceConsumer ResourceType = 1
)

// TxnAction is the action of END_TXN and its per-partition and
// per-subscription forms.
type TxnAction int32

// Transaction actions.
const (
	TxnCommit TxnAction = 0
	TxnAbort  TxnAction = 1
)
