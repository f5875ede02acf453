package sdk_test

import (
	"context"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// An isolated plugin's points keep their Status through a real gRPC
// connection, both ways.
func TestStatusThroughAPluginProcess(t *testing.T) {
	c := sdktest.Connect(t, &echo{})
	sdktest.Init(t, c, "")
	f := &sdk.Frame{Batches: []sdk.Batch{{Device: "d", TS: 5, Points: []sdk.Point{
		{Name: "ok", Value: sdk.Int(1), TS: 5},
		{Name: "gone", Quality: sdk.QualityBad, TS: 5, Status: "BadNodeIdUnknown"},
		{Name: "odd", Quality: sdk.QualityBad, TS: 5, Status: "structure s=\xff"}, // a device's bytes
	}}}}
	out, err := c.Process(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	p := out.Batches[0].Points
	if len(p) != 3 || p[0].Status != "" || p[1].Status != "BadNodeIdUnknown" || p[1].Quality != sdk.QualityBad || p[2].Status != "structure s=\xff" {
		t.Fatalf("got %+v", p)
	}
}
