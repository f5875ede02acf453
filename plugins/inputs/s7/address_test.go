package s7

import (
	"strconv"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/inputs/s7/s7comm"
)

func TestParseAddress(t *testing.T) {
	for in, want := range map[string]address{
		"DB1.DBX0.3":    {area: s7comm.AreaDB, db: 1, start: 0, bit: 3, isBit: true},
		"db12.dbb8":     {area: s7comm.AreaDB, db: 12, start: 8, width: 1},
		"DB65535.DBW20": {area: s7comm.AreaDB, db: 65535, start: 20, width: 2},
		" DB3.DBD100 ":  {area: s7comm.AreaDB, db: 3, start: 100, width: 4},
		"MB10":          {area: s7comm.AreaM, start: 10, width: 1},
		"MW20":          {area: s7comm.AreaM, start: 20, width: 2},
		"MD30":          {area: s7comm.AreaM, start: 30, width: 4},
		"M0.3":          {area: s7comm.AreaM, start: 0, bit: 3, isBit: true},
		"MX7.7":         {area: s7comm.AreaM, start: 7, bit: 7, isBit: true},
		"I0.0":          {area: s7comm.AreaI, isBit: true},
		"E1.2":          {area: s7comm.AreaI, start: 1, bit: 2, isBit: true},
		"IW4":           {area: s7comm.AreaI, start: 4, width: 2},
		"Q1.7":          {area: s7comm.AreaQ, start: 1, bit: 7, isBit: true},
		"AB3":           {area: s7comm.AreaQ, start: 3, width: 1},
		"QD2097151":     {area: s7comm.AreaQ, start: 2097151, width: 4},
	} {
		got, err := parseAddress(in)
		if err != nil || got != want {
			t.Errorf("%q: %+v %v, want %+v", in, got, err, want)
		}
	}
	for in, why := range map[string]string{
		"":             "unknown area",
		"DB0.DBW0":     "DB number \"0\"",
		"DB1":          "needs a dot",
		"DB1.W0":       "DBX, DBB, DBW or DBD",
		"DB1.DBX0":     "needs .bit",
		"DB1.DBX0.8":   "bit \"8\"",
		"DB1.DBQ0":     "width letter 'Q'",
		"MW-1":         "byte address \"-1\"",
		"M":            "missing",
		"MD2097152":    "byte address",
		"T5":           "unknown area",
		"DB1.DBW0.1":   "byte address \"0.1\"",
		"DB99999.DBB0": "DB number",
	} {
		_, err := parseAddress(in)
		if err == nil || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "DBn.DBX") {
			t.Errorf("%q: %v, want it to say %q and list the forms", in, err, why)
		}
	}
}

// FuzzParseAddress: never a panic; an accepted address is in range and
// prints as an address that parses to itself.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"DB1.DBX0.3", "DB1.DBD0", "MW20", "M0.3", "I0.0", "Q1.7", "EB1", "DB1.", "DB.DBX..", "MX"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseAddress(s)
		if err != nil {
			return
		}
		if a.start < 0 || a.start > s7comm.MaxAddress || a.bit < 0 || a.bit > 7 || (a.area == s7comm.AreaDB) != (a.db > 0) {
			t.Fatalf("%q: out of range %+v", s, a)
		}
		back, err := parseAddress(a.String())
		if err != nil || back != a {
			t.Fatalf("%q -> %s -> %+v %v", s, a, back, err)
		}
	})
}

// TestPlanFitsPDU: every request of a plan fits the PDU and the item
// limit, and covers every byte of every point.
func TestPlanFitsPDU(t *testing.T) {
	var points []*point
	var polled []int
	add := func(addr string, typ dataType, strLen int) {
		a, err := parseAddress(addr)
		if err != nil {
			t.Fatal(err)
		}
		polled = append(polled, len(points))
		points = append(points, &point{addr: a, codec: codec{typ: typ, strLen: strLen}})
	}
	for i := range 100 {
		add("DB1.DBB"+itoa(i*10), tDword, 0) // gaps of 6 bytes
		add("DB2.DBB"+itoa(i*3), tByte, 0)
		add("MB"+itoa(i*40), tWord, 0) // gaps of 38
	}
	add("DB9.DBB0", tString, 254)
	for _, pdu := range []int{240, 480, 960} {
		for _, gap := range []int{0, 8, 64} {
			pl := makePlan(points, polled, gap, pdu)
			covered := map[[3]int]bool{}
			for _, req := range pl.reqs {
				if len(req) > s7comm.MaxItems || s7comm.ReadRequestSize(len(req)) > pdu {
					t.Fatalf("pdu %d gap %d: request of %d items", pdu, gap, len(req))
				}
				var sizes []int
				for _, c := range req {
					sizes = append(sizes, c.item.Size)
					for b := range c.item.Size {
						covered[[3]int{int(c.item.Area), c.item.DB, c.item.Start + b}] = true
					}
				}
				if n := s7comm.ReadResponseSize(sizes...); n > pdu {
					t.Fatalf("pdu %d gap %d: answer of %d bytes", pdu, gap, n)
				}
			}
			for _, p := range points {
				for b := range p.size() {
					if !covered[[3]int{int(p.addr.area), p.addr.db, p.addr.start + b}] {
						t.Fatalf("pdu %d gap %d: byte %d of %s not read", pdu, gap, b, p.addr)
					}
				}
			}
			// Spans are as long as allowed: two neighbours could not merge.
			for i, sp := range pl.spans {
				if sp.size > maxSpan(pdu) && len(sp.points) > 1 {
					t.Errorf("pdu %d gap %d: span of %d bytes", pdu, gap, sp.size)
				}
				if i == 0 {
					continue
				}
				prev := pl.spans[i-1]
				if prev.area == sp.area && prev.db == sp.db && sp.start <= prev.start+prev.size+gap &&
					sp.start+sp.size-prev.start <= maxSpan(pdu) {
					t.Errorf("pdu %d gap %d: spans %+v and %+v not merged", pdu, gap, prev, sp)
				}
			}
			if gap == 0 && len(pl.spans) != len(points) { // no two points are adjacent
				t.Errorf("pdu %d gap 0: %d spans", pdu, len(pl.spans))
			}
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
