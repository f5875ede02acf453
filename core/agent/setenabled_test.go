package agent

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/edgepipe/edgepipe/core/config"
)

func twoGates(t *testing.T, dir string, note int) *config.Config {
	doc := fmt.Sprintf(`[agent]
device_id = "GW-E"
data_dir = %q
[[inputs.synthetic]]
points = 1
interval = "10ms"
[[processors.testrender]]
[[outputs.testgate]]
alias = "kept"
buffer = "memory"
[[outputs.testgate]]
alias = "swapped"
buffer = "memory"
note = "%d"
`, dir, note)
	cfg, err := config.Parse("gates.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// SetEnabled and Outputs are called from outside the pipeline (the local
// API) at any time, also while a reload replaces outputs; -race checks
// that they take what they need themselves.
func TestSetEnabledFromOutsideDuringReloads(t *testing.T) {
	dir := t.TempDir()
	a := New(twoGates(t, dir, 0), Options{})
	if err := a.Open(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	a.Start()
	defer func() {
		// The gates are shut: nothing to wait for in the queues.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		a.Stop(ctx)
	}()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	calls := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for on := false; ; on = !on {
			select {
			case <-stop:
				return
			default:
			}
			for _, id := range []string{"kept", "swapped"} {
				if err := a.SetEnabled(id, on); err != nil {
					t.Errorf("SetEnabled(%s): %v", id, err)
					return
				}
			}
			if n := len(a.Outputs(context.Background())); n != 2 {
				t.Errorf("Outputs listed %d outputs, want 2", n)
				return
			}
			calls++
		}
	}()
	for i := 1; i <= 10; i++ {
		if err := a.Reload(context.Background(), twoGates(t, dir, i)); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if calls == 0 {
		t.Fatal("no call ran beside the reloads")
	}

	// A paused output whose table did not change stays paused across a
	// reload; one whose table changed takes the configured enabled.
	if err := a.SetEnabled("kept", false); err != nil {
		t.Fatal(err)
	}
	if err := a.SetEnabled("swapped", false); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(context.Background(), twoGates(t, dir, 99)); err != nil {
		t.Fatal(err)
	}
	got := map[string]OutputState{}
	for _, o := range a.Outputs(context.Background()) {
		got[o.ID] = o
	}
	if k := got["kept"]; k.Enabled || k.Plugin != "outputs.testgate" {
		t.Fatalf("kept output after reload: %+v", k)
	}
	if s := got["swapped"]; !s.Enabled {
		t.Fatalf("changed output after reload: %+v", s)
	}
	if err := a.SetEnabled("nosuch", true); err == nil || !strings.Contains(err.Error(), `no output "nosuch"`) {
		t.Fatalf("unknown output: %v", err)
	}
}
