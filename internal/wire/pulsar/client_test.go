package pulsar

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/pierrec/lz4/v4"
)

// This file runs the official Go client (pulsar-client-go v0.19.0) against a
// minimal broker built only on this codec. The broker records every frame the
// client sends; the test decodes them with our codec and checks their
// fields, and checks that the client accepts everything our encoders
// produce: it connects, looks up, creates producers and consumers, gets its
// receipts, receives MESSAGE frames built by AppendMessageHeader followed by
// the stored entry (a vectored write, with broker entry metadata), and gets
// ERROR, ACK_RESPONSE and GET_LAST_MESSAGE_ID_RESPONSE answers.

const fakeLedger = 7

type fakeBroker struct {
	t   *testing.T
	ln  net.Listener
	url string
	wg  sync.WaitGroup

	mu        sync.Mutex
	frames    [][]byte      // every frame received, in order (copies)
	grew      chan struct{} // closed and replaced when frames grows
	conns     []net.Conn
	producers map[uint64]string // producer id -> topic
	names     int
	entries   map[string][][]byte // topic -> stored entries (copies)
	consumers map[uint64]*fakeConsumer
}

type fakeConsumer struct {
	conn    *fakeConn
	id      uint64
	topic   string
	permits int
	next    int // index of the next entry to deliver
}

type fakeConn struct {
	net.Conn
	wmu sync.Mutex
}

func (c *fakeConn) write(bufs ...[]byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	nb := net.Buffers(bufs)
	_, _ = nb.WriteTo(c.Conn) // a closed connection ends the test's client side anyway
}

func startFakeBroker(t *testing.T) *fakeBroker {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBroker{
		t: t, ln: ln, url: "pulsar://" + ln.Addr().String(),
		grew: make(chan struct{}), producers: map[uint64]string{},
		entries: map[string][][]byte{}, consumers: map[uint64]*fakeConsumer{},
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				b.serve(&fakeConn{Conn: c})
			}()
		}
	}()
	return b
}

// stop closes the listener and every connection and waits for the
// goroutines. Call it after closing the client.
func (b *fakeBroker) stop() {
	b.ln.Close()
	b.mu.Lock()
	for _, c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *fakeBroker) serve(conn *fakeConn) {
	var r FrameReader
	var cmd Command
	buf := make([]byte, 0, 64<<10)
	tmp := make([]byte, 32<<10)
	for {
		var f Frame
		n, err := r.Next(buf, &f)
		if err != nil {
			b.t.Errorf("fake broker: bad frame from the client: %v", err)
			return
		}
		if n == 0 {
			m, err := conn.Read(tmp)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
					b.t.Errorf("fake broker: read: %v", err)
				}
				return
			}
			buf = append(buf, tmp[:m]...)
			continue
		}
		if err := cmd.Decode(f.Command); err != nil {
			b.t.Errorf("fake broker: bad command from the client: %v", err)
			return
		}
		b.record(buf[:n])
		b.handle(conn, &cmd, &f)
		buf = append(buf[:0], buf[n:]...)
	}
}

func (b *fakeBroker) record(frame []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.frames = append(b.frames, append([]byte(nil), frame...))
	close(b.grew)
	b.grew = make(chan struct{})
}

