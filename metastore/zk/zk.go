// Package zk is the ZooKeeper backend of the metadata store, on
// github.com/go-zookeeper/zk, for clusters. A Store is one ZooKeeper
// session (one connection at a time) with the semantics of package
// metastore: the conformance suite holds it to the same behaviour as the
// embedded and memory stores.
//
// # Connection loss and sessions
//
// When the connection drops the store announces SessionSuspended and the
// client reconnects on its own; reconnecting within the session timeout
// keeps the session (SessionReconnected), its ephemeral nodes and watches.
// If it stays disconnected for Options.SessionTimeout, or the server says
// the session expired, the store announces SessionExpired, drops the
// connection and opens a new one, announcing SessionConnected with the new
// session id when it is established. It re-creates nothing by itself:
// owners re-register their ephemeral nodes on SessionConnected. A store that
// declares expiry after its own timer may do so slightly before the server
// deletes the old session's ephemeral nodes; an owner re-creating one may
// meet ErrNodeExists for a node whose EphemeralOwner is the old session, and
// retries once it is gone (watch it).
//
// # Retries
//
// Operations wait for a connection (up to the context's deadline, or
// Options.OperationTimeout when it has none; then ErrUnavailable) and are
// retried after a connection loss only where that is safe:
//
//   - Reads (Get, Exists, Children) and watch registrations: always.
//   - A request the client never sent (it failed with zk.ErrNoServer):
//     always.
//   - A write lost in flight, whose outcome is unknown, is verified by
//     reading the node, then retried or settled:
//     Create: the node is missing: retry; it holds our data and is ours
//     (ephemeral: owned by this session; persistent: any owner): success;
//     an ephemeral node of one of this store's earlier sessions:
//     ErrSessionExpired; anything else: ErrNodeExists. (Two clients
//     creating the same persistent path with identical data cannot be told
//     apart: claim things with ephemeral nodes, or put the owner in the
//     data.)
//     Put with a version v: version still v: retry; v+1 with our data:
//     success; anything else: ErrBadVersion. Put with AnyVersion: retry.
//     Delete: the node is gone: success; still at the expected version (or
//     AnyVersion): retry; otherwise ErrBadVersion.
//   - A Sequential create lost in flight is not retried: the server may
//     have created a node whose name we cannot know, and a retry would
//     create a second one. It fails with ErrOutcomeUnknown. (An ephemeral
//     sequential node, as the ledger id generator uses, vanishes with the
//     session anyway.)
//   - A context that ends while a write is in flight leaves its outcome
//     unknown: ErrOutcomeUnknown, wrapping the context's error.
//
// # Watches
//
// ZooKeeper watches fire once; each persistent watch of this store is a
// goroutine that re-arms it (exists or getChildren with a watch) after
// every event, after reconnection and on the new session after an expiry,
// and compares the node's state (existence, czxid, version or cversion)
// before and after, so that changes made while it was not armed are
// reported too.
//
// # Paths
//
// A chroot ("zk:host:2181/pulsar") prefixes every path; it is created at
// open if missing. Without a chroot, ZooKeeper's own /zookeeper node is left
// out of Children("/").
package zk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/magnetar/magnetar/metastore/internal/core"
)

// ParseURL splits a store URL "zk:host:port[,host:port...][/chroot]" (or
// "zk://...") into servers and chroot ("" for none).
func ParseURL(url string) (servers []string, chroot string, err error) {
	rest, ok := strings.CutPrefix(url, "zk://")
	if !ok {
		rest, ok = strings.CutPrefix(url, "zk:")
	}
	if !ok {
		return nil, "", fmt.Errorf("%w: %q is not a zk: URL", core.ErrBadURL, url)
	}
	hosts := rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		hosts, chroot = rest[:i], rest[i:]
	}
	for h := range strings.SplitSeq(hosts, ",") {
		if h == "" {
			return nil, "", fmt.Errorf("%w: %q has an empty server", core.ErrBadURL, url)
		}
		servers = append(servers, h)
	}
	if chroot == "/" {
		chroot = ""
	}
	if chroot != "" {
		if err := core.ValidatePath(chroot, false); err != nil {
			return nil, "", fmt.Errorf("%w: chroot: %w", core.ErrBadURL, err)
		}
	}
	return gozk.FormatServers(servers), chroot, nil
}

