package template

import (
	"encoding/base64"
	"strconv"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// item is what a template is rendered for: a batch (and, in a point
// template, one of its points), an alarm, or one part of a picture. Only
// the fields of the current kind are set.
type item struct {
	batch *sdk.Batch
	point *sdk.Point // nil at batch level
	alarm *sdk.Alarm
	pic   *sdk.Picture
	chunk []byte
	id    string
	part  int
	parts int
}

var qualityNames = [...]string{sdk.QualityGood: "good", sdk.QualityBad: "bad", sdk.QualityUncertain: "uncertain"}

// qualityJSON is qualityNames as JSON strings, written as they are.
var qualityJSON = func() (q [len(qualityNames)][]byte) {
	for i, n := range qualityNames {
		q[i] = sdk.AppendJSONString(nil, n)
	}
	return q
}()

func qualityName(q sdk.Quality) string {
	if int(q) < len(qualityNames) {
		return qualityNames[q]
	}
	return q.String()
}

// appendText appends s JSON-escaped without the quotes, for placeholders
// inside a longer string. It uses the SDK's escaping so both forms agree.
func appendText(dst []byte, s string) []byte {
	n := len(dst)
	dst = sdk.AppendJSONString(dst, s)
	copy(dst[n:], dst[n+1:len(dst)-1])
	return dst[:len(dst)-2]
}

// appendStr writes s as a typed JSON string or as escaped text.
func appendStr(dst []byte, s string, text bool) []byte {
	if text {
		return appendText(dst, s)
	}
	return sdk.AppendJSONString(dst, s)
}

// appendFull writes "device.name" without building the string.
func appendFull(dst []byte, device, name string, text bool) []byte {
	if !text {
		dst = append(dst, '"')
	}
	dst = appendText(dst, device)
	dst = append(dst, '.')
	dst = appendText(dst, name)
	if !text {
		dst = append(dst, '"')
	}
	return dst
}

func appendValue(dst []byte, v sdk.Value, text bool) []byte {
	if !text {
		return v.AppendJSON(dst)
	}
	if v.Kind() == sdk.KindString {
		return appendText(dst, v.StringValue())
	}
	return v.AppendText(dst) // digits, true/false, NaN: nothing to escape
}

// render appends the program's output for it.
func (t *Template) render(dst []byte, p *program, it *item) []byte {
	for i := range p.ops {
		o := &p.ops[i]
		dst = append(dst, o.lit...)
		if o.ph != phNone {
			dst = t.placeholder(dst, o.ph, o.text, it)
		}
	}
	return dst
}

func (t *Template) placeholder(dst []byte, p ph, text bool, it *item) []byte {
	switch p {
	case phPrefix:
		return appendStr(dst, t.prefix, text)
	case phDeviceID:
		return appendStr(dst, t.deviceID, text)
	case phDevice:
		if it.alarm != nil {
			d, _ := t.split(it.alarm.Point)
			return appendStr(dst, d, text)
		}
		return appendStr(dst, it.device(), text)
	case phTS:
		return t.appendTS(dst, it.ts())
	case phPoints:
		if it.batch != nil {
			return t.points(dst, it)
		}
	case phValues:
		if it.batch != nil {
			return t.values(dst, it)
		}
	case phName:
		switch {
		case it.point != nil:
			if a, ok := t.alias(it.batch.Device, it.point.Name); ok {
				return appendStr(dst, a, text)
			}
			return appendStr(dst, it.point.Name, text)
		case it.alarm != nil:
			if a, ok := t.aliasFull[it.alarm.Point]; ok {
				return appendStr(dst, a, text)
			}
			_, name := t.split(it.alarm.Point)
			return appendStr(dst, name, text)
		}
	case phPoint:
		switch {
		case it.point != nil:
			if a, ok := t.alias(it.batch.Device, it.point.Name); ok {
				return appendStr(dst, a, text)
			}
			return appendFull(dst, it.batch.Device, it.point.Name, text)
		case it.alarm != nil:
			if a, ok := t.aliasFull[it.alarm.Point]; ok {
				return appendStr(dst, a, text)
			}
			return appendStr(dst, it.alarm.Point, text)
		}
	case phValue:
		switch {
		case it.point != nil:
			return appendValue(dst, it.point.Value, text)
		case it.alarm != nil:
			return appendValue(dst, it.alarm.Value, text)
		}
	case phQuality:
		if it.point != nil {
			if q := it.point.Quality; !text && int(q) < len(qualityJSON) {
				return append(dst, qualityJSON[q]...)
			}
			return appendStr(dst, qualityName(it.point.Quality), text)
		}
	case phStatus:
		if it.point != nil {
			return appendStr(dst, it.point.Status, text)
		}
	case phUnit:
		switch {
		case it.point != nil:
			return appendStr(dst, t.units[it.batch.Device][it.point.Name], text)
		case it.alarm != nil:
			return appendStr(dst, t.unitsFull[it.alarm.Point], text)
		}
	case phRule, phLevel, phState, phMessage:
		if a := it.alarm; a != nil {
			return appendStr(dst, [...]string{phRule: a.Rule, phLevel: a.Level, phState: a.State, phMessage: a.Message}[p], text)
		}
	case phCamera:
		if it.pic != nil {
			return appendStr(dst, it.pic.Device, text)
		}
	case phFormat:
		if it.pic != nil {
			f := it.pic.Format
			if f == "" {
				f = "jpeg"
			}
			return appendStr(dst, f, text)
		}
	case phSize:
		if it.pic != nil {
			return strconv.AppendInt(dst, int64(len(it.pic.Data)), 10)
		}
	case phData:
		if !text {
			dst = append(dst, '"')
		}
		dst = base64.StdEncoding.AppendEncode(dst, it.chunk) // no character needs escaping
		if !text {
			dst = append(dst, '"')
		}
		return dst
	case phID:
		return appendStr(dst, it.id, text)
	case phPart:
		return strconv.AppendInt(dst, int64(it.part), 10)
	case phParts:
		return strconv.AppendInt(dst, int64(it.parts), 10)
	}
	// A placeholder outside its kind of item cannot pass compilation; keep
	// the output valid anyway: nothing as text, null as a value.
	if text {
		return dst
	}
	return append(dst, "null"...)
}

// appendTS writes a time in ms, from the cache when it is the last one.
func (t *Template) appendTS(dst []byte, ts int64) []byte {
	if ts != t.lastTS || t.lastTSText == nil {
		t.lastTS, t.lastTSText = ts, strconv.AppendInt(t.lastTSText[:0], ts, 10)
	}
	return append(dst, t.lastTSText...)
}

func (it *item) device() string {
	switch {
	case it.batch != nil:
		return it.batch.Device
	case it.pic != nil:
		return it.pic.Device
	}
	return ""
}

func (it *item) ts() int64 {
	switch {
	case it.point != nil:
		if it.point.TS != 0 {
			return it.point.TS
		}
		return it.batch.TS
	case it.batch != nil:
		return it.batch.TS
	case it.alarm != nil:
		return it.alarm.TS
	case it.pic != nil:
		return it.pic.TS
	}
	return 0
}

// points writes the array of point elements: the whole batch, or in point
// mode only the current point.
func (t *Template) points(dst []byte, it *item) []byte {
	dst = append(dst, '[')
	if it.point != nil {
		dst = t.render(dst, t.pointProg, it)
		if it.point.Status != "" && t.statusMember {
			dst = appendStatus(dst, it.point.Status)
		}
	} else {
		el := item{batch: it.batch}
		for i := range it.batch.Points {
			if i > 0 {
				dst = append(dst, ',')
			}
			el.point = &it.batch.Points[i]
			dst = t.render(dst, t.pointProg, &el)
			if el.point.Status != "" && t.statusMember {
				dst = appendStatus(dst, el.point.Status)
			}
		}
	}
	return append(dst, ']')
}

// appendStatus adds "status":"..." as the last member of the JSON object
// that dst ends with (a point element whose template does not place
// ${status} itself): a reading that is not good says why, and a good one
// renders exactly as before.
func appendStatus(dst []byte, status string) []byte {
	n := len(dst)
	if n < 2 || dst[n-1] != '}' {
		return dst
	}
	dst = dst[:n-1]
	if dst[n-2] != '{' {
		dst = append(dst, ',')
	}
	dst = append(dst, `"status":`...)
	dst = sdk.AppendJSONString(dst, status)
	return append(dst, '}')
}

// values writes the object name -> value.
func (t *Template) values(dst []byte, it *item) []byte {
	dst = append(dst, '{')
	one := func(dst []byte, p *sdk.Point) []byte {
		if a, ok := t.alias(it.batch.Device, p.Name); ok {
			dst = sdk.AppendJSONString(dst, a)
		} else {
			dst = sdk.AppendJSONString(dst, p.Name)
		}
		dst = append(dst, ':')
		return p.Value.AppendJSON(dst)
	}
	if it.point != nil {
		dst = one(dst, it.point)
	} else {
		for i := range it.batch.Points {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = one(dst, &it.batch.Points[i])
		}
	}
	return append(dst, '}')
}

func (t *Template) alias(device, name string) (string, bool) {
	if t.aliases == nil {
		return "", false
	}
	a, ok := t.aliases[device][name]
	return a, ok
}

// split cuts a full point name into device and point, using the registry
// when it knows the point (device names may hold dots).
func (t *Template) split(full string) (string, string) {
	if n, ok := t.devLen[full]; ok {
		return full[:n], full[n+1:]
	}
	return splitFirst(full)
}

func splitFirst(full string) (string, string) {
	for i := 0; i < len(full); i++ {
		if full[i] == '.' {
			return full[:i], full[i+1:]
		}
	}
	return "", full
}

// topicText renders a topic program: substituted text has the MQTT
// wildcards and NUL replaced by '_', so a point or device name can never
// turn a publish into an invalid topic.
func (t *Template) topicText(dst []byte, p *program, it *item) []byte {
	for i := range p.ops {
		o := &p.ops[i]
		dst = append(dst, o.lit...)
		if o.ph == phNone {
			continue
		}
		n := len(dst)
		dst = t.rawText(dst, o.ph, it)
		for j := n; j < len(dst); j++ {
			switch dst[j] {
			case '+', '#', 0:
				dst[j] = '_'
			}
		}
	}
	return dst
}

// rawText is a placeholder's value as plain (unescaped) text, for topics.
func (t *Template) rawText(dst []byte, p ph, it *item) []byte {
	s := ""
	switch p {
	case phPrefix:
		s = t.prefix
	case phDeviceID:
		s = t.deviceID
	case phDevice:
		if it.alarm != nil {
			s, _ = t.split(it.alarm.Point)
		} else {
			s = it.device()
		}
	case phName, phPoint:
		switch {
		case it.point != nil:
			if a, ok := t.alias(it.batch.Device, it.point.Name); ok {
				s = a
			} else if p == phName {
				s = it.point.Name
			} else {
				return append(append(append(dst, it.batch.Device...), '.'), it.point.Name...)
			}
		case it.alarm != nil:
			if a, ok := t.aliasFull[it.alarm.Point]; ok {
				s = a
			} else if p == phName {
				_, s = t.split(it.alarm.Point)
			} else {
				s = it.alarm.Point
			}
		}
	case phValue:
		if it.point != nil {
			return it.point.Value.AppendText(dst)
		}
		if it.alarm != nil {
			return it.alarm.Value.AppendText(dst)
		}
	case phQuality:
		if it.point != nil {
			s = qualityName(it.point.Quality)
		}
	case phStatus:
		if it.point != nil {
			s = it.point.Status
		}
	case phUnit:
		if it.point != nil {
			s = t.units[it.batch.Device][it.point.Name]
		} else if it.alarm != nil {
			s = t.unitsFull[it.alarm.Point]
		}
	case phID:
		s = it.id
	case phFormat:
		if it.pic != nil {
			s = it.pic.Format
			if s == "" {
				s = "jpeg"
			}
		}
	case phRule, phLevel, phState, phMessage, phCamera:
		if it.alarm != nil {
			switch p {
			case phRule:
				s = it.alarm.Rule
			case phLevel:
				s = it.alarm.Level
			case phState:
				s = it.alarm.State
			case phMessage:
				s = it.alarm.Message
			}
		} else if it.pic != nil && p == phCamera {
			s = it.pic.Device
		}
	default:
		// ts, size, part, parts: numbers, whose JSON is their text.
		return t.placeholder(dst, p, true, it)
	}
	return append(dst, s...)
}
