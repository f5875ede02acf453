package console

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// absoluteRef finds a reference to anything outside the gateway.
var absoluteRef = regexp.MustCompile(`(?i)(src|href|action)\s*=\s*"(https?:)?//|url\(\s*['"]?(https?:)?//|@import`)

func TestPagesServedAndSelfContained(t *testing.T) {
	g := startGateway(t, "")
	c := g.client()
	waitFor(t, "a reading", func() bool { return point(t, c, "ro.p0")["value"] != nil })
	for path, wantText := range map[string][]string{
		"/":                   {"Overview", `data-output="cloud"`, `data-post="/api/v1/outputs/cloud/pause"`, "inputs.synthetic#1", "GW-API"},
		"/points":             {"Live points", `data-point="ro.p0"`, `data-point="rw.p1"`, "/static/console.js"},
		"/login":              {"No password is configured"},
		"/static/console.js":  {"EventSource", "X-CSRF-Token"},
		"/static/console.css": {"table"},
	} {
		st, b := c.get(path)
		if st != 200 {
			t.Fatalf("%s: %d %s", path, st, b)
		}
		for _, w := range wantText {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s lacks %q", path, w)
			}
		}
		if strings.Contains(string(b), "hunter2-secret") || path == "/write" && strings.Contains(string(b), `value="ro.p0"`) {
			t.Errorf("%s: secret or read-only point shown", path)
		}
		if m := absoluteRef.Find(b); m != nil {
			t.Errorf("%s refers outside the box: %s", path, m)
		}
	}
	// The page says every resource comes from the gateway itself.
	req := c.http
	resp, err := req.Get(g.url + "/points")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Fatalf("CSP %q", csp)
	}
	if st, _ := c.get("/static/nope.js"); st != 404 {
		t.Fatalf("missing static file: %d", st)
	}
}

func TestPagesAskForALoginWithAPassword(t *testing.T) {
	g := startGateway(t, consoleWithPassword(t))
	c := g.client()
	resp, err := c.http.Get(g.url + "/points")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/login" {
		t.Fatalf("not logged in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	c.headers["Accept"] = "text/html"
	form := url.Values{"username": {"ops"}, "password": {"nope"}}.Encode()
	resp, err = c.http.Post(g.url+"/api/v1/login", "application/x-www-form-urlencoded", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Without Accept: text/html the API answers JSON (401).
	if resp.StatusCode != 401 {
		t.Fatalf("JSON login: %d", resp.StatusCode)
	}
	st, _ := c.do("POST", "/api/v1/login", "application/x-www-form-urlencoded", form)
	if st != 303 {
		t.Fatalf("wrong password from the form: %d", st)
	}
	st, b := c.get("/login?failed=1")
	if st != 200 || !strings.Contains(string(b), "Wrong user name or password") {
		t.Fatalf("login page: %d %s", st, b)
	}
	form = url.Values{"username": {"ops"}, "password": {"s3cret pass"}}.Encode()
	if st, _ := c.do("POST", "/api/v1/login", "application/x-www-form-urlencoded", form); st != 303 {
		t.Fatalf("login from the form: %d", st)
	}
	st, b = c.get("/")
	m := regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`).FindSubmatch(b)
	if st != 200 || m == nil || !strings.Contains(string(b), `class="who">ops <button data-post="/api/v1/logout"`) {
		t.Fatalf("overview after login: %d %s", st, b)
	}
	// The page's token is the session's: a button's POST is taken.
	c.headers["X-CSRF-Token"] = string(m[1])
	st, b = c.post("/api/v1/outputs/cloud/pause", "{}")
	want(t, "pause from the page", st, b, 200)
	if strings.Contains(string(b), "$2a$") {
		t.Fatal("hash shown")
	}
}
