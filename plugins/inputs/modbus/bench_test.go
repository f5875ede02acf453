package modbus_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
	"github.com/edgepipe/edgepipe/sim/modbussim"
)

// cpuTime is the process's user+system CPU time so far. The simulator runs
// in the same process, so the figure covers both ends of the link: an
// upper bound for the gateway's own cost.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tenThousand is a device of 10,000 holding registers read as uint16
// points (80 reads of 125 registers), with a counter generator in every
// register so the values change.
func tenThousand(b *testing.B, interval string) (sdk.Plugin, int) {
	const n = 10000
	return registersDevice(b, n, interval, ""), n
}

// registersDevice is a device of n holding registers as tenThousand's,
// with more connection keys (conn) when given.
func registersDevice(b *testing.B, n int, interval, conn string) sdk.Plugin {
	var regs []modbussim.RegisterConfig
	for a := 0; a < n; a += 100 {
		regs = append(regs, modbussim.RegisterConfig{Area: "holding", Address: a, Type: "uint16", Generator: "counter", Period: modbussim.Duration(10 * time.Millisecond)})
	}
	s := startSim(b, "tcp://127.0.0.1:0", &modbussim.Config{Units: []modbussim.UnitConfig{{ID: 1, Registers: regs}}})
	return registersAt(b, s.Addr(), n, interval, conn)
}

// registersAt is the input for a device "big" of n holding registers
// read as uint16 points at url.
func registersAt(b *testing.B, url string, n int, interval, conn string) sdk.Plugin {
	var conf strings.Builder
	fmt.Fprintf(&conf, "url = %q\ninterval = %q\n%s\n[[devices]]\nname = \"big\"\n", url, interval, conn)
	for a := range n {
		fmt.Fprintf(&conf, "[[devices.points]]\nname = \"r%d\"\narea = \"holding\"\naddress = %d\n", a, a)
	}
	plugin := factory()
	b.Cleanup(func() { _ = plugin.Close(context.Background()) })
	if _, err := plugin.Init(context.Background(), sdktest.Request(conf.String())); err != nil {
		b.Fatal(err)
	}
	return plugin
}

// BenchmarkPoll10k reads 10,000 registers per iteration, as fast as it
// goes: the cost of one poll.
func BenchmarkPoll10k(b *testing.B) {
	// A 1 ms interval makes every Gather due.
	p, n := tenThousand(b, "1ms")
	in := p.(sdk.Input)
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		f, err := in.Gather(context.Background())
		if err != nil || f.NumPoints() != n || f.Batches[0].Points[n-1].Quality != sdk.QualityGood {
			b.Fatalf("poll: %v %d", err, f.NumPoints())
		}
	}
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/point")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*n), "cpu-ns/point")
}

// BenchmarkPoll10kEvery100ms polls 10,000 registers on a 100 ms tick, as
// the scheduler would, and reports the CPU it costs: per point, and as a
// share of one core.
func BenchmarkPoll10kEvery100ms(b *testing.B) {
	p, n := tenThousand(b, "100ms")
	in := p.(sdk.Input)
	tk := time.NewTicker(100 * time.Millisecond)
	defer tk.Stop()
	cpu0, wall0 := cpuTime(), time.Now()
	var worst time.Duration
	polls := 0
	for b.Loop() {
		<-tk.C
		start := time.Now()
		f, err := in.Gather(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if len(f.Batches) == 1 {
			if f.Batches[0].Points[n-1].Quality != sdk.QualityGood {
				b.Fatal("bad points")
			}
			polls++
		}
		worst = max(worst, time.Since(start))
	}
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	if polls < b.N*9/10 {
		b.Errorf("only %d of %d ticks polled the device", polls, b.N)
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(polls*n), "cpu-ns/point")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%cpu")
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms/poll")
}

// BenchmarkPoll1000InFlight reads 1,000 holding registers (8 reads of 125)
// per iteration with one request at a time and with max_in_flight = 8
// (one write of 8 requests, then the 8 answers): the CPU and the time of
// one poll. The simulator answers in the same process, so its CPU covers
// both ends of the link; pymodbus (when installed) runs in its own, so
// there the CPU is the input's alone.
func BenchmarkPoll1000InFlight(b *testing.B) {
	const n = 1000
	for _, peer := range []string{"sim", "pymodbus"} {
		for _, inFlight := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/max_in_flight=%d", peer, inFlight), func(b *testing.B) {
				conn := fmt.Sprintf("timeout = \"5s\"\nmax_in_flight = %d", inFlight)
				var p sdk.Plugin
				if peer == "sim" {
					p = registersDevice(b, n, "1ms", conn)
				} else {
					p = registersAt(b, startPymodbus(b, false), n, "1ms", conn)
				}
				in := p.(sdk.Input)
				// A read-back request makes the device due at every call: a
				// poll of 1,000 registers can take less than half a tick.
				ctx := sdk.WithReadBack(context.Background(), []string{"big"})
				b.ReportAllocs()
				cpu0 := cpuTime()
				for b.Loop() {
					f, err := in.Gather(ctx)
					if err != nil || f.NumPoints() != n || f.Batches[0].Points[n-1].Quality != sdk.QualityGood {
						b.Fatalf("poll: %v %d", err, f.NumPoints())
					}
				}
				cpu := cpuTime() - cpu0
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "us/poll")
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/poll")
			})
		}
	}
}
