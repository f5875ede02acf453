package fbox

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

func parseConfig(t *testing.T, op, payload string) (ConfigRequest, error) {
	t.Helper()
	c, ok := topics.Parse(topics.ConfigTopic(map[string]ConfigOp{"get": ConfigGet, "set": ConfigSet, "confirm": ConfigConfirm}[op]), []byte(payload), 1<<20)
	if !ok || c.Kind != sdk.CommandConfig || c.ReplyTopic != topics.ConfigReply() {
		t.Fatalf("%s is not a configuration command: %+v", op, c)
	}
	return ParseConfig(c)
}

func TestParseConfig(t *testing.T) {
	r, err := parseConfig(t, "set", `{"id":"c-2","config":"[agent]\n","confirm":"120s","signature":"AAEC"}`)
	if err != nil || r.Op != ConfigSet || r.ID != "c-2" || r.Config != "[agent]\n" || !r.HasConfirm ||
		r.Confirm != 120*time.Second || string(r.Signature) != "\x00\x01\x02" {
		t.Fatalf("%+v %v", r, err)
	}
	if r, err := parseConfig(t, "get", ``); err != nil || r.Op != ConfigGet {
		t.Fatalf("empty get: %+v %v", r, err)
	}
	if r, err := parseConfig(t, "confirm", `{"id":"c-3","hash":"sha256:ab"}`); err != nil || r.Hash != "sha256:ab" {
		t.Fatalf("confirm: %+v %v", r, err)
	}
	for _, bad := range []struct{ op, payload, want string }{
		{"set", `{"id":"x"}`, `"config"`},
		{"set", `{"id":"x","config":"a","confirm":"soon"}`, `"confirm"`},
		{"set", `{"id":"x","config":"a","signature":"!!"}`, `"signature"`},
		{"confirm", `{"id":"x"}`, `"hash"`},
		{"set", `[1]`, "JSON object"},
	} {
		if _, err := parseConfig(t, bad.op, bad.payload); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s %s: %v", bad.op, bad.payload, err)
		}
	}
}

