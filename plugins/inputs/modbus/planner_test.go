package modbus

import (
	"fmt"
	"testing"
)

func TestPlan(t *testing.T) {
	def := limits{maxRegs: 125, maxBits: 2000, maxGap: 16}
	h := func(addr, n int) span { return span{area: areaHolding, addr: addr, count: n} }
	c := func(addr int) span { return span{area: areaCoil, addr: addr, count: 1} }
	in := func(addr, n int) span { return span{area: areaInput, addr: addr, count: n} }
	tests := []struct {
		name   string
		points []span
		lim    limits
		want   string // "area start+count[points]" per request
	}{
		{"one point", []span{h(0, 2)}, def, "holding 0+2[0]"},
		{"adjacent merge", []span{h(0, 2), h(2, 1), h(3, 4)}, def, "holding 0+7[0 1 2]"},
		{"unsorted input", []span{h(10, 1), h(0, 2), h(5, 1)}, def, "holding 0+11[1 2 0]"},
		{"gap within max_gap", []span{h(0, 1), h(17, 1)}, def, "holding 0+18[0 1]"},
		{"gap beyond max_gap", []span{h(0, 1), h(18, 1)}, def, "holding 0+1[0] holding 18+1[1]"},
		{"max_gap 0 joins only touching", []span{h(0, 1), h(1, 1), h(3, 1)}, limits{125, 2000, 0}, "holding 0+2[0 1] holding 3+1[2]"},
		{"size limit", []span{h(0, 100), h(100, 25), h(125, 1)}, def, "holding 0+125[0 1] holding 125+1[2]"},
		{"point straddling the limit starts a new read", []span{h(0, 2), h(123, 4)}, def, "holding 0+2[0] holding 123+4[1]"},
		{"small device limit", []span{h(0, 2), h(2, 2), h(4, 2), h(6, 2)}, limits{4, 2000, 16}, "holding 0+4[0 1] holding 4+4[2 3]"},
		{"overlapping points share a read", []span{h(0, 4), h(1, 1), h(2, 2)}, def, "holding 0+4[0 1 2]"},
		{"contained point does not shrink the read", []span{h(0, 10), h(2, 1), h(12, 1)}, def, "holding 0+13[0 1 2]"},
		{"areas are never mixed", []span{h(0, 1), in(0, 1), c(0), h(1, 1)}, def, "coil 0+1[2] holding 0+2[0 3] input 0+1[1]"},
		{"bit gap is max_gap*16", []span{c(0), c(256), c(514)}, def, "coil 0+257[0 1] coil 514+1[2]"},
		{"bit size limit", []span{c(0), c(1999), c(2000)}, limits{125, 2000, 125}, "coil 0+2000[0 1] coil 2000+1[2]"},
		{"end of address space", []span{h(65531, 4), h(65535, 1)}, def, "holding 65531+5[0 1]"},
		{"nothing", nil, def, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			for i, r := range plan(tc.points, tc.lim) {
				if i > 0 {
					got += " "
				}
				got += fmt.Sprintf("%s %d+%d%v", r.area, r.start, r.count, r.points)
			}
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestPlanInvariants checks on a dense map that every read respects the
// limits and covers its points, and that every point is read exactly once.
func TestPlanInvariants(t *testing.T) {
	var pts []span
	for a := 0; a < 5000; a += 1 + a%7 {
		pts = append(pts, span{area: area(a % 4), addr: a, count: 1 + a%4*(a%2)})
	}
	for _, lim := range []limits{{125, 2000, 16}, {10, 16, 0}, {64, 100, 3}} {
		reqs := plan(pts, lim)
		seen := make([]int, len(pts))
		for _, r := range reqs {
			max := lim.maxRegs
			if r.area.bits() {
				max = lim.maxBits
			}
			if r.count > max || r.count < 1 {
				t.Fatalf("%+v: read of %d over the limit %d", lim, r.count, max)
			}
			for _, i := range r.points {
				p := pts[i]
				if p.area != r.area || p.addr < r.start || p.addr+p.count > r.start+r.count {
					t.Fatalf("%+v: point %+v not inside read %+v", lim, p, r)
				}
				seen[i]++
			}
		}
		for i, n := range seen {
			if n != 1 {
				t.Fatalf("%+v: point %d read %d times", lim, i, n)
			}
		}
	}
}

func BenchmarkPlan(b *testing.B) {
	var pts []span
	for a := 0; a < 10000; a++ {
		pts = append(pts, span{area: areaHolding, addr: (a * 7919) % 20000, count: 1 + a%4})
	}
	b.ReportAllocs()
	for b.Loop() {
		plan(pts, limits{125, 2000, 16})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(pts)), "ns/point")
}
