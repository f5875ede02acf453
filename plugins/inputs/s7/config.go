package s7

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/edgepipe/edgepipe/plugins/inputs/internal/numcodec"
	"github.com/edgepipe/edgepipe/plugins/inputs/s7/s7comm"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Config is one [[inputs.s7]] table: one PLC.
type Config struct {
	Device         string        `toml:"device"`
	Address        string        `toml:"address"`
	Rack           *int          `toml:"rack"`
	Slot           *int          `toml:"slot"`
	ConnectionType string        `toml:"connection_type"`
	Interval       sdk.Duration  `toml:"interval"`
	Timeout        sdk.Duration  `toml:"timeout"`
	PDUSize        int           `toml:"pdu_size"`
	MaxGap         *int          `toml:"max_gap"`
	MaxBackoff     sdk.Duration  `toml:"max_backoff"`
	Points         []PointConfig `toml:"points"`
}

// PointConfig is one [[inputs.s7.points]].
type PointConfig struct {
	Name    string     `toml:"name"`
	Address string     `toml:"address"`
	Type    string     `toml:"type"`
	Length  int        `toml:"length"`
	Scale   *float64   `toml:"scale"`
	Offset  float64    `toml:"offset"`
	Unit    string     `toml:"unit"`
	Access  sdk.Access `toml:"access"`
	Min     *float64   `toml:"min"`
	Max     *float64   `toml:"max"`
}

// Defaults, as SPEC section 3 shows them, and for the extra keys.
const (
	defaultInterval   = time.Second
	defaultTimeout    = 2 * time.Second
	defaultSlot       = 1
	defaultPDU        = 960 // what S7-1500 grants; older CPUs answer 240 or 480
	defaultMaxGap     = 32
	defaultMaxBackoff = 30 * time.Second
	defaultStrLen     = 254 // STRING without [n]
)

// settings is the checked configuration.
type settings struct {
	device, address   string
	opts              s7comm.Options
	interval, timeout time.Duration
	maxGap            int
	maxBackoff        time.Duration
}

// point is a checked point.
type point struct {
	codec
	name     string
	addr     address
	unit     string
	access   sdk.Access
	min, max *float64
}

// item is the bytes the point occupies.
func (p *point) span() (start, size int) { return p.addr.start, p.size() }

func (cfg *Config) check(src *sdk.ConfigSource) (*settings, []*point, sdk.ConfigErrors) {
	var errs sdk.ConfigErrors
	bad := func(path, format string, args ...any) { errs = append(errs, src.Errorf(path, format, args...)) }
	s := &settings{device: cfg.Device, address: cfg.Address, interval: cfg.Interval.D(), timeout: cfg.Timeout.D(),
		maxGap: defaultMaxGap, maxBackoff: cfg.MaxBackoff.D()}
	switch {
	case cfg.Device == "":
		bad("device", "is required: the name of the PLC, its points are named \"<device>.<point>\"")
	case strings.ContainsAny(cfg.Device, ". \t/#+"):
		bad("device", "%q: a device name cannot hold dots, spaces, '/', '#' or '+' (it is part of point names and topics)", cfg.Device)
	}
	if cfg.Address == "" {
		bad("address", "is required: the PLC's host or host:port (port 102 by default)")
	} else if strings.Contains(cfg.Address, "://") || strings.ContainsAny(cfg.Address, "/ ") {
		bad("address", "%q: want host or host:port, without a scheme", cfg.Address)
	} else if h, p, err := net.SplitHostPort(cfg.Address); err == nil && (h == "" || p == "") {
		bad("address", "%q: want host or host:port", cfg.Address)
	} else if err == nil {
		s.address = cfg.Address
	} else {
		s.address = net.JoinHostPort(cfg.Address, "102")
	}
	s.opts.Slot = defaultSlot
	if cfg.Rack != nil {
		s.opts.Rack = *cfg.Rack
		if s.opts.Rack < 0 || s.opts.Rack > 7 {
			bad("rack", "%d: want 0..7", s.opts.Rack)
		}
	}
	if cfg.Slot != nil {
		s.opts.Slot = *cfg.Slot
		if s.opts.Slot < 0 || s.opts.Slot > 31 {
			bad("slot", "%d: want 0..31 (1 for S7-1200/1500, 2 for S7-300)", s.opts.Slot)
		}
	}
	switch strings.ToLower(cfg.ConnectionType) {
	case "", "pg":
		s.opts.ConnType = s7comm.ConnPG
	case "op":
		s.opts.ConnType = s7comm.ConnOP
	case "basic", "s7basic":
		s.opts.ConnType = s7comm.ConnBasic
	default:
		bad("connection_type", "%q: want pg, op or basic", cfg.ConnectionType)
	}
	if s.interval == 0 {
		s.interval = defaultInterval
	}
	if s.timeout == 0 {
		s.timeout = defaultTimeout
	}
	if s.maxBackoff == 0 {
		s.maxBackoff = defaultMaxBackoff
	}
	s.opts.Timeout = s.timeout
	s.opts.PDUSize = cfg.PDUSize
	if s.opts.PDUSize == 0 {
		s.opts.PDUSize = defaultPDU
	} else if s.opts.PDUSize < 240 || s.opts.PDUSize > 65535 {
		bad("pdu_size", "%d: want 240..65535 bytes (the PLC may grant less)", s.opts.PDUSize)
	}
	if cfg.MaxGap != nil {
		s.maxGap = *cfg.MaxGap
		if s.maxGap < 0 || s.maxGap > 1024 {
			bad("max_gap", "%d: want 0..1024 bytes", s.maxGap)
		}
	}
	if len(cfg.Points) == 0 {
		bad("points", "no [[inputs.s7.points]]: a PLC needs at least one point")
	}
	names := map[string]int{}
	var points []*point
	for i := range cfg.Points {
		pp := fmt.Sprintf("points[%d]", i)
		p, perrs := checkPoint(src, pp, &cfg.Points[i])
		errs = append(errs, perrs...)
		if p == nil {
			continue
		}
		if prev, dup := names[p.name]; dup {
			bad(pp+".name", "point %q is already defined as points[%d]", p.name, prev)
			continue
		}
		names[p.name] = i
		points = append(points, p)
	}
	return s, points, errs
}

