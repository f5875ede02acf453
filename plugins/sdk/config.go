package sdk

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"regexp"
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

// Errorf makes a ConfigError placed at path.
func (c *ConfigSource) Errorf(path, format string, args ...any) ConfigError {
	e := ConfigError{Path: path, Msg: fmt.Sprintf(format, args...)}
	if c != nil {
		e.File, e.Line = c.File, c.Line(path)
	}
	return e
}

var tomlLineRE = regexp.MustCompile(`^toml: line (\d+)(?: \(last key "([^"]*)"\))?: `)

// DecodeConfig decodes the plugin's table strictly into v: unknown keys,
// wrong types and syntax errors all come back together as ConfigErrors
// with file lines. The returned ConfigSource places later validation
// errors.
func DecodeConfig(req *InitRequest, v any) (*ConfigSource, error) {
	base := req.Line
	if base < 1 {
		base = 1
	}
	src := &ConfigSource{File: req.File, base: base, idx: tomlscan.Scan(req.Config)}
	md, err := toml.NewDecoder(strings.NewReader(string(req.Config))).Decode(v)
	var errs ConfigErrors
	if err != nil {
		ce := ConfigError{File: req.File, Msg: err.Error()}
		var pe toml.ParseError
		if errors.As(err, &pe) {
			ce.Msg = pe.Message
			if pe.Position.Line > 0 {
				ce.Line = base + pe.Position.Line - 1
			}
			if pe.LastKey != "" {
				ce.Path = pe.LastKey
			}
		} else if m := tomlLineRE.FindStringSubmatch(ce.Msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			ce.Line = base + n - 1
			ce.Path = m[2]
			ce.Msg = ce.Msg[len(m[0]):]
		} else {
			ce.Msg = strings.TrimPrefix(ce.Msg, "toml: ")
		}
		errs = append(errs, ce)
		// The decoder stops at the first bad value; still report every
		// unknown key of the table, so one run of check shows them all.
		var all map[string]any
		if md2, err := toml.Decode(string(req.Config), &all); err == nil {
			errs = append(errs, src.unknownKeys(req.File, base, md2.Keys(), reflect.TypeOf(v))...)
		}
		return src, errs
	}
	return src, src.unknownKeys(req.File, base, md.Undecoded(), nil).Err()
}

// unknownKeys reports keys as unknown, each at its line. With a target
// type, only the keys that type has no field for are reported.
func (src *ConfigSource) unknownKeys(file string, base int, keys []toml.Key, target reflect.Type) ConfigErrors {
	var errs ConfigErrors
	used := map[string]int{}
	for _, k := range keys {
		if target != nil && knownKey(target, k) {
			continue
		}
		bare := k.String()
		lines := src.idx.BareLines(bare)
		e := ConfigError{File: file, Path: bare, Msg: "unknown key"}
		if n := used[bare]; n < len(lines) {
			e.Line = base + lines[n] - 1
		}
		used[bare]++
		// A table that is unknown reports once, not once per key inside.
		if len(errs) > 0 && strings.HasPrefix(bare, errs[len(errs)-1].Path+".") {
			continue
		}
		errs = append(errs, e)
	}
	return errs
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
