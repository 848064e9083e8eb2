// Package config owns Magnetar's configuration: the schema of every key, the
// parser of Pulsar/BookKeeper-style key=value files, the merge of defaults,
// file, environment and flags, and the typed Config that cmd/ turns into
// package Options.
//
// Keys are spelled as Apache Pulsar (broker.conf, standalone.conf) and Apache
// BookKeeper (bookkeeper.conf) spell them, with their defaults wherever the
// concept is the same, so their operators feel at home. Keys Magnetar adds
// (journalDirectIO, journalQueueMaxBytes, logLevel, logFormat,
// metricsEnabled, pprofEnabled) say so in their doc line.
//
// File format, one setting per logical line:
//
//	# a comment line (also "!")        blank lines are ignored
//	key=value                          whitespace around key and value is trimmed
//	key=                               an empty value means the key's default
//	key=first,\                        a trailing backslash joins the next line,
//	    second                         whose leading whitespace is dropped
//
// There are no inline comments: "a=b # c" sets a to "b # c", as in Java
// properties. A key given twice in one file is an error.
//
// Precedence, lowest first: built-in defaults for the role, the conf file,
// MAGNETAR_<key> environment variables (the key as spelled, or in upper case),
// command-line flags in the order given. Every value remembers where it came
// from, and every error names that place: "conf/broker.conf:42: ...".
//
// Promises: an unknown key, a key of another role, a malformed value or an
// inconsistent combination fails Load with an *Error naming the key and its
// source; nothing is silently ignored except environment variables of other
// roles. The package reads no files, environment or flags itself: cmd/ passes
// them in (Input), so the package does no I/O.
package config

import (
	"strconv"
	"strings"
	"time"
)

// Role says which process a configuration is for. Each role has its own conf
// file and its own set of keys.
type Role uint8

const (
	// Standalone: metadata store, bookie and broker in one process.
	Standalone Role = iota
	// Broker: a broker of a cluster (Pulsar's broker.conf).
	Broker
	// Bookie: a storage node (BookKeeper's bookkeeper.conf).
	Bookie
	numRoles
)

// Roles lists every role.
func Roles() []Role { return []Role{Standalone, Broker, Bookie} }

func (r Role) String() string {
	switch r {
	case Standalone:
		return "standalone"
	case Broker:
		return "broker"
	case Bookie:
		return "bookie"
	}
	return "role(?)"
}

// ConfFile is the name of the role's file in conf/.
func (r Role) ConfFile() string {
	switch r {
	case Standalone:
		return "standalone.conf"
	case Broker:
		return "broker.conf"
	case Bookie:
		return "bookkeeper.conf"
	}
	return ""
}

// Config is a complete, typed configuration of one process. Load and Defaults
// produce it; every field holds a value (defaults are applied), and fields of
// keys that do not belong to the role keep the key's default. Each field's
// comment names its key; the key's doc line is in the schema (Schema, or the
// shipped conf files).
type Config struct {
	Role Role

	Metadata      MetadataConfig
	Network       NetworkConfig
	Broker        BrokerConfig
	ManagedLedger ManagedLedgerConfig
	Bookie        BookieConfig
	Telemetry     TelemetryConfig

	sources  map[string]Source // key name -> where its value came from
	warnings []string
}

// MetadataConfig: the cluster's name and its metadata stores.
type MetadataConfig struct {
	ClusterName                   string        // clusterName
	MetadataStoreURL              string        // metadataStoreUrl
	ConfigurationMetadataStoreURL string        // configurationMetadataStoreUrl; see ConfigurationStoreURL
	MetadataStoreSessionTimeout   time.Duration // metadataStoreSessionTimeoutMillis
	MetadataStoreOperationTimeout time.Duration // metadataStoreOperationTimeoutSeconds
	MetadataServiceURI            string        // metadataServiceUri (bookie)
}

