package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/core/config"
	_ "github.com/edgepipe/edgepipe/plugins/processors/deadband"
	_ "github.com/edgepipe/edgepipe/plugins/processors/template"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// qualityMix is an input whose every poll has one good reading that never
// changes, one failed read and one uncertain reading.
type qualityMix struct{}

func (qualityMix) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	if _, err := sdk.DecodeConfig(req, &struct{}{}); err != nil {
		return nil, err
	}
	return &sdk.InitResponse{Interval: 20 * time.Millisecond, Points: []sdk.PointSchema{
		{Device: "q", Name: "steady", Kind: sdk.KindInt, Access: sdk.AccessPub},
		{Device: "q", Name: "broken", Kind: sdk.KindInt, Access: sdk.AccessPub},
		{Device: "q", Name: "unsure", Kind: sdk.KindInt, Access: sdk.AccessPub},
	}}, nil
}
func (qualityMix) Close(context.Context) error { return nil }
func (qualityMix) Gather(context.Context) (*sdk.Frame, error) {
	return &sdk.Frame{Batches: []sdk.Batch{{Device: "q", Points: []sdk.Point{
		{Name: "steady", Value: sdk.Int(7)},
		{Name: "broken", Quality: sdk.QualityBad},
		{Name: "unsure", Value: sdk.Int(3), Quality: sdk.QualityUncertain},
	}}}}, nil
}

func init() {
	sdk.Register(sdk.Registration{Kind: sdk.KindInput, Name: "testquality", Factory: func() sdk.Plugin { return qualityMix{} }})
}

// TestPointCountsFollowThePoints: points_reported counts the points that
// went out in messages (it counted what was left in the frame after the
// template had emptied it: always 0), a deadband's held-back readings are
// counted against it, and failed reads against their input, in process
// and with every plugin in its own process.
func TestPointCountsFollowThePoints(t *testing.T) {
	for _, isolated := range []bool{false, true} {
		t.Run(fmt.Sprintf("isolated=%v", isolated), func(t *testing.T) {
			doc := fmt.Sprintf(`[agent]
device_id = "GW-T"
data_dir = %q
[[inputs.testquality]]
alias = "mix"
[[processors.deadband]]
alias = "db"
points = ["q.steady"]
`, t.TempDir())
			cfg, err := config.Parse("test.toml", []byte(doc), os.LookupEnv)
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			inMessages, messages := 0, 0
			a := New(cfg, Options{DryRun: true, Isolation: func(*config.Plugin) bool { return isolated },
				OnMessage: func(m sdk.Message) {
					if !strings.HasSuffix(m.Topic, "/data") {
						return
					}
					var d struct{ Points []json.RawMessage }
					if err := json.Unmarshal(m.Payload, &d); err != nil {
						t.Errorf("data payload %s: %v", m.Payload, err)
					}
					mu.Lock()
					inMessages += len(d.Points)
					messages++
					mu.Unlock()
				}})
			if err := a.Open(context.Background(), false); err != nil {
				t.Fatal(err)
			}
			a.Start()
			waitFor(t, "20 data messages", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return messages >= 20
			})
			// Stop the pipeline (every frame read is processed) but keep
			// the plugins, whose counters Stats reads.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			a.pause(ctx)
			cancel()
			defer a.Close(context.Background())

			st := a.Stats()
			mu.Lock()
			defer mu.Unlock()
			if st.Reported == 0 || st.Reported != uint64(inMessages) {
				t.Errorf("points reported %d, points in the messages %d", st.Reported, inMessages)
			}
			var mix, db *PluginStats
			for i := range st.Plugins {
				switch st.Plugins[i].ID {
				case "mix":
					mix = &st.Plugins[i]
				case "db":
					db = &st.Plugins[i]
				}
			}
			polls := mix.Gathered / 3
			if mix.Gathered != 3*polls || mix.BadQuality != polls {
				t.Errorf("input: %d points gathered, %d bad, want a third bad", mix.Gathered, mix.BadQuality)
			}
			// The steady reading is reported once and held back after.
			if db.HeldBack != polls-1 {
				t.Errorf("deadband held back %d readings over %d polls, want %d", db.HeldBack, polls, polls-1)
			}
			if st.Reported+db.HeldBack != st.Gathered {
				t.Errorf("gathered %d = reported %d + held back %d does not hold", st.Gathered, st.Reported, db.HeldBack)
			}
		})
	}
}
