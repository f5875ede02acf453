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

// A secret written literally into the file is never quoted by `check`: not
// a tls_key that is neither PEM nor a file (the plugin says it cannot read
// it), not a password of the wrong type, not a password the TOML parser
// choked on.
func TestCheckNeverQuotesALiteralSecret(t *testing.T) {
	path := writeConfig(t, fmt.Sprintf(`[agent]
device_id = "GW-1"
data_dir = %q

[[inputs.synthetic]]

[[outputs.mqtt]]
servers = ["tls://127.0.0.1:8883"]
tls_cert = "/nonexistent/cert.pem"
tls_key = "Lit3ral-Key-Material"

[[outputs.mqtt]]
servers = ["tcp://127.0.0.1:1883"]
username = "gw"
password = 90817263
`, t.TempDir()))
	code, stdout, stderr := run(t, "check", "--config", path)
	if code != 1 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{path + ":10: outputs.mqtt#1.tls_key: ", "<tls_key withheld>", path + ":15: outputs.mqtt#2.password: "} {
		if !strings.Contains(stderr, want) {
			t.Errorf("check's errors do not say %q:\n%s", want, stderr)
		}
	}
	for _, secret := range []string{"Lit3ral", "90817263"} {
		if strings.Contains(stdout+stderr, secret) {
			t.Errorf("check quotes the secret %s:\n%s%s", secret, stdout, stderr)
		}
	}

	// Unquoted, the password is a TOML syntax error, and the parser quotes
	// what it could not read.
	path = writeConfig(t, "[agent]\ndevice_id = \"GW-1\"\n[[inputs.synthetic]]\n[[outputs.mqtt]]\npassword = Hunt3r2pw\n")
	code, stdout, stderr = run(t, "check", "--config", path)
	if code != 1 || strings.Contains(stdout+stderr, "Hunt3r") || !strings.Contains(stderr, path+":5: TOML syntax error in the value of password") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
}
