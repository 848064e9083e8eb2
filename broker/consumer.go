package broker

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"time"

	"github.com/magnetar/magnetar/dispatcher"
	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/wire/pulsar"
	"github.com/magnetar/magnetar/managedledger"
)

// consumer is a consumer connected to a subscription. On a persistent
// topic it is the dispatcher's Sink: deliveries become MESSAGE frames
// (header encoded into the connection's queue, the stored entry appended
// by reference) written by the connection's write loop.
type consumer struct {
	id             uint64
	name           string
	conn           *conn
	sub            *subscription
	partition      int32
	priority       int32
	metadata       map[string]string
	connectedSince time.Time

	dc        atomic.Pointer[dispatcher.Consumer] // persistent topics
	npPermits atomic.Int64                        // non-persistent topics
	closed    atomic.Bool
	out       meter
}

var _ dispatcher.Sink = (*consumer)(nil)

// Deliver writes MESSAGE frames for the entries (dispatcher.Sink).
func (cs *consumer) Deliver(batch []dispatcher.Delivery) {
	var ackSets [][]int64
	if cs.sub.batchAcks.Load() {
		ackSets = cs.ackSets(batch)
	}
	o := &cs.conn.out
	b := o.lock()
	if b == nil || cs.closed.Load() {
		if b != nil {
			o.mu.Unlock()
		}
		for i := range batch {
			batch[i].Data.Release()
		}
		return
	}
	var msgs, bytes int64
	var redelivered int64
	m := pulsar.CommandMessage{ConsumerID: cs.id}
	for i := range batch {
		d := &batch[i]
		m.MessageID = pulsar.MessageIDData{LedgerID: uint64(d.Pos.Ledger), EntryID: uint64(d.Pos.Entry),
			Partition: cs.partition, BatchIndex: -1}
		m.RedeliveryCount = d.RedeliveryCount
		m.AckSet = nil
		if ackSets != nil {
			m.AckSet = ackSets[i]
		}
		at := len(b.ctrl)
		b.ctrl = pulsar.AppendMessageHeader(b.ctrl, &m, nil, d.Data.Len())
		o.commit(b, at)
		n := d.Data.Len()
		o.addBuf(b, d.Data)
		msgs += int64(d.NumMessages)
		bytes += int64(n)
		if d.RedeliveryCount > 0 {
			redelivered += int64(d.NumMessages)
		}
	}
	o.unlock()
	cs.out.add(msgs, bytes)
	cs.sub.out.add(msgs, bytes)
	cs.sub.t.out.add(msgs, bytes)
	if redelivered > 0 {
		cs.sub.redeliver.add(redelivered, 0)
	}
}

// ackSets computes, for deliveries of partly acknowledged batches, the ack
// set telling the client which messages to skip (bit i set: message i is
// still unacknowledged).
func (cs *consumer) ackSets(batch []dispatcher.Delivery) [][]int64 {
	cur := cs.sub.cursor
	var sets [][]int64
	for i := range batch {
		d := &batch[i]
		acked := cur.AckedBatchIndexes(d.Pos)
		if len(acked) == 0 || d.NumMessages <= 1 {
			continue
		}
		if sets == nil {
			sets = make([][]int64, len(batch))
		}
		n := int(d.NumMessages)
		words := make([]int64, (n+63)/64)
		for j := 0; j < n; j++ {
			words[j/64] |= 1 << (j % 64)
		}
		for _, j := range acked {
			if j >= 0 && j < n {
				words[j/64] &^= 1 << (j % 64)
			}
		}
		sets[i] = words
	}
	return sets
}

// ActiveConsumerChanged writes ACTIVE_CONSUMER_CHANGE (dispatcher.Sink).
func (cs *consumer) ActiveConsumerChanged(active bool) {
	if cs.closed.Load() {
		return
	}
	var r pulsar.Command
	r.Type = pulsar.TypeActiveConsumerChange
	r.ActiveConsumerChange = pulsar.CommandActiveConsumerChange{ConsumerID: cs.id, IsActive: active}
	cs.conn.out.sendCommand(&r)
}

