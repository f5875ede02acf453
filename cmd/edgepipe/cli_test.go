package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestHelpForEveryCommandExitsZero(t *testing.T) {
	for _, name := range commandNames() {
		code, want, stderr := run(t, "help", name)
		if code != 0 || stderr != "" || !strings.HasPrefix(want, "Usage: edgepipe "+name) {
			t.Errorf("help %s: exit %d, stdout %q, stderr %q", name, code, want, stderr)
			continue
		}
		for _, flag := range []string{"--help", "-h"} {
			code, out, stderr := run(t, name, flag)
			if code != 0 || out != want || stderr != "" {
				t.Errorf("%s %s: exit %d, stdout %q, stderr %q", name, flag, code, out, stderr)
			}
		}
	}
	code, out, _ := run(t, "help", "run")
	for _, w := range []string{"--config", "--config-directory"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("help run does not list %s:\n%s", w, out)
		}
	}
	if code, out, _ := run(t, "help"); code != 0 || !strings.Contains(out, "completion") {
		t.Errorf("help: %d %q", code, out)
	}
}

func TestVersionFlag(t *testing.T) {
	code, out, _ := run(t, "--version")
	_, want, _ := run(t, "version")
	if code != 0 || out != want || !strings.HasPrefix(out, "edgepipe ") {
		t.Fatalf("--version: exit %d, %q (version: %q)", code, out, want)
	}
}

// Usage errors exit 2 with a message that names the command.
func TestUsageErrorsExitTwoNamingTheCommand(t *testing.T) {
	cfg := writeConfig(t, "[agent]\ndevice_id = \"GW-1\"\n[[inputs.synthetic]]\n")
	for _, tc := range []struct {
		args   []string
		prefix string
	}{
		{[]string{"run", "--bogus"}, "edgepipe run: flag provided but not defined: -bogus"},
		{[]string{"check", "--config", cfg, "--config-directory", "x"}, "edgepipe check: flag provided but not defined"},
		{[]string{"once", "--config", cfg, "stray"}, `edgepipe once: unexpected argument "stray"`},
		{[]string{"run", "--config", cfg, "stray"}, `edgepipe run: unexpected argument "stray"`},
		{[]string{"run"}, "edgepipe run: --config FILE is required"},
		{[]string{"demo", "stray"}, `edgepipe demo: unexpected argument "stray"`},
		{[]string{"demo", "--duration", "soon"}, "edgepipe demo: invalid value"},
		{[]string{"version", "stray"}, `edgepipe version: unexpected argument "stray"`},
		{[]string{"plugins", "--all"}, "edgepipe plugins: flag provided but not defined"},
		{[]string{"config", "--bogus"}, "edgepipe config: flag provided but not defined"},
		{[]string{"config", "inputs.nosuch"}, `edgepipe config: no built-in plugin "inputs.nosuch"`},
		{[]string{"completion", "fish"}, "edgepipe completion: want"},
		{[]string{"sim", "serial"}, "edgepipe sim: want"},
		{[]string{"help", "fly"}, `edgepipe help: unknown command "fly"`},
		{[]string{"help", "run", "stray"}, `edgepipe help: unexpected argument "stray"`},
		{[]string{"--bogus"}, `edgepipe: unknown flag "--bogus"`},
		{[]string{"fly"}, `edgepipe: unknown command "fly"`},
	} {
		code, stdout, stderr := run(t, tc.args...)
		if code != 2 || stdout != "" || !strings.HasPrefix(stderr, tc.prefix) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, stdout, stderr, tc.prefix)
		}
	}
}

func TestConfigDirectoryIsMergedAfterConfig(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "main.toml")
	if err := os.WriteFile(main, []byte("[agent]\ndevice_id = \"GW-1\"\n[[inputs.synthetic]]\ndevice = \"main\"\npoints = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := filepath.Join(dir, "conf.d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "extra.toml"), []byte("[[inputs.synthetic]]\ndevice = \"extra\"\npoints = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, "once", "--config", main, "--config-directory", d)
	if code != 0 || !strings.Contains(stdout, `"device":"main"`) || !strings.Contains(stdout, `"device":"extra"`) {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if err := os.WriteFile(filepath.Join(d, "bad.toml"), []byte("[[inputs.synthetic]]\ncolour = \"blue\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = run(t, "once", "--config", main, "--config-directory", d)
	if code != 1 || !strings.HasPrefix(stderr, "edgepipe once: "+filepath.Join(d, "bad.toml")+":2:") {
		t.Fatalf("an error in a directory file: exit %d\n%s", code, stderr)
	}
}

// A command that ran and failed exits 1, its errors prefixed with it.
func TestRunErrorsNameTheCommand(t *testing.T) {
	path := writeConfig(t, "[agent]\ndevice_id = \"GW-1\"\nlog_level = \"loud\"\n[[inputs.synthetic]]\n")
	code, _, stderr := run(t, "run", "--config", path)
	if code != 1 || !strings.HasPrefix(stderr, "edgepipe run: "+path+":3: agent.log_level") {
		t.Fatalf("exit %d: %q", code, stderr)
	}
}

// once fails when an input could not be read at all (every point bad);
// --partial keeps going with exit 0.
func TestOnceExitsNonZeroWhenAnInputCannotBeRead(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	path := writeConfig(t, `[agent]
device_id = "GW-1"
[[inputs.synthetic]]
device = "ok"
points = 1
[[inputs.modbus]]
url = "tcp://`+closed+`"
timeout = "500ms"
retries = 0
  [[inputs.modbus.devices]]
  name = "plc1"
  unit_id = 1
    [[inputs.modbus.devices.points]]
    name = "t"
    area = "holding"
    address = 0
    type = "uint16"
`)
	code, stdout, stderr := run(t, "once", "--config", path)
	if code != 1 || !strings.Contains(stderr, "edgepipe once: inputs.modbus#1: no point could be read") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, "once", "--config", path, "--partial")
	if code != 0 || !strings.Contains(stdout, `"device":"ok"`) || !strings.Contains(stdout, `"q":"bad"`) {
		t.Fatalf("--partial: exit %d\n%s%s", code, stdout, stderr)
	}
}

// The bash completion script loads in a real bash and completes commands,
// options and plugin names.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	code, script, _ := run(t, "completion", "bash")
	if code != 0 {
		t.Fatal("completion bash failed")
	}
	file := filepath.Join(t.TempDir(), "edgepipe.bash")
	if err := os.WriteFile(file, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ words, want string }{
		{"edgepipe ru", "run"},
		{"edgepipe run --config-d", "--config-directory"},
		{"edgepipe once --par", "--partial"},
		{"edgepipe config inputs.mo", "inputs.modbus"},
		{"edgepipe help chec", "check"},
	} {
		words := strings.Fields(tc.words)
		sh := "source " + file + "; COMP_WORDS=(" + tc.words + "); COMP_CWORD=" + string(rune('0'+len(words)-1)) + `; _edgepipe; echo "${COMPREPLY[*]}"`
		out, err := exec.Command(bash, "-c", sh).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != tc.want {
			t.Errorf("%q completes to %q (%v), want %q", tc.words, out, err, tc.want)
		}
	}
}
