package s7_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/inputs/s7/internal/snap7test"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// cpuTime is this process's user+system CPU time so far. The snap7 server
// runs in its own process, so the figure is the gateway's side only.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// thousand is a PLC with 1,000 values in DB3: 500 REALs and 500 INTs, with
// a counter that keeps changing at DBD4000.
func thousand(b *testing.B, interval string) (sdk.Input, int) {
	const n = 1000
	srv := snap7test.Start(b)
	img := make([]byte, 3000)
	for i := range 500 {
		bits := math.Float32bits(float32(i) / 4)
		img[4*i], img[4*i+1], img[4*i+2], img[4*i+3] = byte(bits>>24), byte(bits>>16), byte(bits>>8), byte(bits)
		img[2000+2*i], img[2000+2*i+1] = byte(uint16(-i)>>8), byte(uint16(-i))
	}
	srv.Set("DB", 3, 0, img)
	srv.Count("DB", 3, 4000)
	var conf strings.Builder
	fmt.Fprintf(&conf, "device = \"big\"\naddress = %q\ninterval = %q\n", srv.Addr(), interval)
	for i := range 500 {
		fmt.Fprintf(&conf, "[[points]]\nname = \"r%d\"\naddress = \"DB3.DBD%d\"\ntype = \"real\"\n", i, 4*i)
		fmt.Fprintf(&conf, "[[points]]\nname = \"i%d\"\naddress = \"DB3.DBW%d\"\ntype = \"int\"\n", i, 2000+2*i)
	}
	p := factory()
	b.Cleanup(func() { _ = p.Close(context.Background()) })
	if _, err := p.Init(context.Background(), sdktest.Request(conf.String())); err != nil {
		b.Fatal(err)
	}
	return p.(sdk.Input), n
}

func allGood(b *testing.B, f *sdk.Frame, n int) {
	if f.NumPoints() != n {
		b.Fatalf("%d points", f.NumPoints())
	}
	for _, p := range f.Batches[0].Points {
		if p.Quality != sdk.QualityGood {
			b.Fatalf("%s: %s", p.Name, p.Quality)
		}
	}
}

// BenchmarkPoll1k reads the 1,000 values per iteration, as fast as it
// goes: the cost of one poll.
func BenchmarkPoll1k(b *testing.B) {
	in, n := thousand(b, "100ms")
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		f, err := in.Gather(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		allGood(b, f, n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/point")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N*n), "cpu-ns/point")
}

// BenchmarkPoll1kEvery100ms polls the 1,000 values on a 100 ms tick, as the
// scheduler would, and reports the CPU it costs: per point, and as a share
// of one core.
func BenchmarkPoll1kEvery100ms(b *testing.B) {
	in, n := thousand(b, "100ms")
	tk := time.NewTicker(100 * time.Millisecond)
	defer tk.Stop()
	cpu0, wall0 := cpuTime(), time.Now()
	var worst time.Duration
	for b.Loop() {
		<-tk.C
		start := time.Now()
		f, err := in.Gather(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		allGood(b, f, n)
		worst = max(worst, time.Since(start))
	}
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*n), "cpu-ns/point")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%cpu")
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms/poll")
}
