package serial

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// collect runs chunks through a framer, each chunk arriving `step` after
// the previous, and returns the frames it cut.
func collect(f *framer, step time.Duration, chunks ...string) []string {
	var out []string
	at := time.Unix(0, 0)
	for _, c := range chunks {
		f.feed([]byte(c), at, func(b []byte) { out = append(out, string(b)) })
		at = at.Add(step)
	}
	f.expire(at.Add(time.Hour), func(b []byte) { out = append(out, string(b)) })
	return out
}

func TestFramer(t *testing.T) {
	cases := []struct {
		name    string
		f       framer
		step    time.Duration
		chunks  []string
		want    []string
		short   uint64
		noise   uint64
		tooLong uint64
	}{
		{name: "delimiter across chunks", f: framer{delim: []byte("\r\n")},
			chunks: []string{"W: 1", "2\r", "\nW: 3\r\nW:"}, want: []string{"W: 12", "W: 3"}, short: 0},
		{name: "start skips noise", f: framer{delim: []byte("\n"), start: []byte("\x02")},
			chunks: []string{"junk\n\x02a\n", "xx\x02b\n"}, want: []string{"\x02a", "\x02b"}, noise: 7},
		{name: "new start cuts the frame short", f: framer{delim: []byte("\r\n"), start: []byte("W:")},
			chunks: []string{"W: 99", "W: 1\r\n"}, want: []string{"W: 1"}, short: 1},
		{name: "partial start then mismatch", f: framer{length: 4, start: []byte("\x01\x03")},
			chunks: []string{"\x01\x01\x03ab\x01\x03cd"}, want: []string{"\x01\x03ab", "\x01\x03cd"}, noise: 1},
		{name: "fixed length", f: framer{length: 3, timeout: time.Second},
			chunks: []string{"abcd", "efgh"}, want: []string{"abc", "def"}, short: 1}, // "gh" never completes
		{name: "idle gap", f: framer{gap: 10 * time.Millisecond}, step: 20 * time.Millisecond,
			chunks: []string{"ab", "cd"}, want: []string{"ab", "cd"}},
		{name: "idle gap, bytes close together", f: framer{gap: 10 * time.Millisecond}, step: time.Millisecond,
			chunks: []string{"ab", "cd"}, want: []string{"abcd"}},
		{name: "unfinished frame times out", f: framer{delim: []byte("\n"), timeout: 50 * time.Millisecond},
			step: 40 * time.Millisecond, chunks: []string{"ab", "cd", "ef\n"}, want: []string{"ef"}, short: 1},
		{name: "too long", f: framer{delim: []byte("\n")},
			chunks: []string{strings.Repeat("x", maxFrame+1), "ok\n"}, want: []string{"ok"}, tooLong: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cn counters
			c.f.c = &cn
			got := collect(&c.f, c.step, c.chunks...)
			if strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Errorf("frames %q, want %q", got, c.want)
			}
			if cn.short.Load() != c.short || cn.noiseBytes.Load() != c.noise || cn.tooLong.Load() != c.tooLong {
				t.Errorf("short %d noise %d too long %d, want %d %d %d", cn.short.Load(), cn.noiseBytes.Load(),
					cn.tooLong.Load(), c.short, c.noise, c.tooLong)
			}
		})
	}
}

