package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// gate is an output that refuses to publish while closed, like a broker
// that is down, and records what it delivered.
type gate struct{}

var (
	gateOpen      atomic.Bool
	gateMu        sync.Mutex
	gateDelivered []string
)

func (gate) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	_, err := sdk.DecodeConfig(req, &struct {
		Note string `toml:"note"`
	}{})
	return &sdk.InitResponse{}, err
}
func (gate) Close(context.Context) error { return nil }
func (gate) Publish(_ context.Context, msgs []sdk.Message) error {
	if !gateOpen.Load() {
		return errors.New("broker down")
	}
	gateMu.Lock()
	defer gateMu.Unlock()
	for _, m := range msgs {
		gateDelivered = append(gateDelivered, m.Topic+"="+string(m.Payload))
	}
	return nil
}

func init() {
	sdk.Register(sdk.Registration{Kind: sdk.KindOutput, Name: "testgate", Factory: func() sdk.Plugin { return gate{} }})
}

func reloadConfig(t *testing.T, dir string, points int, extra string) *config.Config {
	doc := fmt.Sprintf(`[agent]
device_id = "GW-T"
data_dir = %q
[[inputs.synthetic]]
device = "d"
points = %d
pattern = "counter"
interval = "10ms"
[[processors.testrender]]
[[outputs.testgate]]
buffer = "memory"
%s`, dir, points, extra)
	cfg, err := config.Parse("reload.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReloadKeepsQueuedMessagesAndRefusesBrokenConfigs(t *testing.T) {
	gateOpen.Store(false)
	gateMu.Lock()
	gateDelivered = nil // from an earlier run (-count) or test
	gateMu.Unlock()
	dir := t.TempDir()
	a := New(reloadConfig(t, dir, 1, ""), Options{})
	if err := a.Open(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	a.Start()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		a.Stop(ctx)
	}()
	depth := func() int { return a.Stats().Plugins[len(a.Stats().Plugins)-1].Queue.Depth }
	waitFor(t, "messages to queue up for the dead output", func() bool { return depth() >= 20 })

	// A broken configuration is refused and the old one keeps running.
	broken := reloadConfig(t, dir, 1, "")
	broken.Inputs[0].SetText([]byte(strings.Replace(string(broken.Inputs[0].Text()), `pattern = "counter"`, `pattern = "zigzag"`, 1)))
	if err := a.Reload(context.Background(), broken); err == nil || !strings.Contains(err.Error(), "zigzag") {
		t.Fatalf("broken config: %v", err)
	}
	before := depth()
	waitFor(t, "polling to go on after the refused reload", func() bool { return depth() > before })

	// A good configuration with a changed input: the output did not change,
	// so it is not re-initialised, and its queue is intact.
	out := a.outputs[0].in
	queued := depth()
	if err := a.Reload(context.Background(), reloadConfig(t, dir, 2, "")); err != nil {
		t.Fatal(err)
	}
	if d := depth(); d < queued {
		t.Fatalf("queue lost messages in the reload: %d before, %d after", queued, d)
	}
	if a.outputs[0].in != out {
		t.Fatal("an unchanged output was re-opened")
	}
	waitFor(t, "the new input's second point", func() bool {
		f, _ := a.inputs[0].impl.(sdk.Input).Gather(context.Background())
		return f.NumPoints() == 2
	})
	// A changed output keeps its queue too.
	if err := a.Reload(context.Background(), reloadConfig(t, dir, 2, "note = \"changed\"\n")); err != nil {
		t.Fatal(err)
	}
	if a.outputs[0].in == out {
		t.Fatal("the changed output was not re-opened")
	}
	gateOpen.Store(true)
	waitFor(t, "the queue to drain", func() bool { return depth() == 0 })
	gateMu.Lock()
	got := append([]string(nil), gateDelivered...)
	gateMu.Unlock()
	// The counter of d.p0 goes 1, 2, 3, ... across the first run; every one
	// of the first `queued` polls must have been delivered, in order.
	var p0 []string
	for _, m := range got {
		if v, ok := strings.CutPrefix(m, "d/p0="); ok {
			p0 = append(p0, v)
		}
	}
	for i := 0; i < queued && i < len(p0); i++ {
		if p0[i] != fmt.Sprint(i+1) {
			t.Fatalf("delivery %d of d.p0 is %s, want %d (lost or reordered): %v", i, p0[i], i+1, p0[:min(len(p0), i+5)])
		}
	}
	if len(p0) < queued {
		t.Fatalf("delivered %d, queued %d", len(p0), queued)
	}
}
