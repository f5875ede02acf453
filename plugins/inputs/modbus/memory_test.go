package modbus

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// TestInitMemoryPerPoint bounds the live heap an initialised input holds
// per configured point (issue 15: under 1 KB of memory per point for the
// whole gateway, which the collector's headroom doubles): the checked
// points, the read plan, the name index and the schemas it returns (the
// core keeps them as the point registry's). The configuration text is
// built inside and dropped after Init, so a point name still pointing into
// it (the TOML decoder's strings are substrings of its input) is counted.
func TestInitMemoryPerPoint(t *testing.T) {
	const devices, per = 20, 2500
	const n = devices * per
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m, resp := initBig(t, devices, per)
	runtime.GC()
	runtime.ReadMemStats(&after)
	got := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	// Still usable: the last point is found for a write and polled.
	if len(resp.Points) != n || m.devices[devices-1].find(fmt.Sprintf("r%d", per-1)) == nil || resp.Points[n-1].Unit != "degC" {
		t.Fatalf("%d schemas; last point not found or without its unit", len(resp.Points))
	}
	runtime.KeepAlive(m)
	runtime.KeepAlive(resp)
	t.Logf("an initialised modbus input holds %d B per configured point (schemas included)", got)
	if got > 220 {
		t.Errorf("an initialised modbus input holds %d B per configured point, want at most 220", got)
	}
}

func initBig(t *testing.T, devices, per int) (*Modbus, *sdk.InitResponse) {
	var conf strings.Builder
	conf.WriteString("url = \"tcp://127.0.0.1:1\"\ninterval = \"5s\"\n")
	for d := range devices {
		fmt.Fprintf(&conf, "[[devices]]\nname = \"dev%d\"\nunit_id = %d\n", d, d+1)
		for a := range per {
			fmt.Fprintf(&conf, "[[devices.points]]\nname = \"r%d\"\narea = \"holding\"\naddress = %d\nunit = \"degC\"\n", a, a)
		}
	}
	m := &Modbus{}
	resp, err := m.Init(context.Background(), sdktest.Request(conf.String()))
	if err != nil {
		t.Fatal(err)
	}
	return m, resp
}

// What only the schemas need (unit, bounds) reaches them although the
// points do not keep it; every point is found by name for a write.
func TestInitSchemasAndNameIndex(t *testing.T) {
	conf := "url = \"tcp://127.0.0.1:1\"\n[[devices]]\nname = \"d\"\n" +
		"[[devices.points]]\nname = \"z\"\narea = \"holding\"\naddress = 0\nunit = \"bar\"\naccess = \"pubsub\"\nmin = -1.5\nmax = 2\n" +
		"[[devices.points]]\nname = \"a\"\narea = \"holding\"\naddress = 1\naccess = \"sub\"\n" +
		"[[devices.points]]\nname = \"m\"\narea = \"coil\"\naddress = 2\n"
	m := &Modbus{}
	resp, err := m.Init(context.Background(), sdktest.Request(conf))
	if err != nil {
		t.Fatal(err)
	}
	z := resp.Points[0]
	if z.Name != "z" || z.Unit != "bar" || z.Min == nil || *z.Min != -1.5 || z.Max == nil || *z.Max != 2 || z.Access != sdk.AccessPubSub {
		t.Errorf("schema %+v", z)
	}
	if resp.Points[1].Unit != "" || resp.Points[1].Min != nil {
		t.Errorf("schema %+v", resp.Points[1])
	}
	d := m.devices[0]
	for _, name := range []string{"z", "a", "m"} {
		if p := d.find(name); p == nil || p.name != name {
			t.Errorf("find(%q) = %+v", name, p)
		}
	}
	if d.find("b") != nil || d.find("") != nil {
		t.Error("found a point that is not configured")
	}
	if len(d.polled) != 2 || d.polled[0].name != "z" || d.polled[1].name != "m" {
		t.Errorf("polled %+v, want z and m (a is sub)", d.polled)
	}
}
