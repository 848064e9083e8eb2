// Package tree is the in-process metadata tree behind the memory and
// embedded stores: nodes with versions, sessions with ephemeral nodes,
// sequential names, watches, and (with a Persister) group commit.
//
// Every change is a Mutation with the next zxid, applied under the tree lock.
// With a Persister, the mutation is also appended to the pending batch; one
// writer goroutine hands whole batches to the Persister (which writes and
// syncs them) and whatever arrives meanwhile forms the next batch. A write
// returns only after its batch is durable, and watch events fire only then.
// A read that would observe a change not yet durable waits for that change's
// batch (a read barrier), so nothing a caller can see is ever lost by a
// crash.
//
// Lock order: Tree.mu, then core.Watch's lock (Deliver), then a session
// hub's lock. No I/O happens under Tree.mu.
package tree

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magnetar/magnetar/metastore/internal/core"
)

// Persister makes batches of mutations durable. Its methods are called from
// one goroutine.
type Persister interface {
	// Write appends the encoded mutations, in order, and returns once they
	// are durable.
	Write(payloads [][]byte) error
	// SnapshotDue reports whether the log grew enough to snapshot.
	SnapshotDue() bool
	// Snapshot persists snap; mutations written after it continue the log.
	// Those may include mutations with zxids up to snap.Zxid, which replay
	// skips.
	Snapshot(snap *Snapshot) error
}

// Config configures a Tree.
type Config struct {
	Logger *slog.Logger
	// CreateParents makes every create create missing ancestors.
	CreateParents bool
}

type node struct {
	data              []byte // never modified in place; shared with snapshots
	czxid, mzxid      int64
	pzxid             int64
	ctime, mtime      int64
	version, cversion int64
	owner             int64
	children          map[string]struct{}
}

func (n *node) stat() core.Stat {
	return core.Stat{
		Version:          n.version,
		CVersion:         n.cversion,
		CreatedRevision:  n.czxid,
		ModifiedRevision: n.mzxid,
		Created:          time.UnixMilli(n.ctime),
		Modified:         time.UnixMilli(n.mtime),
		EphemeralOwner:   n.owner,
		NumChildren:      len(n.children),
		DataLength:       len(n.data),
	}
}

type pendingEvent struct {
	w *core.Watch
	t core.EventType
}

