// Package clienttest is a stand-in Pulsar broker for tests and benchmarks of
// Pulsar clients: a real TCP server on 127.0.0.1 that speaks the binary
// protocol (internal/wire/pulsar) from memory. It answers CONNECT,
// PARTITIONED_METADATA, LOOKUP (Connect to itself, or Redirect to another
// broker), PRODUCER, SEND (stored, acknowledged in order at once), SUBSCRIBE,
// FLOW (pushes stored entries within the permits), ACK, PING and the CLOSE_*
// and UNSUBSCRIBE requests, closely enough that the official Go client works
// against it.
//
// Knobs for fault and load tests: PauseReceipts/ResumeReceipts hold every
// SEND_RECEIPT (a stalled broker, for coordinated-omission tests);
// PauseReceiptsAfter starts such a stall at a given message count for a
// given time and records when it began and ended; DropSends ignores SENDs;
// DropConnections cuts every connection; Generate makes a topic an endless
// source of one entry, so that a consumer benchmark is not limited by
// producing; Options.DiscardEntries keeps no entries, so that a producer
// benchmark does not grow memory.
//
// Not modelled: persistence, redelivery of unacknowledged messages, seek,
// schemas (answered with a fixed version), Key_Shared routing (Key_Shared
// and Shared both go round-robin).
package clienttest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magnetar/magnetar/internal/wire/pulsar"
)

// Options configure a Broker. The zero value is ready to use.
type Options struct {
	// MaxMessageSize is advertised in CONNECTED. Default 5 MiB.
	MaxMessageSize int
	// DiscardEntries keeps no published entries (subscriptions then see
	// only Generate'd topics).
	DiscardEntries bool
	// RedirectTo, when set, answers every non-authoritative LOOKUP with a
	// Redirect to this service URL (authoritative), as a broker that does
	// not own the topic does.
	RedirectTo string
}

// Broker is the stand-in broker.
type Broker struct {
	opts Options
	ln   net.Listener
	url  string
	wg   sync.WaitGroup

	received atomic.Int64 // messages received in SENDs
	sends    atomic.Int64 // SEND frames received

	mu          sync.Mutex
	closed      bool
	conns       map[*sconn]struct{}
	topics      map[string]*topic
	partitioned map[string]int
	producerN   int
	ledgerN     uint64
	paused      bool
	dropSends   bool
	pauseAfter  int64
	pauseFor    time.Duration
	pauseStart  time.Time
	pauseEnd    time.Time
}

type topic struct {
	name      string
	ledger    uint64
	entries   []entry
	nextEntry uint64
	generator []byte // when set, an endless run of this entry
	genN      int    // messages in the generator entry
	subs      map[string]*subscription
}

type entry struct {
	data []byte // from the 0x0e01 magic to the end
	n    int    // messages
}

type subscription struct {
	name      string
	typ       pulsar.SubType
	cursor    uint64 // next entry to dispatch
	consumers []*sconsumer
	rr        int
	acked     map[uint64]bool
	cumAck    uint64
	hasCum    bool
	ackFrames int64
}

type sconsumer struct {
	c       *sconn
	id      uint64
	t       *topic
	sub     *subscription
	permits int64
}

