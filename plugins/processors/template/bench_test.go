package template

import (
	"context"
	"fmt"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// benchFrame is 10 devices of 100 points with the mix of a real plant:
// mostly floats, some integers, booleans and strings. Points of a poll
// share its time, as an input's are.
func benchFrame() *sdk.Frame {
	f := &sdk.Frame{Batches: make([]sdk.Batch, 10)}
	for d := range f.Batches {
		b := &f.Batches[d]
		b.Device, b.TS = fmt.Sprintf("plc%d", d), 1732600000000
		for i := range 100 {
			v := sdk.Float(20 + float64(i)*0.37)
			switch i % 10 {
			case 7:
				v = sdk.Int(int64(i * 1000))
			case 8:
				v = sdk.Bool(i%3 == 0)
			case 9:
				v = sdk.String("running")
			}
			b.Points = append(b.Points, sdk.Point{Name: fmt.Sprintf("point_%03d", i), Value: v, TS: b.TS})
		}
	}
	return f
}

// BenchmarkRender renders 1000 points per call; the frame's slices are
// put back before each call (Process clears them), which is included.
func BenchmarkRender(b *testing.B) {
	for _, c := range []struct{ name, conf string }{
		{"batch-default", ""},
		{"batch-values", "[data]\npayload = '{\"ts\":\"${ts}\",\"d\":\"${device}\",\"v\":\"${values}\"}'"},
		{"batch-aliases-units", "aliases = { \"plc1.point_001\" = \"a\" }\n[data]\npoint = '{\"n\":\"${name}\",\"v\":\"${value}\",\"u\":\"${unit}\",\"t\":\"${name} in ${unit}\"}'"},
		{"point-mode", "[data]\nmode = \"point\"\ntopic = \"${prefix}${device_id}/${device}/${name}\""},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := New()
			req := &sdk.InitRequest{Config: []byte(c.conf), Agent: sdk.AgentInfo{DeviceID: "GW-0001", TopicPrefix: "Topic/flexem/fbox/"}}
			for d := range 10 {
				for i := range 100 {
					req.Points = append(req.Points, sdk.PointSchema{Device: fmt.Sprintf("plc%d", d), Name: fmt.Sprintf("point_%03d", i), Unit: "degC"})
				}
			}
			if _, err := p.Init(context.Background(), req); err != nil {
				b.Fatal(err)
			}
			src := benchFrame()
			f := &sdk.Frame{Messages: make([]sdk.Message, 0, 1000)}
			bytes := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f.Batches, f.Messages = src.Batches, f.Messages[:0]
				out, _ := p.Process(context.Background(), f)
				for _, m := range out.Messages {
					bytes += len(m.Payload)
				}
			}
			b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "points/s")
			b.ReportMetric(float64(bytes)/float64(b.N)/1000, "bytes/point")
		})
	}
}
