package sdk

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// ProtocolVersion is the version of the plugin wire protocol. Raise it on
// any incompatible change of proto/edgepipe.proto; go-plugin then refuses a
// plugin built against another version with a message naming both.
const ProtocolVersion = 2

// PluginName is the single name a plugin process serves under.
const PluginName = "plugin"

// Handshake guards against running a plugin binary by hand (it prints a
// note and exits) and against mixing protocol versions.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "EDGEPIPE_PLUGIN",
	MagicCookieValue: "d6f1c0a4-edgepipe-plugin-v1",
}

// PluginSet is what the host hands go-plugin to dispense a GRPCClient.
func PluginSet() plugin.PluginSet {
	return plugin.PluginSet{PluginName: &GRPCPlugin{}}
}

// Serve runs a plugin executable: call it from main with the plugin's
// factory. It returns when the host closes the plugin. Logs written with
// log/slog reach the host's log with their level.
func Serve(factory func() Plugin) {
	slog.SetDefault(slog.New(NewPluginLogHandler(os.Stderr)))
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{PluginName: &GRPCPlugin{Factory: factory}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, ServerOptions()...)...)
		},
	})
}

// ServeBuiltin serves the registered plugin fullName ("inputs.modbus"); the
// edgepipe binary re-executes itself this way to isolate a built-in.
func ServeBuiltin(fullName string) error {
	r, ok := Lookup(fullName)
	if !ok {
		return fmt.Errorf("no built-in plugin %q", fullName)
	}
	Serve(r.Factory)
	return nil
}

// IsPluginProcess reports whether this process was started by a host as a
// plugin (the handshake cookie is in the environment).
func IsPluginProcess() bool {
	return os.Getenv(Handshake.MagicCookieKey) == Handshake.MagicCookieValue
}

// NewPluginLogHandler writes slog records as the JSON lines go-plugin's
// host understands (@level, @message, @timestamp), so a plugin's warnings
// stay warnings in the gateway's log.
func NewPluginLogHandler(w *os.File) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.LevelKey:
				return slog.String("@level", strings.ToLower(a.Value.String()))
			case slog.MessageKey:
				return slog.Attr{Key: "@message", Value: a.Value}
			case slog.TimeKey:
				return slog.Attr{Key: "@timestamp", Value: a.Value}
			}
			return a
		},
	})
}
