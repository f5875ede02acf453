package agent

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/core/config"
)

// The Reboot command answers with Validate's error: a literal tls_key the
// mqtt output cannot read must not be quoted in it.
func TestValidateNeverQuotesALiteralSecret(t *testing.T) {
	doc := fmt.Sprintf(`[agent]
device_id = "GW-T"
data_dir = %q
[[inputs.synthetic]]
[[outputs.mqtt]]
servers = ["tls://127.0.0.1:8883"]
tls_cert = "/nonexistent/cert.pem"
tls_key = "Lit3ral-Key-Material"
`, t.TempDir())
	cfg, err := config.Parse("reboot.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	a := New(cfg, Options{DryRun: true})
	err = a.Validate(context.Background(), cfg)
	if err == nil {
		t.Fatal("an unreadable tls_key validated")
	}
	if msg := err.Error(); strings.Contains(msg, "Lit3ral") || !strings.Contains(msg, "reboot.toml:8: outputs.mqtt#1.tls_key:") {
		t.Fatalf("got %q", msg)
	}
}