// Store is a ZooKeeper client with one session at a time; it implements
// metastore.Store.
type Store struct {
	servers []string
	chroot  string
	opts    core.Options
	log     *slog.Logger
	acl     []gozk.ACL
	hub     core.SessionHub

	mu struct {
		sync.Mutex
		conn      *gozk.Conn
		gen       uint64 // of conn; events of older connections are ignored
		connected bool   // conn has a session and a connection
		suspended bool   // SessionSuspended announced and not yet resolved
		sessionID int64  // 0 while there is no session
		past      []int64
		changed   chan struct{} // closed at every change of the above
		closed    bool
		watches   map[*zkWatch]struct{}
		queue     []connEvent
	}
	wake    chan struct{}
	closing chan struct{}
	wg      sync.WaitGroup
}

var _ core.Store = (*Store)(nil)

type connEvent struct {
	gen uint64
	ev  gozk.Event
	// settled: for StateHasSession, the barrier (see settle) is done.
	settled bool
}

// Open connects to servers and waits (up to Options.ConnectTimeout) for a
// session. chroot ("" for none) prefixes every path and is created if
// missing.
func Open(servers []string, chroot string, opts core.Options) (*Store, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("%w: no ZooKeeper servers", core.ErrBadURL)
	}
	s := &Store{
		servers: servers,
		chroot:  chroot,
		opts:    opts,
		log:     opts.Logger,
		acl:     gozk.WorldACL(gozk.PermAll),
		wake:    make(chan struct{}, 1),
		closing: make(chan struct{}),
	}
	s.mu.changed = make(chan struct{})
	s.mu.watches = map[*zkWatch]struct{}{}
	if err := s.connect(); err != nil {
		return nil, err
	}
	s.wg.Add(1)
	go s.supervise()

	ctx, cancel := context.WithTimeout(context.Background(), opts.ConnectTimeout)
	defer cancel()
	if _, err := s.conn(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("metastore: zk: no session with %s within %v: %w", strings.Join(servers, ","), opts.ConnectTimeout, err)
	}
	if chroot != "" {
		ctx, cancel := context.WithTimeout(context.Background(), opts.OperationTimeout)
		defer cancel()
		if err := s.ensureRaw(ctx, chroot); err != nil {
			s.Close()
			return nil, fmt.Errorf("metastore: zk: create chroot %s: %w", chroot, err)
		}
	}
	return s, nil
}

type zkLogger struct{ log *slog.Logger }

func (l zkLogger) Printf(format string, args ...any) {
	l.log.Debug("metastore: zk client: " + fmt.Sprintf(format, args...))
}

