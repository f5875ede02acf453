package console

import (
	"context"
	"net"

	"github.com/edgepipe/edgepipe/core/agent"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// fakeAgent answers the fuzz target without a pipeline.
type fakeAgent struct{}

func (fakeAgent) Health(context.Context) agent.Health { return agent.Health{OK: true} }
func (fakeAgent) Stats() agent.Stats                  { return agent.Stats{} }
func (fakeAgent) Points() []sdk.PointSchema {
	return []sdk.PointSchema{{Device: "rw", Name: "p1", Access: sdk.AccessPubSub}}
}
func (fakeAgent) Devices() []agent.Device { return nil }
func (fakeAgent) ExecuteLocal(c sdk.Command) sdk.Result {
	if c.Err != "" {
		return sdk.Result{Error: c.Err}
	}
	return sdk.Result{Points: make([]sdk.PointResult, len(c.Points))}
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
