package dispatcher

import (
	"errors"
	"fmt"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
)

// Sink is the broker's side of one connected consumer: where the dispatcher
// puts the entries and notifications meant for it. The broker implements it
// over the consumer's connection.
//
// Rules (the dispatcher's promises, and what it expects back):
//
//   - Calls to one dispatcher's sinks are serialized: no two run at once, and
//     a consumer receives its deliveries in the order the dispatcher made
//     them. They happen without any dispatcher lock held, so a sink may call
//     back into the dispatcher (for example Consumer.Close when it finds its
//     connection gone).
//   - A sink must not block: it queues the work for its connection's write
//     loop and returns. The queue needs no other bound than the consumer's
//     permits: the dispatcher never sends more messages than the consumer
//     asked for with Flow (see Consumer.Flow for the one exception, an entry
//     larger than the consumer's whole window).
//   - Nothing reaches a sink before the consumer's first Flow. The Go client
//     sends FLOW only after SUBSCRIBE's SUCCESS, so an
//     ACTIVE_CONSUMER_CHANGE written by ActiveConsumerChanged always follows
//     the SUCCESS, as the client needs.
//   - A round of deliveries that was under way when Consumer.Close returned
//     may still reach the sink once after it; the sink then releases the
//     buffers (the dispatcher already counted those entries as unacked and
//     redelivers them to other consumers).
type Sink interface {
	// Deliver hands over entries for the consumer. For each one the sink
	// writes a MESSAGE command (consumer id, message id Pos, redelivery
	// count) followed by the entry's bytes, in one vectored write, and then
	// releases Data. The sink owns one reference to each Data; the slice
	// itself is reused by the dispatcher after Deliver returns, so the sink
	// copies the Delivery values it keeps.
	Deliver(batch []Delivery)
	// ActiveConsumerChanged tells a consumer of a Failover subscription
	// whether it is now the active one (ACTIVE_CONSUMER_CHANGE). Every
	// consumer is told when the active consumer changes, and a new consumer
	// is told its state after its first Flow.
	ActiveConsumerChanged(active bool)
}

// Delivery is one entry sent to one consumer.
type Delivery struct {
	// Pos is the entry's position: the message id's ledger and entry.
	Pos base.Position
	// Data is the stored entry, from the 0x0e01 magic to the end, exactly
	// as the producer sent it. The sink owns one reference and releases it
	// once the bytes are written (or the connection is gone).
	Data *bufs.Buf
	// NumMessages is the number of messages in the entry: the permits it
	// took.
	NumMessages int32
	// RedeliveryCount is how many times the entry was delivered to this
	// subscription before (CommandMessage.redelivery_count).
	RedeliveryCount uint32
}

// ConsumerConfig describes a consumer joining a subscription.
type ConsumerConfig struct {
	// ID is the consumer id of the protocol (unique per connection); the
	// dispatcher only reports it back in stats and errors.
	ID uint64
	// Name is the consumer name. Failover orders consumers by it, and
	// Key_Shared AutoSplit places a consumer on its hash ring by it, so a
	// consumer that reconnects under the same name gets the same keys.
	Name string
	// PriorityLevel: lower values are served first. Failover picks its
	// active consumer among the lowest level; Shared sends to the lowest
	// level that has a consumer with permits; Key_Shared ignores it.
	PriorityLevel int
	// HashRanges are the key hash ranges the consumer serves in a
	// Key_Shared subscription in Sticky mode; ignored otherwise.
	HashRanges []HashRange
}

// HashRange is an inclusive range of key hashes, within 0..65535.
type HashRange struct {
	Start, End uint32
}

func (r HashRange) String() string { return fmt.Sprintf("[%d, %d]", r.Start, r.End) }

// Errors of the dispatcher, tested with errors.Is.
var (
	// ErrConsumerBusy: a second consumer tried to join an Exclusive
	// subscription. The broker answers SUBSCRIBE with ConsumerBusy.
	ErrConsumerBusy = errors.New("dispatcher: exclusive consumer is already connected")
	// ErrConsumerAssign: a Key_Shared Sticky consumer named no range, an
	// invalid one, or one that overlaps another consumer's. The broker
	// answers SUBSCRIBE with ConsumerAssignError.
	ErrConsumerAssign = errors.New("dispatcher: cannot assign the key hash ranges")
	// ErrClosed: the dispatcher was closed.
	ErrClosed = fmt.Errorf("dispatcher: %w", base.ErrClosed)
	// ErrCumulativeAck: a cumulative acknowledgement on a Shared or
	// Key_Shared subscription, which Pulsar ignores; nothing was acked.
	ErrCumulativeAck = errors.New("dispatcher: cumulative acknowledgement is not allowed on a shared subscription")
)
