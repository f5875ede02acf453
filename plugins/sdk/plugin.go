package sdk

import (
	"context"
	"errors"
	"time"
)

// Plugin is what every plugin implements, beside the main call of its kind
// (Input, StreamingInput, Processor, Output). The lifecycle (new, Init,
// calls, Close) and which calls may run concurrently are described in the
// package documentation. Optional abilities are one-method interfaces
// (Writer, CommandSource, CommandHandler, HealthReporter) that the core
// discovers with CapsOf, for in-process plugins and gRPC clients alike.
type Plugin interface {
	Init(ctx context.Context, req *InitRequest) (*InitResponse, error)
	Close(ctx context.Context) error
}

// AgentInfo is the part of the [agent] table plugins may need.
type AgentInfo struct {
	DeviceID    string
	TopicPrefix string
	DataDir     string
	// MaxCommandSize is agent.max_command_size in bytes: an output refuses
	// larger commands unparsed (fbox.DefaultMaxCommandSize when 0).
	MaxCommandSize int64
	// Version is the gateway's version as its status says it ("1.2.3
	// (commit abc1234)"): an output that announces the gateway online
	// itself (its connect message) says the same; "" from a core that
	// does not tell.
	Version string
}

// InitRequest carries a plugin's configuration and context.
type InitRequest struct {
	// Config is the plugin's own TOML table as text: its header line is
	// blanked and its sub-table headers are relative ("[[devices]]"), so the
	// plugin decodes it into its own struct. Line 1 of Config is line Line of
	// File.
	Config []byte
	File   string
	Line   int
	// Name is the plugin's registered name ("inputs.modbus"), Alias its
	// configured alias or a generated one ("inputs.modbus#1").
	Name  string
	Alias string
	Agent AgentInfo
	// Points is the point registry (every input's schema); empty for
	// inputs, which are initialised first.
	Points []PointSchema
	// State is the plugin's small persisted state (last reported values,
	// raised alarms). Changes made through it are saved by the core.
	State State
}

// InitResponse tells the core what the plugin offers.
type InitResponse struct {
	Points []PointSchema // inputs: the points they report or accept writes for
	// Interval is how often a polled input wants Gather called (inputs
	// own their `interval` key). An input whose devices have different
	// intervals asks for the shortest and returns only the devices that are
	// due. Zero means the core's default of one second.
	Interval time.Duration
}

// Input is polled: the core calls Gather every interval, never overlapping
// two calls. A read that fails for some points returns their points with
// QualityBad; an error return means nothing could be read at all.
type Input interface {
	Plugin
	Gather(ctx context.Context) (*Frame, error)
}

// StreamingInput produces data on its own (a scale that talks by itself).
// Stream runs until ctx is cancelled and calls emit for each frame; emit
// must not be called after Stream returns.
type StreamingInput interface {
	Plugin
	Stream(ctx context.Context, emit func(*Frame)) error
}

// Writer is an input that accepts writes from the server. Results are in
// the order of the requests. After a successful write the core asks a
// polled input for the read-back of the devices written (see
// ReadBackDevices); a streaming input reads back on its own and marks
// that batch ReadBack.
type Writer interface {
	Write(ctx context.Context, reqs []WriteRequest) ([]WriteResult, error)
}

// Processor transforms frames in configuration order. It may modify the
// frame in place and return it, or return a new one; returning nil or an
// empty frame drops it. A processor that wants a side effect (an alarm
// asking a camera for a picture) adds a Request to the frame: the core
// serves it like a write from the server, even if the frame is dropped
// later in the chain.
//
// A processor that keeps no reference into the frames it is given or
// returns may say so by implementing FrameReleaser: in its own process
// the SDK then reuses the requests' memory and gives back the frames it
// returned (see FrameReleaser for what each side promises).
type Processor interface {
	Plugin
	Process(ctx context.Context, f *Frame) (*Frame, error)
}

