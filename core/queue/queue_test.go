package queue

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Both queues keep the same contract; every test here runs on both.
func eachQueue(t *testing.T, limit int64, fn func(t *testing.T, q Queue)) {
	t.Run("memory", func(t *testing.T) { fn(t, NewMemory(limit)) })
	t.Run("disk", func(t *testing.T) {
		q, err := OpenDisk(t.TempDir(), limit)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		fn(t, q)
	})
}

func msg(i int) sdk.Message {
	return sdk.Message{Topic: "Topic/flexem/fbox/GW/data", Payload: []byte(`{"seq":` + strconv.Itoa(i) + `}`), QoS: 1, Retain: i%7 == 0}
}

func batch(from, n int) []sdk.Message {
	out := make([]sdk.Message, n)
	for i := range out {
		out[i] = msg(from + i)
	}
	return out
}

func seqOf(t testing.TB, m sdk.Message) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(string(m.Payload), `{"seq":%d}`, &n); err != nil {
		t.Fatalf("payload %q: %v", m.Payload, err)
	}
	return n
}

func expectSeqs(t testing.TB, got []sdk.Message, from, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("got %d messages, want %d", len(got), n)
	}
	for i, m := range got {
		want := msg(from + i)
		if m.Topic != want.Topic || string(m.Payload) != string(want.Payload) || m.QoS != want.QoS || m.Retain != want.Retain {
			t.Fatalf("message %d: got %+v, want %+v", i, m, want)
		}
	}
}

func TestFIFOWithAck(t *testing.T) {
	eachQueue(t, 0, func(t *testing.T, q Queue) {
		if err := q.Push(batch(0, 10)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-q.Ready():
		default:
			t.Fatal("Push did not signal Ready")
		}
		got, _ := q.Peek(4)
		expectSeqs(t, got, 0, 4)
		got, _ = q.Peek(4)
		expectSeqs(t, got, 0, 4) // Peek removes nothing
		if err := q.Ack(4); err != nil {
			t.Fatal(err)
		}
		if err := q.Push(batch(10, 5)); err != nil {
			t.Fatal(err)
		}
		got, _ = q.Peek(100)
		expectSeqs(t, got, 4, 11)
		st := q.Stats()
		var bytes int64
		for i := range got {
			bytes += MessageSize(&got[i])
		}
		if st.Depth != 11 || st.Bytes != bytes || st.Dropped != 0 {
			t.Fatalf("stats %+v, want depth 11 bytes %d", st, bytes)
		}
		q.Ack(11)
		if got, _ := q.Peek(10); len(got) != 0 || q.Stats().Depth != 0 || q.Stats().Bytes != 0 {
			t.Fatalf("not empty after acking all: %d, %+v", len(got), q.Stats())
		}
	})
}

func TestLimitDropsOldestAndAckSkipsThem(t *testing.T) {
	one := MessageSize(&[]sdk.Message{msg(0)}[0])
	eachQueue(t, 10*one+one/2, func(t *testing.T, q Queue) {
		q.Push(batch(0, 8))
		inflight, _ := q.Peek(5) // 0..4 are being published
		expectSeqs(t, inflight, 0, 5)
		q.Push(batch(8, 5)) // 13 held: the 3 oldest go
		st := q.Stats()
		if st.Depth != 10 || st.Dropped != 3 {
			t.Fatalf("after overflow: %+v, want depth 10, dropped 3", st)
		}
		q.Ack(5) // 0..4 delivered; 0..2 were already dropped
		got, _ := q.Peek(100)
		expectSeqs(t, got, 5, 8)
	})
}

func TestLimitKeepsNewestEvenIfAlone(t *testing.T) {
	eachQueue(t, 10, func(t *testing.T, q Queue) {
		q.Push(batch(0, 3))
		got, _ := q.Peek(10)
		expectSeqs(t, got, 2, 1)
		if q.Stats().Dropped != 2 {
			t.Fatalf("dropped %d", q.Stats().Dropped)
		}
	})
}

func TestManyBatchesInterleaved(t *testing.T) {
	eachQueue(t, 0, func(t *testing.T, q Queue) {
		next, pushed := 0, 0
		for round := 0; round < 200; round++ {
			q.Push(batch(pushed, 37))
			pushed += 37
			got, err := q.Peek(50)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) > 0 && seqOf(t, got[0]) != next {
				t.Fatalf("round %d: head is %d, want %d", round, seqOf(t, got[0]), next)
			}
			k := len(got) / 2
			q.Ack(k)
			next += k
		}
		got, _ := q.Peek(pushed)
		expectSeqs(t, got, next, pushed-next)
	})
}