// deliverOne writes one MESSAGE of a non-persistent topic; it takes over
// eb's reference.
func (cs *consumer) deliverOne(pos base.Position, eb *bufs.Buf, msgs int32) {
	cs.Deliver([]dispatcher.Delivery{{Pos: pos, Data: eb, NumMessages: msgs}})
}

// flow gives the consumer permits.
func (cs *consumer) flow(n uint32) {
	if dc := cs.dc.Load(); dc != nil {
		dc.Flow(n)
		return
	}
	cs.npPermits.Add(int64(n))
}

// close removes the consumer from its subscription (keep: see
// subscription.removeConsumer). Closing twice does nothing.
func (cs *consumer) close(keep bool) {
	if !cs.closed.CompareAndSwap(false, true) {
		return
	}
	if dc := cs.dc.Load(); dc != nil {
		dc.Close()
	}
	cs.sub.removeConsumer(cs, keep)
}

// disconnect closes the consumer from the broker's side: the client is told
// with CLOSE_CONSUMER, and reconnects.
func (cs *consumer) disconnect(keep bool) {
	cs.close(keep)
	if cs.conn.removeConsumer(cs) {
		var r pulsar.Command
		r.Type = pulsar.TypeCloseConsumer
		r.CloseConsumer = pulsar.CommandCloseConsumer{ConsumerID: cs.id, RequestID: errNoRequestID}
		cs.conn.out.sendCommand(&r)
	}
}

// ---- Commands ----

func idPosition(id *pulsar.MessageIDData) base.Position {
	return base.Position{Ledger: base.LedgerID(int64(id.LedgerID)), Entry: base.EntryID(int64(id.EntryID))}
}

// handleSubscribe serves SUBSCRIBE.
func (c *conn) handleSubscribe(req *pulsar.CommandSubscribe) {
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
	if req.Subscription == "" {
		c.sendErrorResponse(req.RequestID, pulsar.NotAllowedError, "empty subscription name")
		return
	}
	if old := c.consumer(req.ConsumerID); old != nil {
		if old.sub.t.name == tn && old.sub.name == req.Subscription && !old.closed.Load() {
			c.sendSuccess(req.RequestID)
			return
		}
		c.sendErrorResponse(req.RequestID, pulsar.ConsumerBusy, "a consumer with this id is already on the connection")
		return
	}
	mode := loadAutoCreate
	if !req.ForceTopicCreation {
		mode = loadExisting
	}
	for attempt := 0; ; attempt++ {
		if attempt > 100 {
			fail(errorf(ErrServiceNotReady, "the topic %s keeps closing", tn))
			return
		}
		t, err := c.b.getTopic(ctx, tn, mode)
		if err != nil {
			fail(err)
			return
		}
		if req.HasSchema && t.ml != nil {
			if err := c.b.reg.checkConsumerSchema(ctx, tn, &req.Schema); err != nil {
				fail(err)
				return
			}
		}
		initial := managedledger.Latest
		if req.InitialPosition == pulsar.PositionEarliest {
			initial = managedledger.Earliest
		}
		var start base.Position
		if !req.Durable && t.ml != nil {
			start = nonDurableStart(t, req)
		}
		s, err := t.getOrCreateSubscription(ctx, req.Subscription, req.Durable && t.ml != nil, initial, start)
		if errors.Is(err, errTopicClosed) {
			continue
		}
		if err != nil {
			fail(err)
			return
		}
		cs := &consumer{
			id:             req.ConsumerID,
			name:           req.ConsumerName,
			conn:           c,
			sub:            s,
			partition:      int32(tn.Partition),
			priority:       req.PriorityLevel,
			metadata:       kvMap(req.Metadata),
			connectedSince: c.b.opts.Now(),
		}
		if cs.name == "" {
			cs.name = req.Subscription
		}
		c.mu.Lock()
		if c.mu.closed {
			c.mu.Unlock()
			return
		}
		if c.mu.consumers[cs.id] != nil {
			c.mu.Unlock()
			c.sendErrorResponse(req.RequestID, pulsar.ConsumerBusy, "a consumer with this id is already on the connection")
			return
		}
		c.mu.consumers[cs.id] = cs
		c.mu.Unlock()
		err = s.addConsumer(cs, req)
		if errors.Is(err, errSubscriptionClosed) {
			c.removeConsumer(cs)
			continue
		}
		if err != nil {
			c.removeConsumer(cs)
			cs.closed.Store(true)
			fail(err)
			return
		}
		c.sendSuccess(req.RequestID)
		return
	}
}

