package client

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/wire/pulsar"
)

// Property is a message property.
type Property struct {
	Key, Value string
}

// ProducerMessage is one message to send. The client copies what it needs
// before SendAsync returns, so the caller may reuse Payload at once.
type ProducerMessage struct {
	Payload []byte
	// Key routes the message on a partitioned topic and is its partition
	// key (Key_Shared subscriptions dispatch by it). Empty means none.
	Key        string
	Properties []Property
	// EventTime is stored with millisecond resolution; zero means none.
	EventTime time.Time
	// Opaque is handed back to the SendCallback untouched. It lets a caller
	// find its own per-message data (a send timestamp, a slot index) at
	// acknowledgement time without allocating a closure per message.
	Opaque uint64
}

// MessageID identifies a message: its entry (ledger, entry), its place in a
// batch, and the partition it went to.
type MessageID struct {
	LedgerID uint64
	EntryID  uint64
	// BatchIndex is the message's index in its batch, -1 when the entry is
	// not a batch.
	BatchIndex int32
	// BatchSize is the number of messages in the batch, 0 when the entry is
	// not a batch.
	BatchSize int32
	// Partition is the partition index, -1 on a topic without partitions.
	Partition int32
}

func (id MessageID) String() string {
	return strconv.FormatUint(id.LedgerID, 10) + ":" + strconv.FormatUint(id.EntryID, 10) + ":" +
		strconv.Itoa(int(id.Partition)) + ":" + strconv.Itoa(int(id.BatchIndex))
}

// SendCallback receives the outcome of a SendAsync: the message id on
// success, the message's Opaque value, and the error on failure. It runs on
// the connection's read loop (or, for errors found before sending, on the
// caller's goroutine), must not block, and must not call SendAsync on a
// producer whose queue may be full.
type SendCallback func(id MessageID, opaque uint64, err error)

// Producer publishes to a topic; on a partitioned topic it holds one
// partition producer per partition. It is safe for concurrent use.
type Producer struct {
	cl    *Client
	topic string
	opts  ProducerOptions
	parts []*partProducer
	// Round-robin routing of unkeyed messages: stay on parts[cursor] until
	// its batch was flushed (its flush count moved past cursorFlushes).
	cursor        atomic.Uint32
	cursorFlushes atomic.Uint64
	closed        atomic.Bool
}

// CreateProducer creates a producer on opts.Topic: one PRODUCER per
// partition, each after a lookup of its partition.
func (c *Client) CreateProducer(ctx context.Context, opts ProducerOptions) (*Producer, error) {
	opts.EnsureDefaults(&c.opts)
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
	p := &Producer{cl: c, topic: topic, opts: opts}
	if n == 0 {
		pp, err := c.newPartProducer(ctx, p, topic, -1)
		if err != nil {
			return nil, err
		}
		p.parts = []*partProducer{pp}
		return p, nil
	}
	for i := range n {
		pp, err := c.newPartProducer(ctx, p, PartitionTopicName(topic, i), int32(i))
		if err != nil {
			_ = p.Close()
			return nil, err
		}
		p.parts = append(p.parts, pp)
	}
	return p, nil
}

// Topic is the producer's fully qualified topic.
func (p *Producer) Topic() string { return p.topic }

// Partitions is the number of partitions (0 for a topic without them).
func (p *Producer) Partitions() int {
	if len(p.parts) == 1 && p.parts[0].partition < 0 {
		return 0
	}
	return len(p.parts)
}

// Name is the producer name of the first partition producer (the broker
// names each partition producer).
func (p *Producer) Name() string { return p.parts[0].name }

// SendAsync queues m and returns; cb is called once with the result. While
// the partition producer has MaxPendingMessages pending, SendAsync blocks
// until one is acknowledged or ctx is done (then cb gets ctx's error).
func (p *Producer) SendAsync(ctx context.Context, m ProducerMessage, cb SendCallback) {
	p.route(&m).send(ctx, &m, cb)
}

// Send sends m and waits for its receipt.
func (p *Producer) Send(ctx context.Context, m ProducerMessage) (MessageID, error) {
	type result struct {
		id  MessageID
		err error
	}
	ch := make(chan result, 1)
	pp := p.route(&m)
	pp.send(ctx, &m, func(id MessageID, _ uint64, err error) { ch <- result{id, err} })
	if !pp.batching {
		r := <-ch
		return r.id, r.err
	}
	// A batch waits for its delay; flush so that a lone Send returns soon.
	pp.flush()
	select {
	case r := <-ch:
		return r.id, r.err
	case <-ctx.Done():
		return MessageID{}, ctx.Err()
	}
}

