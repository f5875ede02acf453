package e2e

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testbroker"
)

// fleetConfig is one configuration for a whole fleet: what differs per
// box (its ID, data_dir, http_listen) comes from the box's environment,
// so every gateway runs the same text with the same hash. extra is added
// at the end; servers is the MQTT output's server list as TOML.
func fleetConfig(pub, servers, extra string) string {
	return fmt.Sprintf(`[agent]
device_id = "${GW_ID}"
data_dir = "${GW_DATA}"
http_listen = "${GW_HTTP}"

[agent.remote]
enabled = true
public_keys = [%q]

[[inputs.synthetic]]
device = "ctr"
points = 1
interval = "200ms"
pattern = "counter"
type = "int"

[[outputs.mqtt]]
alias = "up"
servers = %s
qos = 1
keepalive = "2s"
ping_timeout = "1s"
connect_timeout = "2s"
max_reconnect_interval = "500ms"
%s`, pub, servers, extra)
}

// fleetGateway starts gateway id from the fleet configuration in path,
// with its identity and env in the environment.
func fleetGateway(t *testing.T, dir, id, path string, env ...string) *gateway {
	addr := httpAddr(t)
	env = append([]string{"GW_ID=" + id, "GW_DATA=" + filepath.Join(dir, id), "GW_HTTP=" + addr}, env...)
	return startGateway(t, id, path, addr, env...)
}

// fleetReport is `edgepipe fleet --json`'s output.
type fleetReport struct {
	Config   string         `json:"config"`
	Counts   map[string]int `json:"counts"`
	Gateways []struct {
		Device string   `json:"device"`
		Result string   `json:"result"`
		State  string   `json:"config_state"`
		Hash   string   `json:"hash"`
		Error  string   `json:"error"`
		Errors []string `json:"errors"`
	} `json:"gateways"`
}

func textHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(h[:])
}

