package serial_test

import (
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// deviceOf is the input's one device as Health reports it.
func deviceOf(t *testing.T, p sdk.Plugin) sdk.DeviceHealth {
	t.Helper()
	h := health(t, p)
	if len(h.Devices) != 1 {
		t.Fatalf("want one device in health, got %+v", h.Devices)
	}
	return h.Devices[0]
}

// TestPolledDeviceHealth: a polled meter is not up before it answered,
// up once it did, down with the reason when a poll gets no reply (one
// read error), and up again when it answers, its last error kept.
func TestPolledDeviceHealth(t *testing.T) {
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		m := startMeter(t)
		m.replies <- func(good []byte) []byte { return good }
		m.replies <- func([]byte) []byte { return nil }
		sdktest.Init(t, p, `device = "meter1"
port = "`+m.dev.path()+`"
mode = "poll"
interval = "250ms"
timeout = "200ms"
request = '\x01\x03\x00\x00\x00\x04${checksum}'
frame_length = 13
start = '\x01\x03\x08'
checksum = "crc16-modbus"
[[points]]
name = "energy"
position = 3
type = "uint32"
`)
		if d := deviceOf(t, p); d.Name != "meter1" || d.Up || !d.LastGood.IsZero() {
			t.Fatalf("before the first poll: %+v", d)
		}
		batches := stream(t, p)
		next(t, batches)
		if d := deviceOf(t, p); !d.Up || d.LastGood.IsZero() || d.ReadErrors != 0 {
			t.Fatalf("after a reply: %+v", d)
		}
		wantBad(t, next(t, batches), "energy")
		d := deviceOf(t, p)
		if d.Up || d.ReadErrors != 1 || !strings.Contains(d.LastError, "no valid reply") || d.LastErrorAt.IsZero() {
			t.Fatalf("after a silent poll: %+v", d)
		}
		next(t, batches)
		if back := deviceOf(t, p); !back.Up || back.ReadErrors != 1 || back.LastError != d.LastError || back.LastGood.Before(d.LastErrorAt) {
			t.Fatalf("answering again: %+v", back)
		}
	})
}

// TestStreamingDeviceHealth: a scale that talks by itself is up while it
// does, down once it is silent for two intervals, and down with the port's
// error when the adapter is pulled.
func TestStreamingDeviceHealth(t *testing.T) {
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		dev := newDevice(t)
		sdktest.Init(t, p, `device = "scale1"
port = "`+dev.path()+`"
mode = "stream"
interval = "250ms"
delimiter = '\n'
[[points]]
name = "weight"
pattern = '(?P<value>[0-9.]+)'
`)
		batches := stream(t, p)
		dev.send([]byte("1.5\n"))
		wantFloat(t, next(t, batches), "weight", 1.5)
		if d := deviceOf(t, p); !d.Up || d.LastGood.IsZero() || d.ReadErrors != 0 {
			t.Fatalf("talking: %+v", d)
		}
		wantBad(t, next(t, batches), "weight") // silent for two intervals
		if d := deviceOf(t, p); d.Up || d.ReadErrors != 1 || !strings.Contains(d.LastError, "no frame for") {
			t.Fatalf("silent: %+v", d)
		}
		dev.send([]byte("2.5\n"))
		wantFloat(t, next(t, batches), "weight", 2.5)
		if d := deviceOf(t, p); !d.Up {
			t.Fatalf("talking again: %+v", d)
		}
		dev.unplug()
		wantBad(t, next(t, batches), "weight")
		// The port's error: the loss, or, once the reopen loop has tried
		// (its first wait is a full-jitter backoff, possibly ~0), the
		// failed open.
		if d := deviceOf(t, p); d.Up || !strings.Contains(d.LastError, "lost") && !strings.Contains(d.LastError, "cannot open") {
			t.Fatalf("unplugged: %+v", d)
		}
	})
}
