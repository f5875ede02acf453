package main

import (
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Under systemd (Type=notify, WatchdogSec) the gateway says READY=1 once
// it runs, then WATCHDOG=1 while its pipeline makes progress, and
// STOPPING=1 on SIGTERM.
func TestRunNotifiesSystemdReadyAndFeedsTheWatchdog(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	path := writeConfig(t, "[agent]\ndevice_id = \"GW-1\"\nhttp_listen = \"\"\ndata_dir = \""+dir+"\"\n[[inputs.synthetic]]\ninterval = \"50ms\"\n")
	cmd := edgepipe("run", "--config", path)
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=300000")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	seen := map[string]bool{}
	var order []string
	buf := make([]byte, 4096)
	read := func(want string) {
		t.Helper()
		for !seen[want] {
			if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
				t.Fatal(err)
			}
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("waiting for %s (got %q): %v\n%s", want, order, err, stderr.String())
			}
			for _, l := range strings.Split(string(buf[:n]), "\n") {
				if l != "" {
					seen[l] = true
					order = append(order, l)
				}
			}
		}
	}
	read("READY=1")
	read("WATCHDOG=1")
	if order[0] != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", order[0])
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	read("STOPPING=1")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run after SIGTERM: %v\n%s", err, stderr.String())
	}
}