func (b *fakeBroker) handle(conn *fakeConn, c *Command, f *Frame) {
	var out Command
	reply := func() { conn.write(AppendFrame(nil, &out)) }
	switch c.Type {
	case TypeConnect:
		out = Command{Type: TypeConnected, Connected: CommandConnected{
			ServerVersion: "magnetar-test", ProtocolVersion: ProtocolVersion, MaxMessageSize: DefaultMaxMessageSize}}
		reply()
	case TypePing:
		conn.write(AppendPongFrame(nil))
	case TypePartitionedMetadata:
		out = Command{Type: TypePartitionedMetadataResponse, PartitionedMetadataResponse: CommandPartitionedTopicMetadataResponse{
			RequestID: c.PartitionedMetadata.RequestID, Response: PartitionedMetadataSuccess}}
		reply()
	case TypeLookup:
		out = Command{Type: TypeLookupResponse, LookupResponse: CommandLookupTopicResponse{
			RequestID: c.Lookup.RequestID, Response: LookupConnect, BrokerServiceURL: b.url, Authoritative: true}}
		reply()
	case TypeProducer:
		b.mu.Lock()
		b.producers[c.Producer.ProducerID] = c.Producer.Topic
		b.names++
		name := c.Producer.ProducerName
		if name == "" {
			name = "fake-" + string(rune('0'+b.names))
		}
		b.mu.Unlock()
		out = Command{Type: TypeProducerSuccess, ProducerSuccess: CommandProducerSuccess{
			RequestID: c.Producer.RequestID, ProducerName: name, LastSequenceID: -1, ProducerReady: true}}
		if c.Producer.HasSchema {
			// Only then: a version for a producer without a schema
			// makes the Go client dereference a nil SchemaInfo and panic.
			out.ProducerSuccess.SchemaVersion = make([]byte, 8)
		}
		reply()
	case TypeSend:
		b.mu.Lock()
		topic := b.producers[c.Send.ProducerID]
		entryID := len(b.entries[topic])
		b.entries[topic] = append(b.entries[topic], append([]byte(nil), f.Entry...))
		b.mu.Unlock()
		conn.write(AppendSendReceiptFrame(nil, &CommandSendReceipt{
			ProducerID: c.Send.ProducerID, SequenceID: c.Send.SequenceID,
			MessageID: NewMessageID(fakeLedger, uint64(entryID))}))
		b.dispatch(topic)
	case TypeSubscribe:
		if strings.HasSuffix(c.Subscribe.Topic, "/busy") {
			conn.write(AppendErrorFrame(nil, c.Subscribe.RequestID, ConsumerBusy, "Exclusive consumer is already connected"))
			return
		}
		b.mu.Lock()
		b.consumers[c.Subscribe.ConsumerID] = &fakeConsumer{conn: conn, id: c.Subscribe.ConsumerID, topic: c.Subscribe.Topic}
		b.mu.Unlock()
		conn.write(AppendSuccessFrame(nil, c.Subscribe.RequestID))
	case TypeFlow:
		b.mu.Lock()
		cons := b.consumers[c.Flow.ConsumerID]
		if cons != nil {
			cons.permits += int(c.Flow.MessagePermits)
		}
		b.mu.Unlock()
		if cons != nil {
			b.dispatch(cons.topic)
		}
	case TypeAck:
		if c.Ack.HasRequestID {
			out = Command{Type: TypeAckResponse, AckResponse: CommandAckResponse{
				ConsumerID: c.Ack.ConsumerID, RequestID: c.Ack.RequestID}}
			reply()
		}
	case TypeGetLastMessageID:
		b.mu.Lock()
		topic := b.consumers[c.GetLastMessageID.ConsumerID].topic
		n := len(b.entries[topic])
		b.mu.Unlock()
		last := NewMessageID(math.MaxUint64, math.MaxUint64)
		if n > 0 {
			last = NewMessageID(fakeLedger, uint64(n-1))
		}
		out = Command{Type: TypeGetLastMessageIDResponse, GetLastMessageIDResponse: CommandGetLastMessageIDResponse{
			LastMessageID: last, RequestID: c.GetLastMessageID.RequestID,
			ConsumerMarkDeletePosition: NewMessageID(fakeLedger, math.MaxUint64), HasConsumerMarkDeletePosition: true}}
		reply()
	case TypeCloseProducer:
		conn.write(AppendSuccessFrame(nil, c.CloseProducer.RequestID))
	case TypeCloseConsumer:
		b.mu.Lock()
		delete(b.consumers, c.CloseConsumer.ConsumerID)
		b.mu.Unlock()
		conn.write(AppendSuccessFrame(nil, c.CloseConsumer.RequestID))
	case TypeRedeliverUnacknowledgedMessages:
		// Recorded only.
	default:
		if id, ok := c.RequestID(); ok {
			conn.write(AppendErrorFrame(nil, id, NotAllowedError, "not supported by the fake broker"))
		}
	}
}

