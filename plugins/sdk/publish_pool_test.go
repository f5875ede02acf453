package sdk

import (
	"bytes"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgepipe/edgepipe/plugins/sdk/pb"
)

// FuzzPublishWireReused: a Publish request decoded into memory lent by a
// pool (an opting-in output's process), given back after each input as
// after a successful call, decodes to exactly what the generated code
// decodes, whatever the earlier inputs left in that memory; no payload's
// capacity reaches into another's.
func FuzzPublishWireReused(f *testing.F) {
	for _, msgs := range [][]Message{
		{{Topic: "t", Payload: []byte("x"), QoS: 1}},
		{{Topic: "gw/d1/data", Payload: bytes.Repeat([]byte("ab"), 600), QoS: 1, Retain: true}, {Topic: "gw/d2", Payload: []byte("{}")}},
		{{Topic: "t"}, {Payload: []byte("only a payload")}},
	} {
		f.Add(marshalWire(f, newWirePublish(msgs, 7)))
	}
	f.Add([]byte{0x0a, 0x03, 0x12, 0x01, 0xff, 0x0a, 0x02, 0x12, 0x80})
	var pool pointPool
	f.Fuzz(func(t *testing.T, data []byte) {
		var pp pb.PublishRequest
		perr := proto.Unmarshal(data, &pp)
		for range 2 { // the second time into the memory the first used
			w := wirePublish{pool: &pool}
			werr := w.UnmarshalWire(data)
			if (perr == nil) != (werr == nil) {
				t.Fatalf("generated code says %v, reused decoding %v", perr, werr)
			}
			if perr != nil {
				w.recycle()
				continue
			}
			want := messagesFromPB(pp.Messages)
			if len(w.Msgs) != len(want) || w.Budget != pp.BudgetNs {
				t.Fatalf("decoded %d messages budget %d, want %d, %d", len(w.Msgs), w.Budget, len(want), pp.BudgetNs)
			}
			check := func(when string) {
				for i := range want {
					g, e := w.Msgs[i], want[i]
					if g.Topic != e.Topic || g.QoS != e.QoS || g.Retain != e.Retain || !bytes.Equal(g.Payload, e.Payload) {
						t.Fatalf("message %d %s: %+v, want %+v", i, when, g, e)
					}
				}
			}
			check("decoded")
			for _, m := range w.Msgs {
				_, _ = io.Discard.Write(append(m.Payload, 0xaa))
			}
			check("after appending to every payload")
			w.recycle()
		}
	})
}

// The pool keeps what a steady stream of calls needs and no more: a
// replay's 2 MB batch is not kept after its call, calls of 64 KB reuse one
// buffer, and calls that grew to 200 KB reuse one of theirs.
func TestPublishPoolKeepsBoundedMemory(t *testing.T) {
	var pool pointPool
	decode := func(size int) *wirePublish {
		t.Helper()
		w := &wirePublish{pool: &pool}
		b := marshalWire(t, newWirePublish([]Message{{Topic: "t", Payload: make([]byte, size)}}, 0))
		if err := w.UnmarshalWire(b); err != nil || len(w.Msgs) != 1 || len(w.Msgs[0].Payload) != size {
			t.Fatalf("decoding %d bytes: %v, %d messages", size, err, len(w.Msgs))
		}
		return w
	}
	decode(2 << 20).recycle()
	if len(pool.arenas) != 0 {
		t.Fatalf("a 2 MB request's buffer was kept (%d buffers)", len(pool.arenas))
	}
	first := decode(64 << 10)
	p := &first.Msgs[0].Payload[0]
	first.recycle()
	for range 3 {
		w := decode(64<<10 - 100)
		if &w.Msgs[0].Payload[0] != p {
			t.Fatal("a 64 KB call did not reuse the buffer of the last")
		}
		w.recycle()
	}
	grown := decode(200 << 10)
	p = &grown.Msgs[0].Payload[0]
	grown.recycle()
	for range 3 {
		w := decode(200 << 10)
		if &w.Msgs[0].Payload[0] != p {
			t.Fatal("a 200 KB call did not reuse the buffer of the last")
		}
		w.recycle()
	}
	if len(pool.arenas) > maxPooledArenas {
		t.Fatalf("the pool keeps %d buffers", len(pool.arenas))
	}
}
