package config

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"time"
)

// Type is the type of a key's value.
type Type uint8

const (
	String     Type = iota + 1
	Int             // a decimal integer (Java int)
	Int64           // a decimal integer (Java long)
	Float           // a decimal number
	Bool            // true or false (any case)
	Duration        // a number in the key's Unit (decimals allowed), or a Go duration such as 500us
	StringList      // comma-separated; blanks around items and empty items are dropped
)

func (t Type) String() string {
	switch t {
	case String:
		return "string"
	case Int:
		return "int"
	case Int64:
		return "int64"
	case Float:
		return "float"
	case Bool:
		return "bool"
	case Duration:
		return "duration"
	case StringList:
		return "list"
	}
	return "type(?)"
}

// roleSet is a set of roles.
type roleSet uint8

const (
	inStandalone roleSet = 1 << Standalone
	inBroker     roleSet = 1 << Broker
	inBookie     roleSet = 1 << Bookie

	brokerRoles = inStandalone | inBroker // keys of the broker, also in standalone.conf
	bookieRoles = inStandalone | inBookie // keys of the bookie, also in standalone.conf
	allRoles    = inStandalone | inBroker | inBookie
)

// Key describes one configuration key.
type Key struct {
	Name    string        // exactly as Pulsar/BookKeeper spell it
	Type    Type          // derived from the bound field
	Unit    time.Duration // Duration keys: what a bare number counts
	Section string        // heading in the conf files
	Doc     string        // what the key does; written above it in the conf files
	Choices []string      // String keys: the allowed values, when limited

	roles      roleSet
	def        string          // default for every role...
	roleDef    map[Role]string // ...unless the role has its own
	check      func(any) error // range check of a parsed value; nil accepts all
	bind       func(*Config) any
	fieldIndex []int // where bind points, for tests
}

// In reports whether the key belongs to role's configuration.
func (k Key) In(r Role) bool { return k.roles&(1<<r) != 0 }

// Default is the key's default for role, as a conf file would spell it.
func (k Key) Default(r Role) string {
	if d, ok := k.roleDef[r]; ok {
		return d
	}
	return k.def
}

// Files lists the conf files the key belongs in.
func (k Key) Files() []string {
	var out []string
	for _, r := range Roles() {
		if k.In(r) {
			out = append(out, r.ConfFile())
		}
	}
	return out
}

// Schema returns every key, in conf-file order.
func Schema() []Key { return append([]Key(nil), schema().keys...) }

// KeysOf returns the keys of role, in conf-file order.
func KeysOf(r Role) []Key {
	var out []Key
	for _, k := range schema().keys {
		if k.In(r) {
			out = append(out, k)
		}
	}
	return out
}

// LookupKey finds a key by its exact name.
func LookupKey(name string) (Key, bool) {
	k, ok := schemaIndex()[name]
	return k, ok
}

type builtSchema struct {
	keys    []Key
	byName  map[string]Key
	byLower map[string]Key // lower-cased name -> key, for MAGNETAR_UPPERCASE
}

// schema is built once from the table below; it is never modified after.
var schema = sync.OnceValue(func() *builtSchema {
	s, err := buildSchema(table())
	if err != nil {
		// The table is a constant of this package; TestSchemaIsWellFormed
		// fails first if it is malformed.
		panic(err)
	}
	return s
})

func schemaIndex() map[string]Key { return schema().byName }

func buildSchema(keys []Key) (*builtSchema, error) {
	s := &builtSchema{byName: map[string]Key{}, byLower: map[string]Key{}}
	var probe Config
	root := reflect.ValueOf(&probe).Elem()
	for _, k := range keys {
		if k.Name == "" || k.bind == nil || k.roles == 0 || k.Section == "" || k.Doc == "" {
			return nil, fmt.Errorf("config: key %q is incomplete", k.Name)
		}
		if _, dup := s.byLower[lower(k.Name)]; dup {
			return nil, fmt.Errorf("config: key %q defined twice (names must differ ignoring case)", k.Name)
		}
		p := k.bind(&probe)
		switch p.(type) {
		case *string:
			k.Type = String
		case *int:
			k.Type = Int
		case *int64:
			k.Type = Int64
		case *float64:
			k.Type = Float
		case *bool:
			k.Type = Bool
		case *time.Duration:
			k.Type = Duration
			if k.Unit <= 0 {
				return nil, fmt.Errorf("config: duration key %q has no unit", k.Name)
			}
		case *[]string:
			k.Type = StringList
		default:
			return nil, fmt.Errorf("config: key %q is bound to an unsupported %T", k.Name, p)
		}
		if k.Type != Duration && k.Unit != 0 {
			return nil, fmt.Errorf("config: key %q has a unit but is not a duration", k.Name)
		}
		idx, ok := fieldPath(root, reflect.ValueOf(p).Pointer())
		if !ok {
			return nil, fmt.Errorf("config: key %q is bound outside Config", k.Name)
		}
		k.fieldIndex = idx
		for _, r := range Roles() {
			if _, err := parseValue(k, k.Default(r)); err != nil {
				return nil, fmt.Errorf("config: default of %q for %s: %v", k.Name, r, err)
			}
		}
		s.keys = append(s.keys, k)
		s.byName[k.Name] = k
		s.byLower[lower(k.Name)] = k
	}
	return s, nil
}

// fieldPath finds the struct field of v whose address is addr.
func fieldPath(v reflect.Value, addr uintptr) ([]int, bool) {
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if !v.Type().Field(i).IsExported() {
			continue
		}
		if f.Addr().Pointer() == addr && f.Kind() != reflect.Struct {
			return []int{i}, true
		}
		if f.Kind() == reflect.Struct {
			if p, ok := fieldPath(f, addr); ok {
				return append([]int{i}, p...), true
			}
		}
	}
	return nil, false
}

