package agent

import (
	"sync"

	"github.com/edgepipe/edgepipe/core/queue"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Giving an isolated processor's frames back. The gateway's end of an
// isolated processor decodes the payloads of each reply into one buffer
// (a rendered batch: ~60 KB a poll in the bench, four fifths of what the
// isolated gateway allocated, and the collections that paced). It can
// decode the next reply into the same buffer once the frame is given back
// (sdk.FrameReleaser on its client), and the core gives it back only when
// nothing refers to the frame's messages any more:
//
//   - the processor is the last of the chain, so no processor after it
//     holds a message (an in-process one may keep what it is given);
//   - every output runs isolated, so a message is read only while its
//     Publish call is encoded and sent, never after the call returned (an
//     in-process MQTT output's client library may still be writing a
//     message whose Publish gave up);
//   - every output's queue either copies what it is given (the disk
//     queue) or says when its messages have left it and its consumer
//     (queue.Tracker: the memory queue), and nobody else is shown the
//     messages (Options.OnMessage).
//
// Otherwise the frame is never given back and its buffer is the
// collector's, as before: not giving back is always safe.
type frameReturns struct {
	mu       sync.Mutex
	pending  []heldFrame // oldest first
	returned int         // frames given back, for tests
}

// heldFrame is a processor's frame whose messages went to the queues, and
// where they went: the frame goes back once each tracking queue has
// settled past its mark.
type heldFrame struct {
	to    sdk.FrameReleaser
	f     *sdk.Frame
	marks []queueMark
}

type queueMark struct {
	q  queue.Tracker
	at uint64 // Pushed after the frame's messages went in
}

// maxHeldFrames bounds the frames waiting: while a broker is down the
// queues fill, and frames past this are never given back (the processor's
// client keeps only its last few anyway).
const maxHeldFrames = 16

// returnable is the processor to give f back to, when f is the frame the
// last processor returned and the pipeline is one where that is safe (see
// frameReturns); nil otherwise.
func (a *Agent) returnable(f *sdk.Frame) sdk.FrameReleaser {
	if f == nil || len(f.Messages) == 0 || len(a.processors) == 0 || a.opts.OnMessage != nil {
		return nil
	}
	last := a.processors[len(a.processors)-1]
	r, ok := last.impl.(sdk.FrameReleaser)
	if last.sup == nil || !ok {
		return nil
	}
	for _, o := range a.outputs {
		if o.in.sup == nil {
			return nil
		}
		switch o.q.(type) {
		case queue.Tracker, *queue.Disk:
		default:
			return nil
		}
	}
	return r
}

// hold remembers f, whose messages were just delivered to a's outputs, to
// give back to r once they have settled. A queue's mark is read after the
// push, so another producer's messages can only move it later (safe).
func (a *Agent) hold(r sdk.FrameReleaser, f *sdk.Frame) {
	h := heldFrame{to: r, f: f}
	for _, o := range a.outputs {
		if t, ok := o.q.(queue.Tracker); ok {
			h.marks = append(h.marks, queueMark{t, t.Pushed()})
		}
	}
	a.returns.mu.Lock()
	if len(a.returns.pending) >= maxHeldFrames {
		a.returns.drop(1)
	}
	a.returns.pending = append(a.returns.pending, h)
	a.returns.mu.Unlock()
	a.settle() // a disk queue, or no tracking queue, settles at once
}

// settle gives back every held frame whose messages have settled in
// every tracking queue, oldest first; an output's worker calls it after
// each Ack. Marks grow with each frame in every queue, so the first frame
// not settled ends the pass.
func (a *Agent) settle() {
	a.returns.mu.Lock()
	defer a.returns.mu.Unlock()
	n := 0
	for _, h := range a.returns.pending {
		if !h.settled() {
			break
		}
		h.to.ReleaseFrame(h.f)
		n++
	}
	a.returns.returned += n
	a.returns.drop(n)
}

// forgetHeld drops the frames waiting, never to give them back: when the
// pipeline stops, a reload may hand their messages, still queued, to an
// output that is no longer isolated, and what was safe when they were
// held is not any more.
func (a *Agent) forgetHeld() {
	a.returns.mu.Lock()
	defer a.returns.mu.Unlock()
	a.returns.drop(len(a.returns.pending))
}

// drop removes the n oldest held frames (r.mu held), clearing the slots
// they leave so that their frames are not kept alive.
func (r *frameReturns) drop(n int) {
	rest := copy(r.pending, r.pending[n:])
	clear(r.pending[rest:])
	r.pending = r.pending[:rest]
}

func (h *heldFrame) settled() bool {
	for _, m := range h.marks {
		if m.q.Settled() < m.at {
			return false
		}
	}
	return true
}
