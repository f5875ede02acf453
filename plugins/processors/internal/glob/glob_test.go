package glob

import (
	"path"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		pat, s string
		want   bool
	}{
		{"*", "", true},
		{"*", "plc1.temperature", true},
		{"plc1.*", "plc1.temperature", true},
		{"plc1.*", "plc10.temperature", false},
		{"*.temperature", "plc1.temperature", true},
		{"*.temperature", "plc1.temperature2", false},
		{"plc?.t*", "plc1.temp", true},
		{"plc?.t*", "plc12.temp", false},
		{"plc[0-9].x", "plc7.x", true},
		{"plc[!0-9].x", "plc7.x", false},
		{"plc[^0-9].x", "plcA.x", true},
		{"a/*", "a/b/c", true}, // unlike path.Match, * crosses '/'
		{`a\*b`, "a*b", true},
		{`a\*b`, "axb", false},
		{"*a*b*c*", "xxaxxbxxcxx", true},
		{"*a*b*c*", "xxaxxcxxbxx", false},
		{"größe.?", "größe.ü", true},
		{"[]]", "]", true},
		{"[a-]", "-", true},
		{"**x", "abx", true},
		{"", "", true},
		{"", "a", false},
		{"a", "", false},
	}
	for _, c := range cases {
		p, err := Compile(c.pat)
		if err != nil {
			t.Errorf("Compile(%q): %v", c.pat, err)
			continue
		}
		if got := p.Match(c.s); got != c.want {
			t.Errorf("%q.Match(%q) = %v, want %v", c.pat, c.s, got, c.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, pat := range []string{"[abc", `abc\`, "[z-a]", "[", "[!", "a[\\", "\xff"} {
		if _, err := Compile(pat); err == nil {
			t.Errorf("Compile(%q): want an error", pat)
		}
	}
	_, idx, err := CompileList([]string{"ok*", "bad["})
	if err == nil || idx != 1 {
		t.Errorf("CompileList: idx %d err %v", idx, err)
	}
}

func TestList(t *testing.T) {
	l, _, err := CompileList([]string{"plc1.*", "*.pressure"})
	if err != nil {
		t.Fatal(err)
	}
	if !l.Match("plc1.a") || !l.Match("plc2.pressure") || l.Match("plc2.a") {
		t.Error("list matching wrong")
	}
	if (List{}).Match("x") {
		t.Error("empty list must match nothing")
	}
}

// FuzzMatch compares with path.Match where the two agree on syntax (no '/',
// whose handling differs on purpose, and no "[!" which path.Match reads as
// a literal '!').
func FuzzMatch(f *testing.F) {
	f.Add("plc?.*", "plc1.temperature")
	f.Add("*a*b", "aab")
	f.Add("[a-c]x", "bx")
	f.Fuzz(func(t *testing.T, pat, s string) {
		p, err := Compile(pat)
		if err != nil {
			return
		}
		got := p.Match(s) // must not panic or hang
		if strings.ContainsAny(pat+s, "/") || strings.Contains(pat, "[!") || strings.Contains(pat, "[]") || strings.Contains(pat, "[^]") || strings.Contains(pat, "-]") {
			return
		}
		want, perr := path.Match(pat, s)
		if perr != nil {
			return
		}
		if got != want {
			t.Errorf("%q.Match(%q) = %v, path.Match says %v", pat, s, got, want)
		}
	})
}
