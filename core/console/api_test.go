package console

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"
)

// Every route the console registers is described in the OpenAPI document
// it serves, and the document describes no route that is not served.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	g := startGateway(t, "")
	st, b := g.client().get("/api/v1/openapi.json")
	doc := want(t, "openapi.json", st, b, 200)
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("openapi %q", v)
	}
	var documented []string
	for path, ops := range doc["paths"].(map[string]any) {
		for method, op := range ops.(map[string]any) {
			documented = append(documented, strings.ToUpper(method)+" "+path)
			if _, ok := op.(map[string]any)["responses"]; !ok {
				t.Errorf("%s %s has no responses", method, path)
			}
		}
	}
	var served []string
	for _, r := range g.c.routes {
		served = append(served, r.method+" "+r.path)
	}
	sort.Strings(documented)
	sort.Strings(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("documented:\n%s\nserved:\n%s", strings.Join(documented, "\n"), strings.Join(served, "\n"))
	}
	// Every reference resolves.
	for _, ref := range findRefs(doc) {
		name := strings.TrimPrefix(ref, "#/components/")
		parts := strings.SplitN(name, "/", 2)
		if _, ok := doc["components"].(map[string]any)[parts[0]].(map[string]any)[parts[1]]; !ok {
			t.Errorf("dangling $ref %s", ref)
		}
	}
}

func findRefs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && k == "$ref" {
				out = append(out, s)
			}
			out = append(out, findRefs(e)...)
		}
	case []any:
		for _, e := range v {
			out = append(out, findRefs(e)...)
		}
	}
	return out
}

func TestStatusPointsDevicesLogs(t *testing.T) {
	g := startGateway(t, "")
	c := g.client()
	waitFor(t, "the output to connect", func() bool {
		st, b := c.get("/api/v1/status")
		m := want(t, "status", st, b, 200)
		return m["ok"] == true
	})
	st, b := c.get("/api/v1/status")
	m := want(t, "status", st, b, 200)
	outs := m["outputs"].([]any)
	if m["device_id"] != "GW-API" || len(outs) != 1 || outs[0].(map[string]any)["id"] != "cloud" ||
		outs[0].(map[string]any)["enabled"] != true || outs[0].(map[string]any)["connected"] != true {
		t.Fatalf("status: %s", b)
	}

	// Points: every point of the registry, with the latest value read.
	waitFor(t, "a counter reading", func() bool {
		p := point(t, c, "ro.p0")
		v, ok := p["value"].(float64)
		return ok && v > 1 && p["q"] == "good"
	})
	p := point(t, c, "rw.p1")
	if p["access"] != "pubsub" || p["type"] == "" || p["ts"] == nil || p["age_ms"] == nil {
		t.Fatalf("rw.p1: %v", p)
	}

	st, b = c.get("/api/v1/devices")
	m = want(t, "devices", st, b, 200)
	devs := m["devices"].([]any)
	if len(devs) != 2 {
		t.Fatalf("devices: %s", b)
	}
	for _, d := range devs {
		d := d.(map[string]any)
		if d["up"] != true || d["input_ok"] != true || d["points"].(float64) < 1 || !strings.HasPrefix(d["input"].(string), "inputs.synthetic") {
			t.Fatalf("device: %v", d)
		}
	}

	st, b = c.post("/api/v1/outputs/cloud/resume", "")
	want(t, "resume", st, b, 200)
	st, b = c.get("/api/v1/logs?level=info&limit=1000")
	m = want(t, "logs", st, b, 200)
	found := false
	for _, r := range m["records"].([]any) {
		r := r.(map[string]any)
		found = found || r["msg"] == "console command" && r["level"] == "INFO" && r["attrs"].(map[string]any)["by"] == "loopback"
	}
	if !found {
		t.Fatalf("no log record of the console's command: %s", b)
	}
	st, b = c.get("/api/v1/logs?level=error")
	if m = want(t, "logs", st, b, 200); len(m["records"].([]any)) != 0 {
		t.Fatalf("error records: %s", b)
	}
	st, b = c.get("/api/v1/logs?level=loud")
	want(t, "logs with a bad level", st, b, 400)

	st, b = c.get("/api/v1/session")
	m = want(t, "session", st, b, 200)
	if m["user"] != "loopback" || m["access"] != "write" {
		t.Fatalf("session: %s", b)
	}
	st, b = c.get("/api/v1/nothing")
	want(t, "unknown route", st, b, 404)
	st, b = c.get("/healthz")
	want(t, "healthz", st, b, 200)
}

