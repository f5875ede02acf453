package agent

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/core/config"
)

// A processor binary configured as an input used to open fine and then
// fail every poll with "Unimplemented"; the kind it serves comes back in
// the Init handshake and a mismatch is refused with the table's line.
func TestExternalPluginOfTheWrongKindIsRefusedAtOpen(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		table, args string
		line        int
		want        string
	}{
		{"inputs", `["__plugin", "processors.testrender"]`, 5, "serves processors, not inputs: configure it as [[processors.external]]"},
		{"outputs", `["__plugin", "inputs.synthetic"]`, 5, "serves inputs, not outputs: configure it as [[inputs.external]]"},
	} {
		doc := fmt.Sprintf(`[agent]
device_id = "GW-T"
data_dir = %q
[[inputs.synthetic]]
[[%s.external]]
command = %q
args = %s
`, t.TempDir(), tc.table, self, tc.args)
		cfg, err := config.Parse("kind.toml", []byte(doc), os.LookupEnv)
		if err != nil {
			t.Fatal(err)
		}
		a := New(cfg, Options{DryRun: true})
		err = a.Open(context.Background(), true)
		if err == nil {
			a.Close(context.Background())
			t.Fatalf("%s: a binary of the wrong kind was accepted", tc.table)
		}
		want := fmt.Sprintf("kind.toml:%d: %s.external#1: %s serves", tc.line, tc.table, self)
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: got %q, want %q ... %q", tc.table, err, want, tc.want)
		}
	}
}
