package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/wire/pulsar"
)

// Connection constants.
const (
	// readBufSize is a connection's read buffer. Frames that do not fit
	// are read into buffers of their own (see readBigFrame).
	readBufSize = 64 << 10
	// maxAsyncRequests bounds a connection's requests that are served on
	// goroutines of their own (lookups, PRODUCER, SUBSCRIBE, SEEK, ...);
	// beyond it the read loop waits.
	maxAsyncRequests = 256
	// farewellTimeout bounds the flush of a last ERROR before a close.
	farewellTimeout = 5 * time.Second
	// maxProtocolVersion is the protocol version this broker speaks.
	maxProtocolVersion = 21
	// serverVersion is sent in CONNECTED.
	serverVersion = "Magnetar"
)

// errNoRequestID is the request id of an ERROR that answers no request
// (-1 on the wire, as Pulsar sends it).
const errNoRequestID = math.MaxUint64

// conn is one client connection: a read loop that decodes frames and
// serves them (SEND, FLOW, ACK in line; requests that wait for metadata or
// storage on goroutines of their own), and an outbound queue drained by a
// write loop.
//
// Lock order: conn.mu, then producer.mu, then outbound.mu. Nothing calls a
// dispatcher, a managed ledger or a topic with conn.mu or producer.mu
// held.
type conn struct {
	b      *Broker
	nc     net.Conn
	remote string
	log    *slog.Logger
	out    outbound
	ctx    context.Context // cancelled when the connection closes
	cancel context.CancelFunc

	// Read loop only.
	fr         pulsar.FrameReader
	cmd        pulsar.Command
	md         pulsar.MessageMetadata
	rbuf       []byte
	connected  bool
	ackScratch []base.Position
	idxScratch []int

	// Set once by CONNECT, read-only afterwards.
	clientVersion   string
	protocolVersion int32
	connectedSince  time.Time

	established atomic.Bool  // CONNECTED was sent (for the keep-alive loop)
	lastRead    atomic.Int64 // unix nanoseconds of the last successful read
	pinged      atomic.Bool  // a keep-alive PING is outstanding
	paused      atomic.Bool  // the read loop is held by back-pressure
	pending     atomic.Int64 // SENDs awaiting persistence
	resume      chan struct{}
	slots       chan struct{}
	requests    sync.WaitGroup

	mu struct {
		sync.Mutex
		closed    bool
		producers map[uint64]*producer
		consumers map[uint64]*consumer
	}
}

func newConn(b *Broker, nc net.Conn) *conn {
	c := &conn{
		b:      b,
		nc:     nc,
		remote: nc.RemoteAddr().String(),
		rbuf:   make([]byte, readBufSize),
		resume: make(chan struct{}, 1),
		slots:  make(chan struct{}, maxAsyncRequests),
	}
	c.log = b.log.With("remote", c.remote)
	c.ctx, c.cancel = context.WithCancel(b.ctx)
	c.fr.MaxFrameSize = b.opts.maxFrameSize()
	c.out.init(nc, b.opts.MaxOutboundBytesPerConnection)
	c.mu.producers = make(map[uint64]*producer)
	c.mu.consumers = make(map[uint64]*consumer)
	c.lastRead.Store(b.opts.Now().UnixNano())
	return c
}

// serve runs the connection until it ends.
func (c *conn) serve() {
	go c.out.writeLoop()
	if c.b.opts.HandshakeTimeout > 0 {
		_ = c.nc.SetReadDeadline(time.Now().Add(c.b.opts.HandshakeTimeout))
	}
	err := c.readLoop()
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && c.ctx.Err() == nil {
		c.log.Debug("broker: connection closed", "err", err)
	}
	c.shutdown()
}

// readLoop reads and serves frames until the connection fails or a frame
// is refused.
func (c *conn) readLoop() error {
	buf := c.rbuf
	start, end := 0, 0
	var f pulsar.Frame
	for {
		for start < end {
			n, err := c.fr.Next(buf[start:end], &f)
			if err != nil {
				if n > 0 && errors.Is(err, pulsar.ErrChecksum) {
					c.checksumFailed(&f, err)
				} else {
					c.protocolError(fmt.Errorf("broker: bad frame: %w", err))
				}
				return err
			}
			if n == 0 {
				break
			}
			if err := c.handleFrame(&f); err != nil {
				return err
			}
			start += n
		}
		if start == end {
			start, end = 0, 0
		}
		if need := pulsar.FrameLen(buf[start:end]); need > len(buf) {
			end = copy(buf, buf[start:end])
			if err := c.readBigFrame(buf, end, need); err != nil {
				return err
			}
			start, end = 0, 0
			continue
		} else if start+need > len(buf) {
			end = copy(buf, buf[start:end])
			start = 0
		}
		c.throttle()
		n, err := c.nc.Read(buf[end:])
		if n > 0 {
			end += n
			c.touch()
		}
		if err != nil {
			return err
		}
	}
}

