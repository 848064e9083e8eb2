package broker

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/wire/pulsar"
)

// producer is a producer connected to a topic.
//
// Receipts go out in the order of the SENDs: every SEND takes a publishOp
// queued on the producer; the managed ledger confirms adds in order, and a
// duplicate (deduplication) is done at once, so the queue is drained from
// its head as operations complete.
type producer struct {
	id             uint64
	name           string
	userName       bool
	conn           *conn
	topic          *topic
	accessMode     pulsar.ProducerAccessMode
	epoch          uint64
	topicEpoch     uint64
	hasTopicEpoch  bool
	metadata       map[string]string
	schemaVersion  []byte
	connectedSince time.Time
	ready          chan struct{} // WaitForExclusive: closed when it holds the topic
	gone           chan struct{} // closed by close

	in meter

	mu struct {
		sync.Mutex
		closed  bool
		queue   []*publishOp // ring of SENDs awaiting their receipt
		head, n int
		drained chan struct{} // closed when the queue empties after close
	}
}

// publishOp is one SEND on its way to the managed ledger. Ops are pooled.
type publishOp struct {
	p        *producer
	seq      uint64
	dedupSeq int64
	counted  bool // counts for deduplication
	tracked  bool // deduplication is on for this op
	msgs     int32
	size     int64
	pos      base.Position
	err      error
	done     bool
	dup      bool
}

// AddEntryComplete is the managed ledger's confirmation.
func (op *publishOp) AddEntryComplete(pos base.Position, err error) {
	op.p.complete(op, pos, err)
}

// publish sends an entry on: to the managed ledger (or the consumers of a
// non-persistent topic), or back as a duplicate. It takes over eb.
func (p *producer) publish(s *pulsar.CommandSend, eb *bufs.Buf, md *pulsar.MessageMetadata) {
	t := p.topic
	b := t.b
	op := b.ops.Get().(*publishOp)
	*op = publishOp{p: p, seq: s.SequenceID, msgs: max(1, s.NumMessages), size: int64(eb.Len())}
	d := t.dedup.Load()
	if d != nil {
		seq, counted := int64(s.SequenceID), true
		if decodeEntryMetadata(eb.Bytes(), md) == nil {
			seq, counted = dedupSequence(md)
			seq = max(seq, int64(s.SequenceID), int64(s.HighestSequenceID))
		}
		op.dedupSeq, op.counted, op.tracked = seq, counted, true
		if d.check(p.name, seq, counted) {
			op.dup, op.done = true, true
			op.pos = base.Position{Ledger: -1, Entry: -1}
			op.tracked = false
		}
	}
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		eb.Release()
		b.ops.Put(op)
		return
	}
	p.pushLocked(op)
	p.mu.Unlock()
	p.conn.pending.Add(1)
	b.pub.add(op.size)
	t.lastSend.Store(b.opts.Now().UnixMilli())
	switch {
	case op.dup:
		eb.Release()
		p.complete(op, op.pos, nil)
	case t.ml == nil:
		pos := t.publishNonPersistent(eb, op.msgs)
		p.complete(op, pos, nil)
	default:
		t.ml.AddEntry(eb, op)
	}
}

// pushLocked appends op to the ring.
func (p *producer) pushLocked(op *publishOp) {
	q := p.mu.queue
	if p.mu.n == len(q) {
		nq := make([]*publishOp, max(16, 2*len(q)))
		for i := 0; i < p.mu.n; i++ {
			nq[i] = q[(p.mu.head+i)%len(q)]
		}
		p.mu.queue, p.mu.head, q = nq, 0, nq
	}
	q[(p.mu.head+p.mu.n)%len(q)] = op
	p.mu.n++
}

// complete records an op's outcome and sends the receipts that are due, in
// order.
func (p *producer) complete(op *publishOp, pos base.Position, err error) {
	c := p.conn
	b := p.topic.b
	p.mu.Lock()
	op.pos, op.err, op.done = pos, err, true
	for p.mu.n > 0 {
		q := p.mu.queue
		head := q[p.mu.head]
		if !head.done {
			break
		}
		q[p.mu.head] = nil
		p.mu.head = (p.mu.head + 1) % len(q)
		p.mu.n--
		p.finishLocked(head)
		c.publishDone()
		b.pub.sub(head.size)
		b.ops.Put(head)
	}
	if p.mu.n == 0 && p.mu.drained != nil {
		close(p.mu.drained)
		p.mu.drained = nil
	}
	p.mu.Unlock()
}

