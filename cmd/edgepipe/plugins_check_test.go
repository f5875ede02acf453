package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// `check` starts an external plugin and learns in the Init handshake which
// roles it serves: a processor under [[inputs.external]] is an error with
// the table's FILE:LINE, not a gateway that fails every poll.
func TestCheckRefusesAPluginBinaryOfTheWrongKind(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, fmt.Sprintf(`[agent]
device_id = "GW-1"
data_dir = %q

[[inputs.external]]
command = %q
args = ["__plugin", "processors.deadband"]
`, t.TempDir(), self))
	code, stdout, stderr := run(t, "check", "--config", path)
	want := path + ":5: inputs.external#1: " + self + " serves processors, not inputs: configure it as [[processors.external]]"
	if code != 1 || stdout != "" || !strings.Contains(stderr, want) {
		t.Fatalf("exit %d\nstdout %q\nstderr %q\nwant %q", code, stdout, stderr, want)
	}
}