// connect opens a new connection (and so a new session) as the current one.
func (s *Store) connect() error {
	s.mu.Lock()
	s.mu.gen++
	gen := s.mu.gen
	s.mu.Unlock()
	dial := s.opts.Dialer
	if dial == nil {
		dial = net.DialTimeout
	}
	conn, _, err := gozk.Connect(s.servers, s.opts.SessionTimeout,
		gozk.WithDialer(dial),
		gozk.WithLogger(zkLogger{s.log}),
		gozk.WithLogInfo(false),
		gozk.WithEventCallback(func(ev gozk.Event) {
			if ev.Type != gozk.EventSession {
				return
			}
			s.mu.Lock()
			s.mu.queue = append(s.mu.queue, connEvent{gen: gen, ev: ev})
			s.mu.Unlock()
			select {
			case s.wake <- struct{}{}:
			default:
			}
		}))
	if err != nil {
		return fmt.Errorf("metastore: zk: connect to %s: %w", strings.Join(s.servers, ","), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		go conn.Close()
		return core.ErrClosed
	}
	s.mu.conn = conn
	return nil
}

// supervise turns connection events into session events and replaces the
// connection when the session is lost. It is the only goroutine that
// changes the connection.
func (s *Store) supervise() {
	defer s.wg.Done()
	expiry := time.NewTimer(time.Hour)
	expiry.Stop()
	var retry <-chan time.Time
	for {
		select {
		case <-s.closing:
			expiry.Stop()
			return
		case <-s.wake:
		case <-expiry.C:
			s.mu.Lock()
			lost := s.mu.suspended && !s.mu.connected
			s.mu.Unlock()
			if lost {
				s.log.Warn("metastore: zk: disconnected for longer than the session timeout; the session is lost", "timeout", s.opts.SessionTimeout)
				s.expire()
				if err := s.connect(); err != nil && !errors.Is(err, core.ErrClosed) {
					s.log.Warn("metastore: zk: reconnect", "err", err)
					retry = time.After(time.Second)
				}
			}
			continue
		case <-retry:
			retry = nil
			s.mu.Lock()
			none := s.mu.conn == nil && !s.mu.closed
			s.mu.Unlock()
			if none {
				if err := s.connect(); err != nil && !errors.Is(err, core.ErrClosed) {
					retry = time.After(time.Second)
				}
			}
			continue
		}
		s.mu.Lock()
		queue := s.mu.queue
		s.mu.queue = nil
		s.mu.Unlock()
		for _, ce := range queue {
			if ce.ev.State == gozk.StateHasSession && !ce.settled {
				s.settle(ce)
				continue
			}
			switch s.handle(ce) {
			case actionStartTimer:
				expiry.Reset(s.opts.SessionTimeout)
			case actionStopTimer:
				expiry.Stop()
			case actionReplace:
				expiry.Stop()
				s.expire()
				if err := s.connect(); err != nil && !errors.Is(err, core.ErrClosed) {
					s.log.Warn("metastore: zk: reconnect", "err", err)
					retry = time.After(time.Second)
				}
			}
		}
	}
}

// settle holds a new session's event back (and with it every request and
// watch of the store's users) until one plain request has made the round
// trip on the connection, then queues it again, settled. go-zookeeper
// starts its receiving goroutine and only then re-arms its watches
// (sendSetWatches), reading the last zxid that the receiving goroutine
// writes: a watch set at once on a new connection races with it (a data
// race the race detector reports: go-zookeeper/zk#35, samuel/go-zookeeper
// #178 and #260). After a round trip, the re-arming has run in practice.
// An event whose connection is gone or lost its session meanwhile is
// dropped: the next HasSession event settles again.
func (s *Store) settle(ce connEvent) {
	s.mu.Lock()
	conn := s.mu.conn
	ok := ce.gen == s.mu.gen && !s.mu.closed && conn != nil
	s.mu.Unlock()
	if !ok {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_, _, _ = conn.Exists("/")
		if conn.State() != gozk.StateHasSession {
			return
		}
		ce.settled = true
		s.mu.Lock()
		s.mu.queue = append(s.mu.queue, ce)
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}()
}

type action int

const (
	actionNone action = iota
	actionStartTimer
	actionStopTimer
	actionReplace
)

func (s *Store) handle(ce connEvent) action {
	var pub []core.SessionEvent
	act := actionNone
	s.mu.Lock()
	if ce.gen != s.mu.gen || s.mu.closed || s.mu.conn == nil {
		s.mu.Unlock()
		return actionNone
	}
	switch ce.ev.State {
	case gozk.StateHasSession:
		sid := s.mu.conn.SessionID()
		switch {
		case s.mu.sessionID == 0:
			pub = append(pub, core.SessionEvent{Type: core.SessionConnected, SessionID: sid})
		case sid == s.mu.sessionID:
			if s.mu.suspended {
				pub = append(pub, core.SessionEvent{Type: core.SessionReconnected, SessionID: sid})
			}
		default:
			// The client replaced an expired session by itself.
			s.rememberLocked(s.mu.sessionID)
			pub = append(pub,
				core.SessionEvent{Type: core.SessionExpired, SessionID: s.mu.sessionID},
				core.SessionEvent{Type: core.SessionConnected, SessionID: sid})
		}
		s.mu.sessionID = sid
		s.mu.connected, s.mu.suspended = true, false
		act = actionStopTimer
		s.changedLocked()
	case gozk.StateDisconnected:
		if s.mu.connected {
			s.mu.connected, s.mu.suspended = false, true
			pub = append(pub, core.SessionEvent{Type: core.SessionSuspended, SessionID: s.mu.sessionID})
			act = actionStartTimer
			s.changedLocked()
		}
	case gozk.StateExpired:
		act = actionReplace
	}
	s.mu.Unlock()
	for _, ev := range pub {
		s.hub.Publish(ev)
	}
	return act
}

// expire ends the current session from the store's side: owners are told,
// and the connection is closed (in the background: closing a disconnected
// client waits for its close request to time out).
func (s *Store) expire() {
	s.mu.Lock()
	old := s.mu.sessionID
	conn := s.mu.conn
	s.rememberLocked(old)
	s.mu.sessionID = 0
	s.mu.conn = nil
	s.mu.connected, s.mu.suspended = false, false
	s.mu.gen++
	s.changedLocked()
	s.mu.Unlock()
	if conn != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			conn.Close()
		}()
	}
	if old != 0 {
		s.hub.Publish(core.SessionEvent{Type: core.SessionExpired, SessionID: old})
	}
}

