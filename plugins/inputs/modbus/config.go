package modbus

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"github.com/edgepipe/edgepipe/plugins/inputs/internal/numcodec"
	"os"
	"strings"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Config is one [[inputs.modbus]] table: one connection.
type Config struct {
	URL                  string         `toml:"url"`
	Interval             sdk.Duration   `toml:"interval"`
	Timeout              sdk.Duration   `toml:"timeout"`
	Retries              *int           `toml:"retries"`
	BaudRate             int            `toml:"baud_rate"`
	DataBits             int            `toml:"data_bits"`
	Parity               string         `toml:"parity"`
	StopBits             int            `toml:"stop_bits"`
	ByteOrder            string         `toml:"byte_order"`
	MaxGap               *int           `toml:"max_gap"`
	MaxRegisters         int            `toml:"max_registers"`
	MaxBits              int            `toml:"max_bits"`
	PauseAfterConnect    sdk.Duration   `toml:"pause_after_connect"`
	PauseBetweenRequests sdk.Duration   `toml:"pause_between_requests"`
	MaxBackoff           sdk.Duration   `toml:"max_backoff"`
	WriteMultiple        bool           `toml:"write_multiple"`
	TLSCA                string         `toml:"tls_ca"`
	TLSCert              string         `toml:"tls_cert"`
	TLSKey               string         `toml:"tls_key"`
	Devices              []DeviceConfig `toml:"devices"`
}

// DeviceConfig is one [[inputs.modbus.devices]]: a slave on the connection.
type DeviceConfig struct {
	Name      string        `toml:"name"`
	UnitID    *int          `toml:"unit_id"`
	Interval  sdk.Duration  `toml:"interval"`
	ByteOrder string        `toml:"byte_order"`
	Points    []PointConfig `toml:"points"`
}

// PointConfig is one [[inputs.modbus.devices.points]].
type PointConfig struct {
	Name      string     `toml:"name"`
	Area      string     `toml:"area"`
	Address   *int       `toml:"address"`
	Type      string     `toml:"type"`
	Bit       *int       `toml:"bit"`
	Length    int        `toml:"length"`
	ByteOrder string     `toml:"byte_order"`
	Scale     *float64   `toml:"scale"`
	Offset    float64    `toml:"offset"`
	Unit      string     `toml:"unit"`
	Access    sdk.Access `toml:"access"`
	Min       *float64   `toml:"min"`
	Max       *float64   `toml:"max"`
}

// Defaults, as SPEC section 3 shows them.
const (
	defaultInterval   = time.Second
	defaultTimeout    = time.Second
	defaultRetries    = 2
	defaultBaud       = 9600
	defaultMaxGap     = 16
	defaultMaxRegs    = 125  // the protocol's limit for FC3/FC4
	defaultMaxBits    = 2000 // the protocol's limit for FC1/FC2
	defaultMaxBackoff = 30 * time.Second
)

// settings is the checked configuration of the connection.
type settings struct {
	scheme, url          string
	interval, timeout    time.Duration
	retries              int
	baud, dataBits       int
	parity, stopBits     uint
	lim                  limits
	pauseAfterConnect    time.Duration
	pauseBetweenRequests time.Duration
	maxBackoff           time.Duration
	writeMultiple        bool
	tlsCert              *tls.Certificate
	tlsRoots             *x509.CertPool
}