// touch records that the client is alive.
func (c *conn) touch() {
	c.lastRead.Store(c.b.opts.Now().UnixNano())
	if c.pinged.Load() {
		c.pinged.Store(false)
	}
}

// fill reads until buf[:end] holds at least min bytes.
func (c *conn) fill(buf []byte, end, min int) (int, error) {
	for end < min {
		n, err := c.nc.Read(buf[end:])
		end += n
		if n > 0 {
			c.touch()
		}
		if err != nil && end < min {
			return end, err
		}
	}
	return end, nil
}

// readBigFrame reads a frame of need bytes that does not fit the read
// buffer; buf[:end] holds its start. A SEND's entry is read straight into
// the buffer that will hold it, so the payload is copied once, out of the
// socket; other frames are read whole into a buffer of their own.
func (c *conn) readBigFrame(buf []byte, end, need int) error {
	end, err := c.fill(buf, end, 8)
	if err != nil {
		return err
	}
	total := binary.BigEndian.Uint32(buf)
	cmdSize := int(binary.BigEndian.Uint32(buf[4:]))
	if cmdSize > int(total)-4 {
		err := fmt.Errorf("%w: command_size %d exceeds total_size %d - 4", pulsar.ErrMalformed, cmdSize, total)
		c.protocolError(err)
		return err
	}
	hdr := 8 + cmdSize
	if hdr+2 <= len(buf) && need-hdr >= pulsar.EntryHeaderSize {
		if end, err = c.fill(buf, end, hdr+2); err != nil {
			return err
		}
		if binary.BigEndian.Uint16(buf[hdr:]) == pulsar.MagicChecksum {
			if err := c.cmd.Decode(buf[8:hdr]); err != nil {
				c.protocolError(fmt.Errorf("broker: bad command: %w", err))
				return err
			}
			if c.connected && c.cmd.Type == pulsar.TypeSend {
				return c.readBigSend(buf[hdr:end], need-hdr)
			}
		}
	}
	tb := c.b.opts.Pool.Get(need)
	defer tb.Release()
	k := copy(tb.Bytes(), buf[:end])
	if _, err := io.ReadFull(c.nc, tb.Bytes()[k:]); err != nil {
		return err
	}
	c.touch()
	var f pulsar.Frame
	n, err := c.fr.Next(tb.Bytes(), &f)
	switch {
	case n > 0 && err != nil && errors.Is(err, pulsar.ErrChecksum):
		c.checksumFailed(&f, err)
		return err
	case err != nil || n != need:
		if err == nil {
			err = fmt.Errorf("%w: frame of %d bytes parsed as %d", pulsar.ErrMalformed, need, n)
		}
		c.protocolError(fmt.Errorf("broker: bad frame: %w", err))
		return err
	}
	return c.handleFrame(&f)
}

// readBigSend reads the rest of a SEND's entry (entryLen bytes, of which
// have arrived) into a pooled buffer and publishes it. c.cmd holds the
// decoded SEND.
func (c *conn) readBigSend(have []byte, entryLen int) error {
	eb := c.b.opts.Pool.Get(entryLen)
	k := copy(eb.Bytes(), have)
	if _, err := io.ReadFull(c.nc, eb.Bytes()[k:]); err != nil {
		eb.Release()
		return err
	}
	c.touch()
	if _, _, err := pulsar.ParseEntry(eb.Bytes()); err != nil {
		eb.Release()
		if errors.Is(err, pulsar.ErrChecksum) {
			c.sendError(&c.cmd.Send, pulsar.ChecksumError, "checksum mismatch")
			c.out.sendAndClose(nil)
			return err
		}
		c.protocolError(fmt.Errorf("broker: bad SEND entry: %w", err))
		return err
	}
	return c.handleSend(&c.cmd.Send, eb)
}

