package zk

import (
	"context"
	"errors"
	"fmt"
	"time"

	gozk "github.com/go-zookeeper/zk"

	"github.com/magnetar/magnetar/metastore/internal/core"
)

// nodeState is what a watch compares before and after a ZooKeeper event.
type nodeState struct {
	exists  bool
	czxid   int64
	version int64 // data version (data watches) or children version
}

// zkWatch keeps one persistent watch armed on ZooKeeper.
type zkWatch struct {
	s    *Store
	w    *core.Watch
	path string
	kind core.WatchKind
}

// Watch implements metastore.Store.
func (s *Store) Watch(ctx context.Context, path string, kind core.WatchKind) (*core.Watch, error) {
	if err := core.ValidatePath(path, false); err != nil {
		return nil, err
	}
	if kind != core.WatchData && kind != core.WatchChildren {
		return nil, fmt.Errorf("metastore: watch %s: unknown kind %d", path, kind)
	}
	zw := &zkWatch{s: s, path: path, kind: kind}
	zw.w = core.NewWatch(path, kind, func() {
		s.mu.Lock()
		delete(s.mu.watches, zw)
		s.mu.Unlock()
	})
	regCtx, cancel := s.opCtx(ctx)
	defer cancel()
	st, ch, err := zw.arm(regCtx)
	if err != nil {
		zw.w.Close()
		return nil, err
	}
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		zw.w.Close()
		return nil, core.OpError("watch", path, core.ErrClosed)
	}
	s.mu.watches[zw] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	zw.w.CloseWhenDone(ctx)
	go zw.loop(st, ch)
	return zw.w, nil
}

// arm sets a ZooKeeper watch on the node and returns its state, retrying
// through connection losses.
func (zw *zkWatch) arm(ctx context.Context) (nodeState, <-chan gozk.Event, error) {
	s := zw.s
	full := s.full(zw.path)
	type armed struct {
		st    nodeState
		ch    <-chan gozk.Event
		again bool // the node appeared between two calls: arm again
	}
	for {
		c, err := s.conn(ctx)
		if err != nil {
			return nodeState{}, nil, core.OpError("watch", zw.path, err)
		}
		a, err := call(ctx, func() (armed, error) {
			if zw.kind == core.WatchChildren {
				_, st, ch, err := c.ChildrenW(full)
				if err == nil {
					return armed{st: nodeState{exists: true, czxid: st.Czxid, version: int64(st.Cversion)}, ch: ch}, nil
				}
				if !errors.Is(err, gozk.ErrNoNode) {
					return armed{}, err
				}
			}
			ok, st, ch, err := c.ExistsW(full)
			if err != nil {
				return armed{}, err
			}
			if !ok {
				return armed{ch: ch}, nil
			}
			if zw.kind == core.WatchChildren {
				// Created between the two calls: arm the children watch.
				return armed{again: true}, nil
			}
			return armed{st: nodeState{exists: true, czxid: st.Czxid, version: int64(st.Version)}, ch: ch}, nil
		})
		switch {
		case err == nil && !a.again:
			return a.st, a.ch, nil
		case err == nil:
			continue
		case isConnErr(err):
			if err := s.backoff(ctx); err != nil {
				return nodeState{}, nil, core.OpError("watch", zw.path, err)
			}
			continue
		}
		var ab errAbandoned
		if errors.As(err, &ab) {
			return nodeState{}, nil, core.OpError("watch", zw.path, fmt.Errorf("%w: %w", core.ErrUnavailable, err))
		}
		return nodeState{}, nil, mapErr("watch", zw.path, err)
	}
}

// loop waits for the armed watch to fire, re-arms it and reports what
// changed.
func (zw *zkWatch) loop(st nodeState, ch <-chan gozk.Event) {
	s := zw.s
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-zw.w.Done():
		case <-s.closing:
		}
		cancel()
	}()
	for {
		var ev gozk.Event
		select {
		case ev = <-ch:
		case <-ctx.Done():
			return
		}
		var next nodeState
		var nextCh <-chan gozk.Event
		for {
			var err error
			next, nextCh, err = zw.arm(ctx)
			if err == nil {
				break
			}
			if ctx.Err() != nil || errors.Is(err, core.ErrClosed) {
				return
			}
			s.log.Warn("metastore: zk: re-arming a watch", "path", zw.path, "err", err)
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return
			}
		}
		if t := changeType(zw.kind, st, next, ev); t != 0 {
			zw.w.Deliver(t)
		}
		st, ch = next, nextCh
	}
}

// changeType says what changed between two states of a node. When the
// states are equal but ZooKeeper reported a change (say the node was created
// and deleted again before the watch was re-armed), the newest state's
// event is reported.
func changeType(kind core.WatchKind, old, cur nodeState, ev gozk.Event) core.EventType {
	switch {
	case !old.exists && cur.exists, old.exists && cur.exists && old.czxid != cur.czxid:
		return core.EventCreated
	case old.exists && !cur.exists:
		return core.EventDeleted
	case cur.exists && old.version != cur.version && kind == core.WatchData:
		return core.EventDataChanged
	case cur.exists && old.version != cur.version:
		return core.EventChildrenChanged
	}
	switch ev.Type {
	case gozk.EventNodeCreated, gozk.EventNodeDeleted, gozk.EventNodeDataChanged, gozk.EventNodeChildrenChanged:
		switch {
		case !cur.exists:
			return core.EventDeleted
		case kind == core.WatchData:
			return core.EventDataChanged
		default:
			return core.EventChildrenChanged
		}
	}
	return 0
}
