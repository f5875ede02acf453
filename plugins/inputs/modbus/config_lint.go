package modbus

import (
	"fmt"
	"slices"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// lint is the plugin's sdk.Registration.Lint: warnings about a valid
// table, printed by `edgepipe check`. It says nothing about a table Init
// refuses (check prints those errors).
func lint(req *sdk.InitRequest) sdk.ConfigErrors {
	var cfg Config
	src, err := sdk.DecodeConfig(req, &cfg)
	if err != nil {
		return nil
	}
	_, devices, errs := cfg.check(src)
	if len(errs) > 0 {
		return nil
	}
	var warns sdk.ConfigErrors
	for di, d := range devices {
		warns = append(warns, overlaps(src, fmt.Sprintf("devices[%d]", di), d)...)
	}
	return warns
}

// overlaps warns about points of one device that cover the same
// registers (or coils) of one area: a value read twice under two names,
// or more often a mistyped address, or a 32-bit value placed one register
// off. Bits of one register taken by bool points with different bits are
// not overlaps, nor are the high and low bytes of one register (int8,
// uint8); neither is a bit or a byte of a register also read whole (a
// status word and its flags), which is common and deliberate.
func overlaps(src *sdk.ConfigSource, dp string, d *device) sdk.ConfigErrors {
	idx := make([]int, len(d.points))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		pa, pb := &d.points[a], &d.points[b]
		if pa.area != pb.area {
			return int(pa.area) - int(pb.area)
		}
		return pa.addr - pb.addr
	})
	var warns sdk.ConfigErrors
	for x, i := range idx {
		p := &d.points[i]
		for _, j := range idx[x+1:] {
			q := &d.points[j]
			if q.area != p.area || q.addr >= p.addr+p.count() {
				break
			}
			if (part(p) != "" || part(q) != "") && !(part(p) == part(q) && p.addr == q.addr) {
				continue
			}
			first, later := min(i, j), max(i, j)
			a, b := &d.points[first], &d.points[later]
			warns = append(warns, src.Warnf(fmt.Sprintf("%s.points[%d].address", dp, later),
				"point %q (%s) overlaps point %q (%s) of device %q: the same registers read twice, or a wrong address",
				b.name, covers(b), a.name, covers(a), d.name))
		}
	}
	slices.SortStableFunc(warns, func(a, b sdk.ConfigError) int { return a.Line - b.Line })
	return warns
}

// covers describes the registers a point covers: "holding 4-5", "coil 3".
func covers(p *point) string {
	s := fmt.Sprintf("%s %d", p.area, p.addr)
	if n := p.count(); n > 1 {
		s += fmt.Sprintf("-%d", p.addr+n-1)
	}
	if pt := part(p); pt != "" {
		s += " " + pt
	}
	return s
}

// part names the part of its register a point takes ("bit 3", "high
// byte"), or "" for whole registers.
func part(p *point) string {
	switch {
	case p.bit >= 0:
		return fmt.Sprintf("bit %d", p.bit)
	case p.typ.byteSized() && p.lowByte:
		return "low byte"
	case p.typ.byteSized():
		return "high byte"
	}
	return ""
}
