// Package sdk is what an edgepipe plugin is written against: the
// interfaces of inputs, processors and outputs, the values that flow
// between them, configuration decoding with file lines, and Serve, which
// turns a plugin into an executable the gateway runs in its own process.
// The built-in plugins use exactly this API; a third-party plugin is a Go
// module of its own that imports this package (and sdktest in its tests)
// and nothing else of edgepipe (see examples/hostinfo, an input, and
// examples/smooth, a processor).
//
// # Pipeline
//
// An input reads a device and returns a Frame: Batches of typed Points of
// one device each, read together. Processors transform each frame in
// configuration order (filter points, add Alarms, render Messages). Outputs
// receive the rendered Messages. The gateway (the "core") owns everything
// between plugins: scheduling, the chain, one store-and-forward queue per
// output, the point registry that checks writes from the server, restarts.
//
// # Lifecycle
//
// The same for a built-in in the gateway's process and for a plugin in its
// own:
//
//  1. new: the factory given to Serve (or Register) returns a zero plugin.
//     Do no I/O here.
//  2. Init(ctx, req): decode req.Config with DecodeConfig, validate it, and
//     return every mistake as ConfigErrors (ConfigSource.Errorf places each
//     at its line); `edgepipe check` prints them as FILE:LINE: message.
//     Open nothing slow: Init also runs for `check`. Name a key that holds
//     a secret password, passphrase, secret, token or key, or end its name
//     so (api_token, tls_key): the gateway then never quotes its value in
//     an error, even one of yours that quotes it. An input returns the
//     points it offers (InitResponse.Points) and the interval it wants;
//     processors and outputs receive every input's points in req.Points,
//     to check the names they are configured with.
//  3. Calls: Gather (polled inputs), Stream (streaming inputs, runs until
//     its context ends), Process (processors), Publish (outputs). The main
//     calls are never concurrent with each other on one instance; Write,
//     Commands and Stream run beside them, and Health may be asked at any
//     time. HandleCommand is never concurrent with Process.
//  4. Close: release connections. Called once, also after a failed Init.
//
// # Interfaces
//
// A plugin is a Plugin (Init, Close) plus the main call of its kind:
//
//   - Input: Gather, polled every interval; StreamingInput: Stream, for
//     devices that talk on their own. A reading that failed is a Point
//     with QualityBad, not a missing point; an error return means nothing
//     could be read at all.
//   - Processor: Process may change the frame in place and return it, or
//     return another; nil or an empty frame drops it.
//   - Output: Publish returns nil only once every message is confirmed (a
//     PUBACK at QoS 1); on error the core keeps the messages and offers
//     them again. This is the at-least-once promise.
//
// Optional abilities are one-method interfaces the core discovers with
// CapsOf: Writer (an input that accepts writes from the server, already
// checked against the point's schema), CommandSource (an output that
// receives the server's commands), CommandHandler (a processor that serves
// some, as the alarm processor serves acknowledgements), HealthReporter
// (OK, a reason, and counters that appear on /metrics). An input with
// field devices lists them in Health.Devices (up or down, the last error,
// the last good read): they appear in /healthz under "devices" and as
// edgepipe_device_up, and a dead one never fails /healthz.
//
// The kind a plugin serves is told to the gateway in the Init handshake
// (KindsOf): a processor binary configured as [[inputs.external]] is
// refused by `edgepipe check` with the table's line rather than failing
// every poll.
//
// # Values
//
// Value holds one typed reading without boxing: Bool, Int (signed, up to 64
// bits), Uint, Float, String. Report integer registers as Int or Uint, not
// Float: the core, alarm expressions and writes keep them exact. The
// PointSchema of each point says its Kind, its device type ("uint16"), its
// access (pub, sub, pubsub) and the bounds a write must respect.
//
// # State
//
// InitRequest.State is a small key/value store the core persists for the
// plugin across restarts (last reported values, raised alarms). Changes
// made during a call are saved by the core after it, also when the plugin
// runs in its own process. Keep it small and write it when something
// changes, not on every poll.
//
// # Serve
//
// A third-party plugin's main is one line:
//
//	func main() { sdk.Serve(func() sdk.Plugin { return &MyPlugin{} }) }
//
// and it is wired in with
//
//	[[inputs.external]]          # or processors / outputs
//	command = "/opt/edgepipe/plugins/my-plugin"
//	sha256 = "..."               # optional: refuse any other binary
//	[inputs.external.config]     # the plugin's own table, as req.Config
//	device = "x"
//
// The gateway starts the executable with hashicorp/go-plugin and talks gRPC
// to it over a local socket (the calls of every poll on one long-lived
// stream, protobuf written straight from and into the SDK's values; a
// plugin built with an SDK from before either is served the plain unary
// calls, with the same bytes); a crashed process is restarted with backoff and
// initialised again with the same configuration and state, and the rest of
// the pipeline keeps running. Started by hand, the binary prints a note and
// exits. Log with log/slog: Serve installs a handler that carries each
// record to the gateway's log at its own level, named by the plugin's
// alias. Text printed to stdout or stderr directly reaches the gateway's
// log at debug level at most: go-plugin owns both streams.
//
// # Testing
//
// Package sdktest runs a plugin's tests twice, in the test's process and
// through the real gRPC adapters (sdktest.Run), so that a value, error or
// state change that does not survive the wire fails the plugin's own tests.
// sdktest.Request builds an InitRequest from a configuration snippet,
// sdktest.Clock is a settable clock, and sdktest.Exec starts the built
// binary over go-plugin exactly as the gateway does. examples/smooth shows
// all three.
//
// # Versions
//
// ProtocolVersion is the version of the wire protocol between the gateway
// and a plugin process; `edgepipe version` prints it. Within one version
// the protocol only grows compatibly: a field added later is absent from a
// plugin built with an older SDK and the gateway falls back to the earlier
// behaviour (a plugin that does not report its kind is trusted to be the
// kind it is configured as). An incompatible change raises ProtocolVersion,
// and go-plugin then refuses to start a plugin built against another
// version with a message naming both: rebuild it against the edgepipe
// release that runs it. The Go API of this package follows edgepipe's
// releases.
//
// # What is here and what is not
//
// For plugin authors, this package: the interfaces (Plugin, Input,
// StreamingInput, Processor, Output and the optional Writer,
// CommandSource, CommandHandler, HealthReporter; CapsOf, KindsOf), the data
// types (Frame, Batch, Point, Value, Alarm, Picture, Request, Message,
// Command, PointSchema), DecodeConfig and ConfigErrors, State, Register
// and Lookup for built-ins, the errors (ErrNotMine, PartialError), the
// read-back context (ReadBackDevices) and Serve. Package fbox owns the
// FBox topics and payloads; package sdktest is for tests.
//
// Not for plugin authors: package grpcplugin is the host side of the
// transport (go-plugin's handshake and plugin set, the gRPC options, the
// client that makes a remote plugin look local), used by the gateway and
// sdktest; package pb is the generated wire code. The adapters behind them
// are unexported here because Serve needs the server side.
package sdk
