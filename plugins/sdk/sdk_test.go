package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/grpcplugin"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// echo is a processor that records its config, keeps state and returns
// the frame it got, so a test can compare what crossed the wire.
type echo struct {
	Greeting string `toml:"greeting"`
	Limit    int    `toml:"limit"`
	state    sdk.State
}

func (e *echo) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	src, err := sdk.DecodeConfig(req, e)
	if err != nil {
		return nil, err
	}
	if e.Limit < 0 {
		return nil, sdk.ConfigErrors{src.Errorf("limit", "must not be negative, got %d", e.Limit)}
	}
	e.state = req.State
	return &sdk.InitResponse{Points: []sdk.PointSchema{{Device: "d", Name: "p", Kind: sdk.KindFloat, Access: sdk.AccessPubSub, Min: ptr(1.5)}}}, nil
}
func (e *echo) Close(context.Context) error { return nil }
func (e *echo) Process(_ context.Context, f *sdk.Frame) (*sdk.Frame, error) {
	if len(f.Batches) > 0 && f.Batches[0].Device == "fail" {
		return nil, errors.New("device fail refused")
	}
	e.state.Set("seen", []byte(e.Greeting))
	return f, nil
}

func ptr(f float64) *float64 { return &f }

func sampleFrame() *sdk.Frame {
	return &sdk.Frame{
		Batches: []sdk.Batch{{Device: "plc1", TS: 1000, Points: []sdk.Point{
			{Name: "b", Value: sdk.Bool(true), TS: 1000},
			{Name: "i", Value: sdk.Int(-42), Quality: sdk.QualityGood, TS: 1001},
			{Name: "u", Value: sdk.Uint(math.MaxUint64), TS: 999},
			{Name: "f", Value: sdk.Float(math.Inf(-1)), TS: 1000},
			{Name: "nan", Value: sdk.Float(math.NaN()), TS: 1000},
			{Name: "s", Value: sdk.String("héllo\x00\""), TS: 1000},
			{Name: "bad", Quality: sdk.QualityBad, TS: 1000},
			{Name: "s2", Value: sdk.String(""), TS: 1000},
		}}},
		Alarms:   []sdk.Alarm{{TS: 5, Rule: "r", Point: "plc1.f", Level: "critical", State: "raised", Value: sdk.Float(93.2), Message: "m"}},
		Pictures: []sdk.Picture{{TS: 6, Device: "cam1", Format: "jpeg", Data: make([]byte, 5<<20)}},
		Messages: []sdk.Message{{Topic: "t", Payload: []byte("{}"), QoS: 1, Retain: true}},
	}
}

func TestRoundTripBothWays(t *testing.T) {
	sdktest.Run(t, func() sdk.Plugin { return &echo{} }, func(t *testing.T, p sdk.Plugin) {
		req := sdktest.Request("greeting = \"hi\"\nlimit = 3\n")
		resp, err := p.Init(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Points) != 1 || *resp.Points[0].Min != 1.5 || resp.Points[0].Max != nil || resp.Points[0].Access != sdk.AccessPubSub {
			t.Fatalf("schema did not survive: %+v", resp.Points)
		}
		in := sampleFrame()
		want := sampleFrame()
		out, err := p.(sdk.Processor).Process(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Batches[0].Points) != len(want.Batches[0].Points) {
			t.Fatalf("points: got %d", len(out.Batches[0].Points))
		}
		for i, w := range want.Batches[0].Points {
			g := out.Batches[0].Points[i]
			if g.Name != w.Name || !g.Value.Equal(w.Value) || g.Quality != w.Quality || g.TS != w.TS {
				t.Errorf("point %d: got %#v want %#v", i, g, w)
			}
		}
		if !reflect.DeepEqual(out.Alarms, want.Alarms) || !reflect.DeepEqual(out.Messages, want.Messages) {
			t.Errorf("alarms/messages differ: %+v %+v", out.Alarms, out.Messages)
		}
		if len(out.Pictures) != 1 || len(out.Pictures[0].Data) != 5<<20 {
			t.Errorf("picture did not cross")
		}
		if v, ok := req.State.Get("seen"); !ok || string(v) != "hi" {
			t.Errorf("state change did not reach the host store: %q %v", v, ok)
		}
		_, err = p.(sdk.Processor).Process(context.Background(), &sdk.Frame{Batches: []sdk.Batch{{Device: "fail"}}})
		if err == nil || !strings.Contains(err.Error(), "device fail refused") || grpcplugin.IsTransportError(err) {
			t.Errorf("plugin error not carried as such: %v", err)
		}
	})
}

func TestConfigErrorsCarryLines(t *testing.T) {
	sdktest.Run(t, func() sdk.Plugin { return &echo{} }, func(t *testing.T, p sdk.Plugin) {
		req := sdktest.Request("\ngreeting = \"hi\"\ncolour = 1\n\nlimit = -1\n")
		req.File, req.Line = "gw.toml", 10
		_, err := p.Init(context.Background(), req)
		ces := sdk.AsConfigErrors(err)
		if len(ces) != 1 || ces[0].Error() != "gw.toml:12: colour: unknown key" {
			t.Fatalf("got %q", err)
		}
		req = sdktest.Request("\n\n\n\nlimit = -1\n")
		req.File, req.Line = "gw.toml", 10
		_, err = p.Init(context.Background(), req)
		if err == nil || err.Error() != "gw.toml:14: limit: must not be negative, got -1" {
			t.Fatalf("got %q", err)
		}
		req = sdktest.Request("limit = \"x\"\n")
		_, err = p.Init(context.Background(), req)
		if ces := sdk.AsConfigErrors(err); len(ces) != 1 || ces[0].Line != 1 {
			t.Fatalf("type error: %#v", ces)
		}
	})
}

