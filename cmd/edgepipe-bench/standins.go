package main

import (
	"context"
	"strconv"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Stand-ins for deadband and template, used until those are built in:
// benchscale does a little arithmetic per point, benchrender renders one
// compact JSON message per batch.

type benchScale struct{}

func (benchScale) Init(context.Context, *sdk.InitRequest) (*sdk.InitResponse, error) {
	return &sdk.InitResponse{}, nil
}
func (benchScale) Close(context.Context) error { return nil }
func (benchScale) Process(_ context.Context, f *sdk.Frame) (*sdk.Frame, error) {
	for i := range f.Batches {
		for j := range f.Batches[i].Points {
			p := &f.Batches[i].Points[j]
			if x, ok := p.Value.AsFloat(); ok {
				p.Value = sdk.Float(x*0.1 + 1)
			}
		}
	}
	return f, nil
}

type benchRender struct{ buf []byte }

func (*benchRender) Init(context.Context, *sdk.InitRequest) (*sdk.InitResponse, error) {
	return &sdk.InitResponse{}, nil
}
func (*benchRender) Close(context.Context) error { return nil }
func (r *benchRender) Process(_ context.Context, f *sdk.Frame) (*sdk.Frame, error) {
	for _, b := range f.Batches {
		r.buf = append(r.buf[:0], `{"ts":`...)
		r.buf = strconv.AppendInt(r.buf, b.TS, 10)
		r.buf = append(r.buf, `,"values":{`...)
		for i, p := range b.Points {
			if i > 0 {
				r.buf = append(r.buf, ',')
			}
			r.buf = sdk.AppendJSONString(r.buf, p.Name)
			r.buf = append(r.buf, ':')
			r.buf = p.Value.AppendJSON(r.buf)
		}
		r.buf = append(r.buf, "}}"...)
		f.Messages = append(f.Messages, sdk.Message{Topic: b.Device, Payload: append([]byte(nil), r.buf...), QoS: 1})
	}
	f.Batches = nil
	return f, nil
}

func init() {
	sdk.Register(sdk.Registration{Kind: sdk.KindProcessor, Name: "benchscale", Description: "benchmark stand-in",
		Factory: func() sdk.Plugin { return benchScale{} }})
	sdk.Register(sdk.Registration{Kind: sdk.KindProcessor, Name: "benchrender", Description: "benchmark stand-in",
		Factory: func() sdk.Plugin { return &benchRender{} }})
}
