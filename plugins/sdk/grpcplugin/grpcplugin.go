// Package grpcplugin is the host side of the transport between the gateway
// and a plugin in its own process: hashicorp/go-plugin's handshake and
// plugin set, the gRPC options, and the client that makes a remote plugin
// look like a local one. The gateway (core/isolate) and package sdktest
// use it; a plugin author does not: sdk.Serve is the plugin side.
//
// The adapters behind these names are unexported in package sdk, which
// serves them from sdk.Serve and converts its values for the wire; this
// package only exposes what a host needs.
package grpcplugin

import (
	"fmt"
	"net"
	"os"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/internal/wire"
)

// Client is the host's view of a plugin in another process. It implements
// every plugin interface; calls the remote plugin does not support fail
// with codes.Unimplemented, and Caps tells which are real (sdk.CapsOf and
// sdk.KindsOf ask it).
type Client interface {
	sdk.Input
	sdk.StreamingInput
	sdk.Writer
	sdk.Processor
	sdk.Output
	sdk.CommandSource
	sdk.HealthReporter
	sdk.CommandHandler
	// FrameReleaser: a frame Gather returned, given back, lends its
	// points to the next frame decoded.
	sdk.FrameReleaser
	// Caps is what the remote plugin can do, learnt in Init.
	Caps() sdk.Caps
	// Kinds are the roles the remote plugin serves, learnt in Init
	// (known is false for a plugin of an SDK that did not say).
	Kinds() (kinds []sdk.PluginKind, known bool)
}

// NewClient wraps a connection to a plugin server (RegisterServer).
func NewClient(cc grpc.ClientConnInterface) Client {
	return wire.NewClient(cc).(Client)
}

// RegisterServer serves impl on s, as sdk.Serve does in a plugin process.
func RegisterServer(s *grpc.Server, impl sdk.Plugin) {
	wire.RegisterServer(s, impl)
}

// RegisterServerWithSession serves impl on s and its Session on plugin,
// the plugin's end of a SessionPair, as sdk.Serve does in a plugin process
// that inherited one: it greets on plugin first, so a UseSessionSocket on
// the host's end after this returns takes the socket.
func RegisterServerWithSession(s *grpc.Server, impl sdk.Plugin, plugin net.Conn) error {
	srv := wire.RegisterServer(s, impl)
	if _, err := plugin.Write([]byte(wire.SessionHello)); err != nil {
		return err
	}
	wire.ServeSession(srv, plugin)
	return nil
}

// PluginName is the single name a plugin process serves under: Dispense
// it from go-plugin's client and assert the result to Client.
const PluginName = wire.PluginName

// Handshake is the go-plugin handshake of this SDK's protocol version. It
// points to the one Serve uses, so that a test changing it plays a plugin
// of another version on both sides.
var Handshake = &wire.Handshake

// PluginSet is what the host hands go-plugin to dispense a Client.
func PluginSet() plugin.PluginSet { return wire.PluginSet() }

// MaxMessageBytes bounds one gRPC message both ways: large enough for a
// camera picture of several MB and a poll of thousands of points.
const MaxMessageBytes = wire.MaxMessageBytes

// ServerOptions and DialOptions carry the message size limit and the
// window sizes that Serve uses; production and the conformance tests use
// the same ones.
func ServerOptions() []grpc.ServerOption { return wire.ServerOptions() }

func DialOptions() []grpc.DialOption { return wire.DialOptions() }

// SessionPair makes the socket pair on which a plugin process started
// next serves its Session (the calls of every poll) instead of on gRPC:
// pass child to the process as an inherited file and name its descriptor
// in the environment variable sdk.SessionFDEnv (3 for the first of
// exec.Cmd.ExtraFiles); close child in this process once the process has
// started, and give host to UseSessionSocket once the handshake is done.
func SessionPair() (host net.Conn, child *os.File, err error) { return wire.SessionPair() }

// SessionFDEnv names the environment variable that tells a plugin process
// which inherited file descriptor is its session socket.
const SessionFDEnv = wire.SessionFDEnv

// UseSessionSocket makes c's Session run on host, the host's end of a
// SessionPair whose other end the plugin process inherited, when the
// plugin greeted on it (an SDK that knows the socket); otherwise it closes
// host and the Session stays on gRPC. It reports which. Call it after the
// go-plugin handshake, before the first call.
func UseSessionSocket(c Client, host net.Conn) bool {
	u, ok := c.(interface{ UseSessionSocket(net.Conn) bool })
	if !ok {
		_ = host.Close()
		return false
	}
	return u.UseSessionSocket(host)
}

// IsTransportError reports whether err says the plugin process could not be
// reached (crashed, exited), as opposed to the plugin reporting a failure.
func IsTransportError(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.Unavailable
}

// IsPluginProcess reports whether this process was started by a host as a
// plugin (the handshake cookie is in the environment).
func IsPluginProcess() bool {
	return os.Getenv(wire.Handshake.MagicCookieKey) == wire.Handshake.MagicCookieValue
}

// ServeBuiltin serves the registered plugin fullName ("inputs.modbus"); the
// edgepipe binary re-executes itself this way to isolate a built-in.
func ServeBuiltin(fullName string) error {
	r, ok := sdk.Lookup(fullName)
	if !ok {
		return fmt.Errorf("no built-in plugin %q", fullName)
	}
	sdk.Serve(r.Factory)
	return nil
}
