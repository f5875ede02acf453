package opcua_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/inputs/opcua"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

func factory() sdk.Plugin { return &opcua.OPCUA{} }

// nodeOPCUA finds the node-opcua module: $EDGEPIPE_NODE_OPCUA, or where
// .ci/run installs it ($HOME/.cache/edgepipe-npm-opcua). Tests that need
// it skip without it.
func nodeOPCUA(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: the OPC UA tests run against node-opcua (see .ci/run)")
	}
	dir := os.Getenv("EDGEPIPE_NODE_OPCUA")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "edgepipe-npm-opcua", "node_modules", "node-opcua")
	}
	if _, err := os.Stat(filepath.Join(dir, "package.json")); err != nil {
		t.Skipf("node-opcua not found at %s (set EDGEPIPE_NODE_OPCUA, or run `npm install --prefix $HOME/.cache/edgepipe-npm-opcua node-opcua` as .ci/run does)", dir)
	}
	return dir
}

// freePort finds a free loopback port for a server (and its restart).
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// server is a node-opcua process running testdata/server.js.
type server struct {
	port     int
	env      []string
	cmd      *exec.Cmd
	stderr   *bytes.Buffer
	stdin    io.WriteCloser
	exited   chan struct{}
	Endpoint string
}

// startServer starts testdata/server.js on a free port for one test and
// waits until it serves; it is killed at test end.
func startServer(t testing.TB, env ...string) *server {
	t.Helper()
	s, err := launch(nodeOPCUA(t), env...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.kill)
	return s
}

// The tests that leave the server as they found it share one server
// (started on first use, killed by TestMain): starting node-opcua takes
// seconds.
var shared struct {
	once sync.Once
	s    *server
	err  error
}

func sharedServer(t testing.TB) *server {
	t.Helper()
	mod := nodeOPCUA(t)
	shared.once.Do(func() { shared.s, shared.err = launch(mod, "OPCUA_USER=operator", "OPCUA_PASSWORD=s3cret") })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.s
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.s != nil {
		shared.s.kill()
	}
	os.Exit(code)
}

func launch(mod string, env ...string) (*server, error) {
	home, _ := os.UserHomeDir()
	pki := filepath.Join(home, ".cache", "edgepipe-npm-opcua", "pki") // kept: the server's certificate is made once
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{port: port, env: append([]string{"NODE_OPCUA=" + mod, "OPCUA_PKI=" + pki}, env...)}
	s.Endpoint = fmt.Sprintf("opc.tcp://127.0.0.1:%d/edgepipe", s.port)
	return s, s.start()
}

// start runs the server (again, on the same port) and waits until it
// serves.
func (s *server) start() error {
	cmd := exec.Command("node", "testdata/server.js")
	cmd.Env = append(os.Environ(), append(s.env, fmt.Sprintf("OPCUA_PORT=%d", s.port))...)
	s.stderr = &bytes.Buffer{}
	cmd.Stderr = s.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	// Held open, never written: the server exits when it closes, that is
	// when this test process ends, however it ends.
	if s.stdin, err = cmd.StdinPipe(); err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY ") && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	exited := s.exited
	go func() { _ = cmd.Wait(); close(exited) }()
	select {
	case ok := <-ready:
		if !ok {
			<-exited
			return fmt.Errorf("node-opcua server exited before serving: %s", s.stderr.String())
		}
	case <-time.After(90 * time.Second):
		s.kill()
		return fmt.Errorf("node-opcua server did not start in 90 s: %s", s.stderr.String())
	}
	return nil
}

// kill stops the server at once (SIGKILL: a crash, not a clean shutdown).
func (s *server) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

// streamer runs a plugin's Stream and collects its batches.
type streamer struct {
	mu      sync.Mutex
	batches []sdk.Batch
	notify  chan struct{}
	cancel  context.CancelFunc
	done    chan error
}

func stream(t *testing.T, p sdk.Plugin) *streamer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &streamer{notify: make(chan struct{}, 1), cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- p.(sdk.StreamingInput).Stream(ctx, func(f *sdk.Frame) {
			r.mu.Lock()
			r.batches = append(r.batches, f.Batches...)
			r.mu.Unlock()
			select {
			case r.notify <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(20 * time.Second):
			t.Error("Stream did not return after its context ended")
		}
	})
	return r
}

// waitFor waits (generously) for a batch, among those from position from
// on, that satisfies cond, and returns it with the position after it.
func (r *streamer) waitFor(t *testing.T, from int, what string, cond func(b sdk.Batch) bool) (sdk.Batch, int) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		r.mu.Lock()
		for i := from; i < len(r.batches); i++ {
			if cond(r.batches[i]) {
				b := r.batches[i]
				r.mu.Unlock()
				return b, i + 1
			}
		}
		from = len(r.batches)
		r.mu.Unlock()
		select {
		case <-r.notify:
		case <-deadline:
			r.mu.Lock()
			n := len(r.batches)
			var last sdk.Batch
			if n > 0 {
				last = r.batches[n-1]
			}
			r.mu.Unlock()
			t.Fatalf("no batch with %s within 60 s (%d batches; last %+v)", what, n, last)
		}
	}
}

func byName(b sdk.Batch) map[string]sdk.Point {
	m := map[string]sdk.Point{}
	for _, p := range b.Points {
		m[p.Name] = p
	}
	return m
}

// allGood reports a batch of want points, all good.
func allGood(want int) func(b sdk.Batch) bool {
	return func(b sdk.Batch) bool {
		if len(b.Points) != want {
			return false
		}
		for _, p := range b.Points {
			if p.Quality != sdk.QualityGood {
				return false
			}
		}
		return true
	}
}

// pointIs matches a batch where the named point has quality q.
func pointIs(name string, q sdk.Quality) func(b sdk.Batch) bool {
	return func(b sdk.Batch) bool {
		p, ok := byName(b)[name]
		return ok && p.Quality == q
	}
}

func initReq(t *testing.T, p sdk.Plugin, conf string, dataDir string) *sdk.InitResponse {
	t.Helper()
	req := sdktest.Request(conf)
	req.Agent.DataDir = dataDir
	req.Alias = "inputs.opcua#1"
	resp, err := p.Init(context.Background(), req)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return resp
}
