package sdk

import (
	"encoding/json"
	"reflect"
	"testing"
)

// Typed commands and processors' requests cross the plugin boundary
// intact; kinds a newer peer might send are refused, not acted on.
func TestCommandAndRequestsOverTheWire(t *testing.T) {
	for _, c := range []Command{
		{Kind: CommandWrite, ID: "req-1", ReplyTopic: "P/ID/data/write/reply",
			Points: []PointWrite{{Name: "plc1.sp", Value: json.RawMessage("9007199254740993.0")}, {Name: "plc1.on", Value: json.RawMessage("true")}}},
		{Kind: CommandAck, ID: "a-1", ReplyTopic: "r", Rule: "boiler"},
		{Kind: CommandSystem, ID: "s-1", ReplyTopic: "r", System: SystemPause, Name: "Pause", Output: "cloud"},
		{Kind: CommandConfig, ID: "c-1", ReplyTopic: "r", Name: "set", Config: []byte(`{"config":"x"}`)},
		{Kind: CommandWrite, ID: "bad", ReplyTopic: "r", Err: "payload is not a JSON object"},
	} {
		if got := commandFromPB(commandToPB(c)); !reflect.DeepEqual(got, c) {
			t.Errorf("got %+v\nwant %+v", got, c)
		}
	}
	c := commandToPB(Command{Kind: CommandSystem, System: SystemResume})
	c.Kind, c.System = 99, 99
	if got := commandFromPB(c); got.Kind != CommandNone || got.Err == "" || got.System != SystemUnknown {
		t.Fatalf("unknown kind: %+v", got)
	}
	f := &Frame{Requests: []Request{{Point: "cam1.capture", Value: Bool(true), Reason: "alarm hot raised"}}}
	if got := frameFromPB(frameToPB(f)); !reflect.DeepEqual(got.Requests, f.Requests) || got.Empty() {
		t.Fatalf("requests %+v", got.Requests)
	}
}