func TestCapsCrossTheWire(t *testing.T) {
	c := sdktest.Connect(t, &echo{})
	sdktest.Init(t, c, "")
	if got := sdk.CapsOf(c); got != (sdk.Caps{}) {
		t.Fatalf("echo has no optional abilities, got %+v", got)
	}
	if _, err := c.Gather(context.Background()); err == nil {
		t.Fatal("Gather on a processor must fail")
	}
}

func TestInvalidUTF8StringValuesCrossTheWire(t *testing.T) {
	c := sdktest.Connect(t, &echo{})
	sdktest.Init(t, c, "")
	f := &sdk.Frame{Batches: []sdk.Batch{{Device: "d", Points: []sdk.Point{{Name: "s", Value: sdk.String("\xff\xfe ok")}}}}}
	out, err := c.Process(context.Background(), f)
	if err != nil || out.Batches[0].Points[0].Value.StringValue() != "\xff\xfe ok" {
		t.Fatalf("%v %+v", err, out)
	}
}

func TestBadValueDoesNotHideUnknownKeys(t *testing.T) {
	type point struct {
		Name  string       `toml:"name"`
		Every sdk.Duration `toml:"every"`
	}
	var cfg struct {
		Interval sdk.Duration      `toml:"interval"`
		Points   []point           `toml:"points"`
		Labels   map[string]string `toml:"labels"`
	}
	req := sdktest.Request("interval = \"soon\"\ncolour = 1\n[labels]\nany = \"x\"\n[[points]]\nname = \"a\"\nsize = 2\n[[points]]\nname = \"b\"\nsize = 3\n")
	_, err := sdk.DecodeConfig(req, &cfg)
	ces := sdk.AsConfigErrors(err)
	var got []string
	for _, e := range ces {
		got = append(got, fmt.Sprintf("%d:%s", e.Line, e.Path))
	}
	if strings.Join(got, " ") != "1:interval 2:colour 7:points[0].size 10:points[1].size" {
		t.Fatalf("got %v (%v)", got, err)
	}
}

// Every wrong-typed key of a table is reported in one decode, with the
// unknown keys, sorted by line, each at its own table (the decoder places
// every points.address error at the first one), and a misspelt key gets a
// suggestion.
func TestDecodeReportsEveryBadValueSortedWithSuggestions(t *testing.T) {
	var cfg struct {
		Interval sdk.Duration `toml:"interval"`
		Retries  int          `toml:"retries"`
		Servers  []string     `toml:"servers"`
		Type     string       `toml:"type"`
		Points   []struct {
			Name    string `toml:"name"`
			Address int    `toml:"address"`
		} `toml:"points"`
	}
	req := sdktest.Request("tpye = \"x\"\ninterval = \"soon\"\nretries = \"two\"\nservers = [\n  1,\n  2,\n]\nisolatd = true\n[[points]]\nname = \"a\"\naddres = 3\n[[points]]\nname = \"b\"\naddress = \"x\"\n[[points]]\nname = \"c\"\naddress = 4\n[[points]]\nname = \"d\"\naddress = \"y\"\n")
	_, err := sdk.DecodeConfig(req, &cfg)
	var got []string
	for _, e := range sdk.AsConfigErrors(err) {
		got = append(got, fmt.Sprintf("%d:%s:%s", e.Line, e.Path, e.Msg))
	}
	want := []string{
		`1:tpye:unknown key; did you mean "type"?`,
		`2:interval:duration "soon": want a number with a unit, e.g. "500ms", "60s", "10m"`,
		`3:retries:incompatible types: TOML value has type string; destination has type integer`,
		`4:servers:incompatible types: TOML value has type int64; destination has type string`,
		`8:isolatd:unknown key; did you mean "isolated"?`,
		`11:points[0].addres:unknown key; did you mean "address"?`,
		`14:points[1].address:incompatible types: TOML value has type string; destination has type integer`,
		`20:points[3].address:incompatible types: TOML value has type string; destination has type integer`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"url", "timeout", "retries", "byte_order", "type"}
	for word, want := range map[string]string{"tiemout": "timeout", "retry": "", "byteorder": "byte_order", "uri": "url", "qos": "", "type": ""} {
		if got := sdk.Suggest(word, keys); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", word, got, want)
		}
	}
}

func FuzzDecodeConfig(f *testing.F) {
	f.Add("tpye = \"x\"\ninterval = 5\nservers = [\n  1,\n]\n[[points]]\naddress = \"x\"\n[[points]]\nnmae = 1\n")
	f.Add("a = { b = 1, c = \"x\" }\n[points]\nx = 1\n")
	f.Fuzz(func(t *testing.T, doc string) {
		var cfg struct {
			Interval sdk.Duration    `toml:"interval"`
			Servers  []string        `toml:"servers"`
			Type     string          `toml:"type"`
			A        struct{ B int } `toml:"a"`
			Points   []struct {
				Name    string `toml:"name"`
				Address int    `toml:"address"`
			} `toml:"points"`
		}
		_, _ = sdk.DecodeConfig(sdktest.Request(doc), &cfg)
		_ = sdk.Suggest(doc, []string{"interval", "servers", ""})
	})
}
