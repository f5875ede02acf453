package fbox

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Remote configuration (SPEC 9): `P ID/system/config/get`, `/set` and
// `/confirm`, answered on `P ID/system/config/reply`.

// ConfigOp is what a configuration command asks.
type ConfigOp uint8

const (
	ConfigUnknown ConfigOp = iota
	ConfigGet              // {"id":"c-1"}
	ConfigSet              // {"id":"c-2","config":"<TOML>","confirm":"120s","signature":"<base64>"}
	ConfigConfirm          // {"id":"c-3","hash":"sha256:..."}
)

func (o ConfigOp) String() string {
	switch o {
	case ConfigGet:
		return "get"
	case ConfigSet:
		return "set"
	case ConfigConfirm:
		return "confirm"
	}
	return "unknown"
}

// ConfigRequest is a parsed configuration command.
type ConfigRequest struct {
	Op ConfigOp
	ID string
	// Set: the configuration text exactly as sent, its trial (Confirm,
	// when HasConfirm) and its signature (decoded; nil when none).
	Config     string
	Confirm    time.Duration
	HasConfirm bool
	Signature  []byte
	// Confirm: the hash of the configuration confirmed.
	Hash string
}

// ConfigTopic is the topic of a configuration command op (for servers
// and tests).
func (t Topics) ConfigTopic(op ConfigOp) string { return t.base + "/system/config/" + op.String() }

// ParseConfig reads the payload of a configuration command (c.Config,
// as Parse kept it). An error is the reply's text.
func ParseConfig(c sdk.Command) (ConfigRequest, error) {
	r := ConfigRequest{ID: c.ID}
	if c.Err != "" {
		return r, errString(c.Err)
	}
	switch strings.ToLower(c.Name) {
	case "get":
		r.Op = ConfigGet
	case "set":
		r.Op = ConfigSet
	case "confirm":
		r.Op = ConfigConfirm
	default:
		return r, errString("unknown configuration command " + Clip(c.Name) + "; want get, set or confirm")
	}
	if r.Op == ConfigGet && len(strings.TrimSpace(string(c.Config))) == 0 {
		return r, nil
	}
	var raw struct {
		Config    *string `json:"config"`
		Confirm   *string `json:"confirm"`
		Signature *string `json:"signature"`
		Hash      *string `json:"hash"`
	}
	if err := json.Unmarshal(c.Config, &raw); err != nil {
		return r, errString("payload is not a JSON object of strings: " + Clip(err.Error()))
	}
	switch r.Op {
	case ConfigSet:
		if raw.Config == nil || strings.TrimSpace(*raw.Config) == "" {
			return r, errString(`"config" is missing or empty; want {"id":"...","config":"<TOML>"}`)
		}
		r.Config = *raw.Config
		if raw.Confirm != nil && *raw.Confirm != "" {
			var d sdk.Duration
			if err := d.UnmarshalText([]byte(*raw.Confirm)); err != nil || d < 0 {
				return r, errString(`"confirm" is not a duration such as "120s": ` + Clip(*raw.Confirm))
			}
			r.Confirm, r.HasConfirm = time.Duration(d), true
		}
		if raw.Signature != nil && *raw.Signature != "" {
			sig, err := base64.StdEncoding.DecodeString(*raw.Signature)
			if err != nil {
				return r, errString(`"signature" is not base64`)
			}
			r.Signature = sig
		}
	case ConfigConfirm:
		if raw.Hash == nil || !strings.HasPrefix(*raw.Hash, "sha256:") {
			return r, errString(`"hash" is missing; want {"id":"...","hash":"sha256:..."}`)
		}
		r.Hash = *raw.Hash
	}
	return r, nil
}

type errString string

func (e errString) Error() string { return string(e) }

// ConfigResult is the answer to a configuration command, or the
// announcement of a rollback.
type ConfigResult struct {
	Error  string
	Errors []string // every error of a refused configuration, FILE:LINE: message
	// Warnings are what `edgepipe check` warns about in a set's text
	// (FILE:LINE: message), in its reply whether it was taken or not.
	Warnings []string
	Hash     string
	// Config is the running text (get), secrets as ${VAR}.
	Config     string
	HasConfig  bool
	State      string // confirmed | trial | rolled_back, when known
	RolledBack bool
}