// TestFleetPush drives `edgepipe fleet` against three real gateways on
// mosquitto: discovered from their retained status, a signed push applied
// by all (their status then names its hash); then a push on trial that one
// gateway applies and fleet confirms, one refuses (an unset ${VAR}, with
// the error), one rolls back by itself (its new broker is dead), and a
// fourth ID that no gateway has answers nothing; the exit status says not
// all applied.
func TestFleetPush(t *testing.T) {
	needBinary(t)
	b := newBroker(t)
	status := b.Collect(t, prefix+"+/status")
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyPath := writeFile(t, dir, "fleet.key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	pubB64 := base64.StdEncoding.EncodeToString(pub)
	servers := fmt.Sprintf("[%q]", b.URL())
	path := writeFile(t, dir, "gw.toml", fleetConfig(pubB64, servers, ""))
	dead := fmt.Sprintf("tcp://127.0.0.1:%d", testbroker.FreePort(t))
	gws := map[string]*gateway{
		"GW-F1": fleetGateway(t, dir, "GW-F1", path, "GW_NEXT="+b.URL(), "GW_EXTRA=extra"),
		"GW-F2": fleetGateway(t, dir, "GW-F2", path, "GW_NEXT="+b.URL()), // no GW_EXTRA
		"GW-F3": fleetGateway(t, dir, "GW-F3", path, "GW_NEXT="+dead, "GW_EXTRA=extra"),
	}
	onlineWith := func(hash string) func([]testbroker.Received) bool {
		return func(m []testbroker.Received) bool {
			seen := map[string]bool{}
			for _, x := range m {
				s := string(x.Payload)
				if strings.Contains(s, `"status":"online"`) && (hash == "" || strings.Contains(s, `"config":"`+hash+`"`)) {
					seen[x.Topic] = true
				}
			}
			return len(seen) == len(gws)
		}
	}
	status.Wait(t, 30*time.Second, "all three gateways online", onlineWith(""))

	// Discovered and signed: applied by all three.
	first := fleetConfig(pubB64, servers, "\n[[inputs.synthetic]]\ndevice = \"fleet1\"\npoints = 1\ninterval = \"200ms\"\n")
	firstPath := writeFile(t, dir, "first.toml", first)
	code, out, errOut := runCmd(t, nil, "fleet", "--broker", b.URL(), "--discover", "3s", "--sign-key", keyPath, "--timeout", "30s", firstPath)
	if code != 0 || strings.Count(out, " applied ") != 3 || !strings.Contains(errOut, "3 gateways online") {
		t.Fatalf("fleet push to all: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Logf("edgepipe fleet, discovered:\n%s", out)
	for id := range gws {
		if !strings.Contains(out, id) {
			t.Fatalf("%s missing from the report:\n%s", id, out)
		}
	}
	status.Wait(t, 30*time.Second, "every status naming the pushed configuration's hash", onlineWith(textHash(first)))

	// On trial for 5 s: applied and confirmed, refused, rolled back, and
	// no answer.
	second := fleetConfig(pubB64, `["${GW_NEXT}"]`, "\n[[inputs.synthetic]]\ndevice = \"${GW_EXTRA}\"\npoints = 1\ninterval = \"200ms\"\n")
	secondPath := writeFile(t, dir, "second.toml", second)
	code, out, errOut = runCmd(t, nil, "fleet", "--broker", b.URL(), "--devices", "GW-F1,GW-F2,GW-F3,GW-NONE",
		"--sign-key", keyPath, "--confirm", "5s", "--timeout", "15s", "--json", secondPath)
	t.Logf("edgepipe fleet --json on trial:\n%s", out)
	var rep fleetReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json: %v\n%s\nstderr:\n%s", err, out, errOut)
	}
	got := map[string]string{}
	for _, g := range rep.Gateways {
		got[g.Device] = g.Result
		switch g.Device {
		case "GW-F1":
			if g.State != "confirmed" || g.Hash != textHash(second) {
				t.Errorf("GW-F1 applied, want it confirmed with the text's hash: %+v", g)
			}
		case "GW-F2":
			if !strings.Contains(strings.Join(g.Errors, "\n"), "GW_EXTRA") {
				t.Errorf("GW-F2's refusal does not name the unset variable: %+v", g)
			}
		case "GW-F3":
			if !strings.Contains(g.Error, "rolled back") {
				t.Errorf("GW-F3's rollback does not say so: %+v", g)
			}
		}
	}
	want := map[string]string{"GW-F1": "applied", "GW-F2": "rejected", "GW-F3": "rolled_back", "GW-NONE": "no_answer"}
	if fmt.Sprint(got) != fmt.Sprint(want) || code != 1 || rep.Config != textHash(second) {
		t.Fatalf("fleet push on trial: exit %d, results %v, want %v (exit 1)\n%s\nstderr:\n%s", code, got, want, out, errOut)
	}
	for _, g := range gws {
		g.requireRunning()
		g.stop()
	}
}

// TestFleetDiscoversCustomStatusTopic: gateways whose output publishes the
// status on a custom status_topic are found with --status-topic, by the
// device_id their status carries, and take the push.
func TestFleetDiscoversCustomStatusTopic(t *testing.T) {
	needBinary(t)
	b := newBroker(t)
	status := b.Collect(t, "site/+/state")
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyPath := writeFile(t, dir, "fleet.key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	pubB64 := base64.StdEncoding.EncodeToString(pub)
	custom := "status_topic = \"site/${GW_SITE}/state\"\n"
	path := writeFile(t, dir, "gw.toml", fleetConfig(pubB64, fmt.Sprintf("[%q]", b.URL()), custom))
	ids := []string{"GW-C1", "GW-C2"}
	var gws []*gateway
	for i, id := range ids {
		gws = append(gws, fleetGateway(t, dir, id, path, fmt.Sprintf("GW_SITE=plant%d", i+1)))
	}
	status.Wait(t, 30*time.Second, "both statuses, naming their gateway, on the custom topic", func(m []testbroker.Received) bool {
		seen := map[string]bool{}
		for _, x := range m {
			for _, id := range ids {
				if strings.Contains(string(x.Payload), `"device_id":"`+id+`"`) {
					seen[id] = true
				}
			}
		}
		return len(seen) == len(ids)
	})

	next := fleetConfig(pubB64, fmt.Sprintf("[%q]", b.URL()), custom+"\n[[inputs.synthetic]]\ndevice = \"pushed\"\npoints = 1\n")
	nextPath := writeFile(t, dir, "next.toml", next)
	// Without --status-topic nobody is found under the default P +/status.
	code, out, errOut := runCmd(t, nil, "fleet", "--broker", b.URL(), "--discover", "1s", nextPath)
	if code == 0 || !strings.Contains(errOut, "--status-topic") {
		t.Fatalf("default discovery: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, nil, "fleet", "--broker", b.URL(), "--status-topic", "site/+/state", "--discover", "3s",
		"--sign-key", keyPath, "--timeout", "30s", nextPath)
	if code != 0 || strings.Count(out, " applied ") != 2 || !strings.Contains(errOut, "2 gateways online on site/+/state") {
		t.Fatalf("fleet push by the custom status topic: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, g := range gws {
		g.requireRunning()
		g.stop()
	}
}
