package console

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// consoleWithPassword is an [agent.console] with user ops / password
// "s3cret pass", a read token and a write token.
func consoleWithPassword(t *testing.T) string {
	h, err := bcrypt.GenerateFromPassword([]byte("s3cret pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`[agent.console]
username = "ops"
password_hash = %q
[[agent.console.tokens]]
name = "grafana"
sha256 = %q
access = "read"
[[agent.console.tokens]]
name = "deploy"
sha256 = %q
access = "write"
`, h, sha("read-token-123"), sha("write-token-456"))
}

// Every route, with every kind of caller: what SPEC 8 promises.
func TestAccessRulesWithAPassword(t *testing.T) {
	g := startGateway(t, consoleWithPassword(t))
	anon := g.client()
	// No credentials: 401 on every route but the public ones.
	for _, r := range g.c.routes {
		st, b := anon.do(r.method, strings.ReplaceAll(strings.ReplaceAll(r.path, "{rule}", "rw_high"), "{alias}", "cloud"), "application/json", "{}")
		if r.public {
			continue
		}
		m := want(t, "anonymous "+r.method+" "+r.path, st, b, 401)
		if m["error"] == "" {
			t.Fatalf("error body %s", b)
		}
	}
	// /healthz and /metrics never ask for a password.
	for _, p := range []string{"/healthz", "/metrics"} {
		if st, b := anon.get(p); st == 401 || st == 403 {
			t.Fatalf("%s: %d %s", p, st, b)
		}
	}
	st, b := anon.get("/api/v1/openapi.json")
	want(t, "openapi without credentials", st, b, 200)

	// Read token: reads, never changes.
	rd := g.client()
	rd.headers["Authorization"] = "Bearer read-token-123"
	st, b = rd.get("/api/v1/points")
	want(t, "read token GET", st, b, 200)
	st, b = rd.post("/api/v1/write", `{"id":"r","points":{"rw.p1":5}}`)
	want(t, "read token write", st, b, 403)
	st, b = rd.post("/api/v1/outputs/cloud/pause", "")
	want(t, "read token pause", st, b, 403)
	st, b = rd.get("/api/v1/session")
	if m := want(t, "read token session", st, b, 200); m["user"] != "token grafana" || m["access"] != "read" || m["csrf_token"] != nil {
		t.Fatalf("session: %s", b)
	}
	// Write token: changes without a CSRF token.
	wr := g.client()
	wr.headers["Authorization"] = "Bearer write-token-456"
	st, b = wr.post("/api/v1/write", `{"id":"w","points":{"rw.p1":5}}`)
	want(t, "write token write", st, b, 200)
	// A wrong token, or another scheme: 401.
	bad := g.client()
	bad.headers["Authorization"] = "Bearer nope"
	st, b = bad.get("/api/v1/status")
	want(t, "unknown token", st, b, 401)
	bad.headers["Authorization"] = "Basic b3BzOnMzY3JldCBwYXNz"
	st, b = bad.get("/api/v1/status")
	want(t, "basic auth", st, b, 401)

	// A person: login form, session cookie, CSRF token for changes.
	p := g.client()
	st, b = p.post("/api/v1/login", `{"username":"ops","password":"wrong"}`)
	want(t, "wrong password", st, b, 401)
	form := url.Values{"username": {"ops"}, "password": {"s3cret pass"}}.Encode()
	p.headers["Accept"] = "text/html"
	st, _ = p.do("POST", "/api/v1/login", "application/x-www-form-urlencoded", form)
	if st != http.StatusSeeOther {
		t.Fatalf("form login: %d", st)
	}
	delete(p.headers, "Accept")
	st, b = p.post("/api/v1/login", `{"username":"ops","password":"s3cret pass"}`)
	m := want(t, "login", st, b, 200)
	csrf, _ := m["csrf_token"].(string)
	if csrf == "" || m["user"] != "ops" {
		t.Fatalf("login: %s", b)
	}
	st, b = p.get("/api/v1/status")
	want(t, "GET with the session", st, b, 200)
	st, b = p.post("/api/v1/write", `{"id":"s","points":{"rw.p1":6}}`)
	if m := want(t, "write without CSRF", st, b, 403); !strings.Contains(m["error"].(string), "CSRF") {
		t.Fatalf("no CSRF: %s", b)
	}
	p.headers["X-CSRF-Token"] = "forged"
	st, b = p.post("/api/v1/write", `{"id":"s","points":{"rw.p1":6}}`)
	want(t, "write with a wrong CSRF token", st, b, 403)
	p.headers["X-CSRF-Token"] = csrf
	st, b = p.post("/api/v1/write", `{"id":"s","points":{"rw.p1":6}}`)
	want(t, "write with the CSRF token", st, b, 200)
	delete(p.headers, "X-CSRF-Token")
	st, b = p.do("POST", "/api/v1/outputs/cloud/pause", "application/x-www-form-urlencoded", "csrf_token="+url.QueryEscape(csrf))
	want(t, "pause with the csrf_token field", st, b, 200)
	st, b = p.get("/api/v1/session")
	if m := want(t, "session", st, b, 200); m["csrf_token"] != csrf || m["access"] != "write" {
		t.Fatalf("session: %s", b)
	}
	p.headers["X-CSRF-Token"] = csrf
	st, b = p.post("/api/v1/logout", "")
	want(t, "logout", st, b, 200)
	st, b = p.get("/api/v1/status")
	want(t, "after logout", st, b, 401)
	// No answer ever carries the password hash or a token hash.
	for _, c := range []*client{wr, rd} {
		for _, path := range []string{"/api/v1/config", "/api/v1/status", "/api/v1/logs", "/api/v1/session"} {
			_, b := c.get(path)
			if strings.Contains(string(b), "$2a$") || strings.Contains(string(b), sha("read-token-123")) ||
				strings.Contains(string(b), "hunter2-secret") || strings.Contains(string(b), "s3cret") {
				t.Fatalf("%s shows a secret: %s", path, b)
			}
		}
	}
}

func TestSessionCookieFlags(t *testing.T) {
	g := startGateway(t, consoleWithPassword(t))
	resp, err := http.Post(g.url+"/api/v1/login", "application/json", strings.NewReader(`{"username":"ops","password":"s3cret pass"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || len(ck.Value) < 40 {
		t.Fatalf("cookie %+v", ck)
	}
}

// Login attempts are limited per client: after the burst even the right
// password is refused for a while.
func TestLoginRateLimited(t *testing.T) {
	g := startGateway(t, consoleWithPassword(t))
	c := g.client()
	for i := 0; i < loginBurst; i++ {
		st, b := c.post("/api/v1/login", `{"username":"ops","password":"guess"}`)
		want(t, "wrong password", st, b, 401)
	}
	st, b := c.post("/api/v1/login", `{"username":"ops","password":"s3cret pass"}`)
	want(t, "login past the limit", st, b, 429)
}

// Without a password the console answers to loopback only, checked by
// the peer's address and the Host header, and refuses another site's
// page.
func TestWithoutPasswordLoopbackOnly(t *testing.T) {
	g := startGateway(t, "")
	for _, tc := range []struct {
		name, remote, host, origin string
		method, path               string
		status                     int
	}{
		{"loopback", "127.0.0.1:5000", "127.0.0.1:9273", "", "GET", "/api/v1/status", 200},
		{"loopback v6", "[::1]:5000", "localhost:9273", "", "GET", "/api/v1/status", 200},
		{"from the network", "192.0.2.7:5000", "192.0.2.1:9273", "", "GET", "/api/v1/status", 403},
		{"from the network, openapi", "192.0.2.7:5000", "192.0.2.1:9273", "", "GET", "/api/v1/openapi.json", 403},
		{"from the network, unknown route", "192.0.2.7:5000", "192.0.2.1:9273", "", "GET", "/api/v1/zzz", 403},
		{"DNS rebinding", "127.0.0.1:5000", "evil.example:9273", "", "GET", "/api/v1/status", 403},
		{"cross-site page", "127.0.0.1:5000", "127.0.0.1:9273", "http://evil.example", "POST", "/api/v1/outputs/cloud/pause", 403},
		{"cross-site check", "127.0.0.1:5000", "127.0.0.1:9273", "http://evil.example", "POST", "/api/v1/config/check", 403},
		{"same-origin page", "127.0.0.1:5000", "127.0.0.1:9273", "http://127.0.0.1:9273", "POST", "/api/v1/outputs/cloud/resume", 200},
		{"login without a password", "127.0.0.1:5000", "127.0.0.1:9273", "", "POST", "/api/v1/login", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://"+tc.host+tc.path, strings.NewReader(`{}`))
			r.RemoteAddr, r.Host = tc.remote, tc.host
			r.Header.Set("Content-Type", "application/json")
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			w := httptest.NewRecorder()
			g.mon.Handler().ServeHTTP(w, r)
			want(t, tc.name, w.Code, w.Body.Bytes(), tc.status)
		})
	}
	// /healthz and /metrics stay open to the network for probes.
	for _, p := range []string{"/healthz", "/metrics"} {
		r := httptest.NewRequest("GET", "http://192.0.2.1:9273"+p, nil)
		r.RemoteAddr = "192.0.2.7:5000"
		w := httptest.NewRecorder()
		g.mon.Handler().ServeHTTP(w, r)
		if w.Code == 401 || w.Code == 403 || w.Code == 404 {
			t.Fatalf("%s from the network: %d", p, w.Code)
		}
	}
}

// With a password the console answers to the network too.
func TestWithPasswordNetworkPeersMayLogIn(t *testing.T) {
	g := startGateway(t, consoleWithPassword(t))
	r := httptest.NewRequest("GET", "http://192.0.2.1:9273/api/v1/status", nil)
	r.RemoteAddr = "192.0.2.7:5000"
	r.Header.Set("Authorization", "Bearer read-token-123")
	w := httptest.NewRecorder()
	g.mon.Handler().ServeHTTP(w, r)
	want(t, "token from the network", w.Code, w.Body.Bytes(), 200)
}
