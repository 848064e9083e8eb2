// Package server serves a bookie's engine over TCP with BookKeeper's wire
// protocol (internal/wire/bk): v2 binary ADD, READ (with fencing) and
// BATCH_READ with the master key, and v3 protobuf for every operation,
// telling the two apart per connection as BookKeeper does. A BookKeeper
// client, Magnetar's ledger client or Java's, can use a Magnetar bookie.
//
// Each connection has a read loop and a write loop. The read loop reads
// frames into large pooled chunks and hands an add's entry to the engine as
// a view of the chunk (bufs.View), so the entry is not copied on its way to
// the write cache; the engine copies it once into the journal's aligned
// buffer. Responses are appended to the connection's outbox; the write loop
// sends whatever accumulated with one vectored write, read entries as their
// own iovecs. Requests in flight per connection are bounded
// (MaxPendingRequests): when the bound is reached the read loop stops
// reading, which pushes back on the client through TCP.
//
// Adds of one ledger are answered in the order the journal made them
// durable, which is the order they arrived. Reads run on a pool of workers
// and may be answered out of order; clients match responses by ledger and
// entry (v2) or transaction id (v3), as BookKeeper's do.
//
// Bad frames (a length over MaxFrameSize, bytes that decode as neither
// protocol) close the connection; unknown v3 operations get EBADREQ. Other
// connections are unaffected.
//
// Deviations from BookKeeper: no TLS (START_TLS gets EBADREQ), no
// authentication plugins (AUTH answers AuthDisabledPlugin),
// GET_LIST_OF_ENTRIES_OF_LEDGER gets EBADREQ, and a v3 long-poll read that
// times out answers EOK with MaxLAC and no body.
package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/magnetar/magnetar/engine"
	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/wire/bk"
)

// Defaults.
const (
	DefaultMaxPendingRequests = 10000 // maxPendingAddRequestsPerThread
	DefaultReadWorkers        = 8     // numReadWorkerThreads
	DefaultChunkSize          = 1 << 20
	DefaultMaxLongPollWait    = 10 * time.Second
)

// Options configure a Server. Zero values mean defaults.
type Options struct {
	// Listener to serve on; if nil, Addr is listened on.
	Listener net.Listener
	Addr     string
	// MaxFrameSize bounds a request frame (nettyMaxFrameSizeBytes).
	MaxFrameSize int
	// MaxPendingRequests bounds requests in flight per connection.
	MaxPendingRequests int
	// ReadWorkers is the number of goroutines serving reads.
	ReadWorkers int
	// ChunkSize is the size of the buffers frames are read into.
	ChunkSize int
	// MaxLongPollWait caps the wait of a long-poll read.
	MaxLongPollWait time.Duration
	Logger          *slog.Logger
}

// EnsureDefaults fills in defaults.
func (o *Options) EnsureDefaults() {
	if o.MaxFrameSize == 0 {
		o.MaxFrameSize = bk.DefaultMaxFrameSize
	}
	if o.MaxPendingRequests == 0 {
		o.MaxPendingRequests = DefaultMaxPendingRequests
	}
	if o.ReadWorkers == 0 {
		o.ReadWorkers = DefaultReadWorkers
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.MaxLongPollWait == 0 {
		o.MaxLongPollWait = DefaultMaxLongPollWait
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.Listener == nil && o.Addr == "" {
		return errors.New("server: no listener and no address")
	}
	if o.MaxFrameSize < 1024 || o.MaxPendingRequests < 1 || o.ReadWorkers < 1 || o.ChunkSize < 4096 {
		return errors.New("server: frame size, pending requests, read workers or chunk size out of range")
	}
	return nil
}

// Server serves one engine.
type Server struct {
	opts Options
	eng  *engine.Bookie
	log  *slog.Logger
	ln   net.Listener

	ctx    context.Context
	cancel context.CancelFunc
	jobs   chan *readJob
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		conns map[*conn]struct{}
	}
	addOps   sync.Pool
	readJobs sync.Pool

	Stats struct {
		Connections, Adds, Reads, Errors, BadFrames atomic.Int64
	}
}

// New listens (unless a listener is given) and returns a server; Serve
// starts it.
func New(eng *engine.Bookie, opts Options) (*Server, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	ln := opts.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("server: listen: %w", err)
		}
	}
	s := &Server{opts: opts, eng: eng, log: opts.Logger, ln: ln, jobs: make(chan *readJob, 1024)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mu.conns = make(map[*conn]struct{})
	s.addOps.New = func() any { return new(addOp) }
	s.readJobs.New = func() any { return new(readJob) }
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until Close. It starts the read workers and
// returns at once.
func (s *Server) Serve() {
	for range s.opts.ReadWorkers {
		s.wg.Add(1)
		go s.readWorker()
	}
	s.wg.Add(1)
	go s.acceptLoop()
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Error("bookie server: accept failed", "err", err)
			return
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		c := newConn(s, nc)
		s.mu.Lock()
		s.mu.conns[c] = struct{}{}
		s.mu.Unlock()
		s.Stats.Connections.Add(1)
		s.wg.Add(2)
		go c.readLoop()
		go c.writeLoop()
	}
}

