package opcua_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gopcua "github.com/gopcua/opcua"

	"github.com/edgepipe/edgepipe/plugins/inputs/opcua"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// typeCase is one node of internal/testopcua/server.js and the value it must read as.
type typeCase struct {
	name, node, typ string
	want            sdk.Value
	q               sdk.Quality
}

func typeCases() []typeCase {
	good := sdk.QualityGood
	return []typeCase{
		{"boolean", "ns=1;s=Boolean", "", sdk.Bool(true), good},
		{"sbyte", "ns=1;s=SByte", "", sdk.Int(-128), good},
		{"byte", "ns=1;s=Byte", "", sdk.Uint(255), good},
		{"int16", "ns=1;s=Int16", "", sdk.Int(-32768), good},
		{"uint16", "ns=1;s=UInt16", "", sdk.Uint(65535), good},
		{"int32", "ns=1;s=Int32", "", sdk.Int(math.MinInt32), good},
		{"uint32", "ns=1;s=UInt32", "", sdk.Uint(math.MaxUint32), good},
		{"int64", "ns=1;s=Int64", "", sdk.Int(-0x0102030405060708), good},
		{"uint64", "ns=1;s=UInt64", "", sdk.Uint(0xFEDCBA9876543210), good},
		{"float", "ns=1;s=Float", "", sdk.Float(-1.5), good},
		{"double", "ns=1;s=Double", "", sdk.Float(-math.Pi), good},
		{"string", "ns=1;s=String", "", sdk.String("Grüße, OPC UA"), good},
		{"datetime", "ns=1;s=DateTime", "", sdk.String("2024-02-29T12:34:56.789Z"), good},
		{"bytestring", "ns=1;s=ByteString", "", sdk.String("AAEC/v8="), good},
		{"guid", "ns=1;s=Guid", "", sdk.String("72962B91-FA75-4AE6-8D28-B404DC7DAF63"), good},
		{"xml", "ns=1;s=XmlElement", "", sdk.String("<a>1</a>"), good},
		{"nodeid", "ns=1;s=NodeId", "", sdk.String("ns=1;s=Boolean"), good},
		{"statuscode", "ns=1;s=StatusCode", "", sdk.Uint(0x803C0000), good},
		{"qualifiedname", "ns=1;s=QualifiedName", "", sdk.String("1:Speed"), good},
		{"localizedtext", "ns=1;s=LocalizedText", "", sdk.String("Hello"), good},
		// NodeIds in their other string forms.
		{"numeric", "ns=1;i=1001", "", sdk.Int(1001), good},
		{"guid_id", "ns=1;g=1B2C3D4E-0000-4000-8000-00000000ABCD", "", sdk.Float(2.5), good},
		{"opaque_id", "ns=1;b=AQIDBA==", "", sdk.Uint(1234), good},
		{"by_uri", "nsu=urn:edgepipe:test;s=Temperature", "", sdk.Float(21.5), good},
		{"ns0", "i=2259", "", sdk.Int(0), good}, // Server_ServerStatus_State: Running (an enumeration, Int32)
		// Forced types: converted when the value fits, bad when not.
		{"int32_as_float", "ns=1;s=Int32", "float64", sdk.Float(math.MinInt32), good},
		{"byte_as_string", "ns=1;s=Byte", "string", sdk.String("255"), good},
		{"uint32_as_int16", "ns=1;s=UInt32", "int16", sdk.Value{}, sdk.QualityBad},
		// A value the server flags uncertain, and a node it does not have.
		{"uncertain", "ns=1;s=Uncertain", "", sdk.Float(3), sdk.QualityUncertain},
		{"missing", "ns=1;s=NoSuchNode", "", sdk.Value{}, sdk.QualityBad},
		// Values without an edgepipe kind: bad, the status says why.
		{"darr", "ns=1;s=DoubleArray", "", sdk.Value{}, sdk.QualityBad},
		{"sarr", "ns=1;s=StringArray", "", sdk.Value{}, sdk.QualityBad},
		{"matrix", "ns=1;s=Int32Matrix", "", sdk.Value{}, sdk.QualityBad},
		{"structure", "i=2256", "", sdk.Value{}, sdk.QualityBad}, // Server_ServerStatus
	}
}

