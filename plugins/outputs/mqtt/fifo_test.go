package mqtt

import (
	"context"
	"runtime"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

func TestFIFOKeepsOrderAndBound(t *testing.T) {
	q := newFIFO[int](3)
	if _, ok := q.take(); ok {
		t.Fatal("took from an empty queue")
	}
	for i := 1; i <= 3; i++ {
		if !q.put(i) {
			t.Fatalf("put %d refused below the bound", i)
		}
	}
	if q.put(4) {
		t.Fatal("put beyond the bound of 3")
	}
	select {
	case <-q.ready:
	default:
		t.Fatal("no ready token while items wait")
	}
	for want := 1; want <= 3; want++ {
		v, ok := q.take()
		if !ok || v != want {
			t.Fatalf("took %d, %v; want %d", v, ok, want)
		}
		if want < 3 {
			select {
			case <-q.ready:
			default:
				t.Fatalf("no ready token with %d items left", 3-want)
			}
		}
	}
	if q.items != nil {
		t.Errorf("an emptied queue keeps its backing array (%d slots)", cap(q.items))
	}
	if !q.put(5) {
		t.Error("put refused after the queue emptied")
	}
}

// An initialised output holds little memory while no flood of commands
// waits: the busy-reply queue used to be a channel of 16384 preallocated
// slots (0.9 MB).
func TestInitHoldsLittleMemory(t *testing.T) {
	var outs []*Output
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const n = 4
	for i := 0; i < n; i++ {
		o := New()
		if _, err := o.Init(context.Background(), sdktest.Request("servers = [\"tcp://127.0.0.1:1\"]\n")); err != nil {
			t.Fatal(err)
		}
		outs = append(outs, o)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	for _, o := range outs {
		_ = o.Close(context.Background())
	}
	if per > 400<<10 {
		t.Errorf("an initialised output holds %d KB of heap", per>>10)
	}
	t.Logf("an initialised output holds %d KB of heap", per>>10)
}
