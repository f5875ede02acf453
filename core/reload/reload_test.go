package reload

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/core/agent"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/fbox"

	_ "github.com/edgepipe/edgepipe/plugins/all"
)

func doc(dataDir, remote, extra string) string {
	return fmt.Sprintf(`[agent]
device_id = "GW-R"
data_dir = %q
http_listen = ""
%s

[[inputs.synthetic]]
device = "d"
points = 1
interval = "1s"
%s`, dataDir, remote, extra)
}

// gateway starts a reloader and agent on the file written with text.
func gateway(t *testing.T, text string) (*Reloader, *agent.Agent, string) {
	t.Helper()
	return gatewayWith(t, text, Options{})
}

// gatewayWith is gateway with the reloader's options (Source is set).
func gatewayWith(t *testing.T, text string, opts Options) (*Reloader, *agent.Agent, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	src := Source{Config: path}
	l, err := src.Load()
	if err != nil {
		t.Fatal(err)
	}
	opts.Source = src
	r := New(l, opts)
	a := agent.New(l.Cfg, agent.Options{OnReboot: r.Reboot, OnConfig: r.Command})
	r.Attach(a)
	ctx := context.Background()
	if err := a.Open(ctx, true); err != nil {
		t.Fatal(err)
	}
	a.Start()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		a.Stop(sctx)
	})
	return r, a, path
}

func TestCheckReportsEveryError(t *testing.T) {
	dir := t.TempDir()
	r, _, _ := gateway(t, doc(dir, "", ""))
	bad := doc(dir, "", `
[[inputs.synthetic]]
device = "x"
colour = "blue"

[[inputs.synthetic]]
device = "y"
interval = "soon"
`) + "\n[agent2]\n"
	_, err := r.Check(context.Background(), "remote.toml", []byte(bad))
	errs := sdk.AsConfigErrors(err)
	text := fmt.Sprint(errs)
	for _, want := range []string{"colour", "soon", "agent2"} {
		if !strings.Contains(text, want) {
			t.Errorf("no error about %s in %v", want, text)
		}
	}
}

func TestApplyTextInPlaceAndStored(t *testing.T) {
	dir := t.TempDir()
	r, a, _ := gateway(t, doc(dir, "", ""))
	next := doc(dir, "", "\n[[inputs.synthetic]]\ndevice = \"added\"\npoints = 1\n")
	if err := r.ApplyText(context.Background(), []byte(next)); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range a.Points() {
		found = found || p.Device == "added"
	}
	if !found {
		t.Fatalf("the applied configuration's point is not registered: %v", a.Points())
	}
	_, hash, state := r.Running()
	if hash != Hash([]byte(next)) || state != StateConfirmed {
		t.Fatalf("running %s %s", hash, state)
	}
	v, text, ok, err := r.Store().NewestConfirmed()
	if err != nil || !ok || string(text) != next || v.Hash != hash {
		t.Fatalf("stored: %+v %v %v", v, ok, err)
	}
	// A text that does not check changes nothing.
	if err := r.ApplyText(context.Background(), []byte(next+"\n[[inputs.nosuch]]\n")); err == nil {
		t.Fatal("a bad text was applied")
	}
	if _, h, _ := r.Running(); h != hash {
		t.Fatal("a refused text changed the running configuration")
	}
}

func TestStoreKeepsTen(t *testing.T) {
	s := OpenStore(t.TempDir())
	for i := range 13 {
		if _, err := s.Save([]byte(fmt.Sprint(i)), Version{Hash: fmt.Sprint(i), State: StateConfirmed}); err != nil {
			t.Fatal(err)
		}
	}
	vs, err := s.Versions()
	if err != nil || len(vs) != Keep || vs[0].Seq != 4 {
		t.Fatalf("versions %+v %v", vs, err)
	}
	files, _ := filepath.Glob(filepath.Join(s.Dir(), "*.toml"))
	if len(files) != Keep {
		t.Fatalf("%d version files kept: %v", len(files), files)
	}
	left, _ := filepath.Glob(filepath.Join(s.Dir(), ".tmp-*"))
	if len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	if err := s.SetState(13, StateRolledBack); err != nil {
		t.Fatal(err)
	}
	v, text, ok, _ := s.NewestConfirmed()
	if !ok || v.Seq != 12 || string(text) != "11" {
		t.Fatalf("newest confirmed %+v %q", v, text)
	}
}

func cmd(name string, payload any) sdk.Command {
	b, _ := json.Marshal(payload)
	c, _ := fbox.NewTopics("Topic/flexem/fbox/", "GW-R").Parse("Topic/flexem/fbox/GW-R/system/config/"+name, b, 1<<20)
	return c
}

type reply struct {
	ID       string   `json:"id"`
	OK       bool     `json:"ok"`
	Error    string   `json:"error"`
	Errors   []string `json:"errors"`
	Warnings []string `json:"warnings"`
	Hash     string   `json:"hash"`
	Config   string   `json:"config"`
}

