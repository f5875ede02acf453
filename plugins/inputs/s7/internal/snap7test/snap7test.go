// Package snap7test runs the snap7 S7 server (npm node-snap7, an
// independent S7 implementation) as a software PLC for tests, in a node
// process on a free loopback port.
//
// node-snap7 is looked for in $EDGEPIPE_NODE_MODULES, then in
// $HOME/.cache/edgepipe-npm/node_modules, where .ci/run installs it:
//
//	mkdir -p ~/.cache/edgepipe-npm && cd ~/.cache/edgepipe-npm && npm install node-snap7
//
// Tests skip, saying so, when node or node-snap7 is missing.
package snap7test

import (
	"bufio"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

//go:embed snap7server.js
var script []byte

// Area sizes the server registers (see snap7server.js).
const (
	DB1Size  = 1024
	DB2Size  = 64
	DB3Size  = 4096
	AreaSize = 256 // M, I and Q
)

// Server is a running snap7 server.
type Server struct {
	t       testing.TB
	modules string
	js      string
	port    int

	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	exited chan struct{}
}

// Modules returns the node_modules directory holding node-snap7, or a
// reason why there is none.
func Modules() (string, string) {
	if _, err := exec.LookPath("node"); err != nil {
		return "", "node is not installed"
	}
	dirs := []string{os.Getenv("EDGEPIPE_NODE_MODULES")}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".cache", "edgepipe-npm", "node_modules"))
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "node-snap7", "build", "Release", "node_snap7.node")); err == nil {
			return d, ""
		}
	}
	return "", "node-snap7 is not installed (set EDGEPIPE_NODE_MODULES, or run .ci/run which installs it in ~/.cache/edgepipe-npm)"
}

// Start starts a server on a free port and stops it at test end; it skips
// the test when node-snap7 is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	mods, why := Modules()
	if mods == "" {
		t.Skip("snap7 server: " + why)
	}
	js := filepath.Join(t.TempDir(), "snap7server.js")
	if err := os.WriteFile(js, script, 0o644); err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, modules: mods, js: js}
	s.start(0)
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start(port int) {
	s.t.Helper()
	args := []string{s.js}
	if port != 0 {
		args = append(args, strconv.Itoa(port))
	}
	cmd := exec.Command("node", args...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+s.modules)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	lines := bufio.NewScanner(out)
	ready := make(chan error, 1)
	var hello struct{ Port int }
	go func() {
		if !lines.Scan() {
			ready <- fmt.Errorf("snap7 server exited before listening")
			return
		}
		ready <- json.Unmarshal(lines.Bytes(), &hello)
	}()
	select {
	case err = <-ready:
	case <-time.After(30 * time.Second):
		err = fmt.Errorf("snap7 server did not start within 30 s")
	}
	if err != nil {
		_ = cmd.Process.Kill()
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.cmd, s.stdin, s.lines, s.exited, s.port = cmd, in, lines, exited, hello.Port
	s.mu.Unlock()
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// Stop kills the server (a PLC losing power: connections are reset).
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Restart kills the server and starts a fresh one (all memory zero) on the
// same port.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start(s.port)
}

func (s *Server) call(cmd map[string]any) map[string]any {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := json.Marshal(cmd)
	if _, err := s.stdin.Write(append(b, '\n')); err != nil {
		s.t.Fatalf("snap7 server: %v", err)
	}
	if !s.lines.Scan() {
		s.t.Fatalf("snap7 server: no answer to %s", b)
	}
	var r map[string]any
	if err := json.Unmarshal(s.lines.Bytes(), &r); err != nil || r["error"] != nil {
		s.t.Fatalf("snap7 server: %s -> %s (%v)", b, s.lines.Bytes(), err)
	}
	return r
}

// Set writes bytes into an area ("DB", "M", "I", "Q") of the server.
func (s *Server) Set(area string, db, start int, data []byte) {
	s.t.Helper()
	s.call(map[string]any{"op": "set", "area": area, "db": db, "start": start, "hex": hex.EncodeToString(data)})
}

// Get reads bytes of an area as the server holds them.
func (s *Server) Get(area string, db, start, size int) []byte {
	s.t.Helper()
	r := s.call(map[string]any{"op": "get", "area": area, "db": db, "start": start, "size": size})
	b, err := hex.DecodeString(fmt.Sprint(r["hex"]))
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

// Count makes the DWORD at start count up every 5 ms. Use an area the
// client does not write (DB2): the server's update could undo a write.
func (s *Server) Count(area string, db, start int) {
	s.t.Helper()
	s.call(map[string]any{"op": "count", "area": area, "db": db, "start": start})
}
