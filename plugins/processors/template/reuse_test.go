package template

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// changingFrame is poll n of a plant whose size and values move from poll
// to poll: 1-3 devices of a varying number of points (so payloads grow
// and shrink, and the buffers given back are sometimes too small), every
// kind of value, bad readings with a status, and now and then an alarm
// and a message from an earlier processor.
func changingFrame(r *rand.Rand, n int) *sdk.Frame {
	ts := int64(1732600000000) + int64(n)*100
	f := &sdk.Frame{}
	for d := range 1 + r.IntN(3) {
		b := sdk.Batch{Device: fmt.Sprintf("plc%d", d), TS: ts}
		for i := range 1 + r.IntN(400) {
			p := sdk.Point{Name: fmt.Sprintf("hr%d", i), TS: ts + int64(r.IntN(3))}
			switch i % 5 {
			case 0:
				p.Value = sdk.Int(r.Int64N(1<<40) - 1<<39)
			case 1:
				p.Value = sdk.Float(r.Float64() * 1000)
			case 2:
				p.Value = sdk.Bool(r.IntN(2) == 0)
			case 3:
				p.Value = sdk.String(strings.Repeat("x\"é", r.IntN(6)))
			default:
				p.Value = sdk.Uint(r.Uint64())
			}
			if r.IntN(50) == 0 {
				p.Quality, p.Status = sdk.QualityBad, fmt.Sprintf("timeout %d", n)
			}
			b.Points = append(b.Points, p)
		}
		f.Batches = append(f.Batches, b)
	}
	if r.IntN(4) == 0 {
		f.Alarms = append(f.Alarms, sdk.Alarm{TS: ts, Rule: "hot", Point: "plc0.hr1", Level: "warning",
			State: "raised", Value: sdk.Float(float64(n)), Message: fmt.Sprintf("poll %d", n)})
	}
	if r.IntN(4) == 0 {
		f.Messages = append(f.Messages, sdk.Message{Topic: "earlier", Payload: fmt.Appendf(nil, `{"n":%d}`, n), QoS: 1})
	}
	return f
}

// cloneFrame copies every slice of f, so that two processors can be given
// the same frame without sharing memory.
func cloneFrame(f *sdk.Frame) *sdk.Frame {
	c := &sdk.Frame{Alarms: slices.Clone(f.Alarms)}
	for _, b := range f.Batches {
		b.Points = slices.Clone(b.Points)
		c.Batches = append(c.Batches, b)
	}
	for _, m := range f.Messages {
		m.Payload = bytes.Clone(m.Payload)
		c.Messages = append(c.Messages, m)
	}
	return c
}

// rendered is a message as an output would receive it, copied.
func rendered(f *sdk.Frame) []msg {
	out := msgs(f)
	if out == nil {
		out = []msg{}
	}
	return out
}

// Over a real plugin connection, where the SDK gives the template's frames
// back and reuses the requests' memory, every reply of many calls with
// changing frames is byte for byte what a fresh template renders from
// the same frame in process: no payload or point is written over while it
// is still being read.
func TestIsolatedRepliesAreWhatAFreshTemplateRenders(t *testing.T) {
	for _, c := range []struct{ name, conf string }{
		{"batch", ""},
		{"point", "[data]\nmode = \"point\"\ntopic = \"${prefix}${device_id}/${device}/${name}\""},
		{"values", "[data]\npayload = '{\"ts\":\"${ts}\",\"d\":\"${device}\",\"v\":\"${values}\"}'"},
	} {
		t.Run(c.name, func(t *testing.T) {
			remote := sdktest.Connect(t, New())
			sdktest.Init(t, remote, c.conf)
			r := rand.New(rand.NewPCG(15, uint64(len(c.name))))
			var got, want [][]msg
			for n := range 150 {
				f := changingFrame(r, n)
				fresh := New()
				sdktest.Init(t, fresh, c.conf)
				want = append(want, rendered(process(t, fresh, cloneFrame(f))))
				got = append(got, rendered(process(t, remote, f)))
				if !slices.Equal(got[n], want[n]) {
					t.Fatalf("call %d over the connection:\n got %v\nwant %v", n, got[n], want[n])
				}
			}
			// The host's copies stay what they were when received.
			for n := range got {
				if !slices.Equal(got[n], want[n]) {
					t.Fatalf("reply %d changed after later calls", n)
				}
			}
		})
	}
}

// In process nobody gives the template's frames back (the outputs' queues
// keep the payloads): every call renders into memory of its own, and the
// payloads of earlier calls stay intact however many calls follow.
func TestPayloadsKeptInProcessStayIntact(t *testing.T) {
	tp := New()
	sdktest.Init(t, tp, "")
	r := rand.New(rand.NewPCG(1, 2))
	var held []sdk.Message // as a queue holds them
	var copies [][]byte
	for n := range 50 {
		out := process(t, tp, changingFrame(r, n))
		for _, m := range out.Messages {
			held = append(held, m)
			copies = append(copies, bytes.Clone(m.Payload))
		}
	}
	for i, m := range held {
		if !bytes.Equal(m.Payload, copies[i]) {
			t.Fatalf("payload %d was written over by a later call:\n got %s\nwant %s", i, m.Payload, copies[i])
		}
	}
}

// A frame given back is rendered into again by the next call (what the
// SDK's release is for), and only the frame the template returned last:
// a frame it never returned gives nothing back.
func TestReleasedFrameBufferIsReused(t *testing.T) {
	tp := New()
	sdktest.Init(t, tp, "")
	first := func(f *sdk.Frame) *byte { return &f.Messages[0].Payload[0] }

	out := process(t, tp, modbusFrame(100, 0))
	a := first(out)
	tp.ReleaseFrame(out)
	out = process(t, tp, modbusFrame(100, 1))
	if first(out) != a {
		t.Fatal("the buffer of a frame given back was not reused")
	}
	want := rendered(process(t, freshTemplate(t), modbusFrame(100, 1)))
	if got := rendered(out); !slices.Equal(got, want) {
		t.Fatalf("rendered into the buffer given back:\n got %v\nwant %v", got, want)
	}

	b := first(out)
	kept := bytes.Clone(out.Messages[0].Payload)
	tp.ReleaseFrame(&sdk.Frame{Messages: out.Messages}) // not the frame returned
	tp.ReleaseFrame(nil)
	next := process(t, tp, modbusFrame(100, 2))
	if first(next) == b || !bytes.Equal(out.Messages[0].Payload, kept) {
		t.Fatal("a frame the template did not return gave its buffer back")
	}
}

// freshTemplate is a fresh initialised template with the default configuration.
func freshTemplate(t *testing.T) *Template {
	tp := New()
	sdktest.Init(t, tp, "")
	return tp
}
