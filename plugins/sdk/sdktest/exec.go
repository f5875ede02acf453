package sdktest

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/grpcplugin"
)

// Exec starts a plugin executable the way the gateway starts an
// [[inputs.external]] (go-plugin, the SDK's handshake and gRPC options) and
// returns the host-side client, to test the built binary end to end: that
// it starts, answers the handshake of this SDK version, serves the kind it
// claims (sdk.KindsOf after Init) and survives the wire, the calls of every
// poll on the session socket when the plugin greets on it, as the gateway
// passes one. The plugin's log
// records at info level and above appear in the test's log. The process is
// killed at test end.
func Exec(t testing.TB, command string, args ...string) grpcplugin.Client {
	t.Helper()
	cmd := exec.Command(command, args...)
	sess := grpcplugin.NewSessionSocket()
	defer sess.Close()
	sess.Pass(cmd)
	c := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  *grpcplugin.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{sdk.ProtocolVersion: grpcplugin.PluginSet()},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCDialOptions:  grpcplugin.DialOptions(),
		Logger: hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Info,
			Output: testWriter{t}, DisableTime: true}),
		StartTimeout: time.Minute,
	})
	t.Cleanup(c.Kill)
	rc, err := c.Client()
	if err != nil {
		t.Fatalf("sdktest: start %s: %v", command, err)
	}
	raw, err := rc.Dispense(grpcplugin.PluginName)
	if err != nil {
		t.Fatalf("sdktest: %s: %v", command, err)
	}
	g, ok := raw.(grpcplugin.Client)
	if !ok {
		t.Fatalf("sdktest: %s: unexpected client %T", command, raw)
	}
	sess.Use(g)
	return g
}

// testWriter sends go-plugin's log lines to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
