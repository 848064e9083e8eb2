package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/wire/pulsar"
)

// Message is a received message. Messages from Receive own their memory;
// the *Message given to a MessageListener, and every slice it returns, is
// valid only until the listener returns.
type Message struct {
	id           MessageID
	topic        string
	payload      []byte
	key          []byte
	hasKey       bool
	publishTime  uint64 // ms
	eventTime    uint64 // ms
	producerName []byte
	props        []pulsar.RawKeyValue
	redelivery   uint32
	pc           *partConsumer
	acker        *batchAcker
}

// ID is the message's id.
func (m *Message) ID() MessageID { return m.id }

// Topic is the topic (or partition) the message came from.
func (m *Message) Topic() string { return m.topic }

// Payload is the message's payload.
func (m *Message) Payload() []byte { return m.payload }

// Key is the message's partition key ("" when it has none).
func (m *Message) Key() string { return string(m.key) }

// HasKey reports whether the message has a partition key.
func (m *Message) HasKey() bool { return m.hasKey }

// PublishTime is when the producer published the message (millisecond
// resolution, the producer's clock).
func (m *Message) PublishTime() time.Time { return time.UnixMilli(int64(m.publishTime)) }

// EventTime is the message's event time, zero when it has none.
func (m *Message) EventTime() time.Time {
	if m.eventTime == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(m.eventTime))
}

// ProducerName is the name of the producer that published the message.
func (m *Message) ProducerName() string { return string(m.producerName) }

// RedeliveryCount is how often the broker delivered the message before.
func (m *Message) RedeliveryCount() uint32 { return m.redelivery }

// Property returns the value of the property key.
func (m *Message) Property(key string) (string, bool) {
	for _, kv := range m.props {
		if string(kv.Key) == key {
			return string(kv.Value), true
		}
	}
	return "", false
}

// Properties returns the message's properties as a new map.
func (m *Message) Properties() map[string]string {
	out := make(map[string]string, len(m.props))
	for _, kv := range m.props {
		out[string(kv.Key)] = string(kv.Value)
	}
	return out
}

// batchAcker tracks which messages of a batched entry were acknowledged; the
// entry is acknowledged with the last of them.
type batchAcker struct {
	remaining atomic.Int32
	bits      []atomic.Uint64
}

func newBatchAcker(n int) *batchAcker {
	a := &batchAcker{bits: make([]atomic.Uint64, (n+63)/64)}
	a.remaining.Store(int32(n))
	return a
}

// ack marks message i acknowledged and reports whether it was the entry's
// last unacknowledged message. Repeated acks of one message count once.
func (a *batchAcker) ack(i int32) bool {
	if i < 0 || int(i) >= 64*len(a.bits) {
		return false
	}
	bit := uint64(1) << (i % 64)
	if a.bits[i/64].Or(bit)&bit != 0 {
		return false
	}
	return a.remaining.Add(-1) == 0
}

// Consumer receives the messages of one subscription on a topic (every
// partition of a partitioned topic). It is safe for concurrent use.
type Consumer struct {
	cl    *Client
	topic string
	opts  ConsumerOptions
	parts []*partConsumer

	qmu   sync.Mutex
	queue []*Message // queue[qhead:] are waiting for Receive
	qhead int
	qsig  chan struct{} // capacity 1

	paused    atomic.Bool
	done      chan struct{}
	closeOnce sync.Once
	err       atomic.Pointer[error]
}

