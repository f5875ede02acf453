package modbus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"testing"

	mb "github.com/simonvetter/modbus"
)

func withCRC(b ...byte) []byte { return binary.LittleEndian.AppendUint16(b, crc16(b)) }

// TestReadRTUResponse pins the framing of answers to the errors the input
// acts on (exception: the slave is alive; anything else: the stream is
// closed and reopened).
func TestReadRTUResponse(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		fc   byte
		want []byte
		err  error
	}{
		{"registers", withCRC(1, 3, 4, 0x12, 0x34, 0xAB, 0xCD), 3, []byte{4, 0x12, 0x34, 0xAB, 0xCD}, nil},
		{"write echo", withCRC(1, 6, 0, 7, 0xBE, 0xEF), 6, []byte{0, 7, 0xBE, 0xEF}, nil},
		{"exception", withCRC(1, 0x83, 2), 3, nil, mb.ErrIllegalDataAddress},
		{"gateway exception", withCRC(1, 0x84, 0x0B), 4, nil, mb.ErrGWTargetFailedToRespond},
		{"bad crc", []byte{1, 3, 2, 0, 1, 0, 0}, 3, nil, mb.ErrBadCRC},
		{"other unit", withCRC(2, 3, 2, 0, 1), 3, nil, mb.ErrBadUnitId},
		{"other function", withCRC(1, 4, 2, 0, 1), 3, nil, mb.ErrProtocolError},
		{"unknown exception", withCRC(1, 0x83, 0x42), 3, nil, mb.ErrProtocolError},
	}
	for _, c := range cases {
		got, err := readRTUResponse(bytes.NewReader(c.in), make([]byte, maxFrame), 1, c.fc)
		if !errors.Is(err, c.err) || c.err == nil && !bytes.Equal(got, c.want) {
			t.Errorf("%s: % x, %v; want % x, %v", c.name, got, err, c.want, c.err)
		}
	}
}

// FuzzRTUResponse: whatever a peer answers, reading it never panics, and
// an accepted answer is a whole frame of the function asked.
func FuzzRTUResponse(f *testing.F) {
	f.Add(withCRC(1, 3, 2, 0, 1), byte(3))
	f.Add(withCRC(1, 1, 1, 0x05), byte(1))
	f.Add(withCRC(1, 0x90, 4), byte(16))
	f.Add(withCRC(1, 3, 0xFF), byte(3))
	f.Add([]byte{1, 3}, byte(3))
	f.Fuzz(func(t *testing.T, in []byte, fc byte) {
		got, err := readRTUResponse(bytes.NewReader(in), make([]byte, maxFrame), 1, fc)
		if err != nil {
			return
		}
		if fc >= 1 && fc <= 4 {
			if len(got) < 1 || len(got) != 1+int(got[0]) {
				t.Fatalf("fc %d: payload % x does not hold its byte count", fc, got)
			}
		} else if len(got) != 4 {
			t.Fatalf("fc %d: payload % x is no echo", fc, got)
		}
	})
}

// mbap frames a PDU for unit 1 as Modbus TCP transaction txn.
func mbap(txn uint16, unit byte, pdu ...byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, txn)
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(1+len(pdu)))
	return append(append(b, unit), pdu...)
}

