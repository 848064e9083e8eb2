package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/wire/pulsar"
)

// connKey names a connection: the address it dials, and, when a lookup
// said to go through the service URL (a proxy), the broker it is meant for.
type connKey struct {
	physical string // host:port dialled
	logical  string // host:port of the broker behind a proxy; "" when direct
}

// readBufferSize is the initial read buffer of a connection; it grows to
// hold the largest frame seen (bounded by the maximum frame size).
const readBufferSize = 64 << 10

// conn is one connection to a broker: a write loop, a read loop, and the
// producers, consumers and requests that use it.
//
// Lock order: a producer's or consumer's lock, then conn.mu, then conn.wmu.
type conn struct {
	cl             *Client
	key            connKey
	nc             net.Conn
	log            *slog.Logger
	maxMessageSize int

	// Write queue: frames in the order they were queued. The write loop
	// takes the whole queue at once.
	wmu     sync.Mutex
	wq      []*bufs.Buf
	wclosed bool
	wsig    chan struct{} // capacity 1: "the queue is not empty"

	done      chan struct{} // closed by close
	closeOnce sync.Once
	err       error // why it closed; written before done is closed

	mu        sync.Mutex
	rpcs      map[uint64]chan rpcReply // nil once closed
	producers atomic.Pointer[map[uint64]*partProducer]
	consumers atomic.Pointer[map[uint64]*partConsumer]

	lastRead atomic.Int64 // client clock (ns) of the last frame received
	lastPing atomic.Int64 // client clock of the last PING sent
}

// rpcReply is what a reply to a request carries, copied out of the read
// loop's reused Command.
type rpcReply struct {
	typ            pulsar.Type
	err            error
	partitions     uint32
	lookup         pulsar.CommandLookupTopicResponse
	producerName   string
	lastSequenceID int64
}

// dialConn opens a connection and performs the CONNECT handshake.
func dialConn(ctx context.Context, cl *Client, key connKey) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, cl.opts.ConnectTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", key.physical)
	if err != nil {
		return nil, fmt.Errorf("%w: dial %s: %v", ErrConnectionClosed, key.physical, err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(deadline)
	}
	c := &conn{
		cl:   cl,
		key:  key,
		nc:   nc,
		log:  cl.log.With("broker", key.physical),
		wsig: make(chan struct{}, 1),
		done: make(chan struct{}),
		rpcs: map[uint64]chan rpcReply{},
	}
	c.producers.Store(&map[uint64]*partProducer{})
	c.consumers.Store(&map[uint64]*partConsumer{})
	rest, err := c.handshake()
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	now := cl.now()
	c.lastRead.Store(now)
	c.lastPing.Store(now)
	go c.writeLoop()
	go c.readLoop(rest)
	return c, nil
}

// handshake sends CONNECT and reads the first frame, which must be
// CONNECTED (or ERROR). It returns the bytes read past that frame.
func (c *conn) handshake() ([]byte, error) {
	var cmd pulsar.Command
	cmd.Type = pulsar.TypeConnect
	cmd.Connect = pulsar.CommandConnect{
		ClientVersion:    c.cl.opts.ClientVersion,
		ProtocolVersion:  pulsar.ProtocolVersion,
		AuthMethodName:   "",
		ProxyToBrokerURL: c.key.logical,
		FeatureFlags:     pulsar.FeatureFlags{SupportsBrokerEntryMetadata: true},
		HasFeatureFlags:  true,
	}
	if _, err := c.nc.Write(pulsar.AppendFrame(nil, &cmd)); err != nil {
		return nil, fmt.Errorf("%w: %s: send CONNECT: %v", ErrConnectionClosed, c.key.physical, err)
	}
	buf := make([]byte, 0, 4096)
	var fr pulsar.FrameReader
	var f pulsar.Frame
	for {
		n, err := fr.Next(buf, &f)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: handshake: %v", ErrProtocol, c.key.physical, err)
		}
		if n > 0 {
			if err := cmd.Decode(f.Command); err != nil {
				return nil, fmt.Errorf("%w: %s: handshake: %v", ErrProtocol, c.key.physical, err)
			}
			switch cmd.Type {
			case pulsar.TypeConnected:
				c.maxMessageSize = int(cmd.Connected.MaxMessageSize)
				if c.maxMessageSize <= 0 {
					c.maxMessageSize = pulsar.DefaultMaxMessageSize
				}
				return buf[n:], nil
			case pulsar.TypeError:
				return nil, &ServerError{Code: cmd.Error.Error, Message: cmd.Error.Message}
			}
			return nil, fmt.Errorf("%w: %s: first frame is %v, want CONNECTED", ErrProtocol, c.key.physical, cmd.Type)
		}
		if need := pulsar.FrameLen(buf); need > cap(buf) {
			nb := make([]byte, len(buf), need)
			copy(nb, buf)
			buf = nb
		}
		m, err := c.nc.Read(buf[len(buf):cap(buf)])
		if err != nil {
			return nil, fmt.Errorf("%w: %s: handshake: %v", ErrConnectionClosed, c.key.physical, err)
		}
		buf = buf[:len(buf)+m]
	}
}