// Subscribe creates a consumer: a SUBSCRIBE per partition, each after a
// lookup, then FLOW with ReceiverQueueSize permits.
func (c *Client) Subscribe(ctx context.Context, opts ConsumerOptions) (*Consumer, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	topic, err := FullTopicName(opts.Topic)
	if err != nil {
		return nil, err
	}
	n, err := c.TopicPartitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	if opts.Name == "" {
		opts.Name = randomName()
	}
	cons := &Consumer{cl: c, topic: topic, opts: opts, qsig: make(chan struct{}, 1), done: make(chan struct{})}
	names := []string{topic}
	if n > 0 {
		names = names[:0]
		for i := range n {
			names = append(names, PartitionTopicName(topic, i))
		}
	}
	parts := make([]*partConsumer, 0, len(names))
	for i, name := range names {
		partition := int32(i)
		if n == 0 {
			partition = -1
		}
		pc, err := cons.subscribe(ctx, name, partition)
		if err != nil {
			cons.abort(parts, err)
			return nil, err
		}
		parts = append(parts, pc)
	}
	// Published before registering, so the janitor sees the whole set.
	cons.parts = parts
	if !c.registerConsumer(cons) {
		cons.abort(parts, ErrClosed)
		return nil, ErrClosed
	}
	select {
	case <-cons.done: // failed while subscribing
		c.unregisterConsumer(cons)
		err := cons.failure()
		cons.abort(parts, err)
		return nil, err
	default:
	}
	return cons, nil
}

func randomName() string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 5)
	for i := range b {
		b[i] = letters[rand.IntN(len(letters))]
	}
	return string(b)
}

// Topic is the consumer's fully qualified topic.
func (c *Consumer) Topic() string { return c.topic }

// Subscription is the consumer's subscription name.
func (c *Consumer) Subscription() string { return c.opts.Subscription }

// partConsumer consumes one topic or partition.
type partConsumer struct {
	parent    *Consumer
	conn      *conn
	id        uint64
	topic     string
	partition int32
	// permits: messages consumed since the last FLOW
	consumed  atomic.Int64
	threshold int64

	// Read loop only.
	md    pulsar.MessageMetadata
	smd   pulsar.SingleMessageMetadata
	br    pulsar.BatchReader
	dec   decompressor
	msg   Message
	props []pulsar.RawKeyValue

	// Acknowledgements waiting to be sent.
	ackMu         sync.Mutex
	acks          []pulsar.MessageIDData
	cumulative    pulsar.MessageIDData
	hasCumulative bool
	lastAckFlush  int64
	flushMu       sync.Mutex // serialises flushers; guards spare
	spare         []pulsar.MessageIDData
}

func (c *Consumer) subscribe(ctx context.Context, topic string, partition int32) (*partConsumer, error) {
	cl := c.cl
	ctx, cancel := cl.opContext(ctx)
	defer cancel()
	key, err := cl.lookup(ctx, topic)
	if err != nil {
		return nil, err
	}
	cn, err := cl.getConn(ctx, key)
	if err != nil {
		return nil, err
	}
	pc := &partConsumer{
		parent:    c,
		conn:      cn,
		id:        cl.consumerID.Add(1),
		topic:     topic,
		partition: partition,
		threshold: int64(max(1, c.opts.ReceiverQueueSize/2)),
		dec:       decompressor{zstd: &cl.zstd},
	}
	pc.msg.topic, pc.msg.pc = topic, pc
	if err := cn.addConsumer(pc); err != nil {
		return nil, err
	}
	id := cl.requestID.Add(1)
	var cmd pulsar.Command
	cmd.Type = pulsar.TypeSubscribe
	cmd.Subscribe = pulsar.CommandSubscribe{
		Topic:           topic,
		Subscription:    c.opts.Subscription,
		SubType:         pulsar.SubType(c.opts.Type),
		ConsumerID:      pc.id,
		RequestID:       id,
		ConsumerName:    c.opts.Name,
		Durable:         !c.opts.NonDurable,
		InitialPosition: pulsar.InitialPosition(c.opts.InitialPosition),
	}
	r, err := cn.requestCommand(ctx, id, &cmd)
	if err == nil && r.typ != pulsar.TypeSuccess {
		err = fmt.Errorf("%w: %v in reply to SUBSCRIBE", ErrProtocol, r.typ)
	}
	if err != nil {
		cn.removeConsumer(pc.id)
		return nil, fmt.Errorf("subscribe %s on %s: %w", c.opts.Subscription, topic, err)
	}
	pc.lastAckFlush = cl.now()
	if err := pc.sendFlow(uint32(c.opts.ReceiverQueueSize)); err != nil {
		cn.removeConsumer(pc.id)
		return nil, err
	}
	return pc, nil
}

