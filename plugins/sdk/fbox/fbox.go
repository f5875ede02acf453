// Package fbox owns the server protocol of FBox MQTT1.1 as edgepipe speaks
// it (SPEC sections 4, 5 and 9): every topic of one gateway (data, alarm,
// image and status that it publishes, the commands it receives and their
// replies; the template processor's defaults are these), the
// parsing of every command payload into a typed sdk.Command (once, in the
// output that received it), and the rendering of every reply. The core
// checks and routes typed commands and hands typed results back here; it
// never builds a topic or a reply by hand. Outputs import this package
// (it depends on the SDK only), and so may third-party outputs that speak
// the same protocol.
//
// Everything here reads outside input: no function panics on any payload
// (see FuzzParse), and no reply quotes more than MaxQuoted characters of a
// value it refuses.
package fbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// DefaultMaxCommandSize is agent.max_command_size's default: 64 KiB.
const DefaultMaxCommandSize = 64 << 10

// MaxQuoted is how many characters of a rejected value (or name) a reply
// or log line quotes at most.
const MaxQuoted = 64

// salvageBytes is how much of a payload too large to parse is searched for
// its id.
const salvageBytes = 512

// Topics is the topic map of one gateway: `P ID/...`.
type Topics struct {
	base string // "P ID"
}

// NewTopics is the map for topic prefix P (ending in "/") and gateway ID.
func NewTopics(prefix, id string) Topics { return Topics{base: prefix + id} }

// Base is "P ID".
func (t Topics) Base() string { return t.base }

// Data is where points are published (SPEC 4), Alarm where alarm events
// are, Image(camera) where a camera's pictures are. The template
// processor's defaults are these, written with its placeholders.
func (t Topics) Data() string               { return t.base + "/data" }
func (t Topics) Alarm() string              { return t.base + "/alarm" }
func (t Topics) Image(camera string) string { return t.base + "/image/" + camera }

// Write is where writes arrive, WriteReply where they are answered.
func (t Topics) Write() string      { return t.Data() + "/write" }
func (t Topics) WriteReply() string { return t.Write() + "/reply" }

// Ack is where alarm acknowledgements arrive, AckReply where they are
// answered.
func (t Topics) Ack() string      { return t.Alarm() + "/ack" }
func (t Topics) AckReply() string { return t.Ack() + "/reply" }

// Status is the retained online/offline status (Online, Offline).
func (t Topics) Status() string { return t.base + "/status" }

// SystemReply answers system commands (Reboot, Pause, Resume);
// ConfigReply the remote configuration commands.
func (t Topics) SystemReply() string { return t.base + "/system/reply" }
func (t Topics) ConfigReply() string { return t.base + "/system/config/reply" }

// Subscriptions are the topic filters an output subscribes to receive
// every command.
func (t Topics) Subscriptions() []string {
	return []string{t.Write(), t.Ack(), t.base + "/system/#"}
}

// Match tells whether topic carries a command, and which kind. Replies
// (seen back through the system/# subscription) are not commands.
func (t Topics) Match(topic string) (sdk.CommandKind, bool) {
	switch topic {
	case t.Write():
		return sdk.CommandWrite, true
	case t.Ack():
		return sdk.CommandAck, true
	case t.SystemReply(), t.ConfigReply():
		return sdk.CommandNone, false
	}
	rest, ok := strings.CutPrefix(topic, t.base+"/system/")
	switch {
	case !ok || rest == "":
		return sdk.CommandNone, false
	case strings.HasPrefix(rest, "config/"):
		return sdk.CommandConfig, true
	}
	return sdk.CommandSystem, true
}

