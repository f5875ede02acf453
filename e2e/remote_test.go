package e2e

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/internal/testbroker"
)

// remoteConfig is a gateway with one counter input and an MQTT output
// "up" to url (password from ${E2E_REMOTE_PW}), remote configuration as
// given by remote ("" leaves [agent.remote] out), and extra tables.
func remoteConfig(id, dataDir, addr, url, remote, extra string) string {
	return fmt.Sprintf(`[agent]
device_id = %q
data_dir = %q
http_listen = %q
%s

[[inputs.synthetic]]
device = "ctr"
points = 1
interval = "200ms"
pattern = "counter"
type = "int"

[[outputs.mqtt]]
alias = "up"
servers = [%q]
username = "gw"
password = "${E2E_REMOTE_PW}"
qos = 1
keepalive = "2s"
ping_timeout = "1s"
connect_timeout = "2s"
max_reconnect_interval = "500ms"
%s`, id, dataDir, addr, remote, url, extra)
}

const remotePW = "Remote-Secret-9c2e"

type configReply struct {
	ID          string   `json:"id"`
	OK          bool     `json:"ok"`
	Error       string   `json:"error"`
	Errors      []string `json:"errors"`
	Hash        string   `json:"hash"`
	Config      string   `json:"config"`
	RolledBack  bool     `json:"rolled_back"`
	ConfigState string   `json:"config_state"`
}

// remoteServer is the server's side of SPEC 9 for one gateway.
type remoteServer struct {
	t       *testing.T
	url, id string
	replies *testbroker.Collector
	n       int
}

func newRemoteServer(t *testing.T, b broker, id string) *remoteServer {
	return &remoteServer{t: t, url: b.URL(), id: id, replies: b.Collect(t, prefix+id+"/system/config/reply")}
}