func (pc *partConsumer) sendFlow(n uint32) error {
	b := bufs.Get(64)
	return pc.conn.enqueue(sealFrame(b, pulsar.AppendFlowFrame(b.Bytes()[:0], pc.id, n)))
}

// consumedOne counts a consumed message and grants permits once half the
// receiver queue was consumed.
func (pc *partConsumer) consumedOne() { pc.consumedN(1) }

// consumedN counts k consumed messages (the permits an entry took).
func (pc *partConsumer) consumedN(k int) {
	if k <= 0 {
		return
	}
	n := pc.consumed.Add(int64(k))
	if n >= pc.threshold && !pc.parent.paused.Load() && pc.consumed.CompareAndSwap(n, 0) {
		_ = pc.sendFlow(uint32(min(n, math.MaxUint32)))
	}
}

// Pause stops granting permits: the broker stops pushing once the permits
// already granted (at most ReceiverQueueSize per partition) are used.
func (c *Consumer) Pause() { c.paused.Store(true) }

// Resume grants the permits withheld while paused.
func (c *Consumer) Resume() {
	c.paused.Store(false)
	for _, pc := range c.parts {
		if n := pc.consumed.Swap(0); n > 0 {
			_ = pc.sendFlow(uint32(min(n, math.MaxUint32)))
		}
	}
}

// deliver handles a MESSAGE frame on the read loop.
func (pc *partConsumer) deliver(cm *pulsar.CommandMessage, f *pulsar.Frame) {
	listener := pc.parent.opts.Listener
	if err := pc.md.Decode(f.Metadata); err != nil {
		pc.discard(cm, pulsar.BatchDeSerializeError, err, 1)
		return
	}
	// The broker took as many permits as the metadata says.
	n := pc.md.NumMessages()
	body := f.Body
	if kind := Compression(pc.md.Compression); kind != CompressionNone {
		var err error
		if body, err = pc.dec.decompress(kind, body, int(pc.md.UncompressedSize)); err != nil {
			pc.discard(cm, pulsar.DecompressionError, err, n)
			return
		}
	}
	// Every message of a batch takes at least a 4-byte size and a 2-byte
	// metadata: a larger count is corrupt (and must not size allocations).
	if pc.md.HasNumMessagesInBatch && n > len(body)/6 {
		pc.discard(cm, pulsar.BatchDeSerializeError, fmt.Errorf("%w: %d messages in a %d-byte batch", ErrCorruptMessage, n, len(body)), n)
		return
	}
	if listener == nil {
		// Receive hands messages to other goroutines: copy the entry once
		// and decode the metadata again from the copy.
		own := make([]byte, len(f.Metadata)+len(body))
		copy(own, f.Metadata)
		copy(own[len(f.Metadata):], body)
		if err := pc.md.Decode(own[:len(f.Metadata)]); err != nil {
			pc.discard(cm, pulsar.BatchDeSerializeError, err, n)
			return
		}
		body = own[len(f.Metadata):]
	}
	base := Message{
		id: MessageID{
			LedgerID: cm.MessageID.LedgerID, EntryID: cm.MessageID.EntryID,
			BatchIndex: -1, Partition: pc.partition,
		},
		topic:        pc.topic,
		publishTime:  pc.md.PublishTime,
		producerName: pc.md.ProducerName,
		redelivery:   cm.RedeliveryCount,
		pc:           pc,
	}
	if !pc.md.HasNumMessagesInBatch {
		m := &pc.msg
		if listener == nil {
			m = new(Message)
		}
		*m = base
		m.payload = body
		m.key, m.hasKey = pc.md.PartitionKey, pc.md.PartitionKey != nil
		m.eventTime = pc.md.EventTime
		m.props = pc.md.Properties
		if listener == nil {
			m.props = append([]pulsar.RawKeyValue(nil), m.props...)
		}
		pc.emit(listener, m)
		return
	}
	base.id.BatchSize = int32(n)
	if n > 1 {
		base.acker = newBatchAcker(n)
	}
	var msgs []Message // queue mode: messages allocated in chunks
	pc.br.Reset(body, n)
	done := 0
	for pc.br.Next(&pc.smd) {
		idx := int32(pc.br.Index())
		done++
		if pc.smd.CompactedOut || !ackSetHas(cm.AckSet, idx) {
			// Already acknowledged (batch-index ack) or compacted away.
			if base.acker != nil && base.acker.ack(idx) {
				pc.queueAck(base.id.LedgerID, base.id.EntryID)
			}
			pc.consumedOne()
			continue
		}
		m := &pc.msg
		if listener == nil {
			if len(msgs) == cap(msgs) {
				msgs = make([]Message, 0, min(n-int(idx), 256))
			}
			msgs = msgs[:len(msgs)+1]
			m = &msgs[len(msgs)-1]
		}
		*m = base
		m.id.BatchIndex = idx
		m.payload = pc.br.Payload()
		m.key, m.hasKey = pc.smd.PartitionKey, pc.smd.PartitionKey != nil
		m.eventTime = pc.smd.EventTime
		m.props = pc.smd.Properties
		if listener == nil && len(m.props) > 0 {
			m.props = append([]pulsar.RawKeyValue(nil), m.props...)
		}
		pc.emit(listener, m)
	}
	if err := pc.br.Err(); err != nil {
		pc.parent.cl.log.Warn("client: corrupt batch", "topic", pc.topic, "entry", base.id.String(), "err", err)
		pc.consumedN(n - done)
		if done == 0 {
			pc.queueAckValidation(cm, pulsar.BatchDeSerializeError)
		}
	}
}