type batch struct {
	payloads [][]byte
	events   []pendingEvent
	last     int64 // zxid of the last mutation
	done     chan struct{}
	err      error
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

// wait waits for the batch of a write: the write is applied, so it waits
// whatever the caller's context says (for one sync at most).
func (b *batch) wait() error {
	if b == nil {
		return nil
	}
	<-b.done
	return b.err
}

// waitRead waits for the batch holding a change a read would observe; a read
// has no effect, so it may give up when ctx is done.
func (b *batch) waitRead(ctx context.Context) error {
	if b == nil {
		return nil
	}
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Tree is an in-process metadata tree. Create it with New, optionally load
// state (Restore, Replay, DropEphemerals), then Start it.
type Tree struct {
	cfg Config
	p   Persister

	mu struct {
		sync.Mutex
		nodes        map[string]*node
		zxid         int64
		ephemerals   map[int64]map[string]struct{} // owner -> paths
		sessions     map[int64]*Session
		dataWatches  map[string]map[*core.Watch]struct{}
		childWatches map[string]map[*core.Watch]struct{}
		events       []pendingEvent // produced by applyLocked, taken by commitLocked
		pending      *batch
		inflight     *batch
		failed       error
		closed       bool
		started      bool
	}
	durable    atomic.Int64
	wake       chan struct{}
	stop       chan struct{}
	writerDone chan struct{}
}

// New returns an empty tree holding only the root.
func New(cfg Config) *Tree {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	t := &Tree{
		cfg:        cfg,
		wake:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	t.mu.nodes = map[string]*node{"/": {children: map[string]struct{}{}}}
	t.mu.ephemerals = make(map[int64]map[string]struct{})
	t.mu.sessions = make(map[int64]*Session)
	t.mu.dataWatches = make(map[string]map[*core.Watch]struct{})
	t.mu.childWatches = make(map[string]map[*core.Watch]struct{})
	t.mu.pending = newBatch()
	return t
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", core.ErrCorruption, fmt.Sprintf(format, args...))
}

// Restore replaces the tree's content with snap. Only before Start.
func (t *Tree) Restore(snap *Snapshot) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(snap.Nodes) == 0 || snap.Nodes[0].Path != "/" {
		return corrupt("snapshot does not start with the root")
	}
	nodes := make(map[string]*node, len(snap.Nodes))
	ephemerals := make(map[int64]map[string]struct{})
	for i := range snap.Nodes {
		img := &snap.Nodes[i]
		if _, dup := nodes[img.Path]; dup {
			return corrupt("snapshot holds %s twice", img.Path)
		}
		n := &node{
			data: img.Data, czxid: img.Czxid, mzxid: img.Mzxid, pzxid: img.Pzxid,
			ctime: img.Ctime, mtime: img.Mtime, version: img.Version, cversion: img.Cversion,
			owner: img.Owner, children: map[string]struct{}{},
		}
		if img.Path != "/" {
			if err := core.ValidatePath(img.Path, false); err != nil {
				return corrupt("snapshot node: %v", err)
			}
			parent := nodes[core.Parent(img.Path)]
			if parent == nil {
				return corrupt("snapshot node %s before its parent", img.Path)
			}
			parent.children[core.Base(img.Path)] = struct{}{}
		}
		if n.owner != 0 {
			addEphemeral(ephemerals, n.owner, img.Path)
		}
		nodes[img.Path] = n
	}
	t.mu.nodes = nodes
	t.mu.ephemerals = ephemerals
	t.mu.zxid = snap.Zxid
	return nil
}

func addEphemeral(m map[int64]map[string]struct{}, owner int64, path string) {
	s := m[owner]
	if s == nil {
		s = make(map[string]struct{})
		m[owner] = s
	}
	s[path] = struct{}{}
}

// Zxid is the zxid of the last applied mutation.
func (t *Tree) Zxid() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.zxid
}

// Replay applies a logged mutation. Mutations at or below the current zxid
// are skipped (they are already in the restored snapshot); the others must
// follow without gaps.
func (t *Tree) Replay(m *Mutation) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if m.Zxid <= t.mu.zxid {
		return nil
	}
	return t.applyLocked(m)
}

// DropEphemerals deletes every ephemeral node: their sessions died with the
// process that owned them. Only before Start.
func (t *Tree) DropEphemerals() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, owner := range slices.Sorted(maps.Keys(t.mu.ephemerals)) {
		if err := t.deleteEphemeralsLocked(owner); err != nil {
			return err
		}
	}
	return nil
}

// Snapshot returns the tree as it is now.
func (t *Tree) Snapshot() *Snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.snapshotLocked()
}

func (t *Tree) snapshotLocked() *Snapshot {
	snap := &Snapshot{Zxid: t.mu.zxid, Nodes: make([]NodeImage, 0, len(t.mu.nodes))}
	stack := []string{"/"}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := t.mu.nodes[p]
		snap.Nodes = append(snap.Nodes, NodeImage{
			Path: p, Data: n.data, Czxid: n.czxid, Mzxid: n.mzxid, Pzxid: n.pzxid,
			Ctime: n.ctime, Mtime: n.mtime, Version: n.version, Cversion: n.cversion, Owner: n.owner,
		})
		for name := range n.children {
			stack = append(stack, core.Join(p, name))
		}
	}
	return snap
}

// Start makes the tree serve sessions. With a Persister every mutation is
// made durable through it before it is acknowledged.
func (t *Tree) Start(p Persister) {
	t.mu.Lock()
	t.p = p
	t.mu.started = true
	t.durable.Store(t.mu.zxid)
	t.mu.Unlock()
	if p != nil {
		go t.writer()
	} else {
		close(t.writerDone)
	}
}

// Close ends every session (without deleting their ephemeral nodes, which a
// restart drops), waits for pending writes and stops the writer.
func (t *Tree) Close() error {
	t.mu.Lock()
	if t.mu.closed {
		t.mu.Unlock()
		return nil
	}
	t.mu.closed = true
	sessions := slices.Collect(maps.Values(t.mu.sessions))
	t.mu.sessions = map[int64]*Session{}
	var watches []*core.Watch
	for _, s := range sessions {
		s.closed = true
		watches = append(watches, slices.Collect(maps.Keys(s.watches))...)
		s.watches = nil
	}
	t.mu.dataWatches = map[string]map[*core.Watch]struct{}{}
	t.mu.childWatches = map[string]map[*core.Watch]struct{}{}
	started := t.mu.started
	failed := t.mu.failed
	t.mu.Unlock()
	for _, w := range watches {
		w.Close()
	}
	for _, s := range sessions {
		s.hub.Close()
	}
	close(t.stop)
	if started {
		<-t.writerDone
	}
	return failed
}

