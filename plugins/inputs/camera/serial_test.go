package camera

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image/jpeg"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// vcEmu is a VC0706 camera module on the far side of a pseudo-terminal:
// it answers the commands the driver uses, keeps the picture size in its
// "EEPROM" (applied at reset, as modules do), and serves a real JPEG of
// that size in the chunks asked for.
type vcEmu struct {
	t      testing.TB
	master *os.File
	slave  *os.File
	path   string

	mu      sync.Mutex
	eeprom  byte // picture size code as stored
	active  byte // picture size code in use since the last reset
	pics    map[byte][]byte
	frame   []byte // the frozen frame
	silent  int    // commands still to be ignored
	ignored chan struct{}
	resets  int
	reads   int // READ_FBUF commands served
	log     []byte
}

func newVCEmu(t testing.TB, pics map[byte][]byte) *vcEmu {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	// Raw from the start, or the line discipline would echo and
	// translate bytes before the driver sets its own mode.
	tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	if err := unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	// A pollable master, so that closing it ends a blocked Read: pty.Open
	// leaves it in blocking mode, where Close waits for the Read forever.
	fd, err := unix.Dup(int(master.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	master.Close()
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	master = os.NewFile(uintptr(fd), "ptmx")
	e := &vcEmu{t: t, master: master, slave: slave, path: slave.Name(), pics: pics, ignored: make(chan struct{}, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.serve()
	}()
	t.Cleanup(func() {
		master.Close()
		slave.Close()
		<-done
	})
	return e
}

func (e *vcEmu) serve() {
	buf := make([]byte, 0, 256)
	tmp := make([]byte, 256)
	for {
		n, err := e.master.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil {
			return
		}
		for {
			i := bytes.IndexByte(buf, vcRequest)
			if i < 0 {
				buf = buf[:0]
				break
			}
			buf = buf[i:]
			if len(buf) < 4 || len(buf) < 4+int(buf[3]) {
				break
			}
			cmd, args := buf[2], append([]byte(nil), buf[4:4+int(buf[3])]...)
			buf = buf[4+len(args):]
			if out := e.answer(cmd, args); out != nil {
				if _, err := e.master.Write(out); err != nil {
					return
				}
			}
		}
	}
}

func ok(cmd byte, data ...byte) []byte {
	return append([]byte{vcResponse, vcSerial, cmd, 0, byte(len(data))}, data...)
}

// answer executes one command and returns what the module sends back.
func (e *vcEmu) answer(cmd byte, args []byte) []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, cmd)
	if e.silent > 0 {
		e.silent--
		e.ignored <- struct{}{}
		return nil
	}
	switch cmd {
	case cmdSystemReset:
		e.resets++
		e.active, e.frame = e.eeprom, nil
		return append(ok(cmd), "\r\nVC0703 1.00\r\nCtrl infr exist\r\nUser-defined sensor\r\n625\r\nInit end\r\n"...)
	case cmdReadData:
		if !bytes.Equal(args, []byte{0x04, 0x01, 0x00, 0x19}) {
			return []byte{vcResponse, vcSerial, cmd, 3, 0}
		}
		return ok(cmd, e.eeprom)
	case cmdWriteData:
		if len(args) != 5 || !bytes.Equal(args[:4], []byte{0x04, 0x01, 0x00, 0x19}) {
			return []byte{vcResponse, vcSerial, cmd, 3, 0}
		}
		e.eeprom = args[4]
		return ok(cmd)
	case cmdFBufCtrl:
		switch args[0] {
		case fbufStopCurrent:
			e.frame = e.pics[e.active]
		case fbufResume:
			e.frame = nil
		default:
			return []byte{vcResponse, vcSerial, cmd, 3, 0}
		}
		return ok(cmd)
	case cmdGetFBufLen:
		return ok(cmd, binary.BigEndian.AppendUint32(nil, uint32(len(e.frame)))...)
	case cmdReadFBuf:
		if len(args) != 12 || args[0] != 0 || args[1] != readFBufMode {
			return []byte{vcResponse, vcSerial, cmd, 3, 0}
		}
		addr, n := binary.BigEndian.Uint32(args[2:]), binary.BigEndian.Uint32(args[6:])
		if e.frame == nil || n%4 != 0 {
			return []byte{vcResponse, vcSerial, cmd, 4, 0}
		}
		e.reads++
		out := ok(cmd)
		for i := addr; i < addr+n; i++ {
			if int(i) < len(e.frame) {
				out = append(out, e.frame[i])
			} else {
				out = append(out, 0)
			}
		}
		return append(out, ok(cmd)...)
	}
	return []byte{vcResponse, vcSerial, cmd, 1, 0}
}

func (e *vcEmu) set(f func(e *vcEmu)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f(e)
}

// serialConfig is a serial camera's table; extra's keys replace the
// defaults interval = "0s" and timeout = "2s".
func serialConfig(path, extra string) string {
	c := fmt.Sprintf("device = \"cam1\"\nsource = \"serial\"\nport = %q\n", path)
	if !strings.Contains(extra, "interval") {
		c += "interval = \"0s\"\n"
	}
	if !strings.Contains(extra, "timeout") {
		c += "timeout = \"2s\"\n"
	}
	return c + extra
}

// Pictures through the pty: on a capture write, then by interval; the
// size is written to the module only when it differs, followed by a reset.
func TestSerialCapture(t *testing.T) {
	pics := map[byte][]byte{0x00: testJPEG(t, 640, 480), 0x11: testJPEG(t, 320, 240), 0x22: testJPEG(t, 160, 120)}
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		e := newVCEmu(t, pics)
		sdktest.Init(t, p, serialConfig(e.path, "resolution = \"320x240\"\n"))
		frames := startStream(t, p)
		for range 2 {
			capture(t, p, "cam1")
			pic := nextPicture(t, frames, "cam1")
			if !bytes.Equal(pic.Data, pics[0x11]) {
				t.Fatalf("picture of %d bytes is not the 320x240 one", len(pic.Data))
			}
			cfg, _ := jpeg.DecodeConfig(bytes.NewReader(pic.Data))
			if cfg.Width != 320 || cfg.Height != 240 {
				t.Fatalf("picture %dx%d", cfg.Width, cfg.Height)
			}
		}
		e.set(func(e *vcEmu) {
			if e.resets != 2 || e.eeprom != 0x11 {
				t.Errorf("resets %d eeprom %#x, want 2 and 0x11", e.resets, e.eeprom)
			}
			// reset, read size, write size, reset, then per picture: stop,
			// length, reads, resume.
			want := []byte{cmdSystemReset, cmdReadData, cmdWriteData, cmdSystemReset, cmdFBufCtrl, cmdGetFBufLen}
			if !bytes.HasPrefix(e.log, want) {
				t.Errorf("commands % x, want them to start with % x", e.log, want)
			}
			if chunks := (len(pics[0x11]) + readChunk - 1) / readChunk; e.reads != 2*chunks {
				t.Errorf("%d READ_FBUF, want %d", e.reads, 2*chunks)
			}
		})
		wantCounters(t, health(t, p), map[string]uint64{"captures": 2, "failures": 0, "bytes": uint64(2 * len(pics[0x11]))})
	})
}

