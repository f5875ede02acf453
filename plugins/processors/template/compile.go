package template

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// ph names a placeholder. The set is closed: a template naming anything
// else is refused at load, so a typo never renders as an empty field.
type ph uint8

const (
	phNone ph = iota
	phPrefix
	phDeviceID
	phDevice
	phTS
	phPoints
	phValues
	phName
	phPoint
	phValue
	phQuality
	phUnit
	phRule
	phLevel
	phState
	phMessage
	phCamera
	phFormat
	phSize
	phData
	phID
	phPart
	phParts
	phStatus
	numPH
)

var phNames = [numPH]string{
	phPrefix: "prefix", phDeviceID: "device_id", phDevice: "device", phTS: "ts",
	phPoints: "points", phValues: "values", phName: "name", phPoint: "point",
	phValue: "value", phQuality: "quality", phUnit: "unit", phRule: "rule",
	phLevel: "level", phState: "state", phMessage: "message", phCamera: "camera",
	phFormat: "format", phSize: "size", phData: "data", phID: "id", phPart: "part",
	phParts: "parts", phStatus: "status",
}

var phByName = func() map[string]ph {
	m := map[string]ph{}
	for i, n := range phNames {
		if n != "" {
			m[n] = ph(i)
		}
	}
	return m
}()

// set is a set of placeholders, one bit each.
type set uint32

func setOf(ps ...ph) set {
	var s set
	for _, p := range ps {
		s |= 1 << p
	}
	return s
}

func (s set) has(p ph) bool { return s&(1<<p) != 0 }

