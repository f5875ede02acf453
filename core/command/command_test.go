package command

import (
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

func TestParseWrite(t *testing.T) {
	w, err := ParseWrite([]byte(`{"id":"req-1","points":{"plc1.sp":75.5,"plc1.pump":true}}`))
	if err != nil || w.ID != "req-1" || len(w.Points) != 2 || w.Points[0].Name != "plc1.pump" {
		t.Fatalf("%+v %v", w, err)
	}
	w, err = ParseWrite([]byte(`{"id":7,"points":{}}`))
	if err == nil || w.ID != "7" {
		t.Fatalf("empty points: %+v %v", w, err)
	}
	w, err = ParseWrite([]byte(`{"id":"keep-me","points":{"a":1}`)) // truncated
	if err == nil || w.ID != "keep-me" {
		t.Fatalf("broken JSON must fail but keep the id: %+v %v", w, err)
	}
	if _, err = ParseWrite([]byte("not json")); err == nil {
		t.Fatal("want error")
	}
}

func FuzzParseWrite(f *testing.F) {
	f.Add([]byte(`{"id":"req-1","points":{"plc1.sp":75.5,"plc1.pump":true}}`))
	f.Add([]byte(`{"id":1e3,"points":{"a":"x","b":[1],"c":{"d":null}}}`))
	f.Add([]byte(`{"id":"a","points":{"a":1`))
	kinds := []sdk.PointSchema{{Type: "int16", Kind: sdk.KindInt}, {Type: "uint32", Kind: sdk.KindUint},
		{Type: "float32", Kind: sdk.KindFloat, Min: fp(-1), Max: fp(1)}, {Kind: sdk.KindBool}, {Kind: sdk.KindString}}
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := ParseWrite(data)
		if w == nil {
			t.Fatal("ParseWrite must always return a Write for the reply")
		}
		if err != nil {
			return
		}
		for _, p := range w.Points {
			for _, s := range kinds {
				v, err := Convert(p.Value, s)
				if err == nil && v.Kind() != s.Kind {
					t.Fatalf("converted %s to %v for a %v point", p.Value, v.Kind(), s.Kind)
				}
			}
		}
		_, _ = ParseAck(data)
	})
}
