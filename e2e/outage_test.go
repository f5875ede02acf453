package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testbroker"
)

const prefix = "Topic/flexem/fbox/"

// counterConfig is a gateway polling one synthetic counter point on device
// every 100 ms (every poll reported: no deadband) into one MQTT output
// aliased "up" at QoS 1 with the given buffer.
func counterConfig(deviceID, device, dataDir, httpListen, url, buffer string) string {
	return fmt.Sprintf(`[agent]
device_id = %q
data_dir = %q
http_listen = %q
log_level = "info"

[[inputs.synthetic]]
device = %q
points = 1
interval = "100ms"
pattern = "counter"
type = "int"

[[outputs.mqtt]]
alias = "up"
servers = [%q]
qos = 1
keepalive = "2s"
ping_timeout = "1s"
connect_timeout = "2s"
max_reconnect_interval = "500ms"
buffer = %q
`, deviceID, dataDir, httpListen, device, url, buffer)
}

// TestBrokerOutageNothingLostInOrder: the broker goes away for ~10 s and
// comes back on the same port; every value polled before, during and after
// the outage reaches a subscriber, in order.
func TestBrokerOutageNothingLostInOrder(t *testing.T) {
	needBinary(t)
	b := newBroker(t)
	const id = "GW-OUTAGE"
	data := b.Collect(t, prefix+id+"/data")
	dir := t.TempDir()
	addr := httpAddr(t)
	cfg := writeFile(t, dir, "gw.toml", counterConfig(id, "ctr", dir+"/data", addr, b.URL(), "disk"))
	g := startGateway(t, "outage", cfg, addr)

	data.Wait(t, 20*time.Second, "the first ten counter values", func(m []testbroker.Received) bool {
		return maxOf(counterValues(t, m, "ctr")) >= 10
	})
	g.waitHealth(10*time.Second, "/healthz 200 while connected", func(code int, _ health) bool { return code == 200 })
	before := maxOf(counterValues(t, data.Messages(), "ctr"))

	b.Stop()
	stopped := time.Now()
	// The gateway notices, says so in /healthz and queues.
	_, h, raw := g.waitHealth(10*time.Second, "/healthz 503 with a growing queue", func(code int, h health) bool {
		ok, reason, depth, _, _ := h.output("up")
		return code == 503 && !ok && reason != "" && depth >= 20
	})
	_, reason, _, _, _ := h.output("up")
	t.Logf("during the outage (%s): %s", b.Name(), reason)
	if strings.Contains(raw, `"ok":true,"plugins"`) {
		t.Fatalf("/healthz says ok during the outage: %s", raw)
	}
	// The outage itself: its length is the point of the test, not a
	// synchronisation.
	time.Sleep(time.Until(stopped.Add(10 * time.Second)))
	depth := g.queueDepth("up")
	if depth < 50 {
		t.Fatalf("after 10 s of outage at 10 polls/s only %d messages are queued", depth)
	}
	b.Restart()

	g.waitHealth(30*time.Second, "the queue replayed and /healthz 200", func(code int, h health) bool {
		_, _, d, _, _ := h.output("up")
		return code == 200 && d == 0
	})
	// Values polled after the restart arrive too.
	want := before + int64(depth) + 10
	data.Wait(t, 20*time.Second, fmt.Sprintf("counter value %d", want), func(m []testbroker.Received) bool {
		return maxOf(counterValues(t, m, "ctr")) >= want
	})
	g.stop()
	top := checkContinuous(t, "counter across the outage", counterValues(t, data.Messages(), "ctr"))
	t.Logf("%d values before the outage, %d queued during it, %d in all", before, depth, top)
}

