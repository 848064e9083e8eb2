package core

import (
	"context"
	"sync"
)

// Watch is a persistent watch on one path. Events arrive on C until the watch
// ends (Close, the context given to Store.Watch is done, or the store is
// closed); then C is closed.
//
// Delivery never blocks the store: C holds at most one undelivered event, and
// an event that finds one waiting replaces it (the newer type wins). So a
// slow reader sees fewer events than there were changes, but after every
// change at least one event is delivered that was produced after it, and a
// reader that re-reads the node on each event always ends up with the latest
// state. Events are asynchronous: there is no ordering between an event and
// the return of the call that caused it.
type Watch struct {
	C <-chan Event

	path string
	kind WatchKind
	ch   chan Event

	mu struct {
		sync.Mutex
		closed bool
	}
	onClose func()
	stopCtx func() bool
	done    chan struct{}
}

// NewWatch makes a watch. onClose (which may be nil) runs once, outside any
// lock of the watch, when the watch ends; backends use it to unregister.
func NewWatch(path string, kind WatchKind, onClose func()) *Watch {
	w := &Watch{path: path, kind: kind, ch: make(chan Event, 1), onClose: onClose, done: make(chan struct{})}
	w.C = w.ch
	return w
}

// CloseWhenDone ends the watch when ctx is done. Backends call it once,
// after registering the watch.
func (w *Watch) CloseWhenDone(ctx context.Context) {
	stop := context.AfterFunc(ctx, w.Close)
	w.mu.Lock()
	w.stopCtx = stop
	closed := w.mu.closed
	w.mu.Unlock()
	if closed {
		stop()
	}
}

// Path is the watched path.
func (w *Watch) Path() string { return w.path }

// Kind is what the watch observes.
func (w *Watch) Kind() WatchKind { return w.kind }

// Done is closed when the watch ends.
func (w *Watch) Done() <-chan struct{} { return w.done }

// Deliver queues an event of type t, merging it with an undelivered one. It
// never blocks, and does nothing once the watch ended.
func (w *Watch) Deliver(t EventType) {
	ev := Event{Type: t, Path: w.path}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.closed {
		return
	}
	// Only this method sends, under w.mu, so after draining the channel the
	// send cannot block.
	for {
		select {
		case w.ch <- ev:
			return
		default:
		}
		select {
		case <-w.ch:
		default:
		}
	}
}

// Close ends the watch and closes C. It is idempotent.
func (w *Watch) Close() {
	w.mu.Lock()
	if w.mu.closed {
		w.mu.Unlock()
		return
	}
	w.mu.closed = true
	close(w.ch)
	close(w.done)
	stop := w.stopCtx
	w.mu.Unlock()
	if stop != nil {
		stop()
	}
	if w.onClose != nil {
		w.onClose()
	}
}

// sessionQueueLimit bounds the undelivered events of a SessionWatch.
const sessionQueueLimit = 16

// SessionWatch delivers a store's session events on C, in order, until it is
// closed or the store is closed; then C is closed (events still queued are
// dropped: the subscriber is gone, or the store it watched).
//
// Delivery never blocks the store. Undelivered events wait in a queue of at
// most 16; when a reader falls that far behind, the queue is compacted:
// SessionSuspended and SessionReconnected events are dropped except the
// newest event, while SessionExpired and SessionConnected are kept, so a
// reader always learns of every lost session.
type SessionWatch struct {
	C <-chan SessionEvent

	ch  chan SessionEvent
	hub *SessionHub
	mu  struct {
		sync.Mutex
		queue []queuedSessionEvent
		seq   uint64
	}
	wake      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// Close ends the subscription.
func (w *SessionWatch) Close() {
	w.closeOnce.Do(func() {
		close(w.done)
		if w.hub != nil {
			w.hub.remove(w)
		}
	})
}

type queuedSessionEvent struct {
	ev  SessionEvent
	seq uint64
}

func (w *SessionWatch) push(ev SessionEvent) {
	w.mu.Lock()
	w.mu.seq++
	w.mu.queue = append(w.mu.queue, queuedSessionEvent{ev, w.mu.seq})
	if len(w.mu.queue) > sessionQueueLimit {
		w.mu.queue = compactSessionEvents(w.mu.queue)
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// compactSessionEvents keeps every SessionExpired and SessionConnected event
// and the newest event, then the newest sessionQueueLimit of those.
func compactSessionEvents(q []queuedSessionEvent) []queuedSessionEvent {
	out := q[:0:0]
	for i, e := range q {
		if e.ev.Type == SessionExpired || e.ev.Type == SessionConnected || i == len(q)-1 {
			out = append(out, e)
		}
	}
	if len(out) > sessionQueueLimit {
		out = out[len(out)-sessionQueueLimit:]
	}
	return out
}

func (w *SessionWatch) pump() {
	defer close(w.ch)
	for {
		w.mu.Lock()
		if len(w.mu.queue) == 0 {
			w.mu.Unlock()
			select {
			case <-w.wake:
				continue
			case <-w.done:
				return
			}
		}
		head := w.mu.queue[0]
		w.mu.Unlock()
		select {
		case <-w.done:
			return
		default:
		}
		select {
		case w.ch <- head.ev:
			w.mu.Lock()
			// Compaction may have dropped head meanwhile (it was delivered
			// anyway); remove it only if it is still there.
			if len(w.mu.queue) > 0 && w.mu.queue[0].seq == head.seq {
				w.mu.queue = w.mu.queue[1:]
			}
			w.mu.Unlock()
		case <-w.done:
			return
		}
	}
}

// SessionHub fans session events out to subscribers.
type SessionHub struct {
	mu struct {
		sync.Mutex
		watches map[*SessionWatch]struct{}
		closed  bool
	}
}

// Watch subscribes. After the hub closed, the subscription's C is closed at
// once.
func (h *SessionHub) Watch() *SessionWatch {
	w := &SessionWatch{
		ch:   make(chan SessionEvent),
		hub:  h,
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	w.C = w.ch
	h.mu.Lock()
	closed := h.mu.closed
	if !closed {
		if h.mu.watches == nil {
			h.mu.watches = make(map[*SessionWatch]struct{})
		}
		h.mu.watches[w] = struct{}{}
	}
	h.mu.Unlock()
	go w.pump()
	if closed {
		w.Close()
	}
	return w
}

func (h *SessionHub) remove(w *SessionWatch) {
	h.mu.Lock()
	delete(h.mu.watches, w)
	h.mu.Unlock()
}

// Publish sends ev to every subscriber. It never blocks.
func (h *SessionHub) Publish(ev SessionEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.mu.watches {
		w.push(ev)
	}
}

// Close ends every subscription.
func (h *SessionHub) Close() {
	h.mu.Lock()
	h.mu.closed = true
	ws := h.mu.watches
	h.mu.watches = nil
	h.mu.Unlock()
	for w := range ws {
		w.Close()
	}
}