// ConfigurationStoreURL is where tenants, namespaces and policies live:
// configurationMetadataStoreUrl, or metadataStoreUrl when that is empty.
func (m MetadataConfig) ConfigurationStoreURL() string {
	if m.ConfigurationMetadataStoreURL != "" {
		return m.ConfigurationMetadataStoreURL
	}
	return m.MetadataStoreURL
}

// NetworkConfig: listeners and the addresses advertised to others.
type NetworkConfig struct {
	BindAddress             string // bindAddress
	AdvertisedAddress       string // advertisedAddress
	BrokerServicePort       int    // brokerServicePort
	WebServicePort          int    // webServicePort
	BookiePort              int    // bookiePort
	PrometheusStatsHTTPPort int    // prometheusStatsHttpPort (bookie)
	NettyMaxFrameSizeBytes  int    // nettyMaxFrameSizeBytes
}

// BrokerConfig: topics, limits and dispatch.
type BrokerConfig struct {
	AllowAutoTopicCreation                  bool          // allowAutoTopicCreation
	AllowAutoTopicCreationType              string        // allowAutoTopicCreationType: "non-partitioned" or "partitioned"
	DefaultNumPartitions                    int           // defaultNumPartitions
	MaxNumPartitionsPerPartitionedTopic     int           // maxNumPartitionsPerPartitionedTopic
	MaxTopicsPerNamespace                   int           // maxTopicsPerNamespace
	BrokerDeleteInactiveTopicsEnabled       bool          // brokerDeleteInactiveTopicsEnabled
	BrokerDeleteInactiveTopicsFrequency     time.Duration // brokerDeleteInactiveTopicsFrequencySeconds
	BrokerDeduplicationEnabled              bool          // brokerDeduplicationEnabled
	BrokerDeduplicationMaxNumberOfProducers int           // brokerDeduplicationMaxNumberOfProducers
	DefaultRetentionTimeInMinutes           int           // defaultRetentionTimeInMinutes: -1 infinite, 0 none
	DefaultRetentionSizeInMB                int64         // defaultRetentionSizeInMB: -1 infinite, 0 none
	BacklogQuotaDefaultLimitBytes           int64         // backlogQuotaDefaultLimitBytes: -1 none
	BacklogQuotaCheckInterval               time.Duration // backlogQuotaCheckIntervalInSeconds
	TTLDurationDefault                      time.Duration // ttlDurationDefaultInSeconds: 0 none
	MessageExpiryCheckInterval              time.Duration // messageExpiryCheckIntervalInMinutes
	SubscriptionExpirationTime              time.Duration // subscriptionExpirationTimeMinutes: 0 never
	MaxMessageSize                          int           // maxMessageSize
	MaxPendingPublishRequestsPerConnection  int           // maxPendingPublishRequestsPerConnection
	MaxMessagePublishBufferSizeInMB         int           // maxMessagePublishBufferSizeInMB: 0 automatic, -1 unlimited
	MaxProducersPerTopic                    int           // maxProducersPerTopic: 0 unlimited
	MaxConsumersPerTopic                    int           // maxConsumersPerTopic: 0 unlimited
	MaxConsumersPerSubscription             int           // maxConsumersPerSubscription: 0 unlimited
	MaxConcurrentLookupRequest              int           // maxConcurrentLookupRequest
	KeepAliveInterval                       time.Duration // keepAliveIntervalSeconds
	BrokerShutdownTimeout                   time.Duration // brokerShutdownTimeoutMs

	MaxUnackedMessagesPerConsumer        int           // maxUnackedMessagesPerConsumer: 0 unlimited
	MaxUnackedMessagesPerSubscription    int           // maxUnackedMessagesPerSubscription: 0 unlimited
	DispatcherMaxReadBatchSize           int           // dispatcherMaxReadBatchSize
	DispatcherMinReadBatchSize           int           // dispatcherMinReadBatchSize
	DispatcherMaxReadSizeBytes           int           // dispatcherMaxReadSizeBytes
	DispatcherMaxRoundRobinBatchSize     int           // dispatcherMaxRoundRobinBatchSize
	ActiveConsumerFailoverDelayTime      time.Duration // activeConsumerFailoverDelayTimeMillis
	SubscriptionKeySharedEnable          bool          // subscriptionKeySharedEnable
	SubscriptionRedeliveryTrackerEnabled bool          // subscriptionRedeliveryTrackerEnabled
}