func decode(t *testing.T, m sdk.Message) reply {
	t.Helper()
	var r reply
	if err := json.Unmarshal(m.Payload, &r); err != nil {
		t.Fatalf("%v: %s", err, m.Payload)
	}
	if m.Topic != "Topic/flexem/fbox/GW-R/system/config/reply" {
		t.Fatalf("reply on %q", m.Topic)
	}
	return r
}

func TestRemoteRefusedWhenDisabled(t *testing.T) {
	r, _, _ := gateway(t, doc(t.TempDir(), "", ""))
	got := decode(t, r.Command("up", cmd("get", map[string]string{"id": "c-1"})))
	if got.OK || got.ID != "c-1" || !strings.Contains(got.Error, "not enabled") || got.Config != "" {
		t.Fatalf("%+v", got)
	}
}

func TestRemoteGetWithoutSecrets(t *testing.T) {
	t.Setenv("RELOAD_TEST_TOKEN", "s3cr3t-from-env")
	dir := t.TempDir()
	text := doc(dir, "[agent.remote]\nenabled = true", "\n[[outputs.mqtt]]\nservers = [\"tcp://127.0.0.1:1\"]\nusername = \"u\"\npassword = \"${RELOAD_TEST_TOKEN}\"\n")
	r, _, _ := gateway(t, text)
	got := decode(t, r.Command("up", cmd("get", map[string]string{"id": "c-1"})))
	if !got.OK || got.Hash != Hash([]byte(text)) || !strings.Contains(got.Config, "${RELOAD_TEST_TOKEN}") {
		t.Fatalf("%+v", got)
	}
	if strings.Contains(got.Config, "s3cr3t") {
		t.Fatalf("get returned a secret: %s", got.Config)
	}
}

func TestRemoteSetRefusals(t *testing.T) {
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(nil)
	remote := fmt.Sprintf("[agent.remote]\nenabled = true\npublic_keys = [%q]", base64.StdEncoding.EncodeToString(pub))
	r, _, _ := gateway(t, doc(dir, remote, ""))
	_, before, _ := r.Running()
	good := doc(dir, remote, "\n[[inputs.synthetic]]\ndevice = \"added\"\n")
	sign := func(s string) string { return base64.StdEncoding.EncodeToString(ed25519.Sign(priv, []byte(s))) }
	for name, p := range map[string]map[string]string{
		"unsigned":        {"id": "s-1", "config": good},
		"wrongly signed":  {"id": "s-1", "config": good, "signature": sign(good + " ")},
		"errors":          {"id": "s-1", "config": good + "\n[[inputs.synthetic]]\ncolour = 1\n[[inputs.nosuch]]\n", "signature": sign(good + "\n[[inputs.synthetic]]\ncolour = 1\n[[inputs.nosuch]]\n")},
		"literal secrets": {"id": "s-1", "config": good + "\n[[outputs.mqtt]]\nservers = [\"tcp://127.0.0.1:1\"]\nusername = \"u\"\npassword = \"hunter2-literal\"\n"},
	} {
		if name == "literal secrets" {
			p["signature"] = sign(p["config"])
		}
		got := decode(t, r.Command("up", cmd("set", p)))
		if got.OK || got.ID != "s-1" {
			t.Fatalf("%s: %+v", name, got)
		}
		switch name {
		case "errors":
			if len(got.Errors) < 2 || !strings.Contains(strings.Join(got.Errors, "\n"), "colour") || !strings.Contains(strings.Join(got.Errors, "\n"), "nosuch") {
				t.Fatalf("%s: not every error: %+v", name, got)
			}
		case "literal secrets":
			if !strings.Contains(strings.Join(got.Errors, "\n"), "password") || strings.Contains(string(fmt.Sprint(got)), "hunter2") {
				t.Fatalf("%s: %+v", name, got)
			}
		default:
			if !strings.Contains(got.Error, "signature") {
				t.Fatalf("%s: %+v", name, got)
			}
		}
	}
	if _, h, _ := r.Running(); h != before {
		t.Fatal("a refused set changed the configuration")
	}
}

// TestGetHidesLiteralSecret: a secret written into the local file is
// neither in get's text nor recoverable from its hash (the hash is of the
// text shown).
func TestGetHidesLiteralSecret(t *testing.T) {
	text := doc(t.TempDir(), "[agent.remote]\nenabled = true", "\n[[outputs.mqtt]]\nservers = [\"tcp://127.0.0.1:1\"]\nusername = \"u\"\npassword = \"hunter2-literal\"\n")
	r, _, _ := gateway(t, text)
	got := decode(t, r.Command("up", cmd("get", map[string]string{"id": "c-1"})))
	if !got.OK || strings.Contains(got.Config, "hunter2") || got.Hash == Hash([]byte(text)) || got.Hash != Hash([]byte(got.Config)) {
		t.Fatalf("%+v", got)
	}
}
