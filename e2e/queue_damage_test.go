package e2e

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testbroker"
)

// damageConfig polls 40 counter points every 25 ms into one MQTT output
// "up" with a disk queue of 64 KiB segments (buffer_limit / 8): a few
// seconds of broker outage make several segment files.
func damageConfig(deviceID, device, dataDir, httpListen, url string) string {
	return fmt.Sprintf(`[agent]
device_id = %q
data_dir = %q
http_listen = %q
log_level = "info"

[[inputs.synthetic]]
device = %q
points = 40
interval = "25ms"
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
buffer = "disk"
buffer_limit = "512KiB"
`, deviceID, dataDir, httpListen, device, url)
}

// queuedRecord is one record of a segment file, read with the queue's
// framing (u32 body length, u32 CRC, body = u64 seq, u8 flags, u16 topic
// length, topic, payload).
type queuedRecord struct {
	off, n int
	value  int64 // the counter value of point p0 in its payload
}

func readSegment(t *testing.T, path string) []queuedRecord {
	t.Helper()
	data := mustRead(t, path)
	var out []queuedRecord
	for off := 0; off+8 <= len(data); {
		body := int(binary.LittleEndian.Uint32(data[off:]))
		if off+8+body > len(data) {
			t.Fatalf("%s: record at %d cut short before the test damaged anything", path, off)
		}
		b := data[off+8 : off+8+body]
		tl := int(binary.LittleEndian.Uint16(b[9:]))
		var d dataMsg
		if err := json.Unmarshal(b[11+tl:], &d); err != nil || len(d.Points) == 0 {
			t.Fatalf("%s: record at %d: %v", path, off, err)
		}
		var v int64
		_ = json.Unmarshal(d.Points[0].Value, &v)
		out = append(out, queuedRecord{off: off, n: 8 + body, value: v})
		off += 8 + body
	}
	return out
}

// TestQueueDamageRecoveredAtRestart: messages queued on disk while the
// broker is down, then the files are damaged in each of the ways a disk
// does it (a zeroed byte, a flipped bit, a deleted middle segment, a cut
// tail). The next gateway, with the broker up, delivers every intact
// record, in order, and logs once how many messages the damage cost.
func TestQueueDamageRecoveredAtRestart(t *testing.T) {
	needBinary(t)
	b := newBroker(t)
	const id = "GW-QDAMAGE"
	data := b.Collect(t, prefix+id+"/data")
	b.Stop()
	dir := t.TempDir()
	dataDir := dir + "/data"
	addr1, addr2 := httpAddr(t), httpAddr(t)
	cfg1 := writeFile(t, dir, "run1.toml", damageConfig(id, "run1", dataDir, addr1, b.URL()))
	cfg2 := writeFile(t, dir, "run2.toml", damageConfig(id, "run2", dataDir, addr2, b.URL()))

	g1 := startGateway(t, "run1", cfg1, addr1)
	qdir := filepath.Join(dataDir, "queue", "up")
	segments := func() []string {
		m, _ := filepath.Glob(filepath.Join(qdir, "*.seg"))
		sort.Strings(m)
		return m
	}
	waitFor(t, 60*time.Second, "six segment files", func() bool {
		g1.requireRunning()
		return len(segments()) >= 6
	})
	g1.stop()

	files := segments()
	recs := make([][]queuedRecord, len(files))
	for i, f := range files {
		recs[i] = readSegment(t, f)
	}
	lost := map[int64]bool{}
	patch := func(file int, r queuedRecord, f func(byte) byte) {
		b := mustRead(t, files[file])
		at := r.off + r.n/2 // inside the payload
		b[at] = f(b[at])
		if err := os.WriteFile(files[file], b, 0o600); err != nil {
			t.Fatal(err)
		}
		lost[r.value] = true
	}
	mid := func(i int) queuedRecord { return recs[i][len(recs[i])/2] }
	patch(1, mid(1), func(byte) byte { return 0 })          // a zeroed byte
	patch(2, mid(2), func(c byte) byte { return c ^ 0x08 }) // a flipped bit
	if err := os.Remove(files[3]); err != nil {             // a deleted middle segment
		t.Fatal(err)
	}
	for _, r := range recs[3] {
		lost[r.value] = true
	}
	last := len(files) - 1
	tail := recs[last][len(recs[last])-1]
	if err := os.Truncate(files[last], int64(tail.off+tail.n/2)); err != nil { // a cut tail
		t.Fatal(err)
	}
	lostCounted := 2 + len(recs[3]) // the cut tail was never confirmed to the producer: not counted
	lost[tail.value] = true
	var intact []int64
	for _, rs := range recs {
		for _, r := range rs {
			if !lost[r.value] {
				intact = append(intact, r.value)
			}
		}
	}

	b.Restart()
	g2 := startGateway(t, "run2", cfg2, addr2)
	data.Wait(t, 60*time.Second, fmt.Sprintf("the %d intact records of run 1", len(intact)), func(m []testbroker.Received) bool {
		got := map[int64]bool{}
		for _, v := range p0Values(t, m, "run1") {
			got[v] = true
		}
		for _, v := range intact {
			if !got[v] {
				return false
			}
		}
		return true
	})
	g2.waitLog("queue was damaged", 1, 10*time.Second)
	metrics := g2.get("/metrics")
	g2.stop()

	log := g2.stderr.String()
	if !strings.Contains(log, fmt.Sprintf("lost_messages=%d", lostCounted)) || !strings.Contains(log, "missing_files=1") ||
		strings.Contains(log, "cut_tail_bytes=0") {
		t.Errorf("the loss is not logged with its count (%d messages, 1 missing file):\n%s", lostCounted, log)
	}
	if n := strings.Count(log, "queue was damaged"); n != 1 {
		t.Errorf("damage logged %d times", n)
	}
	for _, want := range []string{
		fmt.Sprintf(`edgepipe_queue_dropped_total{plugin="up",reason="corrupt"} %d`, lostCounted),
		`edgepipe_queue_corrupt_total{plugin="up"} 3`, // zeroed, flipped, missing; the cut tail looks like a torn write
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Delivered in order (a resent duplicate aside), and none of the
	// damaged ones made up.
	top := int64(-1)
	seen := map[int64]bool{}
	for _, v := range p0Values(t, data.Messages(), "run1") {
		if lost[v] {
			t.Errorf("damaged record %d was delivered", v)
		}
		if !seen[v] && v < top {
			t.Errorf("run 1's value %d arrived after %d", v, top)
		}
		seen[v], top = true, max(top, v)
	}
	t.Logf("%d segment files, %d intact records delivered, %d messages lost to the damage", len(files), len(intact), len(lost))
}

// p0Values decodes point p0 of device's data payloads, in arrival order.
func p0Values(t *testing.T, msgs []testbroker.Received, device string) []int64 {
	t.Helper()
	var out []int64
	for _, m := range msgs {
		var d dataMsg
		if err := json.Unmarshal(m.Payload, &d); err != nil {
			t.Fatalf("data payload on %s is not JSON: %v", m.Topic, err)
		}
		if d.Device != device || len(d.Points) == 0 {
			continue
		}
		var v int64
		_ = json.Unmarshal(d.Points[0].Value, &v)
		out = append(out, v)
	}
	return out
}
