package mqtt_test

import (
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testbroker"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// TestMQTTOverWebSocket publishes through mosquitto's websockets listener,
// ws:// and wss:// (TLS with the test CA; refused without it), and reads
// back through its ordinary MQTT listener.
func TestMQTTOverWebSocket(t *testing.T) {
	t.Run("ws", func(t *testing.T) {
		m := testbroker.StartMosquitto(t, testbroker.MosquittoOptions{WebSockets: true})
		sub := testbroker.Subscribe(t, m.URL(), base+"/data", testbroker.ClientOptions{})
		if !strings.HasPrefix(m.WebSocketURL(), "ws://") {
			t.Fatalf("websocket URL %s", m.WebSocketURL())
		}
		o := start(t, fmt.Sprintf("servers = [%q]\n", m.WebSocketURL()))
		waitHealth(t, o, 10*time.Second, "connected over WebSocket", connected)
		msgs := withLarge(messages(50, base+"/data"))
		publish(t, o, msgs)
		checkInOrder(t, sub.WaitCount(t, len(msgs), 10*time.Second), msgs)
	})
	t.Run("wss", func(t *testing.T) {
		ca := testbroker.NewCA(t, "ws-ca")
		m := testbroker.StartMosquitto(t, testbroker.MosquittoOptions{WebSockets: true, Server: ca.Server(t, "broker")})
		sub := testbroker.Subscribe(t, m.URL(), base+"/data", testbroker.ClientOptions{TLS: &tls.Config{RootCAs: ca.Pool()}})
		if !strings.HasPrefix(m.WebSocketURL(), "wss://") {
			t.Fatalf("websocket URL %s", m.WebSocketURL())
		}
		o := start(t, fmt.Sprintf("servers = [%q]\ntls_ca = %q\n", m.WebSocketURL(), ca.CertFile))
		waitHealth(t, o, 10*time.Second, "connected over WebSocket in TLS", connected)
		msgs := withLarge(messages(50, base+"/data"))
		publish(t, o, msgs)
		checkInOrder(t, sub.WaitCount(t, len(msgs), 10*time.Second), msgs)

		o2 := start(t, fmt.Sprintf("servers = [%q]\nclient_id = \"GW-NOCA\"\nmax_reconnect_interval = \"100ms\"\n", m.WebSocketURL()))
		// The counter moves during the first round, the reason at its end:
		// wait for the reason itself, which must name the certificate.
		waitHealth(t, o2, 10*time.Second, "a refusal naming the certificate problem", func(h sdk.Health) bool {
			return !h.OK && h.Counters["connect_failures"] > 0 && strings.Contains(h.Reason, "certificate")
		})
	})
}
