package agent

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// registryInputs is n points over devices of 100, split between two
// inputs, the second input's devices sorting before the first's.
func registryInputs(n int) []*instance {
	a := &instance{cfg: &config.Plugin{ID: "inputs.modbus#1"}}
	b := &instance{cfg: &config.Plugin{ID: "inputs.modbus#2"}}
	for i := 0; i < n; i++ {
		in, dev := a, fmt.Sprintf("plc%04d", i/100)
		if i%2 == 1 {
			in, dev = b, fmt.Sprintf("aplc%04d", i/100)
		}
		in.points = append(in.points, sdk.PointSchema{Device: dev, Name: fmt.Sprintf("r%06d", i), Type: "uint16",
			Kind: sdk.KindInt, Access: sdk.AccessPub})
	}
	return []*instance{a, b}
}

func TestRegistryGroupsByDeviceAndFindsEveryPoint(t *testing.T) {
	ins := registryInputs(1000)
	r, errs := buildRegistry(ins)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	s := r.Schemas()
	if len(s) != 1000 {
		t.Fatalf("%d schemas, want 1000", len(s))
	}
	for i := 1; i < len(s); i++ {
		if s[i-1].Device > s[i].Device || s[i-1].Device == s[i].Device && s[i-1].Name > s[i].Name {
			t.Fatalf("schemas %d and %d out of order: %s.%s, %s.%s", i-1, i, s[i-1].Device, s[i-1].Name, s[i].Device, s[i].Name)
		}
	}
	for _, in := range ins {
		for _, p := range in.points {
			got, owner, ok := r.Lookup(p.FullName())
			if !ok || got != p || owner != in {
				t.Fatalf("Lookup(%s) = %+v, %v, %v", p.FullName(), got, owner, ok)
			}
		}
	}
	if _, _, ok := r.Lookup("plc0000.nothing"); ok {
		t.Error("found a point nobody offers")
	}
}

func TestRegistryRefusesAPointDefinedTwice(t *testing.T) {
	ins := registryInputs(10)
	dup := ins[0].points[2]
	ins[1].points = append(ins[1].points, dup)
	r, errs := buildRegistry(ins)
	if len(errs) != 1 || !strings.Contains(errs[0].Msg, "also defined by inputs.modbus#1") || errs[0].Path != "inputs.modbus#2" {
		t.Fatalf("errors %v", errs)
	}
	if _, owner, _ := r.Lookup(dup.FullName()); owner != ins[0] {
		t.Errorf("the point belongs to %s, want the first input", owner.cfg.ID)
	}
}

// Memory per configured point: the registry points at the inputs' own
// schemas and keeps a name index, not copies of every schema (263 B a point).
func TestRegistryMemoryPerPoint(t *testing.T) {
	const n = 100_000
	ins := registryInputs(n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, _ := buildRegistry(ins)
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	runtime.KeepAlive(r)
	if per > 40 { // 20 B: two pointers and a 4-byte index
		t.Errorf("the registry holds %d B per point", per)
	}
	t.Logf("the registry holds %d B per point", per)
}

// The name index compares joined names without building them: device
// names may hold dots, and a key must match device+"."+name whole.
func TestRegistryLookupDottedNames(t *testing.T) {
	ins := registryInputs(0)
	ins[0].points = []sdk.PointSchema{{Device: "line.7", Name: "r1"}, {Device: "line", Name: "7.r2"},
		{Device: "line", Name: "7"}, {Device: "a", Name: "b.c"}, {Device: "a-", Name: "x"}, {Device: "a", Name: ""}}
	r, errs := buildRegistry(ins)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	for _, p := range ins[0].points {
		if s, _, ok := r.Lookup(p.FullName()); !ok || s.Device != p.Device || s.Name != p.Name {
			t.Errorf("Lookup(%q) = %+v, %v", p.FullName(), s, ok)
		}
	}
	for _, k := range []string{"", "line", "line.", "line.7.", "line.7.r", "a.b", "a", "a.", "a-.", "line.7.r1x", "b"} {
		if k == "a." {
			continue // device "a", name "": defined
		}
		if s, _, ok := r.Lookup(k); ok {
			t.Errorf("Lookup(%q) found %+v", k, s)
		}
	}
	names := []string{"line.7", "line", "a", "a-", "ab", "a.b", ""}
	for _, d1 := range names {
		for _, n1 := range names {
			for _, d2 := range names {
				for _, n2 := range names {
					want := strings.Compare(d1+"."+n1, d2+"."+n2)
					if got := cmpJoined(d1, n1, d2, n2); sign(got) != want {
						t.Fatalf("cmpJoined(%q, %q, %q, %q) = %d, want %d", d1, n1, d2, n2, got, want)
					}
					if got := cmpKey(d1, n1, d2+"."+n2); sign(got) != want {
						t.Fatalf("cmpKey(%q, %q, %q) = %d, want %d", d1, n1, d2+"."+n2, got, want)
					}
				}
			}
		}
	}
}

func sign(x int) int {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}