// TestReadMBAPResponse pins the Modbus TCP framing of answers to the
// errors the input acts on, as TestReadRTUResponse does for RTU, and that
// a late answer to an earlier transaction is passed over.
func TestReadMBAPResponse(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		fc   byte
		want []byte
		err  error
	}{
		{"registers", mbap(7, 1, 3, 4, 0x12, 0x34, 0xAB, 0xCD), 3, []byte{4, 0x12, 0x34, 0xAB, 0xCD}, nil},
		{"late answer first", append(mbap(6, 1, 3, 2, 9, 9), mbap(7, 1, 3, 2, 0, 1)...), 3, []byte{2, 0, 1}, nil},
		{"write echo", mbap(7, 1, 6, 0, 7, 0xBE, 0xEF), 6, []byte{0, 7, 0xBE, 0xEF}, nil},
		{"exception", mbap(7, 1, 0x83, 2), 3, nil, mb.ErrIllegalDataAddress},
		{"gateway exception from unit 255", mbap(7, 0xFF, 0x84, 0x0B), 4, nil, mb.ErrGWTargetFailedToRespond},
		{"other unit", mbap(7, 2, 3, 2, 0, 1), 3, nil, mb.ErrBadUnitId},
		{"other function", mbap(7, 1, 4, 2, 0, 1), 3, nil, mb.ErrProtocolError},
		{"short byte count", mbap(7, 1, 3, 4, 0, 1), 3, nil, mb.ErrProtocolError},
		{"short echo", mbap(7, 1, 6, 0, 7), 6, nil, mb.ErrProtocolError},
		{"zero length", []byte{0, 7, 0, 0, 0, 0, 1}, 3, nil, mb.ErrProtocolError},
		{"too long", []byte{0, 7, 0, 0, 1, 0, 1}, 3, nil, mb.ErrProtocolError},
		{"unknown exception", mbap(7, 1, 0x83, 0x42), 3, nil, mb.ErrProtocolError},
		{"cut short", mbap(7, 1, 3, 4, 0x12)[:9], 3, nil, io.ErrUnexpectedEOF},
	}
	for _, c := range cases {
		got, err := readMBAPResponse(bytes.NewReader(c.in), make([]byte, maxFrame), 7, 1, c.fc)
		if !errors.Is(err, c.err) || c.err == nil && !bytes.Equal(got, c.want) {
			t.Errorf("%s: % x, %v; want % x, %v", c.name, got, err, c.want, c.err)
		}
	}
}

// FuzzMBAPResponse: whatever a peer answers, reading it never panics, and
// an accepted answer is a whole PDU of the function asked.
func FuzzMBAPResponse(f *testing.F) {
	f.Add(mbap(1, 1, 3, 2, 0, 1), byte(3))
	f.Add(mbap(1, 1, 1, 1, 0x05), byte(1))
	f.Add(mbap(1, 1, 0x90, 4), byte(16))
	f.Add(mbap(1, 1, 3, 0xFF), byte(3))
	f.Add(append(mbap(0, 1, 3, 2, 0, 1), mbap(1, 1, 16, 0, 1, 0, 2)...), byte(16))
	f.Fuzz(func(t *testing.T, in []byte, fc byte) {
		got, err := readMBAPResponse(bytes.NewReader(in), make([]byte, maxFrame), 1, 1, fc)
		if err != nil {
			return
		}
		if fc >= 1 && fc <= 4 {
			if len(got) < 1 || len(got) != 1+int(got[0]) {
				t.Fatalf("fc %d: payload % x does not hold its byte count", fc, got)
			}
		} else if len(got) != 4 {
			t.Fatalf("fc %d: payload % x is no echo", fc, got)
		}
	})
}

// sentReads are reads of 2 registers (FC3) as ReadPipelined leaves them
// once sent: transactions 1..n, unit 1.
func sentReads(n int) []pipeRead {
	reads := make([]pipeRead, n)
	for i := range reads {
		reads[i] = pipeRead{fc: fcReadHolding, addr: uint16(10 * i), qty: 2, txn: uint16(i + 1), sent: true}
	}
	return reads
}