// send publishes a configuration command with a fresh id and returns it.
func (s *remoteServer) send(op string, fields map[string]string) string {
	s.t.Helper()
	s.n++
	id := fmt.Sprintf("%s-%d-%d", op, s.n, time.Now().UnixNano())
	m := map[string]string{"id": id}
	for k, v := range fields {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	testbroker.PublishOnce(s.t, s.url, testbroker.ClientOptions{}, prefix+s.id+"/system/config/"+op, b, false)
	return id
}

// wait returns the first reply to id that satisfies cond.
func (s *remoteServer) wait(id string, timeout time.Duration, what string, cond func(configReply) bool) configReply {
	s.t.Helper()
	var got configReply
	s.replies.Wait(s.t, timeout, what, func(m []testbroker.Received) bool {
		for _, x := range m {
			var r configReply
			if err := json.Unmarshal(x.Payload, &r); err != nil {
				s.t.Fatalf("reply is not JSON: %s", x.Payload)
			}
			if r.ID == id && cond(r) {
				got = r
				return true
			}
		}
		return false
	})
	return got
}

func (s *remoteServer) ask(op string, fields map[string]string) configReply {
	s.t.Helper()
	id := s.send(op, fields)
	return s.wait(id, 30*time.Second, "the reply to "+op+" "+id, func(configReply) bool { return true })
}

// TestRemoteConfiguration walks SPEC 9 against mosquitto with the real
// binary: refused while disabled; get without secrets; a set with errors
// answered with all of them and nothing changed; a good set applied (its
// new point reaches the server); kept across a restart; a set pointing the
// output at a dead broker on trial for 10 s rolled back by itself and
// announced on the old broker.
func TestRemoteConfiguration(t *testing.T) {
	needBinary(t)
	b := newBroker(t)
	const id = "GW-REMOTE"
	srv := newRemoteServer(t, b, id)
	data := b.Collect(t, prefix+id+"/data")
	status := b.Collect(t, prefix+id+"/status")
	dir := t.TempDir()
	addr := httpAddr(t)
	env := "E2E_REMOTE_PW=" + remotePW
	path := writeFile(t, dir, "gw.toml", remoteConfig(id, dir+"/data", addr, b.URL(), "", ""))
	g := startGateway(t, "remote", path, addr, env)
	g.waitHealth(20*time.Second, "/healthz 200", func(code int, _ health) bool { return code == 200 })

	// Off by default: refused, with a reply.
	if r := srv.ask("get", nil); r.OK || !strings.Contains(r.Error, "not enabled") || r.Config != "" {
		t.Fatalf("get while disabled: %+v", r)
	}

	remote := "[agent.remote]\nenabled = true"
	base := remoteConfig(id, dir+"/data", addr, b.URL(), remote, "")
	writeFile(t, dir, "gw.toml", base)
	g.hup()
	g.waitLog("configuration reloaded", 1, 20*time.Second)

	// get: the running text, secrets as ${VAR}, and its hash.
	r := srv.ask("get", nil)
	if !r.OK || r.Config != base || !strings.HasPrefix(r.Hash, "sha256:") {
		t.Fatalf("get: %+v", r)
	}
	if !strings.Contains(r.Config, "${E2E_REMOTE_PW}") {
		t.Fatalf("get does not show the secret as its reference: %s", r.Config)
	}
	for _, x := range srv.replies.Messages() {
		if strings.Contains(string(x.Payload), remotePW) {
			t.Fatalf("a reply carries the secret: %s", x.Payload)
		}
	}
	running := r.Hash

	// A set with errors: every one in the reply, nothing changed.
	bad := base + `
[[inputs.synthetic]]
device = "bad1"
colour = "blue"

[[inputs.synthetic]]
device = "bad2"
interval = "soon"
`
	r = srv.ask("set", map[string]string{"config": bad})
	all := strings.Join(r.Errors, "\n")
	if r.OK || !strings.Contains(all, "colour") || !strings.Contains(all, "soon") {
		t.Fatalf("set with errors: want both errors, got %+v", r)
	}
	if r := srv.ask("get", nil); r.Hash != running {
		t.Fatalf("a refused set changed the configuration: %s -> %s", running, r.Hash)
	}

	// A good set, final at once: its new point reaches the server.
	good := remoteConfig(id, dir+"/data", addr, b.URL(), remote, `
[[inputs.synthetic]]
device = "added"
points = 1
interval = "200ms"
pattern = "constant"
`)
	setAt := time.Now()
	r = srv.ask("set", map[string]string{"config": good})
	if !r.OK || r.ConfigState != "confirmed" {
		t.Fatalf("good set: %+v", r)
	}
	t.Logf("a good set was answered, applied, %v after it was sent", time.Since(setAt))
	goodHash := r.Hash
	data.Wait(t, 20*time.Second, "data from the point the set added", func(m []testbroker.Received) bool {
		for _, x := range m {
			if strings.Contains(string(x.Payload), `"device":"added"`) {
				return true
			}
		}
		return false
	})
	status.Wait(t, 20*time.Second, "the status naming the new configuration", func(m []testbroker.Received) bool {
		for _, x := range m {
			s := string(x.Payload)
			if strings.Contains(s, `"config":"`+goodHash+`"`) && strings.Contains(s, `"config_state":"confirmed"`) &&
				strings.Contains(s, `"uptime_s":`) && strings.Contains(s, `"plugins":{"ok":`) {
				return true
			}
		}
		return false
	})

	// Kept across a restart: the stored version is newer than the file.
	g.stop()
	g = startGateway(t, "remote-2", path, addr, env)
	g.waitLog("starting from the newest confirmed configuration", 1, 20*time.Second)
	g.waitHealth(20*time.Second, "/healthz 200 after the restart", func(code int, _ health) bool { return code == 200 })
	if r := srv.ask("get", nil); r.Hash != goodHash {
		t.Fatalf("after a restart the gateway runs %s, not the confirmed set %s", r.Hash, goodHash)
	}

	// A set pointing the output at a dead broker, on trial for 10 s: rolled
	// back by itself, announced on the old broker.
	dead := fmt.Sprintf("tcp://127.0.0.1:%d", testbroker.FreePort(t))
	deadCfg := strings.Replace(good, b.URL(), dead, 1)
	sent := time.Now()
	setID := srv.send("set", map[string]string{"config": deadCfg, "confirm": "10s"})
	r = srv.wait(setID, 40*time.Second, "the rollback announcement", func(r configReply) bool { return r.RolledBack })
	if r.OK || !strings.Contains(r.Error, "could not reach the server") {
		t.Fatalf("rollback reply: want the reason (the output never connected), got %+v", r)
	}
	took := time.Since(sent)
	if took > 20*time.Second {
		t.Errorf("rolled back after %v, want within 20 s", took)
	}
	t.Logf("the 10 s trial was rolled back and announced on the old broker %v after the set", took)
	if r := srv.ask("get", nil); r.Hash != goodHash {
		t.Fatalf("after the rollback the gateway runs %s, want %s", r.Hash, goodHash)
	}
	status.Wait(t, 20*time.Second, "the status saying rolled_back", func(m []testbroker.Received) bool {
		for _, x := range m {
			if strings.Contains(string(x.Payload), `"config_state":"rolled_back"`) {
				return true
			}
		}
		return false
	})
	top := maxOf(counterValues(t, data.Messages(), "ctr"))
	data.Wait(t, 20*time.Second, "data on the old broker after the rollback", func(m []testbroker.Received) bool {
		return maxOf(counterValues(t, m, "ctr")) >= top+5
	})
	g.stop()
	if strings.Contains(g.stderr.String(), remotePW) {
		t.Fatal("the secret is in the log")
	}
}

// TestRemoteSignedSets: with public_keys, an unsigned set and a wrongly
// signed one are refused and change nothing; a signed one is applied on
// trial and confirmed by its hash (not by another).
func TestRemoteSignedSets(t *testing.T) {
	needBinary(t)
	b := newBroker(t)
	const id = "GW-SIGNED"
	srv := newRemoteServer(t, b, id)
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := ed25519.GenerateKey(nil)
	dir := t.TempDir()
	addr := httpAddr(t)
	remote := fmt.Sprintf("[agent.remote]\nenabled = true\npublic_keys = [%q]", base64.StdEncoding.EncodeToString(pub))
	base := remoteConfig(id, dir+"/data", addr, b.URL(), remote, "")
	path := writeFile(t, dir, "gw.toml", base)
	g := startGateway(t, "signed", path, addr, "E2E_REMOTE_PW="+remotePW)
	g.waitHealth(20*time.Second, "/healthz 200", func(code int, _ health) bool { return code == 200 })
	running := srv.ask("get", nil).Hash

	next := base + "\n[[inputs.synthetic]]\ndevice = \"signed\"\n"
	sign := func(k ed25519.PrivateKey, s string) string {
		return base64.StdEncoding.EncodeToString(ed25519.Sign(k, []byte(s)))
	}
	for name, f := range map[string]map[string]string{
		"unsigned":           {"config": next},
		"signed by another":  {"config": next, "signature": sign(other, next)},
		"signature of other": {"config": next, "signature": sign(priv, base)},
	} {
		if r := srv.ask("set", f); r.OK || !strings.Contains(r.Error, "sign") {
			t.Fatalf("%s set: %+v", name, r)
		}
	}
	if r := srv.ask("get", nil); r.Hash != running {
		t.Fatal("a refused set changed the configuration")
	}
	// Signed and on trial: confirmed only with its own hash.
	r := srv.ask("set", map[string]string{"config": next, "signature": sign(priv, next), "confirm": "10m"})
	if !r.OK || r.ConfigState != "trial" || r.Hash == running {
		t.Fatalf("signed set: %+v", r)
	}
	if c := srv.ask("confirm", map[string]string{"hash": running}); c.OK {
		t.Fatalf("confirm with another hash taken: %+v", c)
	}
	if c := srv.ask("confirm", map[string]string{"hash": r.Hash}); !c.OK || c.ConfigState != "confirmed" {
		t.Fatalf("confirm: %+v", c)
	}
	if got := srv.ask("get", nil); got.Hash != r.Hash || got.ConfigState != "confirmed" {
		t.Fatalf("after confirm: %+v", got)
	}
	g.stop()
}
