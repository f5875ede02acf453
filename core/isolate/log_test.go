package isolate

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// chatty logs one record per level when initialised, as a plugin's own
// code does (log/slog), to show what reaches the gateway.
type chatty struct{}

func (chatty) Init(context.Context, *sdk.InitRequest) (*sdk.InitResponse, error) {
	slog.Debug("chatty: debug detail", "n", 1)
	slog.Info("chatty: connected", "n", 2)
	slog.Warn("chatty: device does not answer", "device", "plc1", "n", 3)
	// Longer than the host's line buffer for a built-in plugin.
	slog.Warn("chatty: garbled answer", "device", "plc2", "answer", strings.Repeat("0x55 ", 4000))
	slog.Error("chatty: giving up", "n", 4)
	return &sdk.InitResponse{}, nil
}
func (chatty) Close(context.Context) error                { return nil }
func (chatty) Gather(context.Context) (*sdk.Frame, error) { return &sdk.Frame{}, nil }

func init() {
	sdk.Register(sdk.Registration{Kind: sdk.KindInput, Name: "testchatty", Factory: func() sdk.Plugin { return chatty{} }})
}

// syncBuffer is a log destination the test reads while go-plugin writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// records parses the JSON log lines written so far.
func (s *syncBuffer) records(t *testing.T) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func find(recs []map[string]any, msg string) map[string]any {
	for _, r := range recs {
		if r["msg"] == msg {
			return r
		}
	}
	return nil
}

func TestIsolatedPluginLogsReachTheGatewayAtTheirLevel(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})).With("plugin", "inputs.testchatty#plc")
	spec := selfSpec(t, "inputs.testchatty")
	spec.Logger = log
	spec.builtin = true // as BuiltinSpec: the host's 4 KB line buffer
	startInit(t, spec, "")
	// The records cross the plugin's stderr asynchronously: wait for the last.
	deadline := time.Now().Add(20 * time.Second)
	for find(buf.records(t), "chatty: giving up") == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the plugin's error record never reached the gateway's log; got:\n%s", buf.b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	recs := buf.records(t)
	for msg, level := range map[string]string{
		"chatty: connected":              "INFO",
		"chatty: device does not answer": "WARN",
		"chatty: garbled answer":         "WARN",
		"chatty: giving up":              "ERROR",
	} {
		r := find(recs, msg)
		if r == nil {
			t.Fatalf("%q missing from the gateway's log:\n%s", msg, buf.b.String())
		}
		if r["level"] != level || r["plugin"] != "inputs.testchatty#plc" {
			t.Errorf("%q: level %v plugin %v, want %s and the plugin's alias", msg, r["level"], r["plugin"], level)
		}
	}
	if w := find(recs, "chatty: device does not answer"); w["device"] != "plc1" || w["n"] != 3.0 {
		t.Errorf("the warning lost its attributes: %v", w)
	}
	if g := find(recs, "chatty: garbled answer"); g["device"] != "plc2" || g["log_truncated"] == nil {
		t.Errorf("the long warning arrived without its device or the note that it was cut: %.300v", g)
	}
	if find(recs, "chatty: debug detail") != nil {
		t.Errorf("a debug record passed a gateway logging at info")
	}
}