// ackSetHas reports whether batch index i is still unacknowledged in a
// MESSAGE's ack set (bit set = unacknowledged); no ack set means all are.
func ackSetHas(set []int64, i int32) bool {
	if len(set) == 0 {
		return true
	}
	w := int(i / 64)
	return w < len(set) && uint64(set[w])&(1<<(i%64)) != 0
}

func (pc *partConsumer) emit(listener MessageListener, m *Message) {
	if listener != nil {
		listener(pc.parent, m)
		pc.consumedOne()
		return
	}
	pc.parent.push(m)
}

// discard drops an entry that cannot be decoded: it is acknowledged with a
// validation error (so the broker does not redeliver it forever), and its
// permits are returned.
func (pc *partConsumer) discard(cm *pulsar.CommandMessage, why pulsar.ValidationError, err error, permits int) {
	pc.parent.cl.log.Warn("client: discarded message", "topic", pc.topic,
		"ledger", cm.MessageID.LedgerID, "entry", cm.MessageID.EntryID, "err", err)
	pc.queueAckValidation(cm, why)
	pc.consumedN(permits)
}

func (pc *partConsumer) queueAckValidation(cm *pulsar.CommandMessage, why pulsar.ValidationError) {
	a := pulsar.CommandAck{
		ConsumerID:         pc.id,
		AckType:            pulsar.AckIndividual,
		MessageIDs:         []pulsar.MessageIDData{pulsar.NewMessageID(cm.MessageID.LedgerID, cm.MessageID.EntryID)},
		ValidationError:    why,
		HasValidationError: true,
	}
	_ = pc.conn.enqueue(bufs.Wrap(pulsar.AppendAckFrame(nil, &a)))
}