// Start starts a broker listening on 127.0.0.1 with an ephemeral port.
func Start(opts Options) (*Broker, error) {
	if opts.MaxMessageSize <= 0 {
		opts.MaxMessageSize = pulsar.DefaultMaxMessageSize
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &Broker{
		opts:        opts,
		ln:          ln,
		url:         "pulsar://" + ln.Addr().String(),
		conns:       map[*sconn]struct{}{},
		topics:      map[string]*topic{},
		partitioned: map[string]int{},
	}
	b.wg.Add(1)
	go b.accept()
	return b, nil
}

// URL is the broker's service URL, pulsar://127.0.0.1:port.
func (b *Broker) URL() string { return b.url }

// Close stops the broker and closes every connection.
func (b *Broker) Close() {
	b.mu.Lock()
	b.closed = true
	conns := make([]*sconn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	_ = b.ln.Close()
	for _, c := range conns {
		c.close()
	}
	b.wg.Wait()
}

// normalize completes a short topic name as clients do.
func normalize(name string) string {
	if strings.Contains(name, "://") {
		return name
	}
	if strings.Count(name, "/") == 2 {
		return "persistent://" + name
	}
	return "persistent://public/default/" + name
}

// CreatePartitionedTopic makes topic a partitioned topic with n partitions.
func (b *Broker) CreatePartitionedTopic(name string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.partitioned[normalize(name)] = n
}

// Generate makes topic an endless source of entry (the bytes from the
// 0x0e01 magic to the end, as AppendEntry builds them) holding n messages:
// every subscription, whatever its position, receives it again and again
// within its permits.
func (b *Broker) Generate(name string, entry []byte, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topicLocked(normalize(name))
	t.generator = append([]byte(nil), entry...)
	t.genN = max(n, 1)
}

// PauseReceipts holds every SEND_RECEIPT until ResumeReceipts.
func (b *Broker) PauseReceipts() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pauseLocked()
}

func (b *Broker) pauseLocked() {
	if !b.paused {
		b.paused = true
		b.pauseStart = time.Now()
	}
}

// ResumeReceipts sends the held receipts, in order, and stops holding.
func (b *Broker) ResumeReceipts() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.paused {
		return
	}
	b.paused = false
	b.pauseEnd = time.Now()
	for c := range b.conns {
		c.releaseHeld()
	}
}

// PauseReceiptsAfter arranges a stall: once the broker has received
// `messages` messages, it holds every receipt for d, then releases them.
func (b *Broker) PauseReceiptsAfter(messages int64, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pauseAfter, b.pauseFor = messages, d
}

// PauseWindow returns when the last stall began and ended (ok is false until
// one ended).
func (b *Broker) PauseWindow() (start, end time.Time, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pauseStart, b.pauseEnd, !b.pauseEnd.IsZero()
}

// DropSends makes the broker ignore SENDs (no entry, no receipt) while on.
func (b *Broker) DropSends(on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dropSends = on
}

// DropConnections closes every client connection.
func (b *Broker) DropConnections() {
	b.mu.Lock()
	conns := make([]*sconn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}

// MessagesReceived is the number of messages received in SENDs.
func (b *Broker) MessagesReceived() int64 { return b.received.Load() }

// SendsReceived is the number of SEND frames received.
func (b *Broker) SendsReceived() int64 { return b.sends.Load() }

// Entries returns copies of the entries stored on topic (a partition's name
// for a partitioned topic).
func (b *Broker) Entries(name string) [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[normalize(name)]
	if t == nil {
		return nil
	}
	out := make([][]byte, len(t.entries))
	for i, e := range t.entries {
		out[i] = append([]byte(nil), e.data...)
	}
	return out
}

// Acked returns how many distinct entries subscription sub of topic has
// acknowledged individually, and the cumulative position (ok false when
// none).
func (b *Broker) Acked(name, sub string) (individual int, cumulative uint64, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[normalize(name)]
	if t == nil || t.subs[sub] == nil {
		return 0, 0, false
	}
	s := t.subs[sub]
	return len(s.acked), s.cumAck, s.hasCum
}

// Dispatched is the position of subscription sub on topic: the entries
// pushed to its consumers so far (for a subscription from the earliest
// entry, their count).
func (b *Broker) Dispatched(name, sub string) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[normalize(name)]
	if t == nil || t.subs[sub] == nil {
		return 0
	}
	return t.subs[sub].cursor
}

// Connections is the number of open client connections.
func (b *Broker) Connections() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

func (b *Broker) topicLocked(name string) *topic {
	t := b.topics[name]
	if t == nil {
		b.ledgerN++
		t = &topic{name: name, ledger: b.ledgerN, subs: map[string]*subscription{}}
		b.topics[name] = t
	}
	return t
}

