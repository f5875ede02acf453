// Package glob matches point names ("device.point") against shell-style
// patterns. It exists because path.Match stops `*` at '/', and device or
// point names may hold any character: here `*` crosses everything,
// including dots, so "plc1.*" and "*.temperature" both mean what a user
// reads in them.
//
// Syntax: `*` any run of characters (also none), `?` exactly one
// character, `[abc]`, `[a-z]`, `[!a-z]` (or `[^a-z]`) one character of (not
// of) a set, and `\x` the character x literally.
package glob

import (
	"fmt"
	"unicode/utf8"
)

// Pattern is a compiled glob.
type Pattern struct {
	src   string
	items []item
}

type itemKind uint8

const (
	lit  itemKind = iota // a literal rune
	any1                 // ?
	star                 // *
	set                  // [...]
)

type item struct {
	kind   itemKind
	r      rune
	neg    bool
	ranges []rune // pairs lo, hi
}

// Compile parses a pattern; a malformed one (an unclosed `[`, a trailing
// `\`) is an error so that a typo is caught at load, not silently never
// matching.
func Compile(s string) (*Pattern, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("pattern %q is not valid UTF-8", s)
	}
	p := &Pattern{src: s}
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch r {
		case '*':
			// Consecutive stars are one star.
			if len(p.items) == 0 || p.items[len(p.items)-1].kind != star {
				p.items = append(p.items, item{kind: star})
			}
			i += n
		case '?':
			p.items = append(p.items, item{kind: any1})
			i += n
		case '\\':
			if i+n >= len(s) {
				return nil, fmt.Errorf("pattern %q ends with an escape character", s)
			}
			r2, n2 := utf8.DecodeRuneInString(s[i+n:])
			p.items = append(p.items, item{kind: lit, r: r2})
			i += n + n2
		case '[':
			it, used, err := parseSet(s[i+n:])
			if err != nil {
				return nil, fmt.Errorf("pattern %q: %v", s, err)
			}
			p.items = append(p.items, it)
			i += n + used
		default:
			p.items = append(p.items, item{kind: lit, r: r})
			i += n
		}
	}
	return p, nil
}

// parseSet reads a set after its '['; used counts the bytes through ']'.
func parseSet(s string) (it item, used int, err error) {
	it.kind = set
	i := 0
	if i < len(s) && (s[i] == '!' || s[i] == '^') {
		it.neg = true
		i++
	}
	first := true
	for {
		if i >= len(s) {
			return it, 0, fmt.Errorf("unclosed [")
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == ']' && !first {
			return it, i + n, nil
		}
		first = false
		if r == '\\' {
			i += n
			if i >= len(s) {
				return it, 0, fmt.Errorf("unclosed [")
			}
			r, n = utf8.DecodeRuneInString(s[i:])
		}
		i += n
		lo, hi := r, r
		if i+1 < len(s) && s[i] == '-' && s[i+1] != ']' {
			i++
			h, hn := utf8.DecodeRuneInString(s[i:])
			if h == '\\' {
				i += hn
				if i >= len(s) {
					return it, 0, fmt.Errorf("unclosed [")
				}
				h, hn = utf8.DecodeRuneInString(s[i:])
			}
			i += hn
			hi = h
			if hi < lo {
				return it, 0, fmt.Errorf("range %c-%c is reversed", lo, hi)
			}
		}
		it.ranges = append(it.ranges, lo, hi)
	}
}

// String returns the pattern as written.
func (p *Pattern) String() string { return p.src }

// Match reports whether s matches the whole pattern.
func (p *Pattern) Match(s string) bool {
	// Greedy matching with one backtrack point: the last star seen. A later
	// star supersedes earlier ones, which keeps the cost at
	// O(len(pattern) * len(s)) in the worst case instead of exponential.
	pi, si := 0, 0
	starPi, starSi := -1, 0
	for si < len(s) || pi < len(p.items) {
		if pi < len(p.items) {
			it := &p.items[pi]
			if it.kind == star {
				starPi, starSi = pi, si
				pi++
				continue
			}
			if si < len(s) {
				r, n := utf8.DecodeRuneInString(s[si:])
				if it.matches(r) {
					pi++
					si += n
					continue
				}
			}
		}
		if starPi < 0 || starSi >= len(s) {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starSi:])
		starSi += n
		pi, si = starPi+1, starSi
	}
	return true
}

func (it *item) matches(r rune) bool {
	switch it.kind {
	case lit:
		return r == it.r
	case any1:
		return true
	case set:
		in := false
		for i := 0; i+1 < len(it.ranges); i += 2 {
			if r >= it.ranges[i] && r <= it.ranges[i+1] {
				in = true
				break
			}
		}
		return in != it.neg
	}
	return false
}

// List is a set of patterns; a name matches the list when it matches any.
type List []*Pattern

// CompileList compiles every pattern, returning the index of the first bad
// one with its error so the caller can point at "points[2]".
func CompileList(src []string) (List, int, error) {
	l := make(List, 0, len(src))
	for i, s := range src {
		p, err := Compile(s)
		if err != nil {
			return nil, i, err
		}
		l = append(l, p)
	}
	return l, -1, nil
}

// Match reports whether s matches any pattern of the list.
func (l List) Match(s string) bool {
	for _, p := range l {
		if p.Match(s) {
			return true
		}
	}
	return false
}