// dispatch delivers stored entries to the topic's consumers while they have
// permits: header from AppendMessageHeader, then the stored entry unchanged,
// in one vectored write.
func (b *fakeBroker) dispatch(topic string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var md MessageMetadata
	for _, cons := range b.consumers {
		if cons.topic != topic {
			continue
		}
		entries := b.entries[topic]
		for cons.permits > 0 && cons.next < len(entries) {
			entry := entries[cons.next]
			mdb, _, err := ParseEntry(entry)
			if err != nil {
				b.t.Errorf("stored entry: %v", err)
				return
			}
			if err := md.Decode(mdb); err != nil {
				b.t.Errorf("stored metadata: %v", err)
				return
			}
			// Index of the entry's last message: count the messages
			// before it.
			index := uint64(0)
			var prev MessageMetadata
			for _, e := range entries[:cons.next] {
				p, _, _ := ParseEntry(e)
				_ = prev.Decode(p)
				index += uint64(prev.NumMessages())
			}
			index += uint64(md.NumMessages()) - 1
			msg := CommandMessage{ConsumerID: cons.id, MessageID: NewMessageID(fakeLedger, uint64(cons.next))}
			bem := BrokerEntryMetadata{BrokerTimestamp: uint64(time.Now().UnixMilli()), HasBrokerTimestamp: true,
				Index: index, HasIndex: true}
			cons.conn.write(AppendMessageHeader(nil, &msg, &bem, len(entry)), entry)
			cons.permits -= md.NumMessages()
			cons.next++
		}
	}
}

// waitFrame returns the first recorded frame at index >= from whose decoded
// command satisfies match, waiting for it up to a deadline.
func (b *fakeBroker) waitFrame(t *testing.T, from int, what string, match func(*Command) bool) (int, *Command, *Frame) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for i := from; ; {
		b.mu.Lock()
		frames, grew := b.frames, b.grew
		b.mu.Unlock()
		for ; i < len(frames); i++ {
			var r FrameReader
			var f Frame
			if _, err := r.Next(frames[i], &f); err != nil {
				t.Fatalf("recorded frame %d: %v", i, err)
			}
			c := new(Command)
			if err := c.Decode(f.Command); err != nil {
				t.Fatalf("recorded frame %d: %v", i, err)
			}
			if match(c) {
				return i, c, &f
			}
		}
		select {
		case <-grew:
		case <-deadline:
			t.Fatalf("no %s frame from the client", what)
		}
	}
}

func ofType(typ Type) func(*Command) bool { return func(c *Command) bool { return c.Type == typ } }

func props(kvs []RawKeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[string(kv.Key)] = string(kv.Value)
	}
	return m
}

