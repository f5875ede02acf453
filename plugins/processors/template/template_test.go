package template

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

const ts = int64(1732600000000)

func factory() sdk.Plugin { return New() }

func process(t *testing.T, p sdk.Plugin, f *sdk.Frame) *sdk.Frame {
	t.Helper()
	out, err := p.(sdk.Processor).Process(context.Background(), f)
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	if out == nil {
		t.Fatal("Process returned nil")
	}
	for _, m := range out.Messages {
		if !strings.HasSuffix(m.Topic, "/raw") && !json.Valid(m.Payload) && !strings.Contains(m.Topic, "/image/") {
			t.Errorf("invalid JSON on %s: %s", m.Topic, m.Payload)
		}
	}
	return out
}

func specFrame() *sdk.Frame {
	return &sdk.Frame{
		Batches: []sdk.Batch{{Device: "plc1", TS: ts, Points: []sdk.Point{{Name: "temperature", Value: sdk.Float(21.5), TS: ts}}}},
		Alarms: []sdk.Alarm{{TS: ts + 1, Rule: "boiler_overheat", Point: "plc1.temperature", Level: "critical",
			State: "raised", Value: sdk.Float(93.2), Message: "Boiler at 93.2 degC"}},
		Pictures: []sdk.Picture{{TS: ts + 2, Device: "cam1", Format: "jpeg", Data: []byte{0xFF, 0xD8, 0xFF, 0xD9}}},
		Messages: []sdk.Message{{Topic: "earlier", Payload: []byte(`{}`), QoS: 0, Retain: true}},
	}
}

type msg struct {
	topic, payload string
	qos            uint8
	retain         bool
}

func msgs(f *sdk.Frame) []msg {
	var out []msg
	for _, m := range f.Messages {
		out = append(out, msg{m.Topic, string(m.Payload), m.QoS, m.Retain})
	}
	return out
}

func check(t *testing.T, got []msg, want ...msg) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d:\n%v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// The defaults are SPEC section 4, byte for byte.
func TestDefaultsAreSpecSection4(t *testing.T) {
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		sdktest.Init(t, p, "")
		out := process(t, p, specFrame())
		check(t, msgs(out),
			msg{"earlier", `{}`, 0, true},
			msg{"Topic/flexem/fbox/GW-TEST/data", `{"ts":1732600000000,"device":"plc1","points":[{"name":"temperature","value":21.5,"q":"good","ts":1732600000000}]}`, 1, false},
			msg{"Topic/flexem/fbox/GW-TEST/alarm", `{"ts":1732600000001,"rule":"boiler_overheat","point":"plc1.temperature","level":"critical","state":"raised","value":93.2,"message":"Boiler at 93.2 degC"}`, 1, false},
			msg{"Topic/flexem/fbox/GW-TEST/image/cam1", `{"ts":1732600000002,"camera":"cam1","format":"jpeg","size":4,"data":"/9j/2Q=="}`, 1, false},
		)
		if len(out.Batches)+len(out.Alarms)+len(out.Pictures) != 0 {
			t.Errorf("rendered items must leave the frame: %+v", out)
		}
	})
}

// The sample configuration spells out the defaults: it must render the
// same messages.
func TestSampleEqualsDefaults(t *testing.T) {
	body := strings.Replace(sampleConf, "[[processors.template]]", "", 1)
	body = strings.ReplaceAll(body, "[processors.template.", "[")
	a, b := New(), New()
	sdktest.Init(t, a, "")
	sdktest.Init(t, b, body)
	fa, fb := process(t, a, specFrame()), process(t, b, specFrame())
	check(t, msgs(fb), msgs(fa)...)
}

func TestReadmeConfigIsSample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```toml\n(.*?)```").FindSubmatch(readme)
	if m == nil || string(m[1]) != sampleConf {
		t.Fatalf("the README's first toml block must equal sample.conf")
	}
}

