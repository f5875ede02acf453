package opcuasim_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/inputs/opcua"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
	"github.com/edgepipe/edgepipe/sim/opcuasim"
)

// TestWithInput reads the simulator with the repository's own inputs.opcua,
// in the test's process and over gRPC (sdktest): the counter changes
// between polls and is pushed to a subscription, and a setpoint write is read back.
func TestWithInput(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s, err := opcuasim.Start(fmt.Sprintf("opc.tcp://127.0.0.1:%d", port), 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ids := map[string]string{}
	for _, n := range s.Nodes() {
		ids[n.Type] = n.ID
	}
	for _, mode := range []string{"poll", "subscribe"} {
		t.Run(mode, func(t *testing.T) { testWithInput(t, s, mode, ids) })
	}
}

func testWithInput(t *testing.T, s *opcuasim.Sim, mode string, ids map[string]string) {
	conf := fmt.Sprintf(`device = "sim"
endpoint = %q
mode = %q
interval = "100ms"
[[points]]
name = "counter"
node = %q
[[points]]
name = "setpoint"
node = %q
type = "int32"
access = "pubsub"
`, s.Endpoint(), mode, ids["UInt32"], ids["Int32"])
	sdktest.Run(t, func() sdk.Plugin { return &opcua.OPCUA{} }, func(t *testing.T, p sdk.Plugin) {
		sdktest.Init(t, p, conf)
		t.Cleanup(func() { _ = p.Close(context.Background()) })
		ctx, cancel := context.WithCancel(context.Background())
		var (
			mu      sync.Mutex
			batches []sdk.Batch
		)
		notify := make(chan struct{}, 1)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = p.(sdk.StreamingInput).Stream(ctx, func(f *sdk.Frame) {
				mu.Lock()
				batches = append(batches, f.Batches...)
				mu.Unlock()
				select {
				case notify <- struct{}{}:
				default:
				}
			})
		}()
		t.Cleanup(func() { cancel(); <-done })
		// waitFor waits for a batch from index from on that satisfies ok.
		waitFor := func(what string, from int, ok func(map[string]sdk.Point) bool) int {
			t.Helper()
			deadline := time.After(60 * time.Second)
			for {
				mu.Lock()
				for i := from; i < len(batches); i++ {
					m := map[string]sdk.Point{}
					for _, pt := range batches[i].Points {
						m[pt.Name] = pt
					}
					if ok(m) {
						mu.Unlock()
						return i + 1
					}
				}
				from = len(batches)
				mu.Unlock()
				select {
				case <-notify:
				case <-deadline:
					t.Fatalf("no batch with %s", what)
				}
			}
		}
		var first sdk.Value
		next := waitFor("a good counter and the setpoint at 40", 0, func(m map[string]sdk.Point) bool {
			c, ok := m["counter"]
			first = c.Value
			return ok && c.Quality == sdk.QualityGood && m["setpoint"].Value.Equal(sdk.Int(40))
		})
		next = waitFor("a changed counter", next, func(m map[string]sdk.Point) bool {
			c, ok := m["counter"]
			return ok && c.Quality == sdk.QualityGood && !c.Value.Equal(first)
		})
		res, err := p.(sdk.Writer).Write(context.Background(), []sdk.WriteRequest{{Device: "sim", Name: "setpoint", Value: sdk.Int(55)}})
		if err != nil || res[0].Error != "" {
			t.Fatalf("write: %v %+v", err, res)
		}
		waitFor("the setpoint read back", next, func(m map[string]sdk.Point) bool {
			sp, ok := m["setpoint"]
			return ok && sp.Value.Equal(sdk.Int(55))
		})
		// Leave the simulator as found for the next mode.
		if res, err := p.(sdk.Writer).Write(context.Background(), []sdk.WriteRequest{{Device: "sim", Name: "setpoint", Value: sdk.Int(40)}}); err != nil || res[0].Error != "" {
			t.Fatalf("reset write: %v %+v", err, res)
		}
	})
}
