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
	const devices, per = 40, 2500
	const n = devices * per
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m, resp := initBig(t, devices, per)
	runtime.GC()
	runtime.ReadMemStats(&after)
	got := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	// Still usable: the last point is found for a write and polled.
	if len(resp.Points) != n || m.devices[devices-1].find(fmt.Sprintf("r%d", per-1)) == nil {
		t.Fatalf("%d schemas; last point not found", len(resp.Points))
	}
	runtime.KeepAlive(m)
	runtime.KeepAlive(resp)
	t.Logf("an initialised modbus input holds %d B per configured point (schemas included)", got)
	if got > 260 {
		t.Errorf("an initialised modbus input holds %d B per configured point, want at most 260", got)
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
