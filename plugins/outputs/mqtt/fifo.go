package mqtt

import "sync"

// fifo is a bounded queue between goroutines that holds memory only for
// what it holds. A buffered channel of the same bound allocates its whole
// buffer at once: the 16,384 busy replies and 1,024 commands the output may
// hold were 1.2 MB live from Init on, half of the gateway's heap, which
// the garbage collector scanned at every cycle of a gateway that never
// received a command.
type fifo[T any] struct {
	mu    sync.Mutex
	items []T // items[head:] are queued
	head  int
	max   int
	ready chan struct{} // a token after every put, for a waiting taker
}

func newFIFO[T any](max int) *fifo[T] { return &fifo[T]{max: max, ready: make(chan struct{}, 1)} }

// put queues v unless the queue is full.
func (q *fifo[T]) put(v T) bool {
	q.mu.Lock()
	if len(q.items)-q.head >= q.max {
		q.mu.Unlock()
		return false
	}
	if q.head > 0 && len(q.items) == cap(q.items) {
		// Reuse the taken front before growing.
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, v)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// take returns the oldest item, if any, without waiting.
func (q *fifo[T]) take() (v T, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return v, false
	}
	var zero T
	v, q.items[q.head] = q.items[q.head], zero
	q.head++
	if q.head == len(q.items) {
		// Empty: let a flood's backing array go.
		q.items, q.head = nil, 0
	}
	return v, true
}

// len is how many items are queued.
func (q *fifo[T]) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head
}

// wait is signalled after a put; take again then (a signal may be stale).
func (q *fifo[T]) wait() <-chan struct{} { return q.ready }
