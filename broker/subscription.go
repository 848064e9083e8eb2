package broker

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magnetar/magnetar/dispatcher"
	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/wire/pulsar"
	"github.com/magnetar/magnetar/managedledger"
)

// errSubscriptionClosed: the subscription was closed under a request,
// which gets it again.
var errSubscriptionClosed = errors.New("broker: subscription closed")

// subscription is a topic's subscription: on a persistent topic a cursor
// and the dispatcher that delivers from it; on a non-persistent topic the
// consumers that receive what is published while they are connected.
//
// Lock order: topic.mu, subscription.mu, then the dispatcher's. The
// dispatcher's calls to sinks take no subscription lock, so s.mu may be held
// while adding or removing a dispatcher consumer.
type subscription struct {
	t       *topic
	name    string
	durable bool
	cursor  managedledger.Cursor // nil on a non-persistent topic
	created time.Time

	// batchAcks is set once a consumer acknowledged batch indexes: from
	// then on deliveries carry the entry's ack set.
	batchAcks atomic.Bool
	out       meter
	redeliver meter

	mu struct {
		sync.Mutex
		closed    bool
		hasType   bool
		subType   pulsar.SubType
		ksMode    pulsar.KeySharedMode
		disp      *dispatcher.Dispatcher
		consumers []*consumer
		resetting int
		rr        int // non-persistent round robin
	}
}

func newSubscription(t *topic, name string, cur managedledger.Cursor) *subscription {
	return &subscription{t: t, name: name, cursor: cur, created: t.b.opts.Now(), durable: cur != nil && cur.Durable()}
}

func (s *subscription) hasConsumers() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mu.consumers) > 0
}

func (s *subscription) consumers() []*consumer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.mu.consumers)
}

// subType is the subscription's type (Exclusive until a consumer says).
func (s *subscription) subType() pulsar.SubType {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.subType
}

// dispatcherOptions are the options of the subscription's dispatcher for
// consumers of type st.
func (s *subscription) dispatcherOptions(st pulsar.SubType, ks *pulsar.KeySharedMeta) dispatcher.Options {
	o := s.t.b.opts
	opts := dispatcher.Options{
		Type:                          dispatcher.SubscriptionType(st),
		Partitioned:                   s.t.name.IsPartition(),
		PartitionIndex:                max(0, s.t.name.Partition),
		MaxReadBatchSize:              o.DispatcherMaxReadBatchSize,
		MaxReadBatchBytes:             o.DispatcherMaxReadSizeBytes,
		MaxRoundRobinBatchSize:        o.DispatcherMaxRoundRobinBatchSize,
		MaxUnackedMessagesPerConsumer: o.MaxUnackedMessagesPerConsumer,
		Logger:                        s.t.log,
	}
	if ks != nil {
		opts.KeySharedMode = dispatcher.KeySharedMode(ks.Mode)
		opts.AllowOutOfOrderDelivery = ks.AllowOutOfOrderDelivery
	}
	return opts
}