// ConfigAnswer renders the reply to configuration command id on t's
// ConfigReply topic, at QoS 1:
//
//	{"id":"c-1","ts":..,"ok":true,"hash":"sha256:...","config":"..."}
//	{"id":"c-2","ts":..,"ok":false,"error":"...","errors":["FILE:LINE: ..."]}
//	{"id":"c-2","ts":..,"ok":false,"rolled_back":true,"error":"..."}
//
// A set whose text check warns about also carries
// "warnings":["FILE:LINE: ..."], taken or not.
func (t Topics) ConfigAnswer(id string, r ConfigResult) sdk.Message {
	return t.ConfigAnswerAt(id, r, time.Now())
}

// ConfigAnswerAt is ConfigAnswer with the reply's time given.
func (t Topics) ConfigAnswerAt(id string, r ConfigResult, now time.Time) sdk.Message {
	b := make([]byte, 0, 128+len(r.Config))
	b = append(b, `{"id":`...)
	b = sdk.AppendJSONString(b, id)
	b = append(b, `,"ts":`...)
	b = sdk.Int(now.UnixMilli()).AppendJSON(b)
	b = appendOK(append(b, ','), r.Error)
	if r.RolledBack {
		b = append(b, `,"rolled_back":true`...)
	}
	b = appendStrings(b, "errors", r.Errors)
	b = appendStrings(b, "warnings", r.Warnings)
	if r.Hash != "" {
		b = append(b, `,"hash":`...)
		b = sdk.AppendJSONString(b, r.Hash)
	}
	if r.State != "" {
		b = append(b, `,"config_state":`...)
		b = sdk.AppendJSONString(b, r.State)
	}
	if r.HasConfig {
		b = append(b, `,"config":`...)
		b = sdk.AppendJSONString(b, r.Config)
	}
	b = append(b, '}')
	return sdk.Message{Topic: t.ConfigReply(), Payload: b, QoS: 1}
}

// StatusInfo is what the retained status says about the gateway beside
// being online: the running configuration's hash and state, its uptime
// and how many plugins are well.
type StatusInfo struct {
	// DeviceID is the gateway's agent.device_id: a server discovering its
	// fleet from the retained statuses learns it from the payload, also
	// where an output's custom status_topic does not carry it.
	DeviceID    string
	Config      string // sha256:...
	ConfigState string
	Uptime      time.Duration
	OK, Failed  int
}

// StatusMessage is the retained online status with the gateway's account of
// itself (SPEC 9), published by the core through the outputs:
// {"status":"online","ts":..,"version":"..","device_id":"..","config":"sha256:..",
// "uptime_s":..,"plugins":{"ok":N,"failed":N},"config_state":"confirmed"}
// (device_id when known).
func (t Topics) StatusMessage(now time.Time, version string, s StatusInfo) sdk.Message {
	b := Online(now, version)
	b = b[:len(b)-1]
	if s.DeviceID != "" {
		b = append(b, `,"device_id":`...)
		b = sdk.AppendJSONString(b, s.DeviceID)
	}
	b = append(b, `,"config":`...)
	b = sdk.AppendJSONString(b, s.Config)
	b = append(b, `,"uptime_s":`...)
	b = sdk.Int(int64(s.Uptime / time.Second)).AppendJSON(b)
	b = append(b, `,"plugins":{"ok":`...)
	b = sdk.Int(int64(s.OK)).AppendJSON(b)
	b = append(b, `,"failed":`...)
	b = sdk.Int(int64(s.Failed)).AppendJSON(b)
	b = append(b, `},"config_state":`...)
	b = sdk.AppendJSONString(b, s.ConfigState)
	return sdk.Message{Topic: t.Status(), Payload: append(b, '}'), QoS: 1, Retain: true}
}

// The server's side of SPEC 9 (edgepipe fleet, and any server written in
// Go): rendering the commands ParseConfig reads, and reading the replies
// ConfigAnswer renders and the status StatusMessage renders.

