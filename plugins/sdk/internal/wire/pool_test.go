package wire

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgepipe/edgepipe/plugins/sdk/pb"
)

func TestPoolTiers(t *testing.T) {
	for _, n := range []int{0, 1, 255, 256, 257, 4096, 65 << 10, 1 << 20, 1<<20 + 1, MaxMessageBytes} {
		b := pool.Get(n)
		if len(*b) != n {
			t.Fatalf("Get(%d): len %d", n, len(*b))
		}
		if c := cap(*b); c < n || c&(c-1) != 0 || c > 2*max(n, 1<<minShift) {
			t.Fatalf("Get(%d): cap %d, want the power of two that holds it", n, c)
		}
		pool.Put(b)
	}
	// Beyond the largest tier: served, not pooled.
	if b := pool.Get(MaxMessageBytes + 1); len(*b) != MaxMessageBytes+1 {
		t.Fatalf("Get beyond the tiers: len %d", len(*b))
	}
	// A foreign buffer is dropped, not handed out later with a wrong size.
	odd := make([]byte, 1000)
	pool.Put(&odd)
	if b := pool.Get(1000); cap(*b) != 1024 {
		t.Fatalf("after a foreign Put: cap %d, want 1024", cap(*b))
	}
}

// The codec writes exactly the bytes gRPC's default protobuf codec
// writes, so a plugin built with an older SDK reads them, and reads back
// what it wrote through a reused (dirty) buffer.
func TestCodecIsProtobuf(t *testing.T) {
	msg := &pb.Frame{Messages: []*pb.Message{{Topic: "t", Payload: bytes.Repeat([]byte("x"), 70<<10), Qos: 1}}}
	want, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		data, err := codec{}.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		if got := data.Materialize(); !bytes.Equal(got, want) {
			t.Fatalf("marshalled %d bytes differ from proto.Marshal's %d", len(got), len(want))
		}
		var back pb.Frame
		if err := (codec{}).Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		data.Free()
		if !proto.Equal(&back, msg) {
			t.Fatal("round trip changed the frame")
		}
		// Dirty the pool's buffers: the next round must not see it.
		b := pool.Get(len(want))
		for i := range *b {
			(*b)[i] = 0xff
		}
		pool.Put(b)
	}
	if _, err := (codec{}).Marshal("not a message"); err == nil {
		t.Fatal("marshalled a string")
	}
}
