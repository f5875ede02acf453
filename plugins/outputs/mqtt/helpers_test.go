package mqtt_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testbroker"
	"github.com/edgepipe/edgepipe/plugins/outputs/mqtt"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

const (
	devID     = "GW-TEST"
	prefix    = "Topic/flexem/fbox/"
	base      = prefix + devID
	statusTop = base + "/status"
)

// broker is what the tests need from either broker.
type broker struct {
	name      string
	url       string
	subscribe func(filter string) *testbroker.Collector
	stop      func()
	restart   func()
}

// brokers runs fn against mochi in-process and, when installed, mosquitto.
func brokers(t *testing.T, mo testbroker.MochiOptions, qo testbroker.MosquittoOptions, clientTLS func() *testbroker.ClientOptions, fn func(t *testing.T, b broker)) {
	t.Run("mochi", func(t *testing.T) {
		m := testbroker.StartMochi(t, mo)
		fn(t, broker{name: "mochi", url: m.URL(), subscribe: m.Subscribe, stop: m.Stop, restart: m.Restart})
	})
	t.Run("mosquitto", func(t *testing.T) {
		q := testbroker.StartMosquitto(t, qo)
		co := testbroker.ClientOptions{Username: qo.Username, Password: qo.Password, Persistent: true}
		if clientTLS != nil {
			co = *clientTLS()
		}
		fn(t, broker{name: "mosquitto", url: q.URL(),
			subscribe: func(filter string) *testbroker.Collector { return testbroker.Subscribe(t, q.URL(), filter, co) },
			stop:      q.Stop, restart: q.Restart})
	})
}

// start makes an output from a config table and closes it at test end.
func start(t testing.TB, conf string) *mqtt.Output {
	t.Helper()
	o := mqtt.New()
	sdktest.Init(t, o, conf)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = o.Close(ctx)
	})
	return o
}

// waitHealth polls Health until cond holds.
func waitHealth(t testing.TB, p sdk.Plugin, timeout time.Duration, what string, cond func(sdk.Health) bool) sdk.Health {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var h sdk.Health
	for {
		var err error
		h, err = p.(sdk.HealthReporter).Health(context.Background())
		if err != nil {
			t.Fatalf("Health: %v", err)
		}
		if cond(h) {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last health %+v", what, h)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func connected(h sdk.Health) bool { return h.OK }

func messages(n int, topic string) []sdk.Message {
	out := make([]sdk.Message, n)
	for i := range out {
		out[i] = sdk.Message{Topic: topic, Payload: fmt.Appendf(nil, `{"seq":%d}`, i), QoS: 1}
	}
	return out
}

// withLarge puts payloads that go to paho by reference (from 1 KB to
// 300 KB, each of its own bytes) among msgs, in order.
func withLarge(msgs []sdk.Message) []sdk.Message {
	var out []sdk.Message
	for i, m := range msgs {
		out = append(out, m)
		if i%5 == 0 {
			size := []int{1 << 10, 60 << 10, 300 << 10, 5 << 10}[i/5%4]
			p := make([]byte, size)
			for j := range p {
				p[j] = byte(i + j*7)
			}
			out = append(out, sdk.Message{Topic: m.Topic, Payload: p, QoS: m.QoS})
		}
	}
	return out
}

func publish(t testing.TB, p sdk.Plugin, msgs []sdk.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.(sdk.Output).Publish(ctx, msgs); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// checkInOrder asserts the payloads are exactly want, in order.
func checkInOrder(t testing.TB, got []testbroker.Received, want []sdk.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].Payload, want[i].Payload) {
			t.Fatalf("message %d: got %s, want %s", i, got[i].Payload, want[i].Payload)
		}
	}
}

// logCapture records everything logged through slog's default logger
// while the test runs (the plugin picks the default logger at Init).
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logCapture) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func captureLogs(t testing.TB) *logCapture {
	c := &logCapture{}
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(c, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })
	return c
}

func waitLog(t testing.TB, c *logCapture, substr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(c.String(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q; log:\n%s", substr, c.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// distinctInOrder returns the messages in order of first arrival, without
// the repeats that at-least-once delivery allows after a reconnection.
func distinctInOrder(got []testbroker.Received) []testbroker.Received {
	seen := map[string]bool{}
	var out []testbroker.Received
	for _, r := range got {
		if !seen[string(r.Payload)] {
			seen[string(r.Payload)] = true
			out = append(out, r)
		}
	}
	return out
}