func TestTypedAndTextPlaceholders(t *testing.T) {
	conf := `
[data]
payload = '''
{
  "v": "${value}",
  "t": "${name}=${value} ${unit} (${quality})",
  "${name}": "${device}",
  "k": ["${ts}", 1, -2.5e3, true, false, null, {}, []],
  "lit": "a\"b\\c\u00e9\/ $ {x} $x"
}'''
mode = "point"
topic = "${prefix}${device_id}/${device}/${name}"
`
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		req := sdktest.Request(conf)
		req.Points = []sdk.PointSchema{{Device: "plc1", Name: "temp", Unit: "degC"}, {Device: "plc1", Name: "s"}, {Device: "plc1", Name: "b"}, {Device: "plc1", Name: "n"}}
		if _, err := p.Init(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		f := &sdk.Frame{Batches: []sdk.Batch{{Device: "plc1", TS: 7, Points: []sdk.Point{
			{Name: "temp", Value: sdk.Float(21.5), TS: 8},
			{Name: "s", Value: sdk.String("a \"q\"\n"), TS: 0}, // TS 0: the batch's
			{Name: "b", Value: sdk.Bool(true), Quality: sdk.QualityUncertain, TS: 9},
			{Name: "n", Quality: sdk.QualityBad, TS: 9},
		}}}}
		lit := `"lit":"a\"b\\c\u00e9\/ $ {x} $x"`
		check(t, msgs(process(t, p, f)),
			msg{"Topic/flexem/fbox/GW-TEST/plc1/temp", `{"v":21.5,"t":"temp=21.5 degC (good)","temp":"plc1","k":[8,1,-2.5e3,true,false,null,{},[]],` + lit + `}`, 1, false},
			msg{"Topic/flexem/fbox/GW-TEST/plc1/s", `{"v":"a \"q\"\n","t":"s=a \"q\"\n  (good)","s":"plc1","k":[7,1,-2.5e3,true,false,null,{},[]],` + lit + `}`, 1, false},
			msg{"Topic/flexem/fbox/GW-TEST/plc1/b", `{"v":true,"t":"b=true  (uncertain)","b":"plc1","k":[9,1,-2.5e3,true,false,null,{},[]],` + lit + `}`, 1, false},
			msg{"Topic/flexem/fbox/GW-TEST/plc1/n", `{"v":null,"t":"n=  (bad)","n":"plc1","k":[9,1,-2.5e3,true,false,null,{},[]],` + lit + `}`, 1, false},
		)
	})
}

func TestValuesAndBareValuePayload(t *testing.T) {
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		sdktest.Init(t, p, "qos = 0\nretain = true\n[data]\npayload = '{\"at\":\"${ts}\",\"v\":\"${values}\"}'\n[alarm]\npayload='\"${message}\"'\nqos = 2\nretain = false")
		f := &sdk.Frame{
			Batches: []sdk.Batch{{Device: "d", TS: 1, Points: []sdk.Point{
				{Name: "a", Value: sdk.Int(math.MinInt64)}, {Name: "b", Value: sdk.Uint(math.MaxUint64)},
				{Name: "c", Value: sdk.Float(math.Inf(1))}, {Name: "d", Value: sdk.Float(math.NaN())}, {Name: "e", Value: sdk.Float(1e21)},
			}}, {Device: "empty"}},
			Alarms: []sdk.Alarm{{Message: "m"}},
		}
		check(t, msgs(process(t, p, f)),
			msg{"Topic/flexem/fbox/GW-TEST/data", `{"at":1,"v":{"a":-9223372036854775808,"b":18446744073709551615,"c":null,"d":null,"e":1e+21}}`, 0, true},
			msg{"Topic/flexem/fbox/GW-TEST/alarm", `"m"`, 2, false},
		)
	})
}

func TestAliases(t *testing.T) {
	conf := "aliases = { \"plc1.temperature\" = \"T1\", \"plc.2.p\" = \"P\" }\n[data]\npoint = '{\"n\":\"${name}\",\"p\":\"${point}\"}'\npayload = '{\"points\":\"${points}\",\"values\":\"${values}\"}'\n[alarm]\npayload = '{\"p\":\"${point}\",\"n\":\"${name}\",\"d\":\"${device}\"}'"
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		req := sdktest.Request(conf)
		req.Points = []sdk.PointSchema{{Device: "plc1", Name: "temperature"}, {Device: "plc1", Name: "other"}, {Device: "plc.2", Name: "p"}}
		if _, err := p.Init(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		f := &sdk.Frame{
			Batches: []sdk.Batch{{Device: "plc1", Points: []sdk.Point{{Name: "temperature", Value: sdk.Int(1)}, {Name: "other", Value: sdk.Int(2)}}}},
			Alarms:  []sdk.Alarm{{Point: "plc1.temperature"}, {Point: "plc1.other"}, {Point: "plc.2.p"}},
		}
		check(t, msgs(process(t, p, f)),
			msg{"Topic/flexem/fbox/GW-TEST/data", `{"points":[{"n":"T1","p":"T1"},{"n":"other","p":"plc1.other"}],"values":{"T1":1,"other":2}}`, 1, false},
			msg{"Topic/flexem/fbox/GW-TEST/alarm", `{"p":"T1","n":"T1","d":"plc1"}`, 1, false},
			msg{"Topic/flexem/fbox/GW-TEST/alarm", `{"p":"plc1.other","n":"other","d":"plc1"}`, 1, false},
			msg{"Topic/flexem/fbox/GW-TEST/alarm", `{"p":"P","n":"P","d":"plc.2"}`, 1, false},
		)
	})
}