// finishLocked sends op's receipt (or SEND_ERROR) and accounts for it.
func (p *producer) finishLocked(op *publishOp) {
	t := p.topic
	if op.tracked {
		if d := t.dedup.Load(); d != nil {
			d.completed(p.name, op.dedupSeq, op.counted, op.pos, op.err)
		}
	}
	if op.err != nil {
		code, msg := serverError(op.err)
		if code != pulsar.NotAllowedError && code != pulsar.TopicTerminatedError {
			code = pulsar.PersistenceError
		}
		t.log.Warn("broker: publish failed", "producer", p.name, "sequence", op.seq, "err", op.err)
		var r pulsar.Command
		r.Type = pulsar.TypeSendError
		r.SendError = pulsar.CommandSendError{ProducerID: p.id, SequenceID: op.seq, Error: code, Message: msg}
		p.conn.out.sendCommand(&r)
		return
	}
	if !op.dup {
		p.in.add(int64(op.msgs), op.size)
		t.in.add(int64(op.msgs), op.size)
	}
	o := &p.conn.out
	bt := o.lock()
	if bt == nil {
		return
	}
	r := pulsar.CommandSendReceipt{ProducerID: p.id, SequenceID: op.seq,
		MessageID: pulsar.MessageIDData{LedgerID: uint64(op.pos.Ledger), EntryID: uint64(op.pos.Entry), Partition: -1, BatchIndex: -1}}
	at := len(bt.ctrl)
	bt.ctrl = pulsar.AppendSendReceiptFrame(bt.ctrl, &r)
	o.commit(bt, at)
	o.unlock()
}

// close detaches the producer from its topic. SENDs already accepted still
// get their receipts.
func (p *producer) close() {
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		return
	}
	p.mu.closed = true
	p.mu.Unlock()
	close(p.gone)
	p.topic.removeProducer(p)
}

// closeAndDrain closes the producer and waits until its accepted SENDs
// have their receipts, or timeout.
func (p *producer) closeAndDrain(timeout time.Duration) {
	p.close()
	p.mu.Lock()
	var wait chan struct{}
	if p.mu.n > 0 {
		if p.mu.drained == nil {
			p.mu.drained = make(chan struct{})
		}
		wait = p.mu.drained
	}
	p.mu.Unlock()
	if wait == nil {
		return
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-wait:
	case <-t.C:
	case <-p.conn.ctx.Done():
	}
}

// disconnect closes the producer from the broker's side: the client is told
// with CLOSE_PRODUCER and reconnects.
func (p *producer) disconnect() {
	if !p.conn.removeProducer(p) {
		p.close()
		return
	}
	p.close()
	var r pulsar.Command
	r.Type = pulsar.TypeCloseProducer
	r.CloseProducer = pulsar.CommandCloseProducer{ProducerID: p.id, RequestID: errNoRequestID}
	p.conn.out.sendCommand(&r)
}

// pendingCount is the number of SENDs awaiting their receipt.
func (p *producer) pendingCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.n
}

// handleSend serves SEND: it checks the producer and the size, and
// publishes. It takes over eb.
func (c *conn) handleSend(s *pulsar.CommandSend, eb *bufs.Buf) error {
	p := c.producer(s.ProducerID)
	if p == nil || p.ready != nil && !isClosedChan(p.ready) {
		// A SEND for a producer just closed (the client had it in flight),
		// or one still waiting for exclusive access: dropped, as Pulsar
		// does.
		eb.Release()
		return nil
	}
	// Chunks are cut to fit by the client and exempt, as in Pulsar; the
	// frame size bounds them anyway.
	if !s.IsChunk && eb.Len()-pulsar.EntryHeaderSize > c.b.opts.MaxMessageSize {
		eb.Release()
		c.sendError(s, pulsar.NotAllowedError, "message exceeds the maximum message size")
		return nil
	}
	p.publish(s, eb, &c.md)
	return nil
}

