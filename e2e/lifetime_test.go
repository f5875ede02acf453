package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// isolatedConfig is a gateway whose input and output each run in a
// process of their own; nothing needs a broker.
func isolatedConfig(deviceID, dataDir, httpListen string) string {
	return fmt.Sprintf(`[agent]
device_id = %q
data_dir = %q
http_listen = %q
log_level = "info"

[[inputs.synthetic]]
isolated = true
device = "iso"
points = 1
interval = "100ms"

[[outputs.discard]]
isolated = true
`, deviceID, dataDir, httpListen)
}

// markedProcesses lists the live processes (zombies excluded) whose
// environment holds mark: the gateway started with it, and the plugin
// processes it started, which inherit its environment.
func markedProcesses(t *testing.T, mark string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, []byte(mark)) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		if i := strings.LastIndexByte(s, ')'); i > 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X') {
			continue // exited, waiting to be reaped
		}
		pids = append(pids, pid)
	}
	return pids
}

// waitNoneLeft waits up to 5 s (SPEC section 6: plugins die with the
// gateway) for every process carrying mark to be gone.
func waitNoneLeft(t *testing.T, mark, after string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := markedProcesses(t, mark)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var cmds []string
			for _, pid := range left {
				b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				cmds = append(cmds, fmt.Sprintf("%d: %s", pid, bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
			}
			t.Fatalf("5 s after %s, plugin processes are still running:\n%s", after, strings.Join(cmds, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPluginsDieWithKilledGateway: kill -9 of `edgepipe run` leaves no
// isolated plugin process behind (they would be re-parented to init and
// keep their ports and devices open).
func TestPluginsDieWithKilledGateway(t *testing.T) {
	needBinary(t)
	dir := t.TempDir()
	mark := fmt.Sprintf("EDGEPIPE_E2E_MARK=%d-kill9-%d", os.Getpid(), time.Now().UnixNano())
	addr := httpAddr(t)
	cfg := writeFile(t, dir, "iso.toml", isolatedConfig("GW-ISO", dir+"/data", addr))
	g := startGateway(t, "iso", cfg, addr, mark)
	g.waitLog("edgepipe running", 1, 30*time.Second)
	// The gateway and its two plugin processes.
	waitFor(t, 10*time.Second, "two plugin processes", func() bool { return len(markedProcesses(t, mark)) >= 3 })
	g.kill()
	waitNoneLeft(t, mark, "kill -9 of the gateway")
}

// TestPluginsNeverOutliveCheckAndOnce: the commands that start isolated
// plugins and exit leave none running.
func TestPluginsNeverOutliveCheckAndOnce(t *testing.T) {
	needBinary(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "iso.toml", isolatedConfig("GW-ISO", dir+"/data", httpAddr(t)))
	for _, cmd := range []string{"check", "once"} {
		mark := fmt.Sprintf("EDGEPIPE_E2E_MARK=%d-%s-%d", os.Getpid(), cmd, time.Now().UnixNano())
		code, out, errs := runCmd(t, []string{mark}, cmd, "--config", cfg)
		if code != 0 {
			t.Fatalf("edgepipe %s: exit %d\n%s\n%s", cmd, code, out, errs)
		}
		if cmd == "check" && !strings.Contains(out, "isolated") {
			t.Fatalf("check does not list the plugins as isolated:\n%s", out)
		}
		waitNoneLeft(t, mark, "edgepipe "+cmd+" exited")
	}
}
