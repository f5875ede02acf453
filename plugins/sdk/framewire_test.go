package sdk

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/edgepipe/edgepipe/plugins/sdk/pb"
)

// randomFrame makes frames with every kind of value and every optional
// part, including the zero values proto3 leaves out.
func randomFrame(r *rand.Rand) *Frame {
	f := &Frame{}
	for range r.IntN(3) {
		b := Batch{Device: []string{"", "plc1", "ünï"}[r.IntN(3)], TS: []int64{0, 1732600000000, -5}[r.IntN(3)],
			ReadBack: r.IntN(2) == 0}
		for i := range r.IntN(40) {
			p := Point{Name: []string{"", "p" + strconv.Itoa(i), "名前"}[r.IntN(3)], Quality: Quality(r.IntN(4)),
				TS: b.TS + int64(r.IntN(2000)) - 1000}
			switch r.IntN(7) {
			case 0:
				p.Value = Bool(r.IntN(2) == 0)
			case 1:
				p.Value = Int(r.Int64() - math.MaxInt64/2)
			case 2:
				p.Value = Uint(r.Uint64())
			case 3:
				p.Value = Float(r.NormFloat64())
			case 4:
				p.Value = String([]string{"", "on", "\xff\xfe not utf-8"}[r.IntN(3)])
			case 5:
				p.TS = 0
			}
			b.Points = append(b.Points, p)
		}
		// At most one status a batch: the generated code writes a map's
		// entries in no fixed order.
		if len(b.Points) > 0 && r.IntN(3) == 0 {
			b.Points[r.IntN(len(b.Points))].Status = []string{"BadNodeIdUnknown", "\xff odd", "x"}[r.IntN(3)]
		}
		f.Batches = append(f.Batches, b)
	}
	for range r.IntN(3) {
		f.Messages = append(f.Messages, Message{Topic: []string{"", "t/x"}[r.IntN(2)],
			Payload: bytes.Repeat([]byte("{}"), r.IntN(3)), QoS: uint8(r.IntN(3)), Retain: r.IntN(2) == 0})
	}
	if r.IntN(3) == 0 {
		f.Alarms = []Alarm{{TS: 5, Rule: "hi", Point: "plc1.p1", Level: "warning", State: "raised", Value: Float(3), Message: "m"}}
	}
	if r.IntN(3) == 0 {
		f.Requests = []Request{{Point: "plc1.p2", Value: Int(7), Reason: "r"}}
	}
	if r.IntN(4) == 0 {
		f.Pictures = []Picture{{TS: 9, Device: "cam", Format: "jpeg", Data: []byte{1, 2, 3}}}
	}
	return f
}

func marshalWire(t testing.TB, w interface {
	SizeWire() (int, error)
	AppendWire([]byte) []byte
}) []byte {
	t.Helper()
	n, err := w.SizeWire()
	if err != nil {
		t.Fatal(err)
	}
	b := w.AppendWire(nil)
	if len(b) != n {
		t.Fatalf("wrote %d bytes, announced %d", len(b), n)
	}
	return b
}

// The hand-written encoding is byte for byte what the generated code
// writes, and decodes to what the generated code decodes: a plugin of an
// older SDK and the gateway understand each other.
func TestFrameWireIsTheProto(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		f := randomFrame(r)
		want, err := proto.Marshal(frameToPB(f))
		if err != nil {
			t.Fatal(err)
		}
		got := marshalWire(t, newWireFrame(f))
		if !bytes.Equal(got, want) {
			t.Fatalf("frame %d: encoding differs from the generated code's\n got %x\nwant %x", i, got, want)
		}
		var back wireFrame
		if err := back.UnmarshalWire(want); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		var p pb.Frame
		if err := proto.Unmarshal(want, &p); err != nil {
			t.Fatal(err)
		}
		if exp := frameFromPB(&p); !reflect.DeepEqual(back.F, exp) {
			t.Fatalf("frame %d: decoded\n %+v\nwant %+v", i, back.F, exp)
		}

		state := []*pb.StateChange{{Key: "k", Value: []byte("v")}, {Key: "gone", Deleted: true}}[:r.IntN(3)]
		resp, err := newWireFrameResponse(f, state)
		if err != nil {
			t.Fatal(err)
		}
		wantResp, err := proto.Marshal(&pb.FrameResponse{Frame: frameToPB(f), State: state})
		if err != nil {
			t.Fatal(err)
		}
		if got := marshalWire(t, resp); !bytes.Equal(got, wantResp) {
			t.Fatalf("response %d: encoding differs from the generated code's", i)
		}
		var backResp wireFrameResponse
		if err := backResp.UnmarshalWire(wantResp); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(backResp.F, frameFromPB(&p)) || len(backResp.State) != len(state) {
			t.Fatalf("response %d: decoded %+v", i, backResp.F)
		}

		pub := newWirePublish(f.Messages, int64(r.IntN(3))*1e9)
		wantPub, err := proto.Marshal(&pb.PublishRequest{Messages: messagesToPB(f.Messages), BudgetNs: pub.Budget})
		if err != nil {
			t.Fatal(err)
		}
		if got := marshalWire(t, pub); !bytes.Equal(got, wantPub) {
			t.Fatalf("publish %d: encoding differs from the generated code's", i)
		}
		var backPub wirePublish
		if err := backPub.UnmarshalWire(wantPub); err != nil {
			t.Fatal(err)
		}
		var pp pb.PublishRequest
		if err := proto.Unmarshal(wantPub, &pp); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(backPub.Msgs, messagesFromPB(pp.Messages)) || backPub.Budget != pub.Budget {
			t.Fatalf("publish %d: decoded %+v", i, backPub.Msgs)
		}
	}
}

