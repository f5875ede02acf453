package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testbroker"
	"github.com/edgepipe/edgepipe/sim/modbussim"
)

// floodReply is a write reply with the whole command's result too (a
// busy or too-large command is refused as a whole).
type floodReply struct {
	ID      string `json:"id"`
	OK      *bool  `json:"ok"`
	Error   string `json:"error"`
	Results map[string]struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	} `json:"results"`
}

// TestWriteFloodAndHugeCommandAnswered is issue 10's flood and size cases
// through the real binary and broker against the Modbus simulator: 2,000
// writes sent back to back are all answered (written, or refused busy;
// none dropped, none answered twice), and a 1 MiB write is answered with
// an error in a reply under 2 KiB, without reaching the device.
func TestWriteFloodAndHugeCommandAnswered(t *testing.T) {
	needBinary(t)
	sim := writeSim(t)
	b := newBroker(t)
	const id = "GW-FL"
	replies := b.Collect(t, prefix+id+"/data/write/reply")
	dir := t.TempDir()
	addr := httpAddr(t)
	g := startGateway(t, "flood", writeFile(t, dir, "gw.toml", writeGateway(id, dir, addr, sim.Addr(), b.URL())), addr)
	defer g.stop()
	g.waitHealth(30*time.Second, "the output connected", func(code int, h health) bool { return code == 200 })

	decode := func(m testbroker.Received) floodReply {
		var r floodReply
		if err := json.Unmarshal(m.Payload, &r); err != nil {
			t.Fatalf("reply %.200s: %v", m.Payload, err)
		}
		return r
	}
	find := func(rid string) (floodReply, bool) {
		for _, m := range replies.Messages() {
			if r := decode(m); r.ID == rid {
				return r, true
			}
		}
		return floodReply{}, false
	}
	// The gateway subscribes after connecting: a probe is sent until it is
	// answered, so that the flood is not published before that.
	var sent time.Time
	waitFor(t, 60*time.Second, "the reply to the probe", func() bool {
		if _, ok := find("probe"); ok {
			return true
		}
		if time.Since(sent) > 3*time.Second {
			testbroker.PublishOnce(t, b.URL(), testbroker.ClientOptions{}, prefix+id+"/data/write", []byte(`{"id":"probe","points":{"plc.sp":1}}`), false)
			sent = time.Now()
		}
		return false
	})

	const n = 2000
	pub := testbroker.NewPublisher(t, b.URL(), testbroker.ClientOptions{})
	for i := 0; i < n; i++ {
		pub.Publish(t, prefix+id+"/data/write", fmt.Appendf(nil, `{"id":"f-%d","points":{"plc.sp":%d}}`, i, i%1000), false)
	}
	count := func() (map[string]int, int, int) {
		seen := map[string]int{}
		written, busy := 0, 0
		for _, m := range replies.Messages() {
			r := decode(m)
			if !strings.HasPrefix(r.ID, "f-") {
				continue
			}
			seen[r.ID]++
			switch {
			case r.Results["plc.sp"].OK:
				written++
			case r.OK != nil && !*r.OK && strings.HasPrefix(r.Error, "busy: "):
				busy++
			default:
				t.Fatalf("reply neither written nor busy: %.300s", m.Payload)
			}
		}
		return seen, written, busy
	}
	waitFor(t, 120*time.Second, "a reply to each of the 2,000 writes", func() bool {
		seen, _, _ := count()
		return len(seen) >= n
	})
	seen, written, busy := count()
	for rid, k := range seen {
		if k != 1 {
			t.Fatalf("%d replies to %s", k, rid)
		}
	}
	if written == 0 {
		t.Fatal("no write of the flood was carried out")
	}
	t.Logf("%d writes: %d written, %d answered busy", n, written, busy)

	before, err := sim.Read(1, modbussim.Holding, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	huge := `{"id":"huge-e2e","points":{"plc.sp":"` + strings.Repeat("9", 1<<20) + `"}}`
	pub.Publish(t, prefix+id+"/data/write", []byte(huge), false)
	waitFor(t, 60*time.Second, "the reply to the 1 MiB write", func() bool { _, ok := find("huge-e2e"); return ok })
	for _, m := range replies.Messages() {
		r := decode(m)
		if r.ID != "huge-e2e" {
			continue
		}
		if len(m.Payload) >= 2<<10 || r.OK == nil || *r.OK || !strings.Contains(r.Error, "larger than max_command_size") {
			t.Fatalf("reply of %d bytes to the 1 MiB write: %.300s", len(m.Payload), m.Payload)
		}
	}
	if after, err := sim.Read(1, modbussim.Holding, 2, 1); err != nil || after[0] != before[0] {
		t.Fatalf("the 1 MiB write changed the set point: %v -> %v (%v)", before, after, err)
	}
}
