package camera

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"go.bug.st/serial"

	"github.com/edgepipe/edgepipe/internal/backoff"
)

// serialPort is what the source needs of a serial port; go.bug.st/serial's
// Port has it. A Read that times out returns 0 bytes and no error.
type serialPort interface {
	io.ReadWriteCloser
	SetReadTimeout(time.Duration) error
	ResetInputBuffer() error
}

// readChunk is how much of the picture one READ_FBUF asks for: large enough
// that the per-command overhead (21 bytes) is small, small enough that a
// lost byte costs one timeout on a short read rather than on the picture.
const readChunk = 2048

// Reopening a port that failed waits by the shared backoff policy (a
// random part of a ceiling of 500 ms doubling per failure up to 30 s), so a
// camera that is unplugged is not reset in a loop.
var reopenPolicy = backoff.Policy{Initial: 500 * time.Millisecond, Max: 30 * time.Second}

// serialSource takes pictures from a VC0706 module. The port stays open
// between pictures: opening it resets the camera, which takes a second or
// more. Any I/O or protocol error closes it; the next capture reopens it
// after the backoff.
type serialSource struct {
	path    string
	baud    int
	size    byte // picture size code (resolutions)
	timeout time.Duration
	maxSize int64
	open    func(path string, baud int) (serialPort, error)

	mu       sync.Mutex // one capture at a time; Close waits for it
	port     serialPort
	ready    bool   // reset and size set since the port was opened
	pending  []byte // bytes read but not yet consumed
	tmp      []byte
	retry    *backoff.Backoff
	nextOpen time.Time
}

func newSerialSource(path string, baud int, size byte, timeout time.Duration, maxSize int64) *serialSource {
	return &serialSource{path: path, baud: baud, size: size, timeout: timeout, maxSize: maxSize,
		open: openSerial, tmp: make([]byte, 4096), retry: backoff.New(reopenPolicy)}
}

func openSerial(path string, baud int) (serialPort, error) {
	return serial.Open(path, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
}

func (s *serialSource) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.port == nil {
		return nil
	}
	err := s.port.Close()
	s.port = nil
	return err
}

func (s *serialSource) capture(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.port == nil {
		if wait := time.Until(s.nextOpen); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
		p, err := s.open(s.path, s.baud)
		if err != nil {
			s.backoff()
			return nil, fmt.Errorf("serial %s: %w", s.path, err)
		}
		s.port, s.ready, s.pending = p, false, s.pending[:0]
		_ = p.ResetInputBuffer()
	}
	// Cancelling ctx closes the port, which ends a blocked read at once
	// instead of after the timeout.
	port := s.port
	stop := context.AfterFunc(ctx, func() { _ = port.Close() })
	defer stop()
	var data []byte
	err := s.setup()
	if err == nil {
		data, err = s.take()
	}
	if err != nil && !errors.Is(err, errTooLarge) && !errors.Is(err, errNotJPEG) {
		_ = s.port.Close()
		s.port = nil
		s.backoff()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("serial %s: %w", s.path, err)
	}
	s.retry.Reset()
	if err != nil {
		return nil, fmt.Errorf("serial %s: %w", s.path, err)
	}
	return data, nil
}

func (s *serialSource) backoff() {
	s.nextOpen = time.Now().Add(s.retry.Next())
}

// setup resets a freshly opened camera and sets its picture size. The size
// is written only when it differs: it lives in the module's EEPROM and is
// read at boot, so a change costs a write and a second reset.
func (s *serialSource) setup() error {
	if s.ready {
		return nil
	}
	if err := s.reset(); err != nil {
		return err
	}
	cur, err := s.call(cmdReadData, 1, 0x04, 0x01, regImageSize>>8, regImageSize&0xFF)
	if err != nil {
		return fmt.Errorf("reading the picture size: %w", err)
	}
	if cur[0] != s.size {
		if _, err := s.call(cmdWriteData, 0, 0x04, 0x01, regImageSize>>8, regImageSize&0xFF, s.size); err != nil {
			return fmt.Errorf("setting the picture size: %w", err)
		}
		if err := s.reset(); err != nil {
			return err
		}
	}
	s.ready = true
	return nil
}

// reset restarts the camera and waits for the end of its boot text.
func (s *serialSource) reset() error {
	if _, err := s.call(cmdSystemReset, 0); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	deadline := time.Now().Add(s.timeout)
	marker := []byte("Init end")
	for {
		if i := bytes.Index(s.pending, marker); i >= 0 {
			s.consume(i + len(marker))
			return nil
		}
		if len(s.pending) > len(marker) {
			s.consume(len(s.pending) - len(marker))
		}
		if err := s.fill(deadline); err != nil {
			return fmt.Errorf("waiting for the camera to boot after reset: %w", err)
		}
	}
}