func isClosedChan(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// ---- PRODUCER and CLOSE_PRODUCER ----

// handleProducer serves PRODUCER.
func (c *conn) handleProducer(req *pulsar.CommandProducer) {
	ctx, cancel := c.opContext()
	defer cancel()
	fail := func(err error) {
		code, msg := serverError(err)
		c.sendErrorResponse(req.RequestID, code, msg)
	}
	tn, err := ParseTopicName(req.Topic)
	if err != nil {
		c.sendErrorResponse(req.RequestID, pulsar.InvalidTopicName, err.Error())
		return
	}
	if old := c.producer(req.ProducerID); old != nil {
		if old.topic.name == tn && !old.topic.isClosed() {
			// A retry of a PRODUCER that succeeded.
			c.sendProducerSuccess(req.RequestID, old, true)
			return
		}
		c.sendErrorResponse(req.RequestID, pulsar.ProducerBusy, "a producer with this id is already on the connection")
		return
	}
	var t *topic
	for {
		if t, err = c.b.getTopic(ctx, tn, loadAutoCreate); err != nil {
			fail(err)
			return
		}
		var version []byte
		if req.HasSchema {
			version, err = c.b.reg.getOrCreate(ctx, tn, &req.Schema)
			if err != nil {
				fail(err)
				return
			}
		}
		p := &producer{
			id:             req.ProducerID,
			name:           req.ProducerName,
			userName:       req.UserProvidedProducerName && req.ProducerName != "",
			conn:           c,
			topic:          t,
			accessMode:     req.ProducerAccessMode,
			epoch:          req.Epoch,
			metadata:       kvMap(req.Metadata),
			schemaVersion:  version,
			connectedSince: c.b.opts.Now(),
			gone:           make(chan struct{}),
		}
		if p.name == "" {
			p.name = c.b.generateProducerName()
		}
		if p.accessMode < pulsar.AccessShared || p.accessMode > pulsar.AccessExclusiveWithFencing {
			p.accessMode = pulsar.AccessShared
		}
		if p.accessMode == pulsar.AccessWaitForExclusive {
			p.ready = make(chan struct{})
		}
		// Register on the connection first, so that a CLOSE_PRODUCER that
		// races this request finds it.
		c.mu.Lock()
		if c.mu.closed {
			c.mu.Unlock()
			return
		}
		if c.mu.producers[p.id] != nil {
			c.mu.Unlock()
			c.sendErrorResponse(req.RequestID, pulsar.ProducerBusy, "a producer with this id is already on the connection")
			return
		}
		c.mu.producers[p.id] = p
		c.mu.Unlock()
		ready, err := t.addProducer(p, req.TopicEpoch, req.HasTopicEpoch)
		if errors.Is(err, errTopicClosed) {
			c.removeProducer(p)
			continue
		}
		if err != nil {
			c.removeProducer(p)
			fail(err)
			return
		}
		if ready != nil {
			c.sendProducerSuccess(req.RequestID, p, false)
			select {
			case <-ready:
			case <-p.gone: // CLOSE_PRODUCER, or the topic closed
				return
			case <-c.ctx.Done():
				t.removeProducer(p)
				return
			}
			if c.producer(p.id) != p {
				return // closed while it waited
			}
		}
		c.sendProducerSuccess(req.RequestID, p, true)
		return
	}
}

// sendProducerSuccess answers PRODUCER. The schema version goes out only
// for a producer that gave a schema: the Go client caches a non-empty
// version under its schema and crashes on a nil one.
func (c *conn) sendProducerSuccess(requestID uint64, p *producer, ready bool) {
	last := int64(-1)
	if d := p.topic.dedup.Load(); d != nil {
		last = d.lastPersisted(p.name)
	}
	var r pulsar.Command
	r.Type = pulsar.TypeProducerSuccess
	r.ProducerSuccess = pulsar.CommandProducerSuccess{
		RequestID:      requestID,
		ProducerName:   p.name,
		LastSequenceID: last,
		SchemaVersion:  p.schemaVersion,
		TopicEpoch:     p.topicEpoch,
		HasTopicEpoch:  p.hasTopicEpoch,
		ProducerReady:  ready,
	}
	c.out.sendCommand(&r)
}

// handleCloseProducer serves CLOSE_PRODUCER: the SENDs already accepted get
// their receipts first, as in Pulsar.
func (c *conn) handleCloseProducer(req *pulsar.CommandCloseProducer) {
	p := c.producer(req.ProducerID)
	if p == nil {
		c.sendSuccess(req.RequestID)
		return
	}
	c.removeProducer(p)
	id := req.RequestID
	if p.pendingCount() == 0 {
		p.close()
		c.sendSuccess(id)
		return
	}
	c.async(func() {
		p.closeAndDrain(c.b.opts.OperationTimeout)
		c.sendSuccess(id)
	})
}

func kvMap(kvs []pulsar.KeyValue) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

func (c *conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.closed
}

// ---- The publish budget ----

// publishBudget bounds the bytes of SENDs awaiting persistence across the
// broker. Above the limit the read loops of producing connections wait;
// they resume when half of it is persisted.
type publishBudget struct {
	limit int64
	used  atomic.Int64
	full  atomic.Bool
	mu    sync.Mutex
	ch    chan struct{} // closed when the budget has room again
	open  chan struct{} // always closed
}

func (p *publishBudget) init(limit int64) {
	p.limit = limit
	p.ch = make(chan struct{})
	p.open = make(chan struct{})
	close(p.open)
}

func (p *publishBudget) add(n int64) {
	if p.used.Add(n) > p.limit && p.limit > 0 && !p.full.Load() {
		p.full.Store(true)
	}
}

func (p *publishBudget) sub(n int64) {
	u := p.used.Add(-n)
	if p.full.Load() && u <= p.limit/2 {
		p.mu.Lock()
		if p.full.Load() {
			p.full.Store(false)
			close(p.ch)
			p.ch = make(chan struct{})
		}
		p.mu.Unlock()
	}
}

func (b *Broker) publishBufferFull() bool { return b.pub.limit > 0 && b.pub.full.Load() }

// publishRoom returns a channel closed when the budget has room.
func (b *Broker) publishRoom() <-chan struct{} {
	b.pub.mu.Lock()
	defer b.pub.mu.Unlock()
	if !b.pub.full.Load() {
		return b.pub.open
	}
	return b.pub.ch
}
