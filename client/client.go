package client

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magnetar/magnetar/internal/wire/pulsar"
)

// Client is a connection pool to a Pulsar service, and the factory of
// producers and consumers. It is safe for concurrent use.
type Client struct {
	opts    Options
	service connKey
	log     *slog.Logger
	base    time.Time // origin of the client clock (monotonic)
	zstd    zstdCodec

	requestID  atomic.Uint64
	producerID atomic.Uint64
	consumerID atomic.Uint64

	mu        sync.Mutex
	closed    bool
	pools     map[connKey]*connPool
	producers map[*partProducer]struct{}
	consumers map[*Consumer]struct{}

	done        chan struct{}
	janitorDone chan struct{}
}

// connPool is the connections to one address, created on first use.
type connPool struct {
	next  atomic.Uint32
	slots []connSlot
}

type connSlot struct {
	mu sync.Mutex // held while dialling, so one dial per slot
	c  *conn
}

// Dial connects to the service at serviceURL (pulsar://host[:port], port
// 6650 by default) and returns a client once the first connection completed
// its handshake.
func Dial(ctx context.Context, serviceURL string, opts Options) (*Client, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	addr, err := parseServiceURL(serviceURL)
	if err != nil {
		return nil, err
	}
	c := &Client{
		opts:        opts,
		service:     connKey{physical: addr},
		log:         opts.Logger,
		base:        time.Now(),
		pools:       map[connKey]*connPool{},
		producers:   map[*partProducer]struct{}{},
		consumers:   map[*Consumer]struct{}{},
		done:        make(chan struct{}),
		janitorDone: make(chan struct{}),
	}
	if _, err := c.getConn(ctx, c.service); err != nil {
		return nil, err
	}
	go c.janitor()
	return c, nil
}

// parseServiceURL returns host:port of a pulsar:// URL.
func parseServiceURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrInvalidURL, s, err)
	}
	if u.Scheme != "pulsar" {
		return "", fmt.Errorf("%w: %q: scheme %q, want pulsar:// (TLS is not supported)", ErrInvalidURL, s, u.Scheme)
	}
	host, port := u.Hostname(), u.Port()
	if host == "" {
		return "", fmt.Errorf("%w: %q: no host", ErrInvalidURL, s)
	}
	if port == "" {
		port = "6650"
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("%w: %q: bad port", ErrInvalidURL, s)
	}
	return net.JoinHostPort(host, port), nil
}

// now is the client clock: nanoseconds since the client was created,
// monotonic.
func (c *Client) now() int64 { return int64(time.Since(c.base)) }

// Close closes every producer, consumer and connection of the client.
// Pending sends fail with ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	consumers := make([]*Consumer, 0, len(c.consumers))
	for cons := range c.consumers {
		consumers = append(consumers, cons)
	}
	pools := make([]*connPool, 0, len(c.pools))
	for _, p := range c.pools {
		pools = append(pools, p)
	}
	c.mu.Unlock()
	// Slot locks are taken without c.mu: getConn holds a slot's lock while
	// dialling and then takes c.mu.
	var conns []*conn
	for _, p := range pools {
		for i := range p.slots {
			s := &p.slots[i]
			s.mu.Lock()
			if s.c != nil {
				conns = append(conns, s.c)
			}
			s.mu.Unlock()
		}
	}
	close(c.done)
	<-c.janitorDone
	for _, cons := range consumers {
		cons.flushAcks()
	}
	for _, cn := range conns {
		cn.close(ErrClosed)
	}
	c.zstd.close()
	return nil
}

// opContext bounds ctx by the operation timeout.
func (c *Client) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.opts.OperationTimeout)
}

// getConn returns a connection to key, dialling it if needed; successive
// calls go round-robin over the ConnectionsPerBroker slots.
func (c *Client) getConn(ctx context.Context, key connKey) (*conn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	p := c.pools[key]
	if p == nil {
		p = &connPool{slots: make([]connSlot, c.opts.ConnectionsPerBroker)}
		c.pools[key] = p
	}
	c.mu.Unlock()
	s := &p.slots[int(p.next.Add(1)-1)%len(p.slots)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != nil && !s.c.closed() {
		return s.c, nil
	}
	cn, err := dialConn(ctx, c, key)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		cn.close(ErrClosed)
		return nil, ErrClosed
	}
	s.c = cn
	return cn, nil
}

// forgetConn drops a closed connection from its pool.
func (c *Client) forgetConn(cn *conn) {
	c.mu.Lock()
	p := c.pools[cn.key]
	c.mu.Unlock()
	if p == nil {
		return
	}
	for i := range p.slots {
		s := &p.slots[i]
		if s.mu.TryLock() {
			if s.c == cn {
				s.c = nil
			}
			s.mu.Unlock()
		}
	}
}

