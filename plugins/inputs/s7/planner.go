package s7

import (
	"cmp"
	"slices"

	"github.com/edgepipe/edgepipe/plugins/inputs/s7/s7comm"
)

// span is a run of bytes of one area read as a whole, and the points it
// holds (indexes into the polled points).
type span struct {
	area   s7comm.Area
	db     int
	start  int
	size   int
	points []int
}

// chunk is the part of a span one request item reads: a span longer than
// a PDU holds is read in several items.
type chunk struct {
	span int // index into the plan's spans
	off  int // byte offset within the span
	item s7comm.Item
}

// plan is how the points are read for a PDU size: spans, and the chunks of
// each request.
type plan struct {
	spans []span
	reqs  [][]chunk
}

// mergeSpans sorts the points' bytes by area, DB and address and merges
// those within maxGap bytes of each other into spans of at most maxSpan
// bytes (unless a single point is longer). A DB or area is contiguous
// memory, so bytes read between two points are always there.
func mergeSpans(points []*point, polled []int, maxGap, maxSpan int) []span {
	idx := slices.Clone(polled)
	slices.SortFunc(idx, func(a, b int) int {
		pa, pb := points[a].addr, points[b].addr
		return cmp.Or(cmp.Compare(pa.area, pb.area), cmp.Compare(pa.db, pb.db), cmp.Compare(pa.start, pb.start))
	})
	var out []span
	for _, pi := range idx {
		p := points[pi]
		start, size := p.span()
		if n := len(out); n > 0 {
			s := &out[n-1]
			end := max(s.start+s.size, start+size)
			if s.area == p.addr.area && s.db == p.addr.db && start <= s.start+s.size+maxGap && end-s.start <= maxSpan {
				s.size = end - s.start
				s.points = append(s.points, pi)
				continue
			}
		}
		out = append(out, span{area: p.addr.area, db: p.addr.db, start: start, size: size, points: []int{pi}})
	}
	return out
}

// maxSpan is the largest item the answer to a one-item read can carry.
func maxSpan(pdu int) int { return pdu - s7comm.ReadResponseSize(0) }

// pack cuts the spans into items and packs the items into requests that
// fit the PDU size and the item limit.
func pack(spans []span, pdu int) [][]chunk {
	limit := maxSpan(pdu)
	var reqs [][]chunk
	var cur []chunk
	var sizes []int
	for si, s := range spans {
		for off := 0; off < s.size; off += limit {
			n := min(limit, s.size-off)
			c := chunk{span: si, off: off, item: s7comm.Item{Area: s.area, DB: s.db, Start: s.start + off, Size: n}}
			if len(cur) > 0 && (len(cur) == s7comm.MaxItems || s7comm.ReadRequestSize(len(cur)+1) > pdu ||
				s7comm.ReadResponseSize(append(sizes, n)...) > pdu) {
				reqs = append(reqs, cur)
				cur, sizes = nil, nil
			}
			cur = append(cur, c)
			sizes = append(sizes, n)
		}
	}
	if len(cur) > 0 {
		reqs = append(reqs, cur)
	}
	return reqs
}

// makePlan plans the reads of the polled points for a PDU size.
func makePlan(points []*point, polled []int, maxGap, pdu int) *plan {
	spans := mergeSpans(points, polled, maxGap, maxSpan(pdu))
	return &plan{spans: spans, reqs: pack(spans, pdu)}
}

// splitSpan replaces span si by one span per point, after the PLC refused
// to read it whole (a DB shorter than configured, say): the points that
// exist are then read on their own. The requests are packed again.
func (pl *plan) splitSpan(points []*point, si, pdu int) {
	s := pl.spans[si]
	var parts []span
	for _, pi := range s.points {
		start, size := points[pi].span()
		parts = append(parts, span{area: s.area, db: s.db, start: start, size: size, points: []int{pi}})
	}
	pl.spans = slices.Concat(pl.spans[:si], parts, pl.spans[si+1:])
	pl.reqs = pack(pl.spans, pdu)
}
