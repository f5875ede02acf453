package modbus_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests in this file read and write an independent Modbus
// implementation, pymodbus, rather than our own simulator: what both ends
// of a conversation agree on because one author wrote both is not proof.
// testdata/pymodbus_peer.py says how the peer is told what to serve; it
// encodes typed values (strings, half floats, BCD) with Python's own
// encoders.

var (
	pythonOnce sync.Once
	pythonPath string
)

// pymodbusPython finds a Python 3 that imports pymodbus: $EDGEPIPE_PYTHON,
// the system's (Debian's python3-pymodbus, which .ci/run installs; PyPI is
// out of reach here), then the first python3 on PATH.
func pymodbusPython() string {
	pythonOnce.Do(func() {
		for _, c := range []string{os.Getenv("EDGEPIPE_PYTHON"), "/usr/bin/python3", "python3"} {
			if c == "" {
				continue
			}
			if err := exec.Command(c, "-c", "import pymodbus.server.async_io").Run(); err == nil {
				pythonPath = c
				return
			}
		}
	})
	return pythonPath
}

// startPymodbus serves the given registers (see pymodbus_peer.py) and
// returns the URL to reach it: tcp://127.0.0.1:PORT, or rtuovertcp://...
// with rtu. The peer is stopped at test end. Without pymodbus the test
// is skipped, saying how to install it.
func startPymodbus(t testing.TB, rtu bool, regs ...string) string {
	t.Helper()
	py := pymodbusPython()
	if py == "" {
		t.Skip("pymodbus with the 3.0-3.6 server API (pymodbus.server.async_io) not found: apt-get install python3-pymodbus " +
			"(Debian 12's 3.0, as .ci/run does), or set EDGEPIPE_PYTHON to a python3 that has it")
	}
	script, err := filepath.Abs(filepath.Join("testdata", "pymodbus_peer.py"))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{script}
	scheme := "tcp"
	if rtu {
		args, scheme = append(args, "--rtu"), "rtuovertcp"
	}
	// The peer picks a free port by binding and releasing it; another
	// process may take it in between, so a peer that fails is started again.
	var lastErr string
	for range 3 {
		cmd := exec.Command(py, append(args, regs...)...)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		port := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if p, ok := strings.CutPrefix(sc.Text(), "PORT "); ok {
					port <- p
					break
				}
			}
			_, _ = io.Copy(io.Discard, stdout)
			close(port)
		}()
		stop := func() {
			stdin.Close() // the peer exits when its stdin closes
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
		select {
		case p, ok := <-port:
			if ok {
				t.Cleanup(stop)
				return fmt.Sprintf("%s://127.0.0.1:%s", scheme, p)
			}
		case <-time.After(30 * time.Second):
		}
		stop()
		lastErr = stderr.String()
	}
	t.Fatalf("pymodbus peer did not start: %s", lastErr)
	return ""
}
