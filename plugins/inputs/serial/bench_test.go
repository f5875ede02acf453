package serial

import (
	"context"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// newBenchRun builds the stream loop's state for a configuration without
// a port: bytes are fed to it as the reader would deliver them, so the
// figure covers framing, checksum, decoding and batch building.
func newBenchRun(b *testing.B, conf string) (*run, *int) {
	s := &Serial{}
	if _, err := s.Init(context.Background(), sdktest.Request(conf)); err != nil {
		b.Fatal(err)
	}
	n := new(int)
	r := &run{s: s, set: s.set, emit: func(f *sdk.Frame) { *n += f.NumPoints() },
		fr:       framer{delim: s.set.delim, length: s.set.length, start: s.set.start, timeout: s.set.timeout, c: &s.c},
		lastGood: make([]time.Time, len(s.set.read)), isBad: make([]bool, len(s.set.read))}
	return r, n
}

func benchFrames(b *testing.B, r *run, frame []byte, points *int, wantPerFrame int) {
	// 64 frames per feed, as a busy line delivers several frames per read.
	chunk := make([]byte, 0, 64*len(frame))
	for range 64 {
		chunk = append(chunk, frame...)
	}
	at := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.now = at
		r.fr.feed(chunk, at, r.onFrame)
	}
	b.ReportMetric(float64(b.N)*64/b.Elapsed().Seconds(), "frames/s")
	if *points != b.N*64*wantPerFrame {
		b.Fatalf("%d points from %d frames", *points, b.N*64)
	}
}

// BenchmarkDecodeText: "W: 12.34 kg T: 0.50\r\n" lines, two regex points.
func BenchmarkDecodeText(b *testing.B) {
	r, n := newBenchRun(b, `device = "scale1"
port = "/dev/null"
delimiter = '\r\n'
start = 'W:'
[[points]]
name = "weight"
pattern = 'W:\s*(?P<value>[-+0-9.]+)'
[[points]]
name = "tare"
pattern = 'T:\s*(?P<value>[-+0-9.]+)'
`)
	benchFrames(b, r, []byte("W: 12.34 kg T: 0.50\r\n"), n, 2)
}

// BenchmarkDecodeBinary: 13-byte meter frames, uint32 + float32 + CRC16.
func BenchmarkDecodeBinary(b *testing.B) {
	r, n := newBenchRun(b, `device = "meter1"
port = "/dev/null"
frame_length = 13
start = '\x01\x03\x08'
checksum = "crc16-modbus"
[[points]]
name = "energy"
position = 3
type = "uint32"
scale = 0.01
[[points]]
name = "power"
position = 7
type = "float32"
`)
	f := []byte{1, 3, 8}
	f = binary.BigEndian.AppendUint32(f, 123456)
	f = binary.BigEndian.AppendUint32(f, math.Float32bits(1500.5))
	f = ckCRC16.appendSum(f, f)
	benchFrames(b, r, f, n, 2)
}
