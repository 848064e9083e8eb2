package dispatcher

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// SubscriptionType is a subscription's delivery mode. The values are those of
// the Pulsar protocol's CommandSubscribe.SubType.
type SubscriptionType int

// Subscription types.
const (
	// Exclusive: one consumer; a second one is refused with ErrConsumerBusy.
	Exclusive SubscriptionType = 0
	// Shared: every consumer receives a share, round robin by permits.
	Shared SubscriptionType = 1
	// Failover: one active consumer at a time, chosen deterministically;
	// the others take over when it leaves.
	Failover SubscriptionType = 2
	// KeyShared: messages with the same key go to the same consumer, in
	// order.
	KeyShared SubscriptionType = 3
)

func (t SubscriptionType) String() string {
	switch t {
	case Exclusive:
		return "Exclusive"
	case Shared:
		return "Shared"
	case Failover:
		return "Failover"
	case KeyShared:
		return "Key_Shared"
	}
	return fmt.Sprintf("SubscriptionType(%d)", int(t))
}

// singleActive reports whether the type delivers to one consumer at a time.
func (t SubscriptionType) singleActive() bool { return t == Exclusive || t == Failover }

// KeySharedMode is how a Key_Shared subscription assigns key hashes to
// consumers (the protocol's KeySharedMode).
type KeySharedMode int

// Key_Shared modes.
const (
	// AutoSplit: the broker splits the hash space between the consumers by
	// consistent hashing, and rebalances it as they come and go (Pulsar's
	// default).
	AutoSplit KeySharedMode = 0
	// Sticky: every consumer names the hash ranges it serves
	// (ConsumerConfig.HashRanges); ranges may not overlap.
	Sticky KeySharedMode = 1
)

// Defaults, named after the broker.conf keys they mirror.
const (
	DefaultMaxReadBatchSize              = 100     // dispatcherMaxReadBatchSize
	DefaultMaxReadBatchBytes             = 5 << 20 // dispatcherMaxReadSizeBytes
	DefaultMaxRoundRobinBatchSize        = 20      // dispatcherMaxRoundRobinBatchSize
	DefaultMaxUnackedMessagesPerConsumer = 50000   // maxUnackedMessagesPerConsumer
	DefaultKeySharedReplicaPoints        = 100     // subscriptionKeySharedConsistentHashingReplicaPoints
	DefaultMaxReplayEntries              = 100000
	DefaultNegativeAckDelay              = time.Minute
)

// Options configure a Dispatcher. The zero value of every field means its
// default; New calls EnsureDefaults and then Validate.
type Options struct {
	// Type is the subscription type. The zero value is Exclusive.
	Type SubscriptionType
	// Partitioned says the topic is partition PartitionIndex of a
	// partitioned topic. It picks the active consumer of a Failover
	// subscription: the partition index modulo the number of consumers
	// (sorted by priority level, then name). The zero value is a topic that
	// is not a partition: there the first connected consumer is active.
	Partitioned    bool
	PartitionIndex int

	// MaxReadBatchSize bounds the entries of one read from the cursor
	// (dispatcherMaxReadBatchSize). Default 100.
	MaxReadBatchSize int
	// MaxReadBatchBytes bounds the bytes of one read
	// (dispatcherMaxReadSizeBytes). Default 5 MiB.
	MaxReadBatchBytes int64
	// MaxRoundRobinBatchSize is the most messages a Shared subscription
	// sends to one consumer before it moves on to the next
	// (dispatcherMaxRoundRobinBatchSize). Default 20.
	MaxRoundRobinBatchSize int
	// MaxUnackedMessagesPerConsumer pauses delivery to a Shared or
	// Key_Shared consumer that holds this many unacknowledged messages,
	// until it acknowledges half of them (maxUnackedMessagesPerConsumer).
	// Default 50000; negative means no limit.
	MaxUnackedMessagesPerConsumer int
	// MaxReplayEntries bounds the redelivery set of a Shared or Key_Shared
	// subscription: entries that wait for a consumer (redeliveries, and
	// entries read for a key whose consumer has no permits). The set holds
	// positions only (about 48 bytes each), not payloads. While it is full
	// the dispatcher reads no new entries, so a Key_Shared consumer that
	// stops taking messages holds up the others only after this many
	// entries. Default 100000.
	MaxReplayEntries int

	// KeySharedMode and KeySharedReplicaPoints configure Key_Shared:
	// AutoSplit places each consumer at this many points of a consistent
	// hash ring (subscriptionKeySharedConsistentHashingReplicaPoints,
	// default 100).
	KeySharedMode          KeySharedMode
	KeySharedReplicaPoints int
	// AllowOutOfOrderDelivery lets a Key_Shared subscription hand a key to
	// its new consumer before the old one acknowledged that key's messages
	// (the protocol's KeySharedMeta.allowOutOfOrderDelivery).
	AllowOutOfOrderDelivery bool

	// NegativeAckDelay is how long Consumer.NegativeAck waits before it
	// redelivers. Default 1 minute (Pulsar's negativeAckRedeliveryDelay);
	// negative means at once.
	NegativeAckDelay time.Duration

	// ParseEntry extracts what the dispatcher needs from an entry's bytes
	// (its message count, its key hash, whether it is a server-only
	// marker). The dispatcher calls it with its lock held, never
	// concurrently for one dispatcher; a function shared by several
	// dispatchers must be safe for concurrent use. Default: a parser of the
	// Pulsar entry format (NewPulsarEntryParser), one per dispatcher.
	ParseEntry EntryParser

	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger

	// Test seams: the clock of negative-ack delays and read retries, and
	// how a replay read is started (default: on a new goroutine).
	afterFunc func(time.Duration, func()) func() bool
	goAsync   func(func())
}

