// Package queue holds the store-and-forward queues that sit in front of
// every output. A message enters its output's queue once the processors
// have rendered it, and leaves only when the output confirmed delivery
// (Ack). That is the at-least-once promise: a broker outage, a slow
// output or (with the disk queue) a restart never loses what was queued.
//
// What is kept when things go wrong, and why:
//
//   - Past the byte limit the oldest messages are dropped, never the new
//     ones: the server wants the freshest data when it comes back.
//   - When the disk is full, what is already queued is kept and the new
//     messages are dropped (counted in Stats.DroppedFull, the cause in
//     Stats.WriteErr). Dropping queued data to make room would trade data
//     the server has not seen for data it has not seen either, and would
//     need writes on a disk that has no room for them. Every Push tries
//     again, so queuing resumes by itself once there is space.
//   - A damaged record (bad checksum, cut short, a sequence out of place)
//     costs only itself: recovery and Peek resynchronise on the next valid
//     record. Messages lost to damage or to a missing segment file are
//     counted from the gaps in the sequence numbers (Damage,
//     Stats.DroppedCorrupt); damage to acknowledged messages costs nothing.
//     The on-disk format is unchanged: an older version still opens the
//     files (with its older recovery, which cuts at the first bad record).
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
	// The disk queue may return messages together with a *DamageError: it
	// skipped damaged records on the way (once; they are gone), and the
	// messages it returns are good.
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
