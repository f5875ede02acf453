package isolate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	_ "github.com/edgepipe/edgepipe/plugins/inputs/synthetic"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/grpcplugin"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

func TestMain(m *testing.M) {
	if os.Getenv("EDGEPIPE_TEST_PROTOCOL") == "0" {
		grpcplugin.Handshake.ProtocolVersion = 0 // play a plugin built against an older SDK
	}
	if os.Getenv("EDGEPIPE_TEST_ORPHAN") != "" {
		// Play a plugin whose gateway is gone: the parent pid it was
		// started under is not its parent any more.
		watchParent(os.Getppid()+1, 20*time.Millisecond)
	}
	if os.Getenv("EDGEPIPE_TEST_NO_SESSION_SOCKET") != "" {
		// Play a plugin of an SDK without the session socket: it never
		// greets on the descriptor it inherited.
		os.Unsetenv(grpcplugin.SessionFDEnv)
	}
	MaybeServe()
	os.Exit(m.Run())
}

func selfSpec(t *testing.T, name string) Spec {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Spec{Name: "test", Command: exe, Args: []string{ServeArg, name}}
}

// startInit starts spec's plugin process and initialises it with config;
// the process ends with the test.
func startInit(t *testing.T, spec Spec, config string) *Supervised {
	t.Helper()
	s, err := Start(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	if _, err := s.Init(context.Background(), sdktest.Request(config)); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOlderProtocolIsRefusedNamingBothVersions(t *testing.T) {
	t.Setenv("EDGEPIPE_TEST_PROTOCOL", "0")
	_, err := Start(selfSpec(t, "inputs.synthetic"))
	if err == nil || !strings.Contains(err.Error(), "Plugin version: 0") || !strings.Contains(err.Error(), fmt.Sprintf("Client versions: [%d]", sdk.ProtocolVersion)) {
		t.Fatalf("got %v", err)
	}
}

func TestSupervisedPluginServesCalls(t *testing.T) {
	s := startInit(t, selfSpec(t, "inputs.synthetic"), "points = 2\n")
	if !s.Caps().Write || s.Caps().Stream {
		t.Fatalf("caps %+v", s.Caps())
	}
	f, err := s.Gather(context.Background())
	if err != nil || f.NumPoints() != 2 || s.Pid() == os.Getpid() || s.Pid() == 0 {
		t.Fatalf("gather: %v %d points pid %d", err, f.NumPoints(), s.Pid())
	}
	if !s.SessionSocket() {
		t.Fatal("the session does not run on its socket")
	}
}

// A plugin that does not greet on the session socket (an older SDK, a
// plugin in another language) is served as before: on gRPC.
func TestPluginWithoutSessionSocketIsServedOnGRPC(t *testing.T) {
	t.Setenv("EDGEPIPE_TEST_NO_SESSION_SOCKET", "1")
	s, err := Start(selfSpec(t, "inputs.synthetic"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if s.SessionSocket() {
		t.Fatal("took a socket the plugin never greeted on")
	}
	if _, err := s.Init(context.Background(), sdktest.Request("points = 3\n")); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if f, err := s.Gather(context.Background()); err != nil || f.NumPoints() != 3 {
			t.Fatalf("gather: %v %v", f, err)
		}
	}
}

func TestMissingExecutableIsAClearError(t *testing.T) {
	_, err := Start(Spec{Name: "x", Command: "/nonexistent/plugin"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/plugin") {
		t.Fatalf("got %v", err)
	}
}

// The plugin side's second guard: a plugin process whose parent changed
// (the gateway died and it was re-parented) exits by itself.
func TestOrphanedPluginExitsByItself(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "EDGEPIPE_TEST_ORPHAN=1")
	out := make(chan error, 1)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { out <- cmd.Wait() }()
	select {
	case err := <-out:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(stderr.String(), "is gone; exiting") {
			t.Fatalf("orphan exited with %v, stderr %q; want exit 2 saying the gateway is gone", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("an orphaned plugin process did not exit by itself")
	}
}
