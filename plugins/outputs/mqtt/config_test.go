package mqtt_test

import (
	"context"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/outputs/mqtt"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

func TestConfigErrorsNameKeysAndHideSecrets(t *testing.T) {
	const secret = "pw-Zq81-never-shown"
	const keyText = "-----BEGIN PRIVATE KEY-----\\nTUlJRXZRSUJBREFOQmdr\\n-----END PRIVATE KEY-----"
	conf := "servers = [\"tcp://h:1883\", \"ftp://x\", \"tcp://u:p@h\"]\n" +
		"client_id = \"" + strings.Repeat("é", 65) + "\"\n" +
		"password = \"" + secret + "\"\n" +
		"qos = 3\n" +
		"tls_pin_sha256 = [\"abcd\"]\n" +
		"tls_cert = \"/nonexistent/cert.pem\"\n" +
		"tls_key = \"" + keyText + "\"\n" +
		"buffer = \"tape\"\n" +
		"colour = 1\n"
	_, err := mqtt.New().Init(context.Background(), sdktest.Request(conf))
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	ces := sdk.AsConfigErrors(err)
	if len(ces) != 1 || ces[0].Path != "colour" {
		t.Fatalf("unknown key first: %v", err)
	}
	_, err = mqtt.New().Init(context.Background(), sdktest.Request(strings.Replace(conf, "colour = 1\n", "", 1)))
	msg := err.Error()
	for _, want := range []string{"servers[1]", "servers[2]", "client_id", "password: a password needs a username", "qos", "tls_pin_sha256[0]", "tls_cert", "buffer", "test.toml:"} {
		if !strings.Contains(msg, want) {
			t.Errorf("errors do not mention %q:\n%s", want, msg)
		}
	}
	for _, secretBit := range []string{secret, "TUlJRXZRSUJBREFOQmdr", "u:p@"} {
		if strings.Contains(msg, secretBit) {
			t.Errorf("a secret (%q) appears in the errors:\n%s", secretBit, msg)
		}
	}
}

func TestPinsInEveryNotationAndDefaults(t *testing.T) {
	hexPin := strings.Repeat("ab", 32)
	colon := strings.TrimSuffix(strings.Repeat("AB:", 32), ":")
	b64 := "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s="
	o := mqtt.New()
	conf := "servers = [\"ssl://127.0.0.1\"]\ntls_pin_sha256 = [\"" + hexPin + "\", \"" + colon + "\", \"" + b64 + "\", \"sha256//" + b64 + "\"]\n"
	if _, err := o.Init(context.Background(), sdktest.Request(conf)); err != nil {
		t.Fatal(err)
	}
	defer o.Close(context.Background())
	if h, _ := o.Health(context.Background()); h.OK {
		t.Error("nothing listens on 127.0.0.1:8883, yet healthy")
	}
	if sdk.CapsOf(o) != (sdk.Caps{Commands: true, Health: true}) {
		t.Errorf("caps: %+v", sdk.CapsOf(o))
	}
	r, ok := sdk.Lookup("outputs.mqtt")
	if !ok || !strings.Contains(r.SampleConfig, "tls_pin_sha256") {
		t.Error("not registered with its sample configuration")
	}
}
