package ledger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/wire/bk"
)

// A conn is one TCP connection to a bookie, speaking one protocol: v2 for
// adds and reads (requests and responses matched by (ledger, entry,
// operation)), or v3 for LAC long polls (matched by txnId). BookKeeper's
// bookie decides a connection's protocol from its first frame, so the two
// never share a connection.
//
// Goroutines: a dialler (once), then a read loop and a write loop. Senders
// register a request and queue it; the write loop writes everything queued
// with one vectored write (the entry payloads are separate iovecs, never
// copied); the read loop matches responses and completes requests. A
// request holds one of MaxInflight slots from send until it completes, so
// senders block when a bookie falls behind. When the connection fails,
// every request on it completes with an error wrapping ErrConnection, and
// the pool makes a new connection for the next sender.
//
// Lock order: a conn's mu may be taken under a write handle's addMu, never
// under its mu, and is never held while calling out (completions run with
// no conn lock held).
type conn struct {
	pool   *pool
	bookie string
	proto  bk.Protocol
	slots  chan struct{} // inflight semaphore: a send puts, a completion takes

	nc   net.Conn // set by the dialler under mu before the loops start
	wake chan struct{}
	done chan struct{} // closed when the connection fails

	mu struct {
		sync.Mutex
		err     error
		pending map[reqKey]*request // v2, chained by next for equal keys
		txns    map[uint64]*request // v3
		out     []*request          // queued for the write loop
		nextTxn uint64
	}
}

type reqKey struct {
	ledger base.LedgerID
	entry  int64 // the entry id, or a batch read's request id
	op     bk.OpCode
}

// responder receives the outcome of a request. complete runs on a
// connection goroutine (or the sender's, for an immediate failure) with no
// lock held; it must not block. res and the bytes it aliases are valid
// only during the call.
type responder interface {
	complete(r *request, res *response)
}

type response struct {
	err error // transport failure or timeout; nil when the bookie answered
	rc  bk.RC // v2 return code (also set for v3 from the status)
	// data: a READ's entry, or a BATCH_READ's [size][entry]... sequence,
	// aliasing the frame.
	data []byte
	v3   *bk.Response // v3 requests only
}

// failure is the error of a response: the transport error or the bookie's
// return code.
func (res *response) failure() error {
	if res.err != nil {
		return res.err
	}
	return res.rc.Err()
}

// request is one request to one bookie. Requests are pooled; refs counts
// the connection's map entry and the write queue.
type request struct {
	refs atomic.Int32

	key      reqKey
	v3       bool
	txn      uint64
	head     []byte // frame bytes (into arr unless larger)
	arr      [128]byte
	payload  *bufs.Buf // written after head; the request holds a reference
	deadline int64     // client clock, ns
	next     *request

	target responder
	// Fields for the responder.
	bookie  string
	index   int          // ensemble index or write-set position
	entry   base.EntryID // entry of an add or read
	count   int          // entries asked for by a batch read
	tag     uint64       // responder-specific
	v3Build func(dst []byte, txn uint64) []byte
}

var requestPool = sync.Pool{New: func() any { return new(request) }}

func newRequest() *request {
	r := requestPool.Get().(*request)
	r.head = r.arr[:0]
	return r
}

func (r *request) release() {
	if r.refs.Add(-1) != 0 {
		return
	}
	*r = request{head: r.arr[:0]}
	requestPool.Put(r)
}

// drop releases a request that was never sent.
func (r *request) drop() {
	if r.payload != nil {
		r.payload.Release()
		r.payload = nil
	}
	r.refs.Store(1)
	r.release()
}

