package s7_test

import (
	"context"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// TestConfigErrors: every mistake is reported at once, at its key, and
// Init opens nothing (the address is never dialled).
func TestConfigErrors(t *testing.T) {
	conf := `
device = "a.b"
address = "tcp://10.0.0.1"
rack = 9
slot = 40
connection_type = "hmi"
pdu_size = 100
[[points]]
name = "p1"
address = "DB1.DBW0"
type = "lreal2"
[[points]]
name = "p2"
address = "DB1.DBD0"
type = "int"
[[points]]
name = "p3"
address = "DB1.DBW0"
type = "bool"
[[points]]
name = "p4"
address = "M0.1"
type = "word"
[[points]]
name = "p5"
address = "MW0"
type = "string"
length = 300
[[points]]
name = "p6"
address = "MB0"
scale = 0.0
[[points]]
name = "p7"
address = "M0.0"
scale = 2.0
[[points]]
name = "p8"
address = "X1"
[[points]]
name = "p9"
address = "MW0"
length = 4
[[points]]
name = "ok"
address = "MW2"
[[points]]
name = "ok"
address = "MW4"
`
	_, err := (&sdkPlugin{}).init(conf)
	errs := sdk.AsConfigErrors(err)
	want := []string{
		`device: "a.b": a device name cannot hold dots`,
		`address: "tcp://10.0.0.1": want host or host:port, without a scheme`,
		`rack: 9: want 0..7`,
		`slot: 40: want 0..31`,
		`connection_type: "hmi": want pg, op or basic`,
		`pdu_size: 100: want 240..65535`,
		`points[0].type: unknown type "lreal2"`,
		`points[1].type: DB1.DBD0 is 4 bytes wide, type int only 2`,
		`points[2].type: a bool needs a bit address`,
		`points[3].type: M0.1 is one bit: its type is bool, not word`,
		`points[4].length: 300: an S7 STRING holds 1..254 characters`,
		`points[5].scale: 0: want a finite number other than 0`,
		`points[6].scale: scale and offset apply to numbers, not bool`,
		`points[7].address: address "X1": unknown area`,
		`points[8].length: length only applies to strings`,
		`points[10].name: point "ok" is already defined as points[9]`,
	}
	if len(errs) != len(want) {
		t.Errorf("%d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
	for _, e := range errs {
		if e.Line == 0 {
			t.Errorf("no line for %v", e)
		}
	}
}

// TestConfigDefaults: a minimal table is valid, asks for a 1 s poll and
// offers its points with the registry's type names.
func TestConfigDefaults(t *testing.T) {
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		resp := sdktest.Init(t, p, "device = \"plc\"\naddress = \"192.0.2.1\"\n[[points]]\nname = \"v\"\naddress = \"DB1.DBW0\"\ntype = \"int\"\naccess = \"pubsub\"\n")
		if resp.Interval.Seconds() != 1 || len(resp.Points) != 1 {
			t.Fatalf("%+v", resp)
		}
		if s := resp.Points[0]; s.Type != "int16" || s.Kind != sdk.KindInt || s.FullName() != "plc.v" || !s.Access.Subscribes() {
			t.Fatalf("schema %+v", s)
		}
	})
}

type sdkPlugin struct{}

func (sdkPlugin) init(conf string) (*sdk.InitResponse, error) {
	p := factory()
	defer func() { _ = p.Close(context.Background()) }()
	return p.Init(context.Background(), sdktest.Request(conf))
}
