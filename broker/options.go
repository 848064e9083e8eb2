package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/wire/pulsar"
	"github.com/magnetar/magnetar/managedledger"
	"github.com/magnetar/magnetar/metastore"
)

// ErrBadOptions wraps Validate's errors.
var ErrBadOptions = errors.New("broker: bad options")

// Auto topic creation types (allowAutoTopicCreationType).
const (
	AutoCreateNonPartitioned = "non-partitioned"
	AutoCreatePartitioned    = "partitioned"
)

// Options configure a Broker. The zero value of every field means its
// default (Pulsar's broker.conf default where there is one); New calls
// EnsureDefaults and then Validate.
type Options struct {
	// ClusterName is the cluster this broker belongs to (clusterName).
	// Default "standalone".
	ClusterName string

	// ServiceListener, if set, is where the broker accepts Pulsar protocol
	// connections; otherwise Start listens on ServiceAddr (default
	// "127.0.0.1:6650": bindAddress and brokerServicePort).
	ServiceListener net.Listener
	ServiceAddr     string
	// AdvertisedAddress is the host name clients are told to connect to
	// (advertisedAddress). Default: the host of the listener's address, or
	// "localhost" when it listens on every interface. Clients pool
	// connections by URL string, so it should be the host they use.
	AdvertisedAddress string
	// WebServiceURL is the advertised HTTP URL of the admin and lookup API
	// (served on the mux given to RegisterHTTP). Default
	// "http://<AdvertisedAddress>:8080".
	WebServiceURL string

	// MetadataStore holds the managed ledgers' and schemas' metadata and
	// the broker's registration; ConfigurationStore holds clusters,
	// tenants, namespaces, their policies and partitioned topics
	// (configurationMetadataStoreUrl). ConfigurationStore defaults to
	// MetadataStore. Required.
	MetadataStore      metastore.Store
	ConfigurationStore metastore.Store
	// ManagedLedgers opens the topics' logs. Required.
	ManagedLedgers managedledger.Factory
	// ManagedLedgerConfig is the default configuration of a topic's
	// managed ledger (quorums, rollover); namespace retention policies
	// override its retention.
	ManagedLedgerConfig managedledger.Config
	// Pool supplies the buffers that hold published payloads. Default
	// bufs.Default.
	Pool *bufs.Pool

	// MaxMessageSize is the largest message (metadata and payload) a
	// producer may send (maxMessageSize), advertised in CONNECTED. Default
	// 5 MiB. Frames may exceed it by pulsar.FramePadding.
	MaxMessageSize int
	// MaxPendingPublishRequestsPerConnection: once a connection has this
	// many SENDs awaiting persistence the broker stops reading from it,
	// until half of them completed (maxPendingPublishRequestsPerConnection,
	// default 1000).
	MaxPendingPublishRequestsPerConnection int
	// MaxPublishBufferBytes bounds the bytes of published messages awaiting
	// persistence across all connections; above it the broker stops
	// reading from producers until half is persisted
	// (maxMessagePublishBufferSizeInMB). Default 512 MiB; negative means
	// no limit.
	MaxPublishBufferBytes int64
	// MaxOutboundBytesPerConnection bounds the control frames (receipts,
	// responses) queued for a connection whose client does not read them;
	// above it the broker stops reading from that connection. Messages to
	// consumers are bounded by their permits instead. Default 8 MiB.
	MaxOutboundBytesPerConnection int
	// KeepAliveInterval: the broker pings a connection that was silent this
	// long, and drops it after twice as long (keepAliveIntervalSeconds,
	// default 30s).
	KeepAliveInterval time.Duration
	// HandshakeTimeout bounds the wait for CONNECT. Default 30s.
	HandshakeTimeout time.Duration

	// DisableAutoTopicCreation turns off the creation of topics on first
	// use (allowAutoTopicCreation=false).
	DisableAutoTopicCreation bool
	// AutoTopicCreationType is AutoCreateNonPartitioned (default) or
	// AutoCreatePartitioned (allowAutoTopicCreationType).
	AutoTopicCreationType string
	// DefaultNumPartitions is the partition count of auto-created
	// partitioned topics (defaultNumPartitions, default 1).
	DefaultNumPartitions int
	// MaxNumPartitionsPerPartitionedTopic: 0 means no limit.
	MaxNumPartitionsPerPartitionedTopic int
	// BrokerDeduplicationEnabled is the default of namespaces whose
	// policies do not say (brokerDeduplicationEnabled).
	BrokerDeduplicationEnabled bool
	// DeduplicationSnapshotInterval is how many entries a topic with
	// deduplication writes between two snapshots of its producers'
	// sequence ids (brokerDeduplicationEntriesInterval, default 1000).
	DeduplicationSnapshotInterval int
	// DefaultRetentionTime and DefaultRetentionSizeBytes are the retention
	// of namespaces without a retention policy
	// (defaultRetentionTimeInMinutes, defaultRetentionSizeInMB); negative
	// means unlimited.
	DefaultRetentionTime      time.Duration
	DefaultRetentionSizeBytes int64
	// MaxProducersPerTopic, MaxConsumersPerTopic and
	// MaxConsumersPerSubscription: 0 means no limit.
	MaxProducersPerTopic        int
	MaxConsumersPerTopic        int
	MaxConsumersPerSubscription int

	// Dispatch: see package dispatcher (dispatcherMaxReadBatchSize,
	// dispatcherMaxReadSizeBytes, dispatcherMaxRoundRobinBatchSize,
	// maxUnackedMessagesPerConsumer; 0 means the dispatcher's default,
	// negative MaxUnackedMessagesPerConsumer means no limit).
	DispatcherMaxReadBatchSize       int
	DispatcherMaxReadSizeBytes       int64
	DispatcherMaxRoundRobinBatchSize int
	MaxUnackedMessagesPerConsumer    int

	// StatsInterval is how often message rates are computed (Pulsar's
	// statsUpdateFrequencyInSecs). Default 10s.
	StatsInterval time.Duration
	// OperationTimeout bounds metadata and storage operations done on
	// behalf of one request. Default 30s.
	OperationTimeout time.Duration

	// Registerer receives the broker's Prometheus metrics; nil means none
	// are registered.
	Registerer prometheus.Registerer
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// EnsureDefaults fills in zero fields.
func (o *Options) EnsureDefaults() {
	if o.ClusterName == "" {
		o.ClusterName = "standalone"
	}
	if o.ServiceAddr == "" {
		o.ServiceAddr = "127.0.0.1:6650"
	}
	if o.ConfigurationStore == nil {
		o.ConfigurationStore = o.MetadataStore
	}
	if o.Pool == nil {
		o.Pool = bufs.Default
	}
	if o.MaxMessageSize == 0 {
		o.MaxMessageSize = pulsar.DefaultMaxMessageSize
	}
	if o.MaxPendingPublishRequestsPerConnection == 0 {
		o.MaxPendingPublishRequestsPerConnection = 1000
	}
	if o.MaxPublishBufferBytes == 0 {
		o.MaxPublishBufferBytes = 512 << 20
	}
	if o.MaxOutboundBytesPerConnection == 0 {
		o.MaxOutboundBytesPerConnection = 8 << 20
	}
	if o.KeepAliveInterval == 0 {
		o.KeepAliveInterval = 30 * time.Second
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = 30 * time.Second
	}
	if o.AutoTopicCreationType == "" {
		o.AutoTopicCreationType = AutoCreateNonPartitioned
	}
	if o.DefaultNumPartitions == 0 {
		o.DefaultNumPartitions = 1
	}
	if o.DeduplicationSnapshotInterval == 0 {
		o.DeduplicationSnapshotInterval = 1000
	}
	if o.StatsInterval == 0 {
		o.StatsInterval = 10 * time.Second
	}
	if o.OperationTimeout == 0 {
		o.OperationTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Validate checks the options after EnsureDefaults.
func (o *Options) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadOptions}, args...)...)
	}
	switch {
	case o.MetadataStore == nil:
		return bad("MetadataStore is required")
	case o.ManagedLedgers == nil:
		return bad("ManagedLedgers is required")
	case o.MaxMessageSize < 1024 || o.MaxMessageSize > 1<<30:
		return bad("MaxMessageSize %d outside [1 KiB, 1 GiB]", o.MaxMessageSize)
	case o.MaxPendingPublishRequestsPerConnection < 1:
		return bad("MaxPendingPublishRequestsPerConnection %d", o.MaxPendingPublishRequestsPerConnection)
	case o.MaxOutboundBytesPerConnection < 64<<10:
		return bad("MaxOutboundBytesPerConnection %d below 64 KiB", o.MaxOutboundBytesPerConnection)
	case o.KeepAliveInterval < 0 || o.HandshakeTimeout < 0:
		return bad("negative keep-alive or handshake timeout")
	case o.AutoTopicCreationType != AutoCreateNonPartitioned && o.AutoTopicCreationType != AutoCreatePartitioned:
		return bad("AutoTopicCreationType %q (want %q or %q)", o.AutoTopicCreationType, AutoCreateNonPartitioned, AutoCreatePartitioned)
	case o.DefaultNumPartitions < 1:
		return bad("DefaultNumPartitions %d", o.DefaultNumPartitions)
	case o.MaxNumPartitionsPerPartitionedTopic < 0:
		return bad("MaxNumPartitionsPerPartitionedTopic %d", o.MaxNumPartitionsPerPartitionedTopic)
	case o.DeduplicationSnapshotInterval < 1:
		return bad("DeduplicationSnapshotInterval %d", o.DeduplicationSnapshotInterval)
	case o.StatsInterval <= 0 || o.OperationTimeout <= 0:
		return bad("StatsInterval and OperationTimeout must be positive")
	case o.MaxProducersPerTopic < 0 || o.MaxConsumersPerTopic < 0 || o.MaxConsumersPerSubscription < 0:
		return bad("negative producer or consumer limit")
	}
	if err := checkNamePart(o.ClusterName); err != nil {
		return bad("ClusterName %q: %v", o.ClusterName, err)
	}
	return nil
}

// maxFrameSize is the largest frame the broker accepts or sends.
func (o *Options) maxFrameSize() int { return o.MaxMessageSize + pulsar.FramePadding }
