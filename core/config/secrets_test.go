package config

import (
	"errors"
	"strings"
	"testing"
)

func TestIsSecretKey(t *testing.T) {
	for _, k := range []string{"password", "Password", "tls_key", "api_token", "client_secret", "proxy_passwd", "key"} {
		if !isSecretKey(k) {
			t.Errorf("%s is not taken for a secret", k)
		}
	}
	for _, k := range []string{"username", "tls_cert", "tls_ca", "tls_pin_sha256", "byte_order", "keepalive", "monkey"} {
		if isSecretKey(k) {
			t.Errorf("%s is taken for a secret", k)
		}
	}
}

// Literal secrets are redacted in errors like substituted ones: every value
// of a secret key, wrong-typed or nested, and URL passwords.
func TestRedactHidesLiteralSecrets(t *testing.T) {
	doc := `[agent]
device_id = "GW-1"
[[inputs.camera]]
url = "http://admin:Cam3raPw@127.0.0.1/snap"
password = 90817263
[[outputs.mqtt]]
tls_key = "Lit3ralKey"
auth = { api_token = "T0kenValue" }
password = "${PW}"
`
	// The plugins are not registered here: Parse complains, and still
	// returns what it read.
	cfg, _ := Parse("gw.toml", []byte(doc), env(map[string]string{"PW": "EnvPassw0rd"}))
	if cfg == nil {
		t.Fatal("nothing parsed")
	}
	quoted := cfg.Redact(errors.New("cannot read Lit3ralKey; 90817263 is no password; T0kenValue, Cam3raPw and EnvPassw0rd"))
	got := quoted.Error()
	for _, s := range []string{"Lit3ralKey", "90817263", "T0kenValue", "Cam3raPw", "EnvPassw0rd"} {
		if strings.Contains(got, s) {
			t.Errorf("%q still shows %s", got, s)
		}
	}
	for _, s := range []string{"<tls_key withheld>", "<password withheld>", "<api_token withheld>", "xxxxx", "${PW}"} {
		if !strings.Contains(got, s) {
			t.Errorf("%q does not say %s", got, s)
		}
	}
}

func TestSyntaxErrorInASecretValueIsWithheld(t *testing.T) {
	for _, line := range []string{`password = hunter2x`, `tls_key = -----BEGIN hunter2x`, `auth = { token = hunter2x }`, `"password" = hunter2x"`} {
		_, err := Parse("gw.toml", []byte("[agent]\ndevice_id = \"GW-1\"\n"+line+"\n"), env(nil))
		if err == nil {
			t.Fatalf("%s: no error", line)
		}
		if msg := err.Error(); strings.Contains(msg, "hunter") || !strings.Contains(msg, "gw.toml:3: TOML syntax error in the value of") {
			t.Errorf("%s: %s", line, msg)
		}
	}
}

// FuzzSecretsNeverQuoted writes anything as a password's value: the errors
// of Parse never show it (the marker Zq9 makes the value recognisable).
func FuzzSecretsNeverQuoted(f *testing.F) {
	for _, s := range []string{`Zq9hunter`, `"Zq9abc`, `'Zq9x'`, `Zq9 = 1`, `[ "Zq9a", ]x`, `1979-05-27TZq9`,
		`{ a = "Zq9bcd" }`, `"Zq9\u00e9"`, `Zq9"`, `"""Zq9`, `0xZq9`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		if !strings.Contains(value, "Zq9") || strings.ContainsAny(value, "\r\n") {
			return
		}
		for _, doc := range []string{
			"[agent]\ndevice_id = \"GW-1\"\npassword = " + value + "\n",
			"[agent]\ndevice_id = \"GW-1\"\n[[outputs.mqtt]]\ntls_key = " + value + "\n",
		} {
			_, err := Parse("gw.toml", []byte(doc), env(nil))
			if err != nil && strings.Contains(err.Error(), "Zq9") {
				t.Fatalf("%q: %v", doc, err)
			}
		}
	})
}
