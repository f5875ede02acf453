package config

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestPackedRoundTrip(t *testing.T) {
	for _, s := range []string{"", "x", strings.Repeat("[[points]]\nname = \"r1\"\n", 1000)} {
		if got := pack([]byte(s)).bytes(); !bytes.Equal(got, []byte(s)) {
			t.Fatalf("%q came back as %q", s, got)
		}
	}
}

// TestPluginTextKeptSmall: a plugin's own table is kept deflated, a
// fraction of its text (what a configured point costs for as long as the
// configuration runs), and reads back whole.
func TestPluginTextKeptSmall(t *testing.T) {
	var b strings.Builder
	b.WriteString("[agent]\ndevice_id = \"GW\"\n[[inputs.cfgtest]]\nurl = \"tcp://127.0.0.1:502\"\n[[inputs.cfgtest.devices]]\nname = \"plc\"\n")
	for i := range 10000 {
		fmt.Fprintf(&b, "[[inputs.cfgtest.devices.points]]\nname = \"r%05d\"\naddress = %d\ntype = \"uint16\"\n", i, i)
	}
	cfg, err := Parse("big.toml", []byte(b.String()), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Inputs[0]
	text := p.Text()
	if !bytes.Contains(text, []byte(`name = "r09999"`)) {
		t.Fatalf("the table does not read back whole (%d bytes)", len(text))
	}
	if kept := len(p.text.z); kept*4 > len(text) {
		t.Fatalf("the table is kept in %d bytes for a text of %d", kept, len(text))
	}
	t.Logf("%d bytes of table kept in %d", len(text), len(p.text.z))
}
