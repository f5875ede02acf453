package template

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// Memory per configured point: the template keeps where each full name
// splits into device and point, not a copy of every schema (100+ B a
// point); and it still splits a device name that holds a dot right.
func TestInitMemoryPerPoint(t *testing.T) {
	const n = 100_000
	req := sdktest.Request("")
	for i := 0; i < n; i++ {
		req.Points = append(req.Points, sdk.PointSchema{Device: fmt.Sprintf("line.%d", i/100), Name: fmt.Sprintf("r%06d", i),
			Type: "uint16", Kind: sdk.KindInt})
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tp := New()
	if _, err := tp.Init(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	if dev, name := tp.split("line.7.r000700"); dev != "line.7" || name != "r000700" {
		t.Errorf("split = %q, %q", dev, name)
	}
	runtime.KeepAlive(req)
	if per > 90 {
		t.Errorf("an initialised template holds %d B per point", per)
	}
	t.Logf("an initialised template holds %d B per point", per)
}
