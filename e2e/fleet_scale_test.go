package e2e

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testbroker"
)

// fleetScaleEnv names the number of gateways TestFleetScale starts; the
// test is skipped without it (it runs for minutes and loads the machine):
//
//	EDGEPIPE_FLEET=50 go test -run TestFleetScale -v -timeout 20m ./e2e/
const fleetScaleEnv = "EDGEPIPE_FLEET"

// scaleConfig is the fleet's configuration: one synthetic input of
// points points every interval, an MQTT output with the default reconnect
// policy (full jitter, 1 s doubling up to 30 s).
func scaleConfig(url string, points int, interval string) string {
	return fmt.Sprintf(`[agent]
device_id = "${GW_ID}"
data_dir = "${GW_DATA}"
http_listen = "${GW_HTTP}"

[agent.remote]
enabled = true

[[inputs.synthetic]]
device = "load"
points = %d
interval = %q

[[outputs.mqtt]]
alias = "up"
servers = [%q]
qos = 1
`, points, interval, url)
}

// procSample is the CPU time (clock ticks) and PSS (kB) of a process and
// its children.
func procSample(pid int) (ticks, pssKB int64) {
	pids := []int{pid}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				pids = append(pids, c)
			}
		}
	}
	for _, p := range pids {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p)); err == nil {
			s := string(b)
			f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
			u, _ := strconv.ParseInt(f[11], 10, 64) // utime: field 14
			k, _ := strconv.ParseInt(f[12], 10, 64) // stime: field 15
			ticks += u + k
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", p)); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, "Pss:") {
					v, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
					pssKB += v
				}
			}
		}
	}
	return ticks, pssKB
}

// fleetFigures measures every gateway over window: CPU in percent of one
// core and PSS in MB, each as min/median/max.
func fleetFigures(gws []*gateway, window time.Duration) (cpu, pss [3]float64) {
	before := make([]int64, len(gws))
	for i, g := range gws {
		before[i], _ = procSample(g.cmd.Process.Pid)
	}
	start := time.Now()
	time.Sleep(window) // a measurement window, not a synchronisation
	el := time.Since(start).Seconds()
	cpus, psss := make([]float64, len(gws)), make([]float64, len(gws))
	for i, g := range gws {
		t, p := procSample(g.cmd.Process.Pid)
		cpus[i] = float64(t-before[i]) / 100 / el * 100 // USER_HZ = 100
		psss[i] = float64(p) / 1024
	}
	return spread3(cpus), spread3(psss)
}

func spread3(v []float64) [3]float64 {
	sort.Float64s(v)
	return [3]float64{v[0], v[len(v)/2], v[len(v)-1]}
}

// TestFleetScale: N gateway processes (EDGEPIPE_FLEET, 50 for the README's
// figures) against one mosquitto: all online with their retained status,
// a configuration pushed to all with `edgepipe fleet` and applied,
// per-gateway CPU and PSS at idle (one point every 10 s) and at 100
// points/s each, and the first reconnects after the broker restarts:
// spread by the full jitter over more than 2 s, all back within 60 s.
func TestFleetScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(fleetScaleEnv))
	if n <= 0 {
		t.Skipf("set %s=50 to run the fleet benchmark (minutes of 50 processes)", fleetScaleEnv)
	}
	needBinary(t)
	m := testbroker.StartMosquitto(t, testbroker.MosquittoOptions{})
	status := testbroker.Subscribe(t, m.URL(), prefix+"+/status", testbroker.ClientOptions{})
	data := testbroker.Subscribe(t, m.URL(), prefix+"+/data", testbroker.ClientOptions{})
	dir := t.TempDir()
	path := writeFile(t, dir, "gw.toml", scaleConfig(m.URL(), 1, "10s"))
	gws := make([]*gateway, n)
	started := time.Now()
	for i := range gws {
		gws[i] = fleetGateway(t, dir, fmt.Sprintf("GW-S%03d", i), path)
	}
	online := func(m []testbroker.Received) bool {
		seen := map[string]bool{}
		for _, x := range m {
			if !x.Retain && strings.Contains(string(x.Payload), `"status":"online"`) {
				seen[x.Topic] = true
			}
		}
		return len(seen) == n
	}
	status.Wait(t, 180*time.Second, fmt.Sprintf("all %d gateways online", n), online)
	t.Logf("%d gateways online %.1f s after the first was started", n, time.Since(started).Seconds())

	idleCPU, idlePSS := fleetFigures(gws, 15*time.Second)
	t.Logf("idle (1 point / 10 s): CPU %% of a core min/median/max %.2f/%.2f/%.2f, PSS MB %.1f/%.1f/%.1f",
		idleCPU[0], idleCPU[1], idleCPU[2], idlePSS[0], idlePSS[1], idlePSS[2])

	// Push 100 points/s each (10 points every 100 ms) to the whole fleet.
	loadPath := writeFile(t, dir, "load.toml", scaleConfig(m.URL(), 10, "100ms"))
	pushed := time.Now()
	code, out, errOut := runCmd(t, nil, "fleet", "--broker", m.URL(), "--discover", "5s", "--timeout", "120s", loadPath)
	if code != 0 || strings.Count(out, " applied ") != n {
		t.Fatalf("fleet push: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("edgepipe fleet: %d applied in %.1f s (5 s of it discovery)", n, time.Since(pushed).Seconds())
	before := data.Len()
	loadCPU, loadPSS := fleetFigures(gws, 15*time.Second)
	rate := float64(data.Len()-before) * 10 / 15
	t.Logf("100 points/s each: CPU %% of a core min/median/max %.2f/%.2f/%.2f, PSS MB %.1f/%.1f/%.1f; the broker delivered %.0f points/s in all",
		loadCPU[0], loadCPU[1], loadCPU[2], loadPSS[0], loadPSS[1], loadPSS[2], rate)

	// Restart the broker after 5 s down; time every gateway's first
	// reconnect from the moment it listens again.
	const connected = "connected to MQTT server"
	had := make([]int, n)
	for i, g := range gws {
		had[i] = strings.Count(g.stderr.String(), connected)
	}
	seen := status.Len()
	m.Stop()
	time.Sleep(5 * time.Second) // the outage itself
	m.Restart()
	back := time.Now()
	firsts := make([]float64, n)
	left := n
	deadline := back.Add(90 * time.Second)
	for left > 0 && time.Now().Before(deadline) {
		for i, g := range gws {
			if firsts[i] == 0 && strings.Count(g.stderr.String(), connected) > had[i] {
				firsts[i] = time.Since(back).Seconds()
				left--
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if left > 0 {
		t.Fatalf("%d of %d gateways not back 90 s after the broker restarted", left, n)
	}
	r := spread3(firsts)
	t.Logf("first reconnects after the restart: first %.2f s, median %.2f s, last %.2f s: spread %.2f s", r[0], r[1], r[2], r[2]-r[0])
	if r[2] > 60 {
		t.Errorf("the last gateway came back %.1f s after the restart, want within 60 s", r[2])
	}
	if n >= 20 && r[2]-r[0] <= 2 {
		t.Errorf("reconnects spread over %.2f s only, want more than 2 s (full jitter)", r[2]-r[0])
	}
	status.Wait(t, 60*time.Second, "all online again", func(m []testbroker.Received) bool { return online(m[seen:]) })
	for _, g := range gws {
		g.requireRunning()
	}
}
