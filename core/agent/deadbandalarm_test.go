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
// unchanged reading of the rule's point, so the alarm sees the value once.
// It is raised all the same, with the first frame after the delay (here,
// the next poll: p0 is not deadbanded), as with the alarm placed first.
// `check` still warns about the first order, because there the raise
// waits for a frame to reach the alarm (cmd/edgepipe
// TestCheckWarnsDeadbandBeforeDelayedAlarm).
func TestDeadbandBeforeDelayedAlarmRaisesIt(t *testing.T) {
	const delay = 300 * time.Millisecond
	deadband := "[[processors.deadband]]\npoints = [\"d.p1\"]\n"
	alarm := "[[processors.alarm]]\n[[processors.alarm.rules]]\nname = \"high\"\npoint = \"d.p1\"\ncondition = \"value > 0.5\"\ndelay = \"" + delay.String() + "\"\n"
	for _, tc := range []struct{ name, chain string }{
		{"deadband first", deadband + alarm},
		{"alarm first", alarm + deadband},
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
			// The first reading of p1 starts the wait; the alarm must come,
			// and not before the delay has passed since then.
			var first int64 // ms, the first data message's time
			deadline := time.After(20 * time.Second)
			for {
				select {
				case m := <-msgs:
					var d struct {
						TS    int64
						State string
						Rule  string
					}
					if err := json.Unmarshal(m.Payload, &d); err != nil {
						t.Fatalf("payload %s: %v", m.Payload, err)
					}
					switch {
					case strings.HasSuffix(m.Topic, "/data"):
						if first == 0 {
							first = d.TS
						}
					case strings.HasSuffix(m.Topic, "/alarm"):
						if d.State != "raised" || d.Rule != "high" {
							t.Fatalf("alarm message %s", m.Payload)
						}
						if first == 0 || d.TS-first < delay.Milliseconds() {
							t.Fatalf("raised at %d, before the delay after the first reading at %d: %s", d.TS, first, m.Payload)
						}
						return
					}
				case <-deadline:
					t.Fatal("no alarm raised within 20s")
				}
			}
		})
	}
}