// ---- mutations ----

// applyLocked applies m, which must follow the current zxid. Live callers
// have validated m; during replay a failed precondition means the log does
// not match the snapshot, which is corruption.
func (t *Tree) applyLocked(m *Mutation) error {
	if m.Zxid != t.mu.zxid+1 {
		return corrupt("mutation %s %s has zxid %d, want %d", m.Op, m.Path, m.Zxid, t.mu.zxid+1)
	}
	switch m.Op {
	case OpCreate:
		if err := core.ValidatePath(m.Path, false); err != nil || m.Path == "/" {
			return corrupt("create of invalid path %q", m.Path)
		}
		pp := core.Parent(m.Path)
		parent := t.mu.nodes[pp]
		switch {
		case parent == nil:
			return corrupt("create %s: no parent", m.Path)
		case parent.owner != 0:
			return corrupt("create %s: ephemeral parent", m.Path)
		case t.mu.nodes[m.Path] != nil:
			return corrupt("create %s: exists", m.Path)
		}
		t.mu.nodes[m.Path] = &node{
			data: m.Data, czxid: m.Zxid, mzxid: m.Zxid, pzxid: m.Zxid,
			ctime: m.Time, mtime: m.Time, owner: m.Owner, children: map[string]struct{}{},
		}
		parent.children[core.Base(m.Path)] = struct{}{}
		parent.cversion++
		parent.pzxid = m.Zxid
		if m.Owner != 0 {
			addEphemeral(t.mu.ephemerals, m.Owner, m.Path)
		}
		t.notifyLocked(t.mu.dataWatches[m.Path], core.EventCreated)
		t.notifyLocked(t.mu.childWatches[m.Path], core.EventCreated)
		t.notifyLocked(t.mu.childWatches[pp], core.EventChildrenChanged)
	case OpSet:
		n := t.mu.nodes[m.Path]
		if n == nil {
			return corrupt("set %s: no node", m.Path)
		}
		n.data = m.Data
		n.version++
		n.mzxid = m.Zxid
		n.mtime = m.Time
		t.notifyLocked(t.mu.dataWatches[m.Path], core.EventDataChanged)
	case OpDelete:
		n := t.mu.nodes[m.Path]
		switch {
		case n == nil || m.Path == "/":
			return corrupt("delete %s: no node", m.Path)
		case len(n.children) > 0:
			return corrupt("delete %s: has children", m.Path)
		}
		pp := core.Parent(m.Path)
		parent := t.mu.nodes[pp]
		delete(t.mu.nodes, m.Path)
		delete(parent.children, core.Base(m.Path))
		parent.cversion++
		parent.pzxid = m.Zxid
		if n.owner != 0 {
			if s := t.mu.ephemerals[n.owner]; s != nil {
				delete(s, m.Path)
				if len(s) == 0 {
					delete(t.mu.ephemerals, n.owner)
				}
			}
		}
		t.notifyLocked(t.mu.dataWatches[m.Path], core.EventDeleted)
		t.notifyLocked(t.mu.childWatches[m.Path], core.EventDeleted)
		t.notifyLocked(t.mu.childWatches[pp], core.EventChildrenChanged)
	case OpSession:
	default:
		return corrupt("unknown op %d", m.Op)
	}
	t.mu.zxid = m.Zxid
	return nil
}

func (t *Tree) notifyLocked(ws map[*core.Watch]struct{}, typ core.EventType) {
	for w := range ws {
		t.mu.events = append(t.mu.events, pendingEvent{w, typ})
	}
}