// Range checks used by the table.

func port(v any) error {
	if n := v.(int); n < 0 || n > 65535 {
		return fmt.Errorf("%d is not a port number (0-65535)", n)
	}
	return nil
}

func positive(v any) error {
	if toFloat(v) <= 0 {
		return fmt.Errorf("%s must be greater than 0", fmtAny(v))
	}
	return nil
}

func nonNegative(v any) error {
	if toFloat(v) < 0 {
		return fmt.Errorf("%s must not be negative", fmtAny(v))
	}
	return nil
}

// minusOneOrMore accepts -1 (meaning "unlimited" or "infinite") and any value
// from 0 up.
func minusOneOrMore(v any) error {
	if toFloat(v) < -1 {
		return fmt.Errorf("%s must be -1 or more", fmtAny(v))
	}
	return nil
}

// fraction accepts values in (0, 1].
func fraction(v any) error {
	if f := v.(float64); !(f > 0 && f <= 1) {
		return fmt.Errorf("%v is not a fraction in (0, 1]", f)
	}
	return nil
}

func powerOfTwoAtLeast512(v any) error {
	n := v.(int)
	if n < 512 || n&(n-1) != 0 {
		return fmt.Errorf("%d is not a power of two of at least 512", n)
	}
	return nil
}

func nonEmptyList(v any) error {
	if len(v.([]string)) == 0 {
		return fmt.Errorf("at least one directory is needed")
	}
	return nil
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case float64:
		return x
	case time.Duration:
		return float64(x)
	}
	return math.NaN()
}

func fmtAny(v any) string {
	if d, ok := v.(time.Duration); ok {
		return d.String()
	}
	return fmt.Sprint(v)
}

func perRole(standalone, broker, bookie string) map[Role]string {
	return map[Role]string{Standalone: standalone, Broker: broker, Bookie: bookie}
}

// Section headings, in conf-file order.
const (
	secMetadata   = "Cluster and metadata store"
	secNetwork    = "Network"
	secTopics     = "Broker: topics and limits"
	secDispatch   = "Broker: dispatch"
	secLedgers    = "Managed ledgers"
	secJournal    = "Bookie: journal"
	secStorage    = "Bookie: ledger storage"
	secCompaction = "Bookie: garbage collection and compaction"
	secDisks      = "Bookie: disks"
	secTelemetry  = "Logging, metrics and profiling"
)

