package ledger

import "sync"

// eventQueue carries completions from connection goroutines to the one
// goroutine that runs an operation (a read, a LAC read, a recovery). Push
// never blocks, so connections never wait on an operation; the queue is
// bounded by the requests the operation has outstanding. Once the
// operation is over (close), pushes are refused and the pusher releases
// what it carried.
type eventQueue[T any] struct {
	signal chan struct{}
	mu     struct {
		sync.Mutex
		items  []T
		closed bool
	}
}

func newEventQueue[T any]() *eventQueue[T] {
	return &eventQueue[T]{signal: make(chan struct{}, 1)}
}

// push queues v; false when the queue is closed.
func (q *eventQueue[T]) push(v T) bool {
	q.mu.Lock()
	if q.mu.closed {
		q.mu.Unlock()
		return false
	}
	q.mu.items = append(q.mu.items, v)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
	return true
}

// drain moves the queued events to dst.
func (q *eventQueue[T]) drain(dst []T) []T {
	q.mu.Lock()
	dst = append(dst, q.mu.items...)
	clear(q.mu.items)
	q.mu.items = q.mu.items[:0]
	q.mu.Unlock()
	return dst
}

// close refuses later pushes and returns what was still queued.
func (q *eventQueue[T]) close() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.mu.closed = true
	rest := q.mu.items
	q.mu.items = nil
	return rest
}