// route picks the partition producer for m.
func (p *Producer) route(m *ProducerMessage) *partProducer {
	n := uint32(len(p.parts))
	if n == 1 {
		return p.parts[0]
	}
	if m.Key != "" {
		return p.parts[keyHash(m.Key)%n]
	}
	cur := p.cursor.Load()
	pp := p.parts[cur%n]
	if !pp.batching || pp.flushes.Load() != p.cursorFlushes.Load() {
		if p.cursor.CompareAndSwap(cur, cur+1) {
			p.cursorFlushes.Store(p.parts[(cur+1)%n].flushes.Load())
		}
		pp = p.parts[(cur+1)%n]
	}
	return pp
}

// Flush sends every open batch and waits until all pending messages are
// acknowledged (or failed), or ctx is done.
func (p *Producer) Flush(ctx context.Context) error {
	for _, pp := range p.parts {
		pp.flush()
	}
	for _, pp := range p.parts {
		if err := pp.waitEmpty(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the producer. Messages not yet acknowledged fail with
// ErrClosed (call Flush first to wait for them).
func (p *Producer) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	var first error
	for _, pp := range p.parts {
		if err := pp.close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// slot is one pending message's completion.
type slot struct {
	cb     SendCallback
	opaque uint64
}

// sentBatch is one SEND awaiting its receipt: n messages whose slots are
// the n oldest pending ones.
type sentBatch struct {
	seq    uint64
	n      int32
	batch  bool  // sent as a batch (num_messages_in_batch present)
	sentAt int64 // client clock
}

// partProducer is the producer of one topic or partition.
type partProducer struct {
	parent    *Producer
	cl        *Client
	conn      *conn
	id        uint64
	topic     string
	partition int32
	name      string
	nameBytes []byte
	batching  bool
	maxPend   int
	flushes   atomic.Uint64 // batches flushed (read by the router)

	kick chan struct{} // capacity 1: a batch was opened
	done chan struct{} // closed by fail

	mu  sync.Mutex
	err error // set once failed or closed
	seq uint64
	// The open batch.
	body       []byte
	batchN     int
	batchSeq   uint64
	batchStart int64
	firstKey   string
	firstProps []pulsar.RawKeyValue
	// Pending messages: slots[head], ..., in send order; sent batches in
	// the same order.
	slots   []slot
	head    int
	pending int
	// completing counts messages taken off the ring whose callbacks are
	// still running; Flush waits for them too.
	completing int
	sent       []sentBatch
	sentHd     int
	sentN      int
	space      chan struct{} // closed when pending shrinks; nil when nobody waits
	md         pulsar.MessageMetadata
	smd        pulsar.SingleMessageMetadata
	props      []pulsar.RawKeyValue
	comp       compressor

	scratch []slot // read loop only: the callbacks of a receipt or send error
}

func (c *Client) newPartProducer(ctx context.Context, parent *Producer, topic string, partition int32) (*partProducer, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	key, err := c.lookup(ctx, topic)
	if err != nil {
		return nil, err
	}
	cn, err := c.getConn(ctx, key)
	if err != nil {
		return nil, err
	}
	o := &parent.opts
	pp := &partProducer{
		parent:    parent,
		cl:        c,
		conn:      cn,
		id:        c.producerID.Add(1),
		topic:     topic,
		partition: partition,
		batching:  !o.DisableBatching && o.BatchingMaxMessages > 1,
		maxPend:   o.MaxPendingMessages,
		kick:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		slots:     make([]slot, o.MaxPendingMessages),
		sent:      make([]sentBatch, o.MaxPendingMessages),
		comp:      compressor{kind: o.Compression, zstd: &c.zstd},
	}
	if err := cn.addProducer(pp); err != nil {
		return nil, err
	}
	id := c.requestID.Add(1)
	var cmd pulsar.Command
	cmd.Type = pulsar.TypeProducer
	cmd.Producer = pulsar.CommandProducer{
		Topic:                    topic,
		ProducerID:               pp.id,
		RequestID:                id,
		ProducerName:             o.Name,
		UserProvidedProducerName: o.Name != "",
	}
	r, err := cn.requestCommand(ctx, id, &cmd)
	if err == nil && r.typ != pulsar.TypeProducerSuccess {
		err = fmt.Errorf("%w: %v in reply to PRODUCER", ErrProtocol, r.typ)
	}
	if err != nil {
		cn.removeProducer(pp.id)
		return nil, fmt.Errorf("create producer on %s: %w", topic, err)
	}
	pp.name = r.producerName
	pp.nameBytes = []byte(r.producerName)
	pp.seq = uint64(r.lastSequenceID + 1)
	if !c.register(pp) {
		pp.fail(ErrClosed)
		return nil, ErrClosed
	}
	go pp.batchTimer()
	return pp, nil
}

// bytesOf views s as bytes without copying; the encoders only read them.
func bytesOf(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// rawProps converts properties for the encoder into p.props (reused).
func (p *partProducer) rawProps(props []Property) []pulsar.RawKeyValue {
	p.props = p.props[:0]
	for _, kv := range props {
		p.props = append(p.props, pulsar.RawKeyValue{Key: []byte(bytesOf(kv.Key)), Value: nonNil(bytesOf(kv.Value))})
	}
	return p.props
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// maxPayload is the largest message the broker accepts, leaving room for
// the metadata.
func (p *partProducer) maxPayload() int { return p.conn.maxMessageSize - 1024 }

func (p *partProducer) send(ctx context.Context, m *ProducerMessage, cb SendCallback) {
	if len(m.Payload) > p.maxPayload() {
		cb(MessageID{}, m.Opaque, fmt.Errorf("%w: %d bytes, the broker accepts %d", ErrMessageTooLarge, len(m.Payload), p.maxPayload()))
		return
	}
	p.mu.Lock()
	for p.err == nil && p.pending >= p.maxPend {
		if p.batchN > 0 {
			p.flushLocked()
			continue
		}
		ch := p.space
		if ch == nil {
			ch = make(chan struct{})
			p.space = ch
		}
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			cb(MessageID{}, m.Opaque, ctx.Err())
			return
		}
		p.mu.Lock()
	}
	if p.batching && p.batchN > 0 && p.err == nil {
		// Room for the record header and its SingleMessageMetadata.
		need := len(m.Payload) + 48 + len(m.Key)
		for _, kv := range m.Properties {
			need += len(kv.Key) + len(kv.Value) + 8
		}
		if len(p.body)+need > p.parent.opts.BatchingMaxBytes {
			p.flushLocked()
		}
	}
	if p.err != nil {
		err := p.err
		p.mu.Unlock()
		cb(MessageID{}, m.Opaque, err)
		return
	}
	seq := p.seq
	p.seq++
	p.slots[(p.head+p.pending)%len(p.slots)] = slot{cb: cb, opaque: m.Opaque}
	p.pending++
	if !p.batching {
		p.sendSingleLocked(m, seq)
		p.mu.Unlock()
		return
	}
	p.smd = pulsar.SingleMessageMetadata{
		Properties:    p.rawProps(m.Properties),
		PartitionKey:  bytesOf(m.Key),
		SequenceID:    seq,
		HasSequenceID: true,
	}
	if !m.EventTime.IsZero() {
		p.smd.EventTime = uint64(m.EventTime.UnixMilli())
	}
	p.body = pulsar.AppendBatchMessage(p.body, &p.smd, m.Payload)
	if p.batchN == 0 {
		p.batchSeq = seq
		p.batchStart = p.cl.now()
		p.firstKey = m.Key
		p.firstProps = append(p.firstProps[:0], p.props...)
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
	p.batchN++
	if p.batchN >= p.parent.opts.BatchingMaxMessages || len(p.body) >= p.parent.opts.BatchingMaxBytes {
		p.flushLocked()
	}
	p.mu.Unlock()
}

// sendSingleLocked sends m alone (batching disabled).
func (p *partProducer) sendSingleLocked(m *ProducerMessage, seq uint64) {
	p.md = pulsar.MessageMetadata{
		ProducerName:     p.nameBytes,
		SequenceID:       seq,
		PublishTime:      uint64(time.Now().UnixMilli()),
		Properties:       p.rawProps(m.Properties),
		PartitionKey:     bytesOf(m.Key),
		Compression:      pulsar.CompressionType(p.comp.kind),
		UncompressedSize: uint32(len(m.Payload)),
	}
	if !m.EventTime.IsZero() {
		p.md.EventTime = uint64(m.EventTime.UnixMilli())
	}
	p.writeLocked(seq, 1, false, m.Payload)
}

// flushLocked sends the open batch.
func (p *partProducer) flushLocked() {
	if p.batchN == 0 || p.err != nil {
		return
	}
	p.md = pulsar.MessageMetadata{
		ProducerName:          p.nameBytes,
		SequenceID:            p.batchSeq,
		PublishTime:           uint64(time.Now().UnixMilli()),
		Properties:            p.firstProps,
		PartitionKey:          bytesOf(p.firstKey),
		Compression:           pulsar.CompressionType(p.comp.kind),
		UncompressedSize:      uint32(len(p.body)),
		NumMessagesInBatch:    int32(p.batchN),
		HasNumMessagesInBatch: true,
	}
	n := p.batchN
	p.batchN = 0
	p.writeLocked(p.batchSeq, n, true, p.body)
	p.body = p.body[:0]
	p.flushes.Add(1)
}

// writeLocked compresses body, frames it as a SEND of n messages starting
// at seq with p.md, queues it on the connection and records it as sent.
func (p *partProducer) writeLocked(seq uint64, n int, batch bool, body []byte) {
	payload, err := p.comp.compress(body)
	if err != nil {
		p.failAsyncLocked(err)
		return
	}
	send := pulsar.CommandSend{ProducerID: p.id, SequenceID: seq, NumMessages: int32(n)}
	size := len(payload) + 160 + len(p.nameBytes) + len(p.md.PartitionKey)
	for _, kv := range p.md.Properties {
		size += len(kv.Key) + len(kv.Value) + 8
	}
	b := bufs.Get(size)
	frame := sealFrame(b, pulsar.AppendSendFrame(b.Bytes()[:0], &send, &p.md, payload))
	i := (p.sentHd + p.sentN) % len(p.sent)
	p.sent[i] = sentBatch{seq: seq, n: int32(n), batch: batch, sentAt: p.cl.now()}
	p.sentN++
	if err := p.conn.enqueue(frame); err != nil {
		p.failAsyncLocked(err)
	}
}

// failAsyncLocked is failLocked for callers that hold the lock to the end:
// the pending callbacks run on a goroutine of their own.
func (p *partProducer) failAsyncLocked(err error) {
	if failed := p.failLocked(err); len(failed) > 0 {
		go func() {
			for _, s := range failed {
				s.cb(MessageID{}, s.opaque, err)
			}
		}()
	}
}

// flush sends the open batch now.
func (p *partProducer) flush() {
	p.mu.Lock()
	p.flushLocked()
	p.mu.Unlock()
}

// batchTimer flushes a batch BatchingMaxDelay after its first message.
func (p *partProducer) batchTimer() {
	if !p.batching {
		return
	}
	delay := int64(p.parent.opts.BatchingMaxDelay)
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-p.kick:
		case <-p.done:
			return
		}
		for {
			p.mu.Lock()
			if p.batchN == 0 {
				p.mu.Unlock()
				break
			}
			wait := p.batchStart + delay - p.cl.now()
			if wait <= 0 {
				p.flushLocked()
				p.mu.Unlock()
				break
			}
			p.mu.Unlock()
			t.Reset(time.Duration(wait))
			select {
			case <-t.C:
			case <-p.done:
				t.Stop()
				return
			}
		}
	}
}

// receipt completes the oldest sent batch (read loop). A receipt for an
// older sequence id is a duplicate and ignored; one for a newer id means
// the broker lost or reordered a SEND, a protocol violation.
func (p *partProducer) receipt(seq uint64, id *pulsar.MessageIDData) error {
	p.mu.Lock()
	if p.sentN == 0 {
		p.mu.Unlock()
		return nil
	}
	b := p.sent[p.sentHd]
	if seq < b.seq {
		p.mu.Unlock()
		return nil
	}
	if seq > b.seq {
		p.mu.Unlock()
		return fmt.Errorf("%w: %s: receipt for sequence %d while %d is the oldest pending", ErrProtocol, p.topic, seq, b.seq)
	}
	p.scratch = p.popLocked(int(b.n), p.scratch[:0])
	p.mu.Unlock()
	mid := MessageID{LedgerID: id.LedgerID, EntryID: id.EntryID, BatchIndex: -1, Partition: p.partition}
	if b.batch {
		mid.BatchSize = b.n
	}
	for i := range p.scratch {
		if b.batch {
			mid.BatchIndex = int32(i)
		}
		s := &p.scratch[i]
		s.cb(mid, s.opaque, nil)
		*s = slot{}
	}
	p.completed(int(b.n))
	return nil
}

// completed ends the completion of n messages whose callbacks ran.
func (p *partProducer) completed(n int) {
	p.mu.Lock()
	p.completing -= n
	if p.completing == 0 && p.pending == 0 && p.space != nil {
		close(p.space)
		p.space = nil
	}
	p.mu.Unlock()
}

// popLocked appends the oldest sent batch's n slots to into and frees
// them.
func (p *partProducer) popLocked(n int, into []slot) []slot {
	p.sentHd = (p.sentHd + 1) % len(p.sent)
	p.sentN--
	for range n {
		s := &p.slots[p.head]
		into = append(into, *s)
		*s = slot{}
		p.head = (p.head + 1) % len(p.slots)
	}
	p.pending -= n
	p.completing += n
	if p.space != nil {
		close(p.space)
		p.space = nil
	}
	return into
}

// sendError fails the batch the broker refused (read loop).
func (p *partProducer) sendError(seq uint64, err error) {
	p.mu.Lock()
	if p.sentN == 0 || p.sent[p.sentHd].seq != seq {
		p.mu.Unlock()
		p.fail(err)
		return
	}
	n := int(p.sent[p.sentHd].n)
	p.scratch = p.popLocked(n, p.scratch[:0])
	p.mu.Unlock()
	for i := range p.scratch {
		s := &p.scratch[i]
		s.cb(MessageID{}, s.opaque, err)
		*s = slot{}
	}
	p.completed(n)
}

// expire fails the sent batches older than the send timeout (janitor).
func (p *partProducer) expire(now int64) {
	timeout := int64(p.parent.opts.SendTimeout)
	if timeout <= 0 {
		return
	}
	p.mu.Lock()
	var failed []slot
	for p.sentN > 0 && now-p.sent[p.sentHd].sentAt >= timeout {
		failed = p.popLocked(int(p.sent[p.sentHd].n), failed)
	}
	p.mu.Unlock()
	if len(failed) == 0 {
		return
	}
	err := fmt.Errorf("%w: %s: no receipt within %v", ErrTimeout, p.topic, p.parent.opts.SendTimeout)
	for _, s := range failed {
		s.cb(MessageID{}, s.opaque, err)
	}
	p.completed(len(failed))
}

// waitEmpty waits until nothing is pending and every callback ran.
func (p *partProducer) waitEmpty(ctx context.Context) error {
	for {
		p.mu.Lock()
		if (p.pending == 0 && p.completing == 0) || p.err != nil {
			p.mu.Unlock()
			return nil
		}
		ch := p.space
		if ch == nil {
			ch = make(chan struct{})
			p.space = ch
		}
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// fail closes the partition producer with err and fails every pending
// message with it.
func (p *partProducer) fail(err error) {
	p.mu.Lock()
	failed := p.failLocked(err)
	p.mu.Unlock()
	for _, s := range failed {
		s.cb(MessageID{}, s.opaque, err)
	}
}

// failLocked marks p failed and returns the pending slots, whose callbacks
// the caller runs after unlocking.
func (p *partProducer) failLocked(err error) []slot {
	if p.err != nil {
		return nil
	}
	p.err = err
	close(p.done)
	failed := make([]slot, 0, p.pending)
	for range p.pending {
		failed = append(failed, p.slots[p.head])
		p.slots[p.head] = slot{}
		p.head = (p.head + 1) % len(p.slots)
	}
	p.pending, p.sentN, p.batchN = 0, 0, 0
	p.body = p.body[:0]
	if p.space != nil {
		close(p.space)
		p.space = nil
	}
	p.cl.unregister(p)
	return failed
}

// close sends CLOSE_PRODUCER and fails what is pending with ErrClosed.
func (p *partProducer) close() error {
	p.mu.Lock()
	failed := p.failLocked(ErrClosed)
	p.mu.Unlock()
	for _, s := range failed {
		s.cb(MessageID{}, s.opaque, ErrClosed)
	}
	if p.conn.closed() {
		return nil
	}
	ctx, cancel := p.cl.opContext(context.Background())
	defer cancel()
	id := p.cl.requestID.Add(1)
	var cmd pulsar.Command
	cmd.Type = pulsar.TypeCloseProducer
	cmd.CloseProducer = pulsar.CommandCloseProducer{ProducerID: p.id, RequestID: id}
	_, err := p.conn.requestCommand(ctx, id, &cmd)
	p.conn.removeProducer(p.id)
	if err != nil && !p.conn.closed() {
		return fmt.Errorf("close producer on %s: %w", p.topic, err)
	}
	return nil
}
