package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, doc := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadDirectoryAppendsEveryFileInNameOrder(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"main.toml":      "[agent]\ndevice_id = \"GW-1\"\n",
		"d/20-b.toml":    "[[inputs.cfgtest]]\ndevice = \"b\"\n",
		"d/10-a.toml":    "[[inputs.cfgtest]]\ndevice = \"a\"\n[[processors.cfgtest]]\nalias = \"out\"\n",
		"d/notes.txt":    "[[inputs.cfgtest]]\n",
		"d/sub/x.toml":   "[[inputs.cfgtest]]\n",
		"d/30-proc.toml": "",
		"unused/zz.toml": "[[inputs.cfgtest]]\n",
	})
	cfg, err := LoadDirectory(filepath.Join(dir, "main.toml"), filepath.Join(dir, "d"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Agent.DeviceID != "GW-1" || len(cfg.Inputs) != 2 || len(cfg.Processors) != 1 {
		t.Fatalf("agent %+v, %d inputs, %d processors", cfg.Agent, len(cfg.Inputs), len(cfg.Processors))
	}
	if cfg.Inputs[0].ID != "inputs.cfgtest#1" || cfg.Inputs[1].ID != "inputs.cfgtest#2" ||
		!strings.HasSuffix(cfg.Inputs[1].File, "20-b.toml") || cfg.Inputs[1].Line != 1 {
		t.Fatalf("inputs %+v %+v", cfg.Inputs[0], cfg.Inputs[1])
	}
}

func TestLoadDirectoryReportsEveryFilesErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"main.toml": "[agent]\ndevice_id = \"GW-1\"\nlog_level = \"loud\"\n[[inputs.cfgtest]]\nalias = \"a\"\n",
		"d/1.toml":  "\n[agent]\ndevice_id = \"X\"\n",
		"d/2.toml":  "[[inputs.cfgtest]]\nalias = \"a\"\n",
		"d/3.toml":  "[[inputs.nosuch]]\n",
	})
	_, err := LoadDirectory(filepath.Join(dir, "main.toml"), filepath.Join(dir, "d"))
	var got []string
	for _, e := range sdk.AsConfigErrors(err) {
		got = append(got, strings.TrimPrefix(e.Error(), dir+"/"))
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		"main.toml:3: agent.log_level",
		"d/1.toml:2: [agent] belongs in the --config file",
		`d/2.toml:1: alias "a" is already used at ` + dir + "/main.toml:4",
		"d/3.toml:1: unknown plugin inputs.nosuch",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in:\n%s", want, all)
		}
	}
}

func TestLoadDirectoryNeedsInputsSomewhere(t *testing.T) {
	dir := writeFiles(t, map[string]string{"main.toml": "[agent]\ndevice_id = \"GW-1\"\n", "d/o.toml": "[[processors.cfgtest]]\n"})
	if _, err := LoadDirectory(filepath.Join(dir, "main.toml"), filepath.Join(dir, "d")); err == nil || !strings.Contains(err.Error(), "no inputs") {
		t.Fatalf("err %v", err)
	}
	if _, err := LoadDirectory(filepath.Join(dir, "main.toml"), filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing directory is not an error")
	}
}
