package modbus_test

import (
	"context"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
	"github.com/edgepipe/edgepipe/sim/modbussim"
)

// TestPointsReusedOnlyWhenGivenBack: a frame the core gives back
// (sdk.FrameReleaser) lends its points slice to the next poll, which
// reads every value afresh into it; a frame not given back is never
// written over.
func TestPointsReusedOnlyWhenGivenBack(t *testing.T) {
	s := startSim(t, "tcp://127.0.0.1:0", &modbussim.Config{Units: []modbussim.UnitConfig{{ID: 1}}})
	conf := "url = \"" + s.Addr() + "\"\ninterval = \"1s\"\n[[devices]]\nname = \"d\"\n" +
		"[[devices.points]]\nname = \"a\"\narea = \"holding\"\naddress = 0\n" +
		"[[devices.points]]\nname = \"b\"\narea = \"holding\"\naddress = 1\n"
	p := factory()
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	if _, err := p.Init(context.Background(), sdktest.Request(conf)); err != nil {
		t.Fatal(err)
	}
	in, rel := p.(sdk.Input), p.(sdk.FrameReleaser)
	ctx := sdk.WithReadBack(context.Background(), []string{"d"}) // due at every call
	gather := func(a, b uint16) *sdk.Frame {
		t.Helper()
		if err := s.Write(1, modbussim.Holding, 0, []uint16{a, b}); err != nil {
			t.Fatal(err)
		}
		f, err := in.Gather(ctx)
		if err != nil || len(f.Batches) != 1 || len(f.Batches[0].Points) != 2 {
			t.Fatalf("gather: %v %+v", err, f)
		}
		for i, want := range []uint16{a, b} {
			pt := f.Batches[0].Points[i]
			if pt.Value.Kind() != sdk.KindUint || pt.Value.UintValue() != uint64(want) || pt.Quality != sdk.QualityGood {
				t.Fatalf("point %d: %+v, want %d good", i, pt, want)
			}
		}
		return f
	}
	f1 := gather(1, 2)
	kept := f1.Batches[0].Points
	f2 := gather(3, 4)
	if &f2.Batches[0].Points[0] == &kept[0] {
		t.Fatal("a frame the core still holds was written over")
	}
	if v := kept[0].Value.UintValue(); v != 1 {
		t.Fatalf("the first frame's point changed to %d", v)
	}
	rel.ReleaseFrame(f2)
	f3 := gather(5, 6)
	if &f3.Batches[0].Points[0] != &f2.Batches[0].Points[0] {
		t.Fatal("a frame given back was not reused")
	}
}