func (b *Broker) accept() {
	defer b.wg.Done()
	for {
		nc, err := b.ln.Accept()
		if err != nil {
			return
		}
		c := &sconn{b: b, nc: nc, sig: make(chan struct{}, 1), done: make(chan struct{}),
			producers: map[uint64]*topic{}, consumers: map[uint64]*sconsumer{}}
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			_ = nc.Close()
			return
		}
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Add(2)
		go c.writeLoop()
		go c.readLoop()
	}
}

// sconn is one client connection.
type sconn struct {
	b         *Broker
	nc        net.Conn
	wmu       sync.Mutex
	out       []byte
	held      []byte // receipts held while paused
	sig       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	// Guarded by Broker.mu.
	producers map[uint64]*topic
	consumers map[uint64]*sconsumer
}

func (c *sconn) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		_ = c.nc.Close()
		b := c.b
		b.mu.Lock()
		delete(b.conns, c)
		for _, sc := range c.consumers {
			sc.sub.remove(sc)
		}
		b.mu.Unlock()
	})
}

func (s *subscription) remove(sc *sconsumer) {
	for i, x := range s.consumers {
		if x == sc {
			s.consumers = append(s.consumers[:i], s.consumers[i+1:]...)
			return
		}
	}
}

// write appends frames with f under the write lock and wakes the writer.
func (c *sconn) write(f func([]byte) []byte) {
	c.wmu.Lock()
	c.out = f(c.out)
	c.wmu.Unlock()
	c.signal()
}

func (c *sconn) signal() {
	select {
	case c.sig <- struct{}{}:
	default:
	}
}

func (c *sconn) releaseHeld() {
	c.wmu.Lock()
	c.out = append(c.out, c.held...)
	c.held = c.held[:0]
	c.wmu.Unlock()
	select {
	case c.sig <- struct{}{}:
	default:
	}
}

func (c *sconn) writeLoop() {
	defer c.b.wg.Done()
	var spare []byte
	for {
		select {
		case <-c.sig:
		case <-c.done:
			return
		}
		c.wmu.Lock()
		buf := c.out
		c.out = spare[:0]
		c.wmu.Unlock()
		if len(buf) > 0 {
			if _, err := c.nc.Write(buf); err != nil {
				c.close()
				return
			}
		}
		spare = buf
	}
}

func (c *sconn) readLoop() {
	defer c.b.wg.Done()
	defer c.close()
	buf := make([]byte, 256<<10)
	start, end := 0, 0
	fr := pulsar.FrameReader{MaxFrameSize: c.b.opts.MaxMessageSize + pulsar.FramePadding}
	var f pulsar.Frame
	var cmd pulsar.Command
	for {
		for start < end {
			n, err := fr.Next(buf[start:end], &f)
			if err != nil {
				return
			}
			if n == 0 {
				break
			}
			if err := cmd.Decode(f.Command); err != nil {
				return
			}
			if !c.handle(&cmd, &f) {
				return
			}
			start += n
		}
		if start == end {
			start, end = 0, 0
		} else if start > 0 {
			end = copy(buf, buf[start:end])
			start = 0
		}
		if need := pulsar.FrameLen(buf[:end]); need > len(buf) {
			nb := make([]byte, max(need, 2*len(buf)))
			copy(nb, buf[:end])
			buf = nb
		}
		n, err := c.nc.Read(buf[end:])
		if err != nil {
			return
		}
		end += n
	}
}

func (c *sconn) errorFrame(id uint64, code pulsar.ServerError, msg string) {
	c.write(func(out []byte) []byte { return pulsar.AppendErrorFrame(out, id, code, msg) })
}

func (c *sconn) reply(r *pulsar.Command) {
	c.write(func(out []byte) []byte { return pulsar.AppendFrame(out, r) })
}

