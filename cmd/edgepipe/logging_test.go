package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// log_format = "json" writes one JSON object per line; log_level changes on
// SIGHUP without a restart.
func TestRunLogsJSONAndAppliesLogLevelOnReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.toml")
	doc := func(level string) []byte {
		return []byte("[agent]\ndevice_id = \"GW-1\"\nhttp_listen = \"\"\nlog_format = \"json\"\nlog_level = \"" + level + "\"\ndata_dir = \"" + dir + "\"\n[[inputs.synthetic]]\ninterval = \"50ms\"\n")
	}
	if err := os.WriteFile(path, doc("warn"), 0o600); err != nil {
		t.Fatal(err)
	}
	// READY=1 on a notify socket says the signal handlers are in place.
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cmd := edgepipe("run", "--config", path)
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+sock)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	buf := make([]byte, 512)
	if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := conn.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "READY=1") {
		t.Fatalf("no READY=1: %v %q\n%s", err, buf[:n], stderr.String())
	}
	waitOutput := func(what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(stderr.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in:\n%s", what, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// At warn, a reload refused for a broken file is logged (error) while
	// "edgepipe running" (info) was not.
	if err := os.WriteFile(path, []byte("[agent\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitOutput("reload refused")
	if strings.Contains(stderr.String(), "edgepipe running") {
		t.Fatalf("info logged at log_level warn:\n%s", stderr.String())
	}
	if err := os.WriteFile(path, doc("info"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitOutput("configuration reloaded")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["msg"] == nil || m["level"] == nil {
			t.Errorf("not a JSON log line: %q", l)
		}
	}
}
