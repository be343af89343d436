// Package queue is the unbounded queue with a wake-up channel that the lease
// manager's events and the consumer's coordinator both use: producers push
// without ever blocking (they may hold their own locks, or be callbacks that
// must return at once), and one consumer goroutine waits on Ready and takes
// everything queued with Drain.
package queue

import "sync"

// Queue is a FIFO of T. Push and Drain are safe for concurrent use; its lock
// is a leaf (held only inside Push and Drain), so Push may be called while
// holding any other lock. Make one with New.
type Queue[T any] struct {
	mu    sync.Mutex
	items []T
	ready chan struct{} // capacity 1: a token means "pushed since the last Drain"
}

// New returns an empty queue.
func New[T any]() *Queue[T] {
	return &Queue[T]{ready: make(chan struct{}, 1)}
}

// Push appends v and wakes the consumer. It never blocks.
func (q *Queue[T]) Push(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Ready returns a channel that receives a value after a Push. A receive may
// find the queue already drained (the token of a Push whose item an earlier
// Drain took): Drain then returns nil.
func (q *Queue[T]) Ready() <-chan struct{} { return q.ready }

// Drain removes and returns every item queued, in the order pushed; nil if
// none.
func (q *Queue[T]) Drain() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}