// What the generated code refuses to write, the hand-written one refuses
// too, rather than sending what the other side cannot read.
func TestFrameWireRefusesInvalidUTF8(t *testing.T) {
	for _, f := range []*Frame{
		{Batches: []Batch{{Device: "\xff"}}},
		{Messages: []Message{{Topic: "\xff"}}},
		{Alarms: []Alarm{{Rule: "\xff"}}},
	} {
		if _, err := newWireFrame(f).SizeWire(); err == nil {
			t.Errorf("%+v: encoded", f)
		}
	}
}

// A column the fast path does not take (split in two, unpacked) is
// decoded by the generated code, with its answer.
func TestFrameWireNonCanonical(t *testing.T) {
	f := &Frame{Batches: []Batch{{Device: "d", TS: 10, Points: []Point{{Name: "a", Value: Int(1)}, {Name: "b", Value: Int(2)}}}}}
	p := frameToPB(f)
	one, _ := proto.Marshal(p)
	// The batch field twice: proto merges the two batches' columns.
	merged := append(append([]byte{}, one...), one[0])
	merged = append(merged, one[1:]...)
	var q pb.Frame
	if err := proto.Unmarshal(merged, &q); err != nil {
		t.Fatal(err)
	}
	var w wireFrame
	if err := w.UnmarshalWire(merged); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(w.F, frameFromPB(&q)) {
		t.Fatalf("decoded %+v, want %+v", w.F, frameFromPB(&q))
	}
	// One batch whose body repeats its name_lens column.
	body, _ := proto.Marshal(p.Batches[0])
	extra, _ := proto.Marshal(&pb.Batch{NameLens: []uint32{0}})
	twice := append(append([]byte{}, body...), extra...)
	fb, _ := proto.Marshal(&pb.Frame{})
	fb = append(fb, 0x0a)
	fb = append(fb, byte(len(twice)))
	fb = append(fb, twice...)
	q.Reset()
	if err := proto.Unmarshal(fb, &q); err != nil {
		t.Fatal(err)
	}
	if err := w.UnmarshalWire(fb); err != nil {
		t.Fatal(err)
	}
	if got := w.F.NumPoints(); got != 3 || !reflect.DeepEqual(w.F, frameFromPB(&q)) {
		t.Fatalf("decoded %d points %+v, want %+v", got, w.F, frameFromPB(&q))
	}
}

