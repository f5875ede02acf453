package sdk

import (
	"fmt"
	"io"
	"log/slog"
	"os"

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
// host understands, so a plugin's warnings stay warnings in the gateway's
// log: @level is one of hclog's names, @message the message, and
// @timestamp has exactly the layout go-plugin parses (microseconds, zone
// offset). A line go-plugin cannot parse is not an error there: it is
// logged verbatim at debug level, so every record of the plugin would
// vanish at the gateway's usual info level.
func NewPluginLogHandler(w io.Writer) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.LevelKey:
				lv, _ := a.Value.Any().(slog.Level)
				return slog.String("@level", hclogLevel(lv))
			case slog.MessageKey:
				return slog.Attr{Key: "@message", Value: a.Value}
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format(hostTimeLayout))
			}
			return a
		},
	})
}

// hostTimeLayout is the @timestamp layout go-plugin's host parses
// (go-plugin v1.8.0 log_entry.go); any other layout makes it drop the
// line's level.
const hostTimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// hclogLevel names a slog level as hclog does; slog's in-between levels
// ("WARN+2") round down to the named one below.
func hclogLevel(l slog.Level) string {
	switch {
	case l < slog.LevelDebug:
		return "trace"
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	default:
		return "error"
	}
}
