package client

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/magnetar/magnetar/internal/wire/pulsar"
)

// Options configure a Client. The zero value is ready to use.
type Options struct {
	// ConnectionsPerBroker is how many TCP connections the client opens
	// to each broker address; producers and consumers are spread over them
	// round-robin. Default 1 (as the Go client).
	ConnectionsPerBroker int
	// MaxPendingMessages is the default for ProducerOptions.MaxPendingMessages.
	// Default 1000 (as the Go client).
	MaxPendingMessages int
	// OperationTimeout bounds every request (lookup, create producer,
	// subscribe, close). Default 30 s.
	OperationTimeout time.Duration
	// ConnectTimeout bounds the TCP dial and the CONNECT handshake.
	// Default 10 s.
	ConnectTimeout time.Duration
	// KeepAliveInterval is how often a PING is sent on each connection; a
	// connection that has received nothing for two intervals is closed.
	// Default 30 s.
	KeepAliveInterval time.Duration
	// ClientVersion is announced in CONNECT. Default "magnetar-client".
	ClientVersion string
	// Logger receives connection events. Nil means slog.Default().
	Logger *slog.Logger
}

// EnsureDefaults fills the zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.ConnectionsPerBroker == 0 {
		o.ConnectionsPerBroker = 1
	}
	if o.MaxPendingMessages == 0 {
		o.MaxPendingMessages = 1000
	}
	if o.OperationTimeout == 0 {
		o.OperationTimeout = 30 * time.Second
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.KeepAliveInterval == 0 {
		o.KeepAliveInterval = 30 * time.Second
	}
	if o.ClientVersion == "" {
		o.ClientVersion = "magnetar-client"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate reports an error for options that cannot work.
func (o *Options) Validate() error {
	switch {
	case o.ConnectionsPerBroker < 1:
		return fmt.Errorf("%w: ConnectionsPerBroker %d < 1", ErrInvalidOptions, o.ConnectionsPerBroker)
	case o.MaxPendingMessages < 1:
		return fmt.Errorf("%w: MaxPendingMessages %d < 1", ErrInvalidOptions, o.MaxPendingMessages)
	case o.OperationTimeout <= 0, o.ConnectTimeout <= 0, o.KeepAliveInterval <= 0:
		return fmt.Errorf("%w: timeouts and intervals must be positive", ErrInvalidOptions)
	}
	return nil
}

// Compression is a batch compression codec.
type Compression int

// Codecs (the numbering of Pulsar's CompressionType).
const (
	CompressionNone   Compression = Compression(pulsar.CompressionNone)
	CompressionLZ4    Compression = Compression(pulsar.CompressionLZ4)
	CompressionZLib   Compression = Compression(pulsar.CompressionZLib)
	CompressionZstd   Compression = Compression(pulsar.CompressionZstd)
	CompressionSnappy Compression = Compression(pulsar.CompressionSnappy)
)

var compressionNames = [...]string{"none", "lz4", "zlib", "zstd", "snappy"}

func (c Compression) String() string {
	if c >= 0 && int(c) < len(compressionNames) {
		return compressionNames[c]
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// ParseCompression parses a codec name (none, lz4, zlib, zstd, snappy; any
// case; "" means none).
func ParseCompression(s string) (Compression, error) {
	if s == "" {
		return CompressionNone, nil
	}
	for i, n := range compressionNames {
		if strings.EqualFold(s, n) {
			return Compression(i), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown compression %q", ErrInvalidOptions, s)
}

// ProducerOptions configure a producer. Only Topic is required.
type ProducerOptions struct {
	// Topic: a full name (persistent://tenant/ns/name) or a short one
	// (name, or tenant/ns/name).
	Topic string
	// Name is the producer name; empty lets the broker choose one.
	Name string
	// DisableBatching sends every message in its own SEND.
	DisableBatching bool
	// BatchingMaxMessages flushes a batch at this many messages.
	// Default 1000.
	BatchingMaxMessages int
	// BatchingMaxBytes flushes a batch at this many payload bytes
	// (uncompressed). Default 128 KiB.
	BatchingMaxBytes int
	// BatchingMaxDelay flushes a batch this long after its first message.
	// Default 10 ms (as the Go client; OMB's Pulsar driver uses 1 ms).
	BatchingMaxDelay time.Duration
	// Compression of each batch (or single message). Default none.
	Compression Compression
	// MaxPendingMessages bounds the messages of a partition producer that
	// were accepted by SendAsync but not yet acknowledged (the open batch
	// included); SendAsync blocks while it is reached. Default
	// Options.MaxPendingMessages.
	MaxPendingMessages int
	// SendTimeout fails a message that got no receipt this long after it
	// was sent. Zero means 30 s; negative disables the timeout.
	SendTimeout time.Duration
}

// EnsureDefaults fills the zero fields; client supplies the client-wide
// defaults (nil: the package defaults).
func (o *ProducerOptions) EnsureDefaults(client *Options) {
	if o.BatchingMaxMessages == 0 {
		o.BatchingMaxMessages = 1000
	}
	if o.BatchingMaxBytes == 0 {
		o.BatchingMaxBytes = 128 << 10
	}
	if o.BatchingMaxDelay == 0 {
		o.BatchingMaxDelay = 10 * time.Millisecond
	}
	if o.MaxPendingMessages == 0 {
		if client != nil && client.MaxPendingMessages > 0 {
			o.MaxPendingMessages = client.MaxPendingMessages
		} else {
			o.MaxPendingMessages = 1000
		}
	}
	if o.SendTimeout == 0 {
		o.SendTimeout = 30 * time.Second
	}
}

// Validate reports an error for options that cannot work.
func (o *ProducerOptions) Validate() error {
	switch {
	case o.Topic == "":
		return fmt.Errorf("%w: producer needs a Topic", ErrInvalidOptions)
	case o.BatchingMaxMessages < 1 || o.BatchingMaxBytes < 1 || o.BatchingMaxDelay <= 0:
		return fmt.Errorf("%w: batching limits must be positive", ErrInvalidOptions)
	case o.MaxPendingMessages < 1:
		return fmt.Errorf("%w: MaxPendingMessages %d < 1", ErrInvalidOptions, o.MaxPendingMessages)
	case o.Compression < CompressionNone || o.Compression > CompressionSnappy:
		return fmt.Errorf("%w: unknown compression %d", ErrInvalidOptions, int(o.Compression))
	}
	return nil
}

// SubscriptionType is how a subscription shares messages among its
// consumers.
type SubscriptionType int

// Subscription types (Pulsar's numbering).
const (
	Exclusive SubscriptionType = SubscriptionType(pulsar.SubExclusive)
	Shared    SubscriptionType = SubscriptionType(pulsar.SubShared)
	Failover  SubscriptionType = SubscriptionType(pulsar.SubFailover)
	KeyShared SubscriptionType = SubscriptionType(pulsar.SubKeyShared)
)

func (t SubscriptionType) String() string { return pulsar.SubType(t).String() }

// ParseSubscriptionType parses Exclusive, Shared, Failover or Key_Shared
// (any case, with or without the underscore).
func ParseSubscriptionType(s string) (SubscriptionType, error) {
	switch strings.ToLower(strings.ReplaceAll(s, "_", "")) {
	case "exclusive":
		return Exclusive, nil
	case "shared":
		return Shared, nil
	case "failover":
		return Failover, nil
	case "keyshared":
		return KeyShared, nil
	}
	return 0, fmt.Errorf("%w: unknown subscription type %q", ErrInvalidOptions, s)
}

// InitialPosition is where a new subscription starts.
type InitialPosition int

// Initial positions.
const (
	Latest   InitialPosition = InitialPosition(pulsar.PositionLatest)
	Earliest InitialPosition = InitialPosition(pulsar.PositionEarliest)
)

// MessageListener receives messages on the connection's read loop. The
// *Message and everything it returns are valid only until the listener
// returns (copy what you keep); the listener may call Ack on it. A slow
// listener stalls every producer and consumer on the same connection.
type MessageListener func(c *Consumer, m *Message)

// ConsumerOptions configure a consumer. Topic and Subscription are required.
type ConsumerOptions struct {
	Topic        string
	Subscription string
	// Type of the subscription. Default Exclusive.
	Type SubscriptionType
	// InitialPosition of a subscription created by this consumer. Default
	// Latest.
	InitialPosition InitialPosition
	// NonDurable makes the subscription vanish with its last consumer.
	NonDurable bool
	// Name of the consumer; empty means a generated one.
	Name string
	// ReceiverQueueSize is the number of permits per partition: the most
	// messages the broker may push ahead of consumption. Default 1000.
	ReceiverQueueSize int
	// Listener, when set, receives every message on the read loop (see
	// MessageListener); Receive must not be used then.
	Listener MessageListener
	// AckGroupingTime and AckGroupingMaxSize group acknowledgements: they
	// are sent every AckGroupingTime, or at once when AckGroupingMaxSize
	// ids are waiting. Defaults 100 ms and 1000 (as the Go client).
	AckGroupingTime    time.Duration
	AckGroupingMaxSize int
}

// EnsureDefaults fills the zero fields.
func (o *ConsumerOptions) EnsureDefaults() {
	if o.ReceiverQueueSize == 0 {
		o.ReceiverQueueSize = 1000
	}
	if o.AckGroupingTime == 0 {
		o.AckGroupingTime = 100 * time.Millisecond
	}
	if o.AckGroupingMaxSize == 0 {
		o.AckGroupingMaxSize = 1000
	}
}

// Validate reports an error for options that cannot work.
func (o *ConsumerOptions) Validate() error {
	switch {
	case o.Topic == "" || o.Subscription == "":
		return fmt.Errorf("%w: consumer needs a Topic and a Subscription", ErrInvalidOptions)
	case o.Type < Exclusive || o.Type > KeyShared:
		return fmt.Errorf("%w: unknown subscription type %d", ErrInvalidOptions, int(o.Type))
	case o.InitialPosition != Latest && o.InitialPosition != Earliest:
		return fmt.Errorf("%w: unknown initial position %d", ErrInvalidOptions, int(o.InitialPosition))
	case o.ReceiverQueueSize < 1:
		return fmt.Errorf("%w: ReceiverQueueSize %d < 1", ErrInvalidOptions, o.ReceiverQueueSize)
	case o.AckGroupingTime < 0 || o.AckGroupingMaxSize < 1:
		return fmt.Errorf("%w: ack grouping limits must be positive", ErrInvalidOptions)
	}
	return nil
}
