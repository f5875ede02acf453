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
	s := topics.StatusMessage(time.UnixMilli(5), "v1", StatusInfo{Config: "sha256:ab", ConfigState: "trial", Uptime: 3 * time.Second, OK: 2, Failed: 1})
	want = `{"status":"online","ts":5,"version":"v1","config":"sha256:ab","uptime_s":3,"plugins":{"ok":2,"failed":1},"config_state":"trial"}`
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
