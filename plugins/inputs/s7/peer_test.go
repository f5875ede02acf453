package s7_test

import (
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/inputs/s7/internal/snap7test"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// TestSampleConfig: the sample configuration, pointed at the snap7 server,
// reads every one of its points.
func TestSampleConfig(t *testing.T) {
	srv := snap7test.Start(t)
	var reg sdk.Registration
	for _, r := range sdk.Registered(sdk.KindInput) {
		if r.Name == "s7" {
			reg = r
		}
	}
	conf := strings.NewReplacer("[[inputs.s7]]", "", "[[inputs.s7.points]]", "[[points]]",
		`"192.168.1.30"`, `"`+srv.Addr()+`"`).Replace(reg.SampleConfig)
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		resp := sdktest.Init(t, p, conf)
		got := gather(t, p)
		if len(got) != len(resp.Points) {
			t.Fatalf("%d points reported, %d configured", len(got), len(resp.Points))
		}
		for name, pt := range got {
			if pt.Quality != sdk.QualityGood {
				t.Errorf("%s: %s", name, pt.Quality)
			}
		}
	})
}

// peer is a TCP server that runs fn on every connection, counting them.
func peer(t *testing.T, fn func(c net.Conn)) (string, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			go func() { defer c.Close(); fn(c) }()
		}
	}()
	return l.Addr().String(), &n
}

// TestConfusedPeers: a peer that answers garbage, a COTP disconnect, or
// nothing at all never yields a good point; the input closes the
// connection, backs off, and Health says why.
func TestConfusedPeers(t *testing.T) {
	for name, fn := range map[string]func(c net.Conn){
		"garbage": func(c net.Conn) {
			buf := make([]byte, 512)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
				_, _ = c.Write([]byte("HTTP/1.0 400 Bad Request\r\n\r\n"))
			}
		},
		"disconnect request": func(c net.Conn) {
			buf := make([]byte, 512)
			_, _ = c.Read(buf)
			_, _ = c.Write([]byte{3, 0, 0, 11, 6, 0x80, 0, 1, 0, 1, 0x81})
		},
		"silent": func(c net.Conn) { _, _ = io.Copy(io.Discard, c) },
	} {
		t.Run(name, func(t *testing.T) {
			sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
				addr, conns := peer(t, fn)
				sdktest.Init(t, p, config(addr, "timeout = \"200ms\"\ninterval = \"1m\"", []point{{name: "v", address: "MW0"}}))
				for range 2 {
					if got := gather(t, p)["v"]; got.Quality != sdk.QualityBad || got.Value.IsValid() {
						t.Fatalf("%+v", got)
					}
				}
				h, _ := p.(sdk.HealthReporter).Health(context.Background())
				if h.OK || h.Counters["connect_errors"] != 1 {
					t.Errorf("health %+v: want not OK after one attempt, then backed off", h)
				}
				if name == "disconnect request" && !strings.Contains(h.Reason, "disconnect request") {
					t.Errorf("reason %q", h.Reason)
				}
				// The peer may count its connection late: wait for it.
				deadline := time.Now().Add(20 * time.Second)
				for conns.Load() == 0 && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				if n := conns.Load(); n != 1 {
					t.Errorf("%d connections while backing off, want 1", n)
				}
			})
		})
	}
}

// TestGatherContextEnds: a Gather whose context ends before the PLC
// answers returns bad points, not an error. In process only: over gRPC the
// ended context cancels the call itself.
func TestGatherContextEnds(t *testing.T) {
	addr, _ := peer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	p := factory()
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	sdktest.Init(t, p, config(addr, `timeout = "10s"`, []point{{name: "v", address: "MW0"}}))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	f, err := p.(sdk.Input).Gather(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.NumPoints() != 1 || f.Batches[0].Points[0].Quality != sdk.QualityBad {
		t.Fatalf("%+v", f)
	}
}

// halfPLC completes the ISO-on-TCP and S7 handshakes, then never answers:
// a PLC whose communication processor is stuck.
func halfPLC(c net.Conn) {
	buf := make([]byte, 512)
	if _, err := c.Read(buf); err != nil { // connection request
		return
	}
	_, _ = c.Write([]byte{3, 0, 0, 11, 6, 0xD0, 0, 1, 0, 1, 0})
	n, err := c.Read(buf) // setup communication
	if err != nil || n < 13 {
		return
	}
	ref := buf[11:13]
	_, _ = c.Write([]byte{3, 0, 0, 27, 2, 0xF0, 0x80,
		0x32, 3, 0, 0, ref[0], ref[1], 0, 8, 0, 0, 0, 0, 0xF0, 0, 0, 1, 0, 1, 0, 240})
	_, _ = io.Copy(io.Discard, c)
}

// TestConnectsButDoesNotAnswer: the points go bad, the connection is
// dropped and tried again at once (once), then the PLC is backed off and
// health says it is unreachable.
func TestConnectsButDoesNotAnswer(t *testing.T) {
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		addr, conns := peer(t, halfPLC)
		sdktest.Init(t, p, config(addr, "timeout = \"200ms\"\ninterval = \"1m\"", []point{{name: "v", address: "MW0"}}))
		for range 2 {
			if got := gather(t, p)["v"]; got.Quality != sdk.QualityBad {
				t.Fatalf("%+v", got)
			}
		}
		h, _ := p.(sdk.HealthReporter).Health(context.Background())
		if h.OK || h.Counters["connects"] != 2 || h.Counters["request_errors"] != 2 {
			t.Errorf("health %+v: want unwell after two connections that did not answer", h)
		}
		deadline := time.Now().Add(20 * time.Second)
		for conns.Load() < 2 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if n := conns.Load(); n != 2 {
			t.Errorf("%d connections, want 2 (the first, one at once, then backed off)", n)
		}
	})
}
