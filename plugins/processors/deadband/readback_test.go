package deadband

import (
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// TestReadBackPasses: a batch marked ReadBack (the read-back after a
// write, SPEC 5) is reported whatever the band says, in process and over
// gRPC (the mark travels in the wire batch), and its value becomes the
// one later readings are compared with.
func TestReadBackPasses(t *testing.T) {
	clk := newClock()
	sdktest.Run(t, factory(clk), func(t *testing.T, p sdk.Plugin) {
		sdktest.Init(t, p, "points = [\"plc.*\"]\nabsolute = 10.0")
		reported := func(v sdk.Value, readBack bool) bool {
			f := one("plc", "sp", v, good)
			f.Batches[0].ReadBack = readBack
			f.Batches[0].Points = append(f.Batches[0].Points, sdk.Point{Name: "other", Value: v, Quality: good, TS: 1})
			out := process(t, p, f)
			if n := out.NumPoints(); readBack && n != 2 {
				t.Fatalf("read-back of %v: %d of 2 points passed, want the whole batch", v, n)
			} else if n == 0 {
				return false
			}
			if readBack && !out.Batches[0].ReadBack {
				t.Fatalf("read-back of %v: the mark was lost", v)
			}
			return true
		}
		if !reported(U(5), false) {
			t.Fatal("first reading not reported")
		}
		if reported(U(7), false) {
			t.Fatal("a change of 2 within the band of 10 was reported")
		}
		if !reported(U(7), true) {
			t.Fatal("the read-back of 7 was held back by the band")
		}
		// 7 is now the last reported: 16 is within 10 of it, 18 is not.
		if reported(U(16), false) {
			t.Fatal("16 reported: the read-back 7 was not taken as the last reported value")
		}
		if !reported(U(18), false) {
			t.Fatal("18 not reported after a read-back of 7")
		}
	})
}
