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

// LogLineBytes is the longest line, its newline included, that a plugin
// of this SDK writes to its stderr: the host may read such a plugin's log
// with a buffer this size (wire.LogLineBytes).
const LogLineBytes = wire.LogLineBytes

// ServerOptions and DialOptions carry the message size limit and the
// window sizes that Serve uses; production and the conformance tests use
// the same ones.
func ServerOptions() []grpc.ServerOption { return wire.ServerOptions() }

func DialOptions() []grpc.DialOption { return wire.DialOptions() }

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
