package alarm

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// benchSetup makes 10 devices of 100 float points and 100 rules, one on
// each of the first 10 points of every device: threshold rules with a
// clear band and a delay, and one in ten comparing with another device's
// point through points[...].
func benchSetup(tb testing.TB) (*Alarm, []sdk.PointSchema) {
	var schemas []sdk.PointSchema
	for d := range 10 {
		for p := range 100 {
			schemas = append(schemas, sdk.PointSchema{Device: fmt.Sprintf("plc%d", d), Name: fmt.Sprintf("point_%03d", p), Kind: sdk.KindFloat})
		}
	}
	var conf strings.Builder
	for d := range 10 {
		for p := range 10 {
			fmt.Fprintf(&conf, "[[rules]]\nname = \"r%d_%d\"\npoint = \"plc%d.point_%03d\"\n", d, p, d, p)
			if p == 9 {
				fmt.Fprintf(&conf, "condition = 'value > 90 && points[\"plc%d.point_050\"] > 80'\n", (d+1)%10)
			} else {
				conf.WriteString("condition = \"value > 90\"\nclear = \"value < 85\"\ndelay = \"2s\"\n")
			}
			conf.WriteString("message = \"${rule}: ${point} at ${value}\"\n")
		}
	}
	a := New()
	a.log = slog.New(slog.DiscardHandler)
	req := &sdk.InitRequest{Config: []byte(conf.String()), Points: schemas, State: sdk.NewMemState(nil)}
	if _, err := a.Init(context.Background(), req); err != nil {
		tb.Fatal(err)
	}
	return a, schemas
}

// BenchmarkProcess measures points per second through Process with 100
// rules over 1000 points a frame (one poll of 10 devices), values
// random-walking around the thresholds so that alarms are raised and
// cleared now and then (the events per frame are reported).
func BenchmarkProcess(b *testing.B) {
	a, _ := benchSetup(b)
	const variants = 64
	frames := make([]*sdk.Frame, variants)
	rng := rand.New(rand.NewPCG(1, 2))
	cur := make([]float64, 1000)
	for i := range cur {
		cur[i] = 87
	}
	for v := range frames {
		f := &sdk.Frame{Batches: make([]sdk.Batch, 10)}
		for d := range f.Batches {
			bt := &f.Batches[d]
			bt.Device = fmt.Sprintf("plc%d", d)
			bt.Points = make([]sdk.Point, 100)
			for p := range bt.Points {
				k := d*100 + p
				cur[k] += (rng.Float64() - 0.5) * 2
				bt.Points[p] = sdk.Point{Name: fmt.Sprintf("point_%03d", p), Value: sdk.Float(cur[k])}
			}
		}
		frames[v] = f
	}
	events := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f := frames[i%variants]
		f.Alarms = f.Alarms[:0]
		for d := range f.Batches { // a poll every 500 ms: points take the batch's time
			f.Batches[d].TS = int64(t0 + i*500)
		}
		out, _ := a.Process(context.Background(), f)
		events += len(out.Alarms)
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "points/s")
	b.ReportMetric(float64(b.N)*100/b.Elapsed().Seconds(), "rules/s")
	b.ReportMetric(float64(events)/float64(b.N), "events/frame")
}