func TestImageParts(t *testing.T) {
	data := []byte("0123456789") // 10 bytes in parts of 4: 4+4+2
	pic := func() *sdk.Frame {
		return &sdk.Frame{Pictures: []sdk.Picture{{TS: 5, Device: "cam1", Format: "jpeg", Data: data}, {TS: 6, Device: "cam2", Data: data[:4]}}}
	}
	t.Run("json", func(t *testing.T) {
		sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
			sdktest.Init(t, p, "[image]\nchunk_size = \"4\"")
			out := process(t, p, pic())
			if len(out.Messages) != 4 {
				t.Fatalf("want 3 parts and 1 whole picture, got %v", msgs(out))
			}
			var joined []byte
			var id string
			for i, m := range out.Messages[:3] {
				var v struct {
					TS         int64
					Camera     string
					Format     string
					Size, Part int
					Parts      int
					ID         string
					Data       string
				}
				if err := json.Unmarshal(m.Payload, &v); err != nil {
					t.Fatal(err)
				}
				if m.Topic != "Topic/flexem/fbox/GW-TEST/image/cam1" || v.Part != i+1 || v.Parts != 3 || v.Size != 10 || v.ID == "" || v.TS != 5 || v.Camera != "cam1" || v.Format != "jpeg" {
					t.Errorf("part %d: %s %s", i, m.Topic, m.Payload)
				}
				if id != "" && v.ID != id {
					t.Errorf("parts of one picture must share the id: %q %q", id, v.ID)
				}
				id = v.ID
				b, _ := base64.StdEncoding.DecodeString(v.Data)
				joined = append(joined, b...)
			}
			if string(joined) != string(data) {
				t.Errorf("parts join to %q", joined)
			}
			// A picture not larger than chunk_size is one plain message.
			if got := string(out.Messages[3].Payload); got != `{"ts":6,"camera":"cam2","format":"jpeg","size":4,"data":"MDEyMw=="}` {
				t.Errorf("small picture: %s", got)
			}
		})
	})
	t.Run("raw", func(t *testing.T) {
		sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
			sdktest.Init(t, p, "[image]\nformat = \"raw\"\nchunk_size = 4\nqos = 0")
			f := pic()
			out := process(t, p, f)
			got := msgs(out)
			if len(got) != 4 {
				t.Fatalf("got %v", got)
			}
			id := strings.Split(got[0].topic, "/")[6]
			for i, w := range []msg{
				{"Topic/flexem/fbox/GW-TEST/image/cam1/" + id + "/1/3", "0123", 0, false},
				{"Topic/flexem/fbox/GW-TEST/image/cam1/" + id + "/2/3", "4567", 0, false},
				{"Topic/flexem/fbox/GW-TEST/image/cam1/" + id + "/3/3", "89", 0, false},
				{"Topic/flexem/fbox/GW-TEST/image/cam2", "0123", 0, false},
			} {
				if got[i] != w {
					t.Errorf("message %d: %+v, want %+v", i, got[i], w)
				}
			}
			data[0] = 'X' // payloads own their bytes
			if out.Messages[0].Payload[0] != '0' || out.Messages[3].Payload[0] != '0' {
				t.Error("a raw payload shares the picture's bytes")
			}
			data[0] = '0'
		})
	})
}

func TestTopicsNeverCarryWildcards(t *testing.T) {
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		sdktest.Init(t, p, "[data]\nmode = \"point\"\ntopic = \"x/${device}/${name}\"")
		f := &sdk.Frame{Batches: []sdk.Batch{{Device: "a+b", Points: []sdk.Point{{Name: "#c\x00", Value: sdk.Int(1)}}}}}
		if got := process(t, p, f).Messages[0].Topic; got != "x/a_b/_c_" {
			t.Errorf("topic %q", got)
		}
	})
}

// Payloads of one call share an allocation; none may reach into another.
func TestPayloadsAreIndependent(t *testing.T) {
	p := New()
	sdktest.Init(t, p, "[data]\nmode = \"point\"\npayload = '\"${value}\"'")
	f := &sdk.Frame{Batches: []sdk.Batch{{Device: "d", Points: []sdk.Point{{Name: "a", Value: sdk.Int(1)}, {Name: "b", Value: sdk.Int(2)}}}}}
	out := process(t, p, f)
	out.Messages[0].Payload = append(out.Messages[0].Payload, 'X')
	if string(out.Messages[1].Payload) != "2" {
		t.Fatalf("appending to one payload changed the next: %q", out.Messages[1].Payload)
	}
	first := out.Messages[1].Payload
	process(t, p, &sdk.Frame{Batches: []sdk.Batch{{Device: "d", Points: []sdk.Point{{Name: "a", Value: sdk.Int(7)}, {Name: "b", Value: sdk.Int(8)}}}}})
	if string(first) != "2" {
		t.Fatalf("a later call overwrote an earlier payload: %q", first)
	}
}