// throttle holds the read loop while the connection has too many publishes
// awaiting persistence (until half of them completed, as Pulsar resumes),
// the broker too many bytes of them, or the client does not read what it
// is sent.
func (c *conn) throttle() {
	max := int64(c.b.opts.MaxPendingPublishRequestsPerConnection)
	if c.pending.Load() < max && !c.b.publishBufferFull() && !c.out.full() {
		return
	}
	c.paused.Store(true)
	defer func() {
		c.paused.Store(false)
		c.touch() // the silence was ours
	}()
	for c.ctx.Err() == nil {
		switch {
		case c.out.full():
			c.out.waitRoom(c.ctx.Done())
		case c.pending.Load() > max/2:
			select {
			case <-c.resume:
			case <-c.ctx.Done():
			}
		case c.b.publishBufferFull():
			select {
			case <-c.b.publishRoom():
			case <-c.ctx.Done():
			}
		default:
			return
		}
	}
}

// publishDone is called when one of the connection's SENDs completed.
func (c *conn) publishDone() {
	n := c.pending.Add(-1)
	if c.paused.Load() && n <= int64(c.b.opts.MaxPendingPublishRequestsPerConnection)/2 {
		select {
		case c.resume <- struct{}{}:
		default:
		}
	}
}

// handleFrame decodes and serves one frame. An error ends the connection
// (the reply, if any, is already queued).
func (c *conn) handleFrame(f *pulsar.Frame) error {
	cmd := &c.cmd
	if err := cmd.Decode(f.Command); err != nil {
		c.protocolError(fmt.Errorf("broker: bad command: %w", err))
		return err
	}
	if !c.connected {
		if cmd.Type != pulsar.TypeConnect {
			err := fmt.Errorf("broker: expected CONNECT, got %v", cmd.Type)
			c.protocolError(err)
			return err
		}
		return c.handleConnect(&cmd.Connect)
	}
	switch cmd.Type {
	case pulsar.TypeSend:
		if f.Payload == nil {
			c.sendError(&cmd.Send, pulsar.NotAllowedError, "SEND without a payload")
			return nil
		}
		var eb *bufs.Buf
		if f.Entry != nil {
			eb = c.b.opts.Pool.Get(len(f.Entry))
			copy(eb.Bytes(), f.Entry)
		} else {
			// A client older than protocol v6 sends no checksum; add one,
			// so that every stored entry starts with the magic.
			n := pulsar.EntryHeaderSize + len(f.Metadata) + len(f.Body)
			eb = c.b.opts.Pool.Get(n)
			pulsar.AppendEntryRaw(eb.Bytes()[:0], f.Metadata, f.Body)
		}
		return c.handleSend(&cmd.Send, eb)
	case pulsar.TypeFlow:
		c.handleFlow(&cmd.Flow)
	case pulsar.TypeAck:
		c.handleAck(&cmd.Ack)
	case pulsar.TypePing:
		c.sendPong()
	case pulsar.TypePong:
	case pulsar.TypeRedeliverUnacknowledgedMessages:
		c.handleRedeliver(&cmd.RedeliverUnacknowledgedMessages)
	case pulsar.TypeProducer:
		req := cloneProducer(&cmd.Producer)
		c.async(func() { c.handleProducer(req) })
	case pulsar.TypeCloseProducer:
		c.handleCloseProducer(&cmd.CloseProducer)
	case pulsar.TypeSubscribe:
		req := cloneSubscribe(&cmd.Subscribe)
		c.async(func() { c.handleSubscribe(req) })
	case pulsar.TypeCloseConsumer:
		c.handleCloseConsumer(&cmd.CloseConsumer)
	case pulsar.TypeUnsubscribe:
		req := cmd.Unsubscribe
		c.async(func() { c.handleUnsubscribe(&req) })
	case pulsar.TypeSeek:
		req := cmd.Seek
		req.MessageID.AckSet = nil
		req.MessageID.FirstChunkMessageID = nil
		c.async(func() { c.handleSeek(&req) })
	case pulsar.TypeGetLastMessageID:
		req := cmd.GetLastMessageID
		c.async(func() { c.handleGetLastMessageID(&req) })
	case pulsar.TypeConsumerStats:
		c.handleConsumerStats(&cmd.ConsumerStats)
	case pulsar.TypeLookup:
		req := cmd.Lookup
		req.Properties = nil
		c.async(func() { c.handleLookup(&req) })
	case pulsar.TypePartitionedMetadata:
		req := cmd.PartitionedMetadata
		c.async(func() { c.handlePartitionedMetadata(&req) })
	case pulsar.TypeGetTopicsOfNamespace:
		req := cmd.GetTopicsOfNamespace
		c.async(func() { c.handleGetTopicsOfNamespace(&req) })
	case pulsar.TypeGetSchema:
		req := cmd.GetSchema
		req.SchemaVersion = cloneBytes(req.SchemaVersion)
		c.async(func() { c.handleGetSchema(&req) })
	case pulsar.TypeGetOrCreateSchema:
		req := pulsar.CommandGetOrCreateSchema{RequestID: cmd.GetOrCreateSchema.RequestID,
			Topic: cmd.GetOrCreateSchema.Topic, Schema: cloneSchema(&cmd.GetOrCreateSchema.Schema)}
		c.async(func() { c.handleGetOrCreateSchema(&req) })
	case pulsar.TypeAuthResponse:
		// No authentication provider: nothing to refresh.
	case pulsar.TypeConnect:
		err := errors.New("broker: CONNECT on a connected connection")
		c.protocolError(err)
		return err
	default:
		if id, ok := cmd.RequestID(); ok {
			c.sendErrorResponse(id, pulsar.NotAllowedError, fmt.Sprintf("%v is not supported by this broker", cmd.Type))
		} else {
			c.log.Debug("broker: ignoring unsupported command", "type", cmd.Type)
		}
	}
	return nil
}