// TestReadMBAPAnswers pins how the answers to a pipeline are paired with
// its reads: by transaction id in any order, skipping frames of no
// outstanding transaction, and, when the stream breaks, charging the
// error to the read it concerns (or the first unanswered) and to it
// alone, so that the others are sent again at no cost.
func TestReadMBAPAnswers(t *testing.T) {
	regs := func(txn uint16, v byte) []byte { return mbap(txn, 1, 3, 4, 0, v, 0, v+1) }
	cat := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	otherProto := regs(2, 50)
	otherProto[3] = 1
	cases := []struct {
		name    string
		in      []byte
		err     error // returned
		charged int   // the read charged with it, -1: none
		good    []int // reads answered with data
		exc     []int // reads answered with an exception
	}{
		{"in order", cat(regs(1, 10), regs(2, 20), regs(3, 30)), nil, -1, []int{0, 1, 2}, nil},
		{"reversed", cat(regs(3, 30), regs(2, 20), regs(1, 10)), nil, -1, []int{0, 1, 2}, nil},
		{"unknown and repeated transactions skipped", cat(regs(9, 0), regs(2, 20), regs(2, 99), otherProto, regs(1, 10), regs(3, 30)), nil, -1, []int{0, 1, 2}, nil},
		{"exception", cat(regs(2, 20), mbap(1, 1, 0x83, 2), regs(3, 30)), nil, -1, []int{1, 2}, []int{0}},
		{"eof charges the first unanswered", cat(regs(1, 10), regs(3, 30)), io.EOF, 1, []int{0, 2}, nil},
		{"garbled answer charges its read", cat(regs(1, 10), mbap(3, 1, 3, 4, 0, 1), regs(2, 20)), mb.ErrProtocolError, 2, []int{0}, nil},
		{"wrong unit charges its read", cat(mbap(2, 7, 3, 4, 0, 1, 0, 2)), mb.ErrBadUnitId, 1, nil, nil},
		{"bad length charges the first unanswered", cat(regs(1, 10), []byte{0, 2, 0, 0, 0, 0, 1}), mb.ErrProtocolError, 1, []int{0}, nil},
	}
	for _, c := range cases {
		reads := sentReads(3)
		err := readMBAPAnswers(bytes.NewReader(c.in), make([]byte, maxFrame), 1, reads, func() error { return nil })
		if !errors.Is(err, c.err) || (err == nil) != (c.err == nil) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.err)
		}
		for i, rd := range reads {
			switch {
			case slices.Contains(c.good, i):
				v := byte(10 * (i + 1))
				if !rd.done || rd.err != nil || !bytes.Equal(rd.regs, []byte{0, v, 0, v + 1}) {
					t.Errorf("%s: read %d: %+v, want registers %d, %d", c.name, i, rd, v, v+1)
				}
			case slices.Contains(c.exc, i):
				if !rd.done || !errors.Is(rd.err, mb.ErrIllegalDataAddress) {
					t.Errorf("%s: read %d: %+v, want the exception", c.name, i, rd)
				}
			case i == c.charged:
				if !rd.done || !errors.Is(rd.err, c.err) {
					t.Errorf("%s: read %d: %+v, want charged with %v", c.name, i, rd, c.err)
				}
			default:
				if rd.done {
					t.Errorf("%s: read %d: %+v, want left to send again", c.name, i, rd)
				}
			}
		}
	}
}

// FuzzMBAPAnswers: whatever a peer answers to a pipeline, pairing never
// panics; it ends with every read done or with one read charged with its
// error, and an accepted answer holds exactly what its read asked for.
func FuzzMBAPAnswers(f *testing.F) {
	f.Add(append(mbap(2, 1, 3, 4, 0, 1, 0, 2), mbap(1, 1, 1, 1, 5)...), uint8(2))
	f.Add(append(mbap(3, 1, 0x84, 4), mbap(9, 1, 2, 1, 1)...), uint8(3))
	f.Add(mbap(1, 1, 3, 0xFF), uint8(1))
	f.Add([]byte{0, 1, 0, 0, 0, 3}, uint8(4))
	f.Fuzz(func(t *testing.T, in []byte, n uint8) {
		reads := make([]pipeRead, 1+int(n)%maxInFlight)
		for i := range reads {
			// FC1..FC4 in turn, 1..3 registers or 1..17 bits.
			reads[i] = pipeRead{fc: byte(1 + i%4), addr: uint16(i), qty: uint16(1 + i%3), txn: uint16(i + 1), sent: true}
			if reads[i].fc <= fcReadDiscrete {
				reads[i].qty += 8 * uint16(i%3)
			}
		}
		err := readMBAPAnswers(bytes.NewReader(in), make([]byte, maxFrame), 1, reads, func() error { return nil })
		charged := 0
		for _, rd := range reads {
			switch {
			case !rd.done:
				if err == nil {
					t.Fatalf("read %+v left undone without an error", rd)
				}
			case rd.err == nil && rd.fc <= fcReadDiscrete && len(rd.bits) != int(rd.qty):
				t.Fatalf("fc %d: %d bits for %d", rd.fc, len(rd.bits), rd.qty)
			case rd.err == nil && rd.fc > fcReadDiscrete && len(rd.regs) != 2*int(rd.qty):
				t.Fatalf("fc %d: %d bytes for %d registers", rd.fc, len(rd.regs), rd.qty)
			case rd.err != nil && !isException(rd.err):
				charged++
			}
		}
		if err != nil && charged != 1 || err == nil && charged != 0 {
			t.Fatalf("error %v, %d reads charged with a stream error", err, charged)
		}
	})
}