// ErrBadOptions wraps Validate's errors.
var ErrBadOptions = errors.New("dispatcher: bad options")

// EnsureDefaults fills in zero fields.
func (o *Options) EnsureDefaults() {
	if o.MaxReadBatchSize == 0 {
		o.MaxReadBatchSize = DefaultMaxReadBatchSize
	}
	if o.MaxReadBatchBytes == 0 {
		o.MaxReadBatchBytes = DefaultMaxReadBatchBytes
	}
	if o.MaxRoundRobinBatchSize == 0 {
		o.MaxRoundRobinBatchSize = DefaultMaxRoundRobinBatchSize
	}
	if o.MaxUnackedMessagesPerConsumer == 0 {
		o.MaxUnackedMessagesPerConsumer = DefaultMaxUnackedMessagesPerConsumer
	}
	if o.MaxReplayEntries == 0 {
		o.MaxReplayEntries = DefaultMaxReplayEntries
	}
	if o.KeySharedReplicaPoints == 0 {
		o.KeySharedReplicaPoints = DefaultKeySharedReplicaPoints
	}
	if o.NegativeAckDelay == 0 {
		o.NegativeAckDelay = DefaultNegativeAckDelay
	}
	if o.ParseEntry == nil {
		o.ParseEntry = NewPulsarEntryParser()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.afterFunc == nil {
		o.afterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	if o.goAsync == nil {
		o.goAsync = func(f func()) { go f() }
	}
}

// Validate checks the options after EnsureDefaults.
func (o *Options) Validate() error {
	switch {
	case o.Type < Exclusive || o.Type > KeyShared:
		return fmt.Errorf("%w: unknown subscription type %d", ErrBadOptions, int(o.Type))
	case o.Partitioned && o.PartitionIndex < 0:
		return fmt.Errorf("%w: PartitionIndex %d", ErrBadOptions, o.PartitionIndex)
	case o.MaxReadBatchSize < 1:
		return fmt.Errorf("%w: MaxReadBatchSize %d", ErrBadOptions, o.MaxReadBatchSize)
	case o.MaxReadBatchBytes < 1:
		return fmt.Errorf("%w: MaxReadBatchBytes %d", ErrBadOptions, o.MaxReadBatchBytes)
	case o.MaxRoundRobinBatchSize < 1:
		return fmt.Errorf("%w: MaxRoundRobinBatchSize %d", ErrBadOptions, o.MaxRoundRobinBatchSize)
	case o.MaxReplayEntries < 1:
		return fmt.Errorf("%w: MaxReplayEntries %d", ErrBadOptions, o.MaxReplayEntries)
	case o.KeySharedMode != AutoSplit && o.KeySharedMode != Sticky:
		return fmt.Errorf("%w: unknown KeySharedMode %d", ErrBadOptions, int(o.KeySharedMode))
	case o.KeySharedReplicaPoints < 1:
		return fmt.Errorf("%w: KeySharedReplicaPoints %d", ErrBadOptions, o.KeySharedReplicaPoints)
	}
	return nil
}