func newConn(p *pool, bookie string, proto bk.Protocol) *conn {
	c := &conn{
		pool: p, bookie: bookie, proto: proto,
		slots: make(chan struct{}, p.opts.MaxInflight),
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	c.mu.pending = map[reqKey]*request{}
	c.mu.txns = map[uint64]*request{}
	return c
}

// newFailedConn is a conn that fails every request with err (during the
// reconnect backoff).
func newFailedConn(p *pool, bookie string, proto bk.Protocol, err error) *conn {
	c := newConn(p, bookie, proto)
	c.mu.err = err
	close(c.done)
	return c
}

// dial connects and starts the loops; requests queued meanwhile are then
// written.
func (c *conn) dial() {
	ctx, cancel := context.WithTimeout(context.Background(), c.pool.opts.ConnectTimeout)
	defer cancel()
	stop := context.AfterFunc(c.pool.ctx, cancel)
	defer stop()
	addr, err := c.pool.opts.BookieResolver(c.bookie)
	var nc net.Conn
	if err == nil {
		nc, err = c.pool.opts.Dial(ctx, "tcp", addr)
	}
	if err != nil {
		c.pool.dialFailed(c.bookie)
		c.fail(fmt.Errorf("%w: dialling bookie %s: %w", ErrConnection, c.bookie, err))
		return
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c.mu.Lock()
	failed := c.mu.err != nil
	if !failed {
		c.nc = nc
	}
	c.mu.Unlock()
	if failed { // closed while dialling
		nc.Close()
		return
	}
	c.pool.wg.Add(2) // from the counted dial goroutine
	go func() {
		defer c.pool.wg.Done()
		c.readLoop()
	}()
	go func() {
		defer c.pool.wg.Done()
		c.writeLoop()
	}()
}

func (c *conn) failed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// send registers r and queues it for writing. It blocks while the
// connection has MaxInflight requests outstanding, until r's deadline. On
// any failure r is completed with the error before send returns. It
// returns the txnId of a v3 request, 0 if r was not registered; r itself
// may be completed and recycled by the time send returns.
func (c *conn) send(r *request) (txn uint64) {
	select {
	case c.slots <- struct{}{}:
	default:
		if err := c.waitSlot(r); err != nil {
			c.completeNow(r, err)
			return 0
		}
	}
	c.mu.Lock()
	if err := c.mu.err; err != nil {
		c.mu.Unlock()
		<-c.slots
		c.completeNow(r, err)
		return 0
	}
	if r.v3 {
		c.mu.nextTxn++
		r.txn = c.mu.nextTxn
		r.head = r.v3Build(r.arr[:0], r.txn)
		c.mu.txns[r.txn] = r
	} else {
		if prev := c.mu.pending[r.key]; prev != nil {
			for prev.next != nil {
				prev = prev.next
			}
			prev.next = r
		} else {
			c.mu.pending[r.key] = r
		}
	}
	r.refs.Store(2)
	txn = r.txn
	c.mu.out = append(c.mu.out, r)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return txn
}

func (c *conn) waitSlot(r *request) error {
	wait := r.deadline - c.pool.now()
	if wait <= 0 {
		return fmt.Errorf("%w: %d requests outstanding to bookie %s", ErrTimeout, c.pool.opts.MaxInflight, c.bookie)
	}
	t := c.pool.timer(wait)
	defer t.Stop()
	select {
	case c.slots <- struct{}{}:
		return nil
	case <-t.C:
		return fmt.Errorf("%w: %d requests outstanding to bookie %s", ErrTimeout, c.pool.opts.MaxInflight, c.bookie)
	case <-c.done:
		c.mu.Lock()
		err := c.mu.err
		c.mu.Unlock()
		return err
	}
}

// completeNow fails a request that was never registered.
func (c *conn) completeNow(r *request, err error) {
	c.pool.bookieError(c.bookie, err)
	res := response{err: err}
	r.target.complete(r, &res)
	r.drop()
}

func (c *conn) writeLoop() {
	var (
		batch []*request
		iov   [][]byte
	)
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		c.mu.Lock()
		batch, c.mu.out = c.mu.out, batch[:0]
		c.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		iov = iov[:0]
		for _, r := range batch {
			iov = append(iov, r.head)
			if r.payload != nil {
				iov = append(iov, r.payload.Bytes())
			}
		}
		nb := net.Buffers(iov)
		_, err := nb.WriteTo(c.nc)
		for i, r := range batch {
			if r.payload != nil {
				r.payload.Release()
				r.payload = nil
			}
			r.release()
			batch[i] = nil
		}
		clear(iov)
		if err != nil {
			c.fail(fmt.Errorf("%w: writing to bookie %s: %w", ErrConnection, c.bookie, err))
			return
		}
	}
}

func (c *conn) readLoop() {
	fr := bk.NewFrameReader(c.nc, 0, 0)
	var (
		v2  bk.V2Response
		v3  bk.Response
		res response // reused: handed to responders by pointer
	)
	for {
		body, err := fr.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			c.fail(fmt.Errorf("%w: reading from bookie %s: %w", ErrConnection, c.bookie, err))
			return
		}
		var r *request
		res = response{}
		if c.proto == bk.ProtocolV2 {
			if err := v2.Decode(body); err != nil {
				c.fail(fmt.Errorf("%w: bookie %s: %w", ErrProtocol, c.bookie, err))
				return
			}
			key := reqKey{ledger: v2.LedgerID, entry: int64(v2.EntryID), op: v2.Header.Op}
			if v2.Header.Op == bk.OpBatchReadEntry {
				key.entry = v2.RequestID
			}
			r = c.takeV2(key)
			res.rc, res.data = v2.RC, v2.Data
		} else {
			if err := v3.Decode(body); err != nil {
				c.fail(fmt.Errorf("%w: bookie %s: %w", ErrProtocol, c.bookie, err))
				return
			}
			r = c.takeV3(v3.Header.TxnID)
			res.v3 = &v3
			res.rc = v3.Status.RC()
		}
		if r == nil {
			continue // answered after a timeout, or unsolicited
		}
		<-c.slots
		if res.rc != bk.RCOK {
			c.pool.bookieError(c.bookie, res.rc.Err())
		}
		r.target.complete(r, &res)
		r.release()
	}
}

