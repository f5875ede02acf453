package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/core/config"
	_ "github.com/edgepipe/edgepipe/plugins/processors/alarm"
	_ "github.com/edgepipe/edgepipe/plugins/processors/deadband"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// A deadband placed before an alarm rule with a delay holds back every
// unchanged reading, so the alarm never sees the condition hold long
// enough: with a constant value above the threshold, no alarm is raised.
// The same chain with the alarm first raises it. `check` warns about the
// first order (cmd/edgepipe TestCheckWarnsDeadbandBeforeDelayedAlarm).
func TestDeadbandBeforeDelayedAlarmStopsIt(t *testing.T) {
	const delay = 300 * time.Millisecond
	deadband := "[[processors.deadband]]\npoints = [\"d.p1\"]\n"
	alarm := "[[processors.alarm]]\n[[processors.alarm.rules]]\nname = \"high\"\npoint = \"d.p1\"\ncondition = \"value > 0.5\"\ndelay = \"" + delay.String() + "\"\n"
	for _, tc := range []struct {
		name, chain string
		raised      bool
	}{
		{"deadband first", deadband + alarm, false},
		{"alarm first", alarm + deadband, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// p1 is constantly 1 (above 0.5); p0 is not deadbanded, so every
			// poll renders a data message from the frame the alarm saw.
			doc := fmt.Sprintf("[agent]\ndevice_id = \"GW-T\"\ndata_dir = %q\n[[inputs.synthetic]]\ndevice = \"d\"\npoints = 2\npattern = \"constant\"\ninterval = \"20ms\"\n%s", t.TempDir(), tc.chain)
			cfg, err := config.Parse("test.toml", []byte(doc), os.LookupEnv)
			if err != nil {
				t.Fatal(err)
			}
			msgs := make(chan sdk.Message, 1024)
			a := New(cfg, Options{DryRun: true, OnMessage: func(m sdk.Message) {
				select {
				case msgs <- m:
				default:
				}
			}})
			if err := a.Open(context.Background(), false); err != nil {
				t.Fatal(err)
			}
			a.Start()
			defer a.Stop(context.Background())
			// Watch the data messages' readings until they span four
			// delays past the first: the alarm, if it is to raise, has.
			var first int64
			raised := false
			deadline := time.After(20 * time.Second)
			for !raised {
				select {
				case m := <-msgs:
					switch {
					case strings.HasSuffix(m.Topic, "/alarm"):
						raised = raised || strings.Contains(string(m.Payload), `"raised"`)
					case strings.HasSuffix(m.Topic, "/data"):
						var d struct{ TS int64 }
						if json.Unmarshal(m.Payload, &d) != nil {
							t.Fatalf("data payload %s", m.Payload)
						}
						if first == 0 {
							first = d.TS
						}
						if d.TS-first < 4*delay.Milliseconds() {
							continue
						}
						if raised != tc.raised {
							t.Fatalf("no alarm raised after readings over %s (delay %s)", 4*delay, delay)
						}
						return
					}
				case <-deadline:
					t.Fatal("no data message spanning four delays within 20s")
				}
			}
			if !tc.raised {
				t.Fatal("alarm raised although the deadband holds its readings back: the chain changed; update the check warning")
			}
		})
	}
}