// FuzzFrameWire: whatever arrives, the decoders never panic, and accept
// and decode exactly what the generated code accepts and decodes.
func FuzzFrameWire(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		fr := randomFrame(r)
		b, _ := proto.Marshal(frameToPB(fr))
		f.Add(b)
		resp, _ := proto.Marshal(&pb.FrameResponse{Frame: frameToPB(fr), State: []*pb.StateChange{{Key: "k"}}})
		f.Add(resp)
	}
	f.Add([]byte{0x0a, 0x02, 0x22, 0x80})
	for _, c := range []*wireCall{{ID: 1, Gather: &pb.GatherRequest{ReadBack: []string{"d"}}, Timeout: time.Second},
		{ID: 2, Process: newWireFrame(randomFrame(r))}, {ID: 3, Cancel: true},
		{ID: 4, Publish: newWirePublish([]Message{{Topic: "t", Payload: []byte("x"), QoS: 1}}, 5)}} {
		f.Add(marshalWire(f, c))
	}
	resp, _ := newWireFrameResponse(randomFrame(r), nil)
	f.Add(marshalWire(f, &wireReply{ID: 5, Frame: resp}))
	f.Add(marshalWire(f, &wireReply{ID: 6, Code: 5, Message: "not mine", Confirmed: 2}))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p pb.Frame
		perr := proto.Unmarshal(data, &p)
		var w wireFrame
		werr := w.UnmarshalWire(data)
		if (perr == nil) != (werr == nil) {
			t.Fatalf("frame: generated code says %v, fast path %v", perr, werr)
		}
		if perr == nil && !reflect.DeepEqual(w.F, frameFromPB(&p)) {
			t.Fatalf("frame decoded\n %+v\nwant %+v", w.F, frameFromPB(&p))
		}
		var pr pb.FrameResponse
		perr = proto.Unmarshal(data, &pr)
		var wr wireFrameResponse
		werr = wr.UnmarshalWire(data)
		if (perr == nil) != (werr == nil) {
			t.Fatalf("response: generated code says %v, fast path %v", perr, werr)
		}
		if perr == nil && !reflect.DeepEqual(wr.F, frameFromPB(pr.Frame)) {
			t.Fatalf("response decoded\n %+v\nwant %+v", wr.F, frameFromPB(pr.Frame))
		}
		// The Session's messages: read without panicking whatever comes.
		var call wireCall
		_ = call.UnmarshalWire(data)
		var reply wireReply
		_ = reply.UnmarshalWire(data)
		var pp pb.PublishRequest
		perr = proto.Unmarshal(data, &pp)
		var wp wirePublish
		werr = wp.UnmarshalWire(data)
		if (perr == nil) != (werr == nil) {
			t.Fatalf("publish: generated code says %v, fast path %v", perr, werr)
		}
		if perr == nil && (!reflect.DeepEqual(wp.Msgs, messagesFromPB(pp.Messages)) || wp.Budget != pp.BudgetNs) {
			t.Fatalf("publish decoded %+v, want %+v", wp.Msgs, messagesFromPB(pp.Messages))
		}
	})
}

// Call and Reply cross the wire whole: ids, the request of each kind, the
// deadline, the cancel flag, an error's code, message and confirmed count.
func TestSessionMessagesRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	f := randomFrame(r)
	for _, c := range []*wireCall{{ID: 1, Gather: &pb.GatherRequest{ReadBack: []string{"d"}}, Timeout: time.Second},
		{ID: 2, Process: newWireFrame(f)}, {ID: 3, Cancel: true},
		{ID: 1 << 40, Publish: newWirePublish([]Message{{Topic: "t", Payload: []byte("x"), QoS: 1}}, 5)}} {
		var back wireCall
		if err := back.UnmarshalWire(marshalWire(t, c)); err != nil {
			t.Fatal(err)
		}
		if back.ID != c.ID || back.Timeout != c.Timeout || back.Cancel != c.Cancel ||
			(c.Gather != nil) != (back.Gather != nil) || (c.Process != nil) != (back.Process != nil) ||
			(c.Publish != nil) != (back.Publish != nil) {
			t.Fatalf("call %+v came back as %+v", c, back)
		}
		if c.Gather != nil && !proto.Equal(c.Gather, back.Gather) {
			t.Fatalf("gather %v came back as %v", c.Gather, back.Gather)
		}
		if c.Publish != nil && (!reflect.DeepEqual(back.Publish.Msgs, c.Publish.Msgs) || back.Publish.Budget != 5) {
			t.Fatalf("publish came back as %+v", back.Publish)
		}
	}
	resp, err := newWireFrameResponse(f, []*pb.StateChange{{Key: "k", Value: []byte("v")}})
	if err != nil {
		t.Fatal(err)
	}
	var back wireReply
	if err := back.UnmarshalWire(marshalWire(t, &wireReply{ID: 9, Frame: resp})); err != nil {
		t.Fatal(err)
	}
	want, _ := proto.Marshal(frameToPB(f))
	var p pb.Frame
	_ = proto.Unmarshal(want, &p)
	if back.ID != 9 || !reflect.DeepEqual(back.Frame.F, frameFromPB(&p)) || len(back.Frame.State) != 1 || back.err() != nil {
		t.Fatalf("frame reply came back as %+v", back)
	}
	failed := replyFor(10, nil, nil, partialToStatus(PartialError{Confirmed: 2, Err: ErrNotMine}, 5))
	if err := back.UnmarshalWire(marshalWire(t, failed)); err != nil {
		t.Fatal(err)
	}
	if err := partialFromStatus(back.err(), 5); ConfirmedOf(err, 5) != 2 || !errors.Is(err, ErrNotMine) {
		t.Fatalf("error reply came back as %v (confirmed %d)", err, ConfirmedOf(err, 5))
	}
}