func TestConfigAnswerAndStatus(t *testing.T) {
	m := topics.ConfigAnswerAt("c-1", ConfigResult{Error: "refused", Errors: []string{"remote.toml:3: x"}, RolledBack: true}, time.UnixMilli(5))
	want := `{"id":"c-1","ts":5,"ok":false,"error":"refused","rolled_back":true,"errors":["remote.toml:3: x"]}`
	if string(m.Payload) != want || m.Topic != topics.ConfigReply() || m.QoS != 1 {
		t.Fatalf("%s on %s", m.Payload, m.Topic)
	}
	s := topics.StatusMessage(time.UnixMilli(5), "v1", StatusInfo{DeviceID: "GW-1", Config: "sha256:ab", ConfigState: "trial", Uptime: 3 * time.Second, OK: 2, Failed: 1})
	want = `{"status":"online","ts":5,"version":"v1","device_id":"GW-1","config":"sha256:ab","uptime_s":3,"plugins":{"ok":2,"failed":1},"config_state":"trial"}`
	if string(s.Payload) != want || !s.Retain || s.Topic != topics.Status() {
		t.Fatalf("%s", s.Payload)
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{`{"id":"c-2","config":"[agent]","confirm":"120s","signature":"AAEC"}`,
		`{"id":"c-3","hash":"sha256:ab"}`, `{"id":1,"config":5}`, ``, `{"id":"a","confirm":"-1s","config":"x"}`} {
		for _, op := range []string{"get", "set", "confirm", "other"} {
			f.Add(op, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, op string, payload []byte) {
		c, ok := topics.Parse(topics.Base()+"/system/config/"+op, payload, 4096)
		if !ok {
			return
		}
		r, err := ParseConfig(c)
		res := ConfigResult{Hash: r.Hash, Config: r.Config, HasConfig: true}
		if err != nil {
			res = ConfigResult{Error: err.Error()}
		}
		if m := topics.ConfigAnswer(c.ID, res); !json.Valid(m.Payload) {
			t.Fatalf("invalid reply %s", m.Payload)
		}
	})
}

// TestConfigCommandRoundTrip: what a server renders, the gateway parses
// back to the same request.
func TestConfigCommandRoundTrip(t *testing.T) {
	for _, r := range []ConfigRequest{
		{Op: ConfigGet, ID: "c-1"},
		{Op: ConfigSet, ID: "c-2", Config: "[agent]\ndevice_id = \"${ID}\"\n", Confirm: 90 * time.Second, HasConfirm: true, Signature: []byte{0, 1, 2}},
		{Op: ConfigSet, ID: "c-2b", Config: "x = \"\\u00e9\"\n"},
		{Op: ConfigConfirm, ID: "c-3", Hash: "sha256:ab"},
	} {
		m := topics.ConfigCommand(r)
		if m.QoS != 1 || m.Retain || m.Topic != topics.ConfigTopic(r.Op) {
			t.Fatalf("%+v: %+v", r, m)
		}
		c, ok := topics.Parse(m.Topic, m.Payload, 1<<20)
		if !ok {
			t.Fatalf("%s not parsed", m.Topic)
		}
		got, err := ParseConfig(c)
		if err != nil || got.Op != r.Op || got.ID != r.ID || got.Config != r.Config || got.HasConfirm != r.HasConfirm ||
			got.Confirm != r.Confirm || string(got.Signature) != string(r.Signature) || got.Hash != r.Hash {
			t.Fatalf("%s: got %+v %v, want %+v", m.Payload, got, err, r)
		}
	}
}

// TestParseConfigAnswer reads back what ConfigAnswer renders.
func TestParseConfigAnswer(t *testing.T) {
	for _, want := range []ConfigResult{
		{Hash: "sha256:ab", State: "trial"},
		{Error: "configuration refused", Errors: []string{"remote.toml:3: x", "remote.toml:4: y"}},
		{Error: "rolled back: why", RolledBack: true, Hash: "sha256:cd", State: "rolled_back"},
		{Hash: "sha256:ef", Config: "a = 1\n", HasConfig: true, State: "confirmed"},
	} {
		m := topics.ConfigAnswer("c-9", want)
		id, got, err := ParseConfigAnswer(m.Payload)
		if err != nil || id != "c-9" || got.Error != want.Error || strings.Join(got.Errors, "|") != strings.Join(want.Errors, "|") ||
			got.Hash != want.Hash || got.State != want.State || got.RolledBack != want.RolledBack || got.Config != want.Config || got.HasConfig != want.HasConfig {
			t.Fatalf("%s: got %q %+v %v", m.Payload, id, got, err)
		}
	}
	for _, bad := range []string{``, `[]`, `{"id":"x"}`, `{"ok":"yes"}`} {
		if _, _, err := ParseConfigAnswer([]byte(bad)); err == nil {
			t.Errorf("%s taken as a reply", bad)
		}
	}
	if _, r, err := ParseConfigAnswer([]byte(`{"id":1,"ok":false}`)); err != nil || r.Error == "" {
		t.Errorf("a refusal without a reason must still be a refusal: %+v %v", r, err)
	}
}

func TestParseStatusAndDevices(t *testing.T) {
	s := topics.StatusMessage(time.UnixMilli(5), "v1", StatusInfo{DeviceID: "GW-1", Config: "sha256:ab", ConfigState: "trial"})
	r, err := ParseStatus(s.Payload)
	if err != nil || !r.Online || r.Version != "v1" || r.DeviceID != "GW-1" || r.Config != "sha256:ab" || r.ConfigState != "trial" {
		t.Fatalf("%+v %v", r, err)
	}
	if r, err := ParseStatus(Offline()); err != nil || r.Online {
		t.Fatalf("offline: %+v %v", r, err)
	}
	if _, err := ParseStatus([]byte(`{"status":"maybe"}`)); err == nil {
		t.Fatal("a status that is neither online nor offline taken")
	}
	const p = "Topic/flexem/fbox/"
	if id, ok := DeviceOf(p, NewTopics(p, "GW-1").Status(), "/status"); !ok || id != "GW-1" {
		t.Fatalf("%q %v", id, ok)
	}
	if id, ok := DeviceOf(p, NewTopics(p, "GW-1").ConfigReply(), "/system/config/reply"); !ok || id != "GW-1" {
		t.Fatalf("%q %v", id, ok)
	}
	for _, topic := range []string{p + "/status", p + "a/b/status", "Other/GW-1/status", p + "GW-1/data"} {
		if id, ok := DeviceOf(p, topic, "/status"); ok {
			t.Errorf("%s: device %q", topic, id)
		}
	}
	if StatusFilter(p) != p+"+/status" || ConfigReplyFilter(p) != p+"+/system/config/reply" {
		t.Fatal("filters")
	}
}

func FuzzParseConfigAnswer(f *testing.F) {
	for _, s := range []string{`{"id":"c-1","ts":5,"ok":false,"error":"x","rolled_back":true,"errors":["a"]}`,
		`{"id":2,"ok":true,"hash":"sha256:ab","config":"x","config_state":"trial"}`, `{"status":"online"}`, ``, `{"ok":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		id, r, err := ParseConfigAnswer(payload)
		if err == nil {
			if m := topics.ConfigAnswer(id, r); !json.Valid(m.Payload) {
				t.Fatalf("invalid re-rendered reply %s", m.Payload)
			}
		}
		_, _ = ParseStatus(payload)
	})
}