// addConsumer joins cs to the subscription. A consumer of another type
// than the connected ones is refused with ConsumerBusy, as in Pulsar.
func (s *subscription) addConsumer(cs *consumer, req *pulsar.CommandSubscribe) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return errSubscriptionClosed
	}
	o := s.t.b.opts
	if max := o.MaxConsumersPerSubscription; max > 0 && len(s.mu.consumers) >= max {
		return errorf(ErrConsumerBusy, "subscription %s reached its limit of %d consumers", s.name, max)
	}
	if len(s.mu.consumers) > 0 {
		if s.mu.subType != req.SubType {
			return errorf(ErrConsumerBusy, "subscription %s is of type %v, not %v", s.name, s.mu.subType, req.SubType)
		}
		if req.SubType == pulsar.SubExclusive {
			return errorf(ErrConsumerBusy, "exclusive consumer is already connected to subscription %s", s.name)
		}
	}
	var ks *pulsar.KeySharedMeta
	if req.HasKeySharedMeta {
		ks = &req.KeySharedMeta
	}
	if s.cursor == nil {
		s.mu.subType, s.mu.hasType = req.SubType, true
		s.mu.consumers = append(s.mu.consumers, cs)
		return nil
	}
	if s.mu.disp == nil || s.mu.subType != req.SubType ||
		req.SubType == pulsar.SubKeyShared && len(s.mu.consumers) == 0 && ks != nil && ks.Mode != s.mu.ksMode {
		if s.mu.disp != nil {
			// Close returns once the old dispatcher's read is over; what
			// it read and did not get acknowledged is read again.
			s.mu.disp.Close()
			s.cursor.Rewind()
		}
		d, err := dispatcher.New(s.cursor, s.dispatcherOptions(req.SubType, ks))
		if err != nil {
			return err
		}
		s.mu.disp = d
		s.mu.ksMode = pulsar.KeySharedAutoSplit
		if ks != nil {
			s.mu.ksMode = ks.Mode
		}
	}
	s.mu.subType, s.mu.hasType = req.SubType, true
	cfg := dispatcher.ConsumerConfig{ID: cs.id, Name: cs.name, PriorityLevel: int(req.PriorityLevel)}
	if ks != nil {
		for _, r := range ks.HashRanges {
			cfg.HashRanges = append(cfg.HashRanges, dispatcher.HashRange{Start: uint32(r.Start), End: uint32(r.End)})
		}
	}
	dc, err := s.mu.disp.AddConsumer(cs, cfg)
	switch {
	case errors.Is(err, dispatcher.ErrConsumerBusy):
		return errorf(ErrConsumerBusy, "exclusive consumer is already connected to subscription %s", s.name)
	case errors.Is(err, dispatcher.ErrConsumerAssign):
		return &Error{Code: pulsar.ConsumerAssignError, Status: 409, Message: err.Error(), cause: err}
	case errors.Is(err, dispatcher.ErrClosed):
		return errSubscriptionClosed
	case err != nil:
		return err
	}
	cs.dc.Store(dc)
	s.mu.consumers = append(s.mu.consumers, cs)
	return nil
}

// removeConsumer takes cs out. A non-durable subscription left without
// consumers goes away, unless keep (a seek disconnects the consumers and
// waits for them to come back).
func (s *subscription) removeConsumer(cs *consumer, keep bool) {
	s.mu.Lock()
	if i := slices.Index(s.mu.consumers, cs); i >= 0 {
		s.mu.consumers = slices.Delete(s.mu.consumers, i, i+1)
	}
	empty := len(s.mu.consumers) == 0 && !s.mu.closed && s.mu.resetting == 0
	s.mu.Unlock()
	if empty && !s.durable && !keep {
		ctx, cancel := context.WithTimeout(s.t.b.ctx, s.t.b.opts.OperationTimeout)
		defer cancel()
		s.t.removeSubscription(s)
		s.close(ctx, false)
	}
}

// dispatcherLocked returns the subscription's dispatcher, making an
// Exclusive one if it has none.
func (s *subscription) dispatcherLocked() (*dispatcher.Dispatcher, error) {
	if s.mu.disp == nil {
		d, err := dispatcher.New(s.cursor, s.dispatcherOptions(s.mu.subType, nil))
		if err != nil {
			return nil, err
		}
		s.mu.disp = d
	}
	return s.mu.disp, nil
}

// resetCursor moves the subscription to pos (SEEK, admin reset): the
// consumers are disconnected first, as in Pulsar, so that they come back
// and read from pos.
func (s *subscription) resetCursor(ctx context.Context, pos base.Position) error {
	if s.cursor == nil {
		return errorf(ErrNotAllowed, "a non-persistent subscription cannot be reset")
	}
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return errSubscriptionClosed
	}
	s.mu.resetting++
	consumers := slices.Clone(s.mu.consumers)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.mu.resetting--
		s.mu.Unlock()
	}()
	for _, cs := range consumers {
		cs.disconnect(true)
	}
	s.mu.Lock()
	d, err := s.dispatcherLocked()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return d.ResetCursor(ctx, pos)
}

// skip acknowledges the next n unacknowledged entries.
func (s *subscription) skip(ctx context.Context, n int64) error {
	if s.cursor == nil {
		return errorf(ErrNotAllowed, "a non-persistent subscription has no backlog")
	}
	return s.cursor.SkipEntries(ctx, n)
}