// Close stops accepting, closes every connection and waits for the loops.
func (s *Server) Close() error {
	s.cancel()
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.mu.conns {
		c.close(nil)
	}
	s.mu.Unlock()
	close(s.jobs)
	s.wg.Wait()
	return err
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.mu.conns, c)
	s.mu.Unlock()
}

// conn is one client connection.
type conn struct {
	s   *Server
	nc  net.Conn
	dec bk.RequestDecoder

	inflight chan struct{} // a token per request in flight

	// read side, owned by readLoop
	chunk      *bufs.Buf
	start, end int

	out struct {
		sync.Mutex
		head   []byte
		segs   []seg
		closed bool
	}
	wake      chan struct{}
	closeOnce sync.Once
	done      chan struct{}
}

// seg is a piece of the outbox: bytes [start, end) of head, or a body.
type seg struct {
	start, end int
	body       *bufs.Buf
}

func newConn(s *Server, nc net.Conn) *conn {
	return &conn{
		s:        s,
		nc:       nc,
		inflight: make(chan struct{}, s.opts.MaxPendingRequests),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
}

func (c *conn) close(err error) {
	c.closeOnce.Do(func() {
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			c.s.log.Info("bookie server: closing connection", "remote", c.nc.RemoteAddr().String(), "err", err)
		}
		_ = c.nc.Close()
		c.out.Lock()
		c.out.closed = true
		c.out.Unlock()
		close(c.done)
	})
}

// nextFrame returns the next frame's body as a slice of c.chunk, reading
// from the socket as needed. The slice stays valid while the chunk is
// referenced; views of it may outlive the call.
func (c *conn) nextFrame() ([]byte, error) {
	for {
		avail := c.end - c.start
		if avail >= 4 {
			n := int(binary.BigEndian.Uint32(c.chunk.Bytes()[c.start:]))
			if n < 0 || n+4 > c.s.opts.MaxFrameSize {
				return nil, fmt.Errorf("%w: frame of %d bytes (max %d)", bk.ErrFrameTooLarge, n, c.s.opts.MaxFrameSize)
			}
			if avail >= 4+n {
				body := c.chunk.Bytes()[c.start+4 : c.start+4+n]
				c.start += 4 + n
				return body, nil
			}
			if c.start+4+n > c.chunk.Len() {
				c.refill(4 + n)
			}
		} else if c.chunk == nil || c.start+4 > c.chunk.Len() {
			c.refill(4)
		}
		m, err := c.nc.Read(c.chunk.Bytes()[c.end:])
		c.end += m
		if err != nil && (m == 0 || !errors.Is(err, io.EOF)) {
			return nil, err
		}
	}
}

// refill moves the unparsed tail into a new chunk big enough for need bytes
// (a part of one frame at most: the only bytes ever moved).
func (c *conn) refill(need int) {
	size := max(c.s.opts.ChunkSize, need)
	nb := bufs.Get(size)
	n := 0
	if c.chunk != nil {
		n = copy(nb.Bytes(), c.chunk.Bytes()[c.start:c.end])
		c.chunk.Release()
	}
	c.chunk, c.start, c.end = nb, 0, n
}

func (c *conn) readLoop() {
	defer c.s.wg.Done()
	defer c.s.forget(c)
	defer func() {
		if c.chunk != nil {
			c.chunk.Release()
			c.chunk = nil
		}
	}()
	for {
		body, err := c.nextFrame()
		if err != nil {
			c.close(err)
			return
		}
		proto, err := c.dec.Decode(body)
		if err != nil {
			c.s.Stats.BadFrames.Add(1)
			c.close(fmt.Errorf("bad frame: %w", err))
			return
		}
		select {
		case c.inflight <- struct{}{}:
		case <-c.done:
			return
		}
		if proto == bk.ProtocolV2 {
			c.handleV2(body)
		} else {
			c.handleV3(body)
		}
	}
}

