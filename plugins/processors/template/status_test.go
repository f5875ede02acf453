package template

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

func statusFrame() *sdk.Frame {
	return &sdk.Frame{Batches: []sdk.Batch{{Device: "line1", TS: ts, Points: []sdk.Point{
		{Name: "speed", Value: sdk.Float(21.5), TS: ts},
		{Name: "gone", Quality: sdk.QualityBad, TS: ts, Status: "BadNodeIdUnknown"},
		{Name: "stale", Value: sdk.Int(7), Quality: sdk.QualityUncertain, TS: ts, Status: `Uncertain "x"`},
	}}}}
}

// A point's Status (SPEC 3, inputs.opcua) is the last member of its
// element in the default payload, only when set: a good point renders
// byte for byte as SPEC section 4 says. Run in process and over gRPC, so
// the status also crosses the plugin wire.
func TestStatusInDefaultPointElement(t *testing.T) {
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		sdktest.Init(t, p, "")
		check(t, msgs(process(t, p, statusFrame())),
			msg{"Topic/flexem/fbox/GW-TEST/data", `{"ts":1732600000000,"device":"line1","points":[` +
				`{"name":"speed","value":21.5,"q":"good","ts":1732600000000},` +
				`{"name":"gone","value":null,"q":"bad","ts":1732600000000,"status":"BadNodeIdUnknown"},` +
				`{"name":"stale","value":7,"q":"uncertain","ts":1732600000000,"status":"Uncertain \"x\""}]}`, 1, false})
	})
}

// Point templates of other shapes: one that places ${status} itself gets
// it there and nowhere else (empty for a good point), an empty object
// gets it as its only member, a bare value has nowhere to put it, and in
// point mode the one element of ${points} has it as in batch mode.
func TestStatusInOtherPointTemplates(t *testing.T) {
	cases := []struct {
		conf string
		want []string
	}{
		{`point = '{"n":"${name}","s":"${status}","why":"${quality}: ${status}"}'`, []string{
			`[{"n":"speed","s":"","why":"good: "},{"n":"gone","s":"BadNodeIdUnknown","why":"bad: BadNodeIdUnknown"},{"n":"stale","s":"Uncertain \"x\"","why":"uncertain: Uncertain \"x\""}]`}},
		{`point = '{}'`, []string{`[{},{"status":"BadNodeIdUnknown"},{"status":"Uncertain \"x\""}]`}},
		{`point = '"${value}"'`, []string{`[21.5,null,7]`}},
		{`point = '["${name}"]'`, []string{`[["speed"],["gone"],["stale"]]`}},
		{"mode = \"point\"\npayload = '\"${points}\"'", []string{
			`[{"name":"speed","value":21.5,"q":"good","ts":1732600000000}]`,
			`[{"name":"gone","value":null,"q":"bad","ts":1732600000000,"status":"BadNodeIdUnknown"}]`,
			`[{"name":"stale","value":7,"q":"uncertain","ts":1732600000000,"status":"Uncertain \"x\""}]`}},
		{"mode = \"point\"\npayload = '{\"v\":\"${value}\",\"s\":\"${status}\"}'", []string{
			`{"v":21.5,"s":""}`, `{"v":null,"s":"BadNodeIdUnknown"}`, `{"v":7,"s":"Uncertain \"x\""}`}},
	}
	for _, c := range cases {
		p := New()
		conf := "[data]\n" + c.conf + "\n"
		if len(c.conf) < 6 || c.conf[:5] != "mode " {
			conf = "[data]\npayload = '\"${points}\"'\n" + c.conf + "\n"
		}
		if _, err := p.Init(context.Background(), sdktest.Request(conf)); err != nil {
			t.Fatalf("%s: %v", c.conf, err)
		}
		out := process(t, p, statusFrame())
		if len(out.Messages) != len(c.want) {
			t.Fatalf("%s: %d messages, want %d", c.conf, len(out.Messages), len(c.want))
		}
		for i, w := range c.want {
			if g := string(out.Messages[i].Payload); g != w {
				t.Errorf("%s:\n got %s\nwant %s", c.conf, g, w)
			}
		}
	}
}

// ${status} is a point placeholder: not available in a batch payload.
func TestStatusIsAPointPlaceholder(t *testing.T) {
	_, err := New().Init(context.Background(), sdktest.Request("[data]\npayload = '{\"s\":\"${status}\"}'\n"))
	if err == nil {
		t.Fatal("${status} accepted in a batch payload")
	}
}

// FuzzStatus: whatever a status holds (a third-party input sends any
// bytes), the default payload stays valid JSON and the status reads back.
func FuzzStatus(f *testing.F) {
	f.Add("BadNodeIdUnknown")
	f.Add("\xff\"}\\u0000,")
	f.Add("")
	p := New()
	if _, err := p.Init(context.Background(), sdktest.Request("")); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, status string) {
		out, err := p.Process(context.Background(), &sdk.Frame{Batches: []sdk.Batch{{Device: "d", TS: 1, Points: []sdk.Point{
			{Name: "p", Quality: sdk.QualityBad, Status: status}}}}})
		if err != nil || len(out.Messages) != 1 {
			t.Fatalf("%v %d", err, len(out.Messages))
		}
		var d struct {
			Points []map[string]any `json:"points"`
		}
		if err := json.Unmarshal(out.Messages[0].Payload, &d); err != nil || len(d.Points) != 1 {
			t.Fatalf("%v: %q", err, out.Messages[0].Payload)
		}
		got, has := d.Points[0]["status"]
		if has != (status != "") || has && got != sanitized(status) {
			t.Fatalf("status %q rendered as %q", status, out.Messages[0].Payload)
		}
	})
}
