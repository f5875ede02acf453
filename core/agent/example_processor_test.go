package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/core/config"
)

// buildSmooth builds the third-party example processor from its own module.
func buildSmooth(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a plugin binary")
	}
	bin := filepath.Join(t.TempDir(), "edgepipe-smooth")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join("..", "..", "examples", "smooth")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the example processor: %v\n%s", err, out)
	}
	return bin
}

func smoothConfig(t *testing.T, kind, bin string) *config.Config {
	t.Helper()
	doc := fmt.Sprintf(`[agent]
device_id = "GW-T"
data_dir = %q
[[inputs.synthetic]]
device = "d"
points = 2
pattern = "counter"
[[%s.external]]
command = %q
[%s.external.config]
points = ["d.p1"]
alpha = 0.5
`, t.TempDir(), kind, bin, kind)
	cfg, err := config.Parse("smooth.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The example processor runs in the pipeline from its own executable, and
// wired as an input it is refused at open (what `check` runs) with its line.
func TestExampleProcessorRunsFromItsOwnExecutable(t *testing.T) {
	bin := buildSmooth(t)
	a := New(smoothConfig(t, "processors", bin), Options{DryRun: true})
	if err := a.Open(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	msgs, err := a.Once(context.Background(), 0)
	if err != nil || len(msgs) == 0 {
		t.Fatalf("once: %d messages, %v", len(msgs), err)
	}
	var isolated bool
	for _, p := range a.Stats().Plugins {
		if p.ID == "processors.external#1" {
			isolated = p.Isolated && p.Pid != 0
		}
	}
	if !isolated {
		t.Fatalf("the example processor is not running in its own process: %+v", a.Stats().Plugins)
	}

	b := New(smoothConfig(t, "inputs", bin), Options{DryRun: true})
	err = b.Open(context.Background(), true)
	if err == nil {
		b.Close(context.Background())
		t.Fatal("the processor was accepted as an input")
	}
	if want := "smooth.toml:8: inputs.external#1: " + bin + " serves processors, not inputs"; !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
}