// TopicPartitions returns the number of partitions of topic (0 for a topic
// that is not partitioned), asking the service with PARTITIONED_METADATA.
func (c *Client) TopicPartitions(ctx context.Context, topic string) (int, error) {
	full, err := FullTopicName(topic)
	if err != nil {
		return 0, err
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	cn, err := c.getConn(ctx, c.service)
	if err != nil {
		return 0, err
	}
	id := c.requestID.Add(1)
	var cmd pulsar.Command
	cmd.Type = pulsar.TypePartitionedMetadata
	cmd.PartitionedMetadata = pulsar.CommandPartitionedTopicMetadata{Topic: full, RequestID: id}
	r, err := cn.requestCommand(ctx, id, &cmd)
	if err != nil {
		return 0, fmt.Errorf("partitioned metadata of %s: %w", full, err)
	}
	if r.typ != pulsar.TypePartitionedMetadataResponse {
		return 0, fmt.Errorf("%w: %v in reply to PARTITIONED_METADATA", ErrProtocol, r.typ)
	}
	return int(r.partitions), nil
}

// maxRedirects bounds a lookup's redirects (the Go client's limit).
const maxRedirects = 20

// lookup finds the broker that serves topic: LOOKUP on the service
// connection, following Redirect answers (with the authoritative flag they
// carry) until one says Connect.
func (c *Client) lookup(ctx context.Context, topic string) (connKey, error) {
	key := c.service
	authoritative := false
	for range maxRedirects + 1 {
		cn, err := c.getConn(ctx, key)
		if err != nil {
			return connKey{}, err
		}
		id := c.requestID.Add(1)
		var cmd pulsar.Command
		cmd.Type = pulsar.TypeLookup
		cmd.Lookup = pulsar.CommandLookupTopic{Topic: topic, RequestID: id, Authoritative: authoritative}
		r, err := cn.requestCommand(ctx, id, &cmd)
		if err != nil {
			return connKey{}, fmt.Errorf("lookup of %s: %w", topic, err)
		}
		if r.typ != pulsar.TypeLookupResponse {
			return connKey{}, fmt.Errorf("%w: %v in reply to LOOKUP", ErrProtocol, r.typ)
		}
		lr := &r.lookup
		if lr.Response == pulsar.LookupFailed || lr.HasError {
			return connKey{}, fmt.Errorf("lookup of %s: %w", topic, &ServerError{Code: lr.Error, Message: lr.Message})
		}
		if lr.BrokerServiceURL == "" {
			return connKey{}, fmt.Errorf("%w: lookup of %s: no broker URL", ErrProtocol, topic)
		}
		addr, err := parseServiceURL(lr.BrokerServiceURL)
		if err != nil {
			return connKey{}, fmt.Errorf("%w: lookup of %s: %v", ErrProtocol, topic, err)
		}
		switch lr.Response {
		case pulsar.LookupConnect:
			if lr.ProxyThroughServiceURL {
				return connKey{physical: c.service.physical, logical: addr}, nil
			}
			return connKey{physical: addr}, nil
		case pulsar.LookupRedirect:
			key, authoritative = connKey{physical: addr}, lr.Authoritative
		default:
			return connKey{}, fmt.Errorf("%w: lookup of %s: response %d", ErrProtocol, topic, lr.Response)
		}
	}
	return connKey{}, fmt.Errorf("%w: lookup of %s: more than %d redirects", ErrProtocol, topic, maxRedirects)
}

// janitor runs the client's timers: keep-alive pings, send timeouts and
// grouped acknowledgements.
func (c *Client) janitor() {
	defer close(c.janitorDone)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var producers []*partProducer
	var consumers []*Consumer
	var conns []*conn
	lastKeepAlive := c.now()
	for {
		select {
		case <-tick.C:
		case <-c.done:
			return
		}
		now := c.now()
		producers, consumers, conns = producers[:0], consumers[:0], conns[:0]
		c.mu.Lock()
		for p := range c.producers {
			producers = append(producers, p)
		}
		for cons := range c.consumers {
			consumers = append(consumers, cons)
		}
		keepAlive := now-lastKeepAlive >= int64(time.Second)
		if keepAlive {
			lastKeepAlive = now
			for _, p := range c.pools {
				for i := range p.slots {
					if s := &p.slots[i]; s.mu.TryLock() {
						if s.c != nil {
							conns = append(conns, s.c)
						}
						s.mu.Unlock()
					}
				}
			}
		}
		c.mu.Unlock()
		for _, p := range producers {
			p.expire(now)
		}
		for _, cons := range consumers {
			cons.tick(now)
		}
		for _, cn := range conns {
			cn.keepAlive(now)
		}
		clear(producers)
		clear(consumers)
		clear(conns)
	}
}

func (c *Client) register(p *partProducer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.producers[p] = struct{}{}
	return true
}

func (c *Client) unregister(p *partProducer) {
	c.mu.Lock()
	delete(c.producers, p)
	c.mu.Unlock()
}

func (c *Client) registerConsumer(cons *Consumer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.consumers[cons] = struct{}{}
	return true
}

func (c *Client) unregisterConsumer(cons *Consumer) {
	c.mu.Lock()
	delete(c.consumers, cons)
	c.mu.Unlock()
}
