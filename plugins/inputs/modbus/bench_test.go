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
	var regs []modbussim.RegisterConfig
	for a := 0; a < n; a += 100 {
		regs = append(regs, modbussim.RegisterConfig{Area: "holding", Address: a, Type: "uint16", Generator: "counter", Period: modbussim.Duration(10 * time.Millisecond)})
	}
	s := startSim(b, "tcp://127.0.0.1:0", &modbussim.Config{Units: []modbussim.UnitConfig{{ID: 1, Registers: regs}}})
	var conf strings.Builder
	fmt.Fprintf(&conf, "url = %q\ninterval = %q\n[[devices]]\nname = \"big\"\n", s.Addr(), interval)
	for a := range n {
		fmt.Fprintf(&conf, "[[devices.points]]\nname = \"r%d\"\narea = \"holding\"\naddress = %d\n", a, a)
	}
	plugin := factory()
	b.Cleanup(func() { _ = plugin.Close(context.Background()) })
	if _, err := plugin.Init(context.Background(), sdktest.Request(conf.String())); err != nil {
		b.Fatal(err)
	}
	return plugin, n
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
