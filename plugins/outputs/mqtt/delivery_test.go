package mqtt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testbroker"
	"github.com/edgepipe/edgepipe/internal/testproxy"
	"github.com/edgepipe/edgepipe/plugins/outputs/mqtt"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// TestEachMessageKeepsItsQoS: a message goes out at its own QoS (the
// template's), and the output's qos only lowers what is above it.
func TestEachMessageKeepsItsQoS(t *testing.T) {
	m := testbroker.StartMochi(t, testbroker.MochiOptions{})
	cases := []struct {
		name, conf string
		want       []byte // for messages asking QoS 0, 1, 2
	}{
		{"unset", "", []byte{0, 1, 2}},
		{"ceiling1", "qos = 1\n", []byte{0, 1, 1}},
		{"ceiling0", "qos = 0\n", []byte{0, 0, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sdktest.Run(t, func() sdk.Plugin { return mqtt.New() }, func(t *testing.T, p sdk.Plugin) {
				topic := base + "/qos/" + strings.ReplaceAll(t.Name(), "/", "_")
				sub := m.Subscribe(topic)
				sdktest.Init(t, p, fmt.Sprintf("servers = [%q]\n%s", m.URL(), c.conf))
				waitHealth(t, p, 10*time.Second, "connected", connected)
				var msgs []sdk.Message
				for q := range byte(3) {
					msgs = append(msgs, sdk.Message{Topic: topic, Payload: []byte{'0' + q}, QoS: q})
				}
				publish(t, p, msgs)
				got := sub.WaitCount(t, 3, 10*time.Second)
				for i, r := range got {
					if r.QoS != c.want[i] {
						t.Errorf("message asking QoS %d went out at QoS %d, want %d", i, r.QoS, c.want[i])
					}
				}
			})
		})
	}
}

// TestTimeoutConfirmsThePrefixAndResendsOnlyTheRest: 30 messages of 20 KB
// through a 200 KB/s link with a one-second budget. Publish reports how
// many the server confirmed in that second; the connection is aborted so
// that nothing is sent behind the core's back; after the reconnect only
// the rest is published. The server sees every message, in order of first
// arrival, and no more duplicates than were in flight.
func TestTimeoutConfirmsThePrefixAndResendsOnlyTheRest(t *testing.T) {
	m := testbroker.StartMochi(t, testbroker.MochiOptions{})
	sdktest.Run(t, func() sdk.Plugin { return mqtt.New() }, func(t *testing.T, p sdk.Plugin) {
		topic := base + "/partial/" + strings.ReplaceAll(t.Name(), "/", "_")
		sub := m.Subscribe(topic)
		px := testproxy.Start(t, m.Addr(), 200<<10)
		sdktest.Init(t, p, fmt.Sprintf("servers = [\"tcp://%s\"]\nconnect_timeout = \"2s\"\nmax_reconnect_interval = \"100ms\"\n", px.Addr()))
		waitHealth(t, p, 10*time.Second, "connected", connected)
		const n = 30
		msgs := make([]sdk.Message, n)
		for i := range msgs {
			pl := bytes.Repeat([]byte{'.'}, 20<<10)
			copy(pl, fmt.Sprintf("%04d", i))
			msgs[i] = sdk.Message{Topic: topic, Payload: pl, QoS: 1}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := p.(sdk.Output).Publish(ctx, msgs)
		cancel()
		k := sdk.ConfirmedOf(err, n)
		if err == nil || k == 0 || k == n {
			t.Fatalf("a 600 KB batch over 200 KB/s in 1 s: err %v, %d confirmed; want a partial error", err, k)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("partial error %v does not say the budget ran out", err)
		}
		waitHealth(t, p, 10*time.Second, "reconnected after the abort", func(h sdk.Health) bool { return h.OK && px.Accepted() >= 2 })
		publish(t, p, msgs[k:])
		var got []testbroker.Received
		sub.Wait(t, 20*time.Second, "every message", func(r []testbroker.Received) bool {
			got = r
			return len(distinctInOrder(r)) == n
		})
		for i, r := range distinctInOrder(got) {
			if !bytes.Equal(r.Payload, msgs[i].Payload) {
				t.Fatalf("message %d out of order: %.4s", i, r.Payload)
			}
		}
		if dups := len(got) - n; dups > n-k {
			t.Errorf("%d duplicates; only %d messages were in flight when the budget ran out", dups, n-k)
		}
		t.Logf("%d confirmed in the budget, %d received in all", k, len(got))
	})
}
