// Package discard is an output that accepts and forgets every message. It
// measures the pipeline without a broker in the way.
package discard

import (
	"context"
	_ "embed"
	"sync/atomic"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

//go:embed sample.conf
var sampleConf string

func init() {
	sdk.Register(sdk.Registration{Kind: sdk.KindOutput, Name: "discard",
		Description: "counts and drops every message (benchmarks, dry runs)", SampleConfig: sampleConf,
		Factory: func() sdk.Plugin { return &Discard{} }})
}

// Discard drops messages.
type Discard struct {
	messages atomic.Uint64
}

func (d *Discard) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	_, err := sdk.DecodeConfig(req, &struct{}{})
	return &sdk.InitResponse{}, err
}
func (d *Discard) Close(context.Context) error { return nil }
func (d *Discard) Publish(_ context.Context, msgs []sdk.Message) error {
	d.messages.Add(uint64(len(msgs)))
	return nil
}
func (d *Discard) Health(context.Context) (sdk.Health, error) {
	return sdk.Health{OK: true, Counters: map[string]uint64{"messages": d.messages.Load()}}, nil
}
