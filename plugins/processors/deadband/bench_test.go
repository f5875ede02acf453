package deadband

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// benchFrame is devices x points float readings.
func benchFrame(devices, points int) *sdk.Frame {
	f := &sdk.Frame{Batches: make([]sdk.Batch, devices)}
	for d := range f.Batches {
		b := &f.Batches[d]
		b.Device = fmt.Sprintf("plc%d", d)
		b.TS = 1732600000000
		b.Points = make([]sdk.Point, points)
		for i := range b.Points {
			b.Points[i] = sdk.Point{Name: fmt.Sprintf("point_%03d", i), Value: sdk.Float(float64(i)), TS: b.TS}
		}
	}
	return f
}

// BenchmarkProcess measures the decision rate on 10 devices of 100 float
// points, values random-walking so that few (step 0.4) or most (step 4)
// readings leave the 0.5 band, with state persisted into an in-memory
// store as the core provides it. Restoring the frame before each call (a copy of 1000
// points) is included in the figure.
func BenchmarkProcess(b *testing.B) {
	for _, c := range []struct {
		mode string
		step float64 // random walk step; the band is 0.5
	}{{"change", 0.4}, {"both", 0.4}, {"change", 4}, {"period", 0.4}} {
		mode := c.mode
		b.Run(fmt.Sprintf("%s/step=%v", c.mode, c.step), func(b *testing.B) {
			d := New()
			req := &sdk.InitRequest{Config: fmt.Appendf(nil, "absolute = 0.5\nreport = %q\nperiod = \"60s\"", mode), State: sdk.NewMemState(nil)}
			if _, err := d.Init(context.Background(), req); err != nil {
				b.Fatal(err)
			}
			const variants = 64
			f := benchFrame(10, 100)
			rng := rand.New(rand.NewPCG(1, 2))
			var src [variants][][]sdk.Point
			cur := make([]float64, 1000)
			for v := range variants {
				src[v] = make([][]sdk.Point, len(f.Batches))
				for bi := range f.Batches {
					src[v][bi] = append([]sdk.Point(nil), f.Batches[bi].Points...)
					for pi := range src[v][bi] {
						k := bi*100 + pi
						cur[k] += (rng.Float64() - 0.5) * c.step
						src[v][bi][pi].Value = sdk.Float(cur[k])
					}
				}
			}
			orig := append([]sdk.Batch(nil), f.Batches...) // Process compacts f.Batches
			batches := f.Batches
			reported := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f.Batches = batches[:len(orig)]
				copy(f.Batches, orig)
				for bi := range f.Batches {
					copy(f.Batches[bi].Points, src[i%variants][bi])
				}
				out, _ := d.Process(context.Background(), f)
				reported += out.NumPoints()
			}
			b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "points/s")
			b.ReportMetric(float64(reported)/float64(b.N)/10, "reported-%")
		})
	}
}
