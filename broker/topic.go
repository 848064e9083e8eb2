package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/wire/pulsar"
	"github.com/magnetar/magnetar/managedledger"
)

// topic is a loaded topic: its managed ledger (nil for a non-persistent
// topic), its producers and its subscriptions.
//
// Lock order: topic.mu, then subscription.mu. Neither is held while calling
// a dispatcher, a managed ledger, a connection or a producer.
type topic struct {
	b       *Broker
	name    TopicName
	ml      managedledger.ManagedLedger
	log     *slog.Logger
	created time.Time
	dedup   atomic.Pointer[dedup] // nil: deduplication off

	// subList is the subscriptions, copied on write: the non-persistent
	// publish path reads it without a lock.
	subList atomic.Pointer[[]*subscription]

	in       meter // messages and bytes published
	out      meter // messages and bytes delivered
	npSeq    atomic.Int64
	npDrops  atomic.Int64
	lastSend atomic.Int64 // unix ms of the last publish

	mu struct {
		sync.Mutex
		closed    bool
		producers map[string]*producer
		// Exclusive access: the producer holding the topic, producers
		// waiting for it, and the topic epoch handed to exclusive
		// producers.
		exclusive *producer
		waiting   []*producer
		epoch     uint64
		subs      map[string]*subscription
	}
}

func newTopic(b *Broker, tn TopicName, ml managedledger.ManagedLedger) *topic {
	t := &topic{b: b, name: tn, ml: ml, log: b.log.With("topic", tn.String()), created: b.opts.Now()}
	t.mu.producers = make(map[string]*producer)
	t.mu.subs = make(map[string]*subscription)
	t.subList.Store(&[]*subscription{})
	return t
}

// load prepares a persistent topic: its durable subscriptions and its
// deduplication state.
func (t *topic) load(ctx context.Context) error {
	pol, _, err := t.b.res.policies(ctx, t.name.Tenant, t.name.Namespace)
	if err != nil {
		return err
	}
	var dedupCursor managedledger.Cursor
	for _, c := range t.ml.Cursors() {
		if !c.Durable() {
			continue
		}
		if c.Name() == dedupCursorName {
			dedupCursor = c
			continue
		}
		if isSystemCursor(c.Name()) {
			continue
		}
		t.mu.subs[c.Name()] = newSubscription(t, c.Name(), c)
	}
	t.publishSubs()
	if t.b.dedupEnabled(pol) {
		d := newDedup(t)
		if err := d.recover(ctx); err != nil {
			return err
		}
		t.dedup.Store(d)
	} else if dedupCursor != nil {
		if err := t.ml.DeleteCursor(ctx, dedupCursorName); err != nil && !errors.Is(err, managedledger.ErrNotFound) {
			return err
		}
	}
	return nil
}

// setDedup turns deduplication on or off for a loaded topic.
func (t *topic) setDedup(ctx context.Context, on bool) error {
	if t.ml == nil {
		return nil // non-persistent topics do not deduplicate
	}
	if on {
		if t.dedup.Load() != nil {
			return nil
		}
		d := newDedup(t)
		if err := d.recover(ctx); err != nil {
			return err
		}
		t.dedup.Store(d)
		return nil
	}
	if t.dedup.Swap(nil) == nil {
		return nil
	}
	err := t.ml.DeleteCursor(ctx, dedupCursorName)
	if errors.Is(err, managedledger.ErrNotFound) {
		err = nil
	}
	return err
}

func (t *topic) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.closed
}

// publishSubs republishes the subscription list after a change; t.mu held
// or the topic not yet shared.
func (t *topic) publishSubs() {
	l := make([]*subscription, 0, len(t.mu.subs))
	for _, s := range t.mu.subs {
		l = append(l, s)
	}
	t.subList.Store(&l)
}

// ---- Producers ----

// errTopicClosed: the topic was closed under a request; it gets the topic
// again.
var errTopicClosed = errors.New("broker: topic closed")

