// Package queue holds the store-and-forward queues that sit in front of
// every output. A message enters its output's queue once the processors
// have rendered it, and leaves only when the output confirmed delivery
// (Ack). That is the at-least-once promise: a broker outage, a slow
// output or (with the disk queue) a restart never loses what was queued.
package queue

import (
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Queue is a FIFO of messages with explicit acknowledgement. It is safe for
// one producer and one consumer running concurrently.
type Queue interface {
	// Push appends messages. Past the queue's limit the oldest messages
	// are dropped (and counted), never the new ones: the server wants the
	// freshest data when it comes back.
	Push(msgs []sdk.Message) error
	// Peek returns up to max of the oldest messages without removing them.
	Peek(max int) ([]sdk.Message, error)
	// Ack removes the n oldest messages, once the output delivered them.
	// Messages dropped for the limit since the Peek are accounted for: Ack
	// never removes a message that was not delivered.
	Ack(n int) error
	// Ready is signalled (non-blocking, capacity 1) whenever Push adds to
	// the queue, so a consumer can sleep until there is work.
	Ready() <-chan struct{}
	Stats() Stats
	Close() error
}

// Stats describes a queue for /healthz and /metrics.
type Stats struct {
	Depth   int    // messages held
	Bytes   int64  // payload + topic bytes held
	Dropped uint64 // messages dropped for the limit since start
	// The disk queue only, since start:
	DroppedFull    uint64 // messages Push could not write: the disk was full
	DroppedWrite   uint64 // messages Push could not write for another reason
	DroppedCorrupt uint64 // messages lost to damaged records or missing files
	Corrupt        uint64 // damaged regions and sequence gaps found
	// WriteErr is why the last Push failed ("" once one succeeds): a queue
	// that cannot be written makes the gateway unwell.
	WriteErr string
}

// MessageSize is what a message counts against a queue's byte limit.
func MessageSize(m *sdk.Message) int64 { return int64(len(m.Topic) + len(m.Payload) + 16) }