// handle answers one command; false closes the connection.
func (c *sconn) handle(cmd *pulsar.Command, f *pulsar.Frame) bool {
	b := c.b
	var r pulsar.Command
	switch cmd.Type {
	case pulsar.TypeConnect:
		r.Type = pulsar.TypeConnected
		r.Connected = pulsar.CommandConnected{
			ServerVersion:   "magnetar-clienttest",
			ProtocolVersion: min(cmd.Connect.ProtocolVersion, pulsar.ProtocolVersion),
			MaxMessageSize:  int32(b.opts.MaxMessageSize),
		}
		c.reply(&r)
	case pulsar.TypePing:
		c.write(pulsar.AppendPongFrame)
	case pulsar.TypePong:
	case pulsar.TypePartitionedMetadata:
		name := normalize(cmd.PartitionedMetadata.Topic)
		b.mu.Lock()
		n := b.partitioned[name]
		b.mu.Unlock()
		r.Type = pulsar.TypePartitionedMetadataResponse
		r.PartitionedMetadataResponse = pulsar.CommandPartitionedTopicMetadataResponse{
			Partitions: uint32(n), RequestID: cmd.PartitionedMetadata.RequestID,
			Response: pulsar.PartitionedMetadataSuccess,
		}
		c.reply(&r)
	case pulsar.TypeLookup:
		r.Type = pulsar.TypeLookupResponse
		lr := pulsar.CommandLookupTopicResponse{
			BrokerServiceURL: b.url, Response: pulsar.LookupConnect,
			RequestID: cmd.Lookup.RequestID, Authoritative: true,
		}
		if b.opts.RedirectTo != "" && !cmd.Lookup.Authoritative {
			lr.BrokerServiceURL, lr.Response = b.opts.RedirectTo, pulsar.LookupRedirect
		}
		r.LookupResponse = lr
		c.reply(&r)
	case pulsar.TypeProducer:
		p := &cmd.Producer
		name := p.ProducerName
		b.mu.Lock()
		if name == "" {
			b.producerN++
			name = "clienttest-" + strconv.Itoa(b.producerN)
		}
		c.producers[p.ProducerID] = b.topicLocked(normalize(p.Topic))
		b.mu.Unlock()
		r.Type = pulsar.TypeProducerSuccess
		r.ProducerSuccess = pulsar.CommandProducerSuccess{
			RequestID: p.RequestID, ProducerName: name, LastSequenceID: -1, ProducerReady: true,
		}
		if p.HasSchema {
			// Only for a producer with a schema: the Go client (v0.19.0)
			// dereferences its nil schema info, and panics, when a producer
			// without one gets a non-empty schema version.
			r.ProducerSuccess.SchemaVersion = make([]byte, 8)
		}
		c.reply(&r)
	case pulsar.TypeSend:
		c.send(&cmd.Send, f)
	case pulsar.TypeSubscribe:
		c.subscribe(&cmd.Subscribe)
	case pulsar.TypeFlow:
		b.mu.Lock()
		if sc := c.consumers[cmd.Flow.ConsumerID]; sc != nil {
			sc.permits += int64(cmd.Flow.MessagePermits)
			b.dispatchLocked(sc.t)
		}
		b.mu.Unlock()
	case pulsar.TypeAck:
		a := &cmd.Ack
		b.mu.Lock()
		if sc := c.consumers[a.ConsumerID]; sc != nil {
			s := sc.sub
			s.ackFrames++
			for _, id := range a.MessageIDs {
				if a.AckType == pulsar.AckCumulative {
					s.cumAck, s.hasCum = id.EntryID, true
				} else {
					s.acked[id.EntryID] = true
				}
			}
		}
		b.mu.Unlock()
	case pulsar.TypeCloseProducer:
		b.mu.Lock()
		delete(c.producers, cmd.CloseProducer.ProducerID)
		b.mu.Unlock()
		c.write(func(out []byte) []byte { return pulsar.AppendSuccessFrame(out, cmd.CloseProducer.RequestID) })
	case pulsar.TypeCloseConsumer:
		b.mu.Lock()
		if sc := c.consumers[cmd.CloseConsumer.ConsumerID]; sc != nil {
			sc.sub.remove(sc)
			delete(c.consumers, sc.id)
		}
		b.mu.Unlock()
		c.write(func(out []byte) []byte { return pulsar.AppendSuccessFrame(out, cmd.CloseConsumer.RequestID) })
	case pulsar.TypeUnsubscribe:
		b.mu.Lock()
		if sc := c.consumers[cmd.Unsubscribe.ConsumerID]; sc != nil {
			sc.sub.remove(sc)
			delete(c.consumers, sc.id)
			delete(sc.t.subs, sc.sub.name)
		}
		b.mu.Unlock()
		c.write(func(out []byte) []byte { return pulsar.AppendSuccessFrame(out, cmd.Unsubscribe.RequestID) })
	case pulsar.TypeGetOrCreateSchema:
		r.Type = pulsar.TypeGetOrCreateSchemaResponse
		r.GetOrCreateSchemaResponse = pulsar.CommandGetOrCreateSchemaResponse{
			RequestID: cmd.GetOrCreateSchema.RequestID, SchemaVersion: make([]byte, 8),
		}
		c.reply(&r)
	case pulsar.TypeRedeliverUnacknowledgedMessages, pulsar.TypeAuthResponse:
	default:
		if id, ok := cmd.RequestID(); ok {
			c.errorFrame(id, pulsar.UnknownError, cmd.Type.String()+" is not supported by the stub broker")
			return true
		}
		return false
	}
	return true
}