// handleConnect answers the handshake.
func (c *conn) handleConnect(cc *pulsar.CommandConnect) error {
	c.clientVersion = cc.ClientVersion
	c.protocolVersion = cc.ProtocolVersion
	c.connectedSince = c.b.opts.Now()
	c.connected = true
	c.established.Store(true)
	_ = c.nc.SetReadDeadline(time.Time{})
	var r pulsar.Command
	r.Type = pulsar.TypeConnected
	r.Connected = pulsar.CommandConnected{
		ServerVersion:   serverVersion,
		ProtocolVersion: min(cc.ProtocolVersion, maxProtocolVersion),
		MaxMessageSize:  int32(c.b.opts.MaxMessageSize),
		HasFeatureFlags: true,
	}
	c.out.sendCommand(&r)
	return nil
}

// async serves a request on a goroutine of its own, holding one of the
// connection's request slots.
func (c *conn) async(fn func()) {
	select {
	case c.slots <- struct{}{}:
	case <-c.ctx.Done():
		return
	}
	c.requests.Add(1)
	go func() {
		defer func() {
			<-c.slots
			c.requests.Done()
		}()
		fn()
	}()
}

// opContext is the context of one request's metadata and storage work.
func (c *conn) opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, c.b.opts.OperationTimeout)
}

// protocolError answers a frame the broker cannot accept with ERROR and
// closes the connection once that is written.
func (c *conn) protocolError(err error) {
	c.log.Warn("broker: closing connection after a protocol error", "err", err)
	id := uint64(errNoRequestID)
	if rid, ok := c.cmd.RequestID(); ok && c.cmd.Type.Known() {
		id = rid
	}
	var r pulsar.Command
	r.Type = pulsar.TypeError
	r.Error = pulsar.CommandError{RequestID: id, Error: pulsar.UnknownError, Message: err.Error()}
	c.out.sendAndClose(&r)
}

// checksumFailed answers a SEND whose payload fails its checksum with
// SEND_ERROR ChecksumError, as Pulsar does, and closes the connection: the
// client reconnects and sends the message again.
func (c *conn) checksumFailed(f *pulsar.Frame, err error) {
	if c.connected && c.cmd.Decode(f.Command) == nil && c.cmd.Type == pulsar.TypeSend {
		c.log.Warn("broker: SEND with a bad checksum", "producer", c.cmd.Send.ProducerID, "err", err)
		c.sendError(&c.cmd.Send, pulsar.ChecksumError, "checksum mismatch")
		c.out.sendAndClose(nil)
		return
	}
	c.protocolError(fmt.Errorf("broker: bad frame: %w", err))
}

// ---- Responses ----

func (c *conn) sendSuccess(requestID uint64) {
	b := c.out.lock()
	if b == nil {
		return
	}
	at := len(b.ctrl)
	b.ctrl = pulsar.AppendSuccessFrame(b.ctrl, requestID)
	c.out.commit(b, at)
	c.out.unlock()
}

func (c *conn) sendErrorResponse(requestID uint64, code pulsar.ServerError, msg string) {
	b := c.out.lock()
	if b == nil {
		return
	}
	at := len(b.ctrl)
	b.ctrl = pulsar.AppendErrorFrame(b.ctrl, requestID, code, msg)
	c.out.commit(b, at)
	c.out.unlock()
}

