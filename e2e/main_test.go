// Package e2e holds end-to-end tests: each builds nothing but uses the real
// edgepipe binary (built once in TestMain) as a child process, against real
// MQTT brokers (mosquitto as a child process when installed, mochi in the
// test process otherwise) and the Modbus simulator. See README.md.
package e2e

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testbroker"
)

var (
	// binPath is the edgepipe binary built by TestMain.
	binPath string
	// buildErr explains why there is no binary.
	buildErr error
	// shortSkip is set under -short: these tests start processes and
	// brokers and wait out broker outages.
	shortSkip bool
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		shortSkip = true
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "edgepipe-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	binPath, buildErr = build(dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles ./cmd/edgepipe from the module root into dir.
func build(dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "edgepipe")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/edgepipe")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/edgepipe: %v\n%s", err, out)
	}
	return bin, nil
}

// moduleRoot walks up from the working directory (the package's folder
// under go test) to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// needBinary skips under -short and fails when the build failed.
func needBinary(t *testing.T) {
	t.Helper()
	if shortSkip {
		t.Skip("e2e: skipped under -short (starts the edgepipe binary, brokers, and waits out outages)")
	}
	if buildErr != nil {
		t.Fatalf("e2e: could not build edgepipe: %v", buildErr)
	}
}

// syncBuffer is a bytes.Buffer safe for a child process's writer and the
// test reading at the same time.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// writeFile writes a file (a configuration) and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// httpAddr is a free loopback address for http_listen.
func httpAddr(t *testing.T) string {
	return "127.0.0.1:" + strconv.Itoa(testbroker.FreePort(t))
}

// runCmd runs edgepipe to completion (check, once) and returns its exit
// code, stdout and stderr.
func runCmd(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		code := 0
		if err != nil {
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatalf("edgepipe %v: %v", args, err)
			}
			code = ee.ExitCode()
		}
		return code, out.String(), errb.String()
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("edgepipe %v did not exit within 60s\nstdout:\n%s\nstderr:\n%s", args, out.String(), errb.String())
		return 0, "", ""
	}
}

// gateway is one `edgepipe run` process.
type gateway struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdout syncBuffer
	stderr syncBuffer
	http   string // http_listen address, "" if none
	done   chan struct{}
	err    error // Wait's result, valid after done
}

// startGateway starts `edgepipe run --config path`. httpListen is the
// address the configuration serves /healthz on ("" for none). The process
// is killed at test end if still running, and its output logged when the
// test failed.
func startGateway(t *testing.T, name, path, httpListen string, env ...string) *gateway {
	t.Helper()
	g := &gateway{t: t, name: name, http: httpListen, done: make(chan struct{})}
	g.cmd = exec.Command(binPath, "run", "--config", path)
	g.cmd.Env = append(os.Environ(), env...)
	g.cmd.Stdout, g.cmd.Stderr = &g.stdout, &g.stderr
	// Never outlive the test binary.
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start edgepipe: %v", err)
	}
	go func() {
		g.err = g.cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(func() {
		if g.running() {
			_ = g.cmd.Process.Kill()
			<-g.done
		}
		if t.Failed() {
			t.Logf("gateway %s stderr:\n%s", g.name, g.stderr.String())
		}
	})
	return g
}

func (g *gateway) running() bool {
	select {
	case <-g.done:
		return false
	default:
		return true
	}
}

// requireRunning fails the test when the process has exited.
func (g *gateway) requireRunning() {
	g.t.Helper()
	if !g.running() {
		g.t.Fatalf("gateway %s exited (%v); stderr:\n%s", g.name, g.err, g.stderr.String())
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (g *gateway) stop() {
	g.t.Helper()
	if !g.running() {
		return
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
		if g.err != nil {
			g.t.Errorf("gateway %s: exit after SIGTERM: %v", g.name, g.err)
		}
	case <-time.After(20 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.done
		g.t.Errorf("gateway %s did not stop within 20s of SIGTERM", g.name)
	}
}

// kill ends the process with SIGKILL (kill -9) and waits for it.
func (g *gateway) kill() {
	g.t.Helper()
	_ = g.cmd.Process.Kill()
	<-g.done
}

// hup sends SIGHUP (reload).
func (g *gateway) hup() {
	g.t.Helper()
	g.requireRunning()
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		g.t.Fatal(err)
	}
}

// waitLog waits until stderr contains s at least n times.
func (g *gateway) waitLog(s string, n int, timeout time.Duration) {
	g.t.Helper()
	waitFor(g.t, timeout, fmt.Sprintf("%d x %q in gateway %s's log", n, s, g.name), func() bool {
		g.requireRunning()
		return strings.Count(g.stderr.String(), s) >= n
	})
}

// health is the body of /healthz.
type health struct {
	OK      bool `json:"ok"`
	Plugins []struct {
		ID         string            `json:"id"`
		Plugin     string            `json:"plugin"`
		Kind       string            `json:"kind"`
		OK         bool              `json:"ok"`
		Reason     string            `json:"reason"`
		Counters   map[string]uint64 `json:"counters"`
		QueueDepth *int              `json:"queue_depth"`
	} `json:"plugins"`
}

// healthz fetches /healthz: status code, decoded body, raw body. A
// connection error gives code 0.
func (g *gateway) healthz() (int, health, string) {
	g.t.Helper()
	var h health
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + g.http + "/healthz")
	if err != nil {
		return 0, h, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &h); err != nil {
		g.t.Fatalf("/healthz: %v: %s", err, body)
	}
	return resp.StatusCode, h, string(body)
}

// get fetches another path of the monitor (e.g. /metrics).
func (g *gateway) get(path string) string {
	g.t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + g.http + path)
	if err != nil {
		g.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// output is the /healthz entry of the output with this id.
func (h health) output(id string) (ok bool, reason string, depth int, counters map[string]uint64, found bool) {
	for _, p := range h.Plugins {
		if p.ID == id {
			d := -1
			if p.QueueDepth != nil {
				d = *p.QueueDepth
			}
			return p.OK, p.Reason, d, p.Counters, true
		}
	}
	return false, "", -1, nil, false
}

// waitHealth polls /healthz until cond holds; it returns the last answer.
func (g *gateway) waitHealth(timeout time.Duration, what string, cond func(code int, h health) bool) (int, health, string) {
	g.t.Helper()
	var (
		code int
		h    health
		raw  string
	)
	deadline := time.Now().Add(timeout)
	for {
		g.requireRunning()
		code, h, raw = g.healthz()
		if code != 0 && cond(code, h) {
			return code, h, raw
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("timed out after %v waiting for %s; last /healthz (%d): %s", timeout, what, code, raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// queueDepth waits for /healthz and returns the output's queue depth.
func (g *gateway) queueDepth(output string) int {
	g.t.Helper()
	_, h, raw := g.waitHealth(10*time.Second, "/healthz", func(int, health) bool { return true })
	_, _, d, _, found := h.output(output)
	if !found {
		g.t.Fatalf("no output %q in /healthz: %s", output, raw)
	}
	return d
}

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