// nonDurableStart is where a reader's non-durable cursor starts: after
// the position returned, so that delivery begins at the start message id
// itself (inclusive at entry level, as Pulsar does), at the first entry for
// the earliest id, and after the last one for the latest.
func nonDurableStart(t *topic, req *pulsar.CommandSubscribe) base.Position {
	if !req.HasStartMessageID {
		if req.InitialPosition == pulsar.PositionEarliest {
			return base.Position{Ledger: -1}
		}
		return t.ml.LastConfirmed()
	}
	l, e := int64(req.StartMessageID.LedgerID), int64(req.StartMessageID.EntryID)
	switch {
	case l == math.MaxInt64:
		return t.ml.LastConfirmed()
	case l < 0:
		return base.Position{Ledger: -1}
	}
	return base.Position{Ledger: base.LedgerID(l), Entry: base.EntryID(max(e, 0) - 1)}
}

// handleFlow serves FLOW.
func (c *conn) handleFlow(f *pulsar.CommandFlow) {
	if cs := c.consumer(f.ConsumerID); cs != nil {
		cs.flow(f.MessagePermits)
	}
}

// handleAck serves ACK: individual acks (whole entries, or batch indexes
// with an ack set), cumulative acks, and acks of discarded deliveries
// (validation_error), which count as acknowledged, as in Pulsar.
func (c *conn) handleAck(a *pulsar.CommandAck) {
	cs := c.consumer(a.ConsumerID)
	var err error
	switch {
	case cs == nil:
		err = errorf(ErrConsumerNotFound, "consumer %d not found", a.ConsumerID)
	case cs.dc.Load() == nil:
		// Non-persistent: nothing to acknowledge.
	default:
		err = c.ack(cs, cs.dc.Load(), a)
	}
	if a.HasRequestID {
		r := pulsar.CommandAckResponse{ConsumerID: a.ConsumerID, RequestID: a.RequestID}
		if err != nil {
			code, msg := serverError(err)
			r.Error, r.HasError, r.Message = code, true, msg
		}
		var cmd pulsar.Command
		cmd.Type = pulsar.TypeAckResponse
		cmd.AckResponse = r
		c.out.sendCommand(&cmd)
	}
}

func (c *conn) ack(cs *consumer, dc *dispatcher.Consumer, a *pulsar.CommandAck) error {
	if a.AckType == pulsar.AckCumulative {
		if len(a.MessageIDs) == 0 {
			return nil
		}
		id := &a.MessageIDs[0]
		pos := idPosition(id)
		if len(id.AckSet) == 0 {
			return ignoreAckErr(dc.AckCumulative(pos))
		}
		// Everything before the entry, and the acknowledged indexes of it.
		err := dc.AckCumulative(base.Position{Ledger: pos.Ledger, Entry: pos.Entry - 1})
		if err != nil {
			return ignoreAckErr(err)
		}
		cs.sub.batchAcks.Store(true)
		return ignoreAckErr(dc.AckBatchIndexes(pos, 64*len(id.AckSet), c.ackedIndexes(id.AckSet)))
	}
	ps := c.ackScratch[:0]
	var firstErr error
	for i := range a.MessageIDs {
		id := &a.MessageIDs[i]
		if len(id.AckSet) > 0 {
			cs.sub.batchAcks.Store(true)
			if err := dc.AckBatchIndexes(idPosition(id), 64*len(id.AckSet), c.ackedIndexes(id.AckSet)); err != nil && firstErr == nil {
				firstErr = ignoreAckErr(err)
			}
			continue
		}
		ps = append(ps, idPosition(id))
	}
	c.ackScratch = ps
	if len(ps) > 0 {
		if err := dc.Ack(ps...); err != nil && firstErr == nil {
			firstErr = ignoreAckErr(err)
		}
	}
	return firstErr
}

