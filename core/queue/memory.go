package queue

import (
	"sync"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Memory is a queue in RAM: it survives broker outages and reloads, not
// restarts of the gateway.
type Memory struct {
	mu      sync.Mutex
	msgs    []sdk.Message // ring: msgs[head:] then wraps
	head    int
	n       int
	bytes   int64
	limit   int64 // bytes; 0 means unlimited
	dropped uint64
	// inflightDropped counts messages dropped from the front while a
	// consumer holds a Peek, so that its Ack skips them.
	inflightDropped int
	ready           chan struct{}
	// pushed counts the messages ever pushed (pushed-n of them have left,
	// acknowledged or dropped), settled how many had left when the
	// consumer last called Ack or Peek: see Settled.
	pushed, settled uint64
}

// Memory copies no payload: its messages are the producer's memory until
// they leave. Tracker is how a producer that reuses that memory learns
// when they have (the agent, for an isolated processor's payloads).
var _ Tracker = (*Memory)(nil)

// Tracker is a queue that keeps its messages' memory (Memory) and says
// when it no longer refers to them.
type Tracker interface {
	Queue
	// Pushed is how many messages were ever pushed: the messages of a
	// Push are those up to its value after the Push.
	Pushed() uint64
	// Settled is how many of the oldest messages ever pushed neither the
	// queue nor its consumer refers to any more: they left the queue
	// (acknowledged, or dropped for the limit) before the consumer's last
	// Ack or Peek, by which it is done with what it peeked before. A
	// message dropped while the consumer may still be publishing it from
	// its last Peek is not settled until then.
	Settled() uint64
}

// NewMemory returns a queue holding at most limit bytes (0: no limit).
func NewMemory(limit int64) *Memory {
	return &Memory{limit: limit, msgs: make([]sdk.Message, 64), ready: make(chan struct{}, 1)}
}

func (q *Memory) at(i int) *sdk.Message { return &q.msgs[(q.head+i)%len(q.msgs)] }

func (q *Memory) grow() {
	next := make([]sdk.Message, 2*len(q.msgs))
	for i := 0; i < q.n; i++ {
		next[i] = *q.at(i)
	}
	q.msgs, q.head = next, 0
}

func (q *Memory) Push(msgs []sdk.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	q.mu.Lock()
	for _, m := range msgs {
		if q.n == len(q.msgs) {
			q.grow()
		}
		*q.at(q.n) = m
		q.n++
		q.pushed++
		q.bytes += MessageSize(&m)
	}
	for q.limit > 0 && q.bytes > q.limit && q.n > 1 {
		old := q.at(0)
		q.bytes -= MessageSize(old)
		*old = sdk.Message{}
		q.head = (q.head + 1) % len(q.msgs)
		q.n--
		q.dropped++
		q.inflightDropped++
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return nil
}

func (q *Memory) Peek(max int) ([]sdk.Message, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inflightDropped = 0
	q.settled = q.pushed - uint64(q.n)
	n := min(max, q.n)
	out := make([]sdk.Message, n)
	for i := range out {
		out[i] = *q.at(i)
	}
	return out, nil
}

func (q *Memory) Ack(n int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	n -= q.inflightDropped
	q.inflightDropped = 0
	for ; n > 0 && q.n > 0; n-- {
		m := q.at(0)
		q.bytes -= MessageSize(m)
		*m = sdk.Message{}
		q.head = (q.head + 1) % len(q.msgs)
		q.n--
	}
	q.settled = q.pushed - uint64(q.n)
	return nil
}

func (q *Memory) Pushed() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pushed
}

func (q *Memory) Settled() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.settled
}

func (q *Memory) Ready() <-chan struct{} { return q.ready }

func (q *Memory) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return Stats{Depth: q.n, Bytes: q.bytes, Dropped: q.dropped}
}

func (q *Memory) Close() error { return nil }
