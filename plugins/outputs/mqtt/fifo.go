package mqtt

import "sync"

// fifo is a bounded first-in, first-out queue that holds memory only for
// what is in it. A buffered channel of the same bound allocates every slot
// up front: the 16384 busy-reply slots of an output were 0.9 MB of every
// gateway's heap (a third of it) for a queue that is empty but in a flood.
type fifo[T any] struct {
	mu    sync.Mutex
	items []T
	max   int
	// ready holds a token while items is not empty, for a consumer to
	// select on beside its context.
	ready chan struct{}
}

func newFIFO[T any](max int) *fifo[T] {
	return &fifo[T]{max: max, ready: make(chan struct{}, 1)}
}

// put appends v unless the queue holds max items already.
func (q *fifo[T]) put(v T) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) >= q.max {
		return false
	}
	q.items = append(q.items, v)
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// take removes the oldest item, if any. A consumer waits on ready, then
// takes until take reports none.
func (q *fifo[T]) take() (T, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var v, zero T
	if len(q.items) == 0 {
		return v, false
	}
	v = q.items[0]
	q.items[0] = zero // the message's bytes are not held by the backing array
	q.items = q.items[1:]
	if len(q.items) == 0 {
		q.items = nil // the backing array goes with the flood
	} else {
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	return v, true
}