func typesConfig(endpoint, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "device = \"plc\"\nendpoint = %q\ninterval = \"200ms\"\n%s\n", endpoint, extra)
	for _, c := range typeCases() {
		fmt.Fprintf(&b, "[[points]]\nname = %q\nnode = %q\n", c.name, c.node)
		if c.typ != "" {
			fmt.Fprintf(&b, "type = %q\n", c.typ)
		}
	}
	return b.String()
}

func checkTypes(t *testing.T, b sdk.Batch) {
	t.Helper()
	got := byName(b)
	for _, c := range typeCases() {
		p, ok := got[c.name]
		switch {
		case !ok:
			t.Errorf("%s (%s): not reported", c.name, c.node)
		case p.Quality != c.q || !p.Value.Equal(c.want):
			t.Errorf("%s (%s): got %#v %s, want %#v %s", c.name, c.node, p.Value, p.Quality, c.want, c.q)
		case !strings.HasPrefix(p.Status, wantStatus[c.name]) || (wantStatus[c.name] == "") != (p.Status == ""):
			// SPEC 3: the status name goes in the point's status field,
			// and only for readings that are not good.
			t.Errorf("%s (%s): status %q, want %q", c.name, c.node, p.Status, wantStatus[c.name])
		}
	}
}

// wantStatus is the Point.Status of the type cases that are not good (a
// prefix: a mismatch says what did not fit); every other one has none.
var wantStatus = map[string]string{"uncertain": "UncertainLastUsableValue", "missing": "BadNodeIdUnknown",
	"uint32_as_int16": "BadTypeMismatch (", "darr": "unsupported type: array of Double",
	"sarr": "unsupported type: array of String", "matrix": "unsupported type: 2x3 matrix of Int32",
	"structure": "unsupported type: structure ServerStatusDataType"}

// TestReadsEveryType polls one node of every built-in type the plugin
// maps, in every NodeId form, from node-opcua. The server allows 7 nodes
// per Read: the 30 points only read if the plugin batches within that.
func TestReadsEveryType(t *testing.T) {
	srv := sharedServer(t)
	conf := typesConfig(srv.Endpoint, "")
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		resp := initReq(t, p, conf, "")
		if len(resp.Points) != len(typeCases()) {
			t.Fatalf("%d schemas", len(resp.Points))
		}
		r := stream(t, p)
		b, _ := r.waitFor(t, 0, "the first good reading", pointIs("boolean", sdk.QualityGood))
		checkTypes(t, b)
		if in, ok := p.(*opcua.OPCUA); ok {
			for pt, want := range map[string]string{"uncertain": "UncertainLastUsableValue", "missing": "BadNodeIdUnknown", "double": "Good"} {
				if got := in.Status(pt); got != want {
					t.Errorf("status of %s: %q, want %q", pt, got, want)
				}
			}
			if got := in.Status("uint32_as_int16"); !strings.HasPrefix(got, "BadTypeMismatch") {
				t.Errorf("status of uint32_as_int16: %q", got)
			}
		}
	})
}

// TestSubscribeEveryType reads the same nodes through monitored items.
func TestSubscribeEveryType(t *testing.T) {
	srv := sharedServer(t)
	conf := typesConfig(srv.Endpoint, `mode = "subscribe"`)
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		initReq(t, p, conf, "")
		r := stream(t, p)
		// The initial values may come in more than one notification.
		latest := map[string]sdk.Point{}
		from := 0
		for len(latest) < len(typeCases()) {
			var b sdk.Batch
			b, from = r.waitFor(t, from, "initial values of every monitored item", func(sdk.Batch) bool { return true })
			for _, pt := range b.Points {
				latest[pt.Name] = pt
			}
		}
		var all sdk.Batch
		for _, pt := range latest {
			all.Points = append(all.Points, pt)
		}
		checkTypes(t, all)
	})
}

