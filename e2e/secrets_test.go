package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testbroker"
)

// TestSecretsStayOut: a password from ${MQTT_PASSWORD} that the broker
// refuses never shows in `check`, in the log of `run` (at debug level,
// over several refused connections), in /healthz or /metrics; the CONNACK
// refusal does show in /healthz, with 503.
func TestSecretsStayOut(t *testing.T) {
	needBinary(t)
	// A TOML parser quotes the run of letters it choked on: a leak shows as
	// the secret's first letters, so the check looks for those too.
	const secret = "QxzvSecretPw-7f1c"
	b := testbroker.StartMochi(t, testbroker.MochiOptions{Username: "gw", Password: "the-right-one"})
	dir := t.TempDir()
	addr := httpAddr(t)
	env := []string{"MQTT_PASSWORD=" + secret}
	cfg := writeFile(t, dir, "gw.toml", fmt.Sprintf(`[agent]
device_id = "GW-SECRET"
data_dir = %q
http_listen = %q
log_level = "debug"

[[inputs.synthetic]]
device = "s"
points = 2
interval = "200ms"

[[outputs.mqtt]]
alias = "up"
servers = [%q]
username = "gw"
password = "${MQTT_PASSWORD}"
connect_timeout = "2s"
max_reconnect_interval = "300ms"
buffer = "memory"
`, dir+"/data", addr, b.URL()))

	code, stdout, stderr := runCmd(t, env, "check", "--config", cfg)
	if code != 0 {
		t.Fatalf("check: exit %d\n%s%s", code, stdout, stderr)
	}
	mustNotContain(t, "check's output", stdout+stderr, secret[:6])

	// A TOML mistake on the password's line: the parser's message must
	// not quote the substituted value.
	bad := writeFile(t, dir, "bad.toml", strings.Replace(string(mustRead(t, cfg)),
		`password = "${MQTT_PASSWORD}"`, `password = ${MQTT_PASSWORD}`, 1))
	code, stdout, stderr = runCmd(t, env, "check", "--config", bad)
	if code != 1 {
		t.Errorf("check of an unquoted password: exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	mustNotContain(t, "check's errors for a malformed password line", stdout+stderr, secret[:6])
	pwLine := 1 + strings.Count(strings.Split(string(mustRead(t, bad)), "password =")[0], "\n")
	if want := fmt.Sprintf("%s:%d: ", bad, pwLine); !strings.Contains(stderr, want) {
		t.Errorf("check should name the password's line, %s\n%s", want, stderr)
	}

	g := startGateway(t, "secret", cfg, addr, env...)
	_, h, raw := g.waitHealth(20*time.Second, "three refused connections in /healthz", func(code int, h health) bool {
		_, _, _, c, _ := h.output("up")
		return code == 503 && c["connect_failures"] >= 3
	})
	ok, reason, _, _, _ := h.output("up")
	if ok || !strings.Contains(reason, "CONNACK") {
		t.Errorf("/healthz should say the server refused the CONNACK, got ok=%v reason %q", ok, reason)
	}
	t.Logf("/healthz reason: %s", reason)
	mustNotContain(t, "/healthz", raw, secret[:6])
	mustNotContain(t, "/metrics", g.get("/metrics"), secret[:6])
	g.stop()
	log := g.stderr.String() + g.stdout.String()
	if !strings.Contains(log, "CONNACK") {
		t.Errorf("the log does not mention the refused CONNACK:\n%s", log)
	}
	mustNotContain(t, "run's log", log, secret[:6])
}
