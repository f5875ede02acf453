package serial_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/edgepipe/edgepipe/plugins/inputs/serial"
	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

func factory() sdk.Plugin { return &serial.Serial{} }

// device is a serial device emulated on the master side of a pty pair;
// the plugin opens the slave side by its path, in this process or (gRPC
// mode) through the plugin's server, exactly as it opens a real port.
type device struct {
	t      *testing.T
	master *os.File
	slave  *os.File // kept open: without it, reads on the master fail between two opens of the port
	rx     chan []byte
	mu     sync.Mutex
	buf    []byte // what the plugin sent, not yet taken by expect
}

// newDevice opens a pty pair and puts it in raw mode before anything is
// written: a terminal's line discipline would otherwise turn \r into \n
// and echo the bytes back. (go.bug.st/serial sets raw mode again when the
// plugin opens the port, but bytes written before that would be mangled.)
func newDevice(t *testing.T) *device {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := makeRaw(int(slave.Fd())); err != nil {
		t.Fatalf("raw mode: %v", err)
	}
	master = pollable(t, master)
	d := &device{t: t, master: master, slave: slave, rx: make(chan []byte, 64)}
	go func() {
		defer close(d.rx)
		for {
			b := make([]byte, 256)
			n, err := master.Read(b)
			if n > 0 {
				d.rx <- b[:n]
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(d.unplug)
	return d
}

// pollable returns the master as a non-blocking file served by Go's
// poller. pty.Open hands it out in blocking mode, and then Close cannot
// interrupt the emulator's pending Read: the descriptor stays open and the
// plugin never sees the hang-up that an unplugged adapter causes.
func pollable(t *testing.T, f *os.File) *os.File {
	t.Helper()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx")
}

func makeRaw(fd int) error {
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 1, 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, tio)
}

func (d *device) path() string { return d.slave.Name() }

// unplug closes both ends, as pulling a USB adapter does: the plugin's
// reads fail and the device node goes away.
func (d *device) unplug() {
	_ = d.master.Close()
	_ = d.slave.Close()
}

// send writes bytes as the device.
func (d *device) send(b []byte) {
	d.t.Helper()
	if _, err := d.master.Write(b); err != nil {
		d.t.Errorf("device write: %v", err)
	}
}

// expect waits until the plugin has sent want and consumes up to it.
func (d *device) expect(want []byte, within time.Duration) {
	d.t.Helper()
	deadline := time.After(within)
	for {
		d.mu.Lock()
		if i := bytes.Index(d.buf, want); i >= 0 {
			d.buf = d.buf[i+len(want):]
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
		select {
		case b, ok := <-d.rx:
			if !ok {
				d.t.Fatalf("device closed while waiting for %q", want)
			}
			d.mu.Lock()
			d.buf = append(d.buf, b...)
			d.mu.Unlock()
		case <-deadline:
			d.t.Fatalf("device did not receive %q within %s (got %q)", want, within, d.buf)
		}
	}
}

// stream runs p's Stream until the test ends and returns its batches.
func stream(t *testing.T, p sdk.Plugin) <-chan sdk.Batch {
	t.Helper()
	out := make(chan sdk.Batch, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.(sdk.StreamingInput).Stream(ctx, func(f *sdk.Frame) {
			for _, b := range f.Batches {
				out <- b
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return out
}

func next(t *testing.T, ch <-chan sdk.Batch) sdk.Batch {
	t.Helper()
	select {
	case b := <-ch:
		return b
	case <-time.After(5 * time.Second):
		t.Fatal("no batch within 5s")
	}
	return sdk.Batch{}
}

func pointOf(t *testing.T, b sdk.Batch, name string) sdk.Point {
	t.Helper()
	for _, p := range b.Points {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("batch %+v has no point %q", b, name)
	return sdk.Point{}
}

func wantFloat(t *testing.T, b sdk.Batch, name string, want float64) {
	t.Helper()
	p := pointOf(t, b, name)
	if p.Quality != sdk.QualityGood || p.Value.Kind() != sdk.KindFloat || math.Abs(p.Value.FloatValue()-want) > 1e-9 {
		t.Fatalf("%s = %v (%s), want %v good", name, p.Value, p.Quality, want)
	}
}

func wantBad(t *testing.T, b sdk.Batch, names ...string) {
	t.Helper()
	for _, n := range names {
		if p := pointOf(t, b, n); p.Quality != sdk.QualityBad {
			t.Fatalf("%s = %v (%s), want quality bad", n, p.Value, p.Quality)
		}
	}
}

func health(t *testing.T, p sdk.Plugin) sdk.Health {
	t.Helper()
	h, err := p.(sdk.HealthReporter).Health(context.Background())
	if err != nil {
		t.Fatalf("Health: %v", err)
	}
	return h
}

// TestStreamingScale: a scale that prints its weight by itself. Noise
// without the start bytes is skipped, a frame cut short by the start of
// the next one is dropped (not misread as its neighbour), a line that
// matches no point is counted, the tare is written with its template and
// arrives at the device as bytes, and a scale gone silent is reported bad.
func TestStreamingScale(t *testing.T) {
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		dev := newDevice(t)
		sdktest.Init(t, p, `device = "scale1"
port = "`+dev.path()+`"
baud_rate = 115200
mode = "stream"
interval = "250ms"
timeout = "1s"
delimiter = '\r\n'
start = 'W:'
[[points]]
name = "weight"
pattern = 'W:\s*(?P<value>[-+0-9.]+)\s*kg'
unit = "kg"
[[points]]
name = "tare"
pattern = 'W:.*T:\s*(?P<value>[-+0-9.]+)'
access = "pubsub"
write = 'T${value}\r\n'
`)
		batches := stream(t, p)

		dev.send([]byte("W: 12.34 kg T: 0\r\n"))
		b := next(t, batches)
		if b.Device != "scale1" || len(b.Points) != 2 {
			t.Fatalf("batch %+v", b)
		}
		wantFloat(t, b, "weight", 12.34)

		// Garbage, then a frame cut short by a reset of the scale.
		dev.send([]byte("\x00\xff#junk\r\nW: 99"))
		dev.send([]byte("W: 12.50 kg T: 1.5\r\n"))
		b = next(t, batches)
		wantFloat(t, b, "weight", 12.50)
		wantFloat(t, b, "tare", 1.5)

		dev.send([]byte("W: ?? kg\r\nW: -0.25 kg T: 1.5\r\n"))
		wantFloat(t, next(t, batches), "weight", -0.25)

		res, err := p.(sdk.Writer).Write(context.Background(),
			[]sdk.WriteRequest{{Device: "scale1", Name: "tare", Value: sdk.Float(2.5)}})
		if err != nil || len(res) != 1 || res[0].Error != "" {
			t.Fatalf("Write: %v %+v", err, res)
		}
		dev.expect([]byte("T2.5\r\n"), 3*time.Second)

		// Silent now: within 2 x interval both points go bad, once.
		b = next(t, batches)
		wantBad(t, b, "weight", "tare")

		h := health(t, p)
		c := h.Counters
		if !h.OK || c["frames"] != 3 || c["frames_short"] != 1 || c["frames_unmatched"] != 1 ||
			c["noise_bytes"] < 8 || c["writes"] != 1 {
			t.Fatalf("health %+v", h)
		}
	})
}

// meter emulates a polled energy meter with a Modbus-like binary
// protocol: the request 01 03 00 00 00 04 + CRC is answered with
// 01 03 08, the energy (uint32, 0.01 kWh, big-endian), the power
// (float32 W, words swapped: CDAB) and the CRC. Each reply is chosen by
// the script; writes (01 06 addr value CRC) are checked and echoed.
type meter struct {
	dev     *device
	replies chan func(good []byte) []byte
	written chan uint16
}

func crc(b []byte) []byte {
	c := uint16(0xFFFF)
	for _, x := range b {
		c ^= uint16(x)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xA001
			} else {
				c >>= 1
			}
		}
	}
	return append(append([]byte{}, b...), byte(c), byte(c>>8))
}

func meterReply(energy uint32, power float32) []byte {
	b := []byte{1, 3, 8}
	b = binary.BigEndian.AppendUint32(b, energy)
	pw := math.Float32bits(power)
	b = binary.BigEndian.AppendUint16(b, uint16(pw))
	b = binary.BigEndian.AppendUint16(b, uint16(pw>>16))
	return crc(b)
}

func startMeter(t *testing.T) *meter {
	m := &meter{dev: newDevice(t), replies: make(chan func([]byte) []byte, 16), written: make(chan uint16, 4)}
	read := crc([]byte{1, 3, 0, 0, 0, 4})
	go func() {
		var buf []byte
		for b := range m.dev.rx {
			buf = append(buf, b...)
			for len(buf) >= 8 {
				req := buf[:8]
				switch {
				case bytes.Equal(req, read):
					var reply func([]byte) []byte
					select {
					case reply = <-m.replies:
					default:
						reply = func(good []byte) []byte { return good } // script done: answer well
					}
					if out := reply(meterReply(123456, 1500.5)); len(out) > 0 {
						_, _ = m.dev.master.Write(out)
					}
				case req[1] == 6 && bytes.Equal(crc(req[:6]), req):
					_, _ = m.dev.master.Write(req) // echo, as Modbus does
					m.written <- binary.BigEndian.Uint16(req[4:6])
				default:
					t.Errorf("meter: unexpected request % x", req)
				}
				buf = buf[8:]
			}
		}
	}()
	return m
}

// TestPolledMeter: a meter asked every interval, answering with a binary
// frame and its CRC. Noise before a reply is skipped thanks to the start
// bytes; a reply with a bad CRC, a reply cut short and no reply at all
// each make that poll's points bad, and are counted; a write goes out
// with its CRC and the meter is read back at once.
func TestPolledMeter(t *testing.T) {
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		m := startMeter(t)
		ok := func(good []byte) []byte { return good }
		m.replies <- ok
		m.replies <- func(good []byte) []byte { return append([]byte("\x00\xff\x01\x7fnoise"), good...) }
		m.replies <- func(good []byte) []byte { return append(good[:len(good)-1:len(good)-1], good[len(good)-1]^0x55) }
		m.replies <- func(good []byte) []byte { return good[:7] }
		m.replies <- func([]byte) []byte { return nil }
		m.replies <- ok
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
scale = 0.01
unit = "kWh"
[[points]]
name = "power"
position = 7
type = "float32"
byte_order = "CDAB"
unit = "W"
[[points]]
name = "limit"
type = "uint16"
access = "sub"
write = '\x01\x06\x00\x10${raw}${checksum}'
`)
		batches := stream(t, p)
		good := func(b sdk.Batch) {
			t.Helper()
			wantFloat(t, b, "energy", 1234.56)
			wantFloat(t, b, "power", 1500.5)
		}
		good(next(t, batches))                          // 1: clean reply
		good(next(t, batches))                          // 2: noise, then the reply
		wantBad(t, next(t, batches), "energy", "power") // 3: bad CRC
		wantBad(t, next(t, batches), "energy", "power") // 4: cut short
		wantBad(t, next(t, batches), "energy", "power") // 5: silent
		good(next(t, batches))                          // 6: back

		m.replies <- ok // for the read-back
		res, err := p.(sdk.Writer).Write(context.Background(),
			[]sdk.WriteRequest{{Device: "meter1", Name: "limit", Value: sdk.Uint(4660)}})
		if err != nil || res[0].Error != "" {
			t.Fatalf("Write: %v %+v", err, res)
		}
		select {
		case v := <-m.written:
			if v != 4660 {
				t.Fatalf("meter got %d", v)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("the write did not reach the meter")
		}
		// The read-back comes marked (a regular poll may come first).
		for i := 0; ; i++ {
			b := next(t, batches)
			if b.ReadBack {
				good(b)
				break
			}
			if i == 10 {
				t.Fatal("no batch marked ReadBack after the write")
			}
		}

		c := health(t, p).Counters
		if c["frames_bad_checksum"] != 1 || c["frames_short"] != 1 || c["poll_timeouts"] != 3 ||
			c["noise_bytes"] < 8 || c["writes"] != 1 {
			t.Fatalf("counters %v", c)
		}
	})
}

// TestPortUnplugged: a port that goes away is reported (points bad,
// health not OK) and reopened with backoff once it is back, without a
// restart. The port is a symlink, as udev's /dev/serial/by-id names are,
// so the replugged adapter appears under the same name.
func TestPortUnplugged(t *testing.T) {
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		link := filepath.Join(t.TempDir(), "ttyUSB0")
		dev := newDevice(t)
		if err := os.Symlink(dev.path(), link); err != nil {
			t.Fatal(err)
		}
		sdktest.Init(t, p, `device = "scale1"
port = "`+link+`"
delimiter = '\n'
[[points]]
name = "weight"
pattern = '(?P<value>[0-9.]+)'
`)
		batches := stream(t, p)
		dev.send([]byte("1.5\n"))
		wantFloat(t, next(t, batches), "weight", 1.5)

		dev.unplug()
		wantBad(t, next(t, batches), "weight")
		if h := health(t, p); h.OK || h.Reason == "" {
			t.Fatalf("health after unplug: %+v", h)
		}

		dev2 := newDevice(t)
		if err := os.Remove(link); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(dev2.path(), link); err != nil {
			t.Fatal(err)
		}
		dev2.send([]byte("2.5\n"))
		wantFloat(t, next(t, batches), "weight", 2.5)
		if h := health(t, p); !h.OK || h.Counters["port_lost"] != 1 || h.Counters["opens"] != 2 {
			t.Fatalf("health after replug: %+v", h)
		}
	})
}