// TestSubscriptionDeliversChanges: a changing node is pushed by the
// server; a deadband handed to the server holds back smaller changes.
func TestSubscriptionDeliversChanges(t *testing.T) {
	srv := sharedServer(t)
	conf := fmt.Sprintf(`device = "plc"
endpoint = %q
mode = "subscribe"
interval = "100ms"
[[points]]
name = "counter"
node = "ns=1;s=Counter"
[[points]]
name = "coarse"
node = "ns=1;s=Counter"
deadband = 5.0
`, srv.Endpoint)
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		initReq(t, p, conf, "")
		r := stream(t, p)
		var seen []uint64
		from := 0
		for len(seen) < 3 {
			var b sdk.Batch
			b, from = r.waitFor(t, from, "a counter change", func(b sdk.Batch) bool { _, ok := byName(b)["counter"]; return ok })
			pt := byName(b)["counter"]
			if pt.Quality != sdk.QualityGood {
				t.Fatalf("counter %s", pt.Quality)
			}
			if n := len(seen); n == 0 || pt.Value.UintValue() != seen[n-1] {
				seen = append(seen, pt.Value.UintValue())
			}
		}
		for i := 1; i < len(seen); i++ {
			if seen[i] <= seen[i-1] {
				t.Errorf("counter went %v", seen)
			}
		}
		var coarse []uint64
		from = 0
		for len(coarse) < 3 {
			var b sdk.Batch
			b, from = r.waitFor(t, from, "a change beyond the deadband", func(b sdk.Batch) bool { _, ok := byName(b)["coarse"]; return ok })
			coarse = append(coarse, byName(b)["coarse"].Value.UintValue())
		}
		for i := 1; i < len(coarse); i++ {
			if coarse[i]-coarse[i-1] <= 5 {
				t.Errorf("the deadband of 5 let through %v", coarse)
			}
		}
	})
}

func writeConfig(endpoint, extra string) string {
	return fmt.Sprintf(`device = "plc"
endpoint = %q
interval = "200ms"
%s
[[points]]
name = "setpoint"
node = "ns=1;s=Setpoint"
type = "float64"
access = "pubsub"
[[points]]
name = "mode"
node = "ns=1;s=Mode"
type = "int32"
access = "pubsub"
[[points]]
name = "enabled"
node = "ns=1;s=Enabled"
type = "bool"
access = "pubsub"
[[points]]
name = "label"
node = "ns=1;s=Label"
type = "string"
access = "pubsub"
[[points]]
name = "small"
node = "ns=1;s=Small"
type = "uint32"
access = "pubsub"
[[points]]
name = "locked"
node = "ns=1;s=ReadOnly"
type = "float64"
access = "pubsub"
[[points]]
name = "counter"
node = "ns=1;s=Counter"
`, endpoint, extra)
}

// TestWrites writes every kind in the nodes' own data types (an Int16 node
// from an int32 point, a Byte node from a uint32 point) as a user, sees
// the values read back, and sees refusals: a value the node's type cannot
// hold, a node the server will not write, a read-only point.
func TestWrites(t *testing.T) {
	srv := sharedServer(t)
	conf := writeConfig(srv.Endpoint, "auth = \"username\"\nusername = \"operator\"\npassword = \"s3cret\"")
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		initReq(t, p, conf, "")
		r := stream(t, p)
		_, from := r.waitFor(t, 0, "a first good reading", allGood(7))
		w := p.(sdk.Writer)
		reqs := []sdk.WriteRequest{
			{Device: "plc", Name: "setpoint", Value: sdk.Float(42.25)},
			{Device: "plc", Name: "mode", Value: sdk.Int(-7)},
			{Device: "plc", Name: "enabled", Value: sdk.Bool(true)},
			{Device: "plc", Name: "label", Value: sdk.String("running")},
			{Device: "plc", Name: "small", Value: sdk.Uint(300)}, // a Byte node
			{Device: "plc", Name: "locked", Value: sdk.Float(2)}, // the server refuses
			{Device: "plc", Name: "counter", Value: sdk.Uint(1)}, // access pub
			{Device: "plc", Name: "nope", Value: sdk.Uint(1)},
		}
		res, err := w.Write(context.Background(), reqs)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 4; i++ {
			if res[i].Error != "" {
				t.Errorf("%s: %s", reqs[i].Name, res[i].Error)
			}
		}
		for i, want := range map[int]string{4: "does not fit the node's data type Byte", 5: "the server refused the write: Bad",
			6: "read-only", 7: "no such point"} {
			if !strings.Contains(res[i].Error, want) {
				t.Errorf("%s: error %q, want it to say %q", reqs[i].Name, res[i].Error, want)
			}
		}
		b, _ := r.waitFor(t, from, "the read-back", func(b sdk.Batch) bool { return b.ReadBack })
		got := byName(b)
		for name, want := range map[string]sdk.Value{"setpoint": sdk.Float(42.25), "mode": sdk.Int(-7),
			"enabled": sdk.Bool(true), "label": sdk.String("running")} {
			if pt := got[name]; !pt.Value.Equal(want) || pt.Quality != sdk.QualityGood {
				t.Errorf("read back %s: %#v %s, want %#v", name, pt.Value, pt.Quality, want)
			}
		}
		if _, ok := got["small"]; ok {
			t.Error("a refused write was read back")
		}
		// The next ordinary poll sees the server's values too.
		b, _ = r.waitFor(t, from, "a poll after the write", func(b sdk.Batch) bool { return !b.ReadBack && len(b.Points) == 7 })
		if v := byName(b)["small"].Value; !v.Equal(sdk.Uint(7)) {
			t.Errorf("small changed to %#v", v)
		}
		if v := byName(b)["locked"].Value; !v.Equal(sdk.Float(1.25)) {
			t.Errorf("locked changed to %#v", v)
		}
		// Put the values back for the other mode's run.
		res, _ = w.Write(context.Background(), []sdk.WriteRequest{{Device: "plc", Name: "setpoint", Value: sdk.Float(20.5)},
			{Device: "plc", Name: "mode", Value: sdk.Int(1)}, {Device: "plc", Name: "enabled", Value: sdk.Bool(false)},
			{Device: "plc", Name: "label", Value: sdk.String("idle")}})
		for _, x := range res {
			if x.Error != "" {
				t.Error(x.Error)
			}
		}
	})
}