// push queues m for Receive.
func (c *Consumer) push(m *Message) {
	c.qmu.Lock()
	c.queue = append(c.queue, m)
	c.qmu.Unlock()
	select {
	case c.qsig <- struct{}{}:
	default:
	}
}

// Receive returns the next message, waiting for one until ctx is done or
// the consumer fails. It must not be used with a Listener.
func (c *Consumer) Receive(ctx context.Context) (*Message, error) {
	for {
		c.qmu.Lock()
		if c.qhead < len(c.queue) {
			m := c.queue[c.qhead]
			c.queue[c.qhead] = nil
			c.qhead++
			more := c.qhead < len(c.queue)
			if !more {
				c.queue, c.qhead = c.queue[:0], 0
			} else if c.qhead > 1024 && c.qhead > len(c.queue)/2 {
				c.queue = c.queue[:copy(c.queue, c.queue[c.qhead:])]
				c.qhead = 0
			}
			c.qmu.Unlock()
			if more {
				select {
				case c.qsig <- struct{}{}:
				default:
				}
			}
			m.pc.consumedOne()
			return m, nil
		}
		c.qmu.Unlock()
		select {
		case <-c.qsig:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.done:
			return nil, c.failure()
		}
	}
}

// failure is why the consumer stopped.
func (c *Consumer) failure() error {
	if e := c.err.Load(); e != nil {
		return *e
	}
	return ErrClosed
}

// Ack acknowledges m. A message of a batch is acknowledged on the broker
// once every message of its batch is.
func (c *Consumer) Ack(m *Message) error {
	if m.pc == nil || m.pc.parent != c {
		return fmt.Errorf("%w: message of another consumer", ErrInvalidOptions)
	}
	if m.acker != nil && !m.acker.ack(m.id.BatchIndex) {
		return nil
	}
	m.pc.queueAck(m.id.LedgerID, m.id.EntryID)
	return nil
}

// AckID acknowledges the entry of id: for a message of a batch, the whole
// batch.
func (c *Consumer) AckID(id MessageID) error {
	pc, err := c.part(id)
	if err != nil {
		return err
	}
	pc.queueAck(id.LedgerID, id.EntryID)
	return nil
}

// AckCumulative acknowledges m and every message before it. It is refused
// on Shared and Key_Shared subscriptions, as in Pulsar. Inside a batch the
// entry itself is acknowledged only with its last message; before that the
// entry before it is.
func (c *Consumer) AckCumulative(m *Message) error {
	if c.opts.Type == Shared || c.opts.Type == KeyShared {
		return fmt.Errorf("%w: cumulative acknowledgement on a %v subscription", ErrInvalidOptions, c.opts.Type)
	}
	if m.pc == nil || m.pc.parent != c {
		return fmt.Errorf("%w: message of another consumer", ErrInvalidOptions)
	}
	ledger, entry := m.id.LedgerID, m.id.EntryID
	if m.id.BatchIndex >= 0 && m.id.BatchIndex < m.id.BatchSize-1 {
		entry-- // wraps to 2^64-1 for entry 0, as the Go client sends it
	}
	pc := m.pc
	pc.ackMu.Lock()
	if !pc.hasCumulative || ledger > pc.cumulative.LedgerID ||
		(ledger == pc.cumulative.LedgerID && entry+1 > pc.cumulative.EntryID+1) {
		pc.cumulative = pulsar.NewMessageID(ledger, entry)
		pc.hasCumulative = true
	}
	pc.ackMu.Unlock()
	return nil
}

func (c *Consumer) part(id MessageID) (*partConsumer, error) {
	if id.Partition < 0 {
		if len(c.parts) == 1 && c.parts[0].partition < 0 {
			return c.parts[0], nil
		}
	} else if int(id.Partition) < len(c.parts) {
		return c.parts[id.Partition], nil
	}
	return nil, fmt.Errorf("%w: message id %v does not belong to %s", ErrInvalidOptions, id, c.topic)
}