// clearBacklog acknowledges everything.
func (s *subscription) clearBacklog(ctx context.Context) error {
	if s.cursor == nil {
		return nil
	}
	last := s.t.ml.LastConfirmed()
	if last.Entry < 0 && last.Ledger <= 0 {
		return nil
	}
	return s.cursor.MarkDelete(last)
}

// close stops the subscription. With disconnect, its consumers are told
// (CLOSE_CONSUMER) so that they reconnect; a non-durable cursor is closed
// (a durable one is closed with its managed ledger, or deleted).
func (s *subscription) close(ctx context.Context, disconnect bool) {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return
	}
	s.mu.closed = true
	consumers := slices.Clone(s.mu.consumers)
	d := s.mu.disp
	s.mu.Unlock()
	for _, cs := range consumers {
		if disconnect {
			cs.disconnect(false)
		} else {
			cs.close(false)
		}
	}
	if d != nil {
		d.Close()
	}
	if !s.durable {
		s.closeCursor(ctx)
	}
}

func (s *subscription) closeCursor(ctx context.Context) {
	if s.cursor != nil {
		_ = s.cursor.Close(ctx)
	}
}

// delete removes the subscription and its cursor (UNSUBSCRIBE, admin).
// Unless force, connected consumers other than except make it fail.
func (s *subscription) delete(ctx context.Context, force bool, except *consumer) error {
	s.mu.Lock()
	for _, cs := range s.mu.consumers {
		if cs != except && !force {
			s.mu.Unlock()
			return errorf(ErrPrecondition, "subscription %s has active consumers", s.name)
		}
	}
	s.mu.Unlock()
	if except != nil {
		if except.conn.removeConsumer(except) {
			except.close(true)
		}
	}
	s.t.removeSubscription(s)
	s.close(ctx, true)
	if s.durable && s.t.ml != nil {
		if err := s.t.ml.DeleteCursor(ctx, s.name); err != nil && !errors.Is(err, managedledger.ErrNotFound) {
			return err
		}
	}
	return nil
}

// deliverNonPersistent hands an entry of a non-persistent topic to one
// consumer that has the permits (or, Exclusive and Failover, the first
// consumer). It reports false when no consumer could take it.
func (s *subscription) deliverNonPersistent(pos base.Position, eb *bufs.Buf, msgs int32, md **pulsar.MessageMetadata) bool {
	s.mu.Lock()
	cs := s.pickNonPersistentLocked(eb, msgs, md)
	s.mu.Unlock()
	if cs == nil {
		return false
	}
	eb.Retain()
	cs.deliverOne(pos, eb, msgs)
	return true
}

func (s *subscription) pickNonPersistentLocked(eb *bufs.Buf, msgs int32, md **pulsar.MessageMetadata) *consumer {
	cs := s.mu.consumers
	if len(cs) == 0 {
		return nil
	}
	take := func(c *consumer) bool {
		if c.npPermits.Load() < int64(msgs) {
			return false
		}
		c.npPermits.Add(-int64(msgs))
		return true
	}
	switch s.mu.subType {
	case pulsar.SubExclusive, pulsar.SubFailover:
		if take(cs[0]) {
			return cs[0]
		}
	case pulsar.SubKeyShared:
		if *md == nil {
			*md = new(pulsar.MessageMetadata)
		}
		key := []byte("NONE_KEY")
		if decodeEntryMetadata(eb.Bytes(), *md) == nil {
			if (*md).OrderingKey != nil {
				key = (*md).OrderingKey
			} else if (*md).PartitionKey != nil {
				key = (*md).PartitionKey
			}
		}
		c := cs[int(dispatcher.StickyKeyHash(key))%len(cs)]
		if take(c) {
			return c
		}
	default:
		for i := 0; i < len(cs); i++ {
			c := cs[(s.mu.rr+i)%len(cs)]
			if take(c) {
				s.mu.rr = (s.mu.rr + i + 1) % len(cs)
				return c
			}
		}
	}
	return nil
}

// updateRates turns counters into rates.
func (s *subscription) updateRates(elapsed float64) {
	s.out.update(elapsed)
	s.redeliver.update(elapsed)
	for _, cs := range s.consumers() {
		cs.out.update(elapsed)
	}
}