// TestWrongPasswordIsBad: a refused login leaves the points bad and the
// input unhealthy, without the password in the reason.
func TestWrongPasswordIsBad(t *testing.T) {
	srv := sharedServer(t)
	conf := writeConfig(srv.Endpoint, "auth = \"username\"\nusername = \"operator\"\npassword = \"wrong-one\"")
	p := factory()
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	initReq(t, p, conf, "")
	r := stream(t, p)
	b, _ := r.waitFor(t, 0, "bad points", pointIs("setpoint", sdk.QualityBad))
	if st := byName(b)["setpoint"].Status; st != "BadNotConnected" {
		t.Errorf("status of a point whose login is refused: %q", st)
	}
	h, _ := p.(sdk.HealthReporter).Health(context.Background())
	if h.OK || h.Reason == "" || strings.Contains(h.Reason, "wrong-one") {
		t.Errorf("health %+v", h)
	}
}

// TestServerRestartSurvived kills the server (SIGKILL) and starts it again
// on the same port: the points go bad, then the session (and in subscribe
// mode the subscription) is re-created and values flow again.
func TestServerRestartSurvived(t *testing.T) {
	srv := startServer(t) // killed and restarted: its own
	for _, mode := range []string{"poll", "subscribe"} {
		t.Run(mode, func(t *testing.T) {
			conf := fmt.Sprintf("device = \"plc\"\nendpoint = %q\nmode = %q\ninterval = \"200ms\"\ntimeout = \"2s\"\nmax_backoff = \"1s\"\n"+
				"[[points]]\nname = \"counter\"\nnode = \"ns=1;s=Counter\"\n", srv.Endpoint, mode)
			p := factory()
			t.Cleanup(func() { _ = p.Close(context.Background()) })
			initReq(t, p, conf, "")
			r := stream(t, p)
			_, from := r.waitFor(t, 0, "a good counter", pointIs("counter", sdk.QualityGood))
			srv.Kill()
			dead, from := r.waitFor(t, from, "the counter bad after the server died", pointIs("counter", sdk.QualityBad))
			if st := byName(dead)["counter"].Status; st != "BadConnectionClosed" && st != "BadNotConnected" {
				t.Errorf("status of the counter after the server died: %q", st)
			}
			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
			b, from := r.waitFor(t, from, "a good counter after the restart", pointIs("counter", sdk.QualityGood))
			first := byName(b)["counter"].Value.UintValue()
			// The restarted server counts from 0 again; a change after the
			// restart shows the subscription is live, not a stale value.
			r.waitFor(t, from, "a change after the restart", func(b sdk.Batch) bool {
				pt, ok := byName(b)["counter"]
				return ok && pt.Quality == sdk.QualityGood && pt.Value.UintValue() != first
			})
			h, _ := p.(sdk.HealthReporter).Health(context.Background())
			if !h.OK || h.Counters["sessions_lost"] < 1 || h.Counters["connects"] < 2 {
				t.Errorf("health after the restart: %+v", h)
			}
		})
	}
}

