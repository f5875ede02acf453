package synthetic

import (
	"context"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

func TestGatherAndWriteBothWays(t *testing.T) {
	sdktest.Run(t, func() sdk.Plugin { return &Synthetic{} }, func(t *testing.T, p sdk.Plugin) {
		resp := sdktest.Init(t, p, "device = \"d\"\npoints = 3\npattern = \"counter\"\ntype = \"int\"\naccess = \"pubsub\"\ninterval = \"250ms\"\n")
		if len(resp.Points) != 3 || resp.Interval.Milliseconds() != 250 || resp.Points[2].FullName() != "d.p2" {
			t.Fatalf("schema %+v interval %v", resp.Points, resp.Interval)
		}
		f, err := p.(sdk.Input).Gather(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Batches[0].Points[2].Value; !got.Equal(sdk.Int(3)) {
			t.Fatalf("counter on first poll for p2 = %#v, want 3", got)
		}
		res, err := p.(sdk.Writer).Write(context.Background(), []sdk.WriteRequest{
			{Device: "d", Name: "p1", Value: sdk.Int(99)}, {Device: "d", Name: "p0", Value: sdk.Float(1)}})
		if err != nil || res[0].Error != "" || res[1].Error == "" {
			t.Fatalf("write results %+v %v", res, err)
		}
		f, _ = p.(sdk.Input).Gather(context.Background())
		if got := f.Batches[0].Points[1].Value; !got.Equal(sdk.Int(99)) {
			t.Fatalf("written value not kept: %#v", got)
		}
	})
}

func TestBadConfig(t *testing.T) {
	_, err := (&Synthetic{}).Init(context.Background(), sdktest.Request("points = -1\npattern = \"zigzag\"\n"))
	if ces := sdk.AsConfigErrors(err); len(ces) != 2 || ces[0].Line != 1 || ces[1].Line != 2 {
		t.Fatalf("got %v", err)
	}
}
