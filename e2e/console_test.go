package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// The console's configuration apply in a real `edgepipe run`: a broken
// file is refused with its lines and changes nothing; a good one is
// written to --config and reloaded in place, like SIGHUP.
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
	if string(mustRead(t, path)) != doc("plc2") {
		t.Fatal("the applied configuration is not in the file")
	}
	waitFor(t, 30*time.Second, "plc2's points", func() bool {
		return strings.Contains(g.get("/api/v1/points"), `"name":"plc2.p0","device":"plc2"`)
	})
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	logs := g.get("/api/v1/logs?level=info")
	if !strings.Contains(logs, "configuration reloaded") || strings.Contains(logs, "pw-from-env-123") {
		t.Fatalf("logs: %s", logs)
	}
	g.stop()
}