func (s *Store) rememberLocked(id int64) {
	if id == 0 {
		return
	}
	s.mu.past = append(s.mu.past, id)
	if len(s.mu.past) > 8 {
		s.mu.past = s.mu.past[1:]
	}
}

func (s *Store) wasOurs(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.mu.past, id)
}

func (s *Store) changedLocked() {
	close(s.mu.changed)
	s.mu.changed = make(chan struct{})
}

// conn waits for a connection with a session.
func (s *Store) conn(ctx context.Context) (*gozk.Conn, error) {
	for {
		s.mu.Lock()
		if s.mu.closed {
			s.mu.Unlock()
			return nil, core.ErrClosed
		}
		if s.mu.connected {
			c := s.mu.conn
			s.mu.Unlock()
			return c, nil
		}
		ch := s.mu.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", core.ErrUnavailable, ctx.Err())
		}
	}
}

// backoff waits after a connection error for the state to change, briefly.
func (s *Store) backoff(ctx context.Context) error {
	s.mu.Lock()
	ch := s.mu.changed
	closed := s.mu.closed
	s.mu.Unlock()
	if closed {
		return core.ErrClosed
	}
	t := time.NewTimer(50 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", core.ErrUnavailable, ctx.Err())
	}
	return nil
}

func (s *Store) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.opts.OperationTimeout)
}

type result[T any] struct {
	v   T
	err error
}

// errAbandoned marks a call the context gave up on while it ran.
type errAbandoned struct{ ctx error }

func (e errAbandoned) Error() string { return e.ctx.Error() }
func (e errAbandoned) Unwrap() error { return e.ctx }