// closed reports whether the connection is closed.
func (c *conn) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// closeErr is the error that closed the connection, wrapping
// ErrConnectionClosed.
func (c *conn) closeErr() error {
	<-c.done
	return c.err
}

// close closes the connection and fails everything that depends on it.
func (c *conn) close(cause error) {
	c.closeOnce.Do(func() {
		if cause == nil || errors.Is(cause, io.EOF) {
			cause = fmt.Errorf("%w: %s: closed by the broker", ErrConnectionClosed, c.key.physical)
		} else if !errors.Is(cause, ErrConnectionClosed) && !errors.Is(cause, ErrClosed) {
			cause = fmt.Errorf("%w: %s: %w", ErrConnectionClosed, c.key.physical, cause)
		}
		c.err = cause
		close(c.done)
		_ = c.nc.Close()

		c.wmu.Lock()
		q := c.wq
		c.wq, c.wclosed = nil, true
		c.wmu.Unlock()
		for _, b := range q {
			b.Release()
		}

		c.mu.Lock()
		rpcs := c.rpcs
		c.rpcs = nil
		c.mu.Unlock()
		for _, ch := range rpcs {
			ch <- rpcReply{err: cause}
		}
		for _, p := range *c.producers.Load() {
			p.fail(cause)
		}
		for _, pc := range *c.consumers.Load() {
			pc.parent.fail(cause)
		}
		c.cl.forgetConn(c)
		if !errors.Is(cause, ErrClosed) {
			c.log.Debug("client: connection closed", "err", cause)
		}
	})
}

// enqueue queues one frame; the write loop releases it once written. It
// fails only when the connection is closed.
func (c *conn) enqueue(b *bufs.Buf) error {
	c.wmu.Lock()
	if c.wclosed {
		c.wmu.Unlock()
		b.Release()
		return c.closeErr()
	}
	c.wq = append(c.wq, b)
	c.wmu.Unlock()
	select {
	case c.wsig <- struct{}{}:
	default:
	}
	return nil
}

// writeLoop writes whatever is queued with one vectored write per round:
// frames that pile up during a write go out together in the next one.
func (c *conn) writeLoop() {
	var batch []*bufs.Buf
	var iov net.Buffers
	for {
		select {
		case <-c.wsig:
		case <-c.done:
			return
		}
		c.wmu.Lock()
		batch, c.wq = c.wq, batch[:0]
		c.wmu.Unlock()
		if len(batch) == 0 {
			continue
		}
		iov = iov[:0]
		for _, b := range batch {
			iov = append(iov, b.Bytes())
		}
		w := iov // WriteTo consumes its receiver
		_, err := w.WriteTo(c.nc)
		for i, b := range batch {
			b.Release()
			batch[i] = nil
		}
		clear(iov)
		if err != nil {
			c.close(fmt.Errorf("write: %w", err))
			return
		}
	}
}

