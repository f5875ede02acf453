package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/internal/testbroker"
	_ "github.com/edgepipe/edgepipe/plugins/outputs/mqtt"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// The command path end to end: a real broker, the MQTT output receiving
// commands, the core checking and routing them, replies published back.
func TestWriteCommandsGetRepliesPerPoint(t *testing.T) {
	b := testbroker.StartMochi(t, testbroker.MochiOptions{})
	replies := b.Subscribe("Topic/flexem/fbox/GW-CMD/+/+/reply")
	sysReplies := b.Subscribe("Topic/flexem/fbox/GW-CMD/system/reply")
	doc := fmt.Sprintf(`[agent]
device_id = "GW-CMD"
data_dir = %q
[[inputs.synthetic]]
device = "rw"
points = 2
type = "int"
pattern = "constant"
access = "pubsub"
interval = "50ms"
[[inputs.synthetic]]
device = "ro"
points = 1
[[processors.testrender]]
[[outputs.mqtt]]
servers = [%q]
buffer = "memory"
`, t.TempDir(), b.URL())
	cfg, err := config.Parse("cmd.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, Options{})
	if err := a.Open(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	a.Start()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		a.Stop(ctx)
	}()
	waitFor(t, "the output to connect", func() bool { return a.Health(context.Background()).OK })
	// The subscription is made right after connecting; wait for it.
	waitFor(t, "the command subscription", func() bool {
		return len(b.Server().Topics.Subscribers("Topic/flexem/fbox/GW-CMD/data/write").Subscriptions) > 0
	})

	pub := func(topic, payload string) {
		testbroker.PublishOnce(t, b.URL(), testbroker.ClientOptions{}, "Topic/flexem/fbox/GW-CMD/"+topic, []byte(payload), false)
	}
	pub("data/write", `{"id":"req-1","points":{"rw.p1":42,"rw.p0":1.5,"ro.p0":3,"nosuch.x":1}}`)
	got := replies.Wait(t, 10*time.Second, "the write reply", func(r []testbroker.Received) bool { return len(r) >= 1 })
	var reply struct {
		ID      string `json:"id"`
		Results map[string]struct {
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(got[0].Payload, &reply); err != nil || reply.ID != "req-1" {
		t.Fatalf("reply %s: %v", got[0].Payload, err)
	}
	want := map[string]string{"rw.p1": "", "rw.p0": "1.5 does not fit int", "ro.p0": "read-only (access=pub)", "nosuch.x": "unknown point nosuch.x"}
	for name, e := range want {
		r, ok := reply.Results[name]
		if !ok || r.OK != (e == "") || !strings.Contains(r.Error, e) {
			t.Errorf("%s: %+v, want error containing %q", name, r, e)
		}
	}
	// The good point was written even though the others were bad.
	waitFor(t, "the written value to be read back", func() bool {
		f, _ := a.inputs[0].impl.(sdk.Input).Gather(context.Background())
		return f.Batches[0].Points[1].Value.Equal(sdk.Int(42))
	})

	// A payload that is not JSON gets an error reply and changes nothing.
	pub("data/write", `{"id":"req-2","points":{"rw.p0":7`)
	got = replies.Wait(t, 10*time.Second, "the error reply", func(r []testbroker.Received) bool { return len(r) >= 2 })
	if p := string(got[1].Payload); !strings.Contains(p, `"id":"req-2"`) || !strings.Contains(p, `"ok":false`) || !strings.Contains(p, "not a JSON object") {
		t.Fatalf("malformed command reply: %s", p)
	}
	f, _ := a.inputs[0].impl.(sdk.Input).Gather(context.Background())
	if v := f.Batches[0].Points[0].Value; !v.Equal(sdk.Int(0)) {
		t.Fatalf("a malformed command changed rw.p0 to %v", v)
	}

	// An acknowledgement with no alarm processor: an error reply.
	pub("alarm/ack", `{"id":"a-1","rule":"boiler"}`)
	got = replies.Wait(t, 10*time.Second, "the ack reply", func(r []testbroker.Received) bool { return len(r) >= 3 })
	if p := string(got[2].Payload); !strings.Contains(p, `"id":"a-1"`) || !strings.Contains(p, `"ok":false`) {
		t.Fatalf("ack reply: %s", p)
	}
	// Reboot without a reload handler says so.
	pub("system/Reboot", `{}`)
	sr := sysReplies.Wait(t, 10*time.Second, "the system reply", func(r []testbroker.Received) bool { return len(r) >= 1 })
	if p := string(sr[0].Payload); !strings.Contains(p, `"ok":false`) {
		t.Fatalf("reboot reply: %s", p)
	}
}

// The server pauses and resumes one output by a system command; the other
// keeps going, the paused one's queue keeps filling and drains on resume.
func TestPauseAndResumeAnOutputBySystemCommand(t *testing.T) {
	b := testbroker.StartMochi(t, testbroker.MochiOptions{})
	sysReplies := b.Subscribe("Topic/flexem/fbox/GW-P/system/reply")
	out := filepath.Join(t.TempDir(), "second.txt")
	doc := fmt.Sprintf(`[agent]
device_id = "GW-P"
data_dir = %q
[[inputs.synthetic]]
points = 1
interval = "20ms"
[[processors.testrender]]
[[outputs.mqtt]]
alias = "cloud"
servers = [%q]
buffer = "memory"
[[outputs.file]]
alias = "second"
path = %q
buffer = "memory"
`, t.TempDir(), b.URL(), out)
	cfg, err := config.Parse("p.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, Options{})
	if err := a.Open(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	a.Start()
	defer a.Stop(context.Background())
	waitFor(t, "the command subscription", func() bool {
		return len(b.Server().Topics.Subscribers("Topic/flexem/fbox/GW-P/system/Pause").Subscriptions) > 0
	})
	second := a.outputByID("second")
	size := func() int64 {
		st, _ := os.Stat(out)
		if st == nil {
			return 0
		}
		return st.Size()
	}
	waitFor(t, "data in the second output", func() bool { return size() > 0 })
	pub := func(topic, payload string) {
		testbroker.PublishOnce(t, b.URL(), testbroker.ClientOptions{}, "Topic/flexem/fbox/GW-P/system/"+topic, []byte(payload), false)
	}
	reply := func(n int) string {
		r := sysReplies.Wait(t, 10*time.Second, "system reply", func(r []testbroker.Received) bool { return len(r) >= n })
		return string(r[n-1].Payload)
	}

	pub("Pause", `{"id":"p-1","output":"second"}`)
	if r := reply(1); !strings.HasPrefix(r, `{"id":"p-1","command":"Pause",`) || !strings.HasSuffix(r, `"ok":true}`) {
		t.Fatalf("pause reply %s", r)
	}
	waitFor(t, "the paused queue to fill", func() bool { return second.q.Stats().Depth >= 5 })
	paused := size()
	waitFor(t, "more in the paused queue", func() bool { return second.q.Stats().Depth >= 10 })
	if s := size(); s != paused {
		t.Fatalf("the paused output wrote on: %d -> %d bytes", paused, s)
	}
	if !a.outputByID("cloud").enabled.Load() {
		t.Fatal("the other output was paused too")
	}

	pub("Pause", `{"id":"p-2","output":"nosuch"}`)
	if r := reply(2); !strings.Contains(r, `"ok":false`) || !strings.Contains(r, `no output \"nosuch\"`) {
		t.Fatalf("pause of an unknown output: %s", r)
	}
	pub("Resume", `{"id":"p-3","output":"second"}`)
	if r := reply(3); !strings.HasPrefix(r, `{"id":"p-3","command":"Resume",`) || !strings.HasSuffix(r, `"ok":true}`) {
		t.Fatalf("resume reply %s", r)
	}
	waitFor(t, "the resumed output to catch up", func() bool { return size() > paused && second.q.Stats().Depth < 5 })
}