func TestConfigErrors(t *testing.T) {
	points := []sdk.PointSchema{{Device: "plc1", Name: "temperature"}, {Device: "plc1", Name: "T1"}}
	cases := []struct{ conf, want string }{
		{"[data]\npayload = '{\"a\":1,}'", `test.toml:2: data.payload: column 8 of the template: unexpected '}': want an object key in double quotes`},
		{"[data]\npayload = '{\"a\": ${value}}'", `test.toml:2: data.payload: column 7 of the template: placeholders go inside JSON strings: write "${value}"`},
		{"\n[alarm]\npayload = '''\n{\n  \"a\": \"${rule}\",\n  \"b\": \"${valu}\"\n}'''", `test.toml:6: alarm.payload: template line 3, column 9: unknown placeholder ${valu}`},
		{"[alarm]\npayload = '''{\n\"b\": \"${Value}\"\n}'''", `test.toml:3: alarm.payload: template line 2, column 7: unknown placeholder ${Value} (placeholders are lower case)`},
		{"[data]\npoint = '{\"p\":\"${points}\"}'", `test.toml:2: data.point: column 7 of the template: ${points} is not available in the point template`},
		{"[data]\ntopic = 'x/${name}'", `test.toml:2: data.topic: column 3 of the template: ${name} is not available in the data topic`},
		{"[data]\npayload = '{\"p\":\"n=${points}\"}'", `${points} is a JSON array: use it as a whole string`},
		{"[data]\npayload = '{\"a\":\"${ts\"}'", `placeholder is not closed`},
		{"[data]\npayload = '{\"a\":1} 2'", `unexpected '2' after the end of the JSON document`},
		{"[data]\npayload = ''", `unexpected end of template`},
		{"[data]\npayload = '{\"a\":01}'", `malformed number`},
		{"[data]\npayload = '{\"a\":\"\\x\"}'", `unknown escape \x`},
		{"[data]\npayload = \"{\\\"a\\\":\\\"\t\\\"}\"", `control character`},
		{"[data]\ntopic = 'a/+/b'", `wildcards`},
		{"[data]\ntopic = ''", `topic is empty`},
		{"[data]\nmode = 'each'", `test.toml:2: data.mode: "each": want batch or point`},
		{"qos = 3", `test.toml:1: qos: want 0, 1 or 2, got 3`},
		{"[image]\nformat = 'png'", `image.format: "png": want json or raw`},
		{"[image]\nformat = 'raw'\npayload = '{}'", `test.toml:3: image.payload: is not used with format = "raw"`},
		{"[image]\nchunk_size = 10\npayload = '{\"d\":\"${data}\"}'", `with chunk_size > 0 the payload must place the parts`},
		{"[image]\nchunk_size = 'lots'", `size "lots"`},
		{"aliases = { \"plc1.nope\" = \"x\" }", `test.toml:1: aliases: "plc1.nope" is not a point of any input`},
		{"aliases = { \"plc1.temperature\" = \"T1\" }", `"plc1.T1" and "plc1.temperature" would both be reported as "T1"`},
		{"aliases = { \"plc1.temperature\" = \"\" }", `alias of "plc1.temperature" is empty`},
		{"[data]\nmood = 1", `test.toml:2: data.mood: unknown key`},
	}
	for _, c := range cases {
		sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
			req := sdktest.Request(c.conf)
			req.Points = points
			_, err := p.Init(context.Background(), req)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%q:\n got %v\nwant %s", c.conf, err, c.want)
			}
			if ces := sdk.AsConfigErrors(err); len(ces) == 0 || ces[0].Line == 0 {
				t.Errorf("%q: error without a line: %#v", c.conf, ces)
			}
		})
	}
}

func TestRegistered(t *testing.T) {
	r, ok := sdk.Lookup("processors.template")
	if !ok || r.SampleConfig != sampleConf || r.Description == "" {
		t.Fatalf("registration: %+v", r)
	}
}

func TestPointModeDefaults(t *testing.T) {
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		sdktest.Init(t, p, "[data]\nmode = \"point\"")
		f := &sdk.Frame{Batches: []sdk.Batch{{Device: "plc1", TS: 5, Points: []sdk.Point{{Name: "a", Value: sdk.Int(1), TS: 6}, {Name: "b", Value: sdk.Bool(false)}}}}}
		check(t, msgs(process(t, p, f)),
			msg{"Topic/flexem/fbox/GW-TEST/data", `{"ts":6,"device":"plc1","points":[{"name":"a","value":1,"q":"good","ts":6}]}`, 1, false},
			msg{"Topic/flexem/fbox/GW-TEST/data", `{"ts":5,"device":"plc1","points":[{"name":"b","value":false,"q":"good","ts":5}]}`, 1, false},
		)
	})
}
