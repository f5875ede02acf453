package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/internal/testbroker"
)

// broker is a broker that can go away and come back on the same port, and
// whose collectors see everything published while they were connected or
// not (mosquitto: persistence and a persistent session; mochi: an
// in-broker subscription renewed on restart).
type broker interface {
	Name() string
	URL() string
	Stop()
	Restart()
	// Collect records every message on filter from now on, across
	// restarts of the broker.
	Collect(t *testing.T, filter string) *testbroker.Collector
}

// newBroker is mosquitto (a separate process, as in the field) when it is
// installed, mochi in the test's process otherwise or when
// EDGEPIPE_E2E_BROKER=mochi.
func newBroker(t *testing.T) broker {
	t.Helper()
	if testbroker.MosquittoPath() != "" && os.Getenv("EDGEPIPE_E2E_BROKER") != "mochi" {
		return &mosquittoBroker{Mosquitto: testbroker.StartMosquitto(t, testbroker.MosquittoOptions{})}
	}
	t.Log("mosquitto not installed: using the in-process mochi broker")
	return &mochiBroker{Mochi: testbroker.StartMochi(t, testbroker.MochiOptions{})}
}

type mosquittoBroker struct {
	*testbroker.Mosquitto
	n int
}

func (b *mosquittoBroker) Name() string { return "mosquitto" }

func (b *mosquittoBroker) Collect(t *testing.T, filter string) *testbroker.Collector {
	b.n++
	return testbroker.Subscribe(t, b.URL(), filter, testbroker.ClientOptions{
		ClientID:   fmt.Sprintf("e2e-%d-%s-%d", os.Getpid(), t.Name(), b.n),
		Persistent: true,
	})
}

type mochiBroker struct{ *testbroker.Mochi }

func (b *mochiBroker) Name() string { return "mochi" }

func (b *mochiBroker) Collect(_ *testing.T, filter string) *testbroker.Collector {
	return b.Subscribe(filter)
}

// dataMsg is the default data payload (SPEC section 4).
type dataMsg struct {
	TS     int64  `json:"ts"`
	Device string `json:"device"`
	Points []struct {
		Name  string          `json:"name"`
		Value json.RawMessage `json:"value"`
		Q     string          `json:"q"`
		TS    int64           `json:"ts"`
	} `json:"points"`
}

// counterValues decodes the default data payloads of device (one integer
// point each, the synthetic counter), in arrival order.
func counterValues(t *testing.T, msgs []testbroker.Received, device string) []int64 {
	t.Helper()
	var out []int64
	for _, m := range msgs {
		var d dataMsg
		if err := json.Unmarshal(m.Payload, &d); err != nil {
			t.Fatalf("data payload on %s is not JSON: %v: %s", m.Topic, err, m.Payload)
		}
		if d.Device != device {
			continue
		}
		if len(d.Points) != 1 || d.Points[0].Name != "p0" || d.Points[0].Q != "good" {
			t.Fatalf("unexpected data payload: %s", m.Payload)
		}
		var v int64
		if err := json.Unmarshal(d.Points[0].Value, &v); err != nil {
			t.Fatalf("counter value is not an integer: %s", m.Payload)
		}
		out = append(out, v)
	}
	return out
}

// maxOf is the largest value, 0 for none.
func maxOf(vals []int64) int64 {
	var m int64
	for _, v := range vals {
		m = max(m, v)
	}
	return m
}

// checkContinuous asserts that a counter's values, as they arrived, start
// at 1 and that every value seen for the first time is the next one:
// nothing missing, nothing out of order. Values seen again (QoS 1 resends)
// are allowed. It returns the largest value.
func checkContinuous(t *testing.T, what string, vals []int64) int64 {
	t.Helper()
	var top int64
	dups := 0
	for i, v := range vals {
		switch {
		case v == top+1:
			top = v
		case v <= top:
			dups++
		default:
			lo := max(0, i-5)
			t.Fatalf("%s: value %d arrived after %d (missing %d..%d); arrivals around it: %v",
				what, v, top, top+1, v-1, vals[lo:min(len(vals), i+5)])
		}
	}
	if top == 0 {
		t.Fatalf("%s: no values", what)
	}
	t.Logf("%s: values 1..%d all delivered in order (%d messages, %d resent duplicates)", what, top, len(vals), dups)
	return top
}

// mustNotContain fails when text holds secret.
func mustNotContain(t *testing.T, where, text, secret string) {
	t.Helper()
	if strings.Contains(text, secret) {
		i := strings.Index(text, secret)
		lo, hi := max(0, i-200), min(len(text), i+len(secret)+100)
		t.Errorf("the secret appears in %s: ...%s...", where, text[lo:hi])
	}
}
