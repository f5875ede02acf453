package queue

import (
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Settled counts only messages that left the queue before the consumer's
// last Ack or Peek: one dropped for the limit while the consumer may still
// be publishing it from its Peek is not settled until the consumer comes
// back.
func TestMemorySettledWaitsForTheConsumer(t *testing.T) {
	msg := func(b byte) sdk.Message { return sdk.Message{Topic: "t", Payload: []byte{b}} }
	q := NewMemory(3 * MessageSize(&sdk.Message{Topic: "t", Payload: []byte{0}}))
	if err := q.Push([]sdk.Message{msg(1), msg(2)}); err != nil {
		t.Fatal(err)
	}
	if q.Pushed() != 2 || q.Settled() != 0 {
		t.Fatalf("pushed %d settled %d, want 2 and 0", q.Pushed(), q.Settled())
	}
	if got, _ := q.Peek(10); len(got) != 2 {
		t.Fatalf("peeked %d", len(got))
	}
	// Over the limit: the oldest two go while the consumer holds them.
	if err := q.Push([]sdk.Message{msg(3), msg(4), msg(5)}); err != nil {
		t.Fatal(err)
	}
	if s := q.Settled(); s != 0 {
		t.Fatalf("settled %d while the consumer may still read what was dropped, want 0", s)
	}
	if err := q.Ack(1); err != nil { // the consumer confirmed one of the dropped
		t.Fatal(err)
	}
	if s := q.Settled(); s != 2 {
		t.Fatalf("settled %d after the consumer's Ack, want 2 (the dropped ones)", s)
	}
	if got, _ := q.Peek(10); len(got) != 3 || got[0].Payload[0] != 3 {
		t.Fatalf("peeked %v", got)
	}
	if err := q.Ack(3); err != nil {
		t.Fatal(err)
	}
	if q.Pushed() != 5 || q.Settled() != 5 {
		t.Fatalf("pushed %d settled %d, want 5 and 5", q.Pushed(), q.Settled())
	}
}
