package sdk

import (
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/edgepipe/edgepipe/plugins/sdk/internal/wire"
)

// ProtocolVersion is the version of the plugin wire protocol. Raise it on
// any incompatible change of proto/edgepipe.proto; go-plugin then refuses a
// plugin built against another version with a message naming both.
const ProtocolVersion = 2

func init() {
	// The hooks through which package grpcplugin, the host side of the
	// transport, reaches the adapters (see package wire for why they live
	// here).
	wire.Handshake.ProtocolVersion = ProtocolVersion
	wire.NewClient = func(cc grpc.ClientConnInterface) any { return newGRPCClient(cc) }
	wire.RegisterServer = func(s *grpc.Server, impl any) any { return registerServer(s, impl.(Plugin)) }
	wire.ServeSession = func(server any, c net.Conn) { go server.(*grpcServer).serveRawSession(c) }
	wire.PluginSet = func() plugin.PluginSet { return plugin.PluginSet{wire.PluginName: &grpcPlugin{}} }
}

// Serve runs a plugin executable: call it from main with the plugin's
// factory. It returns when the host closes the plugin. Logs written with
// log/slog reach the host's log with their level.
func Serve(factory func() Plugin) {
	slog.SetDefault(slog.New(newPluginLogHandler(os.Stderr)))
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: wire.Handshake,
		Plugins:         plugin.PluginSet{wire.PluginName: &grpcPlugin{Factory: factory}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			// go-plugin serves TLS when the host asked for AutoMTLS (it
			// then passes the client's certificate in this variable).
			tls := os.Getenv("PLUGIN_CLIENT_CERT") != ""
			return grpc.NewServer(append(opts, wire.ServerOptionsFor(tls)...)...)
		},
	})
}

// newPluginLogHandler writes slog records as the JSON lines go-plugin's
// host understands, so a plugin's warnings stay warnings in the gateway's
// log: @level is one of hclog's names, @message the message, and
// @timestamp has exactly the layout go-plugin parses (microseconds, zone
// offset). A line go-plugin cannot parse is not an error there: it is
// logged verbatim at debug level, so every record of the plugin would
// vanish at the gateway's usual info level; for the same reason no line
// is longer than wire.LogLineBytes (lineLimitWriter).
func newPluginLogHandler(w io.Writer) slog.Handler {
	return slog.NewJSONHandler(lineLimitWriter{w}, &slog.HandlerOptions{
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
