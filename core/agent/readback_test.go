package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/internal/testbroker"
	_ "github.com/edgepipe/edgepipe/plugins/inputs/modbus"
	_ "github.com/edgepipe/edgepipe/plugins/processors/deadband"
	_ "github.com/edgepipe/edgepipe/plugins/processors/template"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/sim/modbussim"
)

// TestReadBackPassesDeadband: with a deadband of 10 in the chain, a write
// of 7 over a set point of 5 (a change the band hides) is read back and
// reported (SPEC 5), in the core's process and with the input and the
// deadband isolated (the read-back request and the batch's mark cross
// gRPC). The device's interval is long, so only the read-back can report it.
func TestReadBackPassesDeadband(t *testing.T) {
	for _, isolated := range []bool{false, true} {
		t.Run(fmt.Sprintf("isolated=%v", isolated), func(t *testing.T) {
			testReadBack(t, isolated)
		})
	}
}

func testReadBack(t *testing.T, isolated bool) {
	simCfg, err := modbussim.ParseConfig([]byte(`
[[units]]
id = 1
size = 16
[[units.registers]]
area = "holding"
address = 2
type = "uint16"
value = 5
`))
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	defer scancel()
	sim, err := modbussim.Start(sctx, "tcp://127.0.0.1:0", simCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	b := testbroker.StartMochi(t, testbroker.MochiOptions{})
	replies := b.Subscribe("Topic/flexem/fbox/GW-RB/data/write/reply")
	doc := fmt.Sprintf(`[agent]
device_id = "GW-RB"
data_dir = %q
[[inputs.modbus]]
url = %q
interval = "1h"
[[inputs.modbus.devices]]
name = "plc"
unit_id = 1
[[inputs.modbus.devices.points]]
name = "sp"
area = "holding"
address = 2
type = "uint16"
access = "pubsub"
[[processors.deadband]]
points = ["plc.*"]
absolute = 10.0
[[outputs.mqtt]]
servers = [%q]
buffer = "memory"
`, t.TempDir(), sim.Addr(), b.URL())
	cfg, err := config.Parse("rb.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var values []string
	a := New(cfg, Options{
		Isolation: func(p *config.Plugin) bool { return isolated && p.Kind != sdk.KindOutput },
		OnMessage: func(m sdk.Message) {
			var d struct {
				Points []struct {
					Name  string          `json:"name"`
					Value json.RawMessage `json:"value"`
				} `json:"points"`
			}
			if json.Unmarshal(m.Payload, &d) != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, p := range d.Points {
				if p.Name == "sp" {
					values = append(values, string(p.Value))
				}
			}
		},
	})
	if err := a.Open(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	a.Start()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Stop(ctx)
	}()
	reported := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), values...)
	}
	waitFor(t, "the first report of the set point", func() bool { return len(reported()) >= 1 })
	waitFor(t, "the command subscription", func() bool {
		return len(b.Server().Topics.Subscribers("Topic/flexem/fbox/GW-RB/data/write").Subscriptions) > 0
	})
	testbroker.PublishOnce(t, b.URL(), testbroker.ClientOptions{}, "Topic/flexem/fbox/GW-RB/data/write",
		[]byte(`{"id":"rb-1","points":{"plc.sp":7}}`), false)
	r := replies.Wait(t, 20*time.Second, "the write reply", func(r []testbroker.Received) bool { return len(r) >= 1 })
	var reply struct {
		Results map[string]struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(r[0].Payload, &reply); err != nil || !reply.Results["plc.sp"].OK {
		t.Fatalf("write reply %s: %v", r[0].Payload, err)
	}
	if regs, err := sim.Read(1, modbussim.Holding, 2, 1); err != nil || regs[0] != 7 {
		t.Fatalf("the device holds %v (%v), want 7", regs, err)
	}
	waitFor(t, "the read-back of 7 through the deadband", func() bool {
		v := reported()
		return len(v) >= 2 && v[len(v)-1] == "7"
	})
	if v := reported(); v[0] != "5" || len(v) != 2 {
		t.Errorf("set point reported %v, want [5 7]: the first poll and the read-back", v)
	}
}
