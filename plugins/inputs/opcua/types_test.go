package opcua_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/core/command"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// untypedConfig is writable points of internal/testopcua/server.js without `type`.
func untypedConfig(endpoint string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "device = \"plc\"\nendpoint = %q\ninterval = \"200ms\"\ntimeout = \"2s\"\n", endpoint)
	for _, p := range [][2]string{{"setpoint", "Setpoint"}, {"mode", "Mode"}, {"enabled", "Enabled"}, {"label", "Label"},
		{"small", "Small"}, {"empty", "Empty"}, {"darr", "DoubleArray"}, {"missing", "NoSuchNode"}} {
		fmt.Fprintf(&b, "[[points]]\nname = %q\nnode = \"ns=1;s=%s\"\naccess = \"pubsub\"\n", p[0], p[1])
	}
	return b.String()
}

// TestWritableWithoutType: a writable point without `type` gets its
// node's data type from the server at Init (the Value's built-in type, or
// the DataType of a node with no value yet), so the core checks a write
// from the server against it (command.Convert, as for an MQTT write) and
// the plugin writes it in that type. Nodes that cannot be written (an
// array, an unknown node) are registered without a kind: the core refuses
// writes to them.
func TestWritableWithoutType(t *testing.T) {
	srv := sharedServer(t)
	conf := untypedConfig(srv.Endpoint)
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		resp := initReq(t, p, conf, "")
		schemas := map[string]sdk.PointSchema{}
		for _, s := range resp.Points {
			schemas[s.Name] = s
		}
		for name, want := range map[string]struct {
			kind sdk.Kind
			typ  string
		}{"setpoint": {sdk.KindFloat, "float64"}, "mode": {sdk.KindInt, "int16"}, "enabled": {sdk.KindBool, "bool"},
			"label": {sdk.KindString, "string"}, "small": {sdk.KindUint, "uint8"}, "empty": {sdk.KindFloat, "float64"},
			"darr": {sdk.KindNone, ""}, "missing": {sdk.KindNone, ""}} {
			if s := schemas[name]; s.Kind != want.kind || s.Type != want.typ {
				t.Errorf("%s: kind %s type %q, want %s %q", name, s.Kind, s.Type, want.kind, want.typ)
			}
		}
		convert := func(name, raw string) (sdk.Value, error) {
			return command.Convert(json.RawMessage(raw), schemas[name])
		}
		for name, raw := range map[string]string{"mode": "40000", "small": "-1", "enabled": `"yes"`, "darr": "[1]", "missing": "1"} {
			if v, err := convert(name, raw); err == nil {
				t.Errorf("%s = %s accepted as %#v", name, raw, v)
			}
		}
		r := stream(t, p)
		_, from := r.waitFor(t, 0, "a good setpoint", pointIs("setpoint", sdk.QualityGood))
		var reqs []sdk.WriteRequest
		for _, w := range [][2]string{{"setpoint", "42.25"}, {"mode", "-7"}, {"small", "9"}, {"empty", "1.25"}} {
			v, err := convert(w[0], w[1])
			if err != nil {
				t.Fatalf("%s = %s refused: %v", w[0], w[1], err)
			}
			reqs = append(reqs, sdk.WriteRequest{Device: "plc", Name: w[0], Value: v})
		}
		res, err := p.(sdk.Writer).Write(context.Background(), reqs)
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range res {
			if x.Error != "" {
				t.Errorf("%s: %s", reqs[i].Name, x.Error)
			}
		}
		b, _ := r.waitFor(t, from, "the read-back", func(b sdk.Batch) bool { return b.ReadBack })
		for name, want := range map[string]sdk.Value{"setpoint": sdk.Float(42.25), "mode": sdk.Int(-7), "small": sdk.Uint(9),
			"empty": sdk.Float(1.25)} {
			if pt := byName(b)[name]; !pt.Value.Equal(want) {
				t.Errorf("read back %s: %#v, want %#v", name, pt.Value, want)
			}
		}
		res, _ = p.(sdk.Writer).Write(context.Background(), []sdk.WriteRequest{{Device: "plc", Name: "setpoint", Value: sdk.Float(20.5)},
			{Device: "plc", Name: "mode", Value: sdk.Int(1)}, {Device: "plc", Name: "small", Value: sdk.Uint(7)}})
		for _, x := range res {
			if x.Error != "" {
				t.Error(x.Error)
			}
		}
	})
}

// TestWritableWithoutTypeServerDown: with the server unreachable at Init
// the configuration is still accepted (a PLC that is off is not a
// configuration error) and the point has no kind, so the core refuses
// writes to it rather than guess; once the server is there, the log says
// which type to set.
func TestWritableWithoutTypeServerDown(t *testing.T) {
	srv := startServer(t) // its own: stopped, then started again
	srv.Kill()
	logs := captureLog(t)
	p := factory()
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	resp := initReq(t, p, untypedConfig(srv.Endpoint), "")
	for _, s := range resp.Points {
		if s.Kind != sdk.KindNone {
			t.Errorf("%s: kind %s without a server", s.Name, s.Kind)
		}
	}
	if _, err := command.Convert(json.RawMessage("1"), resp.Points[0]); err == nil {
		t.Error("a write to a point of no kind accepted")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	r := stream(t, p)
	r.waitFor(t, 0, "a good setpoint", pointIs("setpoint", sdk.QualityGood))
	logs.waitFor(t, func(m string) bool {
		return strings.Contains(m, "point=setpoint") && strings.Contains(m, `set="type = \"float64\""`)
	})
}

// logCapture collects the text of every log record while a test runs.
type logCapture struct {
	mu     sync.Mutex
	lines  []string
	notify chan struct{}
}

func captureLog(t *testing.T) *logCapture {
	c := &logCapture{notify: make(chan struct{}, 1)}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(c, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return c
}

func (c *logCapture) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.lines = append(c.lines, string(b))
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return len(b), nil
}

func (c *logCapture) waitFor(t *testing.T, match func(string) bool) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		c.mu.Lock()
		for _, l := range c.lines {
			if match(l) {
				c.mu.Unlock()
				return
			}
		}
		n := len(c.lines)
		c.mu.Unlock()
		select {
		case <-c.notify:
		case <-deadline:
			t.Fatalf("no such log line in 60 s (%d lines)", n)
		}
	}
}