func (c *conn) sendPong() {
	b := c.out.lock()
	if b == nil {
		return
	}
	at := len(b.ctrl)
	b.ctrl = pulsar.AppendPongFrame(b.ctrl)
	c.out.commit(b, at)
	c.out.unlock()
}

func (c *conn) sendPing() {
	b := c.out.lock()
	if b == nil {
		return
	}
	at := len(b.ctrl)
	b.ctrl = pulsar.AppendPingFrame(b.ctrl)
	c.out.commit(b, at)
	c.out.unlock()
}

// sendError sends SEND_ERROR for s.
func (c *conn) sendError(s *pulsar.CommandSend, code pulsar.ServerError, msg string) {
	var r pulsar.Command
	r.Type = pulsar.TypeSendError
	r.SendError = pulsar.CommandSendError{ProducerID: s.ProducerID, SequenceID: s.SequenceID, Error: code, Message: msg}
	c.out.sendCommand(&r)
}

// ---- Registry of producers and consumers ----

func (c *conn) producer(id uint64) *producer {
	c.mu.Lock()
	p := c.mu.producers[id]
	c.mu.Unlock()
	return p
}

func (c *conn) consumer(id uint64) *consumer {
	c.mu.Lock()
	cs := c.mu.consumers[id]
	c.mu.Unlock()
	return cs
}

// removeProducer forgets p if it is still registered under its id.
func (c *conn) removeProducer(p *producer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.producers[p.id] == p {
		delete(c.mu.producers, p.id)
		return true
	}
	return false
}

// removeConsumer forgets cs if it is still registered under its id.
func (c *conn) removeConsumer(cs *consumer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.consumers[cs.id] == cs {
		delete(c.mu.consumers, cs.id)
		return true
	}
	return false
}

// shutdown ends the connection: flushes a farewell frame if one was queued,
// closes the socket, and removes the connection's producers and consumers.
func (c *conn) shutdown() {
	c.out.mu.Lock()
	closing := c.out.mu.closing
	c.out.mu.Unlock()
	if closing {
		t := time.NewTimer(farewellTimeout)
		select {
		case <-c.out.done:
		case <-t.C:
		}
		t.Stop()
	}
	c.out.close()
	_ = c.nc.Close()
	<-c.out.done
	c.cancel()
	c.requests.Wait()

	c.mu.Lock()
	c.mu.closed = true
	producers := c.mu.producers
	consumers := c.mu.consumers
	c.mu.producers = map[uint64]*producer{}
	c.mu.consumers = map[uint64]*consumer{}
	c.mu.Unlock()
	for _, p := range producers {
		p.close()
	}
	for _, cs := range consumers {
		cs.close(false)
	}
	c.b.removeConn(c)
}

// ---- Copies of commands served on other goroutines ----
//
// A decoded command aliases the read buffer and reuses its slices for the
// next frame; what leaves the read loop is copied first.

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func cloneKeyValues(kvs []pulsar.KeyValue) []pulsar.KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	return append([]pulsar.KeyValue(nil), kvs...)
}

func cloneSchema(s *pulsar.Schema) pulsar.Schema {
	return pulsar.Schema{Name: s.Name, SchemaData: cloneBytes(s.SchemaData), Type: s.Type,
		Properties: cloneKeyValues(s.Properties)}
}

func cloneProducer(p *pulsar.CommandProducer) *pulsar.CommandProducer {
	r := *p
	r.Metadata = cloneKeyValues(p.Metadata)
	if p.HasSchema {
		r.Schema = cloneSchema(&p.Schema)
	} else {
		r.Schema = pulsar.Schema{}
	}
	return &r
}

func cloneSubscribe(s *pulsar.CommandSubscribe) *pulsar.CommandSubscribe {
	r := *s
	r.Metadata = cloneKeyValues(s.Metadata)
	r.SubscriptionProperties = cloneKeyValues(s.SubscriptionProperties)
	r.StartMessageID.AckSet = nil
	r.StartMessageID.FirstChunkMessageID = nil
	if s.HasSchema {
		r.Schema = cloneSchema(&s.Schema)
	} else {
		r.Schema = pulsar.Schema{}
	}
	r.KeySharedMeta.HashRanges = append([]pulsar.IntRange(nil), s.KeySharedMeta.HashRanges...)
	return &r
}
