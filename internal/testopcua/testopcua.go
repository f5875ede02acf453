// Package testopcua runs node-opcua (npm, pure JavaScript: an OPC UA
// server independent of the gopcua library the gateway is built on) with
// server.js, for the tests of inputs.opcua, the end-to-end tests and the
// demo's: one launcher, one server script.
//
// server.js holds one variable of every built-in type the plugin maps,
// under every NodeId form, a counter changing every 100 ms, writable and
// read-only nodes, an uncertain value, arrays, a matrix, a node without a
// value, username and certificate authentication and operation limits of
// 7 nodes (see the script for its environment variables).
package testopcua

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Module finds the node-opcua module: $EDGEPIPE_NODE_OPCUA, or where
// .ci/run installs it ($HOME/.cache/edgepipe-npm-opcua). Tests that need
// it skip without it, or without node.
func Module(t testing.TB) string {
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

// FreePort finds a free loopback port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Server is a node-opcua process running server.js.
type Server struct {
	Endpoint string // opc.tcp://127.0.0.1:PORT/edgepipe

	port   int
	env    []string
	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.WriteCloser // held, so that it is not collected and closed
	exited chan struct{}
}

// Start starts server.js on a free port for one test and waits until it
// serves; it is killed at test end. env adds OPCUA_* settings.
func Start(t testing.TB, env ...string) *Server {
	t.Helper()
	s, err := Launch(Module(t), env...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Kill)
	return s
}

// Launch starts server.js with the node-opcua module at mod, on a free
// port, and waits until it serves. The caller kills it.
func Launch(mod string, env ...string) (*Server, error) {
	home, _ := os.UserHomeDir()
	pki := filepath.Join(home, ".cache", "edgepipe-npm-opcua", "pki") // kept: the server's certificate is made once
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &Server{port: port, env: append([]string{"NODE_OPCUA=" + mod, "OPCUA_PKI=" + pki}, env...)}
	s.Endpoint = fmt.Sprintf("opc.tcp://127.0.0.1:%d/edgepipe", s.port)
	return s, s.Restart()
}

// script is server.js beside this file.
func script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "server.js")
}

// Restart runs the server (again, on the same port, after Kill) and waits
// until it serves.
func (s *Server) Restart() error {
	cmd := exec.Command("node", script())
	cmd.Env = append(os.Environ(), append(s.env, fmt.Sprintf("OPCUA_PORT=%d", s.port))...)
	stderr := &lockedWriter{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	// Held open, never written: the server exits when it closes, that is
	// when this test process ends, however it ends.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.exited, s.stdin = cmd, exited, stdin
	s.mu.Unlock()
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
	go func() { _ = cmd.Wait(); close(exited) }()
	select {
	case ok := <-ready:
		if !ok {
			<-exited
			return fmt.Errorf("node-opcua server exited before serving: %s", stderr.String())
		}
	case <-time.After(90 * time.Second):
		s.Kill()
		return fmt.Errorf("node-opcua server did not start in 90 s: %s", stderr.String())
	}
	return nil
}

// Kill stops the server at once (SIGKILL: a crash, not a clean shutdown).
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// lockedWriter is the server's stderr, written by exec's copier and read
// by an error.
type lockedWriter struct {
	mu sync.Mutex
	w  bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
