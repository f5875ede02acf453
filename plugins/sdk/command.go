package sdk

import (
	"encoding/json"
	"fmt"
)

// CommandKind says what a command from the server asks for.
type CommandKind uint8

const (
	// CommandNone is the zero kind: never sent.
	CommandNone CommandKind = iota
	// CommandWrite sets points: Command.Points.
	CommandWrite
	// CommandAck acknowledges a raised alarm: Command.Rule.
	CommandAck
	// CommandSystem acts on the gateway: Command.System (and Output).
	CommandSystem
	// CommandConfig is remote configuration (SPEC section 9): Command.Name
	// is get, set or confirm and Command.Config the payload as sent
	// (fbox.ParseConfig reads it; the core's reload package serves it).
	CommandConfig
)

func (k CommandKind) String() string {
	switch k {
	case CommandWrite:
		return "write"
	case CommandAck:
		return "ack"
	case CommandSystem:
		return "system"
	case CommandConfig:
		return "config"
	}
	return fmt.Sprintf("command(%d)", uint8(k))
}

// SystemOp is the action of a system command.
type SystemOp uint8

const (
	SystemUnknown SystemOp = iota // a system topic edgepipe does not serve; Command.Err says which
	SystemReboot                  // reload the configuration in place
	SystemPause                   // pause one output (Command.Output)
	SystemResume                  // resume one output (Command.Output)
)

func (s SystemOp) String() string {
	switch s {
	case SystemReboot:
		return "Reboot"
	case SystemPause:
		return "Pause"
	case SystemResume:
		return "Resume"
	}
	return "unknown"
}

// Command is a request from the server, parsed once by the output that
// received it (with the fbox package for the FBox topics) and checked and
// routed by the core. A command the output could parse only partly (bad
// JSON, too large) still arrives, with Err set and as much as was found
// (its ID above all), so that the core answers it: every command gets a
// reply.
type Command struct {
	Kind CommandKind
	// ID is the request's id, echoed in the reply; "" when it had none.
	ID string
	// ReplyTopic is where the reply goes, decided by the output that
	// received the command (it knows the topic map it subscribed with).
	ReplyTopic string
	// Err, when set, refuses the whole command without acting on it.
	Err string

	Points []PointWrite // CommandWrite, sorted by name
	Rule   string       // CommandAck
	System SystemOp     // CommandSystem
	Name   string       // CommandSystem: the command's name as sent ("Reboot")
	Output string       // CommandSystem Pause/Resume: the output's alias
	Config []byte       // CommandConfig: the document, as sent
}

// PointWrite is one requested point value. Value is the JSON text exactly
// as the server sent it (a number is not yet a float64): the core, which
// knows the point's type, converts it without rounding.
type PointWrite struct {
	Name  string // "device.point"
	Value json.RawMessage
}

// Result is the outcome of a command. Error set means the whole command
// was refused; otherwise a write has one PointResult per point, in the
// order of Command.Points.
type Result struct {
	Error  string
	Points []PointResult
}

// OK reports whether the command as a whole succeeded.
func (r Result) OK() bool { return r.Error == "" }

// PointResult is the outcome of one point of a write; Error "" is success.
type PointResult struct {
	Name  string
	Error string
}

// Request is a side effect a processor asks for in its frame: a write of
// one point, checked and routed by the core exactly like a write from the
// server (the alarm processor asks the camera named by a rule for a
// picture by writing true to its "capture" point). The core serves the
// requests of a frame beside the pipeline and removes them from the
// frame, so a later processor does not make them again.
type Request struct {
	Point  string // full point name "device.point"
	Value  Value
	Reason string // for the log: what asked ("alarm boiler_overheat raised")
}
