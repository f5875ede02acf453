package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/internal/testbroker"
	_ "github.com/edgepipe/edgepipe/plugins/inputs/modbus"
	"github.com/edgepipe/edgepipe/sim/modbussim"
)

// syncBuffer is a log sink the agent's goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type reply struct {
	ID      string `json:"id"`
	OK      *bool  `json:"ok"`
	Error   string `json:"error"`
	Results map[string]struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	} `json:"results"`
}

// startWriteGateway runs a gateway with a Modbus input on the simulator
// and an MQTT output on a mochi broker, and returns the broker once the
// command subscription is made.
func startWriteGateway(t testing.TB, log *syncBuffer, buffer string, isolated bool) (*testbroker.Mochi, *Agent, *modbussim.Server) {
	t.Helper()
	return startWriteGatewayWith(t, log, buffer, isolated, "")
}

// startWriteGatewayWith is startWriteGateway with more [agent] keys.
func startWriteGatewayWith(t testing.TB, log *syncBuffer, buffer string, isolated bool, agentKeys string) (*testbroker.Mochi, *Agent, *modbussim.Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sim, err := modbussim.Start(ctx, "tcp://127.0.0.1:0", &modbussim.Config{Units: []modbussim.UnitConfig{{ID: 1}}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = sim.Close() })
	b := testbroker.StartMochi(t, testbroker.MochiOptions{})
	doc := fmt.Sprintf(`[agent]
device_id = "GW-W"
data_dir = %q
%s
[[inputs.modbus]]
url = %q
interval = "1h"
[[inputs.modbus.devices]]
name = "plc"
unit_id = 1
[[inputs.modbus.devices.points]]
name = "sp"
area = "holding"
address = 0
type = "uint16"
access = "pubsub"
[[outputs.mqtt]]
servers = [%q]
buffer = %q
`, t.TempDir(), agentKeys, sim.Addr(), b.URL(), buffer)
	cfg, err := config.Parse("w.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(log, nil)), Isolation: func(*config.Plugin) bool { return isolated }})
	if err := a.Open(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	a.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Stop(ctx)
	})
	deadline := time.Now().Add(20 * time.Second)
	for len(b.Server().Topics.Subscribers("Topic/flexem/fbox/GW-W/data/write").Subscriptions) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no command subscription")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return b, a, sim
}

// A flood of writes is answered, every one: written, or refused busy when
// the intake is full, never dropped. Each write leaves an audit line.
func TestWriteFloodEveryCommandAnswered(t *testing.T) {
	for _, iso := range []bool{false, true} {
		t.Run(fmt.Sprint("isolated=", iso), func(t *testing.T) { writeFlood(t, iso) })
	}
}

func writeFlood(t *testing.T, isolated bool) {
	const n = 2000
	var log syncBuffer
	b, _, sim := startWriteGateway(t, &log, "disk", isolated)
	replies := b.Subscribe("Topic/flexem/fbox/GW-W/data/write/reply")
	pub := testbroker.NewPublisher(t, b.URL(), testbroker.ClientOptions{})
	for i := 0; i < n; i++ {
		pub.Publish(t, "Topic/flexem/fbox/GW-W/data/write", fmt.Appendf(nil, `{"id":"w-%d","points":{"plc.sp":%d}}`, i, i), false)
	}
	got := replies.Wait(t, 60*time.Second, "a reply to every write", func(r []testbroker.Received) bool { return len(r) >= n })
	seen := map[string]bool{}
	written, busy := 0, 0
	for _, m := range got {
		var r reply
		if err := json.Unmarshal(m.Payload, &r); err != nil {
			t.Fatalf("reply %s: %v", m.Payload, err)
		}
		if seen[r.ID] {
			t.Fatalf("two replies to %s", r.ID)
		}
		seen[r.ID] = true
		switch {
		case r.Results["plc.sp"].OK:
			written++
		case r.OK != nil && !*r.OK && strings.HasPrefix(r.Error, "busy: "):
			busy++
		default:
			t.Fatalf("reply neither written nor busy: %s", m.Payload)
		}
	}
	if len(seen) != n || written == 0 {
		t.Fatalf("%d distinct replies for %d writes, %d written", len(seen), n, written)
	}
	t.Logf("%d writes: %d written, %d answered busy", n, written, busy)
	// The last write that was taken is in the device.
	regs, err := sim.Read(1, modbussim.Holding, 0, 1)
	if err != nil || int(regs[0]) >= n {
		t.Fatalf("register %v %v", regs, err)
	}
	if !strings.Contains(log.String(), "msg=write id=w-0 point=plc.sp value=0 result=") {
		t.Fatalf("no audit line for w-0 in the log:\n%.2000s", log.String())
	}
}

