package sdk_test

import (
	"context"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// sink is an output that confirms every message at once and keeps none.
type sink struct{}

func (sink) Init(context.Context, *sdk.InitRequest) (*sdk.InitResponse, error) {
	return &sdk.InitResponse{}, nil
}
func (sink) Close(context.Context) error                  { return nil }
func (sink) Publish(context.Context, []sdk.Message) error { return nil }

// releasingSink is a sink that promises to keep nothing (sdk.FrameReleaser).
type releasingSink struct{ sink }

func (releasingSink) ReleaseFrame(*sdk.Frame) {}

// BenchmarkPublishOverConnection is one Publish of a 64 KB message (the
// isolated MQTT output's load in the bench) over the plugin connection,
// both ends in this process: "released" to an output that opts in to
// reuse (sdk.FrameReleaser), "fresh" to one that does not.
func BenchmarkPublishOverConnection(b *testing.B) {
	for _, c := range []struct {
		name string
		impl sdk.Plugin
	}{{"released", releasingSink{}}, {"fresh", sink{}}} {
		b.Run(c.name, func(b *testing.B) {
			cl := sdktest.Connect(b, c.impl)
			sdktest.Init(b, cl, "")
			msgs := [2][]sdk.Message{{{Topic: "t/data", Payload: make([]byte, 64<<10), QoS: 1}},
				{{Topic: "t/data", Payload: make([]byte, 64<<10), QoS: 1}}}
			msgs[1][0].Payload[0] = 1
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := cl.Publish(context.Background(), msgs[i%2]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