func (s set) names() string {
	var out []string
	for p := ph(1); p < numPH; p++ {
		if s.has(p) {
			out = append(out, "${"+phNames[p]+"}")
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// The placeholders each kind of template may use.
var (
	common     = setOf(phPrefix, phDeviceID, phDevice, phTS)
	pointSet   = common | setOf(phName, phPoint, phValue, phQuality, phStatus, phUnit)
	batchSet   = common | setOf(phPoints, phValues)
	pointMode  = batchSet | pointSet
	alarmSet   = common | setOf(phRule, phPoint, phName, phLevel, phState, phValue, phMessage, phCamera, phUnit)
	imageSet   = common | setOf(phCamera, phFormat, phSize, phData, phID, phPart, phParts)
	structured = setOf(phPoints, phValues) // JSON arrays/objects: only as a whole string
	notInTopic = setOf(phPoints, phValues, phData)
)

// op is one step of a compiled template: write lit, then the placeholder
// (if any), either as a typed JSON value or as text inside a string.
type op struct {
	lit  []byte
	ph   ph
	text bool
}

// program is a compiled template. For JSON templates the literal parts are
// the template's own JSON with insignificant whitespace removed.
type program struct {
	ops  []op
	uses set
}

// compileError is placed by byte offset within the template.
type compileError struct {
	off int
	msg string
}

// maxDepth bounds nesting, so that a hostile template cannot exhaust the
// stack of the parser.
const maxDepth = 64

type compiler struct {
	src     string
	pos     int
	allowed set
	what    string // "the data payload", for messages
	prog    program
	lit     []byte
	err     *compileError
}

func (c *compiler) fail(off int, format string, args ...any) {
	if c.err == nil {
		c.err = &compileError{off: off, msg: fmt.Sprintf(format, args...)}
	}
}

func (c *compiler) emit(p ph, text bool) {
	c.prog.ops = append(c.prog.ops, op{lit: c.lit, ph: p, text: text})
	c.prog.uses |= 1 << p
	c.lit = nil
}

func (c *compiler) finish() *program {
	if len(c.lit) > 0 || len(c.prog.ops) == 0 {
		c.prog.ops = append(c.prog.ops, op{lit: c.lit})
	}
	return &c.prog
}

// compileJSON checks that src is one JSON document whose strings may hold
// placeholders, and compiles it. A string that is exactly one placeholder
// becomes that placeholder's typed value; placeholders inside longer
// strings, and in object keys, are written as escaped text.
func compileJSON(src, what string, allowed set) (*program, *compileError) {
	c := &compiler{src: src, allowed: allowed, what: what}
	if !utf8.ValidString(src) {
		i := 0
		for i < len(src) {
			r, n := utf8.DecodeRuneInString(src[i:])
			if r == utf8.RuneError && n == 1 {
				break
			}
			i += n
		}
		return nil, &compileError{off: i, msg: "template is not valid UTF-8"}
	}
	c.value(0)
	c.ws()
	if c.err == nil && c.pos < len(c.src) {
		c.fail(c.pos, "unexpected %s after the end of the JSON document", c.describe())
	}
	if c.err != nil {
		return nil, c.err
	}
	return c.finish(), nil
}

func (c *compiler) ws() {
	for c.pos < len(c.src) {
		switch c.src[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *compiler) describe() string {
	if c.pos >= len(c.src) {
		return "end of template"
	}
	r, _ := utf8.DecodeRuneInString(c.src[c.pos:])
	return fmt.Sprintf("%q", r)
}

func (c *compiler) value(depth int) {
	if c.err != nil {
		return
	}
	if depth > maxDepth {
		c.fail(c.pos, "template nests deeper than %d levels", maxDepth)
		return
	}
	c.ws()
	if c.pos >= len(c.src) {
		c.fail(c.pos, "unexpected end of template: a JSON value is missing")
		return
	}
	switch ch := c.src[c.pos]; {
	case ch == '{':
		c.object(depth)
	case ch == '[':
		c.array(depth)
	case ch == '"':
		c.str(false)
	case ch == 't':
		c.word("true")
	case ch == 'f':
		c.word("false")
	case ch == 'n':
		c.word("null")
	case ch == '-' || ch >= '0' && ch <= '9':
		c.number()
	case ch == '$':
		end := strings.IndexByte(c.src[c.pos:], '}')
		hint := "${...}"
		if end > 0 {
			hint = c.src[c.pos : c.pos+end+1]
		}
		c.fail(c.pos, "placeholders go inside JSON strings: write \"%s\" (a string that is exactly one placeholder gives the typed value)", hint)
	default:
		c.fail(c.pos, "unexpected %s: want a JSON value", c.describe())
	}
}

func (c *compiler) object(depth int) {
	c.lit = append(c.lit, '{')
	c.pos++
	c.ws()
	if c.pos < len(c.src) && c.src[c.pos] == '}' {
		c.lit = append(c.lit, '}')
		c.pos++
		return
	}
	for c.err == nil {
		c.ws()
		if c.pos >= len(c.src) || c.src[c.pos] != '"' {
			c.fail(c.pos, "unexpected %s: want an object key in double quotes", c.describe())
			return
		}
		c.str(true)
		c.ws()
		if c.pos >= len(c.src) || c.src[c.pos] != ':' {
			c.fail(c.pos, "unexpected %s: want ':' after the object key", c.describe())
			return
		}
		c.lit = append(c.lit, ':')
		c.pos++
		c.value(depth + 1)
		c.ws()
		if c.pos >= len(c.src) {
			c.fail(c.pos, "unexpected end of template: an object is not closed")
			return
		}
		switch c.src[c.pos] {
		case ',':
			c.lit = append(c.lit, ',')
			c.pos++
		case '}':
			c.lit = append(c.lit, '}')
			c.pos++
			return
		default:
			c.fail(c.pos, "unexpected %s: want ',' or '}'", c.describe())
		}
	}
}

func (c *compiler) array(depth int) {
	c.lit = append(c.lit, '[')
	c.pos++
	c.ws()
	if c.pos < len(c.src) && c.src[c.pos] == ']' {
		c.lit = append(c.lit, ']')
		c.pos++
		return
	}
	for c.err == nil {
		c.value(depth + 1)
		c.ws()
		if c.err != nil {
			return
		}
		if c.pos >= len(c.src) {
			c.fail(c.pos, "unexpected end of template: an array is not closed")
			return
		}
		switch c.src[c.pos] {
		case ',':
			c.lit = append(c.lit, ',')
			c.pos++
		case ']':
			c.lit = append(c.lit, ']')
			c.pos++
			return
		default:
			c.fail(c.pos, "unexpected %s: want ',' or ']'", c.describe())
		}
	}
}

func (c *compiler) word(w string) {
	if !strings.HasPrefix(c.src[c.pos:], w) {
		c.fail(c.pos, "unexpected %s: want a JSON value", c.describe())
		return
	}
	c.lit = append(c.lit, w...)
	c.pos += len(w)
}

func (c *compiler) number() {
	start := c.pos
	digits := func() int {
		n := 0
		for c.pos < len(c.src) && c.src[c.pos] >= '0' && c.src[c.pos] <= '9' {
			c.pos++
			n++
		}
		return n
	}
	if c.src[c.pos] == '-' {
		c.pos++
	}
	intStart := c.pos
	if n := digits(); n == 0 || n > 1 && c.src[intStart] == '0' {
		c.fail(start, "malformed number")
		return
	}
	if c.pos < len(c.src) && c.src[c.pos] == '.' {
		c.pos++
		if digits() == 0 {
			c.fail(start, "malformed number")
			return
		}
	}
	if c.pos < len(c.src) && (c.src[c.pos] == 'e' || c.src[c.pos] == 'E') {
		c.pos++
		if c.pos < len(c.src) && (c.src[c.pos] == '+' || c.src[c.pos] == '-') {
			c.pos++
		}
		if digits() == 0 {
			c.fail(start, "malformed number")
			return
		}
	}
	c.lit = append(c.lit, c.src[start:c.pos]...)
}

// str compiles a JSON string at c.pos. The raw text between the quotes is
// checked as JSON and kept as written (it is valid JSON already); only the
// placeholders are cut out of it.
func (c *compiler) str(key bool) {
	open := c.pos
	c.pos++
	start := c.pos
	for {
		if c.pos >= len(c.src) {
			c.fail(open, "string is not closed")
			return
		}
		ch := c.src[c.pos]
		switch {
		case ch == '"':
			c.strBody(start, c.pos, key)
			c.pos++
			return
		case ch < 0x20:
			c.fail(c.pos, "control character %q in a string: write it as an escape (\\n, \\t, \\u00XX)", ch)
			return
		case ch == '\\':
			if c.pos+1 >= len(c.src) {
				c.fail(c.pos, "string is not closed")
				return
			}
			switch c.src[c.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				c.pos += 2
			case 'u':
				if c.pos+6 > len(c.src) || !isHex4(c.src[c.pos+2:c.pos+6]) {
					c.fail(c.pos, "malformed \\u escape: want four hex digits")
					return
				}
				c.pos += 6
			default:
				c.fail(c.pos, "unknown escape \\%c in a string", c.src[c.pos+1])
				return
			}
		default:
			c.pos++
		}
	}
}

func isHex4(s string) bool {
	for i := 0; i < 4; i++ {
		ch := s[i]
		if !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f' || ch >= 'A' && ch <= 'F') {
			return false
		}
	}
	return true
}

// placeholder reads "${name}" at off; it returns the placeholder and the
// offset after it, or reports an error.
func (c *compiler) placeholder(off int) (ph, int) {
	rest := c.src[off+2:]
	end := strings.IndexByte(rest, '}')
	if end < 0 || strings.IndexByte(rest[:end], '"') >= 0 {
		c.fail(off, "placeholder is not closed: want ${name}")
		return phNone, 0
	}
	name := rest[:end]
	p, ok := phByName[name]
	if !ok {
		hint := ""
		if strings.ToLower(name) != name {
			hint = " (placeholders are lower case)"
		}
		c.fail(off, "unknown placeholder ${%s}%s; %s may use %s", name, hint, c.what, c.allowed.names())
		return phNone, 0
	}
	if !c.allowed.has(p) {
		c.fail(off, "${%s} is not available in %s, which may use %s", name, c.what, c.allowed.names())
		return phNone, 0
	}
	return p, off + 2 + end + 1
}

func (c *compiler) strBody(start, end int, key bool) {
	body := c.src[start:end]
	if !key && strings.HasPrefix(body, "${") && strings.IndexByte(body, '}') == len(body)-1 {
		if p, _ := c.placeholder(start); p != phNone {
			c.emit(p, false)
		}
		return
	}
	c.lit = append(c.lit, '"')
	i := start
	for i < end {
		j := strings.Index(c.src[i:end], "${")
		if j < 0 {
			break
		}
		j += i
		c.lit = append(c.lit, c.src[i:j]...)
		p, next := c.placeholder(j)
		if p == phNone {
			return
		}
		if next > end {
			c.fail(j, "placeholder is not closed: want ${name}")
			return
		}
		if structured.has(p) {
			c.fail(j, "${%s} is a JSON %s: use it as a whole string (\"${%s}\"), not inside text or as a key", phNames[p], map[bool]string{true: "array", false: "object"}[p == phPoints], phNames[p])
			return
		}
		c.emit(p, true)
		i = next
	}
	c.lit = append(c.lit, c.src[i:end]...)
	c.lit = append(c.lit, '"')
}

// compileText compiles a topic: plain text with placeholders. Literal MQTT
// wildcards are refused; substituted text has them replaced when rendered.
func compileText(src, what string, allowed set) (*program, *compileError) {
	c := &compiler{src: src, allowed: allowed &^ notInTopic, what: what}
	if src == "" {
		return nil, &compileError{msg: "topic is empty"}
	}
	if !utf8.ValidString(src) {
		return nil, &compileError{msg: "topic is not valid UTF-8"}
	}
	i := 0
	for i < len(src) && c.err == nil {
		j := strings.Index(src[i:], "${")
		if j < 0 {
			break
		}
		j += i
		c.lit = append(c.lit, src[i:j]...)
		p, next := c.placeholder(j)
		if p == phNone {
			break
		}
		c.emit(p, true)
		i = next
	}
	if c.err != nil {
		return nil, c.err
	}
	c.lit = append(c.lit, src[i:]...)
	for _, o := range append(c.prog.ops, op{lit: c.lit}) {
		if k := strings.IndexAny(string(o.lit), "+#\x00"); k >= 0 {
			return nil, &compileError{off: strings.Index(src, string(o.lit)) + k, msg: "a published topic may not contain the MQTT wildcards + and # (or NUL)"}
		}
	}
	return c.finish(), nil
}