// A write from the API takes the server's write path: the same checks,
// the same per-point reply, the value reaches the input.
func TestWriteGoesThroughTheCommandPath(t *testing.T) {
	g := startGateway(t, "")
	c := g.client()
	st, b := c.post("/api/v1/write", `{"id":"w-1","points":{"rw.p1":42,"ro.p0":1,"nope.x":1,"rw.p0":"x"}}`)
	m := want(t, "write", st, b, 200)
	if m["id"] != "w-1" {
		t.Fatalf("reply: %s", b)
	}
	res := m["results"].(map[string]any)
	if res["rw.p1"].(map[string]any)["ok"] != true {
		t.Fatalf("rw.p1: %s", b)
	}
	for name, msg := range map[string]string{"ro.p0": "point ro.p0 is read-only (access=pub)", "nope.x": "unknown point nope.x", "rw.p0": "rw.p0"} {
		r := res[name].(map[string]any)
		if r["ok"] != false || !strings.Contains(r["error"].(string), msg) {
			t.Errorf("%s: %v", name, r)
		}
	}
	waitFor(t, "the written value read back", func() bool {
		v, _ := point(t, c, "rw.p1")["value"].(float64)
		return v == 42
	})
	// The audit trail of SPEC 5 is written by the same path.
	found := false
	for _, r := range g.logs.Records(0, 0) {
		found = found || r.Msg == "write" && r.Attrs["id"] == "w-1" && r.Attrs["point"] == "rw.p1" && r.Attrs["result"] == "ok"
	}
	if !found {
		t.Fatal("no audit log line for the write")
	}

	st, b = c.post("/api/v1/write", `{"id":"w-2","points":`)
	m = want(t, "broken write", st, b, 400)
	if m["id"] != "w-2" || m["ok"] != false || m["error"] == "" {
		t.Fatalf("broken write: %s", b)
	}
	st, b = c.post("/api/v1/write", `{"points":{"rw.p1":1}}`)
	m = want(t, "write without id", st, b, 200)
	if id, _ := m["id"].(string); !strings.HasPrefix(id, "console-") {
		t.Fatalf("id %q", id)
	}
	st, b = c.post("/api/v1/write", `{"id":"big","points":{"rw.p1":"`+strings.Repeat("x", 70<<10)+`"}}`)
	want(t, "write larger than max_command_size", st, b, 413)
	st, b = c.get("/api/v1/write")
	if st != 405 || decode(t, b)["error"] == nil {
		t.Fatalf("GET write: %d %s", st, b)
	}
}

func TestAlarmsAndAcknowledge(t *testing.T) {
	g := startGateway(t, "")
	c := g.client()
	st, b := c.post("/api/v1/alarms/rw_high/ack", `{"id":"a-0"}`)
	m := want(t, "ack before raise", st, b, 422)
	if m["id"] != "a-0" || m["ok"] != false {
		t.Fatalf("ack: %s", b)
	}
	st, b = c.post("/api/v1/write", `{"id":"w","points":{"rw.p0":150}}`)
	want(t, "write", st, b, 200)
	var raised []any
	waitFor(t, "the alarm raised", func() bool {
		st, b := c.get("/api/v1/alarms")
		raised = want(t, "alarms", st, b, 200)["raised"].([]any)
		return len(raised) == 1
	})
	a := raised[0].(map[string]any)
	if a["rule"] != "rw_high" || a["state"] != "raised" || a["point"] != "rw.p0" || a["value"] != 150.0 || a["level"] != "warning" {
		t.Fatalf("raised: %v", a)
	}
	st, b = c.post("/api/v1/alarms/rw_high/ack", "")
	m = want(t, "ack", st, b, 200)
	if m["ok"] != true || !strings.HasPrefix(m["id"].(string), "console-") {
		t.Fatalf("ack: %s", b)
	}
	st, b = c.get("/api/v1/alarms")
	m = want(t, "alarms", st, b, 200)
	if r := m["raised"].([]any); len(r) != 1 || r[0].(map[string]any)["state"] != "acked" {
		t.Fatalf("after the ack: %s", b)
	}
	var states []string
	for _, h := range m["history"].([]any) {
		states = append(states, h.(map[string]any)["state"].(string))
	}
	if !slices.Equal(states, []string{"raised", "acked"}) {
		t.Fatalf("history %v", states)
	}
	st, b = c.post("/api/v1/alarms/nope/ack", "")
	want(t, "ack of an unknown rule", st, b, 422)
}

func TestPauseAndResumeAnOutput(t *testing.T) {
	g := startGateway(t, "")
	c := g.client()
	data := g.broker.Subscribe("Topic/flexem/fbox/GW-API/data")
	data.WaitCount(t, 1, 20e9)
	enabled := func() bool {
		st, b := c.get("/api/v1/status")
		return want(t, "status", st, b, 200)["outputs"].([]any)[0].(map[string]any)["enabled"].(bool)
	}
	st, b := c.post("/api/v1/outputs/cloud/pause", `{"id":"p-1"}`)
	m := want(t, "pause", st, b, 200)
	if m["id"] != "p-1" || m["command"] != "Pause" || m["ok"] != true || enabled() {
		t.Fatalf("pause: %s", b)
	}
	// Paused: the queue fills, delivery stops.
	waitFor(t, "the queue to fill while paused", func() bool {
		st, b := c.get("/api/v1/status")
		return want(t, "status", st, b, 200)["outputs"].([]any)[0].(map[string]any)["queue_depth"].(float64) > 2
	})
	n := data.Len()
	st, b = c.post("/api/v1/outputs/cloud/resume", "")
	m = want(t, "resume", st, b, 200)
	if m["command"] != "Resume" || m["ok"] != true || !enabled() {
		t.Fatalf("resume: %s", b)
	}
	data.WaitCount(t, n+3, 20e9)
	st, b = c.post("/api/v1/outputs/nope/pause", "")
	want(t, "pause of an unknown output", st, b, 404)
}

