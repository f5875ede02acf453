package discard

import (
	"context"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

func TestCountsWhatItDropsBothWays(t *testing.T) {
	sdktest.Run(t, func() sdk.Plugin { return &Discard{} }, func(t *testing.T, p sdk.Plugin) {
		sdktest.Init(t, p, "")
		if err := p.(sdk.Output).Publish(context.Background(), make([]sdk.Message, 3)); err != nil {
			t.Fatal(err)
		}
		h, err := p.(sdk.HealthReporter).Health(context.Background())
		if err != nil || !h.OK || h.Counters["messages"] != 3 {
			t.Fatalf("health %+v %v", h, err)
		}
		if _, err := p.Init(context.Background(), sdktest.Request("colour = 1\n")); err == nil {
			t.Fatal("unknown key accepted")
		}
	})
}
