package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/sim/modbussim"
)

// The console's configuration apply in a real `edgepipe run`: a broken
// file is refused with its lines and changes nothing; a good one is
// reloaded in place through the one reload path, like SIGHUP, and stored
// as the newest confirmed version under data_dir/config (not written over
// --config: the packaged service may not write /etc/edgepipe), from which
// the next start begins.
func TestConsoleAppliesConfigurationLikeSIGHUP(t *testing.T) {
	needBinary(t)
	dir := t.TempDir()
	addr := httpAddr(t)
	doc := func(device string) string {
		return fmt.Sprintf(`[agent]
device_id = "GW-CON"
data_dir = %q
http_listen = %q
[[inputs.synthetic]]
device = %q
points = 2
interval = "100ms"
[[outputs.mqtt]]
servers = ["tcp://127.0.0.1:1"]
buffer = "memory"
password = "${E2E_CONSOLE_PW}"
username = "u"
`, dir, addr, device)
	}
	path := writeFile(t, dir, "gw.toml", doc("plc1"))
	g := startGateway(t, "console", path, addr, "E2E_CONSOLE_PW=pw-from-env-123")
	g.waitLog("edgepipe running", 1, 30*time.Second)
	post := func(p, body string) (int, map[string]any) {
		resp, err := http.Post("http://"+addr+p, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("POST %s: %v: %s", p, err, b)
		}
		return resp.StatusCode, m
	}
	cfg := g.get("/api/v1/config")
	if strings.Contains(cfg, "pw-from-env-123") || !strings.Contains(cfg, `${E2E_CONSOLE_PW}`) {
		t.Fatalf("config: %s", cfg)
	}
	broken := doc("plc2") + "[[inputs.synthetic]]\npoints = \"many\"\n"
	st, m := post("/api/v1/config/apply", broken)
	errs, _ := m["errors"].([]any)
	if st != 422 || len(errs) == 0 || errs[0].(map[string]any)["line"].(float64) != float64(strings.Count(doc(""), "\n")+2) {
		t.Fatalf("apply broken: %d %v", st, m)
	}
	if string(mustRead(t, path)) != doc("plc1") {
		t.Fatal("a refused configuration was written")
	}
	st, m = post("/api/v1/config/apply", doc("plc2"))
	if st != 200 || m["applied"] != true {
		t.Fatalf("apply: %d %v", st, m)
	}
	g.waitLog("configuration reloaded", 1, 30*time.Second)
	if string(mustRead(t, path)) != doc("plc1") {
		t.Fatal("the --config file was changed")
	}
	stored, _ := filepath.Glob(filepath.Join(dir, "config", "*.toml"))
	if len(stored) == 0 || string(mustRead(t, stored[len(stored)-1])) != doc("plc2") {
		t.Fatalf("the applied configuration is not stored under data_dir/config: %v", stored)
	}
	waitFor(t, 30*time.Second, "plc2's points", func() bool {
		return strings.Contains(g.get("/api/v1/points"), `"name":"plc2.p0","device":"plc2"`)
	})
	logs := g.get("/api/v1/logs?level=info")
	if !strings.Contains(logs, "configuration reloaded") || strings.Contains(logs, "pw-from-env-123") {
		t.Fatalf("logs: %s", logs)
	}
	g.stop()
}

// A write from the API of a real `edgepipe run` reaches the Modbus
// simulator through the server's write path, is read back and streamed
// to a live-points client; a read token may watch but not write.
func TestConsoleWriteReachesModbusSimulator(t *testing.T) {
	needBinary(t)
	sim := writeSim(t)
	b := newBroker(t)
	dir := t.TempDir()
	addr := httpAddr(t)
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	doc := strings.Replace(writeGateway("GW-CW", dir, addr, sim.Addr(), b.URL()), "\n[[inputs.modbus]]", fmt.Sprintf(`
[[agent.console.tokens]]
name = "watcher"
sha256 = %q
[[agent.console.tokens]]
name = "ops"
sha256 = %q
access = "write"

[[inputs.modbus]]`, sum("watch-token-1"), sum("write-token-2")), 1)
	g := startGateway(t, "console-write", writeFile(t, dir, "gw.toml", doc), addr)
	defer g.stop()
	g.waitLog("serving /healthz and /metrics", 1, 30*time.Second)
	call := func(method, path, token, body string) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp, out
	}
	waitFor(t, 30*time.Second, "the first poll", func() bool {
		_, body := call("GET", "/api/v1/points", "watch-token-1", "")
		return strings.Contains(string(body), `"name":"plc.sp","device":"plc","type":"uint16","access":"pubsub","unit":"","value":5,"q":"good"`)
	})
	// A watcher on the live stream (read token).
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/v1/points/stream", nil)
	req.Header.Set("Authorization", "Bearer watch-token-1")
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stream.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()

	if resp, body := call("POST", "/api/v1/write", "watch-token-1", `{"id":"x","points":{"plc.sp":9}}`); resp.StatusCode != 403 {
		t.Fatalf("write with a read token: %d %s", resp.StatusCode, body)
	}
	resp, body := call("POST", "/api/v1/write", "write-token-2", `{"id":"cw-1","points":{"plc.sp":7,"plc.nope":1,"plc.u64":18446744073709551616}}`)
	var r writeReply
	if resp.StatusCode != 200 || json.Unmarshal(body, &r) != nil || r.ID != "cw-1" || !r.Results["plc.sp"].OK ||
		r.Results["plc.nope"].OK || !strings.Contains(r.Results["plc.u64"].Error, "does not fit") {
		t.Fatalf("write: %d %s", resp.StatusCode, body)
	}
	if v, err := sim.Read(1, modbussim.Holding, 2, 1); err != nil || v[0] != 7 {
		t.Fatalf("simulator holding 2: %v %v", v, err)
	}
	// Read back (the input polls once an hour otherwise) and streamed.
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("stream ended")
			}
			if strings.HasPrefix(l, "data: ") && strings.Contains(l, `{"name":"plc.sp","value":7,"q":"good"`) {
				return
			}
		case <-deadline:
			t.Fatal("the read-back value never reached the stream")
		}
	}
}
