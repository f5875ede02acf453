package alarm

import (
	"fmt"
	"strings"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// DefaultMessage is the message of a rule without `message`.
const DefaultMessage = "${rule} ${state}: ${point} = ${value}"

// A message is parsed once at load into literal text and placeholders, so
// that a misspelt placeholder is an error at its line instead of text the
// operator discovers in a report.
type segment struct {
	text string // literal text, when ph is phText
	ph   placeholder
}

type placeholder uint8

const (
	phText placeholder = iota
	phValue
	phRule
	phPoint
	phLevel
	phState
)

var placeholders = map[string]placeholder{
	"value": phValue, "rule": phRule, "point": phPoint, "level": phLevel, "state": phState,
}

// parseMessage splits a message template. "${" without a closing "}" and a
// "$" not followed by "{" are literal text.
func parseMessage(msg string) ([]segment, error) {
	if msg == "" {
		msg = DefaultMessage
	}
	var segs []segment
	for {
		i := strings.Index(msg, "${")
		if i < 0 {
			break
		}
		j := strings.IndexByte(msg[i+2:], '}')
		if j < 0 {
			break
		}
		name := msg[i+2 : i+2+j]
		ph, ok := placeholders[name]
		if !ok {
			return nil, fmt.Errorf("unknown placeholder ${%s}: want ${value}, ${rule}, ${point}, ${level} or ${state}", name)
		}
		if i > 0 {
			segs = append(segs, segment{text: msg[:i]})
		}
		segs = append(segs, segment{ph: ph})
		msg = msg[i+2+j+1:]
	}
	if msg != "" {
		segs = append(segs, segment{text: msg})
	}
	return segs, nil
}

// render interpolates rule r's message for one event.
func render(r *rule, state string, v sdk.Value) string {
	var b []byte
	for _, s := range r.msg {
		switch s.ph {
		case phText:
			b = append(b, s.text...)
		case phValue:
			b = v.AppendText(b)
		case phRule:
			b = append(b, r.name...)
		case phPoint:
			b = append(b, r.point...)
		case phLevel:
			b = append(b, r.level...)
		case phState:
			b = append(b, state...)
		}
	}
	return string(b)
}