func TestChecksums(t *testing.T) {
	for _, c := range []struct {
		ck   checksum
		data string
		want []byte
	}{
		{ckCRC16, "123456789", []byte{0x37, 0x4B}}, // the CRC-16/MODBUS check value 0x4B37, low byte first
		{ckCRC16, "\x01\x03\x00\x00\x00\x01", []byte{0x84, 0x0A}},
		{ckSum8, "\xff\x02\x03", []byte{0x04}},
		{ckXor8, "\x0f\xf0\x01", []byte{0xfe}},
	} {
		if got := c.ck.appendSum(nil, []byte(c.data)); !bytes.Equal(got, c.want) {
			t.Errorf("%s(%q) = % x, want % x", c.ck, c.data, got, c.want)
		}
		frame := append([]byte(c.data), c.want...)
		if p, ok, _ := c.ck.verify(frame); !ok || string(p) != c.data {
			t.Errorf("%s: verify of a good frame failed", c.ck)
		}
		frame[0] ^= 1
		if _, ok, _ := c.ck.verify(frame); ok {
			t.Errorf("%s: verify accepted a damaged frame", c.ck)
		}
		if _, ok, short := c.ck.verify(c.want); ok || !short {
			t.Errorf("%s: a frame of only check bytes is not short", c.ck)
		}
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`R\r\n`: "R\r\n", `\x02W\t\\`: "\x02W\t\\", "plain": "plain", `\xfF`: "\xff"} {
		got, err := unescape(in)
		if err != nil || string(got) != want {
			t.Errorf("unescape(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{`\q`, `\x0`, `\xzz`, `a\`} {
		if _, err := unescape(in); err == nil {
			t.Errorf("unescape(%q) accepted", in)
		}
	}
}

func TestBinaryDecodeAndEncode(t *testing.T) {
	frame := []byte{0xAA, 0x12, 0x34, 0x56, 0x78, 0xFF, 0xFE}
	for _, c := range []struct {
		typ   valueType
		order byteOrder
		pos   int
		want  any
	}{
		{tUint16, orderABCD, 1, uint64(0x1234)},
		{tUint16, orderDCBA, 1, uint64(0x3412)},
		{tUint32, orderABCD, 1, uint64(0x12345678)},
		{tUint32, orderCDAB, 1, uint64(0x56781234)},
		{tUint32, orderBADC, 1, uint64(0x34127856)},
		{tUint32, orderDCBA, 1, uint64(0x78563412)},
		{tInt16, orderABCD, 5, int64(-2)},
		{tInt8, orderABCD, 6, int64(-2)},
		{tUint8, orderABCD, 0, uint64(0xAA)},
		{tBool, orderABCD, 0, true},
	} {
		p := &point{typ: c.typ, order: c.order, pos: c.pos, scale: 1}
		v, err := p.decode(frame)
		if err != nil || v.Interface() != c.want {
			t.Errorf("%s %s at %d: %v %v, want %v", c.typ, c.order, c.pos, v.Interface(), err, c.want)
			continue
		}
		if c.typ == tBool {
			continue // any non-zero byte reads true; true writes 1
		}
		b, err := p.bytes(v)
		if err != nil || !bytes.Equal(b, frame[c.pos:c.pos+c.typ.size()]) {
			t.Errorf("%s %s: encode gives % x, %v", c.typ, c.order, b, err)
		}
	}
	p := &point{typ: tUint16, pos: 6, scale: 1}
	if _, err := p.decode(frame); err != errTooShort {
		t.Errorf("past the end: %v", err)
	}
	p = &point{typ: tInt16, scale: 0.1, scaled: true}
	if _, err := p.bytes(sdk.Float(4000)); err == nil {
		t.Error("40000 accepted as an int16")
	}
	if s, _ := p.text(sdk.Float(-12.3)); s != "-123" {
		t.Errorf("scaled text %q", s)
	}
}

// Every mistake of a table is reported at once, each at its line.
func TestConfigErrors(t *testing.T) {
	conf := `device = "scale.1"
port = ""
parity = "mark"
mode = "stream"
request = 'R\r\n'
delimiter = '\r\n'
frame_length = 8
checksum = "crc32"
[[points]]
name = "a"
pattern = '(unclosed'
[[points]]
name = "b"
pattern = 'W:(\d+)'
[[points]]
name = "c"
position = 1
type = "string"
[[points]]
name = "d"
pattern = '(?P<value>\d+)'
write = 'S${value}\r\n'
[[points]]
name = "e"
pattern = '(?P<value>\d+)'
access = "pubsub"
[[points]]
name = "f"
pattern = '(?P<value>\d+)'
access = "sub"
write = 'S${valeu}'
[[points]]
name = "g"
position = 7
type = "uint16"
`
	_, err := (&Serial{}).Init(context.Background(), sdktest.Request(conf))
	errs := sdk.AsConfigErrors(err)
	want := []string{
		`test.toml:1: device: "scale.1": a device name cannot hold dots`,
		`test.toml:2: port: is required`,
		`test.toml:3: parity: "mark": want none, even or odd`,
		`test.toml:5: request: only applies to mode = "poll"`,
		`test.toml:8: checksum: "crc32": want none, sum8, xor8 or crc16-modbus`,
		`test.toml:7: frame_length: delimiter and frame_length are both set`,
		`test.toml:11: points[0].pattern: error parsing regexp`,
		`test.toml:14: points[1].pattern: "W:(\\d+)" has no group named value`,
		`test.toml:18: points[2].type: string has no binary form`,
		`test.toml:22: points[3].write: only sub and pubsub points are written`,
		`test.toml:23: points[4].write: a pubsub point needs a write template`,
		`test.toml:31: points[5].write: unknown placeholder ${valeu}`,
		`test.toml:34: points[6].position: uint16 at byte 7 runs past the data of a 8-byte frame`,
	}
	if len(errs) != len(want) {
		t.Errorf("%d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
}

func TestConfigNoFraming(t *testing.T) {
	_, err := (&Serial{}).Init(context.Background(), sdktest.Request(`device = "d"
port = "/dev/null"
mode = "poll"
timeout = "2s"
[[points]]
name = "v"
pattern = '(?P<value>.*)'
type = "float32"
`))
	for _, w := range []string{"no framing", `mode = "poll" needs the request`, "longer than interval",
		"float32: a pattern's text reads as"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in: %v", w, err)
		}
	}
}

// The sample configuration is valid as it stands, and declares what it says.
func TestSampleConfig(t *testing.T) {
	conf := strings.NewReplacer("[[inputs.serial]]", "", "[[inputs.serial.points]]", "[[points]]").Replace(sampleConf)
	resp, err := (&Serial{}).Init(context.Background(), sdktest.Request(conf))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Points) != 2 || resp.Points[1].Access != sdk.AccessPubSub || resp.Points[0].Kind != sdk.KindFloat {
		t.Fatalf("points %+v", resp.Points)
	}
}

// FuzzFrame: any bytes through every framing and both point kinds,
// with every checksum: nothing panics, frames respect their bounds.
func FuzzFrame(f *testing.F) {
	f.Add([]byte("W: 12.34 kg\r\n"), uint8(0), uint8(0))
	f.Add([]byte("\x00\xff\x01\x03\x08\x00\x01\xe2\x40\x80\x00\x44\xbb\x12\x34"), uint8(1), uint8(3))
	f.Add([]byte("\x02T:1\x03\x02"), uint8(2), uint8(1))
	re := mustPoint(`W:\s*(?P<value>[-+0-9.]+)`, tFloat64)
	bin := []*point{{typ: tUint32, pos: 3, order: orderCDAB, scale: 1}, {typ: tFloat64, pos: 1, scale: 2, scaled: true},
		{typ: tInt8, pos: 0, scale: 1}, {typ: tBool, pos: 200, scale: 1}}
	f.Fuzz(func(t *testing.T, data []byte, mode, ck uint8) {
		var c counters
		fr := framer{c: &c, timeout: time.Second, start: []byte("\x01\x03")}
		switch mode % 3 {
		case 0:
			fr.delim, fr.start = []byte("\r\n"), nil
		case 1:
			fr.length = 13
		case 2:
			fr.gap = time.Millisecond
		}
		cs := checksum(ck % 4)
		at := time.Unix(0, 0)
		out := func(b []byte) {
			if len(b) > maxFrame {
				t.Fatalf("frame of %d bytes", len(b))
			}
			payload, _, _ := cs.verify(b)
			_, _ = re.decode(payload)
			for _, p := range bin {
				_, _ = p.decode(payload)
			}
		}
		for len(data) > 0 { // arrive in chunks of up to 7 bytes, 1ms apart
			n := min(len(data), 7)
			fr.feed(data[:n], at, out)
			data, at = data[n:], at.Add(time.Millisecond)
		}
		fr.expire(at.Add(time.Hour), out)
	})
}

func mustPoint(pattern string, typ valueType) *point {
	p := &point{typ: typ, scale: 1, pos: -1}
	p.re = regexp.MustCompile(pattern)
	p.group = p.re.SubexpIndex("value")
	return p
}
