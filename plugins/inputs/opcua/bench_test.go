package opcua_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// cpuTime is this process's user+system CPU time. The node-opcua server
// runs in its own process, so the figure is the gateway's side alone.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// thousand configures 1,000 UInt32 nodes that the server changes every
// 100 ms, read every 100 ms (poll) or published every 100 ms (subscribe).
func thousand(b *testing.B, mode string) (sdk.Plugin, int) {
	const n = 1000
	srv := startServer(b, fmt.Sprintf("OPCUA_NODES=%d", n), "OPCUA_LIMIT=1000")
	var conf strings.Builder
	fmt.Fprintf(&conf, "device = \"big\"\nendpoint = %q\nmode = %q\ninterval = \"100ms\"\n", srv.Endpoint, mode)
	for i := range n {
		fmt.Fprintf(&conf, "[[points]]\nname = \"n%d\"\nnode = \"ns=1;s=N%d\"\n", i, i)
	}
	p := factory()
	b.Cleanup(func() { _ = p.Close(b.Context()) })
	if _, err := p.Init(b.Context(), sdktest.Request(conf.String())); err != nil {
		b.Fatal(err)
	}
	return p, n
}

// benchStream runs the plugin's Stream and, per iteration, waits for n
// more good points: one poll's worth, or the changes of about one
// publishing interval.
func benchStream(b *testing.B, mode string) {
	p, n := thousand(b, mode)
	got := make(chan int, 1024)
	ctx := b.Context()
	go func() {
		_ = p.(sdk.StreamingInput).Stream(ctx, func(f *sdk.Frame) {
			k := 0
			for _, bt := range f.Batches {
				for _, pt := range bt.Points {
					if pt.Quality == sdk.QualityGood {
						k++
					}
				}
			}
			select {
			case got <- k:
			case <-ctx.Done():
			}
		})
	}()
	// Wait for the first full set (connecting, the initial values).
	for have := 0; have < n; {
		select {
		case k := <-got:
			have += k
		case <-time.After(60 * time.Second):
			b.Fatal("no values from the server")
		}
	}
	cpu0, wall0 := cpuTime(), time.Now()
	points := 0
	for b.Loop() {
		for have := 0; have < n; {
			select {
			case k := <-got:
				have += k
				points += k
			case <-time.After(30 * time.Second):
				b.Fatal("values stopped")
			}
		}
	}
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(points), "cpu-ns/point")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%cpu")
	b.ReportMetric(float64(points)/wall.Seconds(), "points/s")
}

// BenchmarkPoll1000Every100ms: 1,000 nodes read every 100 ms in one Read.
func BenchmarkPoll1000Every100ms(b *testing.B) { benchStream(b, "poll") }

// BenchmarkSubscribe1000Every100ms: 1,000 monitored items that change
// every 100 ms, published every 100 ms.
func BenchmarkSubscribe1000Every100ms(b *testing.B) { benchStream(b, "subscribe") }