// ignoreAckErr drops the errors Pulsar does not report: acks of positions
// that are gone or not yet there, and cumulative acks on shared
// subscriptions.
func ignoreAckErr(err error) error {
	if err == nil || errors.Is(err, managedledger.ErrInvalidPosition) || errors.Is(err, dispatcher.ErrCumulativeAck) {
		return nil
	}
	return err
}

// ackedIndexes lists the acknowledged indexes of an ack set (bits cleared).
func (c *conn) ackedIndexes(set []int64) []int {
	idx := c.idxScratch[:0]
	for w, word := range set {
		for bit := 0; bit < 64; bit++ {
			if word&(1<<bit) == 0 {
				idx = append(idx, w*64+bit)
			}
		}
	}
	c.idxScratch = idx
	return idx
}

// handleRedeliver serves REDELIVER_UNACKNOWLEDGED_MESSAGES.
func (c *conn) handleRedeliver(r *pulsar.CommandRedeliverUnacknowledgedMessages) {
	cs := c.consumer(r.ConsumerID)
	if cs == nil {
		return
	}
	dc := cs.dc.Load()
	if dc == nil {
		return
	}
	ps := c.ackScratch[:0]
	for i := range r.MessageIDs {
		ps = append(ps, idPosition(&r.MessageIDs[i]))
	}
	c.ackScratch = ps
	dc.RedeliverUnacknowledged(ps)
}

// handleCloseConsumer serves CLOSE_CONSUMER.
func (c *conn) handleCloseConsumer(req *pulsar.CommandCloseConsumer) {
	if cs := c.consumer(req.ConsumerID); cs != nil && c.removeConsumer(cs) {
		cs.close(false)
	}
	c.sendSuccess(req.RequestID)
}

// handleUnsubscribe serves UNSUBSCRIBE.
func (c *conn) handleUnsubscribe(req *pulsar.CommandUnsubscribe) {
	cs := c.consumer(req.ConsumerID)
	if cs == nil {
		c.sendErrorResponse(req.RequestID, pulsar.MetadataError, "Consumer not found")
		return
	}
	ctx, cancel := c.opContext()
	defer cancel()
	if err := cs.sub.delete(ctx, req.Force, cs); err != nil {
		code, msg := serverError(err)
		if errors.Is(err, ErrPrecondition) {
			code = pulsar.MetadataError
		}
		c.sendErrorResponse(req.RequestID, code, msg)
		return
	}
	c.sendSuccess(req.RequestID)
}

// handleSeek serves SEEK: by message id (the next message is that entry)
// or by publish time (the first entry published at or after it).
func (c *conn) handleSeek(req *pulsar.CommandSeek) {
	cs := c.consumer(req.ConsumerID)
	if cs == nil {
		c.sendErrorResponse(req.RequestID, pulsar.MetadataError, "Consumer not found")
		return
	}
	ctx, cancel := c.opContext()
	defer cancel()
	s := cs.sub
	if s.cursor == nil {
		c.sendErrorResponse(req.RequestID, pulsar.NotAllowedError, "seek is not supported on a non-persistent topic")
		return
	}
	var pos base.Position
	switch {
	case req.HasMessageID:
		pos = seekPosition(s.t, idPosition(&req.MessageID))
	case req.HasMessagePublishTime:
		p, err := findByPublishTime(ctx, s.t.ml, int64(req.MessagePublishTime))
		if err != nil {
			code, msg := serverError(err)
			c.sendErrorResponse(req.RequestID, code, msg)
			return
		}
		pos = p
	default:
		c.sendErrorResponse(req.RequestID, pulsar.MetadataError, "SEEK with neither a message id nor a publish time")
		return
	}
	if err := s.resetCursor(ctx, pos); err != nil {
		code, msg := serverError(err)
		c.sendErrorResponse(req.RequestID, code, msg)
		return
	}
	c.sendSuccess(req.RequestID)
}

// seekPosition maps a message id to the position a cursor is reset to,
// with the earliest and latest sentinels.
func seekPosition(t *topic, p base.Position) base.Position {
	switch {
	case p.Ledger == math.MaxInt64:
		last := t.ml.LastConfirmed()
		return base.Position{Ledger: last.Ledger, Entry: last.Entry + 1}
	case p.Ledger < 0 || p.Entry < 0:
		return t.ml.FirstPosition()
	}
	return p
}