// commitLocked applies a validated mutation (with Zxid left 0: it is
// assigned here) and queues it for the persister. Without a persister the
// watch events fire at once.
func (t *Tree) commitLocked(m *Mutation) error {
	m.Zxid = t.mu.zxid + 1
	if err := t.applyLocked(m); err != nil {
		// Callers validate first, so this is a bug in this package. Refuse
		// everything from now on rather than serve a tree that may be wrong.
		t.mu.failed = fmt.Errorf("%w: internal error: %w", core.ErrFailed, err)
		t.cfg.Logger.Error("metastore: validated mutation failed", "err", err)
		return t.mu.failed
	}
	if t.p == nil {
		for _, e := range t.mu.events {
			e.w.Deliver(e.t)
		}
		clear(t.mu.events)
		t.mu.events = t.mu.events[:0]
		return nil
	}
	b := t.mu.pending
	b.payloads = append(b.payloads, AppendMutation(nil, m))
	b.events = append(b.events, t.mu.events...)
	b.last = m.Zxid
	clear(t.mu.events)
	t.mu.events = t.mu.events[:0]
	select {
	case t.wake <- struct{}{}:
	default:
	}
	return nil
}

// pendingLocked is the batch a caller that committed mutations waits for.
// (An empty pending batch is never written, so it is never waited for.)
func (t *Tree) pendingLocked() *batch {
	if t.p == nil || len(t.mu.pending.payloads) == 0 {
		return nil
	}
	return t.mu.pending
}

// barrierLocked returns the batch holding the mutation with zxid z, or nil
// when it is durable.
func (t *Tree) barrierLocked(z int64) *batch {
	if t.p == nil || z <= t.durable.Load() {
		return nil
	}
	if b := t.mu.inflight; b != nil && z <= b.last {
		return b
	}
	return t.mu.pending
}

