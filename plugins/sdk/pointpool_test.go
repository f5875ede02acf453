package sdk

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

// A column decoded twice with the same bytes is the same string (no new
// allocation), a different one is not, and what the pool remembers stays
// within its budget whatever strings come by.
func TestPoolStringsRepeatWithinBudget(t *testing.T) {
	var p pointPool
	names := []byte("p0p1p2p3")
	a, b := p.str(names), p.str([]byte("p0p1p2p3"))
	if a != "p0p1p2p3" || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Fatal("the same bytes gave a new string")
	}
	names[0] = 'q' // the caller's bytes change: the string handed out must not
	if c := p.str(names); c != "q0p1p2p3" || a != "p0p1p2p3" {
		t.Fatalf("got %q after %q", c, a)
	}
	for i := range 1000 {
		s := p.str([]byte(strings.Repeat(fmt.Sprint(i%97), 1+i*37%20000)))
		if len(s) == 0 {
			t.Fatal("empty")
		}
		held := 0
		for _, s := range p.strs {
			held += len(s)
		}
		if held != p.held || held > maxPooledStringBytes {
			t.Fatalf("pool holds %d bytes (counted %d), budget %d", held, p.held, maxPooledStringBytes)
		}
	}
	big := make([]byte, maxPooledStringBytes)
	if x, y := p.str(big), p.str(big); unsafe.StringData(x) == unsafe.StringData(y) {
		t.Fatal("a string beyond the budget was remembered")
	}
	var nilPool *pointPool
	if nilPool.str([]byte("x")) != "x" || nilPool.str(nil) != "" {
		t.Fatal("a nil pool converts")
	}
}
