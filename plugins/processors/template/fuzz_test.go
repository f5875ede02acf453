package template

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// sanitized is what a JSON decoder reads back from a string the SDK
// escaped: each byte of invalid UTF-8 became U+FFFD.
func sanitized(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// FuzzRender: whatever the point names, device names, string values,
// aliases and alarm texts hold, every payload is valid JSON and reads back
// to what went in.
func FuzzRender(f *testing.F) {
	f.Add("plc1", "temperature", "text", "T1", 21.5, "boiler \"hot\"")
	f.Add("d\x00", "\xff\xfe", "\u2028\\", "${value}", math.NaN(), "${")
	f.Add("", "", "", "", math.Inf(-1), "")
	f.Fuzz(func(t *testing.T, device, name, str, alias string, num float64, message string) {
		conf := "[data]\npoint = '{\"name\":\"${name}\",\"p\":\"${point}\",\"value\":\"${value}\",\"text\":\"<${name}|${value}|${device}>\"}'\n" +
			"payload = '{\"device\":\"${device}\",\"points\":\"${points}\",\"values\":\"${values}\"}'\n" +
			"[alarm]\npayload = '{\"m\":\"${message}\",\"t\":\"${message}/${point}\",\"p\":\"${point}\",\"v\":\"${value}\"}'"
		req := sdktest.Request(conf)
		full := device + "." + name
		withAlias := alias != "" && utf8.ValidString(full) // TOML keys and values are UTF-8
		if withAlias {
			req.Config = append(req.Config, []byte("\n")...)
			// Aliases go in through the decoded map to avoid quoting
			// arbitrary bytes in TOML; Init sees the same map either way.
		}
		p := New()
		if _, err := p.Init(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		if withAlias {
			p.aliasesFrom(map[string]string{full: alias}, nil, func(string, string, ...any) { t.Fatal("alias refused") })
		}
		fr := &sdk.Frame{
			Batches: []sdk.Batch{{Device: device, TS: 1, Points: []sdk.Point{
				{Name: name, Value: sdk.String(str)}, {Name: name + "2", Value: sdk.Float(num)},
			}}},
			Alarms: []sdk.Alarm{{Point: full, Message: message, Value: sdk.String(str)}},
		}
		out, err := p.Process(context.Background(), fr)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) != 2 {
			t.Fatalf("want data and alarm, got %d", len(out.Messages))
		}
		for _, m := range out.Messages {
			if !json.Valid(m.Payload) {
				t.Fatalf("invalid JSON: %q", m.Payload)
			}
			if strings.ContainsAny(m.Topic, "+#\x00") {
				t.Fatalf("topic %q", m.Topic)
			}
		}
		shown, shownFull := sanitized(name), sanitized(full)
		if withAlias {
			shown, shownFull = sanitized(alias), sanitized(alias)
		}
		var data struct {
			Device string
			Points []struct {
				Name, P, Text string
				Value         any
			}
			Values map[string]any
		}
		if err := json.Unmarshal(out.Messages[0].Payload, &data); err != nil {
			t.Fatal(err)
		}
		pt := data.Points[0]
		if data.Device != sanitized(device) || pt.Name != shown || pt.P != shownFull || pt.Value != sanitized(str) ||
			pt.Text != "<"+shown+"|"+sanitized(str)+"|"+sanitized(device)+">" {
			t.Fatalf("round trip: %+v from %q", data, out.Messages[0].Payload)
		}
		want2 := any(num)
		if math.IsNaN(num) || math.IsInf(num, 0) {
			want2 = nil
		}
		if data.Points[1].Value != want2 {
			t.Fatalf("number %v came back as %v", num, data.Points[1].Value)
		}
		// Two names that read back the same (a collision the registry
		// check refuses at load) leave one key; only ask for the key then.
		collide := shown == sanitized(name+"2")
		if v, ok := data.Values[shown]; !ok || (!collide && v != sanitized(str)) {
			t.Fatalf("values: %v", data.Values)
		}
		var alarm struct{ M, T, P string }
		if err := json.Unmarshal(out.Messages[1].Payload, &alarm); err != nil {
			t.Fatal(err)
		}
		if alarm.M != sanitized(message) || alarm.P != shownFull || alarm.T != sanitized(message)+"/"+shownFull {
			t.Fatalf("alarm round trip: %+v", alarm)
		}
	})
}

// FuzzCompile: any text given as a template either is refused with an
// error or renders valid JSON for every kind of item; it never panics.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{DefaultDataPayload, DefaultPoint, DefaultAlarmPayload, DefaultImagePartPayload,
		`{"a":[1,-2.5e+3,true,null,{"${name}":"x${value}y"}]}`, `"${value}"`, `[`, `{"a":"${`, `{"a":"\u00zz"}`} {
		f.Add(s)
	}
	items := []*item{}
	b := &sdk.Batch{Device: "d\"", TS: 3, Points: []sdk.Point{{Name: "n\n", Value: sdk.String("\x01")}, {Name: "m", Value: sdk.Float(math.NaN())}}}
	items = append(items, &item{batch: b}, &item{batch: b, point: &b.Points[0]})
	items = append(items, &item{alarm: &sdk.Alarm{Point: "a.b", Message: "\xff", Value: sdk.Int(-1)}})
	items = append(items, &item{pic: &sdk.Picture{Device: "c", Data: []byte{0, 1}}, chunk: []byte{0, 1}, id: "i\"", part: 1, parts: 2})
	all := pointMode | alarmSet | imageSet
	tp := New()
	sdktest.Init(f, tp, "")
	f.Fuzz(func(t *testing.T, src string) {
		p, err := compileJSON(src, "fuzz", all)
		if err != nil {
			if err.off < 0 || err.off > len(src) {
				t.Fatalf("error offset %d outside the template", err.off)
			}
			return
		}
		for _, it := range items {
			out := tp.render(nil, p, it)
			if !json.Valid(out) {
				t.Fatalf("template %q rendered invalid JSON %q", src, out)
			}
		}
		if tx, err := compileText(src, "fuzz", all); err == nil {
			for _, it := range items {
				if out := tp.topicText(nil, tx, it); strings.ContainsAny(string(out), "+#\x00") {
					t.Fatalf("topic %q", out)
				}
			}
		}
	})
}