// check validates the whole configuration and builds the devices. Every
// problem is reported, each at its key path.
func (cfg *Config) check(src *sdk.ConfigSource) (*settings, []*device, sdk.ConfigErrors) {
	var errs sdk.ConfigErrors
	bad := func(path, format string, args ...any) { errs = append(errs, src.Errorf(path, format, args...)) }

	s := &settings{interval: cfg.Interval.D(), timeout: cfg.Timeout.D(), retries: defaultRetries,
		baud: cfg.BaudRate, dataBits: cfg.DataBits, pauseAfterConnect: cfg.PauseAfterConnect.D(),
		pauseBetweenRequests: cfg.PauseBetweenRequests.D(), maxBackoff: cfg.MaxBackoff.D(), writeMultiple: cfg.WriteMultiple,
		lim: limits{maxRegs: cfg.MaxRegisters, maxBits: cfg.MaxBits, maxGap: defaultMaxGap}}
	scheme, rest, ok := strings.Cut(cfg.URL, "://")
	s.scheme, s.url = strings.ToLower(scheme), cfg.URL
	switch {
	case cfg.URL == "":
		bad("url", "is required: tcp://HOST:PORT, rtu:///dev/ttyX, rtuovertcp://HOST:PORT or tcp+tls://HOST:PORT")
	case !ok || rest == "":
		bad("url", "%q: want tcp://HOST:PORT, rtu:///dev/ttyX, rtuovertcp://HOST:PORT or tcp+tls://HOST:PORT", cfg.URL)
	default:
		switch s.scheme {
		case "tcp", "rtuovertcp", "tcp+tls":
			if !strings.Contains(rest, ":") {
				bad("url", "%q: want HOST:PORT after %s://", cfg.URL, s.scheme)
			}
		case "rtu":
		default:
			bad("url", "%q: unknown scheme %q (want tcp, rtu, rtuovertcp or tcp+tls)", cfg.URL, scheme)
		}
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
	if cfg.Retries != nil {
		s.retries = *cfg.Retries
		if s.retries < 0 || s.retries > 10 {
			bad("retries", "%d: want 0..10", s.retries)
		}
	}
	if s.baud == 0 {
		s.baud = defaultBaud
	} else if s.baud < 0 {
		bad("baud_rate", "%d is not a baud rate", s.baud)
	}
	if s.dataBits == 0 {
		s.dataBits = 8
	} else if s.dataBits < 5 || s.dataBits > 8 {
		bad("data_bits", "%d: want 5..8", s.dataBits)
	}
	switch strings.ToLower(cfg.Parity) {
	case "", "none", "n":
		s.parity = 0
	case "even", "e":
		s.parity = 1
	case "odd", "o":
		s.parity = 2
	default:
		bad("parity", "%q: want none, even or odd", cfg.Parity)
	}
	switch cfg.StopBits {
	case 0, 1:
		s.stopBits = 1
	case 2:
		s.stopBits = 2
	default:
		bad("stop_bits", "%d: want 1 or 2", cfg.StopBits)
	}
	connOrder := orderABCD
	if cfg.ByteOrder != "" {
		o, ok := parseOrder(cfg.ByteOrder)
		if !ok {
			bad("byte_order", "%q: want ABCD, CDAB, BADC or DCBA", cfg.ByteOrder)
		}
		connOrder = o
	}
	if cfg.MaxGap != nil {
		s.lim.maxGap = *cfg.MaxGap
		if s.lim.maxGap < 0 || s.lim.maxGap > defaultMaxRegs {
			bad("max_gap", "%d: want 0..125 registers", s.lim.maxGap)
		}
	}
	if s.lim.maxRegs == 0 {
		s.lim.maxRegs = defaultMaxRegs
	} else if s.lim.maxRegs < 1 || s.lim.maxRegs > defaultMaxRegs {
		bad("max_registers", "%d: want 1..125 (the protocol's limit per read)", s.lim.maxRegs)
	}
	if s.lim.maxBits == 0 {
		s.lim.maxBits = defaultMaxBits
	} else if s.lim.maxBits < 1 || s.lim.maxBits > defaultMaxBits {
		bad("max_bits", "%d: want 1..2000 (the protocol's limit per read)", s.lim.maxBits)
	}
	if s.scheme == "tcp+tls" {
		if cfg.TLSCert == "" || cfg.TLSKey == "" {
			bad("tls_cert", "tcp+tls needs a client certificate: tls_cert and tls_key (Modbus/TCP Security mandates mutual TLS)")
		} else if cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
			bad("tls_cert", "loading %s and %s: %v", cfg.TLSCert, cfg.TLSKey, err)
		} else {
			s.tlsCert = &cert
		}
		if cfg.TLSCA == "" {
			bad("tls_ca", "tcp+tls needs tls_ca: the CA (or the server's own certificate) to verify the server")
		} else if pem, err := os.ReadFile(cfg.TLSCA); err != nil {
			bad("tls_ca", "%v", err)
		} else {
			s.tlsRoots = x509.NewCertPool()
			if !s.tlsRoots.AppendCertsFromPEM(pem) {
				bad("tls_ca", "%s holds no PEM certificate", cfg.TLSCA)
			}
		}
	} else {
		for key, v := range map[string]string{"tls_ca": cfg.TLSCA, "tls_cert": cfg.TLSCert, "tls_key": cfg.TLSKey} {
			if v != "" {
				bad(key, "only used with tcp+tls:// URLs")
			}
		}
	}

	if len(cfg.Devices) == 0 {
		bad("devices", "no [[inputs.modbus.devices]]: a connection needs at least one device")
	}
	devNames := map[string]int{}
	var devices []*device
	for di, dc := range cfg.Devices {
		dp := fmt.Sprintf("devices[%d]", di)
		d := &device{name: dc.Name, unit: 1, interval: dc.Interval.D(), byName: map[string]*point{}}
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
			p, perrs := checkPoint(src, pp, &dc.Points[pi], devOrder, s)
			errs = append(errs, perrs...)
			if p == nil {
				continue
			}
			if _, dup := d.byName[p.name]; dup {
				bad(pp+".name", "point %q is already defined on device %q", p.name, dc.Name)
				continue
			}
			d.byName[p.name] = p
			d.points = append(d.points, p)
		}
		devices = append(devices, d)
	}
	return s, devices, errs
}

func checkPoint(src *sdk.ConfigSource, pp string, pc *PointConfig, order byteOrder, s *settings) (*point, sdk.ConfigErrors) {
	var errs sdk.ConfigErrors
	bad := func(key, format string, args ...any) { errs = append(errs, src.Errorf(pp+"."+key, format, args...)) }
	p := &point{name: pc.Name, unit: pc.Unit, access: pc.Access, min: pc.Min, max: pc.Max,
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
			bad("type", "unknown type %q: want bool, int16, uint16, int32, uint32, int64, uint64, float32, float64 or string", pc.Type)
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
	p.scale = numcodec.CheckScaling(pc.Scale, p.offset, p.min, p.max, p.typ != tBool && p.typ != tString, p.typ.String(), bad)
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
