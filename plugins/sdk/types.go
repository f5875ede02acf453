package sdk

import (
	"fmt"
	"strings"
)

// Quality tells whether a point's value can be trusted. A failed read is
// reported with QualityBad rather than dropped, so the server sees that the
// device is silent instead of seeing a frozen value.
type Quality uint8

const (
	QualityGood Quality = iota
	QualityBad
	QualityUncertain
)

func (q Quality) String() string {
	switch q {
	case QualityGood:
		return "good"
	case QualityBad:
		return "bad"
	case QualityUncertain:
		return "uncertain"
	}
	return fmt.Sprintf("quality(%d)", uint8(q))
}

// Point is one reading of one point of a device.
type Point struct {
	Name    string  // the point's name within its device ("temperature")
	Value   Value   // typed value; may be empty when Quality is bad
	Quality Quality //
	TS      int64   // time of the reading, milliseconds since the Unix epoch
	// Status says why a reading is not good, in the device protocol's
	// own words ("BadNodeIdUnknown", "UncertainLastUsableValue"); empty
	// means good, or nothing more to say than the quality. An input sets
	// it only for readings that are not good, so the good path carries
	// and renders nothing more (the template adds a "status" member to a
	// point's element only when it is set).
	Status string
}

// Batch is the points of one device read together (one poll). Batches, not
// single points, cross process boundaries.
type Batch struct {
	Device string // device name; a point's full name is Device + "." + Name
	TS     int64  // poll time, milliseconds since the Unix epoch
	Points []Point
	// ReadBack marks the device read back after a successful write (SPEC
	// 5): the server must see the new value whatever the processors would
	// filter. A processor that holds unchanged readings back (deadband)
	// passes such a batch whole and takes its values as the last
	// reported. The core sets it on the batches of a read-back poll (see
	// ReadBackDevices); an input that reads back on its own (a streaming
	// one) sets it itself.
	ReadBack bool
}

// Alarm is an alarm event: a rule raised, cleared or was acknowledged.
type Alarm struct {
	TS      int64
	Rule    string
	Point   string // full point name "device.point"
	Level   string // info | warning | critical
	State   string // raised | cleared | acked
	Value   Value
	Message string
}

// Picture is an image taken by a camera input.
type Picture struct {
	TS     int64
	Device string // the camera's device name
	Format string // "jpeg"
	Data   []byte
}

// Message is a rendered MQTT message, ready for an output.
type Message struct {
	Topic   string
	Payload []byte
	// QoS is the level the message is published at (0, 1 or 2; the
	// template's qos, default 1). The zero value is QoS 0, at most once:
	// a processor that makes messages sets 1 for the at-least-once promise.
	// An output may lower it (outputs.mqtt's qos is a ceiling), never raise.
	QoS    uint8
	Retain bool
}

// Frame is what flows through the pipeline: an input fills it, processors
// transform it in order (filtering points, adding alarms, rendering
// messages), and outputs receive its Messages.
type Frame struct {
	Batches  []Batch
	Alarms   []Alarm
	Pictures []Picture
	Messages []Message
	// Requests are side effects asked for by processors (see Request);
	// the core takes them out of the frame after each processor.
	Requests []Request
}

// Empty reports whether the frame carries nothing.
func (f *Frame) Empty() bool {
	return f == nil || len(f.Batches) == 0 && len(f.Alarms) == 0 && len(f.Pictures) == 0 && len(f.Messages) == 0 && len(f.Requests) == 0
}

// NumPoints counts the points of all batches.
func (f *Frame) NumPoints() int {
	if f == nil {
		return 0
	}
	n := 0
	for i := range f.Batches {
		n += len(f.Batches[i].Points)
	}
	return n
}

// Access is the FBox permission of a point: whether it is reported to the
// server (pub), written by the server (sub), or both.
type Access uint8

const (
	AccessPub Access = iota
	AccessSub
	AccessPubSub
)

func (a Access) String() string {
	switch a {
	case AccessPub:
		return "pub"
	case AccessSub:
		return "sub"
	case AccessPubSub:
		return "pubsub"
	}
	return fmt.Sprintf("access(%d)", uint8(a))
}

// Publishes reports whether points with this access are reported.
func (a Access) Publishes() bool { return a == AccessPub || a == AccessPubSub }

// Subscribes reports whether points with this access accept writes.
func (a Access) Subscribes() bool { return a == AccessSub || a == AccessPubSub }

// ParseAccess reads "pub", "sub" or "pubsub"; "" means pub.
func ParseAccess(s string) (Access, error) {
	switch strings.ToLower(s) {
	case "", "pub":
		return AccessPub, nil
	case "sub":
		return AccessSub, nil
	case "pubsub", "sub&pub", "subpub":
		return AccessPubSub, nil
	}
	return 0, fmt.Errorf("access %q: want pub, sub or pubsub", s)
}

// UnmarshalText lets configuration structs use Access directly.
func (a *Access) UnmarshalText(b []byte) error {
	v, err := ParseAccess(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// MarshalText writes the access as configured.
func (a Access) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// PointSchema describes a point an input offers: the core builds its point
// registry from these, checks writes against them and lends them to
// processors (units for templates, names for alarm rules).
type PointSchema struct {
	Device string
	Name   string
	Type   string // device type: bool int16 ... float64 string (informative)
	Kind   Kind   // the Value kind the point reports
	Access Access
	Unit   string
	Min    *float64 // bounds a write must respect; nil: none
	Max    *float64
}

// FullName is "device.point".
func (s PointSchema) FullName() string { return s.Device + "." + s.Name }

// WriteRequest asks an input to set one point. The core has already checked
// the point exists, is writable and that Value fits its kind and bounds.
type WriteRequest struct {
	Device string
	Name   string
	Value  Value
}

// WriteResult is the outcome of one WriteRequest; Error empty means success.
type WriteResult struct {
	Error string
}