func (c *conn) takeV2(key reqKey) *request {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.mu.pending[key]
	if r == nil {
		return nil
	}
	if r.next != nil {
		c.mu.pending[key] = r.next
		r.next = nil
	} else {
		delete(c.mu.pending, key)
	}
	return r
}

func (c *conn) takeV3(txn uint64) *request {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.mu.txns[txn]
	if r != nil {
		delete(c.mu.txns, txn)
	}
	return r
}

// cancel forgets a registered request (a long poll no longer wanted),
// completing it with err.
func (c *conn) cancel(r *request, txn uint64, err error) {
	c.mu.Lock()
	got := c.mu.txns[txn]
	if got == nil || got != r {
		c.mu.Unlock()
		return
	}
	delete(c.mu.txns, txn)
	c.mu.Unlock()
	<-c.slots
	res := response{err: err}
	r.target.complete(r, &res)
	r.release()
}

// fail closes the connection and completes everything outstanding with
// err.
func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.mu.err != nil {
		c.mu.Unlock()
		return
	}
	c.mu.err = err
	var reqs []*request
	for k, r := range c.mu.pending {
		for ; r != nil; r = r.next {
			reqs = append(reqs, r)
		}
		delete(c.mu.pending, k)
	}
	for k, r := range c.mu.txns {
		reqs = append(reqs, r)
		delete(c.mu.txns, k)
	}
	out := c.mu.out
	c.mu.out = nil
	nc := c.nc
	c.mu.Unlock()
	close(c.done)
	if nc != nil {
		nc.Close()
	}
	c.pool.forget(c)
	for _, r := range out { // the write loop's references
		if r.payload != nil {
			r.payload.Release()
			r.payload = nil
		}
		r.release()
	}
	if len(reqs) > 0 {
		c.pool.bookieError(c.bookie, err)
	}
	for _, r := range reqs {
		r.next = nil
		<-c.slots
		res := response{err: err}
		r.target.complete(r, &res)
		r.release()
	}
}

// expire completes the requests whose deadline passed with ErrTimeout.
func (c *conn) expire(now int64) {
	var expired []*request
	c.mu.Lock()
	for k, head := range c.mu.pending {
		var keep, tail *request
		for r := head; r != nil; {
			next := r.next
			r.next = nil
			if r.deadline <= now {
				expired = append(expired, r)
			} else if keep == nil {
				keep, tail = r, r
			} else {
				tail.next, tail = r, r
			}
			r = next
		}
		if keep == nil {
			delete(c.mu.pending, k)
		} else {
			c.mu.pending[k] = keep
		}
	}
	for k, r := range c.mu.txns {
		if r.deadline <= now {
			expired = append(expired, r)
			delete(c.mu.txns, k)
		}
	}
	c.mu.Unlock()
	if len(expired) == 0 {
		return
	}
	err := fmt.Errorf("%w: bookie %s", ErrTimeout, c.bookie)
	c.pool.bookieError(c.bookie, err)
	for _, r := range expired {
		<-c.slots
		res := response{err: err}
		r.target.complete(r, &res)
		r.release()
	}
}

// close fails the connection (client shutdown).
func (c *conn) close() { c.fail(ErrClientClosed) }
