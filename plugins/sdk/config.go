package sdk

import (
	"bytes"
	"cmp"
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/edgepipe/edgepipe/plugins/sdk/tomlscan"
)

// ConfigError is one mistake in a configuration file, placed by line.
type ConfigError struct {
	File string
	Line int    // 0 when unknown
	Path string // key path within the plugin's table, e.g. "devices[0].points[2].type"
	Msg  string
	// Warning marks a finding that check prints without failing: the
	// configuration works, but likely not as meant (see Registration.Lint).
	Warning bool
}

func (e ConfigError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteByte(':')
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if e.Warning {
		b.WriteString("warning: ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ConfigErrors is every mistake found in one pass; the core reports them
// all at once rather than one per run.
type ConfigErrors []ConfigError

func (es ConfigErrors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Err returns nil for an empty list, so `return errs.Err()` reads well.
func (es ConfigErrors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// Failures returns the findings of err that are not warnings, nil when
// every finding is a warning: a configuration is refused on Failures, and
// its warnings are shown beside it.
func Failures(err error) error {
	if err == nil {
		return nil
	}
	var fs ConfigErrors
	for _, e := range AsConfigErrors(err) {
		if !e.Warning {
			fs = append(fs, e)
		}
	}
	return fs.Err()
}

// Warnings returns the findings of err marked Warning.
func Warnings(err error) ConfigErrors {
	var ws ConfigErrors
	for _, e := range AsConfigErrors(err) {
		if e.Warning {
			ws = append(ws, e)
		}
	}
	return ws
}

// AsConfigErrors extracts ConfigErrors from err; a plain error becomes one
// ConfigError without a line.
func AsConfigErrors(err error) ConfigErrors {
	if err == nil {
		return nil
	}
	var ces ConfigErrors
	if errors.As(err, &ces) {
		return ces
	}
	var ce ConfigError
	if errors.As(err, &ce) {
		return ConfigErrors{ce}
	}
	return ConfigErrors{{Msg: err.Error()}}
}

// ConfigSource knows where the keys of a plugin's table stand in the file,
// so that Init can report a bad value at its line.
type ConfigSource struct {
	File string
	base int // line of Config's first line in File
	idx  *tomlscan.Index
}

// Line returns the file line of a key path such as "devices[0].unit_id"
// (the nearest known parent when the key itself is absent).
func (c *ConfigSource) Line(path string) int {
	if c == nil || c.idx == nil {
		return 0
	}
	if l := c.idx.Line(path); l > 0 {
		return c.base + l - 1
	}
	return c.base
}

// Warnf makes a warning (a ConfigError with Warning set) placed at path.
func (c *ConfigSource) Warnf(path, format string, args ...any) ConfigError {
	e := c.Errorf(path, format, args...)
	e.Warning = true
	return e
}

// Errorf makes a ConfigError placed at path.
func (c *ConfigSource) Errorf(path, format string, args ...any) ConfigError {
	e := ConfigError{Path: path, Msg: fmt.Sprintf(format, args...)}
	if c != nil {
		e.File, e.Line = c.File, c.Line(path)
	}
	return e
}

var tomlLineRE = regexp.MustCompile(`^toml: line (\d+)(?: \(last key "([^"]*)"\))?: `)

// maxDecodeErrors bounds how many bad values of one table are reported
// (each costs a decode of the table).
const maxDecodeErrors = 100

// DecodeConfig decodes the plugin's table strictly into v: unknown keys,
// wrong types and syntax errors all come back together as ConfigErrors
// with file lines, sorted by line. The returned ConfigSource places later
// validation errors.
//
// The TOML decoder stops at the first value it cannot store. To report
// every wrong-typed key in one run of check, the key's lines are blanked
// and the table decoded again, until it decodes.
func DecodeConfig(req *InitRequest, v any) (*ConfigSource, error) {
	base := req.Line
	if base < 1 {
		base = 1
	}
	src := &ConfigSource{File: req.File, base: base, idx: tomlscan.Scan(req.Config)}
	target := reflect.TypeOf(v)
	md, err := toml.NewDecoder(bytes.NewReader(req.Config)).Decode(v)
	if err == nil {
		return src, src.unknownKeys(req.File, base, md.Undecoded(), target).Err()
	}
	var errs ConfigErrors
	lines := bytes.Split(slices.Clone(req.Config), []byte("\n"))
	for range maxDecodeErrors {
		ce, textLine := src.decodeError(err)
		textLine = src.failingLine(lines, target, ce.Path, textLine)
		if textLine > 0 {
			ce.Line = base + textLine - 1
			if p := src.idx.PathAt(textLine, ce.Path); p != "" {
				ce.Path = p
			}
		}
		errs = append(errs, ce)
		start, end, ok := src.idx.KeySpan(textLine)
		if !ok || len(bytes.TrimSpace(lines[start-1])) == 0 {
			break // nothing left to blank: no way to go further
		}
		for l := start; l <= end && l <= len(lines); l++ {
			lines[l-1] = nil
		}
		// Decoding again into v also stores every good value: the decoder
		// visits keys in map order, so the failed pass may have skipped some
		// (the agent's settings are used by check even when it fails).
		if _, err = toml.NewDecoder(bytes.NewReader(bytes.Join(lines, []byte("\n")))).Decode(v); err == nil {
			break
		}
	}
	// Still report every unknown key of the table.
	var all map[string]any
	if md2, err := toml.Decode(string(req.Config), &all); err == nil {
		errs = append(errs, src.unknownKeys(req.File, base, md2.Keys(), target)...)
	}
	errs.Sort()
	return src, errs
}

// decodeError places one decoder error: its file line (0 if unknown) and
// its line in the table's text.
func (src *ConfigSource) decodeError(err error) (ConfigError, int) {
	ce := ConfigError{File: src.File, Msg: err.Error()}
	textLine := 0
	var pe toml.ParseError
	if errors.As(err, &pe) {
		ce.Msg = pe.Message
		textLine = pe.Position.Line
		if pe.LastKey != "" {
			ce.Path = pe.LastKey
		}
	} else if m := tomlLineRE.FindStringSubmatch(ce.Msg); m != nil {
		textLine, _ = strconv.Atoi(m[1])
		ce.Path = m[2]
		ce.Msg = ce.Msg[len(m[0]):]
	} else {
		ce.Msg = strings.TrimPrefix(ce.Msg, "toml: ")
	}
	return ce, textLine
}

// failingLine finds which definition of the key bare holds the value the
// decoder refused. The decoder names the key without array indices and
// places it at its first definition, so with [[points]] tables the error
// of points[7].address would stand at points[0].address: each definition
// still in lines (not blanked yet) is decoded alone into the field's type,
// and the first that fails is the one. reported is kept when that cannot
// be told (one definition, or a key not found in target).
func (src *ConfigSource) failingLine(lines [][]byte, target reflect.Type, bare string, reported int) int {
	defs := src.idx.BareLines(bare)
	if len(defs) < 2 || bare == "" {
		return reported
	}
	ft, ok := fieldType(target, strings.Split(bare, "."))
	if !ok {
		return reported
	}
	for _, l := range defs {
		start, end, ok := src.idx.KeySpan(l)
		if !ok || start != l || len(bytes.TrimSpace(lines[l-1])) == 0 {
			continue
		}
		key, _, _ := bytes.Cut(lines[l-1], []byte("="))
		if bytes.ContainsAny(bytes.TrimSpace(key), ".\"'") {
			return reported // a dotted or quoted key: not worth decoding alone
		}
		snippet := bytes.Join(lines[start-1:min(end, len(lines))], []byte("\n"))
		var m map[string]toml.Primitive
		md, err := toml.Decode(string(snippet), &m)
		if err != nil || len(m) != 1 {
			continue
		}
		for _, prim := range m {
			if md.PrimitiveDecode(prim, reflect.New(ft).Interface()) != nil {
				return l
			}
		}
	}
	return reported
}

// fieldType follows key through t's fields (by toml tag), through
// pointers, slices and arrays, to the type of the value it names.
func fieldType(t reflect.Type, key []string) (reflect.Type, bool) {
	for _, part := range key {
		t = deref(t)
		if t.Kind() != reflect.Struct {
			return nil, false
		}
		f, ok := fieldFor(t, part)
		if !ok {
			return nil, false
		}
		t = f.Type
	}
	return t, true
}

// unknownKeys reports keys as unknown, each at its line, with the nearest
// known key as a suggestion. With a target type, only the keys that type
// has no field for are reported.
func (src *ConfigSource) unknownKeys(file string, base int, keys []toml.Key, target reflect.Type) ConfigErrors {
	var errs ConfigErrors
	used := map[string]int{}
	lastBare := ""
	for _, k := range keys {
		if target != nil && knownKey(target, k) {
			continue
		}
		bare := k.String()
		lines := src.idx.BareLines(bare)
		e := ConfigError{File: file, Path: bare, Msg: "unknown key"}
		if n := used[bare]; n < len(lines) {
			e.Line = base + lines[n] - 1
			if p := src.idx.PathAt(lines[n], bare); p != "" {
				e.Path = p
			}
		}
		used[bare]++
		// A table that is unknown reports once, not once per key inside.
		if lastBare != "" && strings.HasPrefix(bare, lastBare+".") {
			continue
		}
		lastBare = bare
		if target != nil {
			if s := Suggest(k[len(k)-1], keysOf(target, k[:len(k)-1])); s != "" {
				e.Msg += fmt.Sprintf("; did you mean %q?", s)
			}
		}
		errs = append(errs, e)
	}
	return errs
}

// CommonKeys are the keys every plugin table accepts besides its own; the
// core reads and blanks them, so a plugin's struct does not have them, but
// a misspelt one is still worth a suggestion.
var CommonKeys = []string{"alias", "isolated"}

// keysOf lists the keys the table at path (a key without its last part)
// of type t accepts, or nil when it is not a struct.
func keysOf(t reflect.Type, path toml.Key) []string {
	for _, part := range path {
		t = deref(t)
		if t.Kind() != reflect.Struct {
			return nil
		}
		f, ok := fieldFor(t, part)
		if !ok {
			return nil
		}
		t = f.Type
	}
	t = deref(t)
	if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return nil
	}
	var out []string
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			switch {
			case !f.IsExported() || name == "-":
			case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
				walk(f.Type)
			case name == "":
				out = append(out, strings.ToLower(f.Name))
			default:
				out = append(out, name)
			}
		}
	}
	walk(t)
	if len(path) == 0 {
		out = append(out, CommonKeys...)
	}
	return out
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
		t = t.Elem()
	}
	return t
}

// Suggest returns the candidate nearest to word by edit distance (a
// transposition counts as one edit: "tpye" is one from "type"), or "" when
// none is near enough to be a likely misspelling: at most 2 edits, and
// fewer than half the word's letters.
func Suggest(word string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		d := editDistance(strings.ToLower(word), strings.ToLower(c))
		if d < bestD && d*2 < max(len(word), len(c))+1 && d > 0 {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b
// (insertions, deletions, substitutions and transpositions of neighbours,
// each one edit), over bytes: keys are ASCII. It is written here rather
// than taken from a library because every third-party plugin links the
// SDK, and a dependency for a spelling hint is not worth imposing on them.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// Sort orders the errors by file and line, errors without a line last,
// keeping the order of errors on the same line.
func (es ConfigErrors) Sort() {
	slices.SortStableFunc(es, func(a, b ConfigError) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		la, lb := a.Line, b.Line
		if la == 0 {
			la = math.MaxInt
		}
		if lb == 0 {
			lb = math.MaxInt
		}
		return cmp.Compare(la, lb)
	})
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// knownKey reports whether the decoder would put key somewhere in t,
// following struct fields (by toml tag, else case-insensitive name),
// slices, arrays and pointers; maps and interfaces take any key.
func knownKey(t reflect.Type, key toml.Key) bool {
	for _, part := range key {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			t = t.Elem()
		}
		if reflect.PointerTo(t).Implements(textUnmarshaler) {
			return false // a leaf value has no keys inside
		}
		switch t.Kind() {
		case reflect.Map, reflect.Interface:
			return true
		case reflect.Struct:
			f, ok := fieldFor(t, part)
			if !ok {
				return false
			}
			t = f.Type
		default:
			return false
		}
	}
	return true
}

func fieldFor(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			if g, ok := fieldFor(f.Type, key); ok {
				return g, true
			}
			continue
		}
		if name == key || name == "" && strings.EqualFold(f.Name, key) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// Duration is a configuration duration written as a string ("500ms").
type Duration time.Duration

func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "0" || s == "" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: want a number with a unit, e.g. \"500ms\", \"60s\", \"10m\"", s)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", s)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Size is a byte count written as a string ("64MB", "4KiB", "0").
type Size int64

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	// Binary, as SPEC 5 says: 64 KB is 65,536 bytes.
	"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
	"k": 1 << 10, "m": 1 << 20, "g": 1 << 30,
}

func (s *Size) UnmarshalText(b []byte) error {
	str := strings.TrimSpace(string(b))
	i := 0
	for i < len(str) && (str[i] >= '0' && str[i] <= '9' || str[i] == '.') {
		i++
	}
	num, err := strconv.ParseFloat(str[:i], 64)
	mult, ok := sizeUnits[strings.ToLower(strings.TrimSpace(str[i:]))]
	if err != nil || !ok || num < 0 || num*float64(mult) > 1<<62 {
		return fmt.Errorf("size %q: want a number with an optional unit, e.g. \"64MB\", \"512KiB\"", str)
	}
	*s = Size(num * float64(mult))
	return nil
}

func (s Size) MarshalText() ([]byte, error) { return []byte(strconv.FormatInt(int64(s), 10)), nil }
