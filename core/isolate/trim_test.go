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
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// exeRSS is how much of its executable process pid has resident (KB, the
// read-only mappings of the file /proc/pid/exe names).
func exeRSS(t *testing.T, pid int) int {
	t.Helper()
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	total, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) >= 5 && strings.Contains(fl[0], "-") && !strings.HasSuffix(fl[0], ":") {
			in = len(fl) >= 6 && strings.Join(fl[5:], " ") == exe && !strings.Contains(fl[1], "w")
			continue
		}
		if in && len(fl) >= 2 && fl[0] == "Rss:" {
			n, _ := strconv.Atoi(fl[1])
			total += n
		}
	}
	return total
}

// The gateway's second trim reaches its built-in plugins' processes: they
// drop their executable's pages at the same moment (the signal does not
// kill them), and a process that has exited is no peer any more.
func TestBuiltinPluginProcessTrimsWithTheGateway(t *testing.T) {
	started := time.Now()
	spec, err := BuiltinSpec("synthetic", "inputs.synthetic", slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if _, err := s.Init(context.Background(), sdktest.Request("")); err != nil {
		t.Fatal(err)
	}
	pid := s.Pid()
	before := exeRSS(t, pid)
	runtimecfg.TrimAgainAfter(0)
	// The process trims on its own StartupGrace after its start: the
	// drop must come before that to be the gateway's.
	deadline := started.Add(runtimecfg.StartupGrace - time.Second)
	for exeRSS(t, pid) > before/2 {
		if time.Now().After(deadline) {
			t.Fatalf("the plugin process kept %d of its %d KB of executable pages after the gateway's trim", exeRSS(t, pid), before)
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
