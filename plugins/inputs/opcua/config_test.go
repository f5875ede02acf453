package opcua_test

import (
	"context"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/inputs/opcua"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// TestConfigErrors: every mistake is reported at once, each at its key.
func TestConfigErrors(t *testing.T) {
	conf := `device = "a.b"
endpoint = "http://x"
security_policy = "Basic128"
security_mode = "Sign"
auth = "token"
mode = "push"
interval = "1ms"
server_pin_sha256 = ["xyz"]
[[points]]
name = "p"
node = "ns=x;i=1"
[[points]]
name = "p"
node = "ns=1;q=1"
[[points]]
name = "w"
node = "ns=1;s=W"
access = "pubsub"
[[points]]
name = "d"
node = "i=85"
deadband = 1.0
type = "float16"
[[points]]
name = "m"
node = "nsu=;s=x"
min = 1.0
`
	_, err := (&opcua.OPCUA{}).Init(context.Background(), sdktest.Request(conf))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"device", "endpoint", "security_policy", "auth", "mode", "interval", "server_pin_sha256[0]",
		"points[0].node", "points[1].name", "points[1].node",
		"points[3].deadband", "points[3].type", "points[4].node", "points[4].min", "test.toml:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q:\n%v", want, err)
		}
	}
}

// TestConfigSecurityNeedsTrust: a signed channel without a pin or CA is
// refused, and a certificate is generated only where data_dir allows.
func TestConfigSecurityNeedsTrust(t *testing.T) {
	conf := "device = \"d\"\nendpoint = \"opc.tcp://127.0.0.1:4840\"\nsecurity_policy = \"Basic256Sha256\"\nsecurity_mode = \"SignAndEncrypt\"\n" +
		"[[points]]\nname = \"p\"\nnode = \"i=2258\"\n"
	_, err := (&opcua.OPCUA{}).Init(context.Background(), sdktest.Request(conf))
	if err == nil || !strings.Contains(err.Error(), "server_pin_sha256") || !strings.Contains(err.Error(), "data_dir") {
		t.Fatalf("want refusals for trust and the certificate, got %v", err)
	}
	conf2 := strings.Replace(conf, "[[points]]", "server_pin_sha256 = [\""+strings.Repeat("0", 64)+"\"]\n[[points]]", 1)
	r := sdktest.Request(conf2)
	r.Agent.DataDir = t.TempDir()
	if _, err := (&opcua.OPCUA{}).Init(context.Background(), r); err != nil {
		t.Fatalf("with a pin and data_dir: %v", err)
	}
}

// TestSampleConfigParses: the embedded sample is valid.
func TestSampleConfigParses(t *testing.T) {
	reg, ok := sdk.Lookup("inputs.opcua")
	if !ok {
		t.Fatal("inputs.opcua is not registered")
	}
	conf := strings.NewReplacer("[[inputs.opcua]]", "", "[[inputs.opcua.points]]", "[[points]]").Replace(reg.SampleConfig)
	resp, err := (&opcua.OPCUA{}).Init(context.Background(), sdktest.Request(conf))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Points) != 3 || resp.Points[1].Kind != sdk.KindFloat || !resp.Points[1].Access.Subscribes() {
		t.Errorf("points %+v", resp.Points)
	}
}

// TestNodeIdForms: every string form parses; near misses do not.
func TestNodeIdForms(t *testing.T) {
	for _, ok := range []string{"i=85", "ns=2;i=1001", "ns=3;s=Line1.Speed", "ns=1;s=a;b=c", "ns=1;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63",
		"ns=1;b=AQIDBA==", "nsu=urn:x;s=y", "nsu=http://opcfoundation.org/UA/;i=2258", "ns=65535;i=4294967295"} {
		if err := opcua.ParseNode(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "85", "Line1.Speed", "ns=2", "ns=2;", "ns=2;x=1", "ns=-1;i=1", "ns=65536;i=1", "ns=1;i=4294967296",
		"ns=1;i=abc", "ns=1;g=not-a-guid", "ns=1;b=!!", "nsu=;s=x", "nsu=urn:x", " ns=1;i=1", "s=1;i=2"} {
		if err := opcua.ParseNode(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzParseNode: no NodeId text makes the parser panic.
func FuzzParseNode(f *testing.F) {
	for _, s := range []string{"i=85", "ns=2;s=x", "ns=1;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63", "ns=1;b=AQID", "nsu=urn:x;i=1", "ns=1;g=", "ns=;i="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { _ = opcua.ParseNode(s) })
}

// FuzzConfig: no configuration table makes Init panic.
func FuzzConfig(f *testing.F) {
	f.Add("device = \"d\"\nendpoint = \"opc.tcp://h:1\"\n[[points]]\nname = \"p\"\nnode = \"ns=1;s=x\"\n")
	f.Add("device = \"d\"\nendpoint = \"opc.tcp://h:1\"\nmode = \"subscribe\"\n[[points]]\nname = \"p\"\nnode = \"nsu=u;g=00000000-0000-0000-0000-000000000000\"\ndeadband = 1.5\n")
	f.Add("security_mode = \"Sign\"\nserver_pin_sha256 = [\"sha256//AAAA\"]\n[[points]]\ntype = \"int16\"\naccess = \"sub\"\nmin = 3.0\n")
	f.Fuzz(func(t *testing.T, conf string) {
		_, _ = (&opcua.OPCUA{}).Init(context.Background(), sdktest.Request(conf))
	})
}
