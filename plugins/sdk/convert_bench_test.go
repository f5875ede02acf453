package sdk

import (
	"slices"
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgepipe/edgepipe/plugins/sdk/pb"
)

func benchFrame(n int) *Frame {
	b := Batch{Device: "plc1", TS: 1732600000000, Points: make([]Point, n)}
	for i := range b.Points {
		b.Points[i] = Point{Name: "p" + strconv.Itoa(i), Value: Float(float64(i) * 1.5), TS: b.TS}
	}
	return &Frame{Batches: []Batch{b}}
}

// BenchmarkFrameWireRoundTrip is one process hop of a 1000-point batch:
// convert, marshal, unmarshal, convert back.
func BenchmarkFrameWireRoundTrip(b *testing.B) {
	f := benchFrame(1000)
	b.ReportAllocs()
	for b.Loop() {
		data, err := proto.Marshal(frameToPB(f))
		if err != nil {
			b.Fatal(err)
		}
		var p pb.Frame
		if err := proto.Unmarshal(data, &p); err != nil {
			b.Fatal(err)
		}
		_ = frameFromPB(&p)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/point")
}

// BenchmarkFrameWireDirect is the same hop with the hand-written encoding
// (framewire.go) that the transport uses.
func BenchmarkFrameWireDirect(b *testing.B) {
	f := benchFrame(1000)
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		w := newWireFrame(f)
		n, err := w.SizeWire()
		if err != nil {
			b.Fatal(err)
		}
		buf = w.AppendWire(slices.Grow(buf[:0], n))
		var back wireFrame
		if err := back.UnmarshalWire(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/point")
}