func (c *sconn) send(s *pulsar.CommandSend, f *pulsar.Frame) {
	b := c.b
	n := int64(max(s.NumMessages, 1))
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropSends {
		return
	}
	t := c.producers[s.ProducerID]
	if t == nil {
		c.write(func(out []byte) []byte {
			return pulsar.AppendFrame(out, &pulsar.Command{Type: pulsar.TypeSendError, SendError: pulsar.CommandSendError{
				ProducerID: s.ProducerID, SequenceID: s.SequenceID, Error: pulsar.NotAllowedError, Message: "unknown producer",
			}})
		})
		return
	}
	b.sends.Add(1)
	total := b.received.Add(n)
	entryID := t.nextEntry
	t.nextEntry++
	if !b.opts.DiscardEntries && f.Entry != nil {
		t.entries = append(t.entries, entry{data: append([]byte(nil), f.Entry...), n: int(n)})
	}
	if b.pauseAfter > 0 && total >= b.pauseAfter && !b.paused {
		b.pauseAfter = 0
		b.pauseLocked()
		time.AfterFunc(b.pauseFor, b.ResumeReceipts)
	}
	receipt := pulsar.CommandSendReceipt{ProducerID: s.ProducerID, SequenceID: s.SequenceID,
		MessageID: pulsar.NewMessageID(t.ledger, entryID)}
	c.wmu.Lock()
	if b.paused {
		c.held = pulsar.AppendSendReceiptFrame(c.held, &receipt)
		c.wmu.Unlock()
	} else {
		c.out = pulsar.AppendSendReceiptFrame(c.out, &receipt)
		c.wmu.Unlock()
		c.signal()
	}
	b.dispatchLocked(t)
}

