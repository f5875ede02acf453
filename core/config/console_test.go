package config

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestConsoleKeysDecodedAndChecked(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	doc := `[agent]
device_id = "GW"
http_listen = "0.0.0.0:9273"
[agent.console]
username = "ops"
password_hash = "` + string(hash) + `"
[[agent.console.tokens]]
name = "grafana"
sha256 = "` + strings.Repeat("ab", 32) + `"
[[agent.console.tokens]]
name = "deploy"
sha256 = "` + strings.Repeat("CD", 32) + `"
access = "write"
[[inputs.cfgtest]]
`
	cfg, err := Parse("c.toml", []byte(doc), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Console
	if !c.On() || c.Username != "ops" || len(c.Tokens) != 2 || c.Tokens[0].Access != "read" ||
		c.Tokens[1].Access != "write" || c.Tokens[1].SHA256 != strings.Repeat("cd", 32) {
		t.Fatalf("console %+v", c)
	}
}

func TestConsoleRefusesNetworkListenWithoutPassword(t *testing.T) {
	for _, tc := range []struct {
		listen, console string
		want            string // "" = no error
	}{
		{"127.0.0.1:9273", "", ""},
		{"localhost:9273", "", ""},
		{"[::1]:9273", "", ""},
		{"0.0.0.0:9273", "", "c.toml:3: agent.http_listen"},
		{":9273", "", "reachable from the network"},
		{"192.168.1.5:80", "", "password_hash"},
		{"0.0.0.0:9273", "[agent.console]\nenabled = false\n", ""},
		{"127.0.0.1:1", "[agent.console]\npassword_hash = \"nope\"\n", "c.toml:5: agent.console.password_hash: is not a bcrypt hash"},
		{"127.0.0.1:1", "[agent.console]\ntls_cert = \"a.pem\"\n", "tls_cert and tls_key go together"},
		{"127.0.0.1:1", "[[agent.console.tokens]]\nname = \"a\"\nsha256 = \"12\"\naccess = \"admin\"\n", "c.toml:6: agent.console.tokens[0].sha256"},
		{"127.0.0.1:1", "[[agent.console.tokens]]\nname = \"a\"\nsha256 = \"12\"\naccess = \"admin\"\n", `want read or write, got "admin"`},
	} {
		doc := "[agent]\ndevice_id = \"GW\"\nhttp_listen = \"" + tc.listen + "\"\n" + tc.console + "[[inputs.cfgtest]]\n"
		_, err := Parse("c.toml", []byte(doc), noEnv)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s %q: %v", tc.listen, tc.console, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s %q: want %q, got %v", tc.listen, tc.console, tc.want, err)
		}
	}
}

func TestShowTextMasksLiteralSecretsKeepsVariables(t *testing.T) {
	doc := `[agent]
device_id = "GW"
[agent.console]
password_hash = "$2a$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"
[[agent.console.tokens]]
name = "t"
sha256 = "` + strings.Repeat("ab", 32) + `"
[[inputs.camera]]
url = "http://admin:hunter22@10.0.0.5/snap.jpg"
[[outputs.mqtt]]
password = "${MQTT_PASSWORD}"
username = "u"
tls_key = """
-----BEGIN KEY-----
c2VjcmV0
-----END KEY-----
"""
auth = { token = 'tok-secret-1', user = "x" } # inline
api_key = 12345678
`
	cfg := &Config{Text: []byte(doc)}
	got := string(cfg.ShowText())
	for _, secret := range []string{"abcdefghijklmnop", strings.Repeat("ab", 32), "hunter22", "c2VjcmV0", "BEGIN KEY", "tok-secret-1", "12345678"} {
		if strings.Contains(got, secret) {
			t.Errorf("shown text has %q:\n%s", secret, got)
		}
	}
	for _, kept := range []string{`password = "${MQTT_PASSWORD}"`, `username = "u"`, `http://admin:***@10.0.0.5`, `user = "x" } # inline`, `name = "t"`} {
		if !strings.Contains(got, kept) {
			t.Errorf("shown text lacks %q:\n%s", kept, got)
		}
	}
	if n, m := strings.Count(got, "\n"), strings.Count(doc, "\n"); n != m {
		t.Errorf("lines %d, want %d", n, m)
	}
}
func noEnv(string) (string, bool) { return "", false }

// MaskSecrets reads any text without panicking, keeps its lines, and
// never shows a plain literal password.
func FuzzMaskSecrets(f *testing.F) {
	for _, s := range []string{"password = \"abcd1234\"", "tls_key = \"\"\"\nx\n\"\"\"", "[[agent.console.tokens]]\nsha256 = 'ab'", "url = \"http://a:b@c\"",
		"auth = { token = 'x', user = \"y\" }", "[x", "password = \"unterminated", "key=\"\"\"", "\"password\" = 1"} {
		f.Add(s, "s3cretvalue")
	}
	f.Fuzz(func(t *testing.T, doc, secret string) {
		out := string(MaskSecrets([]byte(doc)))
		if strings.Count(out, "\n") != strings.Count(doc, "\n") {
			t.Fatalf("lines changed:\n%q\n%q", doc, out)
		}
		if len(secret) < 4 || strings.ContainsAny(secret, "\"\\\n\r$") || strings.Contains(doc, secret) || strings.Contains(Masked, secret) {
			return
		}
		line := "password = \"" + secret + "\""
		if got := string(MaskSecrets([]byte(line))); strings.Contains(got, secret) {
			t.Fatalf("%q shown as %q", line, got)
		}
	})
}
