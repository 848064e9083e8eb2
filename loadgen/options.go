package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"time"

	"github.com/magnetar/magnetar/client"
)

// Errors.
var (
	// ErrInvalidWorkload: a workload that cannot run.
	ErrInvalidWorkload = errors.New("loadgen: invalid workload")
	// ErrInvalidOptions: RunOptions that cannot work.
	ErrInvalidOptions = errors.New("loadgen: invalid options")
	// ErrNotReady: the consumers did not receive the probe messages in
	// time, so the measurement could not start.
	ErrNotReady = errors.New("loadgen: consumers not ready")
)

// Sample is one message's times, for RunOptions.OnSample.
type Sample struct {
	Intended, Sent, Acked time.Time
	Err                   error
}

// RunOptions configure Run. The zero value runs the workload as OMB would,
// against a broker that already serves the topics' partitions.
type RunOptions struct {
	// Interval between progress lines and interval snapshots. Default 10 s
	// (OMB's window).
	Interval time.Duration
	// Warmup overrides the workload's warm-up: zero keeps the workload's
	// (1 minute when it does not say), negative means none.
	Warmup time.Duration
	// Duration overrides the workload's measured length when positive.
	Duration time.Duration
	// MaxMessages, when positive, ends the measurement after this many
	// messages were sent in it (whichever of Duration and MaxMessages comes
	// first).
	MaxMessages int64
	// Out receives one progress line per interval; nil for none.
	Out io.Writer
	// Logger receives setup and shutdown events; nil means slog.Default().
	Logger *slog.Logger

	// Client configures the client's connections.
	Client client.Options
	// Producer is the template of every producer (Topic is set per
	// producer). Zero fields take OMB's Pulsar driver settings: batching
	// with a 1 ms delay and 128 KiB, and MaxPendingMessages 10000.
	Producer client.ProducerOptions
	// SubscriptionType of every subscription: Exclusive, Shared, Failover
	// or Key_Shared. Default Failover (OMB's Pulsar driver).
	SubscriptionType string
	// ReceiverQueueSize of every consumer. Default 10000 (OMB's Pulsar
	// driver).
	ReceiverQueueSize int

	// TopicPrefix names the topics: <prefix>-<7-digit index>-<random>.
	// Default persistent://public/default/loadgen.
	TopicPrefix string
	// CreateTopic creates a partitioned topic before the run (the binary
	// protocol cannot; wire it to the admin API or to an in-process broker).
	// Without it the broker must create partitioned topics on its own.
	CreateTopic func(ctx context.Context, topic string, partitions int) error

	// Payload, when set, is every message's payload (its first 8 bytes are
	// overwritten with the send timestamp); it must be MessageSize bytes.
	Payload []byte
	// PayloadFS is where Workload.PayloadFile is read from.
	PayloadFS fs.FS

	// SpinWait is how long before a send is due its sender stops sleeping
	// and spins (yielding the processor) instead: Go's timers wake a
	// sub-millisecond sleep up to a millisecond late, which would show as
	// send slip. The cost is up to one busy core per sender at rates where
	// sends are less than SpinWait apart. Default 1.2 ms; negative never
	// spins (less CPU, slip of about a millisecond).
	SpinWait time.Duration

	// Senders is the number of sender goroutines sharing the rate schedule
	// (producers are spread over them). Default min(producers, GOMAXPROCS).
	Senders int
	// RateControlPeriod, MaxRateStart and the backlog limits drive max-rate
	// mode (producerRate 0): OMB's 3 s, 10,000 msg/s and 1,000 messages.
	RateControlPeriod   time.Duration
	MaxRateStart        float64
	PublishBacklogLimit int64
	ReceiveBacklogLimit int64

	// ReadyTimeout bounds the wait for consumers to receive the probe
	// messages. Default 60 s (OMB).
	ReadyTimeout time.Duration
	// DrainTimeout bounds the wait, at the end, for receipts of messages in
	// flight and for consumers to catch up. Default 10 s.
	DrainTimeout time.Duration
	// CreateParallelism bounds concurrent topic, producer and consumer
	// creation. Default 64.
	CreateParallelism int

	// OnSample, when set, is called for every message sent in the run
	// (warm-up included) once its receipt or error arrives, on the client's
	// read loop: a hook for tests and traces. It must be quick.
	OnSample func(Sample)
}

// EnsureDefaults fills the zero fields.
func (o *RunOptions) EnsureDefaults() {
	if o.Interval == 0 {
		o.Interval = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Client.Logger == nil {
		o.Client.Logger = o.Logger
	}
	if o.Producer.BatchingMaxDelay == 0 {
		o.Producer.BatchingMaxDelay = time.Millisecond
	}
	if o.Producer.BatchingMaxBytes == 0 {
		o.Producer.BatchingMaxBytes = 128 << 10
	}
	if o.Producer.MaxPendingMessages == 0 {
		o.Producer.MaxPendingMessages = 10000
	}
	if o.SubscriptionType == "" {
		o.SubscriptionType = "Failover"
	}
	if o.ReceiverQueueSize == 0 {
		o.ReceiverQueueSize = 10000
	}
	if o.TopicPrefix == "" {
		o.TopicPrefix = "persistent://public/default/loadgen"
	}
	if o.RateControlPeriod == 0 {
		o.RateControlPeriod = 3 * time.Second
	}
	if o.MaxRateStart == 0 {
		o.MaxRateStart = 10000
	}
	if o.PublishBacklogLimit == 0 {
		o.PublishBacklogLimit = 1000
	}
	if o.ReceiveBacklogLimit == 0 {
		o.ReceiveBacklogLimit = 1000
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = time.Minute
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 10 * time.Second
	}
	if o.SpinWait == 0 {
		o.SpinWait = 1200 * time.Microsecond
	}
	if o.CreateParallelism == 0 {
		o.CreateParallelism = 64
	}
}

// Validate reports options that cannot work.
func (o *RunOptions) Validate() error {
	if _, err := client.ParseSubscriptionType(o.SubscriptionType); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidOptions, err)
	}
	switch {
	case o.Interval <= 0:
		return fmt.Errorf("%w: Interval %v", ErrInvalidOptions, o.Interval)
	case o.Senders < 0 || o.ReceiverQueueSize < 1 || o.CreateParallelism < 1:
		return fmt.Errorf("%w: negative counts", ErrInvalidOptions)
	case o.RateControlPeriod <= 0 || o.MaxRateStart <= 0 || o.ReadyTimeout <= 0 || o.DrainTimeout <= 0:
		return fmt.Errorf("%w: periods, timeouts and the start rate must be positive", ErrInvalidOptions)
	case o.MaxMessages < 0:
		return fmt.Errorf("%w: MaxMessages %d", ErrInvalidOptions, o.MaxMessages)
	}
	return nil
}
