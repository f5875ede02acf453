package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testbroker"
)

// TestReloadWhileBrokerDown: SIGHUP reloads in place while the broker is
// down (the queue is kept, polling goes on), a broken file is refused and
// the running configuration stays, and everything queued is delivered when
// the broker comes back. Then the server's Reboot command reloads too and
// answers on system/reply, ok or with the error.
func TestReloadWhileBrokerDown(t *testing.T) {
	needBinary(t)
	b := newBroker(t)
	const id = "GW-RELOAD"
	data := b.Collect(t, prefix+id+"/data")
	replies := b.Collect(t, prefix+id+"/system/reply")
	dir := t.TempDir()
	addr := httpAddr(t)
	base := counterConfig(id, "ctr", dir+"/data", addr, b.URL(), "disk")
	extra := `
[[inputs.synthetic]]
device = "extra"
points = 1
interval = "300ms"
pattern = "constant"
`
	broken := extra + `
[[inputs.synthetic]]
device = "broken"
colour = "blue"
`
	path := writeFile(t, dir, "gw.toml", base)
	write := func(doc string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	g := startGateway(t, "reload", path, addr)
	data.Wait(t, 20*time.Second, "the first five values", func(m []testbroker.Received) bool {
		return maxOf(counterValues(t, m, "ctr")) >= 5
	})
	g.waitHealth(10*time.Second, "/healthz 200", func(code int, _ health) bool { return code == 200 })

	b.Stop()
	_, h, _ := g.waitHealth(10*time.Second, "10 queued messages", func(code int, h health) bool {
		_, _, d, _, _ := h.output("up")
		return code == 503 && d >= 10
	})
	_, _, d0, _, _ := h.output("up")

	// A good change: one more input. The process stays, the queue stays.
	write(base + extra)
	g.hup()
	g.waitLog("configuration reloaded", 1, 20*time.Second)
	_, h, raw := g.waitHealth(10*time.Second, "/healthz", func(int, health) bool { return true })
	if _, _, d1, _, _ := h.output("up"); d1 < d0 {
		t.Fatalf("the queue shrank across the reload: %d before, %d after", d0, d1)
	}
	if !strings.Contains(raw, `"inputs.synthetic#2"`) {
		t.Fatalf("the added input is not running after the reload: %s", raw)
	}

	// A broken file: refused, logged, polling goes on.
	write(base + broken)
	g.hup()
	g.waitLog("reload refused", 1, 20*time.Second)
	if !strings.Contains(g.stderr.String(), "colour") {
		t.Errorf("the refusal does not say what is wrong:\n%s", g.stderr.String())
	}
	d2 := g.queueDepth("up")
	g.waitHealth(10*time.Second, "the queue still growing after the refused reload", func(_ int, h health) bool {
		_, _, d, _, _ := h.output("up")
		return d >= d2+5
	})
	if strings.Count(g.stderr.String(), "configuration reloaded") != 1 {
		t.Fatalf("a broken configuration was taken:\n%s", g.stderr.String())
	}
	depth := g.queueDepth("up")

	// The broker comes back.
	b.Restart()
	g.waitHealth(30*time.Second, "the queue delivered and /healthz 200", func(code int, h health) bool {
		_, _, d, _, _ := h.output("up")
		return code == 200 && d == 0
	})
	want := int64(depth) + 5
	msgs := data.Wait(t, 20*time.Second, fmt.Sprintf("counter value %d", want), func(m []testbroker.Received) bool {
		return maxOf(counterValues(t, m, "ctr")) >= want
	})
	checkContinuous(t, "counter across the outage and two reloads", counterValues(t, msgs, "ctr"))
	if len(extraMsgs(t, msgs)) == 0 {
		t.Fatal("no data from the input added by the reload")
	}

	// The server's Reboot command: a good file (without the added input)
	// is taken ...
	type reply struct {
		Command string `json:"command"`
		TS      int64  `json:"ts"`
		OK      bool   `json:"ok"`
		Error   string `json:"error"`
	}
	// reboot sends the command and returns the reply stamped after it
	// (replies travel at QoS 1 through the queue: an earlier one may come
	// again).
	reboot := func() reply {
		t.Helper()
		sent := time.Now().UnixMilli()
		testbroker.PublishOnce(t, b.URL(), testbroker.ClientOptions{}, prefix+id+"/system/Reboot", []byte(`{}`), false)
		var r reply
		replies.Wait(t, 20*time.Second, "the reply to Reboot", func(m []testbroker.Received) bool {
			for _, x := range m {
				if err := json.Unmarshal(x.Payload, &r); err != nil {
					t.Fatalf("reply is not JSON: %s", x.Payload)
				}
				if r.TS >= sent {
					return true
				}
			}
			return false
		})
		return r
	}
	write(base)
	if r := reboot(); !r.OK || r.Command != "Reboot" {
		t.Fatalf("Reboot with a good file: %+v", r)
	}
	g.waitLog("configuration reloaded", 2, 20*time.Second)
	if _, _, raw := g.healthz(); strings.Contains(raw, `"inputs.synthetic#2"`) {
		t.Fatalf("the input removed by the Reboot reload still runs: %s", raw)
	}
	// ... a broken one is refused with the reason, and the gateway goes on.
	write(base + broken)
	r := reboot()
	if r.OK || !strings.Contains(r.Error, "colour") {
		t.Fatalf("Reboot with a broken file: want ok false naming the mistake, got %+v", r)
	}
	g.requireRunning()
	top := maxOf(counterValues(t, data.Messages(), "ctr"))
	data.Wait(t, 10*time.Second, "polling after the refused Reboot", func(m []testbroker.Received) bool {
		return maxOf(counterValues(t, m, "ctr")) >= top+5
	})
	g.stop()
	for _, m := range replies.Messages() {
		t.Logf("system/reply: %s", m.Payload)
	}
	checkContinuous(t, "counter at the end", counterValues(t, data.Messages(), "ctr"))
}

// extraMsgs are the data messages of the device "extra".
func extraMsgs(t *testing.T, msgs []testbroker.Received) []dataMsg {
	t.Helper()
	var out []dataMsg
	for _, m := range msgs {
		var d dataMsg
		if err := json.Unmarshal(m.Payload, &d); err != nil {
			t.Fatalf("data payload is not JSON: %s", m.Payload)
		}
		if d.Device == "extra" {
			out = append(out, d)
		}
	}
	return out
}
