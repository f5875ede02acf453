package mqtt_test

import (
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testbroker"
)

// TestFleetDoesNotReconnectInLockStep: twenty gateways lose their broker
// at the same instant (it stops); each waits a random part of the shared
// backoff's first ceiling (1 s) before reconnecting, so their reconnects
// are spread over that second instead of arriving together.
func TestFleetDoesNotReconnectInLockStep(t *testing.T) {
	logs := captureLogs(t)
	m := testbroker.StartMochi(t, testbroker.MochiOptions{})
	const fleet = 20
	for i := range fleet {
		o := start(t, fmt.Sprintf("servers = [%q]\nclient_id = \"GW-FLEET-%02d\"\n", m.URL(), i))
		waitHealth(t, o, 20*time.Second, "connected", connected)
	}
	m.Stop()
	lost := regexp.MustCompile(`msg="MQTT connection lost; reconnecting".* in=(\S+)`)
	var waits []time.Duration
	deadline := time.Now().Add(20 * time.Second)
	for {
		waits = waits[:0]
		for _, mm := range lost.FindAllStringSubmatch(logs.String(), -1) {
			d, err := time.ParseDuration(mm[1])
			if err != nil {
				t.Fatalf("wait %q: %v", mm[1], err)
			}
			waits = append(waits, d)
		}
		if len(waits) >= fleet {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d outputs logged their reconnect wait after the broker stopped; log:\n%s", len(waits), fleet, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	slices.Sort(waits)
	for _, d := range waits {
		if d < 0 || d > time.Second {
			t.Fatalf("reconnect wait %v outside [0, 1s]: %v", d, waits)
		}
	}
	if spread := waits[len(waits)-1] - waits[0]; spread < 300*time.Millisecond {
		t.Fatalf("the fleet's reconnect waits lie within %v of each other: %v", spread, waits)
	}
}
