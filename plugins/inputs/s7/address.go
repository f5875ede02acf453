package s7

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/edgepipe/edgepipe/plugins/inputs/s7/s7comm"
)

// address is a parsed S7 address: an area (and DB), a start byte, and
// either a bit or the width its letter names (B 1, W 2, D 4 bytes).
type address struct {
	area  s7comm.Area
	db    int
	start int
	bit   int // 0-7 when isBit
	isBit bool
	width int // bytes: 1 B, 2 W, 4 D; 0 for a bit
}

func (a address) String() string {
	var p string
	switch a.area {
	case s7comm.AreaDB:
		p = fmt.Sprintf("DB%d.DB", a.db)
	default:
		p = a.area.String()
	}
	if a.isBit {
		if a.area == s7comm.AreaDB {
			return fmt.Sprintf("%sX%d.%d", p, a.start, a.bit)
		}
		return fmt.Sprintf("%s%d.%d", p, a.start, a.bit)
	}
	return fmt.Sprintf("%s%c%d", p, map[int]byte{1: 'B', 2: 'W', 4: 'D'}[a.width], a.start)
}

const addressForms = "DBn.DBXbyte.bit, DBn.DBBbyte, DBn.DBWbyte, DBn.DBDbyte, or M/I/Q (E/A) forms: MB10, MW20, MD30, M0.3, I0.0, IW4, Q1.7"

// parseAddress reads the STEP 7 absolute address forms (case does not
// matter): DB1.DBX0.3 DB1.DBB0 DB1.DBW0 DB1.DBD0, MB10 MW20 MD30 M0.3 (MX0.3),
// I0.0 IB0 IW0 ID0, Q1.7 QB0 QW0 QD0, and the German E (inputs) and A
// (outputs) for I and Q.
func parseAddress(s string) (address, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	bad := func(why string) (address, error) {
		return address{}, fmt.Errorf("address %q: %s (want %s)", s, why, addressForms)
	}
	var a address
	rest := u
	switch {
	case strings.HasPrefix(u, "DB"):
		a.area = s7comm.AreaDB
		num, tail, ok := strings.Cut(u[2:], ".")
		if !ok {
			return bad("a DB address needs a dot after the DB number")
		}
		n, err := number(num, 65535)
		if err != nil || n < 1 {
			return bad("DB number " + strconv.Quote(num) + " is not 1..65535")
		}
		a.db = n
		if !strings.HasPrefix(tail, "DB") {
			return bad("after the DB number comes DBX, DBB, DBW or DBD")
		}
		rest = tail[2:]
	case u != "" && strings.ContainsRune("MIEQA", rune(u[0])):
		a.area = map[byte]s7comm.Area{'M': s7comm.AreaM, 'I': s7comm.AreaI, 'E': s7comm.AreaI,
			'Q': s7comm.AreaQ, 'A': s7comm.AreaQ}[u[0]]
		rest = u[1:]
		if rest != "" && rest[0] >= '0' && rest[0] <= '9' {
			rest = "X" + rest // M0.3 is MX0.3
		}
	default:
		return bad("unknown area")
	}
	if rest == "" {
		return bad("the width letter and byte address are missing")
	}
	letter, num := rest[0], rest[1:]
	switch letter {
	case 'X':
		byteNum, bitNum, ok := strings.Cut(num, ".")
		if !ok {
			return bad("a bit address needs .bit after the byte")
		}
		b, err := number(bitNum, 7)
		if err != nil {
			return bad("bit " + strconv.Quote(bitNum) + " is not 0..7")
		}
		a.isBit, a.bit = true, b
		num = byteNum
	case 'B':
		a.width = 1
	case 'W':
		a.width = 2
	case 'D':
		a.width = 4
	default:
		return bad(fmt.Sprintf("width letter %q is not X, B, W or D", letter))
	}
	n, err := number(num, s7comm.MaxAddress)
	if err != nil {
		return bad(fmt.Sprintf("byte address %q is not 0..%d", num, s7comm.MaxAddress))
	}
	a.start = n
	return a, nil
}

// number reads a decimal number of at most max, digits only.
func number(s string, max int) (int, error) {
	if s == "" || len(s) > 8 {
		return 0, fmt.Errorf("not a number")
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("not a number")
		}
		n = n*10 + int(c-'0')
	}
	if n > max {
		return 0, fmt.Errorf("too large")
	}
	return n, nil
}
