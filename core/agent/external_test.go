package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/core/config"
)

// buildExample builds the third-party example plugin from its own module.
func buildExample(t *testing.T) (path, sum string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a plugin binary")
	}
	bin := filepath.Join(t.TempDir(), "edgepipe-hostinfo")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join("..", "..", "examples", "hostinfo")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the example plugin: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return bin, hex.EncodeToString(h[:])
}

func externalConfig(t *testing.T, bin, sum string) *config.Config {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`[agent]
device_id = "GW-T"
data_dir = %q
[[inputs.external]]
command = %q
sha256 = %q
[[processors.external]]
command = %q
args = ["__plugin", "processors.testrender"]
`, t.TempDir(), bin, sum, self)
	cfg, err := config.Parse("ext.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestExternalPluginsRunFromTheirOwnExecutables(t *testing.T) {
	bin, sum := buildExample(t)
	a := New(externalConfig(t, bin, sum), Options{DryRun: true})
	if err := a.Open(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	msgs, err := a.Once(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var topics []string
	for _, m := range msgs {
		topics = append(topics, m.Topic)
	}
	if got := strings.Join(topics, " "); got != "host/load1 host/mem_available host/uptime" {
		t.Fatalf("topics from the example plugin: %q", got)
	}
	for _, p := range a.Stats().Plugins {
		if p.ID == DefaultTemplate+"#default" {
			continue // appended by the core, built in
		}
		if !p.Isolated || p.Pid == 0 {
			t.Errorf("%s not isolated: %+v", p.ID, p)
		}
	}
}

func TestExternalPluginWithWrongChecksumIsRefused(t *testing.T) {
	bin, _ := buildExample(t)
	wrong := strings.Repeat("ab", 32)
	a := New(externalConfig(t, bin, wrong), Options{DryRun: true})
	err := a.Open(context.Background(), true)
	if err == nil || !strings.Contains(err.Error(), "ext.toml:4: inputs.external#1: refusing to start") ||
		!strings.Contains(err.Error(), "sha256 does not match") {
		t.Fatalf("got %v", err)
	}
}