// Output delivers rendered messages. Publish returns nil only once every
// message is confirmed (PUBACK at QoS 1): the core's queue forgets them then
// and not before, which is the whole at-least-once promise. On error the
// core keeps the messages and offers them again later; an error that is or
// wraps a PartialError says the first Confirmed of them did get through,
// and only the rest are offered again.
//
// Each message carries its own QoS (Message.QoS, set by the template);
// an output publishes it at that level unless its own settings say
// otherwise (outputs.mqtt's qos is a ceiling).
//
// ctx's deadline is the batch's time budget, which the core sizes by the
// batch's bytes; an output should stop waiting when it ends, report what
// was confirmed by then, and make sure what it gave up on is not still
// being sent (the core sends it again).
type Output interface {
	Plugin
	Publish(ctx context.Context, msgs []Message) error
}

// CommandSource is an output that receives commands from the server. It
// runs until ctx is cancelled, calling handle for each command, parsed
// into its typed form (package fbox does that for the FBox topics). handle
// blocks while the core is busy; the output keeps a bounded intake and
// answers the commands that find it full with a busy reply (fbox.Busy), so
// that every command is answered.
type CommandSource interface {
	Commands(ctx context.Context, handle func(Command)) error
}

// CommandHandler is a processor that serves commands from the server: the
// alarm processor acknowledges alarms (CommandAck). The frame it returns (the
// events the command caused, e.g. an "acked" alarm) continues through the
// processors after it and reaches the outputs; an error becomes the error
// reply. The core never calls HandleCommand concurrently with Process.
//
// A handler that does not know the command's target (an alarm rule of
// another alarm processor) returns an error wrapping ErrNotMine, and the
// core offers the command to the next handler.
type CommandHandler interface {
	HandleCommand(ctx context.Context, c Command) (*Frame, error)
}

// ErrNotMine says a command's target belongs to another plugin.
var ErrNotMine = errors.New("not handled by this plugin")

// Health is a plugin's own account of itself: an output says whether it is
// connected and why not (the CONNACK reason), and any plugin may expose
// counters (reconnects, frames dropped) that the core adds to /metrics.
//
// An input lists its field devices in Devices, so that one dead slave on a
// bus of ten is visible by name. An input's OK and its devices' state are
// shown in /healthz and /metrics but never fail /healthz: a liveness probe
// must not restart the gateway because a PLC is switched off.
type Health struct {
	OK       bool
	Reason   string            // why not OK, for /healthz; no secrets
	Counters map[string]uint64 // monotonic counters, by snake_case name
	Devices  []DeviceHealth    // inputs: one entry per field device, in configuration order
}

// DeviceHealth is the state of one field device behind an input (a Modbus
// slave, a serial scale, a camera), as its last reads left it.
type DeviceHealth struct {
	// Name is the device's name as its points carry it (Batch.Device).
	Name string
	// Up is true when the device answered its last read (with data, or
	// with a protocol error that proves it is there), false when it did
	// not (timeout, connection refused, port missing) and before it was
	// read at all.
	Up bool
	// LastError is the last failed read and when it happened; it stays
	// after the device recovers, so a flapping device shows why.
	LastError   string
	LastErrorAt time.Time
	// LastGood is when a read last returned values; zero: never.
	LastGood time.Time
	// ReadErrors counts failed reads since the plugin started (monotonic).
	ReadErrors uint64
}

// HealthReporter is a plugin that reports its health; the core asks for it
// when /healthz or /metrics is read, and at most about once a second.
type HealthReporter interface {
	Health(ctx context.Context) (Health, error)
}

// Caps lists what a plugin instance can do beyond its kind's main call.
type Caps struct {
	Stream   bool // StreamingInput: Stream instead of Gather
	Write    bool // Writer
	Commands bool // CommandSource
	Health   bool // HealthReporter
	Handle   bool // CommandHandler
}

// capser is implemented by gRPC clients, which learn the remote plugin's
// abilities in the Init handshake.
type capser interface{ Caps() Caps }

// CapsOf tells what p can do. Call it after Init: gRPC clients only know
// the remote abilities then.
func CapsOf(p any) Caps {
	if c, ok := p.(capser); ok {
		return c.Caps()
	}
	_, s := p.(StreamingInput)
	_, w := p.(Writer)
	_, c := p.(CommandSource)
	_, h := p.(HealthReporter)
	_, hc := p.(CommandHandler)
	return Caps{Stream: s, Write: w, Commands: c, Health: h, Handle: hc}
}
