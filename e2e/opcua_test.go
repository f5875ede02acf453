package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testbroker"
	"github.com/edgepipe/edgepipe/internal/testopcua"
)

// TestOPCUAStatusAndUntypedWrite: node-opcua -> inputs.opcua, isolated
// (its own process: points cross the plugin gRPC wire) -> the default
// template -> MQTT. Points that are not good carry their status in the
// data payload, as SPEC 3 says, and a good one renders exactly as SPEC 4;
// a writable point without `type` is written from the server in its
// node's data type, learnt when the gateway started, and refused what
// that type cannot hold.
func TestOPCUAStatusAndUntypedWrite(t *testing.T) {
	needBinary(t)
	srv := testopcua.Start(t)
	b := testbroker.StartMochi(t, testbroker.MochiOptions{})
	const id = "GW-UA"
	data := b.Subscribe(prefix + id + "/data")
	replies := b.Subscribe(prefix + id + "/data/write/reply")
	dir := t.TempDir()
	addr := httpAddr(t)
	cfg := writeFile(t, dir, "gw.toml", fmt.Sprintf(`[agent]
device_id = %q
data_dir = %q
http_listen = %q

[[inputs.opcua]]
isolated = true
device = "line1"
endpoint = %q
interval = "200ms"
timeout = "3s"

[[inputs.opcua.points]]
name = "speed"
node = "ns=1;s=Double"

[[inputs.opcua.points]]
name = "stale"
node = "ns=1;s=Uncertain"

[[inputs.opcua.points]]
name = "gone"
node = "ns=1;s=NoSuchNode"

[[inputs.opcua.points]]
name = "profile"
node = "ns=1;s=DoubleArray"

[[inputs.opcua.points]]
name = "mode"
node = "ns=1;s=Mode"
access = "pubsub"

[[outputs.mqtt]]
servers = [%q]
buffer = "memory"
`, id, dir+"/data", addr, srv.Endpoint, b.URL()))
	g := startGateway(t, "opcua", cfg, addr)
	defer g.stop()

	type point struct {
		Name   string          `json:"name"`
		Value  json.RawMessage `json:"value"`
		Q      string          `json:"q"`
		TS     int64           `json:"ts"`
		Status *string         `json:"status"`
	}
	last := func() map[string]point {
		msgs := data.Messages()
		for i := len(msgs) - 1; i >= 0; i-- {
			var d struct {
				Device string  `json:"device"`
				Points []point `json:"points"`
			}
			if json.Unmarshal(msgs[i].Payload, &d) == nil && d.Device == "line1" && len(d.Points) == 5 {
				m := map[string]point{}
				for _, p := range d.Points {
					m[p.Name] = p
				}
				return m
			}
		}
		return nil
	}
	var got map[string]point
	waitFor(t, 60*time.Second, "a data message with the five points, speed good", func() bool {
		got = last()
		return got != nil && got["speed"].Q == "good"
	})
	str := func(s *string) string {
		if s == nil {
			return "(none)"
		}
		return *s
	}
	for name, want := range map[string]struct{ q, status, value string }{
		"speed":   {"good", "(none)", "-3.141592653589793"},
		"mode":    {"good", "(none)", "1"},
		"stale":   {"uncertain", "UncertainLastUsableValue", "3"},
		"gone":    {"bad", "BadNodeIdUnknown", "null"},
		"profile": {"bad", "unsupported type: array of Double", "null"},
	} {
		p := got[name]
		if p.Q != want.q || str(p.Status) != want.status || string(p.Value) != want.value {
			t.Errorf("%s: q %q status %s value %s, want %q %s %s", name, p.Q, str(p.Status), p.Value, want.q, want.status, want.value)
		}
	}

	n := 0
	write := func(value string) writeReply {
		n++
		rid := fmt.Sprintf("ua-%d", n)
		payload := fmt.Sprintf(`{"id":%q,"points":{"line1.mode":%s}}`, rid, value)
		var r writeReply
		var sent time.Time
		waitFor(t, 60*time.Second, "the reply to "+rid, func() bool {
			for _, m := range replies.Messages() {
				if json.Unmarshal(m.Payload, &r) == nil && r.ID == rid {
					return true
				}
			}
			// The gateway subscribes after connecting: send again until
			// a reply comes (the same value: idempotent).
			if time.Since(sent) > 3*time.Second {
				testbroker.PublishOnce(t, b.URL(), testbroker.ClientOptions{}, prefix+id+"/data/write", []byte(payload), false)
				sent = time.Now()
			}
			return false
		})
		return r
	}
	// Mode is an Int16 node: 40000 does not fit, -7 does.
	if r := write("40000"); r.Results["line1.mode"].OK || !strings.Contains(r.Results["line1.mode"].Error, "int16") {
		t.Errorf("40000 to an Int16 node: %+v, want refused as beyond int16", r)
	}
	if r := write("-7"); !r.Results["line1.mode"].OK {
		t.Fatalf("-7 refused: %+v", r)
	}
	waitFor(t, 30*time.Second, "mode reported as -7", func() bool {
		m := last()
		return m != nil && string(m["mode"].Value) == "-7"
	})
}