// addProducer registers p. It returns whether p may publish now, and for a
// producer waiting for exclusive access a channel that is closed when it
// may (or when it was given up).
func (t *topic) addProducer(p *producer, topicEpoch uint64, hasEpoch bool) (ready chan struct{}, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.closed {
		return nil, errTopicClosed
	}
	if max := t.b.opts.MaxProducersPerTopic; max > 0 && len(t.mu.producers) >= max {
		return nil, errorf(ErrProducerBusy, "topic %s reached its limit of %d producers", t.name, max)
	}
	if old := t.mu.producers[p.name]; old != nil {
		if !old.conn.isClosed() {
			return nil, errorf(ErrProducerBusy, "producer with name '%s' is already connected to topic %s", p.name, t.name)
		}
		t.removeProducerLocked(old)
	}
	switch p.accessMode {
	case pulsar.AccessShared:
		if t.mu.exclusive != nil || len(t.mu.waiting) > 0 {
			return nil, errorf(ErrProducerBusy, "topic %s has an exclusive producer", t.name)
		}
	case pulsar.AccessExclusive, pulsar.AccessExclusiveWithFencing:
		if p.accessMode == pulsar.AccessExclusiveWithFencing {
			for _, old := range t.mu.producers {
				go old.disconnect()
			}
			t.mu.producers = make(map[string]*producer)
			t.mu.exclusive = nil
		}
		if t.mu.exclusive != nil || len(t.mu.producers) > 0 {
			return nil, errorf(ErrProducerFenced, "topic %s has other producers", t.name)
		}
		if hasEpoch && topicEpoch < t.mu.epoch {
			return nil, errorf(ErrProducerFenced, "topic %s epoch moved on to %d (producer has %d)", t.name, t.mu.epoch, topicEpoch)
		}
		t.takeExclusiveLocked(p, topicEpoch, hasEpoch)
	case pulsar.AccessWaitForExclusive:
		if t.mu.exclusive != nil || len(t.mu.producers) > 0 {
			t.mu.waiting = append(t.mu.waiting, p)
			return p.ready, nil
		}
		t.takeExclusiveLocked(p, topicEpoch, hasEpoch)
		close(p.ready)
	}
	t.mu.producers[p.name] = p
	return nil, nil
}

func (t *topic) takeExclusiveLocked(p *producer, epoch uint64, hasEpoch bool) {
	if hasEpoch && epoch >= t.mu.epoch {
		t.mu.epoch = epoch
	} else {
		t.mu.epoch++
	}
	p.topicEpoch = t.mu.epoch
	p.hasTopicEpoch = true
	t.mu.exclusive = p
}

// removeProducer unregisters p and lets a waiting exclusive producer in.
func (t *topic) removeProducer(p *producer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removeProducerLocked(p)
}

func (t *topic) removeProducerLocked(p *producer) {
	if i := slices.Index(t.mu.waiting, p); i >= 0 {
		t.mu.waiting = slices.Delete(t.mu.waiting, i, i+1)
		return
	}
	if t.mu.producers[p.name] == p {
		delete(t.mu.producers, p.name)
	}
	if t.mu.exclusive == p {
		t.mu.exclusive = nil
	}
	if t.mu.exclusive == nil && len(t.mu.producers) == 0 && len(t.mu.waiting) > 0 {
		next := t.mu.waiting[0]
		t.mu.waiting = t.mu.waiting[1:]
		t.takeExclusiveLocked(next, 0, false)
		t.mu.producers[next.name] = next
		close(next.ready)
	}
}

func (t *topic) producers() []*producer {
	t.mu.Lock()
	defer t.mu.Unlock()
	ps := make([]*producer, 0, len(t.mu.producers))
	for _, p := range t.mu.producers {
		ps = append(ps, p)
	}
	return ps
}

// ---- Subscriptions ----

// subscription returns the subscription called name, nil if none.
func (t *topic) subscription(name string) *subscription {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.subs[name]
}