// Parse turns a message into a command. ok is false when the topic
// carries no command (ignore the message). A payload larger than max
// bytes is not parsed: the command comes back with Err set and the id
// salvaged from its first bytes. A payload that does not parse also comes
// back, with Err and whatever id could be found, so that it is answered.
func (t Topics) Parse(topic string, payload []byte, max int) (c sdk.Command, ok bool) {
	if len(payload) > max {
		return t.ParseTruncated(topic, payload[:min(len(payload), salvageBytes)], len(payload), max)
	}
	c, ok = t.shell(topic)
	if !ok {
		return c, false
	}
	switch c.Kind {
	case sdk.CommandWrite:
		parseWrite(&c, payload)
	case sdk.CommandAck:
		parseAck(&c, payload)
	case sdk.CommandSystem:
		parseSystem(&c, payload)
	case sdk.CommandConfig:
		c.ID, _ = objectID(payload)
		c.Config = bytes.Clone(payload)
	}
	return c, true
}

// ParseTruncated is Parse for a payload of size bytes of which the
// transport kept only head (an MQTT client that refuses to hold a huge
// message in memory): the command is refused as too large.
func (t Topics) ParseTruncated(topic string, head []byte, size, max int) (sdk.Command, bool) {
	c, ok := t.shell(topic)
	if !ok {
		return c, false
	}
	c.ID = SalvageID(head)
	c.Err = fmt.Sprintf("command of %d bytes is larger than max_command_size (%d bytes); not parsed", size, max)
	return c, true
}

// shell is the command of a topic, before its payload is read.
func (t Topics) shell(topic string) (sdk.Command, bool) {
	k, ok := t.Match(topic)
	if !ok {
		return sdk.Command{}, false
	}
	c := sdk.Command{Kind: k}
	switch k {
	case sdk.CommandWrite:
		c.ReplyTopic = t.WriteReply()
	case sdk.CommandAck:
		c.ReplyTopic = t.AckReply()
	case sdk.CommandSystem:
		c.ReplyTopic = t.SystemReply()
		c.Name = strings.TrimPrefix(topic, t.base+"/system/")
	case sdk.CommandConfig:
		c.ReplyTopic = t.ConfigReply()
		c.Name = strings.TrimPrefix(topic, t.base+"/system/config/")
	}
	return c, true
}

func parseWrite(c *sdk.Command, payload []byte) {
	var raw struct {
		ID     json.RawMessage            `json:"id"`
		Points map[string]json.RawMessage `json:"points"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		c.ID = SalvageID(payload)
		c.Err = "payload is not a JSON object: " + Clip(err.Error())
		return
	}
	c.ID = idString(raw.ID)
	if len(raw.Points) == 0 {
		c.Err = `"points" is missing or empty; want {"id":"...","points":{"device.point":value}}`
		return
	}
	c.Points = make([]sdk.PointWrite, 0, len(raw.Points))
	for name, v := range raw.Points {
		c.Points = append(c.Points, sdk.PointWrite{Name: name, Value: v})
	}
	sort.Slice(c.Points, func(i, j int) bool { return c.Points[i].Name < c.Points[j].Name })
}

func parseAck(c *sdk.Command, payload []byte) {
	var raw struct {
		ID   json.RawMessage `json:"id"`
		Rule json.RawMessage `json:"rule"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		c.ID = SalvageID(payload)
		c.Err = `payload is not a JSON object; want {"id":"...","rule":"name"}`
		return
	}
	c.ID = idString(raw.ID)
	if json.Unmarshal(raw.Rule, &c.Rule) != nil || c.Rule == "" {
		c.Rule = ""
		c.Err = `"rule" is missing or not a string; want {"id":"...","rule":"name"}`
	}
}