// findByPublishTime returns the position of the first entry published at
// or after ms: the entry after the newest one published before it
// (Pulsar's PersistentMessageFinder).
func findByPublishTime(ctx context.Context, ml managedledger.ManagedLedger, ms int64) (base.Position, error) {
	var md pulsar.MessageMetadata
	p, err := ml.FindNewest(ctx, func(e managedledger.Entry) bool {
		if decodeEntryMetadata(e.Data.Bytes(), &md) != nil {
			return true
		}
		return int64(md.PublishTime) < ms
	})
	if err != nil {
		return base.Position{}, err
	}
	return base.Position{Ledger: p.Ledger, Entry: p.Entry + 1}, nil
}

// handleGetLastMessageID serves GET_LAST_MESSAGE_ID.
func (c *conn) handleGetLastMessageID(req *pulsar.CommandGetLastMessageID) {
	cs := c.consumer(req.ConsumerID)
	if cs == nil {
		c.sendErrorResponse(req.RequestID, pulsar.MetadataError, "Consumer not found")
		return
	}
	t := cs.sub.t
	if t.ml == nil {
		c.sendErrorResponse(req.RequestID, pulsar.NotAllowedError, "GetLastMessageId is not supported on a non-persistent topic")
		return
	}
	ctx, cancel := c.opContext()
	defer cancel()
	last := t.ml.LastConfirmed()
	id := pulsar.MessageIDData{LedgerID: uint64(last.Ledger), EntryID: uint64(last.Entry), Partition: int32(t.name.Partition), BatchIndex: -1}
	if last.Entry < 0 {
		id.LedgerID, id.EntryID = math.MaxUint64, math.MaxUint64
	} else if e, err := t.ml.ReadEntry(ctx, last); err == nil {
		var md pulsar.MessageMetadata
		if decodeEntryMetadata(e.Data.Bytes(), &md) == nil && md.HasNumMessagesInBatch {
			id.BatchIndex = md.NumMessagesInBatch - 1
		}
		e.Data.Release()
	}
	md := cs.sub.cursor.MarkDeletePosition()
	var r pulsar.Command
	r.Type = pulsar.TypeGetLastMessageIDResponse
	r.GetLastMessageIDResponse = pulsar.CommandGetLastMessageIDResponse{
		LastMessageID: id,
		RequestID:     req.RequestID,
		ConsumerMarkDeletePosition: pulsar.MessageIDData{LedgerID: uint64(md.Ledger), EntryID: uint64(md.Entry),
			Partition: -1, BatchIndex: -1},
		HasConsumerMarkDeletePosition: true,
	}
	c.out.sendCommand(&r)
}

// handleConsumerStats serves CONSUMER_STATS.
func (c *conn) handleConsumerStats(req *pulsar.CommandConsumerStats) {
	cs := c.consumer(req.ConsumerID)
	var r pulsar.Command
	r.Type = pulsar.TypeConsumerStatsResponse
	if cs == nil {
		r.ConsumerStatsResponse = pulsar.CommandConsumerStatsResponse{RequestID: req.RequestID,
			ErrorCode: pulsar.ConsumerNotFound, HasErrorCode: true, ErrorMessage: "Consumer not found"}
		c.out.sendCommand(&r)
		return
	}
	st := cs.stats()
	r.ConsumerStatsResponse = pulsar.CommandConsumerStatsResponse{
		RequestID:        req.RequestID,
		MsgRateOut:       st.MsgRateOut,
		MsgThroughputOut: st.MsgThroughputOut,
		ConsumerName:     cs.name,
		AvailablePermits: uint64(max(0, st.AvailablePermits)),
		UnackedMessages:  uint64(max(0, st.UnackedMessages)),
		Address:          c.remote,
		ConnectedSince:   st.ConnectedSince,
		Type:             cs.sub.subType().String(),
	}
	if cs.sub.cursor != nil {
		r.ConsumerStatsResponse.MsgBacklog = uint64(max(0, cs.sub.cursor.Backlog()))
	}
	c.out.sendCommand(&r)
}