// TestKill9WhileBrokerDown: values queued on disk while the broker is down
// survive kill -9 of the gateway and are delivered by the next process
// using the same data_dir, before anything the new process polls.
func TestKill9WhileBrokerDown(t *testing.T) {
	needBinary(t)
	b := newBroker(t)
	const id = "GW-KILL"
	data := b.Collect(t, prefix+id+"/data")
	dir := t.TempDir()
	dataDir := dir + "/data"
	// Two configurations sharing data_dir and the output alias (so the
	// queue, data_dir/queue/up), with a device name per run: the counter
	// restarts from 1 in a new process.
	addr1, addr2 := httpAddr(t), httpAddr(t)
	cfg1 := writeFile(t, dir, "run1.toml", counterConfig(id, "run1", dataDir, addr1, b.URL(), "disk"))
	cfg2 := writeFile(t, dir, "run2.toml", counterConfig(id, "run2", dataDir, addr2, b.URL(), "disk"))

	g1 := startGateway(t, "run1", cfg1, addr1)
	data.Wait(t, 20*time.Second, "the first five values of run 1", func(m []testbroker.Received) bool {
		return maxOf(counterValues(t, m, "run1")) >= 5
	})
	// delivered: a value that had arrived before /healthz showed an empty
	// queue had been acknowledged, so nothing up to it is left to send.
	var delivered int64
	waitFor(t, 10*time.Second, "an empty queue", func() bool {
		delivered = maxOf(counterValues(t, data.Messages(), "run1"))
		code, h, _ := g1.healthz()
		_, _, d, _, _ := h.output("up")
		return code == 200 && d == 0
	})

	b.Stop()
	// About two seconds of polls queue up.
	_, h, _ := g1.waitHealth(15*time.Second, "20 queued messages", func(_ int, h health) bool {
		_, _, d, _, _ := h.output("up")
		return d >= 20
	})
	_, _, queued, _, _ := h.output("up")
	g1.kill()
	// Everything polled before the kill: at least what was delivered plus
	// what /healthz last saw queued. Every queued message is data: the
	// retained status is news and never enters the queue.
	mustHave := delivered + int64(queued)

	b.Restart()
	g2 := startGateway(t, "run2", cfg2, addr2)
	data.Wait(t, 30*time.Second, fmt.Sprintf("run 1 up to %d and run 2's first values", mustHave), func(m []testbroker.Received) bool {
		return maxOf(counterValues(t, m, "run1")) >= mustHave && maxOf(counterValues(t, m, "run2")) >= 5
	})
	g2.stop()
	if !strings.Contains(g2.stderr.String(), "queue holds messages from before the restart") {
		t.Errorf("run 2 did not log that it replays the queue:\n%s", g2.stderr.String())
	}

	msgs := data.Messages()
	top := checkContinuous(t, "run 1 (killed)", counterValues(t, msgs, "run1"))
	checkContinuous(t, "run 2", counterValues(t, msgs, "run2"))
	if top < mustHave {
		t.Fatalf("run 1 delivered up to %d, but %d had been polled before kill -9", top, mustHave)
	}
	// Replay comes first: every value of run 1 arrived before run 2's first.
	firstRun2 := -1
	seen := map[int64]int{}
	for i, m := range msgs {
		var d dataMsg
		_ = json.Unmarshal(m.Payload, &d)
		if d.Device == "run2" && firstRun2 < 0 {
			firstRun2 = i
		}
		if d.Device == "run1" {
			var v int64
			_ = json.Unmarshal(d.Points[0].Value, &v)
			if _, ok := seen[v]; !ok {
				seen[v] = i
			}
		}
	}
	for v, i := range seen {
		if i > firstRun2 {
			t.Errorf("run 1's value %d first arrived after run 2's first message", v)
		}
	}
	t.Logf("delivered %d before the outage, %d queued at kill -9, run 1 delivered up to %d", delivered, queued, top)
}

// TestLastWillAfterKill9: the retained status goes online on connect and
// offline (the Last Will) when the gateway is killed.
func TestLastWillAfterKill9(t *testing.T) {
	needBinary(t)
	b := newBroker(t)
	const id = "GW-WILL"
	dir := t.TempDir()
	addr := httpAddr(t)
	cfg := writeFile(t, dir, "gw.toml", counterConfig(id, "ctr", dir+"/data", addr, b.URL(), "memory"))
	g := startGateway(t, "will", cfg, addr)
	g.waitHealth(20*time.Second, "/healthz 200", func(code int, _ health) bool { return code == 200 })

	type status struct {
		Status  string `json:"status"`
		TS      int64  `json:"ts"`
		Version string `json:"version"`
	}
	decode := func(m testbroker.Received) status {
		var s status
		if err := json.Unmarshal(m.Payload, &s); err != nil {
			t.Fatalf("status payload is not JSON: %s", m.Payload)
		}
		return s
	}
	// A subscriber arriving after the gateway connected gets the retained
	// online status.
	sub := testbroker.Subscribe(t, b.URL(), prefix+id+"/status", testbroker.ClientOptions{})
	msgs := sub.WaitCount(t, 1, 10*time.Second)
	on := decode(msgs[0])
	if on.Status != "online" || !msgs[0].Retain || on.TS < time.Now().Add(-time.Minute).UnixMilli() || on.Version == "" {
		t.Fatalf("want a retained online status with ts and version, got retain=%v %s", msgs[0].Retain, msgs[0].Payload)
	}

	g.kill()
	killed := time.Now()
	msgs = sub.Wait(t, 15*time.Second, "the offline Last Will", func(m []testbroker.Received) bool {
		return len(m) >= 2
	})
	if s := decode(msgs[1]); s.Status != "offline" {
		t.Fatalf("after kill -9 want status offline, got %s", msgs[1].Payload)
	}
	t.Logf("Last Will after %v", time.Since(killed).Round(time.Millisecond))
	// And it is retained: a newcomer learns the gateway is offline.
	late := testbroker.Subscribe(t, b.URL(), prefix+id+"/status", testbroker.ClientOptions{})
	lm := late.WaitCount(t, 1, 10*time.Second)
	if s := decode(lm[0]); s.Status != "offline" || !lm[0].Retain {
		t.Fatalf("retained status after kill -9: retain=%v %s", lm[0].Retain, lm[0].Payload)
	}
}
