package modbussim

import (
	"bytes"
	"io"
	"testing"
)

// rwBuf reads from a fixed input and collects what is written.
type rwBuf struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (b *rwBuf) Read(p []byte) (int, error) {
	// Small reads, so that frames arrive split as on a slow line.
	if len(p) > 7 {
		p = p[:7]
	}
	return b.in.Read(p)
}

func (b *rwBuf) Write(p []byte) (int, error) { return b.out.Write(p) }

// FuzzServe: whatever a client sends, both framings end when the input
// does, never panic, and answer only whole frames.
func FuzzServe(f *testing.F) {
	f.Add(mbap(1, 1, 0x03, 0, 0, 0, 126), false)
	f.Add(mbap(1, 1, 0x10, 0, 0, 0, 1, 2, 0xAB, 0xCD), false)
	f.Add(append(mbap(1, 1, 0x2B, 0x0E), 0, 1, 0, 0, 0, 0), false)
	f.Add(rtuFrame(1, 0x07), true)
	f.Add(rtuFrame(1, 0x0F, 0, 0, 0, 9, 2, 0xFF, 0x01), true)
	f.Add(append(rtuFrame(1, 0x03, 0, 0, 0, 2), 1, 0x16, 0, 4), true)
	// One image for all inputs (building one per input is most of the
	// cost); writes carry over, which only varies what reads return.
	cfg, err := ParseConfig([]byte(testConfig))
	if err != nil {
		f.Fatal(err)
	}
	s, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte, rtu bool) {
		rw := &rwBuf{in: bytes.NewReader(in)}
		serve := s.ServeTCP
		if rtu {
			serve = s.ServeRTU
		}
		if err := serve(rw); err != io.EOF && err != io.ErrUnexpectedEOF && (rtu || err == nil) {
			t.Fatalf("serve ended with %v", err)
		}
		out := rw.out.Bytes()
		for len(out) > 0 {
			var n int
			if rtu {
				n = requestLenOfResponse(out)
			} else if len(out) >= mbapLen {
				n = 6 + (int(out[4])<<8 | int(out[5]))
			}
			if n == 0 || n > len(out) {
				t.Fatalf("partial answer % x", out)
			}
			out = out[n:]
		}
	})
}

// requestLenOfResponse is the length of the RTU response at the head of
// b: exception 5, FC1-4 5+count, FC5/6/15/16 8; 0 when unknown.
func requestLenOfResponse(b []byte) int {
	if len(b) < 3 {
		return 0
	}
	switch {
	case b[1]&0x80 != 0:
		return 5
	case b[1] >= 1 && b[1] <= 4:
		return 5 + int(b[2])
	case b[1] == 5 || b[1] == 6 || b[1] == 15 || b[1] == 16:
		return 8
	}
	return 0
}
