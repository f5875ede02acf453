//go:build linux

package isolate

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/runtimecfg"
)

// fileRSS is how much file-backed memory process pid has resident (KB,
// RssFile of /proc/pid/status): its executable's pages, and a C
// library's where the test binary links one.
func fileRSS(t *testing.T, pid int) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "RssFile:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	t.Fatalf("no RssFile in /proc/%d/status", pid)
	return 0
}

// The gateway's second trim reaches its built-in plugins' processes: they
// drop their executable's pages at the same moment, and the signal does
// not kill them.
func TestBuiltinPluginProcessTrimsWithTheGateway(t *testing.T) {
	started := time.Now()
	spec, err := BuiltinSpec("synthetic", "inputs.synthetic", slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	s := startInit(t, spec, "")
	pid := s.Pid()
	before := fileRSS(t, pid)
	runtimecfg.TrimAgainAfter(0)
	// The process trims on its own StartupGrace after its start: the
	// drop must come before that to be the gateway's.
	deadline := started.Add(runtimecfg.StartupGrace - time.Second)
	for fileRSS(t, pid) > before/2 {
		if time.Now().After(deadline) {
			t.Fatalf("the plugin process kept %d of its %d KB of file pages after the gateway's trim", fileRSS(t, pid), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := s.Gather(context.Background()); err != nil {
		t.Fatalf("the plugin process does not answer after its trim: %v", err)
	}
	if n := s.Restarts(); n != 0 {
		t.Fatalf("the plugin process was restarted %d times: the signal killed it", n)
	}
}
