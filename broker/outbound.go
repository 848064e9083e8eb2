package broker

import (
	"net"
	"sync"

	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/wire/pulsar"
)

// outbound is a connection's send queue. Any goroutine appends frames to it
// (the read loop's responses, the managed ledger's receipts, the
// dispatcher's deliveries); the connection's write loop takes everything
// queued at once and writes it with one vectored write (net.Buffers, which
// is writev on TCP). While it writes, the next batch accumulates in the
// other of two batches, so the queue batches by itself under load and costs
// one write per frame when idle.
//
// Control frames and MESSAGE headers are encoded into the batch's ctrl
// buffer; entry payloads are not copied: the batch holds a reference to
// their buffer and a segment pointing at it, released once written.
//
// Bounds: MESSAGE payloads are bounded by the consumers' permits (the
// dispatcher never exceeds them). Everything else is counted in queued, and
// the read loop stops reading requests while queued exceeds its limit
// (waitRoom), so a client that does not read cannot grow the queue.
type outbound struct {
	nc   net.Conn
	wake chan struct{} // capacity 1: the write loop has work
	room chan struct{} // capacity 1: queued fell below the limit
	done chan struct{} // closed when the write loop has exited

	mu struct {
		sync.Mutex
		cur     *outBatch
		queued  int  // bytes queued or being written
		closing bool // write what is queued, then close the socket
		closed  bool // drop everything
		waiting bool // the read loop waits for room
		err     error
	}
	limit int

	// Write loop only.
	spare *outBatch
	nb    net.Buffers
	iov   [][]byte
}

// outBatch is the content of one vectored write.
type outBatch struct {
	ctrl []byte
	segs []outSeg
	size int
}

// outSeg is ctrl[start:end], or buf's bytes when buf is not nil.
type outSeg struct {
	start, end int
	buf        *bufs.Buf
}

func (o *outbound) init(nc net.Conn, limit int) {
	o.nc = nc
	o.limit = limit
	o.wake = make(chan struct{}, 1)
	o.room = make(chan struct{}, 1)
	o.done = make(chan struct{})
	o.mu.cur = &outBatch{ctrl: make([]byte, 0, 4096)}
	o.spare = &outBatch{ctrl: make([]byte, 0, 4096)}
}

// lock returns the batch to append to with o.mu held, or nil (with the lock
// released) when the queue is closed. The caller appends with the helpers
// below and calls unlock.
func (o *outbound) lock() *outBatch {
	o.mu.Lock()
	if o.mu.closed || o.mu.closing {
		o.mu.Unlock()
		return nil
	}
	return o.mu.cur
}

// unlock releases o.mu and wakes the write loop.
func (o *outbound) unlock() {
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// commit records that ctrl grew from at to its current length.
func (o *outbound) commit(b *outBatch, at int) {
	n := len(b.ctrl) - at
	b.size += n
	o.mu.queued += n
	if k := len(b.segs) - 1; k >= 0 && b.segs[k].buf == nil && b.segs[k].end == at {
		b.segs[k].end = len(b.ctrl)
		return
	}
	b.segs = append(b.segs, outSeg{start: at, end: len(b.ctrl)})
}

// addBuf appends buf's bytes, taking over one reference.
func (o *outbound) addBuf(b *outBatch, buf *bufs.Buf) {
	b.size += buf.Len()
	b.segs = append(b.segs, outSeg{buf: buf})
}

// send queues an encoded frame (copied).
func (o *outbound) send(frame []byte) {
	b := o.lock()
	if b == nil {
		return
	}
	at := len(b.ctrl)
	b.ctrl = append(b.ctrl, frame...)
	o.commit(b, at)
	o.unlock()
}

// sendCommand encodes and queues a simple command frame.
func (o *outbound) sendCommand(c *pulsar.Command) {
	b := o.lock()
	if b == nil {
		return
	}
	at := len(b.ctrl)
	b.ctrl = pulsar.AppendFrame(b.ctrl, c)
	o.commit(b, at)
	o.unlock()
}

// sendAndClose queues a last frame (nil for none); the write loop writes
// what is queued and then closes the connection.
func (o *outbound) sendAndClose(c *pulsar.Command) {
	b := o.lock()
	if b == nil {
		return
	}
	if c != nil {
		at := len(b.ctrl)
		b.ctrl = pulsar.AppendFrame(b.ctrl, c)
		o.commit(b, at)
	}
	o.mu.closing = true
	o.unlock()
}

// close drops whatever is queued and stops the write loop.
func (o *outbound) close() {
	o.mu.Lock()
	o.mu.closed = true
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// full reports whether control frames exceed the limit.
func (o *outbound) full() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.mu.queued > o.limit && !o.mu.closed
}

// queuedBytes is the control bytes queued or being written.
func (o *outbound) queuedBytes() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.mu.queued
}

// waitRoom blocks while the queue holds more than its limit, until it
// drains or closes or stop is closed.
func (o *outbound) waitRoom(stop <-chan struct{}) {
	for {
		o.mu.Lock()
		if o.mu.queued <= o.limit || o.mu.closed || o.mu.closing {
			o.mu.waiting = false
			o.mu.Unlock()
			return
		}
		o.mu.waiting = true
		o.mu.Unlock()
		select {
		case <-o.room:
		case <-o.done:
			return
		case <-stop:
			return
		}
	}
}

// writeLoop writes batches until the queue closes or a write fails; then it
// closes the socket and releases everything still queued.
func (o *outbound) writeLoop() {
	defer close(o.done)
	for {
		o.mu.Lock()
		for o.mu.cur.size == 0 && !o.mu.closed && !o.mu.closing {
			o.mu.Unlock()
			<-o.wake
			o.mu.Lock()
		}
		if o.mu.closed {
			o.mu.Unlock()
			break
		}
		b := o.mu.cur
		closing := o.mu.closing
		o.mu.cur = o.spare
		o.mu.Unlock()

		err := o.write(b)
		o.spare = b

		o.mu.Lock()
		o.mu.queued -= len(b.ctrl)
		wakeReader := o.mu.waiting && o.mu.queued <= o.limit
		if err != nil {
			o.mu.closed = true
			o.mu.err = err
		}
		stop := o.mu.closed || closing && o.mu.cur.size == 0
		o.mu.Unlock()
		b.reset()
		if wakeReader {
			select {
			case o.room <- struct{}{}:
			default:
			}
		}
		if stop {
			break
		}
	}
	_ = o.nc.Close()
	o.mu.Lock()
	o.mu.closed = true
	b := o.mu.cur
	o.mu.Unlock()
	b.reset()
}

// write writes b with one vectored write.
func (o *outbound) write(b *outBatch) error {
	if b.size == 0 {
		return nil
	}
	iov := o.iov[:0]
	for _, s := range b.segs {
		if s.buf != nil {
			iov = append(iov, s.buf.Bytes())
		} else {
			iov = append(iov, b.ctrl[s.start:s.end])
		}
	}
	o.iov = iov
	o.nb = iov
	_, err := o.nb.WriteTo(o.nc)
	clear(iov)
	return err
}

// reset releases the payload references and empties b.
func (b *outBatch) reset() {
	for i := range b.segs {
		if buf := b.segs[i].buf; buf != nil {
			buf.Release()
		}
		b.segs[i] = outSeg{}
	}
	b.segs = b.segs[:0]
	b.ctrl = b.ctrl[:0]
	b.size = 0
	if cap(b.ctrl) > 1<<20 {
		b.ctrl = make([]byte, 0, 4096) // do not pin a burst's buffer
	}
}