// call runs f, a blocking request of the ZooKeeper client, and gives up
// waiting when ctx is done (the request itself cannot be cancelled).
func call[T any](ctx context.Context, f func() (T, error)) (T, error) {
	ch := make(chan result[T], 1)
	go func() {
		v, err := f()
		ch <- result[T]{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, errAbandoned{ctx.Err()}
	}
}

func isConnErr(err error) bool {
	return errors.Is(err, gozk.ErrConnectionClosed) || errors.Is(err, gozk.ErrNoServer) ||
		errors.Is(err, gozk.ErrSessionExpired) || errors.Is(err, gozk.ErrClosing) ||
		errors.Is(err, gozk.ErrSessionMoved)
}

// notSent reports whether a failed request certainly never reached the
// server.
func notSent(err error) bool { return errors.Is(err, gozk.ErrNoServer) }

func mapErr(op, path string, err error) error {
	var class error
	switch {
	case errors.Is(err, gozk.ErrNoNode):
		class = core.ErrNotFound
	case errors.Is(err, gozk.ErrNodeExists):
		class = core.ErrNodeExists
	case errors.Is(err, gozk.ErrBadVersion):
		class = core.ErrBadVersion
	case errors.Is(err, gozk.ErrNotEmpty):
		class = core.ErrNotEmpty
	case errors.Is(err, gozk.ErrNoChildrenForEphemerals):
		class = core.ErrNoChildrenForEphemerals
	case errors.Is(err, gozk.ErrSessionExpired):
		class = core.ErrSessionExpired
	case errors.Is(err, gozk.ErrInvalidPath), errors.Is(err, gozk.ErrBadArguments):
		class = core.ErrInvalidPath
	default:
		return core.OpError(op, path, fmt.Errorf("metastore: zk: %w", err))
	}
	return core.OpError(op, path, fmt.Errorf("%w: %w", class, err))
}

// unknown reports a write whose outcome is unknown.
func unknown(op, path string, err error) error {
	return core.OpError(op, path, fmt.Errorf("%w: %w", core.ErrOutcomeUnknown, err))
}

func (s *Store) full(p string) string {
	switch {
	case s.chroot == "":
		return p
	case p == "/":
		return s.chroot
	}
	return s.chroot + p
}

func (s *Store) strip(fp string) string {
	if s.chroot == "" {
		return fp
	}
	if rest := strings.TrimPrefix(fp, s.chroot); rest != "" {
		return rest
	}
	return "/"
}

func toStat(st *gozk.Stat) core.Stat {
	return core.Stat{
		Version:          int64(st.Version),
		CVersion:         int64(st.Cversion),
		CreatedRevision:  st.Czxid,
		ModifiedRevision: st.Mzxid,
		Created:          time.UnixMilli(st.Ctime),
		Modified:         time.UnixMilli(st.Mtime),
		EphemeralOwner:   st.EphemeralOwner,
		NumChildren:      int(st.NumChildren),
		DataLength:       int(st.DataLength),
	}
}

func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", core.ErrUnavailable, err)
	}
	return nil
}

// read runs a read with retries on connection loss.
func read[T any](s *Store, ctx context.Context, op, path string, f func(c *gozk.Conn) (T, error)) (T, error) {
	var zero T
	for {
		c, err := s.conn(ctx)
		if err != nil {
			return zero, core.OpError(op, path, err)
		}
		v, err := call(ctx, func() (T, error) { return f(c) })
		if err == nil {
			return v, nil
		}
		var ab errAbandoned
		if errors.As(err, &ab) {
			return zero, core.OpError(op, path, fmt.Errorf("%w: %w", core.ErrUnavailable, err))
		}
		if !isConnErr(err) {
			return zero, mapErr(op, path, err)
		}
		if err := s.backoff(ctx); err != nil {
			return zero, core.OpError(op, path, err)
		}
	}
}

type getResult struct {
	data []byte
	stat core.Stat
}