func TestOfficialClientAgainstCodec(t *testing.T) {
	b := startFakeBroker(t)
	client, err := pulsar.NewClient(pulsar.ClientOptions{
		URL: b.url, Logger: testLogger(),
		OperationTimeout: 10 * time.Second, ConnectionTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.stop()
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// ---- producer, one non-batched message ----
	topic := "persistent://public/default/single"
	prod, err := client.CreateProducer(pulsar.ProducerOptions{
		Topic: topic, DisableBatching: true, Properties: map[string]string{"app": "codec-test"},
	})
	if err != nil {
		t.Fatalf("CreateProducer: %v", err)
	}
	_, connect, _ := b.waitFrame(t, 0, "CONNECT", ofType(TypeConnect))
	if cc := connect.Connect; !strings.HasPrefix(cc.ClientVersion, "Pulsar-Go-") || cc.ProtocolVersion != 20 ||
		!cc.HasFeatureFlags || !cc.FeatureFlags.SupportsAuthRefresh || !cc.FeatureFlags.SupportsBrokerEntryMetadata {
		t.Errorf("CONNECT = %+v", cc)
	}
	_, pm, _ := b.waitFrame(t, 0, "PARTITIONED_METADATA", ofType(TypePartitionedMetadata))
	if pm.PartitionedMetadata.Topic != topic {
		t.Errorf("PARTITIONED_METADATA topic %q", pm.PartitionedMetadata.Topic)
	}
	_, lookup, _ := b.waitFrame(t, 0, "LOOKUP", ofType(TypeLookup))
	if lookup.Lookup.Topic != topic || lookup.Lookup.Authoritative {
		t.Errorf("LOOKUP = %+v", lookup.Lookup)
	}
	_, pc, _ := b.waitFrame(t, 0, "PRODUCER", ofType(TypeProducer))
	p := pc.Producer
	if p.Topic != topic || p.UserProvidedProducerName || p.ProducerName != "" || p.ProducerAccessMode != AccessShared ||
		len(p.Metadata) != 1 || p.Metadata[0] != (KeyValue{"app", "codec-test"}) || p.HasSchema {
		t.Errorf("PRODUCER = %+v", p)
	}
	if prod.Name() != "fake-1" {
		t.Errorf("producer name %q, want the broker's", prod.Name())
	}

	eventTime := time.UnixMilli(1_700_000_000_123)
	before := time.Now().UnixMilli()
	id, err := prod.Send(ctx, &pulsar.ProducerMessage{
		Payload: []byte("hello magnetar"), Key: "k1", OrderingKey: "ok1",
		Properties: map[string]string{"a": "1", "b": "2"}, EventTime: eventTime,
	})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	after := time.Now().UnixMilli()
	if id.LedgerID() != fakeLedger || id.EntryID() != 0 {
		t.Errorf("message id %v", id)
	}
	_, sc, sf := b.waitFrame(t, 0, "SEND", func(c *Command) bool { return c.Type == TypeSend && c.Send.ProducerID == p.ProducerID })
	if sc.Send.SequenceID != 0 || sc.Send.NumMessages != 1 || sc.Send.IsChunk {
		t.Errorf("SEND = %+v", sc.Send)
	}
	var md MessageMetadata
	if err := md.Decode(sf.Metadata); err != nil {
		t.Fatal(err)
	}
	if string(md.ProducerName) != "fake-1" || md.SequenceID != 0 || int64(md.PublishTime) < before ||
		int64(md.PublishTime) > after || string(md.PartitionKey) != "k1" || string(md.OrderingKey) != "ok1" ||
		md.EventTime != uint64(eventTime.UnixMilli()) || md.UncompressedSize != uint32(len("hello magnetar")) ||
		md.HasNumMessagesInBatch || md.Compression != CompressionNone || string(sf.Body) != "hello magnetar" {
		t.Errorf("metadata = %+v body %q", md, sf.Body)
	}
	if got := props(md.Properties); len(got) != 2 || got["a"] != "1" || got["b"] != "2" {
		t.Errorf("properties %v", got)
	}

	// ---- batched producer with LZ4 ----
	batchTopic := "persistent://public/default/batch"
	bprod, err := client.CreateProducer(pulsar.ProducerOptions{
		Topic: batchTopic, CompressionType: pulsar.LZ4,
		BatchingMaxMessages: 3, BatchingMaxPublishDelay: time.Minute,
	})
	if err != nil {
		t.Fatalf("CreateProducer(batch): %v", err)
	}
	type result struct {
		id  pulsar.MessageID
		err error
	}
	results := make(chan result, 3)
	for i := 0; i < 3; i++ {
		bprod.SendAsync(ctx, &pulsar.ProducerMessage{
			Payload: []byte("batched-" + string(rune('0'+i))), Key: "bk" + string(rune('0'+i)),
			Properties: map[string]string{"i": string(rune('0' + i))},
		}, func(id pulsar.MessageID, _ *pulsar.ProducerMessage, err error) { results <- result{id, err} })
	}
	if err := bprod.FlushWithCtx(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	for i := 0; i < 3; i++ {
		r := <-results
		if r.err != nil || r.id.LedgerID() != fakeLedger || r.id.EntryID() != 0 || r.id.BatchIdx() != int32(i) {
			t.Errorf("batch receipt %d: %v %v", i, r.id, r.err)
		}
	}
	_, bpc, _ := b.waitFrame(t, 0, "PRODUCER(batch)", func(c *Command) bool {
		return c.Type == TypeProducer && c.Producer.Topic == batchTopic
	})
	_, bsc, bsf := b.waitFrame(t, 0, "SEND(batch)", func(c *Command) bool {
		return c.Type == TypeSend && c.Send.ProducerID == bpc.Producer.ProducerID
	})
	if bsc.Send.NumMessages != 3 {
		t.Errorf("batch SEND num_messages %d", bsc.Send.NumMessages)
	}
	if err := md.Decode(bsf.Metadata); err != nil {
		t.Fatal(err)
	}
	if !md.HasNumMessagesInBatch || md.NumMessagesInBatch != 3 || md.Compression != CompressionLZ4 || md.UncompressedSize == 0 {
		t.Fatalf("batch metadata = %+v", md)
	}
	body := make([]byte, md.UncompressedSize)
	if n, err := lz4.UncompressBlock(bsf.Body, body); err != nil || n != len(body) {
		t.Fatalf("lz4: %d %v", n, err)
	}
	var br BatchReader
	br.Reset(body, md.NumMessages())
	var smm SingleMessageMetadata
	for i := 0; br.Next(&smm); i++ {
		d := string(rune('0' + i))
		if string(br.Payload()) != "batched-"+d || string(smm.PartitionKey) != "bk"+d || !smm.HasSequenceID ||
			smm.SequenceID != uint64(i) || props(smm.Properties)["i"] != d {
			t.Errorf("batch message %d: %q %+v", i, br.Payload(), smm)
		}
	}
	if br.Err() != nil {
		t.Fatal(br.Err())
	}

	// ---- consumer: receives both entries as MESSAGE header + stored entry ----
	cons, err := client.Subscribe(pulsar.ConsumerOptions{
		Topic: topic, SubscriptionName: "sub", Type: pulsar.Shared, Name: "c1",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest, AckWithResponse: true,
	})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	_, subc, _ := b.waitFrame(t, 0, "SUBSCRIBE", ofType(TypeSubscribe))
	s := subc.Subscribe
	if s.Topic != topic || s.Subscription != "sub" || s.SubType != SubShared || s.ConsumerName != "c1" ||
		s.InitialPosition != PositionEarliest || !s.Durable || s.HasStartMessageID || s.ReadCompacted {
		t.Errorf("SUBSCRIBE = %+v", s)
	}
	_, flow, _ := b.waitFrame(t, 0, "FLOW", ofType(TypeFlow))
	if flow.Flow.ConsumerID != s.ConsumerID || flow.Flow.MessagePermits != 1000 {
		t.Errorf("FLOW = %+v", flow.Flow)
	}
	msg, err := cons.Receive(ctx)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if string(msg.Payload()) != "hello magnetar" || msg.Key() != "k1" || msg.OrderingKey() != "ok1" ||
		msg.Properties()["a"] != "1" || msg.Properties()["b"] != "2" || !msg.EventTime().Equal(eventTime) ||
		msg.ProducerName() != "fake-1" || msg.ID().LedgerID() != fakeLedger || msg.ID().EntryID() != 0 {
		t.Errorf("received %q key %q props %v id %v", msg.Payload(), msg.Key(), msg.Properties(), msg.ID())
	}
	if msg.BrokerPublishTime() == nil || msg.Index() == nil || *msg.Index() != 0 {
		t.Errorf("broker entry metadata not seen by the client: %v %v", msg.BrokerPublishTime(), msg.Index())
	}
	if err := cons.Ack(msg); err != nil {
		t.Errorf("Ack (with response): %v", err)
	}
	_, ack, _ := b.waitFrame(t, 0, "ACK", ofType(TypeAck))
	if a := ack.Ack; a.ConsumerID != s.ConsumerID || a.AckType != AckIndividual || !a.HasRequestID ||
		len(a.MessageIDs) != 1 || a.MessageIDs[0].LedgerID != fakeLedger || a.MessageIDs[0].EntryID != 0 {
		t.Errorf("ACK = %+v", a)
	}

	bcons, err := client.Subscribe(pulsar.ConsumerOptions{
		Topic: batchTopic, SubscriptionName: "sub", Type: pulsar.Exclusive,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest,
	})
	if err != nil {
		t.Fatalf("Subscribe(batch): %v", err)
	}
	for i := 0; i < 3; i++ {
		m, err := bcons.Receive(ctx)
		if err != nil {
			t.Fatalf("Receive(batch): %v", err)
		}
		d := string(rune('0' + i))
		if string(m.Payload()) != "batched-"+d || m.Key() != "bk"+d || m.Properties()["i"] != d ||
			m.ID().BatchIdx() != int32(i) || m.Index() == nil || *m.Index() != uint64(i) {
			t.Errorf("batch message %d: %q key %q id %v", i, m.Payload(), m.Key(), m.ID())
		}
	}

	// ---- negative ack -> REDELIVER_UNACKNOWLEDGED_MESSAGES ----
	ncons, err := client.Subscribe(pulsar.ConsumerOptions{
		Topic: topic, SubscriptionName: "nack", Type: pulsar.Shared,
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest, NackRedeliveryDelay: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("Subscribe(nack): %v", err)
	}
	nm, err := ncons.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ncons.Nack(nm)
	_, rd, _ := b.waitFrame(t, 0, "REDELIVER_UNACKNOWLEDGED_MESSAGES", ofType(TypeRedeliverUnacknowledgedMessages))
	if ids := rd.RedeliverUnacknowledgedMessages.MessageIDs; len(ids) != 1 || ids[0].LedgerID != fakeLedger || ids[0].EntryID != 0 {
		t.Errorf("REDELIVER = %+v", rd.RedeliverUnacknowledgedMessages)
	}

	// ---- reader from earliest: non-durable SUBSCRIBE, GET_LAST_MESSAGE_ID ----
	reader, err := client.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.EarliestMessageID()})
	if err != nil {
		t.Fatalf("CreateReader: %v", err)
	}
	_, rsub, _ := b.waitFrame(t, 0, "SUBSCRIBE(reader)", func(c *Command) bool {
		return c.Type == TypeSubscribe && !c.Subscribe.Durable
	})
	if rs := rsub.Subscribe; rs.SubType != SubExclusive || !rs.HasStartMessageID ||
		rs.StartMessageID.LedgerID != math.MaxUint64 || rs.StartMessageID.EntryID != math.MaxUint64 {
		t.Errorf("reader SUBSCRIBE = %+v", rs)
	}
	if !reader.HasNext() {
		t.Errorf("HasNext = false with one message on the topic")
	}
	b.waitFrame(t, 0, "GET_LAST_MESSAGE_ID", ofType(TypeGetLastMessageID))
	rm, err := reader.Next(ctx)
	if err != nil || string(rm.Payload()) != "hello magnetar" {
		t.Errorf("reader.Next = %v, %v", rm, err)
	}

	// ---- ERROR is reported by the client with the server error's name ----
	_, err = client.Subscribe(pulsar.ConsumerOptions{Topic: "persistent://public/default/busy", SubscriptionName: "s"})
	if err == nil || !strings.Contains(err.Error(), "ConsumerBusy") {
		t.Errorf("Subscribe(busy) = %v, want a ConsumerBusy error", err)
	}

	// ---- a producer with a schema ----
	sprod, err := client.CreateProducer(pulsar.ProducerOptions{
		Topic: "persistent://public/default/typed", Schema: pulsar.NewStringSchema(nil),
	})
	if err != nil {
		t.Fatalf("CreateProducer(schema): %v", err)
	}
	_, spc, _ := b.waitFrame(t, 0, "PRODUCER(schema)", func(c *Command) bool {
		return c.Type == TypeProducer && c.Producer.HasSchema
	})
	if sch := spc.Producer.Schema; sch.Type != SchemaString || sch.SchemaData == nil {
		t.Errorf("PRODUCER schema = %+v", sch)
	}
	if _, err := sprod.Send(ctx, &pulsar.ProducerMessage{Value: "typed"}); err != nil {
		t.Errorf("Send(schema): %v", err)
	}

	// ---- closing ----
	prod.Close()
	_, cp, _ := b.waitFrame(t, 0, "CLOSE_PRODUCER", ofType(TypeCloseProducer))
	if cp.CloseProducer.ProducerID != p.ProducerID {
		t.Errorf("CLOSE_PRODUCER = %+v", cp.CloseProducer)
	}
	cons.Close()
	_, cc, _ := b.waitFrame(t, 0, "CLOSE_CONSUMER", ofType(TypeCloseConsumer))
	if cc.CloseConsumer.ConsumerID != s.ConsumerID {
		t.Errorf("CLOSE_CONSUMER = %+v", cc.CloseConsumer)
	}
	for _, c := range []interface{ Close() }{bprod, sprod, bcons, ncons, reader} {
		c.Close()
	}
}
