package fbox

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

var topics = NewTopics("Topic/flexem/fbox/", "GW-1")

const base = "Topic/flexem/fbox/GW-1"

func TestMatch(t *testing.T) {
	for topic, want := range map[string]sdk.CommandKind{
		base + "/data/write":                sdk.CommandWrite,
		base + "/alarm/ack":                 sdk.CommandAck,
		base + "/system/Reboot":             sdk.CommandSystem,
		base + "/system/Pause":              sdk.CommandSystem,
		base + "/system/config/get":         sdk.CommandConfig,
		base + "/system/reply":              sdk.CommandNone,
		base + "/system/config/reply":       sdk.CommandNone,
		base + "/data/write/reply":          sdk.CommandNone,
		base + "/system/":                   sdk.CommandNone,
		"Topic/flexem/fbox/GW-2/data/write": sdk.CommandNone,
	} {
		k, ok := topics.Match(topic)
		if k != want || ok != (want != sdk.CommandNone) {
			t.Errorf("%s: %v %v, want %v", topic, k, ok, want)
		}
	}
}

func TestParseWrite(t *testing.T) {
	c, ok := topics.Parse(base+"/data/write", []byte(`{"id":"req-1","points":{"plc1.sp":9007199254740993.0,"plc1.pump":true}}`), DefaultMaxCommandSize)
	if !ok || c.Kind != sdk.CommandWrite || c.ID != "req-1" || c.Err != "" || c.ReplyTopic != base+"/data/write/reply" {
		t.Fatalf("%+v", c)
	}
	// Sorted by name, values as the exact JSON text sent.
	if len(c.Points) != 2 || c.Points[0].Name != "plc1.pump" || c.Points[1].Name != "plc1.sp" ||
		string(c.Points[1].Value) != "9007199254740993.0" {
		t.Fatalf("points %+v", c.Points)
	}
	for payload, want := range map[string]struct{ id, err string }{
		`{"id":7,"points":{}}`:             {"7", `"points" is missing or empty`},
		`{"id":"keep-me","points":{"a":1}`: {"keep-me", "not a JSON object"}, // truncated
		`not json`:                         {"", "not a JSON object"},
		`{"id":["x"],"points":{"a":1}}`:    {"", ""},
	} {
		c, _ := topics.Parse(base+"/data/write", []byte(payload), DefaultMaxCommandSize)
		if c.ID != want.id || !strings.Contains(c.Err, want.err) || (want.err == "") != (c.Err == "") {
			t.Errorf("%s: id %q err %q, want %+v", payload, c.ID, c.Err, want)
		}
	}
}

func TestParseAckAndSystem(t *testing.T) {
	c, _ := topics.Parse(base+"/alarm/ack", []byte(`{"id":"a-1","rule":"boiler"}`), DefaultMaxCommandSize)
	if c.Kind != sdk.CommandAck || c.ID != "a-1" || c.Rule != "boiler" || c.Err != "" {
		t.Fatalf("%+v", c)
	}
	for _, bad := range []string{`{"id":"a-2"}`, `{"id":"a-2","rule":5}`, `{"id":"a-2"`} {
		if c, _ := topics.Parse(base+"/alarm/ack", []byte(bad), DefaultMaxCommandSize); c.Err == "" || c.ID != "a-2" {
			t.Errorf("%s: %+v", bad, c)
		}
	}
	c, _ = topics.Parse(base+"/system/Reboot", nil, DefaultMaxCommandSize)
	if c.System != sdk.SystemReboot || c.Err != "" || c.ReplyTopic != base+"/system/reply" {
		t.Fatalf("reboot %+v", c)
	}
	c, _ = topics.Parse(base+"/system/Resume", []byte(`{"id":"s-1","output":"cloud"}`), DefaultMaxCommandSize)
	if c.System != sdk.SystemResume || c.Output != "cloud" || c.ID != "s-1" || c.Err != "" {
		t.Fatalf("resume %+v", c)
	}
	c, _ = topics.Parse(base+"/system/Pause", []byte(`{"id":"s-2"}`), DefaultMaxCommandSize)
	if c.System != sdk.SystemPause || c.Err == "" || c.ID != "s-2" {
		t.Fatalf("pause without output %+v", c)
	}
	c, _ = topics.Parse(base+"/system/Format", []byte(`{"id":"s-3"}`), DefaultMaxCommandSize)
	if c.System != sdk.SystemUnknown || !strings.Contains(c.Err, "unknown system command Format") || c.ID != "s-3" {
		t.Fatalf("unknown %+v", c)
	}
	c, _ = topics.Parse(base+"/system/config/get", []byte(`{"id":"c-1"}`), DefaultMaxCommandSize)
	if c.Kind != sdk.CommandConfig || c.Name != "get" || c.ID != "c-1" || c.ReplyTopic != base+"/system/config/reply" {
		t.Fatalf("config %+v", c)
	}
}

