package sdk

import (
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk/pb"
)

// A point's Status crosses the wire by point index; a batch without any
// sends nothing for it, and an index beyond the batch (a confused peer)
// is ignored rather than trusted.
func TestStatusCrossesTheWire(t *testing.T) {
	good := &Batch{Device: "d", TS: 1, Points: []Point{{Name: "a", Value: Int(1), TS: 1}, {Name: "b", Value: Int(2), TS: 1}}}
	if w := batchToPB(good); w.Statuses != nil {
		t.Fatalf("a good batch carries statuses: %v", w.Statuses)
	}
	in := &Batch{Device: "d", TS: 1, Points: []Point{
		{Name: "a", Value: Int(1), TS: 1},
		{Name: "b", Quality: QualityBad, TS: 1, Status: "BadNodeIdUnknown"},
		{Name: "c", Value: Float(2.5), Quality: QualityUncertain, TS: 1, Status: "UncertainLastUsableValue"},
		{Name: "d", Quality: QualityBad, TS: 1, Status: "unsupported type: structure ns=1;s=\xff\xfe"},
	}}
	w := batchToPB(in)
	if len(w.Statuses) != 3 {
		t.Fatalf("statuses on the wire: %v", w.Statuses)
	}
	w.Statuses[99] = []byte("BadOutOfRange")
	var out Batch
	batchFromPB(w, &out)
	for i, p := range in.Points {
		if g := out.Points[i]; g.Status != p.Status || g.Quality != p.Quality || !g.Value.Equal(p.Value) {
			t.Errorf("point %d: got %+v, want %+v", i, g, p)
		}
	}
	var old Batch
	batchFromPB(&pb.Batch{Device: "d", NameLens: []uint32{1}, Names: []byte("a"), Qualities: []byte{byte(QualityBad)}}, &old)
	if len(old.Points) != 1 || old.Points[0].Status != "" || old.Points[0].Quality != QualityBad {
		t.Errorf("a batch from a peer without statuses: %+v", old.Points)
	}
}
