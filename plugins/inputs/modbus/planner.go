package modbus

import (
	"slices"
)

// span is what the planner needs of a point: where it lies and how much
// it covers.
type span struct {
	area  area
	addr  int // first register or bit
	count int // registers or bits
}

// request is one read: a contiguous range of one area, and the points
// (indices into the device's polled points) it serves.
type request struct {
	area   area
	start  int
	count  int
	points []int32
}

// limits bound a read: at most maxRegs registers or maxBits bits, and
// never reading over more than maxGap unused registers (maxGap*16 unused
// bits, the same bytes on the wire) to join two points.
type limits struct {
	maxRegs, maxBits, maxGap int
}

// plan merges points into the fewest reads the limits allow. Per area the
// points are taken in address order and a read grows while the next point
// starts within maxGap of the read's end and the grown read stays within
// the size limit. For points sorted by start this greedy sweep is optimal
// among reads that cover consecutive points, which is what a device map
// read in address order asks for. Every point must fit the size limit on
// its own (the configuration check ensures it).
func plan(points []span, lim limits) []request {
	order := make([]int, len(points))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		pa, pb := points[a], points[b]
		if pa.area != pb.area {
			return int(pa.area) - int(pb.area)
		}
		return pa.addr - pb.addr
	})
	var out []request
	var cur *request
	for _, i := range order {
		p := points[i]
		max, gap := lim.maxRegs, lim.maxGap
		if p.area.bits() {
			max, gap = lim.maxBits, lim.maxGap*16
		}
		if cur != nil && cur.area == p.area {
			end := cur.start + cur.count
			newEnd := end
			if p.addr+p.count > newEnd {
				newEnd = p.addr + p.count
			}
			if p.addr-end <= gap && newEnd-cur.start <= max {
				cur.count = newEnd - cur.start
				cur.points = append(cur.points, int32(i))
				continue
			}
		}
		out = append(out, request{area: p.area, start: p.addr, count: p.count, points: []int32{int32(i)}})
		cur = &out[len(out)-1]
	}
	// Kept for as long as the input runs: exactly sized.
	for i := range out {
		out[i].points = slices.Clone(out[i].points)
	}
	return slices.Clone(out)
}
