package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/edgepipe/edgepipe/plugins/sdk/internal/wire"
)

// lineLimitWriter passes the JSON log lines of newPluginLogHandler to the
// plugin's stderr, each cut down to at most max bytes, newline included
// (see cutLogLine).
//
// Why: go-plugin's host reads a plugin's stderr a line at a time through a
// buffer of fixed size, and logs a longer line in pieces at debug level,
// where a gateway logging at info never shows them: a warning with a long
// error (a device's garbled answer, a template's whole input) would
// vanish. The gateway reads the SDK's built-in plugins with a small
// buffer (wire.LogLineBytes) to keep its memory down, so the SDK keeps its
// promise that no line is longer.
//
// It relies on what log/slog's JSON handler does: one Write per record,
// the whole line with its newline, under the handler's own lock.
type lineLimitWriter struct{ w io.Writer }

func (l lineLimitWriter) Write(p []byte) (int, error) {
	if len(p) <= wire.LogLineBytes {
		return l.w.Write(p)
	}
	if _, err := l.w.Write(cutLogLine(p, wire.LogLineBytes)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Bounds of what cutLogLine keeps of a long record.
const (
	logMessageKeep = 1024 // bytes of the message
	logValueKeep   = 256  // bytes of each attribute's value
)

// cutLogLine returns line (a JSON object and a newline) in at most max
// bytes (max at least 512): the level and time as they are, the message
// and then each attribute, in their order, shortened to logMessageKeep
// and logValueKeep bytes (a value that is not a string becomes the start
// of its JSON text, as a string), as many attributes as fit, and a
// "log_truncated" attribute that says how long the record was and how
// many attributes were left out. A line that is not a JSON object (no
// record of the SDK's handler) becomes one: its start as the message of
// an error record.
func cutLogLine(line []byte, max int) []byte {
	type field struct {
		key string
		val json.RawMessage
	}
	var fields []field
	dec := json.NewDecoder(bytes.NewReader(line))
	ok := false
	if t, err := dec.Token(); err == nil && t == json.Delim('{') {
		ok = true
		for dec.More() {
			t, err := dec.Token()
			k, isKey := t.(string)
			var v json.RawMessage
			if err != nil || !isKey || dec.Decode(&v) != nil {
				ok = false
				break
			}
			// One line: a value's own whitespace may hold newlines.
			var c bytes.Buffer
			if json.Compact(&c, v) == nil {
				v = c.Bytes()
			}
			fields = append(fields, field{k, v})
		}
	}
	if !ok {
		fields = []field{{"@level", json.RawMessage(`"error"`)},
			{"@message", quoteCut("unreadable log line: "+string(line), logMessageKeep)}}
	}
	const noteRoom = 96 // the note, the braces and the newline
	out := make([]byte, 0, max)
	out = append(out, '{')
	dropped := 0
	for _, f := range fields {
		v := f.val
		switch f.key {
		case "@level", "@timestamp":
			if len(v) > 64 {
				v = quoteCut(string(v), 64)
			}
		case "@message":
			v = cutValue(v, logMessageKeep)
		default:
			v = cutValue(v, logValueKeep)
		}
		k, _ := json.Marshal(f.key)
		if len(k) > logValueKeep {
			k = quoteCut(f.key, logValueKeep)
		}
		if len(out)+len(k)+len(v)+2+noteRoom > max {
			dropped++
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, k...)
		out = append(out, ':')
		out = append(out, v...)
	}
	if len(out) > 1 {
		out = append(out, ',')
	}
	note := fmt.Sprintf("record of %d bytes cut to %d", len(line), max)
	if dropped > 0 {
		note += fmt.Sprintf(", %d attributes left out", dropped)
	}
	out = append(out, `"log_truncated":`...)
	out = append(out, quoteCut(note, noteRoom-24)...)
	return append(out, '}', '\n')
}

// cutValue shortens a JSON value to about keep bytes: a string keeps its
// start, anything else becomes a string of the start of its JSON text.
func cutValue(v json.RawMessage, keep int) json.RawMessage {
	if len(v) <= keep {
		return v
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		s = string(v)
	}
	return quoteCut(s, keep)
}

// quoteCut is s as a JSON string of at most about keep bytes (the quotes
// and an ellipsis beyond), cut at a character boundary.
func quoteCut(s string, keep int) json.RawMessage {
	b, _ := json.Marshal(s)
	if len(b) <= keep {
		return b
	}
	// Cut the decoded text, then re-encode: escapes grow it, so shrink
	// until the encoding fits.
	n := min(len(s), keep)
	for {
		for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
			n--
		}
		b, _ = json.Marshal(s[:n] + "…")
		if len(b) <= keep+len("…") || n == 0 {
			return b
		}
		n -= (len(b) - keep) / 2
		if n < 0 {
			n = 0
		}
	}
}