func TestSerialInterval(t *testing.T) {
	pics := map[byte][]byte{0x22: testJPEG(t, 160, 120)}
	sdktest.Run(t, factory, func(t *testing.T, p sdk.Plugin) {
		e := newVCEmu(t, pics)
		e.set(func(e *vcEmu) { e.eeprom = 0x22 })
		sdktest.Init(t, p, serialConfig(e.path, "resolution = \"160x120\"\ninterval = \"100ms\"\n"))
		frames := startStream(t, p)
		for range 3 {
			if pic := nextPicture(t, frames, "cam1"); !bytes.Equal(pic.Data, pics[0x22]) {
				t.Fatal("wrong picture")
			}
		}
		e.set(func(e *vcEmu) {
			if e.resets != 1 || bytes.Contains(e.log, []byte{cmdWriteData}) {
				t.Errorf("resets %d, commands % x: the size was right, nothing should be written", e.resets, e.log)
			}
		})
	})
}

// A camera that stops answering fails the capture; the port is closed and
// reopened (after the backoff) for the next one, which works again.
func TestSerialReopensAfterSilence(t *testing.T) {
	pics := map[byte][]byte{0x00: testJPEG(t, 64, 48)}
	a := newAttempts()
	sdktest.Run(t, a.factory, func(t *testing.T, p sdk.Plugin) {
		e := newVCEmu(t, pics)
		sdktest.Init(t, p, serialConfig(e.path, "timeout = \"300ms\"\n"))
		frames := startStream(t, p)
		capture(t, p, "cam1")
		nextPicture(t, frames, "cam1")
		a.next(t)
		e.set(func(e *vcEmu) { e.silent = 1 })
		capture(t, p, "cam1")
		<-e.ignored
		err := a.next(t)
		if err == nil || !strings.Contains(err.Error(), "serial "+e.path+": stopping the frame: waiting for the answer to command 0x36: no answer within timeout 300ms") {
			t.Fatalf("got %v", err)
		}
		capture(t, p, "cam1")
		nextPicture(t, frames, "cam1")
		if err := a.next(t); err != nil {
			t.Fatal(err)
		}
		e.set(func(e *vcEmu) {
			if e.resets != 2 {
				t.Errorf("%d resets, want 2 (the port was reopened)", e.resets)
			}
		})
		wantCounters(t, health(t, p), map[string]uint64{"captures": 2, "failures": 1})
	})
}

// A frame longer than max_size is refused without reading it, and the
// camera resumes live video.
func TestSerialTooLarge(t *testing.T) {
	pics := map[byte][]byte{0x00: padJPEG(t, testJPEG(t, 64, 48), 30_000)}
	a := newAttempts()
	sdktest.Run(t, a.factory, func(t *testing.T, p sdk.Plugin) {
		e := newVCEmu(t, pics)
		sdktest.Init(t, p, serialConfig(e.path, "max_size = \"20kB\"\n"))
		startStream(t, p)
		capture(t, p, "cam1")
		if err := a.next(t); err == nil || !strings.Contains(err.Error(), "picture larger than max_size (30000 > 20480 bytes)") {
			t.Fatalf("got %v", err)
		}
		e.set(func(e *vcEmu) {
			if e.reads != 0 || e.frame != nil {
				t.Errorf("%d reads, frozen %v", e.reads, e.frame != nil)
			}
		})
		wantCounters(t, health(t, p), map[string]uint64{"too_large": 1, "failures": 1})
	})
}

// A port that cannot be opened is a counted failure, not a crash.
func TestSerialNoPort(t *testing.T) {
	a := newAttempts()
	sdktest.Run(t, a.factory, func(t *testing.T, p sdk.Plugin) {
		sdktest.Init(t, p, serialConfig("/dev/does-not-exist-cam", ""))
		startStream(t, p)
		capture(t, p, "cam1")
		if err := a.next(t); err == nil || !strings.Contains(err.Error(), "serial /dev/does-not-exist-cam:") {
			t.Fatalf("got %v", err)
		}
		wantCounters(t, health(t, p), map[string]uint64{"failures": 1})
	})
}
