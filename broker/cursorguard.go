package broker

import (
	"sync"
	"time"

	"github.com/magnetar/magnetar/managedledger"
)

// readGuard is the cursor a subscription's dispatcher reads through. It
// passes everything to the managed ledger's cursor, and makes
// CancelPendingRead's failure temporary.
//
// The managed ledger now cancels a read registered during an earlier read's
// callback itself (the race described below is fixed at its source); the
// guard remains for waitIdle, which a dispatcher replacement needs, and as
// a safeguard. Folding waitIdle into the dispatcher's Close would let it go.
//
// Why it was written: the dispatcher takes a false from CancelPendingRead to mean that the
// read is completing, and waits for its callback. The managed ledger's
// cursor also answers false while it is still handing a just-registered
// request over (it is running a previous read's callback, inside which the
// dispatcher asked for the next read); the request then waits for new
// entries, and if none come, the dispatcher waits for ever (a SEEK hangs, a
// new consumer gets nothing). So when a cancel fails, the guard keeps
// trying in the background, and once it succeeds it completes the read
// with no entries, which ends the dispatcher's wait. While nothing goes
// wrong it adds one uncontended lock per read and allocates nothing.
type readGuard struct {
	managedledger.Cursor

	fwd forwarder
	mu  struct {
		sync.Mutex
		cb          managedledger.ReadCallback // the reader's, for the outstanding read
		outstanding bool
		gen         uint64 // counts reads
		retrying    bool
		stopped     bool // the subscription closed: stop retrying
	}
}

// forwarder is the guard's callback for the cursor's reads.
type forwarder struct{ g *readGuard }

func newReadGuard(c managedledger.Cursor) *readGuard {
	g := &readGuard{Cursor: c}
	g.fwd.g = g
	return g
}

// Retry bounds of a failed cancel.
const (
	cancelRetryMin = 100 * time.Microsecond
	cancelRetryMax = 20 * time.Millisecond
)

func (g *readGuard) ReadEntriesOrWait(max int, maxBytes int64, cb managedledger.ReadCallback) {
	g.mu.Lock()
	g.mu.cb = cb
	g.mu.outstanding = true
	g.mu.gen++
	g.mu.Unlock()
	g.Cursor.ReadEntriesOrWait(max, maxBytes, &g.fwd)
}

// ReadComplete passes the cursor's completion on.
func (f *forwarder) ReadComplete(entries []managedledger.Entry, err error) {
	g := f.g
	g.mu.Lock()
	cb, ok := g.mu.cb, g.mu.outstanding
	g.mu.cb, g.mu.outstanding = nil, false
	g.mu.Unlock()
	if !ok {
		// Completed already with no entries (see retryCancel); the cursor
		// cannot have served it then, but be safe with the buffers.
		for i := range entries {
			if entries[i].Data != nil {
				entries[i].Data.Release()
			}
		}
		return
	}
	cb.ReadComplete(entries, err)
}

func (g *readGuard) CancelPendingRead() bool {
	if g.Cursor.CancelPendingRead() {
		g.mu.Lock()
		g.mu.cb, g.mu.outstanding = nil, false
		g.mu.Unlock()
		return true
	}
	g.mu.Lock()
	if g.mu.outstanding && !g.mu.retrying {
		g.mu.retrying = true
		go g.retryCancel(g.mu.gen)
	}
	g.mu.Unlock()
	return false
}

// retryCancel tries to cancel read gen until it succeeds or the read
// completes by itself; a cancelled read is completed with no entries.
func (g *readGuard) retryCancel(gen uint64) {
	defer func() {
		g.mu.Lock()
		g.mu.retrying = false
		g.mu.Unlock()
	}()
	delay := cancelRetryMin
	for {
		time.Sleep(delay)
		delay = min(2*delay, cancelRetryMax)
		// Holding g.mu across the cancel keeps a newer read from being
		// registered in between (ReadEntriesOrWait takes it first). The
		// cursor calls the forwarder without its own lock held, so the
		// order g.mu, then the cursor's, is safe.
		g.mu.Lock()
		if !g.mu.outstanding || g.mu.gen != gen || g.mu.stopped {
			g.mu.Unlock()
			return
		}
		if !g.Cursor.CancelPendingRead() {
			g.mu.Unlock()
			continue
		}
		cb := g.mu.cb
		g.mu.cb, g.mu.outstanding = nil, false
		g.mu.Unlock()
		cb.ReadComplete(nil, nil)
		return
	}
}

// stop ends the retries: the subscription and its cursor are closing.
func (g *readGuard) stop() {
	g.mu.Lock()
	g.mu.stopped = true
	g.mu.Unlock()
}

// waitIdle waits (at most timeout) until no read is outstanding: after a
// dispatcher closed, before another one reads the cursor.
func (g *readGuard) waitIdle(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	delay := cancelRetryMin
	for {
		g.mu.Lock()
		idle := !g.mu.outstanding
		g.mu.Unlock()
		if idle {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		if g.Cursor.CancelPendingRead() {
			g.mu.Lock()
			cb := g.mu.cb
			live := g.mu.outstanding
			g.mu.cb, g.mu.outstanding = nil, false
			g.mu.Unlock()
			if live && cb != nil {
				cb.ReadComplete(nil, nil)
			}
			return true
		}
		time.Sleep(delay)
		delay = min(2*delay, cancelRetryMax)
	}
}
