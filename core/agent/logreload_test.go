package agent

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/edgepipe/edgepipe/core/config"
)

// logConfig is reloadConfig's pipeline with one more [agent] line.
func logConfig(t *testing.T, dir, agentLine string) *config.Config {
	t.Helper()
	doc := fmt.Sprintf("[agent]\ndevice_id = \"GW-T\"\ndata_dir = %q\n%s\n[[inputs.synthetic]]\ndevice = \"d\"\npoints = 1\ninterval = \"10ms\"\n"+
		"[[processors.testrender]]\n[[outputs.testgate]]\nbuffer = \"memory\"\n", dir, agentLine)
	cfg, err := config.Parse("reload.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Changing how the gateway logs (or where it serves /metrics, which is
// not the pipeline's business) must not restart plugins: an output that
// reconnects flaps the server's online status for nothing.
func TestReloadOfLogSettingsKeepsEveryPlugin(t *testing.T) {
	gateOpen.Store(true)
	t.Cleanup(func() { // the gate's record is shared with the reload tests
		gateMu.Lock()
		gateDelivered = nil
		gateMu.Unlock()
	})
	dir := t.TempDir()
	a := New(logConfig(t, dir, ""), Options{})
	ctx := context.Background()
	if err := a.Open(ctx, true); err != nil {
		t.Fatal(err)
	}
	a.Start()
	defer a.Stop(ctx)
	in, proc, out := a.inputs[0], a.processors[0], a.outputs[0].in
	for _, change := range []string{`log_level = "debug"`, `log_level = "error"`, `http_listen = "127.0.0.1:0"`} {
		if err := a.Reload(ctx, logConfig(t, dir, change)); err != nil {
			t.Fatalf("%s: %v", change, err)
		}
		if a.inputs[0] != in || a.processors[0] != proc || a.outputs[0].in != out {
			t.Fatalf("reload with %s restarted plugins", change)
		}
	}
	// A setting plugins see still restarts them.
	if err := a.Reload(ctx, logConfig(t, dir, `topic_prefix = "other/"`)); err != nil {
		t.Fatal(err)
	}
	if a.outputs[0].in == out {
		t.Fatal("a new topic prefix did not reach the output")
	}
}
