package s7comm

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRequestBytes pins the encoders to frames written out by hand from
// the protocol descriptions.
func TestRequestBytes(t *testing.T) {
	if got, want := connectRequest(0x0100, 0x0102), unhex(t,
		"0300 0016 11 e0 0000 0001 00 c0010a c1020100 c2020102"); !bytes.Equal(got, want) {
		t.Errorf("connection request\n got % x\nwant % x", got, want)
	}
	if got, want := setupRequest(7, 480), unhex(t, "32 01 0000 0007 0008 0000 f0 00 0001 0001 01e0"); !bytes.Equal(got, want) {
		t.Errorf("setup\n got % x\nwant % x", got, want)
	}
	items := []Item{{Area: AreaDB, DB: 1, Start: 8, Size: 4}, {Area: AreaM, Start: 0, Bit: 3, IsBit: true}}
	if got, want := readRequest(2, items), unhex(t, "32 01 0000 0002 001a 0000 04 02"+
		"12 0a 10 02 0004 0001 84 000040"+
		"12 0a 10 01 0001 0000 83 000003"); !bytes.Equal(got, want) {
		t.Errorf("read\n got % x\nwant % x", got, want)
	}
	w := writeRequest(3, []Item{{Area: AreaDB, DB: 2, Start: 1, Size: 1}, {Area: AreaQ, Start: 1, Bit: 7, IsBit: true}},
		[][]byte{{0x55}, {1}})
	if want := unhex(t, "32 01 0000 0003 001a 000b 05 02"+
		"12 0a 10 02 0001 0002 84 000008"+
		"12 0a 10 01 0001 0000 82 00000f"+
		"00 04 0008 55 00"+
		"00 03 0001 01"); !bytes.Equal(w, want) {
		t.Errorf("write\n got % x\nwant % x", w, want)
	}
	if WriteRequestSize(1, 1) != len(w) {
		t.Errorf("WriteRequestSize %d, frame %d", WriteRequestSize(1, 1), len(w))
	}
}

func TestParseReadResponse(t *testing.T) {
	items := []Item{{Area: AreaDB, DB: 1, Start: 0, Size: 3}, {Area: AreaM, Bit: 1, IsBit: true}, {Area: AreaDB, DB: 5, Size: 2}}
	pdu := unhex(t, "32 03 0000 0009 0002 0012 0000 04 03"+
		"ff 04 0018 010203 00"+
		"ff 03 0001 01 00"+
		"0a 00 0000")
	a, err := parseS7(pdu)
	if err != nil {
		t.Fatal(err)
	}
	res, err := parseReadResponse(a, items)
	if err != nil {
		t.Fatal(err)
	}
	var ie *ItemError
	if !bytes.Equal(res[0].Data, []byte{1, 2, 3}) || !bytes.Equal(res[1].Data, []byte{1}) ||
		!errors.As(res[2].Err, &ie) || ie.Code != 0x0a {
		t.Fatalf("%+v", res)
	}
	if ReadResponseSize(3, 1, 0) != len(pdu) {
		t.Errorf("ReadResponseSize %d, frame %d", ReadResponseSize(3, 1, 0), len(pdu))
	}
	// A truncated answer names the frame, the item and the byte.
	a.data = a.data[:6]
	_, err = parseReadResponse(a, items)
	var fe *FrameError
	if !errors.As(err, &fe) || fe.Frame != "read response" || !strings.Contains(err.Error(), "item 1") {
		t.Fatalf("truncated: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"tpkt version", second(tpktLength(unhex(t, "04000010"))), "TPKT: at byte 0: version 4"},
		{"cotp short li", second(parseCOTP(unhex(t, "09f0"))), "COTP: at byte 0: length indicator 9"},
		{"cotp disconnect", second(parseCOTP(unhex(t, "06800000000100"))), "disconnect request"},
		{"s7 protocol id", second(parseS7(unhex(t, "31030000000000000000 0000"))), "protocol id 0x31"},
		{"s7 lengths", second(parseS7(unhex(t, "32030000000000020000 0000"))), "parameter length 2"},
		{"s7 job", second(parseS7(unhex(t, "32010000000000000000"))), "PDU type 1"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, tc.err, tc.want)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// fuzzItems is the request the fuzzed answers are parsed against.
var fuzzItems = []Item{{Area: AreaDB, DB: 1, Start: 0, Size: 3}, {Area: AreaM, Bit: 1, IsBit: true}, {Area: AreaDB, DB: 5, Size: 2}}

// FuzzTPKT feeds the TPKT and COTP parsers: never a panic, and a data
// TPDU's user data always lies within the input.
func FuzzTPKT(f *testing.F) {
	f.Add(unhex(f, "0300001602f080"))
	f.Add(unhex(f, "0300001611d00001000100c0010ac1020100c2020102"))
	f.Add(unhex(f, "0300000b06800000000100"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := tpktLength(b); err != nil && !strings.HasPrefix(err.Error(), "s7comm: TPKT") {
			t.Fatalf("error without its frame: %v", err)
		}
		if len(b) < tpktLen {
			return
		}
		c, err := parseCOTP(b[tpktLen:])
		if err == nil && len(c.data) > len(b) {
			t.Fatal("user data longer than the input")
		}
	})
}

// FuzzS7 feeds the S7 header parser and every answer parser.
func FuzzS7(f *testing.F) {
	f.Add(unhex(f, "32 03 0000 0009 0002 0012 0000 04 03 ff 04 0018 010203 00 ff 03 0001 01 00 0a 00 0000"))
	f.Add(unhex(f, "32 03 0000 0001 0008 0000 0000 f0 00 0001 0001 01e0"))
	f.Add(unhex(f, "32 03 0000 0001 0002 0003 0000 05 03 ff 0a ff"))
	f.Add(unhex(f, "32 02 0000 0001 0000 0000 8104"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseS7(b)
		if err != nil {
			return
		}
		if pdu, err := parseSetup(a); err == nil && pdu < MinPDU {
			t.Fatalf("PDU %d accepted", pdu)
		}
		if res, err := parseReadResponse(a, fuzzItems); err == nil {
			for i, r := range res {
				if r.Err == nil && len(r.Data) != fuzzItems[i].size() {
					t.Fatalf("item %d: %d bytes", i, len(r.Data))
				}
			}
		}
		if errs, err := parseWriteResponse(a, 3); err == nil && len(errs) != 3 {
			t.Fatalf("%d results", len(errs))
		}
	})
}
