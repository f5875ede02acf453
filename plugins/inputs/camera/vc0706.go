package camera

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// The VC0706 serial protocol (VC0706/VC0703 JPEG camera modules, sold as
// "TTL serial JPEG camera"), as this package speaks it. All numbers are
// big-endian; the serial number byte is 0x00 (one camera per port).
//
//	request:  0x56 0x00 CMD LEN ARGS[LEN]
//	response: 0x76 0x00 CMD STATUS LEN DATA[LEN]     STATUS 0x00 = done
//
// Commands used:
//
//	SYSTEM_RESET  56 00 26 00                       -> 76 00 26 00 00, then the
//	              boot text ("VC0703 1.00 ... Init end\r\n")
//	READ_DATA     56 00 30 04 04 01 00 19           -> 76 00 30 00 01 SS
//	WRITE_DATA    56 00 31 05 04 01 00 19 SS        -> 76 00 31 00 00
//	              (SS, the picture size kept in the module's EEPROM at 0x0019:
//	              0x00 640x480, 0x11 320x240, 0x22 160x120; read at boot)
//	FBUF_CTRL     56 00 36 01 00   stop current frame (take the picture)
//	              56 00 36 01 03   resume frame (back to live video)
//	                                                -> 76 00 36 00 00
//	GET_FBUF_LEN  56 00 34 01 00                    -> 76 00 34 00 04 L L L L
//	READ_FBUF     56 00 32 0C 00 0A A A A A N N N N D D
//	              (buffer 0 = current frame, mode 0x0A = MCU transfer,
//	              address A, length N a multiple of 4, delay D in 0.01 ms)
//	                                                -> 76 00 32 00 00
//	              then N bytes of JPEG, then 76 00 32 00 00
//
// A status other than 0 is refused with its code (1 command not received,
// 2 data length error, 3 data format error, 4 cannot execute now, 5
// executed wrongly).
const (
	vcRequest  = 0x56
	vcResponse = 0x76
	vcSerial   = 0x00

	cmdSystemReset = 0x26
	cmdReadData    = 0x30
	cmdWriteData   = 0x31
	cmdReadFBuf    = 0x32
	cmdGetFBufLen  = 0x34
	cmdFBufCtrl    = 0x36

	fbufStopCurrent = 0x00
	fbufResume      = 0x03

	readFBufMode  = 0x0A
	readFBufDelay = 0x000A // 0.1 ms between bursts, as modules are usually driven

	regImageSize = 0x0019
)

// resolutions maps the configured size to the module's size code.
var resolutions = map[string]byte{"640x480": 0x00, "320x240": 0x11, "160x120": 0x22}

// vcCommand builds a request frame.
func vcCommand(cmd byte, args ...byte) []byte {
	b := make([]byte, 0, 4+len(args))
	b = append(b, vcRequest, vcSerial, cmd, byte(len(args)))
	return append(b, args...)
}

func readFBufCommand(addr, n uint32) []byte {
	args := []byte{0x00, readFBufMode}
	args = binary.BigEndian.AppendUint32(args, addr)
	args = binary.BigEndian.AppendUint32(args, n)
	args = binary.BigEndian.AppendUint16(args, readFBufDelay)
	return vcCommand(cmdReadFBuf, args...)
}

// errShort means a response needs more bytes than were given.
var errShort = errors.New("short response")

// statusError is a response with a non-zero status.
type statusError struct {
	cmd, status byte
}

func (e statusError) Error() string {
	reason := map[byte]string{1: "command not received", 2: "data length error", 3: "data format error",
		4: "cannot execute now", 5: "executed wrongly"}[e.status]
	if reason == "" {
		reason = "unknown status"
	}
	return fmt.Sprintf("camera refused command 0x%02x: status %d (%s)", e.cmd, e.status, reason)
}

// parseResponse finds the response to cmd in b. Bytes before it that
// cannot start it (boot text, line noise, a late answer to an earlier
// command) are skipped. It returns the response's data, the number of
// bytes of b consumed (skipped bytes included), and errShort when b ends
// before the response does; a non-zero status is a statusError, consumed.
// data aliases b.
func parseResponse(b []byte, cmd byte) (data []byte, consumed int, err error) {
	head := []byte{vcResponse, vcSerial, cmd}
	start := bytes.Index(b, head)
	if start < 0 {
		// Keep a tail that may be the start of a header.
		keep := 0
		for k := min(len(head)-1, len(b)); k > 0; k-- {
			if bytes.HasPrefix(head, b[len(b)-k:]) {
				keep = k
				break
			}
		}
		return nil, len(b) - keep, errShort
	}
	if len(b)-start < 5 {
		return nil, start, errShort
	}
	status, n := b[start+3], int(b[start+4])
	end := start + 5 + n
	if len(b) < end {
		return nil, start, errShort
	}
	if status != 0 {
		return nil, end, statusError{cmd: cmd, status: status}
	}
	return b[start+5 : end], end, nil
}
