package opcua_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/gopcua/opcua/id"
	uaserver "github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/sim/opcuasim"
)

// gopcuaLogger sends the library server's log to slog at debug level.
type gopcuaLogger struct{}

func (gopcuaLogger) Debug(msg string, args ...any) { slog.Debug(fmt.Sprintf(msg, args...)) }
func (gopcuaLogger) Info(msg string, args ...any)  { slog.Debug(fmt.Sprintf(msg, args...)) }
func (gopcuaLogger) Warn(msg string, args ...any)  { slog.Debug(fmt.Sprintf(msg, args...)) }
func (gopcuaLogger) Error(msg string, args ...any) { slog.Debug(fmt.Sprintf(msg, args...)) }

// TestAgainstGopcuaServer reads, subscribes to and writes the server of
// the library itself (package server: security None and anonymous only),
// a pure-Go peer that needs no node-opcua: what `edgepipe demo` could
// start as its OPC UA simulator.
func TestAgainstGopcuaServer(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	s := uaserver.New(uaserver.EnableSecurity("None", ua.MessageSecurityModeNone), uaserver.EnableAuthMode(ua.UserTokenTypeAnonymous),
		uaserver.EndPoint("127.0.0.1", port), uaserver.SetLogger(gopcuaLogger{}))
	root, _ := s.Namespace(0)
	ns := uaserver.NewNodeNameSpace(s, "urn:edgepipe:sim")
	root.Objects().AddRef(ns.Objects(), id.HasComponent, true)
	temp := ns.AddNewVariableStringNode("Temperature", float64(21.5))
	ns.Objects().AddRef(temp, id.HasComponent, true)
	sp := ns.AddNewVariableStringNode("Setpoint", int32(40))
	ns.Objects().AddRef(sp, id.HasComponent, true)
	opcuasim.GuardDeleteSubscriptions(s) // the library's server crashes without it
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for _, mode := range []string{"poll", "subscribe"} {
		t.Run(mode, func(t *testing.T) {
			conf := fmt.Sprintf(`device = "sim"
endpoint = "opc.tcp://127.0.0.1:%d"
mode = %q
interval = "100ms"
[[points]]
name = "temperature"
node = "nsu=urn:edgepipe:sim;s=Temperature"
[[points]]
name = "setpoint"
node = "ns=%d;s=Setpoint"
type = "int32"
access = "pubsub"
`, port, mode, ns.ID())
			p := factory()
			t.Cleanup(func() { _ = p.Close(context.Background()) })
			initReq(t, p, conf, "")
			r := stream(t, p)
			b, from := r.waitFor(t, 0, "good values", allGood(2))
			if v := byName(b)["temperature"].Value; !v.Equal(sdk.Float(21.5)) {
				t.Errorf("temperature %#v", v)
			}
			res, err := p.(sdk.Writer).Write(context.Background(), []sdk.WriteRequest{{Device: "sim", Name: "setpoint", Value: sdk.Int(55)}})
			if err != nil || res[0].Error != "" {
				t.Fatalf("write: %v %+v", err, res)
			}
			b, _ = r.waitFor(t, from, "the read-back", func(b sdk.Batch) bool { return b.ReadBack })
			if v := byName(b)["setpoint"].Value; !v.Equal(sdk.Int(55)) {
				t.Errorf("setpoint read back %#v", v)
			}
			_, _ = p.(sdk.Writer).Write(context.Background(), []sdk.WriteRequest{{Device: "sim", Name: "setpoint", Value: sdk.Int(40)}})
		})
	}
}