func (t *topic) subscriptions() []*subscription {
	t.mu.Lock()
	defer t.mu.Unlock()
	ss := make([]*subscription, 0, len(t.mu.subs))
	for _, s := range t.mu.subs {
		ss = append(ss, s)
	}
	slices.SortFunc(ss, func(a, b *subscription) int {
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	return ss
}

// getOrCreateSubscription returns the subscription called name, creating
// it (and its cursor) if needed: a durable one at initial, or a
// non-durable one starting after start.
func (t *topic) getOrCreateSubscription(ctx context.Context, name string, durable bool,
	initial managedledger.InitialPosition, start base.Position) (*subscription, error) {
	t.mu.Lock()
	if t.mu.closed {
		t.mu.Unlock()
		return nil, errTopicClosed
	}
	if s := t.mu.subs[name]; s != nil {
		t.mu.Unlock()
		return s, nil
	}
	t.mu.Unlock()
	if isSystemCursor(name) {
		return nil, errorf(ErrNotAllowed, "subscription names starting with \"pulsar.\" are reserved")
	}
	var cur managedledger.Cursor
	if t.ml != nil {
		var err error
		if durable {
			cur, err = t.ml.OpenCursor(ctx, name, initial)
		} else {
			cur, err = t.ml.NewNonDurableCursor(start)
		}
		if err != nil {
			return nil, fmt.Errorf("broker: open cursor %s of %s: %w", name, t.name, err)
		}
	}
	s := newSubscription(t, name, cur)
	s.durable = durable
	t.mu.Lock()
	if t.mu.closed {
		t.mu.Unlock()
		s.closeCursor(ctx)
		return nil, errTopicClosed
	}
	if old := t.mu.subs[name]; old != nil {
		t.mu.Unlock()
		if !durable {
			s.closeCursor(ctx)
		}
		return old, nil
	}
	t.mu.subs[name] = s
	t.publishSubs()
	t.mu.Unlock()
	return s, nil
}

// removeSubscription forgets s.
func (t *topic) removeSubscription(s *subscription) {
	t.mu.Lock()
	if t.mu.subs[s.name] == s {
		delete(t.mu.subs, s.name)
		t.publishSubs()
	}
	t.mu.Unlock()
}

// ---- Publishing ----

// publishNonPersistent hands an entry to the connected consumers of every
// subscription that can take it, and reports its id.
func (t *topic) publishNonPersistent(eb *bufs.Buf, msgs int32) base.Position {
	pos := base.Position{Ledger: 0, Entry: base.EntryID(t.npSeq.Add(1) - 1)}
	subs := *t.subList.Load()
	var md *pulsar.MessageMetadata
	for _, s := range subs {
		if !s.deliverNonPersistent(pos, eb, msgs, &md) {
			t.npDrops.Add(int64(msgs))
		}
	}
	eb.Release()
	return pos
}

// ---- Closing and deleting ----

// close unloads the topic: producers and consumers are disconnected (told
// with CLOSE_PRODUCER and CLOSE_CONSUMER, so that clients reconnect), the
// subscriptions' dispatchers stop and the managed ledger is closed.
// Requests for the topic meanwhile wait, and load it again after.
func (t *topic) close(ctx context.Context) error {
	gate := t.b.fenceTopic(t)
	defer t.b.unfenceTopic(t, gate)
	return t.shutdown(ctx)
}

// shutdown closes the topic (see close) with the registry already fenced.
func (t *topic) shutdown(ctx context.Context) error {
	t.mu.Lock()
	if t.mu.closed {
		t.mu.Unlock()
		return nil
	}
	t.mu.closed = true
	producers := make([]*producer, 0, len(t.mu.producers)+len(t.mu.waiting))
	for _, p := range t.mu.producers {
		producers = append(producers, p)
	}
	producers = append(producers, t.mu.waiting...)
	subs := make([]*subscription, 0, len(t.mu.subs))
	for _, s := range t.mu.subs {
		subs = append(subs, s)
	}
	t.mu.Unlock()
	for _, p := range producers {
		p.disconnect()
	}
	for _, s := range subs {
		s.close(ctx, true)
	}
	if d := t.dedup.Load(); d != nil {
		d.close(ctx)
	}
	if t.ml != nil {
		if err := t.ml.Close(ctx); err != nil && !errors.Is(err, base.ErrClosed) {
			return fmt.Errorf("broker: close topic %s: %w", t.name, err)
		}
	}
	return nil
}

// delete deletes the topic's data. Unless force, it refuses while
// producers or consumers are connected. Disconnected clients that come
// back find the topic gone (or, with automatic creation, a new one).
func (t *topic) delete(ctx context.Context, force bool) error {
	if !force {
		t.mu.Lock()
		busy := len(t.mu.producers) > 0
		for _, s := range t.mu.subs {
			if s.hasConsumers() {
				busy = true
			}
		}
		t.mu.Unlock()
		if busy {
			return errorf(ErrPrecondition, "topic %s has active producers or subscriptions", t.name)
		}
	}
	gate := t.b.fenceTopic(t)
	defer t.b.unfenceTopic(t, gate)
	if err := t.shutdown(ctx); err != nil {
		return err
	}
	if t.ml != nil {
		if err := t.b.ml.Delete(ctx, t.name.ManagedLedgerName()); err != nil && !errors.Is(err, managedledger.ErrNotFound) {
			return fmt.Errorf("broker: delete topic %s: %w", t.name, err)
		}
	}
	if !t.name.IsPartition() {
		if err := t.b.reg.delete(ctx, t.name); err != nil {
			return err
		}
	}
	return nil
}

// updateRates turns the counters into per-second rates.
func (t *topic) updateRates(elapsed float64) {
	t.in.update(elapsed)
	t.out.update(elapsed)
	for _, p := range t.producers() {
		p.in.update(elapsed)
	}
	for _, s := range t.subscriptions() {
		s.updateRates(elapsed)
	}
}
