package dispatcher

import (
	"slices"
	"sync/atomic"

	"github.com/magnetar/magnetar/internal/base"
)

// Consumer is a consumer's membership in a dispatcher: the handle the broker
// calls when the consumer's commands arrive (FLOW, ACK,
// REDELIVER_UNACKNOWLEDGED_MESSAGES, CLOSE_CONSUMER). Its methods are safe
// for concurrent use and never wait for the dispatcher's reads; the ack
// methods call the cursor's Delete or MarkDelete.
type Consumer struct {
	d          *Dispatcher
	sink       Sink
	id         uint64
	name       string
	priority   int
	hashRanges []HashRange
	seq        uint64 // join order
	ringIndex  int    // Key_Shared AutoSplit: index among consumers of the same name
	removed    atomic.Bool

	// Guarded by d.mu.
	started     bool  // a Flow arrived
	permits     int64 // messages the consumer can still take
	window      int64 // the most permits it ever had: its receiver queue, roughly
	stalled     bool  // it could not take the entry it was given: read no more for it until Flow
	unacked     int64 // messages delivered and not acknowledged (Shared, Key_Shared)
	blocked     bool  // unacked reached MaxUnackedMessagesPerConsumer
	notifiedGen uint64

	msgOut, bytesOut, msgRedelivered uint64

	// Runner-only (see Dispatcher.touched).
	touched      bool
	notify       bool
	notifyActive bool
	out          []Delivery
}

// canTake reports whether the consumer may receive an entry of msgs
// messages now. As in Pulsar, a whole entry goes out while the consumer has
// any permits left, and its permits may go negative by the rest of the
// batch: the client grants permits in steps of half its receiver queue,
// counting messages it has consumed, so waiting for permits to cover a
// large batch would make both sides wait forever. The client's receive
// queue holds one slot per entry, so this cannot overflow it.
func (c *Consumer) canTake(msgs int32) bool {
	return c.started && !c.blocked && c.permits > 0
}

// markStalledIfShort records that the consumer could not take an entry of
// msgs messages for want of permits (not because it is blocked): no more is
// read for it until its next Flow.
func (c *Consumer) markStalledIfShort(msgs int32) {
	if c.started && !c.blocked && c.permits > 0 && !c.canTake(msgs) {
		c.stalled = true
	}
}

// ID is the consumer id given to AddConsumer.
func (c *Consumer) ID() uint64 { return c.id }

// Name is the consumer name.
func (c *Consumer) Name() string { return c.name }

// Flow gives the consumer permits more messages (FLOW). Deliveries go out
// at once if entries are waiting, and a read is started for them otherwise.
//
// The dispatcher never sends a consumer more messages than its permits,
// with one exception: an entry (a batch) bigger than the consumer's whole
// window goes out when the consumer has the whole window, and its permits
// go below zero until the next Flows make up for it. Without this a batch
// larger than the receiver queue would block the subscription for good.
func (c *Consumer) Flow(permits uint32) {
	d := c.d
	m := &d.mu
	m.Lock()
	if c.removed.Load() || m.closed {
		m.Unlock()
		return
	}
	c.permits += int64(permits)
	c.window = max(c.window, c.permits)
	c.stalled = false
	if !c.started {
		c.started = true
		if d.opts.Type == Failover {
			m.notifyDirty = true
		}
	}
	if m.replay.len() > 0 {
		m.replayDirty = true
	}
	start := d.scheduleLocked()
	m.Unlock()
	if start {
		d.run()
	}
}

// Ack acknowledges entries individually (ACK, Individual). On Shared and
// Key_Shared subscriptions the entries stop being pending at the consumer
// (acks of entries delivered to another consumer of the subscription count
// as well, as in Pulsar). The acknowledgement itself goes to the cursor;
// its error is returned.
func (c *Consumer) Ack(positions ...base.Position) error {
	d := c.d
	start := false
	if !d.opts.Type.singleActive() {
		m := &d.mu
		m.Lock()
		wake := false
		for _, pos := range positions {
			if rec, ok := m.pending[pos]; ok {
				wake = d.unpendLocked(pos, rec) || wake
			}
		}
		if wake {
			start = d.scheduleLocked()
		}
		m.Unlock()
	}
	err := d.cursor.Delete(positions...)
	if start {
		d.run()
	}
	return err
}

// AckCumulative acknowledges everything up to and including pos (ACK,
// Cumulative) on an Exclusive or Failover subscription. Shared and
// Key_Shared subscriptions refuse it with ErrCumulativeAck, as Pulsar
// ignores it there.
func (c *Consumer) AckCumulative(pos base.Position) error {
	d := c.d
	if !d.opts.Type.singleActive() {
		return ErrCumulativeAck
	}
	err := d.cursor.MarkDelete(pos)
	if err == nil {
		d.mu.Lock()
		d.trimRewindsLocked(pos)
		d.mu.Unlock()
	}
	return err
}