// take takes one picture: freeze the frame, read its length and its bytes,
// resume live video.
func (s *serialSource) take() ([]byte, error) {
	if _, err := s.call(cmdFBufCtrl, 0, fbufStopCurrent); err != nil {
		return nil, fmt.Errorf("stopping the frame: %w", err)
	}
	l, err := s.call(cmdGetFBufLen, 4, 0x00)
	if err != nil {
		return nil, fmt.Errorf("reading the frame length: %w", err)
	}
	n := int64(binary.BigEndian.Uint32(l))
	if n > s.maxSize {
		if _, err := s.call(cmdFBufCtrl, 0, fbufResume); err != nil {
			return nil, fmt.Errorf("resuming: %w", err)
		}
		return nil, fmt.Errorf("%w (%d > %d bytes)", errTooLarge, n, s.maxSize)
	}
	if n == 0 {
		return nil, errors.New("camera reports an empty frame")
	}
	// Lengths asked for are multiples of 4, as the modules require; the
	// padding past the frame is cut off.
	buf := make([]byte, (n+3)&^3)
	for addr := 0; addr < len(buf); addr += readChunk {
		part := buf[addr:min(addr+readChunk, len(buf))]
		if err := s.send(readFBufCommand(uint32(addr), uint32(len(part)))); err != nil {
			return nil, err
		}
		if _, err := s.expect(cmdReadFBuf, 0); err != nil {
			return nil, fmt.Errorf("reading the frame at %d: %w", addr, err)
		}
		if err := s.readFull(part); err != nil {
			return nil, fmt.Errorf("reading the frame at %d: %w", addr, err)
		}
		if _, err := s.expect(cmdReadFBuf, 0); err != nil {
			return nil, fmt.Errorf("reading the frame at %d: %w", addr, err)
		}
	}
	if _, err := s.call(cmdFBufCtrl, 0, fbufResume); err != nil {
		return nil, fmt.Errorf("resuming: %w", err)
	}
	return buf[:n], checkJPEG(buf[:n])
}

// call sends a command and returns the data of its response, which must
// be want bytes long.
func (s *serialSource) call(cmd byte, want int, args ...byte) ([]byte, error) {
	if err := s.send(vcCommand(cmd, args...)); err != nil {
		return nil, err
	}
	return s.expect(cmd, want)
}

func (s *serialSource) send(frame []byte) error {
	if _, err := s.port.Write(frame); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// expect reads until the response to cmd, with want data bytes, is in.
func (s *serialSource) expect(cmd byte, want int) ([]byte, error) {
	deadline := time.Now().Add(s.timeout)
	for {
		data, used, err := parseResponse(s.pending, cmd)
		if !errors.Is(err, errShort) {
			out := append([]byte(nil), data...)
			s.consume(used)
			if err == nil && len(out) != want {
				err = fmt.Errorf("answer to command 0x%02x has %d data bytes, want %d", cmd, len(out), want)
			}
			return out, err
		}
		s.consume(used)
		if err := s.fill(deadline); err != nil {
			return nil, fmt.Errorf("waiting for the answer to command 0x%02x: %w", cmd, err)
		}
	}
}

// readFull reads exactly len(dst) raw bytes: the picture data, which may
// hold any byte and so is never scanned for a header.
func (s *serialSource) readFull(dst []byte) error {
	deadline := time.Now().Add(s.timeout)
	n := copy(dst, s.pending)
	s.consume(n)
	for n < len(dst) {
		rem := time.Until(deadline)
		if rem <= 0 {
			return fmt.Errorf("%d of %d bytes within timeout %v", n, len(dst), s.timeout)
		}
		_ = s.port.SetReadTimeout(rem)
		m, err := s.port.Read(dst[n:])
		n += m
		if err != nil {
			return err
		}
	}
	return nil
}

// fill reads what the port has into pending, waiting until deadline.
func (s *serialSource) fill(deadline time.Time) error {
	for {
		rem := time.Until(deadline)
		if rem <= 0 {
			return fmt.Errorf("no answer within timeout %v", s.timeout)
		}
		_ = s.port.SetReadTimeout(rem)
		n, err := s.port.Read(s.tmp)
		s.pending = append(s.pending, s.tmp[:n]...)
		if err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
	}
}

func (s *serialSource) consume(n int) {
	s.pending = s.pending[:copy(s.pending, s.pending[n:])]
}