func TestConfigShownCheckedApplied(t *testing.T) {
	g := startGateway(t, "")
	c := g.client()
	st, b := c.get("/api/v1/config")
	m := want(t, "config", st, b, 200)
	text := m["text"].(string)
	if strings.Contains(text, "hunter2-secret") || strings.Contains(string(b), "edge-user") ||
		!strings.Contains(text, `password = "***"`) || !strings.Contains(text, `username = "${API_TEST_USER}"`) {
		t.Fatalf("config shown:\n%s", text)
	}
	// The shown text applied as it is would make "***" the password.
	st, b = c.do("POST", "/api/v1/config/apply", "text/plain", text)
	m = want(t, "apply the masked text", st, b, 422)
	if errs := m["errors"].([]any); len(errs) != 1 || !strings.Contains(errs[0].(map[string]any)["message"].(string), "still masked") ||
		errs[0].(map[string]any)["line"].(float64) != float64(strings.Count(text[:strings.Index(text, `password = "***"`)], "\n")+1) {
		t.Fatalf("apply masked: %s", b)
	}
	broken := g.doc("") + "[[inputs.synthetic]]\npoints = -1\n[[inputs.synthetic]]\nbogus = 1\n"
	st, b = c.do("POST", "/api/v1/config/check", "text/plain", broken)
	m = want(t, "check", st, b, 200)
	lines := map[float64]bool{}
	for _, e := range m["errors"].([]any) {
		lines[e.(map[string]any)["line"].(float64)] = true
	}
	n := float64(strings.Count(g.doc(""), "\n"))
	if m["ok"] != false || !lines[n+2] || !lines[n+4] {
		t.Fatalf("check of a broken file (errors at %v and %v): %s", n+2, n+4, b)
	}
	st, b = c.do("POST", "/api/v1/config/apply", "text/plain", broken)
	m = want(t, "apply broken", st, b, 422)
	if m["applied"] != false || len(m["errors"].([]any)) < 2 || g.applied.Load() != 0 {
		t.Fatalf("apply broken: %s", b)
	}
	good := strings.Replace(g.doc(""), `device = "ro"`, `device = "ro2"`, 1)
	st, b = c.do("POST", "/api/v1/config/check", "text/plain", good)
	if m = want(t, "check good", st, b, 200); m["ok"] != true {
		t.Fatalf("check good: %s", b)
	}
	st, b = c.do("POST", "/api/v1/config/apply", "text/plain", good)
	if m = want(t, "apply good", st, b, 200); m["ok"] != true || g.applied.Load() != 1 {
		t.Fatalf("apply good: %s", b)
	}
	waitFor(t, "the new device", func() bool { return point(t, c, "ro2.p0")["value"] != nil })
	st, b = c.get("/api/v1/config")
	if !strings.Contains(want(t, "config", st, b, 200)["text"].(string), `"ro2"`) {
		t.Fatalf("config after apply: %s", b)
	}
}

// Replies are JSON whatever goes wrong.
func TestErrorBodiesAreJSON(t *testing.T) {
	g := startGateway(t, "")
	c := g.client()
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/api/v1/nope", ""},
		{"POST", "/api/v1/login", `{"username":"a","password":"b"}`},
		{"POST", "/api/v1/outputs/x/pause", ""},
		{"POST", "/api/v1/config/check", strings.Repeat("#", 5<<20)},
	} {
		st, b := c.do(tc.method, tc.path, "application/json", tc.body)
		var v map[string]any
		if st < 400 || json.Unmarshal(b, &v) != nil || v["error"] == nil {
			t.Errorf("%s %s: %d %q", tc.method, tc.path, st, b)
		}
	}
}

// A reload that disables the console leaves /metrics and /healthz alone.
func TestConsoleDisabledByReload(t *testing.T) {
	g := startGateway(t, "")
	c := g.client()
	st, b := c.do("POST", "/api/v1/config/apply", "text/plain", g.doc("[agent.console]\nenabled = false\n"))
	want(t, "apply", st, b, 200)
	st, b = c.get("/api/v1/status")
	want(t, "status once disabled", st, b, 404)
	if st, _ := c.get("/"); st != 404 {
		t.Fatalf("page once disabled: %d", st)
	}
	if st, _ := c.get("/metrics"); st != 200 {
		t.Fatalf("metrics once disabled: %d", st)
	}
}