// view returns a buffer of the bytes of sub, a slice of the current chunk.
func (c *conn) view(sub []byte) *bufs.Buf {
	base0 := c.chunk.Bytes()
	off := int(uintptr(unsafe.Pointer(unsafe.SliceData(sub))) - uintptr(unsafe.Pointer(unsafe.SliceData(base0))))
	if len(sub) == 0 {
		off = 0
	}
	return c.chunk.View(off, off+len(sub))
}

func (c *conn) requestDone() { <-c.inflight }

// Outbox.

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// headLocked records head bytes appended since from.
func (c *conn) headLocked(from int) {
	n := len(c.out.segs)
	if n > 0 && c.out.segs[n-1].body == nil && c.out.segs[n-1].end == from {
		c.out.segs[n-1].end = len(c.out.head)
		return
	}
	c.out.segs = append(c.out.segs, seg{start: from, end: len(c.out.head)})
}

func (c *conn) bodyLocked(b *bufs.Buf) {
	c.out.segs = append(c.out.segs, seg{body: b})
}

func (c *conn) writeLoop() {
	defer c.s.wg.Done()
	var (
		head []byte
		segs []seg
		iov  net.Buffers
	)
	for {
		select {
		case <-c.wake:
		case <-c.done:
			c.out.Lock()
			for _, s := range c.out.segs {
				if s.body != nil {
					s.body.Release()
				}
			}
			c.out.segs = nil
			c.out.Unlock()
			return
		}
		c.out.Lock()
		head, c.out.head = c.out.head, head[:0]
		segs, c.out.segs = c.out.segs, segs[:0]
		c.out.Unlock()
		if len(segs) == 0 {
			continue
		}
		iov = iov[:0]
		for _, s := range segs {
			if s.body != nil {
				iov = append(iov, s.body.Bytes())
			} else {
				iov = append(iov, head[s.start:s.end])
			}
		}
		w := iov
		_, err := w.WriteTo(c.nc)
		for i := range segs {
			if segs[i].body != nil {
				segs[i].body.Release()
			}
			segs[i] = seg{}
		}
		for i := range iov {
			iov[i] = nil
		}
		if err != nil {
			c.close(err)
		}
	}
}

// addOp is a pooled add (or fence, or LAC write) awaiting the journal.
type addOp struct {
	c       *conn
	v3      bool
	version uint8
	txn     uint64
	op      bk.OperationType
	l       base.LedgerID
	e       base.EntryID
	// then, for a fencing read: the read to serve once the fence is durable.
	then *readJob
}

func (o *addOp) AddComplete(err error) {
	c, then := o.c, o.then
	if then != nil {
		if err != nil {
			then.fail(err)
		} else {
			// On the journal's sync goroutine: never block it on a full
			// job queue.
			select {
			case c.s.jobs <- then:
			default:
				go c.s.submit(then)
			}
		}
	} else {
		c.sendWriteResponse(o, err)
		c.requestDone()
	}
	*o = addOp{}
	c.s.addOps.Put(o)
}

func (c *conn) sendWriteResponse(o *addOp, err error) {
	c.out.Lock()
	if c.out.closed {
		c.out.Unlock()
		return
	}
	from := len(c.out.head)
	if !o.v3 {
		c.out.head = bk.AppendAddResponse(c.out.head, o.version, bk.RCFromError(err), o.l, o.e)
	} else {
		var r bk.Response
		r.Header = bk.BKPacketHeader{Version: bk.VersionThree, Operation: o.op, TxnID: o.txn}
		st := bk.StatusFromError(err)
		r.Status = st
		switch o.op {
		case bk.OperationAddEntry:
			r.HasAdd = true
			r.Add = bk.AddResponse{Status: st, LedgerID: o.l, EntryID: o.e}
		case bk.OperationWriteLAC:
			r.HasWriteLac = true
			r.WriteLac = bk.WriteLacResponse{Status: st, LedgerID: o.l}
		case bk.OperationForceLedger:
			r.HasForceLedger = true
			r.ForceLedger = bk.ForceLedgerResponse{Status: st, LedgerID: o.l}
		}
		c.out.head = r.AppendFrame(c.out.head)
	}
	c.headLocked(from)
	c.out.Unlock()
	c.signal()
	if err != nil {
		c.s.Stats.Errors.Add(1)
	}
}