// readLoop reads frames and dispatches them until the connection fails.
func (c *conn) readLoop(initial []byte) {
	buf := make([]byte, max(readBufferSize, len(initial)))
	end := copy(buf, initial)
	start := 0
	maxFrame := c.maxMessageSize + pulsar.FramePadding
	fr := pulsar.FrameReader{MaxFrameSize: maxFrame}
	var f pulsar.Frame
	var cmd pulsar.Command
	for {
		for start < end {
			n, err := fr.Next(buf[start:end], &f)
			if err != nil && !(n > 0 && errors.Is(err, pulsar.ErrChecksum)) {
				c.close(fmt.Errorf("%w: %v", ErrProtocol, err))
				return
			}
			if n == 0 {
				break
			}
			c.lastRead.Store(c.cl.now())
			if err := c.dispatch(&f, &cmd, err != nil); err != nil {
				c.close(err)
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
			c.close(err)
			return
		}
		end += n
	}
}

// dispatch handles one frame. A returned error closes the connection.
func (c *conn) dispatch(f *pulsar.Frame, cmd *pulsar.Command, badChecksum bool) error {
	if err := cmd.Decode(f.Command); err != nil {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	switch cmd.Type {
	case pulsar.TypeSendReceipt:
		r := &cmd.SendReceipt
		if p := (*c.producers.Load())[r.ProducerID]; p != nil {
			return p.receipt(r.SequenceID, &r.MessageID)
		}
	case pulsar.TypeMessage:
		m := &cmd.Message
		pc := (*c.consumers.Load())[m.ConsumerID]
		if pc == nil {
			return nil // closed meanwhile; its permits die with it
		}
		if badChecksum {
			permits := 1
			var md pulsar.MessageMetadata
			if md.Decode(f.Metadata) == nil {
				permits = md.NumMessages()
			}
			pc.discard(m, pulsar.ChecksumMismatch, fmt.Errorf("%w: checksum mismatch", ErrCorruptMessage), permits)
			return nil
		}
		pc.deliver(m, f)
	case pulsar.TypePing:
		b := bufs.Get(16)
		return c.enqueueIfOpen(sealFrame(b, pulsar.AppendPongFrame(b.Bytes()[:0])))
	case pulsar.TypePong, pulsar.TypeActiveConsumerChange:
	case pulsar.TypeSendError:
		e := &cmd.SendError
		if p := (*c.producers.Load())[e.ProducerID]; p != nil {
			p.sendError(e.SequenceID, &ServerError{Code: e.Error, Message: e.Message})
		}
	case pulsar.TypeCloseProducer:
		if p := (*c.producers.Load())[cmd.CloseProducer.ProducerID]; p != nil {
			c.removeProducer(p.id)
			p.fail(fmt.Errorf("%w: producer closed by the broker", ErrConnectionClosed))
		}
	case pulsar.TypeCloseConsumer:
		if pc := (*c.consumers.Load())[cmd.CloseConsumer.ConsumerID]; pc != nil {
			c.removeConsumer(pc.id)
			pc.parent.fail(fmt.Errorf("%w: consumer closed by the broker", ErrConnectionClosed))
		}
	case pulsar.TypeAuthChallenge:
		var reply pulsar.Command
		reply.Type = pulsar.TypeAuthResponse
		reply.AuthResponse = pulsar.CommandAuthResponse{
			ClientVersion:   c.cl.opts.ClientVersion,
			Response:        pulsar.AuthData{AuthMethodName: "none", AuthData: []byte{}},
			HasResponse:     true,
			ProtocolVersion: pulsar.ProtocolVersion,
		}
		return c.enqueueIfOpen(bufs.Wrap(pulsar.AppendFrame(nil, &reply)))
	default:
		if id, ok := cmd.RequestID(); ok {
			c.complete(id, cmd)
			return nil
		}
		c.log.Debug("client: ignored command", "type", cmd.Type)
	}
	return nil
}

// enqueueIfOpen is enqueue that treats a closed connection as done: the
// read loop learns of the closure on its next read.
func (c *conn) enqueueIfOpen(b *bufs.Buf) error {
	if err := c.enqueue(b); err != nil && !c.closed() {
		return err
	}
	return nil
}

// complete hands a reply to the request waiting for it.
func (c *conn) complete(id uint64, cmd *pulsar.Command) {
	r := rpcReply{typ: cmd.Type}
	switch cmd.Type {
	case pulsar.TypeError:
		r.err = &ServerError{Code: cmd.Error.Error, Message: cmd.Error.Message}
	case pulsar.TypeProducerSuccess:
		if !cmd.ProducerSuccess.ProducerReady {
			return // the producer waits for exclusive access; a second reply follows
		}
		r.producerName = cmd.ProducerSuccess.ProducerName
		r.lastSequenceID = cmd.ProducerSuccess.LastSequenceID
	case pulsar.TypePartitionedMetadataResponse:
		pm := &cmd.PartitionedMetadataResponse
		if pm.Response == pulsar.PartitionedMetadataFailed || pm.HasError {
			r.err = &ServerError{Code: pm.Error, Message: pm.Message}
		}
		r.partitions = pm.Partitions
	case pulsar.TypeLookupResponse:
		r.lookup = cmd.LookupResponse
	}
	c.mu.Lock()
	ch := c.rpcs[id]
	delete(c.rpcs, id)
	c.mu.Unlock()
	if ch != nil {
		ch <- r
	}
}

// request sends a request frame and waits for the reply with its id.
func (c *conn) request(ctx context.Context, id uint64, frame *bufs.Buf) (rpcReply, error) {
	ch := make(chan rpcReply, 1)
	c.mu.Lock()
	if c.rpcs == nil {
		c.mu.Unlock()
		frame.Release()
		return rpcReply{}, c.closeErr()
	}
	c.rpcs[id] = ch
	c.mu.Unlock()
	if err := c.enqueue(frame); err != nil {
		return rpcReply{}, err
	}
	select {
	case r := <-ch:
		return r, r.err
	case <-ctx.Done():
		c.mu.Lock()
		if c.rpcs != nil {
			delete(c.rpcs, id)
		}
		c.mu.Unlock()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return rpcReply{}, fmt.Errorf("%w: request to %s: %w", ErrTimeout, c.key.physical, ctx.Err())
		}
		return rpcReply{}, ctx.Err()
	}
}

// requestCommand encodes cmd as a frame and sends it as a request.
func (c *conn) requestCommand(ctx context.Context, id uint64, cmd *pulsar.Command) (rpcReply, error) {
	return c.request(ctx, id, bufs.Wrap(pulsar.AppendFrame(nil, cmd)))
}

func (c *conn) addProducer(p *partProducer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rpcs == nil {
		return c.err
	}
	old := *c.producers.Load()
	m := make(map[uint64]*partProducer, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[p.id] = p
	c.producers.Store(&m)
	return nil
}

func (c *conn) removeProducer(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.producers.Load()
	if _, ok := old[id]; !ok {
		return
	}
	m := make(map[uint64]*partProducer, len(old))
	for k, v := range old {
		if k != id {
			m[k] = v
		}
	}
	c.producers.Store(&m)
}

func (c *conn) addConsumer(pc *partConsumer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rpcs == nil {
		return c.err
	}
	old := *c.consumers.Load()
	m := make(map[uint64]*partConsumer, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[pc.id] = pc
	c.consumers.Store(&m)
	return nil
}

func (c *conn) removeConsumer(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.consumers.Load()
	if _, ok := old[id]; !ok {
		return
	}
	m := make(map[uint64]*partConsumer, len(old))
	for k, v := range old {
		if k != id {
			m[k] = v
		}
	}
	c.consumers.Store(&m)
}

// keepAlive pings when due and closes the connection when nothing was
// received for two intervals.
func (c *conn) keepAlive(now int64) {
	interval := int64(c.cl.opts.KeepAliveInterval)
	if now-c.lastRead.Load() > 2*interval {
		c.close(fmt.Errorf("%w: %s: nothing received for %v", ErrConnectionClosed, c.key.physical, 2*c.cl.opts.KeepAliveInterval))
		return
	}
	if now-c.lastPing.Load() >= interval {
		c.lastPing.Store(now)
		b := bufs.Get(16)
		_ = c.enqueue(sealFrame(b, pulsar.AppendPingFrame(b.Bytes()[:0])))
	}
}

// sealFrame sets b's length to the frame appended into its memory as out,
// or, when out outgrew b and was reallocated, swaps b for a wrapper of out.
func sealFrame(b *bufs.Buf, out []byte) *bufs.Buf {
	full := b.Bytes()
	full = full[:cap(full)]
	if len(out) > 0 && len(out) <= len(full) && &full[0] == &out[0] {
		b.SetLen(len(out))
		return b
	}
	b.Release()
	return bufs.Wrap(out)
}
