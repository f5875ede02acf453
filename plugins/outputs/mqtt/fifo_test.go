package mqtt

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// TestFIFO: items come out in order, a full queue refuses, a put wakes a
// waiting taker, and an emptied queue lets its memory go.
func TestFIFO(t *testing.T) {
	q := newFIFO[int](3)
	if _, ok := q.take(); ok {
		t.Fatal("took from an empty queue")
	}
	for i := range 3 {
		if !q.put(i) {
			t.Fatalf("put %d refused below the bound", i)
		}
	}
	if q.put(3) {
		t.Fatal("a full queue took another item")
	}
	if v, _ := q.take(); v != 0 {
		t.Fatalf("took %d first, want 0", v)
	}
	if !q.put(3) || q.len() != 3 {
		t.Fatalf("after one take: put refused or len %d, want 3", q.len())
	}
	for want := 1; want <= 3; want++ {
		if v, ok := q.take(); !ok || v != want {
			t.Fatalf("took %d, %v; want %d", v, ok, want)
		}
	}
	if q.items != nil {
		t.Fatal("an empty queue keeps its backing array")
	}
	got := make(chan int)
	go func() {
		for {
			if v, ok := q.take(); ok {
				got <- v
				return
			}
			<-q.wait()
		}
	}()
	q.put(42)
	select {
	case v := <-got:
		if v != 42 {
			t.Fatalf("waiting taker got %d", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a put did not wake the waiting taker")
	}
}

// TestInitHoldsLittleMemory: an initialised output holds little memory
// while no flood of commands waits: its command and busy-reply queues used
// to be channels of preallocated slots (1.2 MB).
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
