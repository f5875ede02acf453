package modbus

import (
	"fmt"
	"strings"

	"github.com/edgepipe/edgepipe/plugins/inputs/internal/numcodec"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// checkDevices checks every [[devices]] table and its points, and builds
// the devices.
func (cfg *Config) checkDevices(src *sdk.ConfigSource, s *settings, connOrder byteOrder, bad badFunc) []*device {
	if len(cfg.Devices) == 0 {
		bad("devices", "no [[inputs.modbus.devices]]: a connection needs at least one device")
	}
	devNames := map[string]int{}
	// Names and units are copied out of the configuration text, once each:
	// the TOML decoder's strings are substrings of its input, and one point
	// name kept would keep the whole text alive. Devices often repeat the
	// same point names and units.
	strs := map[string]string{}
	intern := func(s string) string {
		if c, ok := strs[s]; ok {
			return c
		}
		c := strings.Clone(s)
		strs[c] = c
		return c
	}
	var devices []*device
	for di, dc := range cfg.Devices {
		dp := fmt.Sprintf("devices[%d]", di)
		d := &device{name: strings.Clone(dc.Name), unit: 1, interval: dc.Interval.D()}
		d.points = make([]point, 0, len(dc.Points)) // exactly sized: kept while the input runs
		d.meta = make([]pointMeta, 0, len(dc.Points))
		seen := map[string]bool{}
		if d.interval == 0 {
			d.interval = s.interval
		}
		switch {
		case dc.Name == "":
			bad(dp+".name", "is required")
		case strings.ContainsAny(dc.Name, ". \t/#+"):
			bad(dp+".name", "%q: a device name cannot hold dots, spaces, '/', '#' or '+' (it is part of point names and topics)", dc.Name)
		default:
			if prev, dup := devNames[dc.Name]; dup {
				bad(dp+".name", "device %q is already defined as devices[%d]", dc.Name, prev)
			}
			devNames[dc.Name] = di
		}
		if dc.UnitID != nil {
			id := *dc.UnitID
			lo, hi := 0, 255
			if s.scheme == "rtu" || s.scheme == "rtuovertcp" {
				lo, hi = 1, 247 // 0 is broadcast, 248-255 reserved on a serial line
			}
			if id < lo || id > hi {
				bad(dp+".unit_id", "%d: want %d..%d", id, lo, hi)
			} else {
				d.unit = uint8(id)
			}
		}
		devOrder := connOrder
		if dc.ByteOrder != "" {
			o, ok := parseOrder(dc.ByteOrder)
			if !ok {
				bad(dp+".byte_order", "%q: want ABCD, CDAB, BADC or DCBA", dc.ByteOrder)
			}
			devOrder = o
		}
		if len(dc.Points) == 0 {
			bad(dp+".points", "device %q has no [[inputs.modbus.devices.points]]", dc.Name)
		}
		for pi := range dc.Points {
			pp := fmt.Sprintf("%s.points[%d]", dp, pi)
			pc := &dc.Points[pi]
			p, perrs := checkPoint(src, pp, pc, devOrder, s)
			for _, e := range perrs {
				bad(e.Path, "%s", e.Msg)
			}
			if p == nil {
				continue
			}
			if seen[p.name] {
				bad(pp+".name", "point %q is already defined on device %q", p.name, dc.Name)
				continue
			}
			seen[p.name] = true
			p.name = intern(p.name)
			d.points = append(d.points, *p)
			d.meta = append(d.meta, pointMeta{unit: intern(pc.Unit), min: pc.Min, max: pc.Max})
		}
		d.index()
		devices = append(devices, d)
	}
	return devices
}

func checkPoint(src *sdk.ConfigSource, pp string, pc *PointConfig, order byteOrder, s *settings) (*point, sdk.ConfigErrors) {
	var errs sdk.ConfigErrors
	bad := func(key, format string, args ...any) { errs = append(errs, src.Errorf(pp+"."+key, format, args...)) }
	p := &point{name: pc.Name, access: pc.Access,
		codec: codec{order: order, bit: -1, scale: 1, offset: pc.Offset}}
	if pc.Name == "" {
		bad("name", "is required")
	} else if strings.ContainsAny(pc.Name, " \t/#+") {
		bad("name", "%q: a point name cannot hold spaces, '/', '#' or '+'", pc.Name)
	}
	a, ok := parseArea(pc.Area)
	if !ok {
		if pc.Area == "" {
			bad("area", "is required: coil, discrete, holding or input")
		} else {
			bad("area", "%q: want coil, discrete, holding or input", pc.Area)
		}
		return nil, errs
	}
	p.area = a
	switch {
	case pc.Type == "" && a.bits():
		p.typ = tBool
	case pc.Type == "":
		p.typ = tUint16
	default:
		t, ok := parseType(pc.Type)
		if !ok {
			bad("type", "unknown type %q: want %s", pc.Type, typeList())
			return nil, errs
		}
		p.typ = t
	}
	if a.bits() && p.typ != tBool {
		bad("type", "a %s holds one bit: type must be bool, not %s", a, p.typ)
	}
	if pc.Bit != nil {
		switch {
		case p.typ != tBool || a.bits():
			bad("bit", "bit only applies to a bool in a holding or input register")
		case *pc.Bit < 0 || *pc.Bit > 15:
			bad("bit", "%d: want 0..15", *pc.Bit)
		default:
			p.bit = *pc.Bit
		}
	}
	if p.typ == tString {
		p.length = pc.Length
		if pc.Length <= 0 {
			bad("length", "a string needs length, the number of registers it occupies")
		} else if pc.Length > s.lim.maxRegs {
			bad("length", "%d registers do not fit one read of max_registers = %d", pc.Length, s.lim.maxRegs)
		}
	} else if pc.Length != 0 {
		bad("length", "length only applies to strings")
	}
	switch {
	case p.typ.byteSized():
		switch strings.ToLower(pc.Byte) {
		case "high":
		case "low":
			p.lowByte = true
		case "":
			bad("byte", "%s is one byte of a register: byte = \"high\" or \"low\" says which", p.typ)
		default:
			bad("byte", "%q: want \"high\" (the register's first byte on the wire) or \"low\"", pc.Byte)
		}
		if pc.ByteOrder != "" {
			bad("byte_order", "does not apply to %s, one byte of a register: byte says which", p.typ)
		}
	case pc.Byte != "":
		bad("byte", "byte only applies to int8 and uint8 (one byte of a register)")
	}
	if p.typ == tString {
		// Text is two bytes per register, high byte first, whatever the
		// connection or device says about numbers (SPEC section 3): their
		// byte_order is a word and byte order for multi-register values,
		// and a device with CDAB floats still stores "HELLO" as "HE" "LL"
		// "O". Only the point's own byte_order turns text around.
		p.order = orderABCD
	}
	if pc.ByteOrder != "" {
		o, ok := parseOrder(pc.ByteOrder)
		if !ok {
			bad("byte_order", "%q: want ABCD, CDAB, BADC or DCBA", pc.ByteOrder)
		}
		p.order = o
	}
	if p.typ.regs() > s.lim.maxRegs && !a.bits() {
		bad("type", "%s needs %d registers, more than max_registers = %d", p.typ, p.typ.regs(), s.lim.maxRegs)
	}
	if pc.Address == nil {
		bad("address", "is required (0-based protocol address)")
	} else if addr := *pc.Address; addr < 0 || addr > 65535 {
		bad("address", "%d: want 0..65535", addr)
	} else if addr+p.count() > 65536 {
		bad("address", "%s at %d runs past the last address 65535", p.typ, addr)
	} else {
		p.addr = addr
	}
	p.scale = numcodec.CheckScaling(pc.Scale, p.offset, pc.Min, pc.Max, p.typ != tBool && p.typ != tString, p.typ.String(), bad)
	p.scaled = p.scale != 1 || p.offset != 0
	if p.access.Subscribes() {
		if !a.writable() {
			bad("access", "the %s area is read-only in Modbus: a point there cannot be %s", a, p.access)
		}
		if p.typ == tString && p.length > 123 {
			bad("length", "a writable string is written in one request of at most 123 registers")
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}