// ConfigCommand renders configuration command r as a server sends it, on
// t's topic for r.Op at QoS 1 (not retained: a command is for the
// gateway connected now):
//
//	get:     {"id":"c-1"}
//	set:     {"id":"c-2","config":"<TOML>","confirm":"120s","signature":"<base64>"}
//	confirm: {"id":"c-3","hash":"sha256:..."}
//
// confirm and signature are left out when r has none.
func (t Topics) ConfigCommand(r ConfigRequest) sdk.Message {
	b := make([]byte, 0, 64+len(r.Config)+len(r.Config)/8)
	b = append(b, `{"id":`...)
	b = sdk.AppendJSONString(b, r.ID)
	switch r.Op {
	case ConfigSet:
		b = append(b, `,"config":`...)
		b = sdk.AppendJSONString(b, r.Config)
		if r.HasConfirm {
			b = append(b, `,"confirm":`...)
			b = sdk.AppendJSONString(b, r.Confirm.String())
		}
		if r.Signature != nil {
			b = append(b, `,"signature":`...)
			b = sdk.AppendJSONString(b, base64.StdEncoding.EncodeToString(r.Signature))
		}
	case ConfigConfirm:
		b = append(b, `,"hash":`...)
		b = sdk.AppendJSONString(b, r.Hash)
	}
	b = append(b, '}')
	return sdk.Message{Topic: t.ConfigTopic(r.Op), Payload: b, QoS: 1}
}

// ParseConfigAnswer reads a reply on ConfigReply: the id it answers and
// the result (r.Error is "" for "ok":true). A payload that is not such a
// reply is an error; it never panics (see FuzzParseConfigAnswer).
func ParseConfigAnswer(payload []byte) (id string, r ConfigResult, err error) {
	var raw struct {
		ID         json.RawMessage `json:"id"`
		OK         *bool           `json:"ok"`
		Error      string          `json:"error"`
		Errors     []string        `json:"errors"`
		Warnings   []string        `json:"warnings"`
		Hash       string          `json:"hash"`
		Config     *string         `json:"config"`
		State      string          `json:"config_state"`
		RolledBack bool            `json:"rolled_back"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return "", r, errString("not a configuration reply: " + Clip(err.Error()))
	}
	if raw.OK == nil {
		return "", r, errString(`not a configuration reply: no "ok"`)
	}
	r = ConfigResult{Error: raw.Error, Errors: raw.Errors, Warnings: raw.Warnings, Hash: raw.Hash, State: raw.State, RolledBack: raw.RolledBack}
	if raw.Config != nil {
		r.Config, r.HasConfig = *raw.Config, true
	}
	if !*raw.OK && r.Error == "" {
		r.Error = "refused (no reason given)"
	}
	return idString(raw.ID), r, nil
}

// StatusReport is what a gateway's retained status says (Online, Offline,
// StatusMessage), as a server reads it.
type StatusReport struct {
	Online      bool
	DeviceID    string // "" from a gateway that does not say (an offline will)
	Version     string
	Config      string // sha256:..., "" from a gateway that does not say
	ConfigState string
}

// ParseStatus reads a retained status payload.
func ParseStatus(payload []byte) (StatusReport, error) {
	var raw struct {
		Status      string `json:"status"`
		Version     string `json:"version"`
		DeviceID    string `json:"device_id"`
		Config      string `json:"config"`
		ConfigState string `json:"config_state"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return StatusReport{}, errString("not a status: " + Clip(err.Error()))
	}
	if raw.Status != "online" && raw.Status != "offline" {
		return StatusReport{}, errString("not a status: " + Clip(raw.Status))
	}
	return StatusReport{Online: raw.Status == "online", Version: raw.Version, DeviceID: raw.DeviceID, Config: raw.Config, ConfigState: raw.ConfigState}, nil
}

// StatusFilter is the topic filter of every gateway's status under
// prefix ("P +/status"): how a server discovers its fleet from the
// retained messages.
func StatusFilter(prefix string) string { return prefix + "+/status" }

// ConfigReplyFilter is the filter of every gateway's configuration
// replies under prefix ("P +/system/config/reply").
func ConfigReplyFilter(prefix string) string { return prefix + "+/system/config/reply" }

// DeviceOf is the gateway ID in topic under prefix when topic ends in
// suffix ("/status", "/system/config/reply"): "P ID" + suffix.
func DeviceOf(prefix, topic, suffix string) (string, bool) {
	if !strings.HasPrefix(topic, prefix) || !strings.HasSuffix(topic, suffix) || len(topic) <= len(prefix)+len(suffix) {
		return "", false
	}
	id := topic[len(prefix) : len(topic)-len(suffix)]
	if strings.ContainsAny(id, "/+#") {
		return "", false
	}
	return id, true
}

// appendStrings writes ,"key":[...] when list is not empty.
func appendStrings(b []byte, key string, list []string) []byte {
	if len(list) == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, `":[`...)
	for i, e := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = sdk.AppendJSONString(b, e)
	}
	return append(b, ']')
}
