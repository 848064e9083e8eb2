package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/wire/bk"
)

// Client creates, writes, reads, recovers and deletes ledgers. It is safe
// for concurrent use. Close it to release its connections and goroutines.
type Client struct {
	opts     Options
	log      *slog.Logger
	meta     metaIO
	place    *placement
	pool     *pool
	batchIDs atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		closed  bool
		writers map[*WriteHandle]struct{}
	}
}

// NewClient makes a client. It starts watching the registered bookies; it
// does no blocking I/O.
func NewClient(opts Options) (*Client, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	c := &Client{
		opts: opts,
		log:  opts.Logger,
		meta: metaIO{store: opts.Store, root: opts.LedgersRoot, attempts: opts.MetadataUpdateAttempts},
	}
	c.place = newPlacement(opts.Store, opts.LedgersRoot, opts.Logger)
	c.pool = newPool(&c.opts)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.mu.writers = map[*WriteHandle]struct{}{}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.place.watch(c.ctx)
	}()
	return c, nil
}

// Close fails the pending adds of every open write handle (their ledgers
// stay OPEN, to be recovered), closes the connections and stops the
// client's goroutines.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.closed = true
	writers := slices.Collect(maps.Keys(c.mu.writers))
	c.mu.writers = nil
	c.mu.Unlock()
	for _, h := range writers {
		h.abort(ErrClientClosed)
	}
	c.cancel()
	c.pool.close()
	c.wg.Wait()
	return nil
}

func (c *Client) forgetWriter(h *WriteHandle) {
	c.mu.Lock()
	delete(c.mu.writers, h)
	c.mu.Unlock()
}

// Bookies returns the writable bookies the client knows of.
func (c *Client) Bookies() []string { return c.place.bookies() }

// RefreshBookies re-reads the registered bookies now (the client also
// watches them).
func (c *Client) RefreshBookies(ctx context.Context) error { return c.place.refresh(ctx) }

// CreateLedger creates a ledger striped over o.Ensemble bookies chosen from
// the writable ones, stores its metadata (state OPEN) and returns its
// write handle.
func (c *Client) CreateLedger(ctx context.Context, o CreateOptions) (*WriteHandle, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	ens, err := c.place.choose(o.Ensemble, nil)
	if errors.Is(err, ErrNotEnoughBookies) {
		if rerr := c.place.refresh(ctx); rerr != nil {
			return nil, rerr
		}
		ens, err = c.place.choose(o.Ensemble, nil)
	}
	if err != nil {
		return nil, err
	}
	password := bytes.Clone(o.Password)
	if password == nil {
		password = []byte{}
	}
	var custom map[string][]byte
	if len(o.Custom) > 0 {
		custom = make(map[string][]byte, len(o.Custom))
		for k, v := range o.Custom {
			custom[k] = bytes.Clone(v)
		}
	}
	md := &Metadata{
		EnsembleSize: o.Ensemble, WriteQuorum: o.WriteQuorum, AckQuorum: o.AckQuorum,
		State: StateOpen, LastEntry: base.InvalidEntry,
		Segments:   []Segment{{FirstEntry: 0, Bookies: ens}},
		DigestType: c.opts.DigestType,
		Password:   password,
		Ctime:      time.Now().UnixMilli(), HasCtime: true,
		Custom: custom,
	}
	dig, err := bk.NewDigester(md.DigestType, password)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	closed := c.mu.closed
	c.mu.Unlock()
	if closed {
		return nil, ErrClientClosed
	}
	id, version, err := c.meta.create(ctx, md)
	if err != nil {
		return nil, err
	}
	h := newWriteHandle(c, id, md, version, bk.GenerateMasterKey(password), dig, false, base.InvalidEntry, 0)
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		h.abort(ErrClientClosed)
		return nil, ErrClientClosed
	}
	c.mu.writers[h] = struct{}{}
	c.mu.Unlock()
	c.log.Debug("ledger: created", "ledger", id, "ensemble", ens)
	return h, nil
}

// OpenLedger opens ledger id for reading. The password must be the one it
// was created with. With o.Recovery an OPEN ledger is fenced and closed
// first (see the package comment); without, the handle reads up to the
// last add confirmed.
func (c *Client) OpenLedger(ctx context.Context, id base.LedgerID, password []byte, o OpenOptions) (*ReadHandle, error) {
	md, version, err := c.meta.read(ctx, id)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(md.Password, password) {
		return nil, fmt.Errorf("%w: wrong password for ledger %d", ErrUnauthorized, id)
	}
	dig, err := bk.NewDigester(md.DigestType, password)
	if err != nil {
		return nil, fmt.Errorf("%w: ledger %d: %w", ErrMetadata, id, err)
	}
	key := bk.GenerateMasterKey(password)
	if o.Recovery && md.State != StateClosed {
		md, _, err = c.recover(ctx, id, md, version, key, dig)
		if err != nil {
			return nil, err
		}
	}
	return newReadHandle(c, id, md, key, dig), nil
}

// DeleteLedger removes the ledger's metadata. Bookies garbage-collect the
// entries of ledgers whose metadata is gone; nothing is sent to them.
func (c *Client) DeleteLedger(ctx context.Context, id base.LedgerID) error {
	return c.meta.remove(ctx, id)
}

// LedgerMetadata reads a ledger's metadata.
func (c *Client) LedgerMetadata(ctx context.Context, id base.LedgerID) (*Metadata, error) {
	md, _, err := c.meta.read(ctx, id)
	return md, err
}
