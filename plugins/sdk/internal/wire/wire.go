// Package wire is the part of the gRPC transport that both sides share
// and that names no SDK type: the handshake, the connection options, and
// the hooks through which package grpcplugin reaches the adapters.
//
// The adapters themselves live in package sdk, unexported: sdk.Serve must
// serve a plugin without importing a package that imports sdk, and the
// converters read Value's unexported representation. Package sdk fills the
// hooks in its init, so they are set before any importer of grpcplugin
// (which imports sdk) can call them.
package wire

import (
	"net"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"
)

// PluginName is the single name a plugin process serves under.
const PluginName = "plugin"

// Handshake guards against running a plugin binary by hand (it prints a
// note and exits) and against mixing protocol versions. Package sdk sets
// its ProtocolVersion (sdk.ProtocolVersion, whose owner it is) in its
// init. It is a variable so that a test can play a plugin of another
// version.
var Handshake = plugin.HandshakeConfig{
	MagicCookieKey:   "EDGEPIPE_PLUGIN",
	MagicCookieValue: "d6f1c0a4-edgepipe-plugin-v1",
}

// MaxMessageBytes bounds one gRPC message both ways: large enough for a
// camera picture of several MB and a poll of thousands of points.
const MaxMessageBytes = 64 << 20

// LogLineBytes bounds one line a plugin of this SDK writes to its stderr,
// its newline included: the SDK's log handler cuts a longer record down
// (package sdk, loglimit.go), so the host reads a built-in plugin's log
// with a buffer of this size (go-plugin's PluginLogBufferSize) instead of
// go-plugin's 64 KB, which it holds for as long as the plugin runs: 180 KB
// of the isolated gateway's heap over three plugins. A line longer than
// the host's buffer would reach its log in pieces at debug level.
const LogLineBytes = 4 << 10

// ServerOptions and DialOptions carry the message size limit; production and
// the conformance tests use the same ones.
//
// The window and buffer sizes: the calls of every poll travel on the
// session socket (package sdk's rawsession.go), so gRPC carries Init,
// writes, health, commands and streams, and a Session only for a plugin of
// an SDK without the socket. Its buffers are gRPC's defaults (32 KB each
// way): 256 KB of write buffer and 64 KB of read buffer, which made a
// poll's ~80 KB cross in one or two system calls when every poll went
// through gRPC, sat in every connection end's heap (the read buffer) or
// in the pool behind it (the write buffer) for calls that no longer come.
// The window stays large: a 1000-point batch of a streaming input, or a
// fallback Session, crosses without waiting for window updates. A call to a
// plugin is never retried by gRPC (the supervisor restarts a dead process
// and retries itself), so the client keeps no replay buffer. The codec and the
// buffer pool are those of pool.go: protobuf on the wire as with gRPC's
// defaults (a peer built with an older SDK interoperates), without
// clearing a 1 MB buffer per message.
func ServerOptions() []grpc.ServerOption { return ServerOptionsFor(false) }

// ServerOptionsFor leaves the transport credentials to go-plugin when it
// serves TLS (the host asked for AutoMTLS): quietCreds would replace them.
func ServerOptionsFor(tls bool) []grpc.ServerOption {
	opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.InitialWindowSize(windowBytes), grpc.InitialConnWindowSize(windowBytes),
		grpc.ReadBufferSize(readBufferBytes), grpc.WriteBufferSize(bufferBytes),
		grpc.ForceServerCodecV2(codec{}), experimental.BufferPool(pool),
		grpc.NumStreamWorkers(streamWorkers),
		grpc.ChainUnaryInterceptor(fenceUnary), grpc.ChainStreamInterceptor(fenceStream)}
	if !tls {
		opts = append(opts, grpc.Creds(newQuietCreds()))
	}
	return opts
}

func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes),
		grpc.ForceCodecV2(codec{})),
		grpc.WithInitialWindowSize(windowBytes), grpc.WithInitialConnWindowSize(windowBytes),
		grpc.WithReadBufferSize(readBufferBytes), grpc.WithWriteBufferSize(bufferBytes),
		experimental.WithBufferPool(pool), grpc.WithDisableRetry(),
		grpc.WithTransportCredentials(newQuietCreds())}
}

// CallCodec makes one call use the codec of pool.go whatever the
// connection's options: the SDK's client passes its hand-written messages
// (Marshaler, Unmarshaler), which gRPC's default codec refuses, also over
// a connection dialled without DialOptions.
var CallCodec = grpc.ForceCodecV2(codec{})

const (
	windowBytes     = 8 << 20
	bufferBytes     = 32 << 10
	readBufferBytes = 32 << 10
	// streamWorkers serve the calls of a plugin process from goroutines
	// that live on, instead of a new goroutine per call whose stack grows
	// (and is copied) again on every call: one for the Session stream,
	// one for a long stream (Stream, Commands), one for the unary calls
	// beside them. Beyond them gRPC starts a goroutine per call, as
	// without workers.
	streamWorkers = 3
)

// Hooks set by package sdk's init. impl is an sdk.Plugin; NewClient
// returns the host-side client, which grpcplugin asserts to its Client.
var (
	NewClient      func(cc grpc.ClientConnInterface) any
	RegisterServer func(s *grpc.Server, impl any) any // returns the server, for ServeSession
	// ServeSession serves the Session of server (RegisterServer's) on c,
	// the plugin's end of a session socket that has greeted, until c ends.
	ServeSession func(server any, c net.Conn)
	PluginSet    func() plugin.PluginSet
)