// ManagedLedgerConfig: how a topic's log is stored in ledgers.
type ManagedLedgerConfig struct {
	EnsembleSize               int           // managedLedgerDefaultEnsembleSize
	WriteQuorum                int           // managedLedgerDefaultWriteQuorum
	AckQuorum                  int           // managedLedgerDefaultAckQuorum
	DigestType                 string        // managedLedgerDigestType: CRC32C, CRC32, MAC or DUMMY
	MaxEntriesPerLedger        int           // managedLedgerMaxEntriesPerLedger
	MaxSizePerLedgerMbytes     int           // managedLedgerMaxSizePerLedgerMbytes
	MinLedgerRolloverTime      time.Duration // managedLedgerMinLedgerRolloverTimeMinutes
	MaxLedgerRolloverTime      time.Duration // managedLedgerMaxLedgerRolloverTimeMinutes
	CacheSizeMB                int           // managedLedgerCacheSizeMB: 0 automatic
	CacheEvictionTimeThreshold time.Duration // managedLedgerCacheEvictionTimeThresholdMillis
	CursorMaxEntriesPerLedger  int           // managedLedgerCursorMaxEntriesPerLedger
	CursorRolloverTime         time.Duration // managedLedgerCursorRolloverTimeInSeconds
	MaxUnackedRangesToPersist  int           // managedLedgerMaxUnackedRangesToPersist
	DefaultMarkDeleteRateLimit float64       // managedLedgerDefaultMarkDeleteRateLimit
	AddEntryTimeout            time.Duration // managedLedgerAddEntryTimeoutSeconds: 0 none
	BookkeeperClientTimeout    time.Duration // bookkeeperClientTimeoutInSeconds
	SpeculativeReadTimeout     time.Duration // bookkeeperClientSpeculativeReadTimeoutInMillis: 0 off
}

// BookieConfig: journal, ledger storage, garbage collection and disks.
type BookieConfig struct {
	JournalDirectory               string        // journalDirectory
	JournalDirectories             []string      // journalDirectories; see JournalDirs
	JournalSyncData                bool          // journalSyncData
	JournalDirectIO                bool          // journalDirectIO (Magnetar)
	JournalMaxGroupWait            time.Duration // journalMaxGroupWaitMSec
	JournalBufferedWritesThreshold int64         // journalBufferedWritesThreshold
	JournalBufferedEntries         int           // journalBufferedEntriesThreshold: 0 no limit
	JournalQueueMaxBytes           int64         // journalQueueMaxBytes (Magnetar)
	JournalMaxSizeMB               int           // journalMaxSizeMB
	JournalPreAllocSizeMB          int           // journalPreAllocSizeMB
	JournalPreAllocZeroFill        bool          // journalPreAllocZeroFill (Magnetar)
	JournalAlignmentSize           int           // journalAlignmentSize
	JournalMaxBackups              int           // journalMaxBackups
	JournalPageCacheFlushInterval  time.Duration // journalPageCacheFlushIntervalMSec

	LedgerDirectories        []string      // ledgerDirectories
	WriteCacheMaxSizeMb      int           // dbStorage_writeCacheMaxSizeMb: 0 default
	ReadAheadCacheMaxSizeMb  int           // dbStorage_readAheadCacheMaxSizeMb: 0 default, -1 off
	ReadAheadCacheBatchSize  int           // dbStorage_readAheadCacheBatchSize
	ReadAheadCacheBatchBytes int64         // dbStorage_readAheadCacheBatchBytesSize
	EntryLogDirectReads      bool          // entryLogDirectReads
	MaxThrottleTime          time.Duration // dbStorage_maxThrottleTimeMs
	LogSizeLimit             int64         // logSizeLimit
	FlushInterval            time.Duration // flushInterval

	GCWaitTime               time.Duration // gcWaitTime
	MinorCompactionThreshold float64       // minorCompactionThreshold
	MinorCompactionInterval  time.Duration // minorCompactionInterval
	MajorCompactionThreshold float64       // majorCompactionThreshold
	MajorCompactionInterval  time.Duration // majorCompactionInterval
	CompactionRateByBytes    int64         // compactionRateByBytes

	DiskUsageThreshold    float64       // diskUsageThreshold
	DiskUsageLwmThreshold float64       // diskUsageLwmThreshold
	DiskCheckInterval     time.Duration // diskCheckInterval
	ReadOnlyModeEnabled   bool          // readOnlyModeEnabled
}