func checkPoint(src *sdk.ConfigSource, pp string, pc *PointConfig) (*point, sdk.ConfigErrors) {
	var errs sdk.ConfigErrors
	bad := func(key, format string, args ...any) { errs = append(errs, src.Errorf(pp+"."+key, format, args...)) }
	p := &point{name: pc.Name, unit: pc.Unit, access: pc.Access, min: pc.Min, max: pc.Max}
	if pc.Name == "" {
		bad("name", "is required")
	} else if strings.ContainsAny(pc.Name, " \t/#+") {
		bad("name", "%q: a point name cannot hold spaces, '/', '#' or '+'", pc.Name)
	}
	a, err := parseAddress(pc.Address)
	if pc.Address == "" {
		bad("address", "is required: %s", addressForms)
		return nil, errs
	} else if err != nil {
		bad("address", "%v", err)
		return nil, errs
	}
	p.addr = a
	switch {
	case pc.Type == "" && a.isBit:
		p.typ = tBool
	case pc.Type == "":
		p.typ = map[int]dataType{1: tByte, 2: tWord, 4: tDword}[a.width]
	default:
		t, ok := parseType(pc.Type)
		if !ok {
			bad("type", "unknown type %q: want bool, byte, word, dword, int, dint, real, lreal or string", pc.Type)
			return nil, errs
		}
		p.typ = t
	}
	if p.typ == tString {
		p.strLen = defaultStrLen
		if pc.Length != 0 {
			p.strLen = pc.Length
			if pc.Length < 1 || pc.Length > 254 {
				bad("length", "%d: an S7 STRING holds 1..254 characters", pc.Length)
			}
		}
	} else if pc.Length != 0 {
		bad("length", "length only applies to strings: the declared STRING[n]")
	}
	switch {
	case p.typ == tBool && !a.isBit:
		bad("type", "a bool needs a bit address (DB1.DBX0.3, M0.3, I0.0), not %s", a)
	case p.typ != tBool && a.isBit:
		bad("type", "%s is one bit: its type is bool, not %s", a, p.typ)
	case p.typ != tBool && p.size() < a.width:
		bad("type", "%s is %d bytes wide, type %s only %d: give the address of its width", a, a.width, p.typ, p.size())
	}
	p.bit = a.bit
	if a.start+p.size() > s7comm.MaxAddress+1 {
		bad("address", "%s with %s runs past the last S7 byte address %d", a, p.typ, s7comm.MaxAddress)
	}
	numeric := p.typ != tBool && p.typ != tString
	p.scaling = numcodec.Scaling{Scale: numcodec.CheckScaling(pc.Scale, pc.Offset, p.min, p.max, numeric, p.typ.String(), bad),
		Offset: pc.Offset}
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}
