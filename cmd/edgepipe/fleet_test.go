package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFleetUsage: a wrong command line exits 2 and says what is wrong;
// an unreadable key or an unreachable broker exits 1. (The push itself is
// e2e's TestFleetPush, against three gateways.)
func TestFleetUsage(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(cfg, []byte("[agent]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"fleet", cfg}, 2, "--broker is required"},
		{[]string{"fleet", "--broker", "tcp://127.0.0.1:1"}, 2, "name the configuration file"},
		{[]string{"fleet", "--broker", "tcp://127.0.0.1:1", "--prefix", "x", cfg}, 2, "--prefix"},
		{[]string{"fleet", "--broker", "tcp://127.0.0.1:1", "--timeout", "0s", cfg}, 2, "positive"},
		{[]string{"fleet", "--broker", "tcp://127.0.0.1:1", cfg, "extra"}, 2, "unexpected argument"},
		{[]string{"fleet", "--broker", "tcp://127.0.0.1:1", filepath.Join(dir, "none.toml")}, 1, "none.toml"},
		{[]string{"fleet", "--broker", "tcp://127.0.0.1:1", "--sign-key", bad, cfg}, 1, "neither PEM nor base64"},
		{[]string{"fleet", "--broker", "tcp://127.0.0.1:1", "--devices", "GW-1", cfg}, 1, "connecting to tcp://127.0.0.1:1"},
	} {
		var out, errb bytes.Buffer
		if code := dispatch(c.args, &out, &errb); code != c.code || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, code, errb.String(), c.code, c.want)
		}
	}
	var out bytes.Buffer
	if code := dispatch([]string{"help", "fleet"}, &out, &out); code != 0 || !strings.Contains(out.String(), "--confirm") || !strings.Contains(out.String(), "rolled_back") {
		t.Fatalf("help fleet: %d %s", code, out.String())
	}
}

// TestReadSignKey reads the key forms the help names: PKCS#8 PEM (what
// openssl genpkey writes, also checked with openssl when installed) and
// base64 of the seed or of the whole private key.
func TestReadSignKey(t *testing.T) {
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(nil)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	forms := map[string][]byte{
		"pem":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		"seed": []byte(base64.StdEncoding.EncodeToString(priv.Seed()) + "\n"),
		"full": []byte(base64.StdEncoding.EncodeToString(priv)),
	}
	for name, b := range forms {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		k, err := readSignKey(p)
		if err != nil || !k.Public().(ed25519.PublicKey).Equal(pub) {
			t.Errorf("%s: %v", name, err)
		}
	}
	short := filepath.Join(dir, "short")
	_ = os.WriteFile(short, []byte(base64.StdEncoding.EncodeToString([]byte("abc"))), 0o600)
	if _, err := readSignKey(short); err == nil {
		t.Error("a 3-byte key taken")
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		return
	}
	p := filepath.Join(dir, "openssl.pem")
	if out, err := exec.Command("openssl", "genpkey", "-algorithm", "ed25519", "-out", p).CombinedOutput(); err != nil {
		t.Fatalf("openssl genpkey: %v %s", err, out)
	}
	k, err := readSignKey(p)
	if err != nil {
		t.Fatal(err)
	}
	// The README's way to the public key for [agent.remote] public_keys.
	der, err = exec.Command("openssl", "pkey", "-in", p, "-pubout", "-outform", "DER").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !k.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(der[len(der)-32:])) {
		t.Fatal("the openssl public key is not the key's")
	}
}
