package ledger

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/wire/bk"
)

// pool holds the client's connections to bookies: per bookie and protocol,
// ConnectionsPerBookie connections, a ledger always using the same one so
// that its requests keep their order. A failed connection is forgotten and
// the next request dials a new one, unless the last dial to that bookie
// failed less than ReconnectBackoff ago. A monitor goroutine expires
// requests past their deadline.
type pool struct {
	opts   *Options
	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	epoch  time.Time
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		closed   bool
		conns    map[connKey]*conn
		dialFail map[string]time.Time
	}
}

type connKey struct {
	bookie string
	proto  bk.Protocol
	slot   int
}

func newPool(opts *Options) *pool {
	p := &pool{opts: opts, epoch: time.Now()}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.mu.conns = map[connKey]*conn{}
	p.mu.dialFail = map[string]time.Time{}
	p.wg.Add(1)
	go p.monitor()
	return p
}

// now is the client clock in nanoseconds (monotonic).
func (p *pool) now() int64 { return int64(time.Since(p.epoch)) }

func (p *pool) timer(ns int64) *time.Timer { return time.NewTimer(time.Duration(ns)) }

// deadline is the client clock d from now.
func (p *pool) deadline(d time.Duration) int64 { return p.now() + int64(d) }

// get returns the connection ledger l uses to bookie b.
func (p *pool) get(b string, proto bk.Protocol, l base.LedgerID) *conn {
	key := connKey{bookie: b, proto: proto, slot: int(uint64(l) % uint64(p.opts.ConnectionsPerBookie))}
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		return newFailedConn(p, b, proto, ErrClientClosed)
	}
	if c := p.mu.conns[key]; c != nil && !c.failed() {
		p.mu.Unlock()
		return c
	}
	if t, ok := p.mu.dialFail[b]; ok && time.Since(t) < p.opts.ReconnectBackoff {
		p.mu.Unlock()
		return newFailedConn(p, b, proto, fmt.Errorf("%w: bookie %s unreachable (retrying after %v)",
			ErrConnection, b, p.opts.ReconnectBackoff))
	}
	c := newConn(p, b, proto)
	p.mu.conns[key] = c
	p.wg.Add(1) // under mu, so that close's Wait comes after
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		c.dial()
	}()
	return c
}

func (p *pool) dialFailed(b string) {
	if p.opts.ReconnectBackoff <= 0 {
		return
	}
	p.mu.Lock()
	p.mu.dialFail[b] = time.Now()
	p.mu.Unlock()
}

// forget drops a failed connection from the pool.
func (p *pool) forget(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, x := range p.mu.conns {
		if x == c {
			delete(p.mu.conns, k)
			return
		}
	}
}

func (p *pool) bookieError(b string, err error) {
	if h := p.opts.Hooks.BookieError; h != nil {
		h(b, err)
	}
}

// checkInterval is how often the monitor looks for expired requests.
func (p *pool) checkInterval() time.Duration {
	d := min(p.opts.AddEntryTimeout, p.opts.ReadTimeout) / 10
	return min(max(d, 5*time.Millisecond), time.Second)
}

func (p *pool) monitor() {
	defer p.wg.Done()
	t := time.NewTicker(p.checkInterval())
	defer t.Stop()
	var conns []*conn
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		conns = conns[:0]
		p.mu.Lock()
		for _, c := range p.mu.conns {
			conns = append(conns, c)
		}
		p.mu.Unlock()
		now := p.now()
		for _, c := range conns {
			c.expire(now)
		}
		clear(conns)
	}
}

// close fails every connection and stops the monitor.
func (p *pool) close() {
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		return
	}
	p.mu.closed = true
	conns := make([]*conn, 0, len(p.mu.conns))
	for _, c := range p.mu.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	p.cancel()
	for _, c := range conns {
		c.close()
	}
	p.wg.Wait()
}
