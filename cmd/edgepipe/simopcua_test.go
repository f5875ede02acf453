package main

import (
	"strings"
	"testing"
)

// TestSimOpcuaIsWired checks `edgepipe sim opcua` reaches the simulator:
// a bad --listen is its error, not sim's usage.
func TestSimOpcuaIsWired(t *testing.T) {
	code, _, stderr := run(t, "sim", "opcua", "--listen", "tcp://127.0.0.1:4840")
	if code != 1 || !strings.HasPrefix(stderr, "edgepipe sim opcua: listen") {
		t.Errorf("exit %d, stderr %q; want 1 and the simulator's listen error", code, stderr)
	}
}