// table is the schema. Keep keys grouped by section, in the order the conf
// files list them; TestShippedConfFiles keeps conf/ in step with it.
func table() []Key {
	ms, sec, mins := time.Millisecond, time.Second, time.Minute
	return []Key{
		// Cluster and metadata store.
		{Name: "clusterName", Section: secMetadata, roles: brokerRoles, roleDef: perRole("standalone", "", ""),
			Doc:  "Name of the cluster this broker belongs to. Required for a broker; the standalone node's cluster is \"standalone\", as in Pulsar.",
			bind: func(c *Config) any { return &c.Metadata.ClusterName }},
		{Name: "metadataStoreUrl", Section: secMetadata, roles: brokerRoles, roleDef: perRole("embedded:data/metadata", "zk:localhost:2181", ""),
			Doc:  "Where cluster metadata lives (ledger lists, cursors, topic ownership, bookie registrations): zk:HOST:PORT[,HOST:PORT...][/CHROOT] for ZooKeeper, embedded:DIR for the crash-safe embedded store (the standalone default), memory: for a throwaway in-memory store.",
			bind: func(c *Config) any { return &c.Metadata.MetadataStoreURL }},
		{Name: "configurationMetadataStoreUrl", Section: secMetadata, roles: brokerRoles,
			Doc:  "Where tenants, namespaces and policies live (Pulsar's configuration store), in the same forms as metadataStoreUrl. Empty means the same store as metadataStoreUrl.",
			bind: func(c *Config) any { return &c.Metadata.ConfigurationMetadataStoreURL }},
		{Name: "metadataStoreSessionTimeoutMillis", Section: secMetadata, roles: brokerRoles, Unit: ms, def: "30000", check: positive,
			Doc:  "Metadata store session timeout, in milliseconds: ephemeral registrations (topic ownership, live brokers) vanish this long after their owner stops answering.",
			bind: func(c *Config) any { return &c.Metadata.MetadataStoreSessionTimeout }},
		{Name: "metadataStoreOperationTimeoutSeconds", Section: secMetadata, roles: brokerRoles, Unit: sec, def: "30", check: positive,
			Doc:  "How long one metadata store operation may take before it fails, in seconds.",
			bind: func(c *Config) any { return &c.Metadata.MetadataStoreOperationTimeout }},
		{Name: "metadataServiceUri", Section: secMetadata, roles: inBookie, def: "zk+hierarchical://localhost:2181/ledgers",
			Doc:  "The metadata store where this bookie registers and where ledger metadata lives, as BookKeeper spells it: zk+hierarchical://HOST:PORT[;HOST:PORT...]/LEDGERS_ROOT. The metadataStoreUrl forms (zk:HOST:PORT, embedded:DIR, memory:) work too, with ledgers under /ledgers.",
			bind: func(c *Config) any { return &c.Metadata.MetadataServiceURI }},

		// Network.
		{Name: "bindAddress", Section: secNetwork, roles: allRoles, roleDef: perRole("127.0.0.1", "0.0.0.0", "0.0.0.0"),
			Doc:  "Address every listener binds to. A standalone node binds 127.0.0.1, loopback only, because Magnetar has no authentication yet (Pulsar's standalone binds 0.0.0.0); to let other machines in, set 0.0.0.0 and advertisedAddress.",
			bind: func(c *Config) any { return &c.Network.BindAddress }},
		{Name: "advertisedAddress", Section: secNetwork, roles: allRoles,
			Doc:  "Host name or IP address that clients and other nodes are told to connect to. Empty means bindAddress when that is a specific address, otherwise this machine's host name.",
			bind: func(c *Config) any { return &c.Network.AdvertisedAddress }},
		{Name: "brokerServicePort", Section: secNetwork, roles: brokerRoles, def: "6650", check: port,
			Doc:  "Port of the Pulsar binary protocol.",
			bind: func(c *Config) any { return &c.Network.BrokerServicePort }},
		{Name: "webServicePort", Section: secNetwork, roles: brokerRoles, def: "8080", check: port,
			Doc:  "Port of the HTTP service: admin REST API, topic lookup, /metrics, and /debug/pprof/ when pprofEnabled.",
			bind: func(c *Config) any { return &c.Network.WebServicePort }},
		{Name: "bookiePort", Section: secNetwork, roles: bookieRoles, def: "3181", check: port,
			Doc:  "Port of the bookie protocol.",
			bind: func(c *Config) any { return &c.Network.BookiePort }},
		{Name: "prometheusStatsHttpPort", Section: secNetwork, roles: inBookie, def: "8000", check: port,
			Doc:  "Port of the bookie's HTTP endpoint: /metrics, and /debug/pprof/ when pprofEnabled.",
			bind: func(c *Config) any { return &c.Network.PrometheusStatsHTTPPort }},
		{Name: "nettyMaxFrameSizeBytes", Section: secNetwork, roles: bookieRoles, def: "5253120", check: positive,
			Doc:  "Largest bookie protocol frame accepted, in bytes; it must exceed the broker's maxMessageSize plus framing.",
			bind: func(c *Config) any { return &c.Network.NettyMaxFrameSizeBytes }},

		// Broker: topics and limits.
		{Name: "allowAutoTopicCreation", Section: secTopics, roles: brokerRoles, def: "true",
			Doc:  "Create a topic when a producer or consumer first names it.",
			bind: func(c *Config) any { return &c.Broker.AllowAutoTopicCreation }},
		{Name: "allowAutoTopicCreationType", Section: secTopics, roles: brokerRoles, def: "non-partitioned", Choices: []string{"non-partitioned", "partitioned"},
			Doc:  "Kind of topic created automatically.",
			bind: func(c *Config) any { return &c.Broker.AllowAutoTopicCreationType }},
		{Name: "defaultNumPartitions", Section: secTopics, roles: brokerRoles, def: "1", check: positive,
			Doc:  "Number of partitions of an automatically created partitioned topic.",
			bind: func(c *Config) any { return &c.Broker.DefaultNumPartitions }},
		{Name: "maxNumPartitionsPerPartitionedTopic", Section: secTopics, roles: brokerRoles, def: "0", check: nonNegative,
			Doc:  "Most partitions a partitioned topic may have; 0 means no limit.",
			bind: func(c *Config) any { return &c.Broker.MaxNumPartitionsPerPartitionedTopic }},
		{Name: "maxTopicsPerNamespace", Section: secTopics, roles: brokerRoles, def: "0", check: nonNegative,
			Doc:  "Most topics a namespace may hold; 0 means no limit.",
			bind: func(c *Config) any { return &c.Broker.MaxTopicsPerNamespace }},
		{Name: "brokerDeleteInactiveTopicsEnabled", Section: secTopics, roles: brokerRoles, def: "true",
			Doc:  "Delete topics that have no producers, no subscriptions and no backlog.",
			bind: func(c *Config) any { return &c.Broker.BrokerDeleteInactiveTopicsEnabled }},
		{Name: "brokerDeleteInactiveTopicsFrequencySeconds", Section: secTopics, roles: brokerRoles, Unit: sec, def: "60", check: positive,
			Doc:  "How often inactive topics are looked for, in seconds.",
			bind: func(c *Config) any { return &c.Broker.BrokerDeleteInactiveTopicsFrequency }},
		{Name: "brokerDeduplicationEnabled", Section: secTopics, roles: brokerRoles, def: "false",
			Doc:  "Drop messages whose producer sequence id was already persisted, in namespaces that do not say otherwise.",
			bind: func(c *Config) any { return &c.Broker.BrokerDeduplicationEnabled }},
		{Name: "brokerDeduplicationMaxNumberOfProducers", Section: secTopics, roles: brokerRoles, def: "10000", check: positive,
			Doc:  "Most producers per topic whose sequence ids deduplication remembers.",
			bind: func(c *Config) any { return &c.Broker.BrokerDeduplicationMaxNumberOfProducers }},
		{Name: "defaultRetentionTimeInMinutes", Section: secTopics, roles: brokerRoles, def: "0", check: minusOneOrMore,
			Doc:  "How long acknowledged messages are kept, in minutes, in namespaces without a retention policy; 0 keeps none, -1 keeps them forever.",
			bind: func(c *Config) any { return &c.Broker.DefaultRetentionTimeInMinutes }},
		{Name: "defaultRetentionSizeInMB", Section: secTopics, roles: brokerRoles, def: "0", check: minusOneOrMore,
			Doc:  "How much acknowledged data a topic keeps, in MiB, in namespaces without a retention policy; 0 keeps none, -1 has no limit.",
			bind: func(c *Config) any { return &c.Broker.DefaultRetentionSizeInMB }},
		{Name: "backlogQuotaDefaultLimitBytes", Section: secTopics, roles: brokerRoles, def: "-1", check: minusOneOrMore,
			Doc:  "Largest backlog a topic may hold, in bytes, in namespaces without a backlog quota; -1 means no limit.",
			bind: func(c *Config) any { return &c.Broker.BacklogQuotaDefaultLimitBytes }},
		{Name: "backlogQuotaCheckIntervalInSeconds", Section: secTopics, roles: brokerRoles, Unit: sec, def: "60", check: positive,
			Doc:  "How often backlog quotas are enforced, in seconds.",
			bind: func(c *Config) any { return &c.Broker.BacklogQuotaCheckInterval }},
		{Name: "ttlDurationDefaultInSeconds", Section: secTopics, roles: brokerRoles, Unit: sec, def: "0", check: nonNegative,
			Doc:  "Age after which unacknowledged messages are acknowledged automatically, in seconds, in namespaces without a TTL; 0 means never.",
			bind: func(c *Config) any { return &c.Broker.TTLDurationDefault }},
		{Name: "messageExpiryCheckIntervalInMinutes", Section: secTopics, roles: brokerRoles, Unit: mins, def: "5", check: positive,
			Doc:  "How often message TTLs are enforced, in minutes.",
			bind: func(c *Config) any { return &c.Broker.MessageExpiryCheckInterval }},
		{Name: "subscriptionExpirationTimeMinutes", Section: secTopics, roles: brokerRoles, Unit: mins, def: "0", check: nonNegative,
			Doc:  "Idle time after which a subscription without consumers is deleted, in minutes; 0 means never.",
			bind: func(c *Config) any { return &c.Broker.SubscriptionExpirationTime }},
		{Name: "maxMessageSize", Section: secTopics, roles: brokerRoles, def: "5242880", check: positive,
			Doc:  "Largest message a producer may send, in bytes (the frame may be this plus 10 KiB of metadata).",
			bind: func(c *Config) any { return &c.Broker.MaxMessageSize }},
		{Name: "maxPendingPublishRequestsPerConnection", Section: secTopics, roles: brokerRoles, def: "1000", check: positive,
			Doc:  "Publish requests a connection may have awaiting persistence before the broker stops reading from it.",
			bind: func(c *Config) any { return &c.Broker.MaxPendingPublishRequestsPerConnection }},
		{Name: "maxMessagePublishBufferSizeInMB", Section: secTopics, roles: brokerRoles, def: "0", check: minusOneOrMore,
			Doc:  "Memory for messages being published across all connections, in MiB; when full the broker stops reading from producers. 0 means automatic (half of the memory available), -1 means no limit.",
			bind: func(c *Config) any { return &c.Broker.MaxMessagePublishBufferSizeInMB }},
		{Name: "maxProducersPerTopic", Section: secTopics, roles: brokerRoles, def: "0", check: nonNegative,
			Doc:  "Most producers a topic may have; 0 means no limit.",
			bind: func(c *Config) any { return &c.Broker.MaxProducersPerTopic }},
		{Name: "maxConsumersPerTopic", Section: secTopics, roles: brokerRoles, def: "0", check: nonNegative,
			Doc:  "Most consumers a topic may have; 0 means no limit.",
			bind: func(c *Config) any { return &c.Broker.MaxConsumersPerTopic }},
		{Name: "maxConsumersPerSubscription", Section: secTopics, roles: brokerRoles, def: "0", check: nonNegative,
			Doc:  "Most consumers a subscription may have; 0 means no limit.",
			bind: func(c *Config) any { return &c.Broker.MaxConsumersPerSubscription }},
		{Name: "maxConcurrentLookupRequest", Section: secTopics, roles: brokerRoles, def: "50000", check: positive,
			Doc:  "Topic lookups the broker serves at once; more are refused with a retriable error.",
			bind: func(c *Config) any { return &c.Broker.MaxConcurrentLookupRequest }},
		{Name: "keepAliveIntervalSeconds", Section: secTopics, roles: brokerRoles, Unit: sec, def: "30", check: positive,
			Doc:  "How often an idle connection is pinged, in seconds; a connection that does not answer is closed.",
			bind: func(c *Config) any { return &c.Broker.KeepAliveInterval }},
		{Name: "brokerShutdownTimeoutMs", Section: secTopics, roles: brokerRoles, Unit: ms, def: "60000", check: nonNegative,
			Doc:  "How long a clean shutdown may take, in milliseconds, before the broker stops anyway.",
			bind: func(c *Config) any { return &c.Broker.BrokerShutdownTimeout }},

		// Broker: dispatch.
		{Name: "maxUnackedMessagesPerConsumer", Section: secDispatch, roles: brokerRoles, def: "50000", check: nonNegative,
			Doc:  "Unacknowledged messages a consumer may hold before delivery to it pauses; 0 means no limit.",
			bind: func(c *Config) any { return &c.Broker.MaxUnackedMessagesPerConsumer }},
		{Name: "maxUnackedMessagesPerSubscription", Section: secDispatch, roles: brokerRoles, def: "200000", check: nonNegative,
			Doc:  "Unacknowledged messages a shared subscription may hold before delivery to it pauses; 0 means no limit.",
			bind: func(c *Config) any { return &c.Broker.MaxUnackedMessagesPerSubscription }},
		{Name: "dispatcherMaxReadBatchSize", Section: secDispatch, roles: brokerRoles, def: "100", check: positive,
			Doc:  "Most entries a dispatcher reads from storage at once.",
			bind: func(c *Config) any { return &c.Broker.DispatcherMaxReadBatchSize }},
		{Name: "dispatcherMinReadBatchSize", Section: secDispatch, roles: brokerRoles, def: "1", check: positive,
			Doc:  "Fewest entries a dispatcher reads at once when reads fail and it backs off.",
			bind: func(c *Config) any { return &c.Broker.DispatcherMinReadBatchSize }},
		{Name: "dispatcherMaxReadSizeBytes", Section: secDispatch, roles: brokerRoles, def: "5242880", check: positive,
			Doc:  "Most bytes a dispatcher reads from storage at once.",
			bind: func(c *Config) any { return &c.Broker.DispatcherMaxReadSizeBytes }},
		{Name: "dispatcherMaxRoundRobinBatchSize", Section: secDispatch, roles: brokerRoles, def: "20", check: positive,
			Doc:  "Most messages a shared subscription sends to one consumer before moving to the next.",
			bind: func(c *Config) any { return &c.Broker.DispatcherMaxRoundRobinBatchSize }},
		{Name: "activeConsumerFailoverDelayTimeMillis", Section: secDispatch, roles: brokerRoles, Unit: ms, def: "1000", check: nonNegative,
			Doc:  "Delay before a failover subscription switches to a new active consumer, in milliseconds.",
			bind: func(c *Config) any { return &c.Broker.ActiveConsumerFailoverDelayTime }},
		{Name: "subscriptionKeySharedEnable", Section: secDispatch, roles: brokerRoles, def: "true",
			Doc:  "Allow Key_Shared subscriptions.",
			bind: func(c *Config) any { return &c.Broker.SubscriptionKeySharedEnable }},
		{Name: "subscriptionRedeliveryTrackerEnabled", Section: secDispatch, roles: brokerRoles, def: "true",
			Doc:  "Count redeliveries of each message, so consumers see the redelivery count.",
			bind: func(c *Config) any { return &c.Broker.SubscriptionRedeliveryTrackerEnabled }},

		// Managed ledgers.
		{Name: "managedLedgerDefaultEnsembleSize", Section: secLedgers, roles: brokerRoles, roleDef: perRole("1", "2", "2"), check: positive,
			Doc:  "Bookies each ledger is striped over (E), in namespaces without a persistence policy.",
			bind: func(c *Config) any { return &c.ManagedLedger.EnsembleSize }},
		{Name: "managedLedgerDefaultWriteQuorum", Section: secLedgers, roles: brokerRoles, roleDef: perRole("1", "2", "2"), check: positive,
			Doc:  "Copies of each entry written (Qw); at most the ensemble size.",
			bind: func(c *Config) any { return &c.ManagedLedger.WriteQuorum }},
		{Name: "managedLedgerDefaultAckQuorum", Section: secLedgers, roles: brokerRoles, roleDef: perRole("1", "2", "2"), check: positive,
			Doc:  "Copies that must be durable before a message is acknowledged (Qa); at most the write quorum.",
			bind: func(c *Config) any { return &c.ManagedLedger.AckQuorum }},
		{Name: "managedLedgerDigestType", Section: secLedgers, roles: brokerRoles, def: "CRC32C", Choices: []string{"CRC32C", "CRC32", "MAC", "DUMMY"},
			Doc:  "Checksum the broker puts in every entry and checks on every read.",
			bind: func(c *Config) any { return &c.ManagedLedger.DigestType }},
		{Name: "managedLedgerMaxEntriesPerLedger", Section: secLedgers, roles: brokerRoles, def: "50000", check: positive,
			Doc:  "Entries after which a topic rolls over to a new ledger (once it is at least managedLedgerMinLedgerRolloverTimeMinutes old).",
			bind: func(c *Config) any { return &c.ManagedLedger.MaxEntriesPerLedger }},
		{Name: "managedLedgerMaxSizePerLedgerMbytes", Section: secLedgers, roles: brokerRoles, def: "2048", check: positive,
			Doc:  "Size after which a topic rolls over to a new ledger, in MiB (once it is at least managedLedgerMinLedgerRolloverTimeMinutes old).",
			bind: func(c *Config) any { return &c.ManagedLedger.MaxSizePerLedgerMbytes }},
		{Name: "managedLedgerMinLedgerRolloverTimeMinutes", Section: secLedgers, roles: brokerRoles, Unit: mins, def: "10", check: nonNegative,
			Doc:  "Youngest age at which a ledger may be rolled over, in minutes.",
			bind: func(c *Config) any { return &c.ManagedLedger.MinLedgerRolloverTime }},
		{Name: "managedLedgerMaxLedgerRolloverTimeMinutes", Section: secLedgers, roles: brokerRoles, Unit: mins, def: "240", check: positive,
			Doc:  "Age at which a ledger is rolled over whatever its size, in minutes.",
			bind: func(c *Config) any { return &c.ManagedLedger.MaxLedgerRolloverTime }},
		{Name: "managedLedgerCacheSizeMB", Section: secLedgers, roles: brokerRoles, def: "0", check: nonNegative,
			Doc:  "Memory for the cache of recently written entries that tailing consumers read from, in MiB; 0 means automatic (a fifth of the memory available).",
			bind: func(c *Config) any { return &c.ManagedLedger.CacheSizeMB }},
		{Name: "managedLedgerCacheEvictionTimeThresholdMillis", Section: secLedgers, roles: brokerRoles, Unit: ms, def: "1000", check: positive,
			Doc:  "Age after which cached entries are evicted, in milliseconds.",
			bind: func(c *Config) any { return &c.ManagedLedger.CacheEvictionTimeThreshold }},
		{Name: "managedLedgerCursorMaxEntriesPerLedger", Section: secLedgers, roles: brokerRoles, def: "50000", check: positive,
			Doc:  "Position updates after which a cursor rolls over to a new ledger.",
			bind: func(c *Config) any { return &c.ManagedLedger.CursorMaxEntriesPerLedger }},
		{Name: "managedLedgerCursorRolloverTimeInSeconds", Section: secLedgers, roles: brokerRoles, Unit: sec, def: "14400", check: positive,
			Doc:  "Age at which a cursor's ledger is rolled over, in seconds.",
			bind: func(c *Config) any { return &c.ManagedLedger.CursorRolloverTime }},
		{Name: "managedLedgerMaxUnackedRangesToPersist", Section: secLedgers, roles: brokerRoles, def: "10000", check: positive,
			Doc:  "Most ranges of individually acknowledged messages a cursor persists; beyond that, a crash redelivers some acknowledged messages.",
			bind: func(c *Config) any { return &c.ManagedLedger.MaxUnackedRangesToPersist }},
		{Name: "managedLedgerDefaultMarkDeleteRateLimit", Section: secLedgers, roles: brokerRoles, def: "1.0", check: nonNegative,
			Doc:  "Most cursor position persists per second per subscription; acknowledgements in between are persisted with the next one. 0 means no limit.",
			bind: func(c *Config) any { return &c.ManagedLedger.DefaultMarkDeleteRateLimit }},
		{Name: "managedLedgerAddEntryTimeoutSeconds", Section: secLedgers, roles: brokerRoles, Unit: sec, def: "0", check: nonNegative,
			Doc:  "Time after which a pending add fails and the ledger is rolled over, in seconds; 0 means never.",
			bind: func(c *Config) any { return &c.ManagedLedger.AddEntryTimeout }},
		{Name: "bookkeeperClientTimeoutInSeconds", Section: secLedgers, roles: brokerRoles, Unit: sec, def: "30", check: positive,
			Doc:  "Time after which a bookie that has not answered an add or a read is treated as failed, in seconds.",
			bind: func(c *Config) any { return &c.ManagedLedger.BookkeeperClientTimeout }},
		{Name: "bookkeeperClientSpeculativeReadTimeoutInMillis", Section: secLedgers, roles: brokerRoles, Unit: ms, def: "0", check: nonNegative,
			Doc:  "Time after which a read is also sent to the next replica, in milliseconds; 0 turns speculative reads off.",
			bind: func(c *Config) any { return &c.ManagedLedger.SpeculativeReadTimeout }},

		// Bookie: journal.
		{Name: "journalDirectory", Section: secJournal, roles: bookieRoles, def: "data/bookkeeper/journal",
			Doc:  "Directory of the journal, the write-ahead log that gates every acknowledgement. Put it on a fast device of its own.",
			bind: func(c *Config) any { return &c.Bookie.JournalDirectory }},
		{Name: "journalDirectories", Section: secJournal, roles: bookieRoles,
			Doc:  "Several journal directories, comma-separated, each with its own writer and syncer; ledgers are spread over them by id. When set, journalDirectory is ignored.",
			bind: func(c *Config) any { return &c.Bookie.JournalDirectories }},
		{Name: "journalSyncData", Section: secJournal, roles: bookieRoles, def: "true",
			Doc:  "Acknowledge an add only once the journal record holding it is durable (fdatasync returned). false acknowledges once the OS has the bytes: faster, but a machine crash loses acknowledged entries.",
			bind: func(c *Config) any { return &c.Bookie.JournalSyncData }},
		{Name: "journalDirectIO", Section: secJournal, roles: bookieRoles, def: "true",
			Doc:  "Magnetar's key (BookKeeper's journal always goes through the page cache): write the journal with O_DIRECT from aligned buffers, bypassing the page cache. Filesystems that refuse O_DIRECT (tmpfs) get buffered writes plus fdatasync instead.",
			bind: func(c *Config) any { return &c.Bookie.JournalDirectIO }},
		{Name: "journalMaxGroupWaitMSec", Section: secJournal, roles: bookieRoles, Unit: ms, def: "1", check: nonNegative,
			Doc:  "Longest an add waits for others to share its fsync, in milliseconds (decimals allowed). Magnetar never holds a lone add: with nothing else queued the journal syncs at once, and adds arriving during an fsync form the next group; this only caps how long a group keeps filling while adds stream in. Pulsar ships 1; BookKeeper's default is 2.",
			bind: func(c *Config) any { return &c.Bookie.JournalMaxGroupWait }},
		{Name: "journalBufferedWritesThreshold", Section: secJournal, roles: bookieRoles, def: "524288", check: positive,
			Doc:  "Bytes after which a group is written and synced without waiting further.",
			bind: func(c *Config) any { return &c.Bookie.JournalBufferedWritesThreshold }},
		{Name: "journalBufferedEntriesThreshold", Section: secJournal, roles: bookieRoles, def: "0", check: nonNegative,
			Doc:  "Entries after which a group is written and synced without waiting further; 0 means no limit by count.",
			bind: func(c *Config) any { return &c.Bookie.JournalBufferedEntries }},
		{Name: "journalQueueMaxBytes", Section: secJournal, roles: bookieRoles, def: "67108864", check: positive,
			Doc:  "Magnetar's key (BookKeeper's journalMaxMemorySizeMb plays its part): bytes of adds that may wait for the journal; further adds block until the queue drains.",
			bind: func(c *Config) any { return &c.Bookie.JournalQueueMaxBytes }},
		{Name: "journalMaxSizeMB", Section: secJournal, roles: bookieRoles, def: "2048", check: positive,
			Doc:  "Size at which the journal moves on to a new segment file, in MiB.",
			bind: func(c *Config) any { return &c.Bookie.JournalMaxSizeMB }},
		{Name: "journalPreAllocSizeMB", Section: secJournal, roles: bookieRoles, def: "16", check: positive,
			Doc:  "Space the journal reserves ahead of its writes (fallocate), in MiB.",
			bind: func(c *Config) any { return &c.Bookie.JournalPreAllocSizeMB }},
		{Name: "journalPreAllocZeroFill", Section: secJournal, roles: bookieRoles, def: "true",
			Doc:  "Magnetar's key: write zeros over the space reserved ahead of the journal's writes (direct I/O only), so that an fdatasync in a fresh journal file flushes data without a filesystem metadata commit. It halved a lone add's latency in a fresh file on ext4, at the price of writing each new journal file twice until files are recycled.",
			bind: func(c *Config) any { return &c.Bookie.JournalPreAllocZeroFill }},
		{Name: "journalAlignmentSize", Section: secJournal, roles: bookieRoles, def: "4096", check: powerOfTwoAtLeast512,
			Doc:  "Alignment of journal writes, in bytes: every write starts and ends on this boundary, so a torn write never damages earlier records. A power of two of at least 512, and a multiple of the device's logical block size when journalDirectIO is on. Pulsar ships 4096; BookKeeper's default is 512.",
			bind: func(c *Config) any { return &c.Bookie.JournalAlignmentSize }},
		{Name: "journalMaxBackups", Section: secJournal, roles: bookieRoles, def: "5", check: nonNegative,
			Doc:  "Journal files kept after a checkpoint made them unnecessary, for forensics.",
			bind: func(c *Config) any { return &c.Bookie.JournalMaxBackups }},
		{Name: "journalPageCacheFlushIntervalMSec", Section: secJournal, roles: bookieRoles, Unit: ms, def: "1000", check: positive,
			Doc:  "With journalSyncData=false: how often the journal is synced anyway, in milliseconds.",
			bind: func(c *Config) any { return &c.Bookie.JournalPageCacheFlushInterval }},

		// Bookie: ledger storage.
		{Name: "ledgerDirectories", Section: secStorage, roles: bookieRoles, def: "data/bookkeeper/ledgers", check: nonEmptyList,
			Doc:  "Directories of ledger storage (entry logs and their index), comma-separated; ledgers are spread over them by id.",
			bind: func(c *Config) any { return &c.Bookie.LedgerDirectories }},
		{Name: "dbStorage_writeCacheMaxSizeMb", Section: secStorage, roles: bookieRoles, def: "0", check: nonNegative,
			Doc:  "Memory for entries not yet flushed to entry logs, in MiB, shared by the ledger directories; when it fills, adds wait for a flush. 0 means Magnetar's default, 256 MiB (BookKeeper takes a quarter of direct memory).",
			bind: func(c *Config) any { return &c.Bookie.WriteCacheMaxSizeMb }},
		{Name: "dbStorage_readAheadCacheMaxSizeMb", Section: secStorage, roles: bookieRoles, def: "0", check: minusOneOrMore,
			Doc:  "Memory for entries read ahead from entry logs, in MiB. 0 means Magnetar's default, 256 MiB (BookKeeper takes a quarter of direct memory); -1 turns the read cache and read-ahead off.",
			bind: func(c *Config) any { return &c.Bookie.ReadAheadCacheMaxSizeMb }},
		{Name: "dbStorage_readAheadCacheBatchSize", Section: secStorage, roles: bookieRoles, def: "1000", check: positive,
			Doc:  "Entries of the same ledger read ahead after a read that missed the caches. Pulsar ships 1000; BookKeeper's default is 100.",
			bind: func(c *Config) any { return &c.Bookie.ReadAheadCacheBatchSize }},
		{Name: "dbStorage_readAheadCacheBatchBytesSize", Section: secStorage, roles: bookieRoles, def: "4194304", check: positive,
			Doc:  "Most bytes one read-ahead fetches, so that large entries cannot flush the cache. BookKeeper's default, -1, sets no bound.",
			bind: func(c *Config) any { return &c.Bookie.ReadAheadCacheBatchBytes }},
		{Name: "entryLogDirectReads", Section: secStorage, roles: bookieRoles, def: "true",
			Doc:  "Magnetar's key: read entry logs with direct I/O (O_DIRECT) where the filesystem allows it, so that a cold catch-up read neither fills the page cache nor evicts what is there; repeated reads are served by the read-ahead cache. false reads through the page cache (the kernel's own read-ahead stays off for entry logs). Like BookKeeper's dbStorage_directIOEntryLogger, for reads.",
			bind: func(c *Config) any { return &c.Bookie.EntryLogDirectReads }},
		{Name: "dbStorage_maxThrottleTimeMs", Section: secStorage, roles: bookieRoles, Unit: ms, def: "10000", check: positive,
			Doc:  "Longest an add waits for room in a full write cache, in milliseconds, before it fails with a too-many-requests error.",
			bind: func(c *Config) any { return &c.Bookie.MaxThrottleTime }},
		{Name: "logSizeLimit", Section: secStorage, roles: bookieRoles, def: "1073741824", check: positive,
			Doc:  "Size at which an entry log is closed and a new one started, in bytes.",
			bind: func(c *Config) any { return &c.Bookie.LogSizeLimit }},
		{Name: "flushInterval", Section: secStorage, roles: bookieRoles, Unit: ms, def: "60000", check: positive,
			Doc:  "How often the write cache is flushed to entry logs and a checkpoint taken, in milliseconds (a full write cache also triggers one); journals below the checkpoint may then be deleted. Pulsar ships 60000; BookKeeper's default is 10000.",
			bind: func(c *Config) any { return &c.Bookie.FlushInterval }},

		// Bookie: garbage collection and compaction.
		{Name: "gcWaitTime", Section: secCompaction, roles: bookieRoles, Unit: ms, def: "900000", check: positive,
			Doc:  "How often deleted ledgers are collected and entry logs compacted, in milliseconds. Pulsar ships 900000; BookKeeper's default is 600000.",
			bind: func(c *Config) any { return &c.Bookie.GCWaitTime }},
		{Name: "minorCompactionThreshold", Section: secCompaction, roles: bookieRoles, def: "0.2", check: fraction,
			Doc:  "Minor compaction rewrites entry logs whose live share is below this fraction.",
			bind: func(c *Config) any { return &c.Bookie.MinorCompactionThreshold }},
		{Name: "minorCompactionInterval", Section: secCompaction, roles: bookieRoles, Unit: sec, def: "3600", check: positive,
			Doc:  "How often minor compaction runs, in seconds.",
			bind: func(c *Config) any { return &c.Bookie.MinorCompactionInterval }},
		{Name: "majorCompactionThreshold", Section: secCompaction, roles: bookieRoles, def: "0.5", check: fraction,
			Doc:  "Major compaction rewrites entry logs whose live share is below this fraction. Pulsar ships 0.5; BookKeeper's default is 0.8.",
			bind: func(c *Config) any { return &c.Bookie.MajorCompactionThreshold }},
		{Name: "majorCompactionInterval", Section: secCompaction, roles: bookieRoles, Unit: sec, def: "86400", check: positive,
			Doc:  "How often major compaction runs, in seconds.",
			bind: func(c *Config) any { return &c.Bookie.MajorCompactionInterval }},
		{Name: "compactionRateByBytes", Section: secCompaction, roles: bookieRoles, def: "33554432", check: positive,
			Doc:  "Bytes per second compaction may rewrite. Magnetar throttles by bytes only (BookKeeper's isThrottleByBytes=true), and raises BookKeeper's 1000000, at which reclaiming space lags far behind deletes (apache/bookkeeper#3524), to 32 MiB/s, a small share of an SSD's bandwidth.",
			bind: func(c *Config) any { return &c.Bookie.CompactionRateByBytes }},

		// Bookie: disks.
		{Name: "diskUsageThreshold", Section: secDisks, roles: bookieRoles, def: "0.95", check: fraction,
			Doc:  "Share of a disk in use at which its ledger directory counts as full; with every directory full the bookie turns read-only.",
			bind: func(c *Config) any { return &c.Bookie.DiskUsageThreshold }},
		{Name: "diskUsageLwmThreshold", Section: secDisks, roles: bookieRoles, def: "0.90", check: fraction,
			Doc:  "Share of a disk in use below which a full directory becomes writable again; at most diskUsageThreshold.",
			bind: func(c *Config) any { return &c.Bookie.DiskUsageLwmThreshold }},
		{Name: "diskCheckInterval", Section: secDisks, roles: bookieRoles, Unit: ms, def: "10000", check: positive,
			Doc:  "How often disk usage is checked, in milliseconds.",
			bind: func(c *Config) any { return &c.Bookie.DiskCheckInterval }},
		{Name: "readOnlyModeEnabled", Section: secDisks, roles: bookieRoles, def: "true",
			Doc:  "When every ledger directory is full, keep serving reads as a read-only bookie instead of shutting down.",
			bind: func(c *Config) any { return &c.Bookie.ReadOnlyModeEnabled }},

		// Logging, metrics and profiling.
		{Name: "logLevel", Section: secTelemetry, roles: allRoles, def: "info", Choices: []string{"debug", "info", "warn", "error"},
			Doc:  "Magnetar's key: least severe log level written.",
			bind: func(c *Config) any { return &c.Telemetry.LogLevel }},
		{Name: "logFormat", Section: secTelemetry, roles: allRoles, def: "text", Choices: []string{"text", "json"},
			Doc:  "Magnetar's key: log line format, key=value text or one JSON object per line.",
			bind: func(c *Config) any { return &c.Telemetry.LogFormat }},
		{Name: "metricsEnabled", Section: secTelemetry, roles: allRoles, def: "true",
			Doc:  "Magnetar's key (BookKeeper calls it enableStatistics): serve Prometheus metrics at /metrics on the HTTP port.",
			bind: func(c *Config) any { return &c.Telemetry.MetricsEnabled }},
		{Name: "exposeTopicLevelMetricsInPrometheus", Section: secTelemetry, roles: brokerRoles, def: "true",
			Doc:  "Export metrics per topic, not only per namespace.",
			bind: func(c *Config) any { return &c.Telemetry.ExposeTopicLevelMetrics }},
		{Name: "exposeConsumerLevelMetricsInPrometheus", Section: secTelemetry, roles: brokerRoles, def: "false",
			Doc:  "Export metrics per consumer (many series on busy topics).",
			bind: func(c *Config) any { return &c.Telemetry.ExposeConsumerLevelMetrics }},
		{Name: "exposeProducerLevelMetricsInPrometheus", Section: secTelemetry, roles: brokerRoles, def: "false",
			Doc:  "Export metrics per producer (many series on busy topics).",
			bind: func(c *Config) any { return &c.Telemetry.ExposeProducerLevelMetrics }},
		{Name: "pprofEnabled", Section: secTelemetry, roles: allRoles, def: "false",
			Doc:  "Magnetar's key: serve Go's profiler at /debug/pprof/ on the HTTP port. Off by default: profiles reveal internals and cost CPU while they run.",
			bind: func(c *Config) any { return &c.Telemetry.PprofEnabled }},
	}
}