// JournalDirs is the list of journal directories: journalDirectories when
// set, otherwise journalDirectory alone (BookKeeper's rule).
func (b BookieConfig) JournalDirs() []string {
	if len(b.JournalDirectories) > 0 {
		return append([]string(nil), b.JournalDirectories...)
	}
	return []string{b.JournalDirectory}
}

// TelemetryConfig: logging, metrics and profiling.
type TelemetryConfig struct {
	LogLevel                   string // logLevel: debug, info, warn or error
	LogFormat                  string // logFormat: text or json
	MetricsEnabled             bool   // metricsEnabled
	ExposeTopicLevelMetrics    bool   // exposeTopicLevelMetricsInPrometheus
	ExposeConsumerLevelMetrics bool   // exposeConsumerLevelMetricsInPrometheus
	ExposeProducerLevelMetrics bool   // exposeProducerLevelMetricsInPrometheus
	PprofEnabled               bool   // pprofEnabled
}

// HTTPPort is the port of the role's HTTP endpoint, the one serving /metrics:
// webServicePort for brokers and the standalone node, prometheusStatsHttpPort
// for bookies.
func (c *Config) HTTPPort() int {
	if c.Role == Bookie {
		return c.Network.PrometheusStatsHTTPPort
	}
	return c.Network.WebServicePort
}

// Source reports where the value of key came from. Unknown keys report the
// zero Source.
func (c *Config) Source(key string) Source { return c.sources[key] }

// Warnings are problems that did not stop Load (for example an unknown
// MAGNETAR_ environment variable), for the caller to log.
func (c *Config) Warnings() []string { return append([]string(nil), c.warnings...) }

// Lookup returns the value of key formatted as a conf file would hold it.
// ok is false when the key is not in the schema.
func (c *Config) Lookup(key string) (value string, ok bool) {
	k, found := schemaIndex()[key]
	if !found {
		return "", false
	}
	return formatValue(k, k.bind(c)), true
}

// SourceKind says what kind of place a value came from.
type SourceKind uint8

const (
	FromDefault SourceKind = iota
	FromFile
	FromEnv
	FromFlag
)

// Source is where a value came from, for messages: "conf/broker.conf:42",
// "environment MAGNETAR_bookiePort", "flag --set", "default".
type Source struct {
	Kind SourceKind
	Name string // file path, environment variable or flag (with dashes)
	Line int    // line in the file, from 1; 0 when not a file
}

func (s Source) String() string {
	switch s.Kind {
	case FromFile:
		if s.Line > 0 {
			return s.Name + ":" + strconv.Itoa(s.Line)
		}
		return s.Name
	case FromEnv:
		return "environment " + s.Name
	case FromFlag:
		return "flag " + s.Name
	}
	return "default"
}

// EnvPrefix starts every environment variable that overrides a key.
const EnvPrefix = "MAGNETAR_"

// EnvName is the environment variable that overrides key (upper-case
// spellings of it are accepted too).
func EnvName(key string) string { return EnvPrefix + key }

func lower(s string) string { return strings.ToLower(s) }