// AckBatchIndexes acknowledges some messages of a batch entry (ACK with an
// ack_set: batchSize messages, of which indexes are acknowledged). When the
// cursor then holds the whole entry acknowledged, it stops being pending.
func (c *Consumer) AckBatchIndexes(pos base.Position, batchSize int, indexes []int) error {
	d := c.d
	if err := d.cursor.DeleteBatchIndexes(pos, batchSize, indexes); err != nil {
		return err
	}
	if d.opts.Type.singleActive() || !d.cursor.IsAcknowledged(pos) {
		return nil
	}
	m := &d.mu
	m.Lock()
	start := false
	if rec, ok := m.pending[pos]; ok && d.unpendLocked(pos, rec) {
		start = d.scheduleLocked()
	}
	m.Unlock()
	if start {
		d.run()
	}
	return nil
}

// RedeliverUnacknowledged redelivers the consumer's unacknowledged entries
// at once (REDELIVER_UNACKNOWLEDGED_MESSAGES): those listed, or all of them
// when positions is empty. On Shared and Key_Shared subscriptions the
// listed entries pending at this consumer go back to the subscription, in
// front of new entries, each with its redelivery count one higher; others
// are ignored. On Exclusive and Failover subscriptions, as in Pulsar, the
// list is ignored: if the consumer is the active one, the cursor rewinds
// to the oldest unacknowledged entry and everything unacknowledged is sent
// again.
func (c *Consumer) RedeliverUnacknowledged(positions []base.Position) {
	c.redeliver(positions, len(positions) == 0)
}

func (c *Consumer) redeliver(positions []base.Position, all bool) {
	d := c.d
	m := &d.mu
	m.Lock()
	if c.removed.Load() || m.closed {
		m.Unlock()
		return
	}
	if d.opts.Type.singleActive() {
		if m.active == c {
			m.rewindWanted = true
		}
	} else if all {
		d.redeliverLocked(c, nil)
	} else {
		d.redeliverLocked(c, positions)
	}
	start := d.scheduleLocked()
	m.Unlock()
	if start {
		d.run()
	}
}

// NegativeAck redelivers the listed entries (all unacknowledged ones if
// positions is empty) after Options.NegativeAckDelay. Pulsar clients delay
// their negative acks themselves and send REDELIVER_UNACKNOWLEDGED_MESSAGES
// when it is time, which the broker passes to RedeliverUnacknowledged; this
// is for the broker's own uses (for example a server-side nack delay).
func (c *Consumer) NegativeAck(positions []base.Position) {
	d := c.d
	if d.opts.NegativeAckDelay < 0 {
		c.RedeliverUnacknowledged(positions)
		return
	}
	positions = slices.Clone(positions)
	all := len(positions) == 0
	d.opts.afterFunc(d.opts.NegativeAckDelay, func() { c.redeliver(positions, all) })
}

// Close removes the consumer (CLOSE_CONSUMER, or its connection is gone).
// On Shared and Key_Shared subscriptions its unacknowledged entries go to
// the other consumers, with their redelivery counts one higher; on Failover
// the next consumer becomes active and starts from the oldest
// unacknowledged entry. Closing twice does nothing.
func (c *Consumer) Close() {
	d := c.d
	m := &d.mu
	m.Lock()
	if c.removed.Load() || m.closed {
		m.Unlock()
		return
	}
	c.removed.Store(true)
	if i := slices.Index(m.consumers, c); i >= 0 {
		m.consumers = slices.Delete(m.consumers, i, i+1)
	}
	if !d.opts.Type.singleActive() {
		d.redeliverLocked(c, nil)
		if m.selector != nil {
			m.selector.remove(c)
		}
	}
	d.consumersChangedLocked()
	start := d.scheduleLocked()
	m.Unlock()
	if start {
		d.run()
	}
}

// HashRanges lists the key hash ranges a Key_Shared consumer serves now
// (nil for other types).
func (c *Consumer) HashRanges() []HashRange {
	m := &c.d.mu
	m.Lock()
	defer m.Unlock()
	if m.selector == nil || c.removed.Load() {
		return nil
	}
	return m.selector.rangesOf(c)
}

// ConsumerStats describes a consumer.
type ConsumerStats struct {
	ID   uint64
	Name string
	// Permits is the consumer's available permits (negative after an entry
	// bigger than its window).
	Permits int64
	// Unacked is the messages delivered and not yet acknowledged (Shared
	// and Key_Shared); Blocked says delivery paused on the unacked limit.
	Unacked int64
	Blocked bool
	// Active: the active consumer of an Exclusive or Failover subscription.
	Active bool
	// MsgOut and BytesOut count what was delivered; MsgRedelivered the
	// messages delivered with a redelivery count above zero.
	MsgOut, BytesOut, MsgRedelivered uint64
}

// Stats returns a snapshot of the consumer's state.
func (c *Consumer) Stats() ConsumerStats {
	m := &c.d.mu
	m.Lock()
	defer m.Unlock()
	return c.statsLocked()
}

func (c *Consumer) statsLocked() ConsumerStats {
	return ConsumerStats{ID: c.id, Name: c.name, Permits: c.permits, Unacked: c.unacked, Blocked: c.blocked,
		Active: c.d.mu.active == c, MsgOut: c.msgOut, BytesOut: c.bytesOut, MsgRedelivered: c.msgRedelivered}
}
