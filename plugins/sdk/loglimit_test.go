package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk/internal/wire"
)

// A record longer than the host's line buffer still arrives as one JSON
// line at its level, with its message's start and the attributes that fit.
func TestLongLogRecordIsCutToOneLineAtItsLevel(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(newPluginLogHandler(&buf))
	args := []any{"device", "plc1", "answer", strings.Repeat("ab\"<\n", 20000)}
	for i := range 50 {
		args = append(args, fmt.Sprintf("k%02d", i), strings.Repeat("x", 200))
	}
	log.Warn("read failed: "+strings.Repeat("é", 5000), args...)
	log.Info("short", "n", 1)

	lines := strings.SplitAfter(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%.500s", len(lines), buf.String())
	}
	if len(lines[0]) > wire.LogLineBytes {
		t.Errorf("the long record's line is %d bytes, over the host's %d", len(lines[0]), wire.LogLineBytes)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &r); err != nil {
		t.Fatalf("cut line is no JSON: %v\n%.300s", err, lines[0])
	}
	msg, _ := r["@message"].(string)
	if r["@level"] != "warn" || !strings.HasPrefix(msg, "read failed: éé") || r["device"] != "plc1" {
		t.Errorf("cut record lost its level, message or first attribute: %.300v", r)
	}
	if note, _ := r["log_truncated"].(string); !strings.Contains(note, "attributes left out") {
		t.Errorf("log_truncated = %q, want the count of what was left out", note)
	}
	if _, err := time.Parse(hostTimeLayout, fmt.Sprint(r["@timestamp"])); err != nil {
		t.Errorf("cut record's @timestamp: %v", err)
	}
	var s map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &s); err != nil || s["@message"] != "short" || s["log_truncated"] != nil {
		t.Errorf("a short record did not pass as it was: %v %v", s, err)
	}
}

// FuzzCutLogLine: whatever the line, what leaves is one JSON object on one
// line within the limit.
func FuzzCutLogLine(f *testing.F) {
	f.Add([]byte(`{"@level":"warn","@message":"x","a":{"b":
1}}`+"\n"), 512)
	f.Add([]byte("not json\n"), 600)
	f.Add([]byte(`{"@message":"`+strings.Repeat(`\u0001`, 900)+`"}`), 1000)
	f.Fuzz(func(t *testing.T, line []byte, max int) {
		max = 512 + abs(max)%8192
		out := cutLogLine(line, max)
		if len(out) > max {
			t.Fatalf("%d bytes, over %d", len(out), max)
		}
		if bytes.IndexByte(out, '\n') != len(out)-1 {
			t.Fatalf("not one line: %q", out)
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("no JSON object: %v: %q", err, out)
		}
		if _, ok := m["log_truncated"]; !ok {
			t.Fatalf("no log_truncated: %q", out)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