// foreignHint explains a spelling from Pulsar, BookKeeper or a common slip
// that Magnetar spells differently or does not have. Such names are not
// accepted, only explained, so that one spelling stays canonical.
func foreignHint(name string, r Role) (string, bool) {
	callsIt := func(key string) (string, bool) { return fmt.Sprintf("Magnetar calls it %q", key), true }
	switch name {
	case "zkServers", "zookeeperServers":
		if r == Bookie {
			return callsIt("metadataServiceUri")
		}
		return callsIt("metadataStoreUrl")
	case "metadataStoreURL", "metadataStoreUri":
		return callsIt("metadataStoreUrl")
	case "configurationStoreServers", "configurationMetadataStore":
		return callsIt("configurationMetadataStoreUrl")
	case "enableStatistics":
		return callsIt("metricsEnabled")
	case "entryLogSizeLimit":
		return callsIt("logSizeLimit")
	case "httpServerPort":
		return callsIt("prometheusStatsHttpPort")
	case "isThrottleByBytes", "compactionRateByEntries":
		return `Magnetar throttles compaction by bytes only: set "compactionRateByBytes"`, true
	case "journalFlushWhenQueueEmpty":
		return "Magnetar's journal always syncs at once when its queue is empty", true
	}
	return "", false
}

func joinChoices(c []string) string { return strings.Join(c, ", ") }
