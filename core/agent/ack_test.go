package agent

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// acker acknowledges the rule "boiler" only, like an alarm processor with
// one raised alarm.
type acker struct{ scale }

func (acker) HandleCommand(_ context.Context, c sdk.Command) (*sdk.Frame, error) {
	if c.Kind != sdk.CommandAck {
		return nil, fmt.Errorf("not an ack: %v", c.Kind)
	}
	if c.Rule != "boiler" {
		return nil, fmt.Errorf("alarm %s is not raised: %w", c.Rule, sdk.ErrNotMine)
	}
	return &sdk.Frame{Alarms: []sdk.Alarm{{Rule: "boiler", State: "acked"}}}, nil
}

// alarmRender renders alarms as messages, after the acker in the chain.
type alarmRender struct{ scale }

func (alarmRender) Process(_ context.Context, f *sdk.Frame) (*sdk.Frame, error) {
	for _, al := range f.Alarms {
		f.Messages = append(f.Messages, sdk.Message{Topic: "alarm/" + al.Rule, Payload: []byte(al.State)})
	}
	f.Alarms = nil
	return f, nil
}

func init() {
	sdk.Register(sdk.Registration{Kind: sdk.KindProcessor, Name: "testacker", Factory: func() sdk.Plugin { return acker{} }})
	sdk.Register(sdk.Registration{Kind: sdk.KindProcessor, Name: "testalarmrender", Factory: func() sdk.Plugin { return alarmRender{} }})
}

func TestAcknowledgementsReachTheProcessorAndItsEventTheOutputs(t *testing.T) {
	for _, iso := range []bool{false, true} {
		t.Run(fmt.Sprint("isolated=", iso), func(t *testing.T) {
			doc := fmt.Sprintf(`[agent]
device_id = "GW-T"
data_dir = %q
[[inputs.synthetic]]
points = 1
interval = "1h"
[[processors.testacker]]
[[processors.testacker]]
[[processors.testalarmrender]]
[[outputs.testgate]]
buffer = "memory"
`, t.TempDir())
			cfg, err := config.Parse("ack.toml", []byte(doc), os.LookupEnv)
			if err != nil {
				t.Fatal(err)
			}
			a := New(cfg, Options{Isolation: func(p *config.Plugin) bool { return iso && p.Kind == sdk.KindProcessor }})
			if err := a.Open(context.Background(), true); err != nil {
				t.Fatal(err)
			}
			defer a.Close(context.Background())
			if err := a.handleByProcessors(sdk.Command{Kind: sdk.CommandAck, ID: "a-1", Rule: "pump"}); err == nil || !strings.Contains(err.Error(), "pump is not raised") {
				t.Fatalf("ack of an alarm that is not raised: %v", err)
			}
			if err := a.handleByProcessors(sdk.Command{Kind: sdk.CommandAck, ID: "a-2", Rule: "boiler"}); err != nil {
				t.Fatal(err)
			}
			// Both ackers own "boiler" here, so two events; a rule neither
			// knows was refused above with the last "not mine" message.
			msgs, _ := a.outputs[0].q.Peek(10)
			if len(msgs) != 2 || msgs[0].Topic != "alarm/boiler" || string(msgs[0].Payload) != "acked" {
				t.Fatalf("queued after the ack: %+v", msgs)
			}
		})
	}
}
