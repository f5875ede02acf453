package console

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/core/agent"
	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/core/monitor"
	"github.com/edgepipe/edgepipe/internal/testbroker"
	_ "github.com/edgepipe/edgepipe/plugins/inputs/synthetic"
	_ "github.com/edgepipe/edgepipe/plugins/outputs/mqtt"
	_ "github.com/edgepipe/edgepipe/plugins/processors/alarm"
	_ "github.com/edgepipe/edgepipe/plugins/processors/template"
)

// gateway is a real pipeline (synthetic inputs, an alarm rule, the MQTT
// output to an in-process broker) with the console served over HTTP on
// loopback, wired the way `edgepipe run` wires it.
type gateway struct {
	t       *testing.T
	a       *agent.Agent
	c       *Console
	mon     *monitor.Server
	url     string
	broker  *testbroker.Mochi
	running atomic.Pointer[config.Config]
	logs    *LogRing
	applied atomic.Int32
}

// gatewayDoc is the test configuration; %[1]s is the data directory,
// %[2]s the broker URL, %[3]s extra [agent] lines ([agent.console]).
const gatewayDoc = `[agent]
device_id = "GW-API"
data_dir = %[1]q
http_listen = "127.0.0.1:0"
%[3]s
[[inputs.synthetic]]
device = "rw"
points = 2
type = "int"
pattern = "constant"
access = "pubsub"
interval = "50ms"
[[inputs.synthetic]]
device = "ro"
points = 1
type = "int"
pattern = "counter"
interval = "50ms"
[[processors.alarm]]
  [[processors.alarm.rules]]
  name = "rw_high"
  point = "rw.p0"
  condition = "value > 100"
  level = "warning"
  message = "rw.p0 at ${value}"
[[outputs.mqtt]]
alias = "cloud"
servers = [%[2]q]
buffer = "memory"
username = "${API_TEST_USER}"
password = "hunter2-secret"
`

func (g *gateway) doc(console string) string {
	return fmt.Sprintf(gatewayDoc, g.t.TempDir(), g.broker.URL(), console)
}

func startGateway(t *testing.T, console string) *gateway {
	t.Helper()
	t.Setenv("API_TEST_USER", "edge-user")
	g := &gateway{t: t, broker: testbroker.StartMochi(t, testbroker.MochiOptions{}), logs: NewLogRing(100)}
	cfg, err := config.Parse("gw.toml", []byte(g.doc(console)), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	g.running.Store(cfg)
	log := slog.New(g.logs.Handler(slog.NewTextHandler(io.Discard, nil)))
	live := NewLive()
	g.a = agent.New(cfg, agent.Options{Logger: log, Observer: live})
	if err := g.a.Open(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	g.a.Start()
	check := func(ctx context.Context, text []byte) (*config.Config, error) {
		next, err := config.Parse("gw.toml", text, os.LookupEnv)
		if next == nil {
			return nil, err
		}
		all := next.Collate(err, g.a.Validate(ctx, next))
		if all != nil {
			return nil, all
		}
		return next, nil
	}
	g.c = New(Options{Agent: g.a, Live: live, Logs: g.logs, Running: g.running.Load, Version: "test", Logger: log,
		CheckConfig: func(ctx context.Context, text []byte) error { _, err := check(ctx, text); return err },
		ApplyConfig: func(ctx context.Context, text []byte) error {
			next, err := check(ctx, text)
			if err != nil {
				return err
			}
			if err := g.a.Apply(ctx, next); err != nil {
				return err
			}
			g.running.Store(next)
			g.applied.Add(1)
			return nil
		}})
	g.mon, err = monitor.Serve(monitor.Config{Addr: "127.0.0.1:0", Source: g.a, Console: g.c, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	g.url = "http://" + g.mon.Addr()
	t.Cleanup(func() {
		g.mon.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		g.a.Stop(ctx)
	})
	return g
}

// client is an HTTP client with its own cookie jar and headers.
type client struct {
	t       *testing.T
	base    string
	http    *http.Client
	headers map[string]string
}

func (g *gateway) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: g.t, base: g.url, http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		headers: map[string]string{}}
}

// do sends a request and returns the status and the body.
func (c *client) do(method, path, contentType, body string) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, b
}

func (c *client) get(path string) (int, []byte) { return c.do("GET", path, "", "") }
func (c *client) post(path, body string) (int, []byte) {
	return c.do("POST", path, "application/json", body)
}

// decode parses a JSON body, failing the test on a body that is not JSON.
func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, b)
	}
	return m
}

// want checks a status and that the body is JSON; it returns the body.
func want(t *testing.T, what string, status int, b []byte, wantStatus int) map[string]any {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("%s: status %d, want %d: %s", what, status, wantStatus, b)
	}
	return decode(t, b)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// point finds a point of GET points.
func point(t *testing.T, c *client, name string) map[string]any {
	t.Helper()
	st, b := c.get("/api/v1/points")
	m := want(t, "GET points", st, b, 200)
	for _, p := range m["points"].([]any) {
		if p := p.(map[string]any); p["name"] == name {
			return p
		}
	}
	t.Fatalf("no point %s in %s", name, b)
	return nil
}
