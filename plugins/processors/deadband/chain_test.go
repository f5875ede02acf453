package deadband_test

import (
	"context"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/processors/deadband"
	_ "github.com/edgepipe/edgepipe/plugins/processors/template"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// TestChainWithTemplate runs deadband then the default template, both
// behind gRPC as isolated plugins would be, over three polls: the messages
// are what a server would see. (The test through the core's pipeline and
// the Modbus simulator belongs with the core.)
func TestChainWithTemplate(t *testing.T) {
	reg, ok := sdk.Lookup("processors.template")
	if !ok {
		t.Fatal("template not registered")
	}
	db := sdktest.Connect(t, deadband.New())
	tp := sdktest.Connect(t, reg.Factory())
	sdktest.Init(t, db, "points = [\"plc1.*\"]\nabsolute = 1.0")
	sdktest.Init(t, tp, "")
	poll := func(temp float64, state string) []string {
		f := &sdk.Frame{Batches: []sdk.Batch{{Device: "plc1", TS: 1000, Points: []sdk.Point{
			{Name: "temp", Value: sdk.Float(temp), TS: 1000},
			{Name: "state", Value: sdk.String(state), TS: 1000},
		}}}}
		var err error
		for _, p := range []sdk.Plugin{db, tp} {
			if f, err = p.(sdk.Processor).Process(context.Background(), f); err != nil {
				t.Fatal(err)
			}
		}
		var out []string
		for _, m := range f.Messages {
			out = append(out, m.Topic+" "+string(m.Payload))
		}
		return out
	}
	const topic = "Topic/flexem/fbox/GW-TEST/data "
	for i, c := range []struct {
		temp  float64
		state string
		want  []string
	}{
		{20, "run", []string{topic + `{"ts":1000,"device":"plc1","points":[{"name":"temp","value":20,"q":"good","ts":1000},{"name":"state","value":"run","q":"good","ts":1000}]}`}},
		{20.5, "run", nil},
		{21, "stop", []string{topic + `{"ts":1000,"device":"plc1","points":[{"name":"temp","value":21,"q":"good","ts":1000},{"name":"state","value":"stop","q":"good","ts":1000}]}`}},
	} {
		if got := poll(c.temp, c.state); strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("poll %d:\n got %q\nwant %q", i, got, c.want)
		}
	}
}
