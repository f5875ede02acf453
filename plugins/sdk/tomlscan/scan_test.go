package tomlscan

import "testing"

const doc = `# comment [not a header]
title = "x"
multi = """
[inside]
"""
arr = [
  [1, 2],
  { a = 1 },
]
[[devices]]
name = "a"
[[devices.points]]
name = "p0"
[[devices.points]]
"quoted key" = 1
type = 'float32'
[[devices]]
name = "b"
[devices.opts]
x.y = 2
`

func TestIndexPlacesKeysAndTables(t *testing.T) {
	ix := Scan([]byte(doc))
	for path, want := range map[string]int{
		"title": 2, "multi": 3, "arr": 6,
		"devices[0]": 10, "devices[0].name": 11, "devices[0].points[0].name": 13,
		"devices[0].points[1].quoted key": 15, "devices[0].points[1].type": 16,
		"devices[1].name": 18, "devices[1].opts.x.y": 20,
		"devices[1].points[7].type": 17, // falls back to the nearest parent: devices[1]
	} {
		if got := ix.Line(path); got != want {
			t.Errorf("Line(%q) = %d, want %d", path, got, want)
		}
	}
	if len(ix.Headers) != 5 || ix.Headers[2].Path != "devices[0].points[1]" || !ix.Headers[3].Array {
		t.Fatalf("headers %+v", ix.Headers)
	}
	if got := ix.BareLines("devices.name"); len(got) != 2 || got[1] != 18 {
		t.Fatalf("BareLines %v", got)
	}
	if got := ix.BareLinesUnder(""); len(got) != 3 || got[2].Key != "arr" {
		t.Fatalf("root keys %+v", got)
	}
}

// A multi-line value's span covers all its lines, so that a badly typed
// array can be blanked whole.
func TestKeySpanCoversMultiLineValues(t *testing.T) {
	ix := Scan([]byte(doc))
	for _, tc := range []struct{ line, start, end int }{
		{2, 2, 2}, {4, 3, 5}, {8, 6, 9}, {11, 11, 11}, {20, 20, 20},
	} {
		s, e, ok := ix.KeySpan(tc.line)
		if !ok || s != tc.start || e != tc.end {
			t.Errorf("KeySpan(%d) = %d, %d, %v; want %d, %d", tc.line, s, e, ok, tc.start, tc.end)
		}
	}
	if got := ix.PathAt(16, "devices.points.type"); got != "devices[0].points[1].type" {
		t.Errorf("PathAt = %q", got)
	}
	if got := ix.PathAt(16, "devices.points.name"); got != "" {
		t.Errorf("PathAt of another key = %q", got)
	}
	if _, _, ok := ix.KeySpan(10); ok {
		t.Error("a header line is no key's span")
	}
}

func FuzzScan(f *testing.F) {
	f.Add([]byte(doc))
	f.Add([]byte("[[a.'b c'.\"d\"]]\nx = '''\n'''\n[a\n= ="))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix := Scan(data)
		for _, h := range ix.Headers {
			if h.Line < 1 || len(h.Parts) == 0 {
				t.Fatalf("bad header %+v", h)
			}
			_ = ix.Line(h.Path + ".x")
		}
		for l := 0; l < 5; l++ {
			if s, e, ok := ix.KeySpan(l); ok && (s > l || e < l) {
				t.Fatalf("KeySpan(%d) = %d..%d", l, s, e)
			}
		}
	})
}