func (c *sconn) subscribe(s *pulsar.CommandSubscribe) {
	b := c.b
	b.mu.Lock()
	t := b.topicLocked(normalize(s.Topic))
	sub := t.subs[s.Subscription]
	if sub == nil {
		sub = &subscription{name: s.Subscription, typ: s.SubType, acked: map[uint64]bool{}}
		if s.InitialPosition == pulsar.PositionLatest {
			sub.cursor = t.nextEntry
		}
		t.subs[s.Subscription] = sub
	} else if len(sub.consumers) > 0 && (sub.typ == pulsar.SubExclusive || sub.typ != s.SubType) {
		b.mu.Unlock()
		c.errorFrame(s.RequestID, pulsar.ConsumerBusy, "Exclusive consumer is already connected")
		return
	}
	sub.typ = s.SubType
	sc := &sconsumer{c: c, id: s.ConsumerID, t: t, sub: sub}
	sub.consumers = append(sub.consumers, sc)
	c.consumers[s.ConsumerID] = sc
	b.mu.Unlock()
	c.write(func(out []byte) []byte { return pulsar.AppendSuccessFrame(out, s.RequestID) })
}

// dispatchLocked pushes entries of t to the consumers of its
// subscriptions, within their permits.
func (b *Broker) dispatchLocked(t *topic) {
	for _, s := range t.subs {
		for {
			var data []byte
			n := 0
			if t.generator != nil {
				data, n = t.generator, t.genN
			} else {
				i := s.cursor - t.firstEntry()
				if s.cursor < t.firstEntry() || i >= uint64(len(t.entries)) {
					break
				}
				data, n = t.entries[i].data, t.entries[i].n
			}
			sc := s.pick()
			if sc == nil {
				break
			}
			sc.permits -= int64(n)
			m := pulsar.CommandMessage{ConsumerID: sc.id, MessageID: pulsar.NewMessageID(t.ledger, s.cursor)}
			m.MessageID.Partition = partitionOf(t.name)
			s.cursor++
			c := sc.c
			c.wmu.Lock()
			c.out = pulsar.AppendMessageHeader(c.out, &m, nil, len(data))
			c.out = append(c.out, data...)
			c.wmu.Unlock()
			c.signal()
		}
	}
}

// firstEntry is the id of t.entries[0] (entries are kept from id 0 unless
// they are discarded).
func (t *topic) firstEntry() uint64 {
	return t.nextEntry - uint64(len(t.entries))
}

// pick chooses the consumer for the next entry: the first consumer for
// Exclusive and Failover, round-robin among those with permits otherwise.
func (s *subscription) pick() *sconsumer {
	if len(s.consumers) == 0 {
		return nil
	}
	if s.typ == pulsar.SubExclusive || s.typ == pulsar.SubFailover {
		if sc := s.consumers[0]; sc.permits > 0 {
			return sc
		}
		return nil
	}
	for range s.consumers {
		s.rr = (s.rr + 1) % len(s.consumers)
		if sc := s.consumers[s.rr]; sc.permits > 0 {
			return sc
		}
	}
	return nil
}

func partitionOf(name string) int32 {
	i := strings.LastIndex(name, "-partition-")
	if i < 0 {
		return -1
	}
	n, err := strconv.Atoi(name[i+len("-partition-"):])
	if err != nil {
		return -1
	}
	return int32(n)
}

// BuildEntry returns an entry (0x0e01 | crc32c | metadata) for payload
// with md: a helper for Generate and for tests that inspect entries.
func BuildEntry(md *pulsar.MessageMetadata, payload []byte) []byte {
	return pulsar.AppendEntry(nil, md, payload)
}

// ErrNoEntry is returned by ParseEntry for bytes that are not an entry.
var ErrNoEntry = errors.New("clienttest: not an entry")

// ParseEntry splits a stored entry into its decoded metadata and its body.
func ParseEntry(e []byte) (*pulsar.MessageMetadata, []byte, error) {
	if len(e) < pulsar.EntryHeaderSize || binary.BigEndian.Uint16(e) != pulsar.MagicChecksum {
		return nil, nil, ErrNoEntry
	}
	mdBytes, body, err := pulsar.ParseEntry(e)
	if err != nil {
		return nil, nil, err
	}
	var md pulsar.MessageMetadata
	if err := md.Decode(mdBytes); err != nil {
		return nil, nil, fmt.Errorf("clienttest: metadata: %w", err)
	}
	return &md, body, nil
}
