package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/core/queue"
	"github.com/edgepipe/edgepipe/internal/testbroker"
	_ "github.com/edgepipe/edgepipe/plugins/inputs/synthetic"
	_ "github.com/edgepipe/edgepipe/plugins/outputs/mqtt"
	_ "github.com/edgepipe/edgepipe/plugins/processors/template"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// With the template and the MQTT output isolated and a memory queue, the
// template's frames go back to its client once their messages are
// delivered, and the next replies are decoded into their memory: through
// a broker outage that piles polls up in the queue, every message that
// arrives is one poll's whole batch, each poll's own (a buffer given back
// while its message still waited would arrive overwritten by a later
// poll: a repeated or broken payload).
func TestIsolatedProcessorFramesGoBackOnlyOnceDelivered(t *testing.T) {
	m := testbroker.StartMochi(t, testbroker.MochiOptions{})
	sub := m.Subscribe("#")
	doc := fmt.Sprintf(`[agent]
device_id = "GW-SETTLE"
data_dir = %q
[[inputs.synthetic]]
device = "d"
points = 300
pattern = "counter"
interval = "20ms"
[[processors.template]]
isolated = true
[[outputs.mqtt]]
isolated = true
servers = [%q]
qos = 1
connect_timeout = "1s"
max_reconnect_interval = "100ms"
buffer = "memory"
`, t.TempDir(), m.URL())
	cfg, err := config.Parse("settle.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, Options{})
	ctx := context.Background()
	if err := a.Open(ctx, true); err != nil {
		t.Fatal(err)
	}
	a.Start()
	defer a.Stop(ctx)
	returned := func() int {
		a.returns.mu.Lock()
		defer a.returns.mu.Unlock()
		return a.returns.returned
	}
	waitFor(t, "frames given back", func() bool { return returned() >= 10 })
	out := a.outputs[0]
	m.Stop()
	waitFor(t, "polls queued while the broker is down", func() bool { return out.q.Stats().Depth >= 30 })
	m.Restart()
	waitFor(t, "the backlog delivered", func() bool { return out.q.Stats().Depth < 3 })
	before := returned()
	waitFor(t, "frames given back after the outage", func() bool { return returned() > before+5 })

	seen := map[string]bool{}
	polls := 0
	for _, r := range sub.Messages() {
		if !bytes.Contains([]byte(r.Topic), []byte("/data")) {
			continue
		}
		var batch struct {
			Points []struct {
				Name string `json:"name"`
			} `json:"points"`
		}
		if err := json.Unmarshal(r.Payload, &batch); err != nil {
			t.Fatalf("a payload that is not the template's JSON (%v): %.200s", err, r.Payload)
		}
		if len(batch.Points) != 300 {
			t.Fatalf("a batch of %d points, want 300: %.200s", len(batch.Points), r.Payload)
		}
		if !seen[string(r.Payload)] {
			seen[string(r.Payload)] = true
			polls++
		}
	}
	if polls < 40 {
		t.Fatalf("%d distinct polls arrived, want at least 40", polls)
	}
	t.Logf("%d polls arrived intact, %d frames given back", polls, returned())
}

// releaseLog records the frames given back to it.
type releaseLog struct{ got []*sdk.Frame }

func (r *releaseLog) ReleaseFrame(f *sdk.Frame) { r.got = append(r.got, f) }

// Held frames go back in order once every memory queue has settled past
// them, and never after the pipeline stopped (forgetHeld): a reload may
// give their queued messages to an output that is not isolated.
func TestHeldFramesGoBackInOrderAndAreForgottenOnStop(t *testing.T) {
	q1, q2 := queue.NewMemory(0), queue.NewMemory(0)
	a := &Agent{outputs: []*outputRunner{{q: q1}, {q: q2}}}
	r := &releaseLog{}
	msgs := []sdk.Message{{Topic: "t", Payload: []byte("x")}}
	var frames []*sdk.Frame
	for range 3 {
		f := &sdk.Frame{Messages: msgs}
		_ = q1.Push(msgs)
		_ = q2.Push(msgs)
		a.hold(r, f)
		frames = append(frames, f)
	}
	ack := func(q *queue.Memory, n int) {
		if _, err := q.Peek(n); err != nil {
			t.Fatal(err)
		}
		if err := q.Ack(n); err != nil {
			t.Fatal(err)
		}
		a.settle()
	}
	ack(q1, 2)
	if len(r.got) != 0 {
		t.Fatalf("%d frames given back with one queue still holding their messages", len(r.got))
	}
	ack(q2, 1)
	if len(r.got) != 1 || r.got[0] != frames[0] {
		t.Fatalf("given back %v, want the first frame alone", r.got)
	}
	a.forgetHeld()
	ack(q2, 2)
	ack(q1, 1)
	if len(r.got) != 1 {
		t.Fatalf("%d frames given back after they were forgotten", len(r.got)-1)
	}
}