// Get implements metastore.Store.
func (s *Store) Get(ctx context.Context, path string) ([]byte, core.Stat, error) {
	if err := core.ValidatePath(path, false); err != nil {
		return nil, core.Stat{}, err
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	r, err := read(s, ctx, "get", path, func(c *gozk.Conn) (getResult, error) {
		d, st, err := c.Get(s.full(path))
		if err != nil {
			return getResult{}, err
		}
		if d == nil {
			d = []byte{}
		}
		return getResult{d, toStat(st)}, nil
	})
	return r.data, r.stat, err
}

type existsResult struct {
	stat core.Stat
	ok   bool
}

// Exists implements metastore.Store.
func (s *Store) Exists(ctx context.Context, path string) (core.Stat, bool, error) {
	if err := core.ValidatePath(path, false); err != nil {
		return core.Stat{}, false, err
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	r, err := read(s, ctx, "exists", path, func(c *gozk.Conn) (existsResult, error) {
		ok, st, err := c.Exists(s.full(path))
		if err != nil || !ok {
			return existsResult{}, err
		}
		return existsResult{toStat(st), true}, nil
	})
	return r.stat, r.ok, err
}

// Children implements metastore.Store.
func (s *Store) Children(ctx context.Context, path string) ([]string, error) {
	if err := core.ValidatePath(path, false); err != nil {
		return nil, err
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	kids, err := read(s, ctx, "children", path, func(c *gozk.Conn) ([]string, error) {
		kids, _, err := c.Children(s.full(path))
		return kids, err
	})
	if err != nil {
		return nil, err
	}
	if s.chroot == "" && path == "/" {
		kids = slices.DeleteFunc(kids, func(k string) bool { return k == "zookeeper" })
	}
	slices.Sort(kids)
	if kids == nil {
		kids = []string{}
	}
	return kids, nil
}

// ensureRaw creates the persistent, empty node at the unchrooted path p and
// its missing ancestors.
func (s *Store) ensureRaw(ctx context.Context, p string) error {
	if p == "/" {
		return nil
	}
	ok, err := read(s, ctx, "create", p, func(c *gozk.Conn) (bool, error) {
		ok, _, err := c.Exists(p)
		return ok, err
	})
	if err != nil || ok {
		return err
	}
	for _, a := range append(core.Ancestors(p), p) {
		for {
			c, err := s.conn(ctx)
			if err != nil {
				return core.OpError("create", a, err)
			}
			_, err = call(ctx, func() (string, error) { return c.Create(a, []byte{}, 0, s.acl) })
			if err == nil || errors.Is(err, gozk.ErrNodeExists) {
				break
			}
			if !isConnErr(err) {
				return mapErr("create", a, err)
			}
			// An empty persistent node: whoever created it, it is what we
			// want; just try again.
			if err := s.backoff(ctx); err != nil {
				return core.OpError("create", a, err)
			}
		}
	}
	return nil
}

// Create implements metastore.Store.
func (s *Store) Create(ctx context.Context, path string, data []byte, flags core.CreateFlags) (string, error) {
	sequential := flags&core.Sequential != 0
	ephemeral := flags&core.Ephemeral != 0
	if err := core.ValidatePath(path, sequential); err != nil {
		return "", err
	}
	if len(data) > core.MaxDataSize {
		return "", core.OpError("create", path, core.ErrTooLarge)
	}
	if path == "/" && !sequential {
		return "", core.OpError("create", path, core.ErrNodeExists)
	}
	if data == nil {
		data = []byte{}
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	if flags&core.CreateParents != 0 || s.opts.CreateParents {
		if err := s.ensureRaw(ctx, s.full(core.CreateParent(path, sequential))); err != nil {
			return "", err
		}
	}
	var zflags int32
	if ephemeral {
		zflags |= gozk.FlagEphemeral
	}
	if sequential {
		zflags |= gozk.FlagSequence
	}
	for {
		c, err := s.conn(ctx)
		if err != nil {
			return "", core.OpError("create", path, err)
		}
		name, err := call(ctx, func() (string, error) { return c.Create(s.full(path), data, zflags, s.acl) })
		if err == nil {
			return s.strip(name), nil
		}
		var ab errAbandoned
		if errors.As(err, &ab) {
			return "", unknown("create", path, err)
		}
		if !isConnErr(err) {
			return "", mapErr("create", path, err)
		}
		if notSent(err) {
			if err := s.backoff(ctx); err != nil {
				return "", core.OpError("create", path, err)
			}
			continue
		}
		if sequential {
			return "", unknown("create", path, err)
		}
		d, st, gerr := s.Get(ctx, path)
		switch {
		case errors.Is(gerr, core.ErrNotFound):
			continue
		case gerr != nil:
			return "", unknown("create", path, gerr)
		case !bytes.Equal(d, data):
		case ephemeral && st.EphemeralOwner == s.SessionID():
			return path, nil
		case ephemeral && s.wasOurs(st.EphemeralOwner):
			return "", core.OpError("create", path, core.ErrSessionExpired)
		case !ephemeral && st.EphemeralOwner == 0:
			return path, nil
		}
		return "", core.OpError("create", path, core.ErrNodeExists)
	}
}

// Put implements metastore.Store.
func (s *Store) Put(ctx context.Context, path string, data []byte, expectedVersion int64) (core.Stat, error) {
	if err := core.ValidatePath(path, false); err != nil {
		return core.Stat{}, err
	}
	if len(data) > core.MaxDataSize {
		return core.Stat{}, core.OpError("put", path, core.ErrTooLarge)
	}
	if expectedVersion < core.AnyVersion || expectedVersion > math.MaxInt32 {
		return core.Stat{}, core.OpError("put", path, fmt.Errorf("%w: version %d", core.ErrBadVersion, expectedVersion))
	}
	if data == nil {
		data = []byte{}
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	for {
		c, err := s.conn(ctx)
		if err != nil {
			return core.Stat{}, core.OpError("put", path, err)
		}
		st, err := call(ctx, func() (*gozk.Stat, error) { return c.Set(s.full(path), data, int32(expectedVersion)) })
		if err == nil {
			return toStat(st), nil
		}
		var ab errAbandoned
		if errors.As(err, &ab) {
			return core.Stat{}, unknown("put", path, err)
		}
		if expectedVersion == core.AnyVersion && errors.Is(err, gozk.ErrNoNode) {
			_, cerr := s.Create(ctx, path, data, 0)
			if errors.Is(cerr, core.ErrNodeExists) {
				continue // someone else created it: set it
			}
			if cerr != nil {
				return core.Stat{}, cerr
			}
			st, ok, err := s.Exists(ctx, path)
			if err == nil && !ok {
				err = core.OpError("put", path, core.ErrNotFound)
			}
			return st, err
		}
		if !isConnErr(err) {
			return core.Stat{}, mapErr("put", path, err)
		}
		if notSent(err) || expectedVersion == core.AnyVersion {
			if err := s.backoff(ctx); err != nil {
				return core.Stat{}, core.OpError("put", path, err)
			}
			continue
		}
		d, cur, gerr := s.Get(ctx, path)
		switch {
		case gerr != nil:
			return core.Stat{}, unknown("put", path, gerr)
		case cur.Version == expectedVersion:
			continue
		case cur.Version == expectedVersion+1 && bytes.Equal(d, data):
			return cur, nil
		}
		return core.Stat{}, core.OpError("put", path, fmt.Errorf("%w: version %d after a lost connection, expected %d", core.ErrBadVersion, cur.Version, expectedVersion))
	}
}

// Delete implements metastore.Store.
func (s *Store) Delete(ctx context.Context, path string, expectedVersion int64) error {
	if err := core.ValidatePath(path, false); err != nil {
		return err
	}
	if path == "/" {
		return core.OpError("delete", path, fmt.Errorf("%w: the root cannot be deleted", core.ErrInvalidPath))
	}
	if expectedVersion < core.AnyVersion || expectedVersion > math.MaxInt32 {
		return core.OpError("delete", path, fmt.Errorf("%w: version %d", core.ErrBadVersion, expectedVersion))
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	for {
		c, err := s.conn(ctx)
		if err != nil {
			return core.OpError("delete", path, err)
		}
		_, err = call(ctx, func() (struct{}, error) { return struct{}{}, c.Delete(s.full(path), int32(expectedVersion)) })
		if err == nil {
			return nil
		}
		var ab errAbandoned
		if errors.As(err, &ab) {
			return unknown("delete", path, err)
		}
		if !isConnErr(err) {
			return mapErr("delete", path, err)
		}
		if notSent(err) {
			if err := s.backoff(ctx); err != nil {
				return core.OpError("delete", path, err)
			}
			continue
		}
		st, ok, eerr := s.Exists(ctx, path)
		switch {
		case eerr != nil:
			return unknown("delete", path, eerr)
		case !ok:
			return nil
		case expectedVersion == core.AnyVersion || st.Version == expectedVersion:
			continue
		}
		return core.OpError("delete", path, fmt.Errorf("%w: version %d after a lost connection, expected %d", core.ErrBadVersion, st.Version, expectedVersion))
	}
}

// SessionID implements metastore.Store.
func (s *Store) SessionID() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.sessionID
}

// WatchSession implements metastore.Store.
func (s *Store) WatchSession() *core.SessionWatch { return s.hub.Watch() }

// Close implements metastore.Store: the session is closed on the server
// (its ephemeral nodes go at once) when it is connected.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.closed = true
	conn := s.mu.conn
	s.mu.conn = nil
	s.mu.connected = false
	watches := s.mu.watches
	s.mu.watches = nil
	s.changedLocked()
	s.mu.Unlock()
	close(s.closing)
	for zw := range watches {
		zw.w.Close()
	}
	if conn != nil {
		conn.Close()
	}
	s.wg.Wait()
	s.hub.Close()
	return nil
}