// serverPin asks the server for its endpoints and returns the pin of its
// certificate, as server_pin_sha256 takes it.
func serverPin(t *testing.T, endpoint string) string {
	t.Helper()
	eps, err := gopcua.GetEndpoints(context.Background(), endpoint)
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range eps {
		if len(ep.ServerCertificate) > 0 {
			return opcua.PinOf(ep.ServerCertificate)
		}
	}
	t.Fatal("the server sent no certificate")
	return ""
}

// TestSignAndEncryptWithPinnedServer connects with Basic256Sha256
// SignAndEncrypt and a client certificate generated under data_dir,
// trusting the server by its pinned key; a wrong pin is refused.
func TestSignAndEncryptWithPinnedServer(t *testing.T) {
	srv := sharedServer(t)
	pin := serverPin(t, srv.Endpoint)
	dataDir := t.TempDir()
	for _, tc := range []struct {
		name, pin string
		ok        bool
	}{{"right pin", pin, true}, {"wrong pin", strings.Repeat("ab", 32), false}} {
		t.Run(tc.name, func(t *testing.T) {
			conf := writeConfig(srv.Endpoint, fmt.Sprintf(`security_policy = "Basic256Sha256"
security_mode = "SignAndEncrypt"
server_pin_sha256 = [%q]
auth = "username"
username = "operator"
password = "s3cret"`, tc.pin))
			p := factory()
			t.Cleanup(func() { _ = p.Close(context.Background()) })
			initReq(t, p, conf, dataDir)
			r := stream(t, p)
			if !tc.ok {
				r.waitFor(t, 0, "bad points", pointIs("setpoint", sdk.QualityBad))
				h, _ := p.(sdk.HealthReporter).Health(context.Background())
				if h.OK || !strings.Contains(h.Reason, "not trusted") || !strings.Contains(h.Reason, pin) {
					t.Errorf("health %+v: want the refusal to name the server's pin %s", h, pin)
				}
				return
			}
			r.waitFor(t, 0, "good points over an encrypted channel", allGood(7))
			if _, err := os.Stat(filepath.Join(dataDir, "opcua", "inputs-opcua-1-cert.pem")); err != nil {
				t.Errorf("no generated client certificate: %v", err)
			}
			res, err := p.(sdk.Writer).Write(context.Background(), []sdk.WriteRequest{{Device: "plc", Name: "label", Value: sdk.String("secure")}})
			if err != nil || res[0].Error != "" {
				t.Fatalf("write: %v %+v", err, res)
			}
			b, _ := r.waitFor(t, 0, "the read-back", func(b sdk.Batch) bool { return b.ReadBack })
			if v := byName(b)["label"].Value; !v.Equal(sdk.String("secure")) {
				t.Errorf("read back %#v", v)
			}
		})
	}
}

// TestServerTrustedByCA: the server's certificate verified against
// server_ca (here its own self-signed certificate, as a plant's
// administrator would hand it out).
func TestServerTrustedByCA(t *testing.T) {
	srv := sharedServer(t)
	eps, err := gopcua.GetEndpoints(context.Background(), srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var der []byte
	for _, ep := range eps {
		if len(ep.ServerCertificate) > 0 {
			der = ep.ServerCertificate
		}
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := writeConfig(srv.Endpoint, fmt.Sprintf("security_policy = \"Basic256Sha256\"\nsecurity_mode = \"Sign\"\nserver_ca = %q", ca))
	p := factory()
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	initReq(t, p, conf, t.TempDir())
	r := stream(t, p)
	r.waitFor(t, 0, "good points from a server trusted by its CA", allGood(7))
}

// TestCertificateAuth logs in with the client certificate (an X509
// identity token) over a signed channel.
func TestCertificateAuth(t *testing.T) {
	srv := sharedServer(t)
	pin := serverPin(t, srv.Endpoint)
	conf := writeConfig(srv.Endpoint, fmt.Sprintf(`security_policy = "Basic256Sha256"
security_mode = "Sign"
server_pin_sha256 = [%q]
auth = "certificate"`, pin))
	p := factory()
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	initReq(t, p, conf, t.TempDir())
	r := stream(t, p)
	r.waitFor(t, 0, "good points with certificate auth", allGood(7))
}