// A payload over the limit is not parsed; its id is found in its head,
// and the reply stays small.
func TestTooLarge(t *testing.T) {
	big := `{"id":"huge-1","points":{"plc1.s":"` + strings.Repeat("x", 1<<20) + `"}}`
	c, ok := topics.Parse(base+"/data/write", []byte(big), DefaultMaxCommandSize)
	if !ok || c.ID != "huge-1" || !strings.Contains(c.Err, "larger than max_command_size (65536 bytes)") || len(c.Points) != 0 {
		t.Fatalf("%+v", c)
	}
	if m := Reply(c, sdk.Result{Error: c.Err}); len(m.Payload) > 2048 {
		t.Fatalf("reply of %d bytes", len(m.Payload))
	}
}

func TestReply(t *testing.T) {
	now := time.UnixMilli(1732600000000)
	w := sdk.Command{Kind: sdk.CommandWrite, ID: "req-1", ReplyTopic: "r"}
	m := ReplyAt(w, sdk.Result{Points: []sdk.PointResult{{Name: "plc1.sp"}, {Name: "plc1.pump", Error: `bad "x"`}}}, now)
	want := `{"id":"req-1","ts":1732600000000,"results":{"plc1.sp":{"ok":true},"plc1.pump":{"ok":false,"error":"bad \"x\""}}}`
	if string(m.Payload) != want || m.Topic != "r" || m.QoS != 1 {
		t.Fatalf("%s\nwant %s", m.Payload, want)
	}
	if m := ReplyAt(w, Busy("later"), now); string(m.Payload) != `{"id":"req-1","ts":1732600000000,"ok":false,"error":"busy: later"}` {
		t.Fatalf("%s", m.Payload)
	}
	s := sdk.Command{Kind: sdk.CommandSystem, ID: "s-1", Name: "Pause"}
	if m := ReplyAt(s, sdk.Result{}, now); string(m.Payload) != `{"id":"s-1","command":"Pause","ts":1732600000000,"ok":true}` {
		t.Fatalf("%s", m.Payload)
	}
}

func TestStatus(t *testing.T) {
	if topics.Status() != base+"/status" {
		t.Fatal(topics.Status())
	}
	if p := string(Online(time.UnixMilli(5), `v"1`)); p != `{"status":"online","ts":5,"version":"v\"1"}` {
		t.Fatal(p)
	}
	if !json.Valid(Offline()) {
		t.Fatal("offline payload")
	}
}

func TestClip(t *testing.T) {
	if Clip("short") != "short" {
		t.Fatal("short string changed")
	}
	long := strings.Repeat("é", 1000)
	c := Clip(long)
	if !strings.HasPrefix(c, strings.Repeat("é", MaxQuoted)) || strings.Count(c, "é") != MaxQuoted || !utf8.ValidString(c) {
		t.Fatalf("%q", c)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"id":"req-1","points":{"plc1.sp":75.5,"plc1.pump":true}}`,
		`{"id":1e3,"points":{"a":"x","b":[1],"c":{"d":null}}}`,
		`{"id":"a","points":{"a":1`, `{"id":"a-1","rule":"boiler"}`, `{"id":"s","output":"o"}`, ``, `[]`,
	} {
		f.Add("/data/write", []byte(s))
		f.Add("/alarm/ack", []byte(s))
		f.Add("/system/Pause", []byte(s))
	}
	f.Fuzz(func(t *testing.T, suffix string, payload []byte) {
		c, ok := topics.Parse(base+suffix, payload, 256)
		if !ok {
			return
		}
		if c.ReplyTopic == "" {
			t.Fatal("a command without a reply topic cannot be answered")
		}
		if c.Err != "" && len(c.Points) > 0 {
			t.Fatal("a refused write carries points")
		}
		m := Reply(c, sdk.Result{Error: c.Err})
		if !json.Valid(m.Payload) {
			t.Fatalf("invalid reply %s", m.Payload)
		}
		if len(payload) > 256 && len(m.Payload) > 1024 {
			t.Fatalf("reply of %d bytes to a refused payload", len(m.Payload))
		}
	})
}

// Every topic of the protocol, as SPEC sections 4, 5 and 9 write them.
func TestTopicsAreTheSpecs(t *testing.T) {
	for _, c := range [][2]string{
		{topics.Base(), base},
		{topics.Data(), base + "/data"},
		{topics.Alarm(), base + "/alarm"},
		{topics.Image("cam1"), base + "/image/cam1"},
		{topics.Status(), base + "/status"},
		{topics.Write(), base + "/data/write"},
		{topics.WriteReply(), base + "/data/write/reply"},
		{topics.Ack(), base + "/alarm/ack"},
		{topics.AckReply(), base + "/alarm/ack/reply"},
		{topics.SystemReply(), base + "/system/reply"},
		{topics.ConfigReply(), base + "/system/config/reply"},
	} {
		if c[0] != c[1] {
			t.Errorf("got %q, want %q", c[0], c[1])
		}
	}
}