// parseSystem reads a system command. Reboot takes any payload (FBox sends
// an empty one); Pause and Resume name an output.
func parseSystem(c *sdk.Command, payload []byte) {
	switch strings.ToLower(c.Name) {
	case "reboot":
		c.System = sdk.SystemReboot
	case "pause":
		c.System = sdk.SystemPause
	case "resume":
		c.System = sdk.SystemResume
	default:
		c.ID, _ = objectID(payload)
		c.Err = "unknown system command " + Clip(c.Name) + "; want Reboot, Pause or Resume"
		return
	}
	if c.System == sdk.SystemReboot {
		c.ID, _ = objectID(payload)
		return
	}
	var raw struct {
		ID     json.RawMessage `json:"id"`
		Output json.RawMessage `json:"output"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		c.ID = SalvageID(payload)
		c.Err = `payload is not a JSON object; want {"id":"...","output":"alias"}`
		return
	}
	c.ID = idString(raw.ID)
	if json.Unmarshal(raw.Output, &c.Output) != nil || c.Output == "" {
		c.Output = ""
		c.Err = `"output" is missing or not a string; want {"id":"...","output":"alias"}`
	}
}

// objectID is the id of a payload that may be empty or anything else.
func objectID(payload []byte) (string, bool) {
	var raw struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(payload, &raw) != nil {
		return SalvageID(payload), false
	}
	return idString(raw.ID), true
}

// idString accepts a string or number id; anything else is no id.
func idString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// SalvageID finds "id" among the first members of a broken or truncated
// object, best effort: the members before it must be complete.
func SalvageID(payload []byte) string {
	dec := json.NewDecoder(bytes.NewReader(payload))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return ""
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return ""
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return ""
		}
		if k == "id" {
			return idString(v)
		}
	}
	return ""
}

// Clip shortens s to at most MaxQuoted characters (runes), marking the
// cut: what a reply or a log line quotes of a value from outside.
func Clip(s string) string {
	if utf8.RuneCountInString(s) <= MaxQuoted {
		return s
	}
	n := 0
	for i := range s {
		if n == MaxQuoted {
			return s[:i] + fmt.Sprintf("…(%d bytes)", len(s))
		}
		n++
	}
	return s
}

// Reply renders the reply to c: on c.ReplyTopic, at QoS 1.
//
//	write:  {"id":"req-1","ts":..,"results":{"plc1.sp":{"ok":true},"x.y":{"ok":false,"error":"..."}}}
//	        or, refused as a whole, {"id":"req-1","ts":..,"ok":false,"error":"..."}
//	ack:    {"id":"a-1","ts":..,"ok":true}
//	system: {"id":"s-1","command":"Pause","ts":..,"ok":true}
func Reply(c sdk.Command, r sdk.Result) sdk.Message {
	return ReplyAt(c, r, time.Now())
}

// ReplyAt is Reply with the reply's time given.
func ReplyAt(c sdk.Command, r sdk.Result, now time.Time) sdk.Message {
	b := make([]byte, 0, 96+32*len(r.Points))
	b = append(b, `{"id":`...)
	b = sdk.AppendJSONString(b, c.ID)
	if c.Kind == sdk.CommandSystem || c.Kind == sdk.CommandConfig {
		b = append(b, `,"command":`...)
		b = sdk.AppendJSONString(b, Clip(c.Name))
	}
	b = append(b, `,"ts":`...)
	b = sdk.Int(now.UnixMilli()).AppendJSON(b)
	if c.Kind == sdk.CommandWrite && r.Error == "" {
		b = append(b, `,"results":{`...)
		for i, p := range r.Points {
			if i > 0 {
				b = append(b, ',')
			}
			b = sdk.AppendJSONString(b, p.Name)
			b = appendOK(append(b, ':', '{'), p.Error)
			b = append(b, '}')
		}
		b = append(b, '}', '}')
	} else {
		b = appendOK(append(b, ','), r.Error)
		b = append(b, '}')
	}
	return sdk.Message{Topic: c.ReplyTopic, Payload: b, QoS: 1}
}

func appendOK(b []byte, errMsg string) []byte {
	if errMsg == "" {
		return append(b, `"ok":true`...)
	}
	b = append(b, `"ok":false,"error":`...)
	return sdk.AppendJSONString(b, errMsg)
}

// Online is the retained status published on connecting:
// {"status":"online","ts":..,"version":".."}.
func Online(now time.Time, version string) []byte {
	b := append([]byte(`{"status":"online","ts":`), sdk.Int(now.UnixMilli()).AppendJSON(nil)...)
	b = append(b, `,"version":`...)
	return append(sdk.AppendJSONString(b, version), '}')
}

// Offline is the Last Will, also published on a graceful close.
func Offline() []byte { return []byte(`{"status":"offline"}`) }

// Busy is the result of a command the gateway cannot take now.
func Busy(why string) sdk.Result { return sdk.Result{Error: "busy: " + why} }