// A payload far over max_command_size is refused unparsed, with its id
// salvaged and a short reply; a long value within the limit is refused
// without being quoted back whole.
func TestOversizedAndLongValuesGetShortReplies(t *testing.T) {
	var log syncBuffer
	b, _, sim := startWriteGateway(t, &log, "memory", false)
	replies := b.Subscribe("Topic/flexem/fbox/GW-W/data/write/reply")
	pub := testbroker.NewPublisher(t, b.URL(), testbroker.ClientOptions{})
	huge := `{"id":"huge-1","points":{"plc.sp":"` + strings.Repeat("9", 1<<20) + `"}}`
	pub.Publish(t, "Topic/flexem/fbox/GW-W/data/write", []byte(huge), false)
	long := `{"id":"long-1","points":{"plc.sp":` + strings.Repeat("9", 5000) + `}}`
	pub.Publish(t, "Topic/flexem/fbox/GW-W/data/write", []byte(long), false)
	got := replies.Wait(t, 30*time.Second, "two replies", func(r []testbroker.Received) bool { return len(r) >= 2 })
	for i, want := range []struct{ id, err string }{
		{"huge-1", "larger than max_command_size (65536 bytes)"},
		{"long-1", "does not fit uint16"},
	} {
		p := got[i].Payload
		if len(p) >= 2048 || strings.Contains(string(p), strings.Repeat("9", 65)) {
			t.Errorf("reply %d of %d bytes quotes too much: %.300s", i, len(p), p)
		}
		var r reply
		if err := json.Unmarshal(p, &r); err != nil || r.ID != want.id {
			t.Fatalf("reply %s: %v", p, err)
		}
		e := r.Error + r.Results["plc.sp"].Error
		if !strings.Contains(e, want.err) {
			t.Errorf("reply %s, want an error with %q", p, want.err)
		}
	}
	if regs, _ := sim.Read(1, modbussim.Holding, 0, 1); regs[0] != 0 {
		t.Fatalf("a refused write reached the device: %v", regs)
	}
	if l := log.String(); strings.Contains(l, strings.Repeat("9", 65)) || !strings.Contains(l, "id=huge-1") {
		t.Fatalf("audit log quotes too much or misses the refusal:\n%.3000s", l)
	}
}

// A configured agent.max_command_size reaches the output, also an
// isolated one (it crosses in the Init request): a command over it is
// refused unparsed with the configured figure, one under it is written.
func TestConfiguredMaxCommandSize(t *testing.T) {
	for _, iso := range []bool{false, true} {
		t.Run(fmt.Sprint("isolated=", iso), func(t *testing.T) {
			var log syncBuffer
			b, _, sim := startWriteGatewayWith(t, &log, "memory", iso, `max_command_size = "1KB"`)
			replies := b.Subscribe("Topic/flexem/fbox/GW-W/data/write/reply")
			pub := testbroker.NewPublisher(t, b.URL(), testbroker.ClientOptions{})
			over := `{"id":"over-1","points":{"plc.sp":7},"pad":"` + strings.Repeat("x", 2048) + `"}`
			pub.Publish(t, "Topic/flexem/fbox/GW-W/data/write", []byte(over), false)
			pub.Publish(t, "Topic/flexem/fbox/GW-W/data/write", []byte(`{"id":"under-1","points":{"plc.sp":9}}`), false)
			got := replies.Wait(t, 30*time.Second, "two replies", func(r []testbroker.Received) bool { return len(r) >= 2 })
			byID := map[string]reply{}
			for _, m := range got {
				var r reply
				if err := json.Unmarshal(m.Payload, &r); err != nil {
					t.Fatalf("reply %s: %v", m.Payload, err)
				}
				byID[r.ID] = r
			}
			if r, ok := byID["over-1"]; !ok || !strings.Contains(r.Error, "larger than max_command_size (1024 bytes)") {
				t.Fatalf("reply to the command over the limit: %+v (present %v)", r, ok)
			}
			if r, ok := byID["under-1"]; !ok || !r.Results["plc.sp"].OK {
				t.Fatalf("reply to the command under the limit: %+v (present %v)", r, ok)
			}
			if regs, err := sim.Read(1, modbussim.Holding, 0, 1); err != nil || regs[0] != 9 {
				t.Fatalf("register %v %v, want 9 (and never 7)", regs, err)
			}
		})
	}
}

// BenchmarkWriteRoundTrip measures writes per second end to end: a server
// publishes writes at QoS 1 to the broker, the gateway checks them, writes
// the Modbus simulator and publishes each reply, which the server
// receives. Replies go through a disk queue, as by default.
func BenchmarkWriteRoundTrip(b *testing.B) {
	for _, buffer := range []string{"disk", "memory"} {
		b.Run("buffer="+buffer, func(b *testing.B) {
			var log syncBuffer
			br, _, _ := startWriteGateway(b, &log, buffer, false)
			replies := br.Subscribe("Topic/flexem/fbox/GW-W/data/write/reply")
			pub := testbroker.NewPublisher(b, br.URL(), testbroker.ClientOptions{})
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				pub.Publish(b, "Topic/flexem/fbox/GW-W/data/write", fmt.Appendf(nil, `{"id":"b-%d","points":{"plc.sp":%d}}`, i, i%60000), false)
			}
			replies.WaitCount(b, b.N, 5*time.Minute)
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
			busy := 0
			for _, m := range replies.Messages() {
				if bytes.Contains(m.Payload, []byte(`"error":"busy: `)) {
					busy++
				}
			}
			b.ReportMetric(float64(busy)/float64(b.N), "busy/op")
		})
	}
}