// queueAck adds an entry to the grouped acknowledgements.
func (pc *partConsumer) queueAck(ledger, entry uint64) {
	pc.ackMu.Lock()
	pc.acks = append(pc.acks, pulsar.NewMessageID(ledger, entry))
	full := len(pc.acks) >= pc.parent.opts.AckGroupingMaxSize
	pc.ackMu.Unlock()
	if full {
		pc.flushAcks()
	}
}

// flushAcks sends the waiting acknowledgements.
func (pc *partConsumer) flushAcks() {
	pc.flushMu.Lock()
	defer pc.flushMu.Unlock()
	pc.ackMu.Lock()
	ids := pc.acks
	pc.acks = pc.spare[:0]
	cum, hasCum := pc.cumulative, pc.hasCumulative
	pc.hasCumulative = false
	pc.lastAckFlush = pc.parent.cl.now()
	pc.ackMu.Unlock()
	pc.spare = ids
	if len(ids) > 0 {
		a := pulsar.CommandAck{ConsumerID: pc.id, AckType: pulsar.AckIndividual, MessageIDs: ids}
		b := bufs.Get(64 + 32*len(ids))
		_ = pc.conn.enqueue(sealFrame(b, pulsar.AppendAckFrame(b.Bytes()[:0], &a)))
	}
	if hasCum {
		a := pulsar.CommandAck{ConsumerID: pc.id, AckType: pulsar.AckCumulative, MessageIDs: []pulsar.MessageIDData{cum}}
		b := bufs.Get(96)
		_ = pc.conn.enqueue(sealFrame(b, pulsar.AppendAckFrame(b.Bytes()[:0], &a)))
	}
}

// flushAcks sends the waiting acknowledgements of every partition.
func (c *Consumer) flushAcks() {
	for _, pc := range c.parts {
		pc.flushAcks()
	}
}

// tick sends grouped acknowledgements that waited AckGroupingTime
// (janitor).
func (c *Consumer) tick(now int64) {
	for _, pc := range c.parts {
		pc.ackMu.Lock()
		due := (len(pc.acks) > 0 || pc.hasCumulative) && now-pc.lastAckFlush >= int64(c.opts.AckGroupingTime)
		pc.ackMu.Unlock()
		if due {
			pc.flushAcks()
		}
	}
}

// fail stops the consumer with err (its connection failed, or the broker
// closed it).
func (c *Consumer) fail(err error) {
	c.closeOnce.Do(func() {
		c.err.Store(&err)
		close(c.done)
		c.cl.unregisterConsumer(c)
	})
}

// abort undoes a partly created consumer.
func (c *Consumer) abort(parts []*partConsumer, err error) {
	c.fail(err)
	for _, pc := range parts {
		pc.close()
	}
}

// Close flushes the pending acknowledgements, closes the consumer on the
// broker (CLOSE_CONSUMER on each partition) and stops Receive. It must not
// be called from a Listener.
func (c *Consumer) Close() error {
	select {
	case <-c.done:
		return nil
	default:
	}
	c.flushAcks()
	c.fail(ErrClosed)
	var first error
	for _, pc := range c.parts {
		if err := pc.close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (pc *partConsumer) close() error {
	if pc.conn.closed() {
		return nil
	}
	ctx, cancel := pc.parent.cl.opContext(context.Background())
	defer cancel()
	id := pc.parent.cl.requestID.Add(1)
	var cmd pulsar.Command
	cmd.Type = pulsar.TypeCloseConsumer
	cmd.CloseConsumer = pulsar.CommandCloseConsumer{ConsumerID: pc.id, RequestID: id}
	_, err := pc.conn.requestCommand(ctx, id, &cmd)
	pc.conn.removeConsumer(pc.id)
	if err != nil && !pc.conn.closed() && !errors.Is(err, ErrConnectionClosed) {
		return fmt.Errorf("close consumer on %s: %w", pc.topic, err)
	}
	return nil
}