func (t *Tree) deleteEphemeralsLocked(owner int64) error {
	paths := slices.Sorted(maps.Keys(t.mu.ephemerals[owner]))
	for _, p := range paths {
		m := &Mutation{Op: OpDelete, Path: p}
		if t.mu.started {
			if err := t.commitLocked(m); err != nil {
				return err
			}
			continue
		}
		m.Zxid = t.mu.zxid + 1
		if err := t.applyLocked(m); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tree) writer() {
	defer close(t.writerDone)
	for {
		t.mu.Lock()
		b := t.mu.pending
		if len(b.payloads) == 0 {
			closed := t.mu.closed
			t.mu.Unlock()
			if closed {
				return
			}
			select {
			case <-t.wake:
			case <-t.stop:
			}
			continue
		}
		t.mu.pending = newBatch()
		t.mu.inflight = b
		err := t.mu.failed
		t.mu.Unlock()

		if err == nil {
			if werr := t.p.Write(b.payloads); werr != nil {
				err = fmt.Errorf("%w: %w", core.ErrFailed, werr)
				t.cfg.Logger.Error("metastore: log write failed; the store refuses all operations until reopened", "err", werr)
			}
		}
		t.mu.Lock()
		if err != nil && t.mu.failed == nil {
			t.mu.failed = err
		}
		if err == nil {
			t.durable.Store(b.last)
		}
		t.mu.inflight = nil
		t.mu.Unlock()
		if err == nil {
			for _, e := range b.events {
				e.w.Deliver(e.t)
			}
		}
		b.err = err
		close(b.done)
		if err == nil && t.p.SnapshotDue() {
			t.mu.Lock()
			snap := t.snapshotLocked()
			t.mu.Unlock()
			if serr := t.p.Snapshot(snap); serr != nil {
				t.cfg.Logger.Warn("metastore: snapshot failed; the log keeps growing", "err", serr)
			}
		}
	}
}

// ---- sessions ----

// Session is one client of the tree with its own session; it implements
// core.Store.
type Session struct {
	t   *Tree
	id  atomic.Int64
	hub core.SessionHub

	// Guarded by t.mu.
	closed  bool
	watches map[*core.Watch]struct{}
}

var _ core.Store = (*Session)(nil)

// NewSession opens a session.
func (t *Tree) NewSession() (*Session, error) {
	t.mu.Lock()
	if err := t.checkLocked(); err != nil {
		t.mu.Unlock()
		return nil, err
	}
	m := &Mutation{Op: OpSession, Time: time.Now().UnixMilli()}
	if err := t.commitLocked(m); err != nil {
		t.mu.Unlock()
		return nil, err
	}
	s := &Session{t: t, watches: map[*core.Watch]struct{}{}}
	s.id.Store(m.Zxid)
	t.mu.sessions[m.Zxid] = s
	b := t.pendingLocked()
	t.mu.Unlock()
	if err := b.wait(); err != nil {
		return nil, err
	}
	return s, nil
}

// ExpireSession ends session id as an expiry would: its ephemeral nodes are
// deleted and its owner is told (SessionExpired), then the Store carries on
// with a new session (SessionConnected), as a ZooKeeper store does.
func (t *Tree) ExpireSession(id int64) error {
	t.mu.Lock()
	if err := t.checkLocked(); err != nil {
		t.mu.Unlock()
		return err
	}
	s := t.mu.sessions[id]
	if s == nil {
		t.mu.Unlock()
		return fmt.Errorf("metastore: no session %#x", id)
	}
	if err := t.deleteEphemeralsLocked(id); err != nil {
		t.mu.Unlock()
		return err
	}
	delete(t.mu.sessions, id)
	m := &Mutation{Op: OpSession, Time: time.Now().UnixMilli()}
	if err := t.commitLocked(m); err != nil {
		t.mu.Unlock()
		return err
	}
	s.id.Store(m.Zxid)
	t.mu.sessions[m.Zxid] = s
	b := t.pendingLocked()
	t.mu.Unlock()
	err := b.wait()
	s.hub.Publish(core.SessionEvent{Type: core.SessionExpired, SessionID: id})
	if err == nil {
		s.hub.Publish(core.SessionEvent{Type: core.SessionConnected, SessionID: m.Zxid})
	}
	return err
}

func (t *Tree) checkLocked() error {
	if t.mu.closed {
		return core.ErrClosed
	}
	return t.mu.failed
}

func (s *Session) checkLocked() error {
	if s.closed {
		return core.ErrClosed
	}
	return s.t.checkLocked()
}

// SessionID implements core.Store.
func (s *Session) SessionID() int64 { return s.id.Load() }

// WatchSession implements core.Store.
func (s *Session) WatchSession() *core.SessionWatch { return s.hub.Watch() }

// Close implements core.Store: the session's ephemeral nodes are deleted.
func (s *Session) Close() error {
	t := s.t
	t.mu.Lock()
	if s.closed {
		t.mu.Unlock()
		return nil
	}
	var err error
	var b *batch
	if !t.mu.closed && t.mu.failed == nil {
		id := s.id.Load()
		z := t.mu.zxid
		err = t.deleteEphemeralsLocked(id)
		delete(t.mu.sessions, id)
		if t.mu.zxid != z {
			b = t.pendingLocked()
		}
	}
	s.closed = true
	s.id.Store(0)
	watches := s.watches
	s.watches = nil
	for w := range watches {
		t.unregisterLocked(w)
	}
	t.mu.Unlock()
	if werr := b.wait(); err == nil {
		err = werr
	}
	for w := range watches {
		w.Close()
	}
	s.hub.Close()
	return err
}

func start(ctx context.Context, path string, sequential bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return core.ValidatePath(path, sequential)
}

func cloneData(b []byte) []byte { return append([]byte{}, b...) }

// Get implements core.Store.
func (s *Session) Get(ctx context.Context, path string) ([]byte, core.Stat, error) {
	if err := start(ctx, path, false); err != nil {
		return nil, core.Stat{}, err
	}
	t := s.t
	t.mu.Lock()
	if err := s.checkLocked(); err != nil {
		t.mu.Unlock()
		return nil, core.Stat{}, err
	}
	n := t.mu.nodes[path]
	if n == nil {
		b := t.barrierLocked(t.mu.zxid)
		t.mu.Unlock()
		if err := b.waitRead(ctx); err != nil {
			return nil, core.Stat{}, err
		}
		return nil, core.Stat{}, core.OpError("get", path, core.ErrNotFound)
	}
	data, st := n.data, n.stat()
	b := t.barrierLocked(max(n.mzxid, n.pzxid))
	t.mu.Unlock()
	if err := b.waitRead(ctx); err != nil {
		return nil, core.Stat{}, err
	}
	return cloneData(data), st, nil
}

// Exists implements core.Store.
func (s *Session) Exists(ctx context.Context, path string) (core.Stat, bool, error) {
	if err := start(ctx, path, false); err != nil {
		return core.Stat{}, false, err
	}
	t := s.t
	t.mu.Lock()
	if err := s.checkLocked(); err != nil {
		t.mu.Unlock()
		return core.Stat{}, false, err
	}
	n := t.mu.nodes[path]
	var st core.Stat
	z := t.mu.zxid
	if n != nil {
		st = n.stat()
		z = max(n.mzxid, n.pzxid)
	}
	b := t.barrierLocked(z)
	t.mu.Unlock()
	if err := b.waitRead(ctx); err != nil {
		return core.Stat{}, false, err
	}
	return st, n != nil, nil
}

// Children implements core.Store.
func (s *Session) Children(ctx context.Context, path string) ([]string, error) {
	if err := start(ctx, path, false); err != nil {
		return nil, err
	}
	t := s.t
	t.mu.Lock()
	if err := s.checkLocked(); err != nil {
		t.mu.Unlock()
		return nil, err
	}
	n := t.mu.nodes[path]
	if n == nil {
		b := t.barrierLocked(t.mu.zxid)
		t.mu.Unlock()
		if err := b.waitRead(ctx); err != nil {
			return nil, err
		}
		return nil, core.OpError("children", path, core.ErrNotFound)
	}
	names := slices.Sorted(maps.Keys(n.children))
	b := t.barrierLocked(n.pzxid)
	t.mu.Unlock()
	if err := b.waitRead(ctx); err != nil {
		return nil, err
	}
	return names, nil
}

// createLocked validates and commits a create. It returns the final path.
func (s *Session) createLocked(path string, data []byte, flags core.CreateFlags) (string, error) {
	t := s.t
	sequential := flags&core.Sequential != 0
	parentPath := core.CreateParent(path, sequential)
	if parentPath != "/" && (flags&core.CreateParents != 0 || t.cfg.CreateParents) {
		for _, a := range append(core.Ancestors(parentPath), parentPath) {
			if t.mu.nodes[a] != nil {
				continue
			}
			if t.mu.nodes[core.Parent(a)].owner != 0 {
				return "", core.OpError("create", path, core.ErrNoChildrenForEphemerals)
			}
			if err := t.commitLocked(&Mutation{Op: OpCreate, Time: time.Now().UnixMilli(), Path: a, Data: []byte{}}); err != nil {
				return "", err
			}
		}
	}
	parent := t.mu.nodes[parentPath]
	if parent == nil {
		return "", core.OpError("create", path, core.ErrNotFound)
	}
	final := path
	if sequential {
		final = core.SequentialName(path, parent.cversion)
	}
	if final == "/" || t.mu.nodes[final] != nil {
		return "", core.OpError("create", final, core.ErrNodeExists)
	}
	if parent.owner != 0 {
		return "", core.OpError("create", path, core.ErrNoChildrenForEphemerals)
	}
	var owner int64
	if flags&core.Ephemeral != 0 {
		owner = s.id.Load()
	}
	if err := t.commitLocked(&Mutation{Op: OpCreate, Time: time.Now().UnixMilli(), Owner: owner, Path: final, Data: data}); err != nil {
		return "", err
	}
	return final, nil
}

// Create implements core.Store.
func (s *Session) Create(ctx context.Context, path string, data []byte, flags core.CreateFlags) (string, error) {
	if err := start(ctx, path, flags&core.Sequential != 0); err != nil {
		return "", err
	}
	if len(data) > core.MaxDataSize {
		return "", core.OpError("create", path, core.ErrTooLarge)
	}
	data = cloneData(data)
	t := s.t
	t.mu.Lock()
	if err := s.checkLocked(); err != nil {
		t.mu.Unlock()
		return "", err
	}
	z := t.mu.zxid
	final, err := s.createLocked(path, data, flags)
	var b *batch
	if t.mu.zxid != z {
		b = t.pendingLocked()
	}
	t.mu.Unlock()
	if werr := b.wait(); werr != nil {
		return "", werr
	}
	return final, err
}

// Put implements core.Store.
func (s *Session) Put(ctx context.Context, path string, data []byte, expectedVersion int64) (core.Stat, error) {
	if err := start(ctx, path, false); err != nil {
		return core.Stat{}, err
	}
	if len(data) > core.MaxDataSize {
		return core.Stat{}, core.OpError("put", path, core.ErrTooLarge)
	}
	data = cloneData(data)
	t := s.t
	t.mu.Lock()
	if err := s.checkLocked(); err != nil {
		t.mu.Unlock()
		return core.Stat{}, err
	}
	z := t.mu.zxid
	var err error
	n := t.mu.nodes[path]
	switch {
	case n == nil && expectedVersion != core.AnyVersion:
		err = core.OpError("put", path, core.ErrNotFound)
	case n == nil:
		_, err = s.createLocked(path, data, 0)
		n = t.mu.nodes[path]
	case expectedVersion != core.AnyVersion && n.version != expectedVersion:
		err = core.OpError("put", path, fmt.Errorf("%w: version %d, expected %d", core.ErrBadVersion, n.version, expectedVersion))
	default:
		err = t.commitLocked(&Mutation{Op: OpSet, Time: time.Now().UnixMilli(), Path: path, Data: data})
	}
	var st core.Stat
	if err == nil {
		st = n.stat()
	}
	var b *batch
	if t.mu.zxid != z {
		b = t.pendingLocked()
	}
	t.mu.Unlock()
	if werr := b.wait(); werr != nil {
		return core.Stat{}, werr
	}
	return st, err
}

// Delete implements core.Store.
func (s *Session) Delete(ctx context.Context, path string, expectedVersion int64) error {
	if err := start(ctx, path, false); err != nil {
		return err
	}
	if path == "/" {
		return core.OpError("delete", path, fmt.Errorf("%w: the root cannot be deleted", core.ErrInvalidPath))
	}
	t := s.t
	t.mu.Lock()
	if err := s.checkLocked(); err != nil {
		t.mu.Unlock()
		return err
	}
	n := t.mu.nodes[path]
	var err error
	switch {
	case n == nil:
		err = core.OpError("delete", path, core.ErrNotFound)
	case expectedVersion != core.AnyVersion && n.version != expectedVersion:
		err = core.OpError("delete", path, fmt.Errorf("%w: version %d, expected %d", core.ErrBadVersion, n.version, expectedVersion))
	case len(n.children) > 0:
		err = core.OpError("delete", path, core.ErrNotEmpty)
	}
	if err != nil {
		b := t.barrierLocked(t.mu.zxid)
		t.mu.Unlock()
		if werr := b.waitRead(ctx); werr != nil {
			return werr
		}
		return err
	}
	if err := t.commitLocked(&Mutation{Op: OpDelete, Path: path}); err != nil {
		t.mu.Unlock()
		return err
	}
	b := t.pendingLocked()
	t.mu.Unlock()
	return b.wait()
}

// Watch implements core.Store.
func (s *Session) Watch(ctx context.Context, path string, kind core.WatchKind) (*core.Watch, error) {
	if err := start(ctx, path, false); err != nil {
		return nil, err
	}
	var reg map[string]map[*core.Watch]struct{}
	t := s.t
	t.mu.Lock()
	switch kind {
	case core.WatchData:
		reg = t.mu.dataWatches
	case core.WatchChildren:
		reg = t.mu.childWatches
	default:
		t.mu.Unlock()
		return nil, fmt.Errorf("metastore: watch %s: unknown kind %d", path, kind)
	}
	if err := s.checkLocked(); err != nil {
		t.mu.Unlock()
		return nil, err
	}
	var w *core.Watch
	w = core.NewWatch(path, kind, func() {
		t.mu.Lock()
		delete(s.watches, w)
		t.unregisterLocked(w)
		t.mu.Unlock()
	})
	set := reg[path]
	if set == nil {
		set = map[*core.Watch]struct{}{}
		reg[path] = set
	}
	set[w] = struct{}{}
	s.watches[w] = struct{}{}
	b := t.barrierLocked(t.mu.zxid)
	t.mu.Unlock()
	w.CloseWhenDone(ctx)
	if err := b.waitRead(ctx); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

func (t *Tree) unregisterLocked(w *core.Watch) {
	reg := t.mu.dataWatches
	if w.Kind() == core.WatchChildren {
		reg = t.mu.childWatches
	}
	if set := reg[w.Path()]; set != nil {
		delete(set, w)
		if len(set) == 0 {
			delete(reg, w.Path())
		}
	}
}

// Nodes returns every path in the tree, sorted (for tests and tools).
func (t *Tree) Nodes() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.SortedFunc(maps.Keys(t.mu.nodes), cmp.Compare[string])
}
