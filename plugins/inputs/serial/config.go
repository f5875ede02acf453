package serial

import (
	"fmt"
	"github.com/edgepipe/edgepipe/plugins/inputs/internal/numcodec"
	"regexp"
	"strings"
	"time"

	bug "go.bug.st/serial"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Config is one [[inputs.serial]] table: one port, one device.
type Config struct {
	Device      string        `toml:"device"`
	Port        string        `toml:"port"`
	BaudRate    int           `toml:"baud_rate"`
	DataBits    int           `toml:"data_bits"`
	Parity      string        `toml:"parity"`
	StopBits    int           `toml:"stop_bits"`
	Mode        string        `toml:"mode"`
	Interval    sdk.Duration  `toml:"interval"`
	Request     string        `toml:"request"`
	Timeout     sdk.Duration  `toml:"timeout"`
	Delimiter   string        `toml:"delimiter"`
	FrameLength int           `toml:"frame_length"`
	IdleGap     sdk.Duration  `toml:"idle_gap"`
	Start       string        `toml:"start"`
	Checksum    string        `toml:"checksum"`
	Points      []PointConfig `toml:"points"`
}

// PointConfig is one [[inputs.serial.points]].
type PointConfig struct {
	Name      string     `toml:"name"`
	Pattern   string     `toml:"pattern"`
	Type      string     `toml:"type"`
	Position  *int       `toml:"position"`
	ByteOrder string     `toml:"byte_order"`
	Scale     *float64   `toml:"scale"`
	Offset    float64    `toml:"offset"`
	Unit      string     `toml:"unit"`
	Access    sdk.Access `toml:"access"`
	Write     string     `toml:"write"`
	Min       *float64   `toml:"min"`
	Max       *float64   `toml:"max"`
}

const (
	defaultBaud     = 9600
	defaultInterval = time.Second
	defaultTimeout  = time.Second
)

// settings is the checked configuration.
type settings struct {
	device   string
	port     string
	mode     bug.Mode
	poll     bool
	interval time.Duration // poll: period; stream: expected period of frames, 0 = not watched
	timeout  time.Duration
	request  []tmplPart
	delim    []byte
	length   int
	gap      time.Duration
	start    []byte
	checksum checksum
	points   []*point          // all, in configuration order
	byName   map[string]*point //
	read     []*point          // the points read from frames (pub, pubsub)
}

// check validates the whole table and reports every problem at once, each
// at its key path.
func (cfg *Config) check(src *sdk.ConfigSource) (*settings, sdk.ConfigErrors) {
	var errs sdk.ConfigErrors
	bad := func(path, format string, args ...any) { errs = append(errs, src.Errorf(path, format, args...)) }
	s := &settings{device: cfg.Device, port: cfg.Port, interval: cfg.Interval.D(), timeout: cfg.Timeout.D(),
		byName: map[string]*point{}}

	switch {
	case cfg.Device == "":
		bad("device", "is required: the device name points are reported under")
	case strings.ContainsAny(cfg.Device, ". \t/#+"):
		bad("device", "%q: a device name cannot hold dots, spaces, '/', '#' or '+' (it is part of point names and topics)", cfg.Device)
	}
	if cfg.Port == "" {
		bad("port", "is required, e.g. /dev/ttyUSB0")
	}

	s.mode = bug.Mode{BaudRate: cfg.BaudRate, DataBits: cfg.DataBits}
	if s.mode.BaudRate == 0 {
		s.mode.BaudRate = defaultBaud
	} else if s.mode.BaudRate < 0 {
		bad("baud_rate", "%d is not a baud rate", cfg.BaudRate)
	}
	if s.mode.DataBits == 0 {
		s.mode.DataBits = 8
	} else if s.mode.DataBits < 5 || s.mode.DataBits > 8 {
		bad("data_bits", "%d: want 5..8", cfg.DataBits)
	}
	switch strings.ToLower(cfg.Parity) {
	case "", "none", "n":
		s.mode.Parity = bug.NoParity
	case "even", "e":
		s.mode.Parity = bug.EvenParity
	case "odd", "o":
		s.mode.Parity = bug.OddParity
	default:
		bad("parity", "%q: want none, even or odd", cfg.Parity)
	}
	switch cfg.StopBits {
	case 0, 1:
		s.mode.StopBits = bug.OneStopBit
	case 2:
		s.mode.StopBits = bug.TwoStopBits
	default:
		bad("stop_bits", "%d: want 1 or 2", cfg.StopBits)
	}

	switch strings.ToLower(cfg.Mode) {
	case "", "stream":
		if cfg.Request != "" {
			bad("request", "only applies to mode = \"poll\" (in stream mode the device talks by itself)")
		}
	case "poll":
		s.poll = true
		if s.interval == 0 {
			s.interval = defaultInterval
		}
		if cfg.Request == "" {
			bad("request", "mode = \"poll\" needs the request to send, e.g. 'R\\r\\n'")
		}
	default:
		bad("mode", "%q: want stream or poll", cfg.Mode)
	}
	if s.timeout == 0 {
		s.timeout = defaultTimeout
	}
	if s.poll && s.timeout > s.interval {
		bad("timeout", "%s is longer than interval %s: a reply could not be awaited before the next request", s.timeout, s.interval)
	}

	ck, ok := parseChecksum(strings.ToLower(cfg.Checksum))
	if !ok {
		bad("checksum", "%q: want none, sum8, xor8 or crc16-modbus", cfg.Checksum)
	}
	s.checksum = ck
	if cfg.Request != "" {
		t, err := parseTemplate(cfg.Request, false)
		if err != nil {
			bad("request", "%v", err)
		}
		s.request = t
	}

	var framings []string
	if cfg.Delimiter != "" {
		framings = append(framings, "delimiter")
		d, err := unescape(cfg.Delimiter)
		if err != nil {
			bad("delimiter", "%v", err)
		}
		s.delim = d
	}
	if cfg.FrameLength != 0 {
		framings = append(framings, "frame_length")
		if cfg.FrameLength < 0 || cfg.FrameLength > maxFrame {
			bad("frame_length", "%d: want 1..%d bytes", cfg.FrameLength, maxFrame)
		} else {
			s.length = cfg.FrameLength
		}
	}
	if cfg.IdleGap != 0 {
		framings = append(framings, "idle_gap")
		s.gap = cfg.IdleGap.D()
		if s.gap >= s.timeout {
			bad("idle_gap", "%s must be shorter than timeout %s", s.gap, s.timeout)
		}
	}
	switch len(framings) {
	case 0:
		bad("delimiter", "no framing: set one of delimiter, frame_length or idle_gap")
	case 1:
	default:
		bad(framings[1], "%s and %s are both set: a frame ends by exactly one of delimiter, frame_length or idle_gap",
			framings[0], framings[1])
	}
	if cfg.Start != "" {
		st, err := unescape(cfg.Start)
		if err != nil {
			bad("start", "%v", err)
		}
		s.start = st
	}
	if s.length > 0 && s.length <= len(s.start)+s.checksum.size() {
		bad("frame_length", "%d bytes leave no room for data after %d start and %d checksum bytes",
			s.length, len(s.start), s.checksum.size())
	}

	if len(cfg.Points) == 0 {
		bad("points", "no [[inputs.serial.points]]: say what to read from the frames")
	}
	for i := range cfg.Points {
		pp := fmt.Sprintf("points[%d]", i)
		p, perrs := checkPoint(src, pp, &cfg.Points[i], s)
		errs = append(errs, perrs...)
		if p == nil {
			continue
		}
		if _, dup := s.byName[p.name]; dup {
			bad(pp+".name", "point %q is already defined", p.name)
			continue
		}
		s.byName[p.name] = p
		s.points = append(s.points, p)
		if p.access.Publishes() {
			s.read = append(s.read, p)
		}
	}
	return s, errs
}

func checkPoint(src *sdk.ConfigSource, pp string, pc *PointConfig, s *settings) (*point, sdk.ConfigErrors) {
	var errs sdk.ConfigErrors
	bad := func(key, format string, args ...any) { errs = append(errs, src.Errorf(pp+"."+key, format, args...)) }
	p := &point{name: pc.Name, unit: pc.Unit, access: pc.Access, min: pc.Min, max: pc.Max, pos: -1,
		scale: 1, offset: pc.Offset}
	if pc.Name == "" {
		bad("name", "is required")
	} else if strings.ContainsAny(pc.Name, " \t/#+") {
		bad("name", "%q: a point name cannot hold spaces, '/', '#' or '+'", pc.Name)
	}
	text, binary := pc.Pattern != "", pc.Position != nil
	switch {
	case text && binary:
		bad("position", "a point reads either text (pattern) or binary (position), not both")
	case !text && !binary && p.access.Publishes():
		bad("pattern", "a point that is read needs pattern (text frames) or position (binary frames)")
	}
	if text {
		re, err := regexp.Compile(pc.Pattern)
		switch {
		case err != nil:
			bad("pattern", "%v", err)
		case re.SubexpIndex("value") < 0:
			bad("pattern", "%q has no group named value: write (?P<value>...) around the value", pc.Pattern)
		default:
			p.re, p.group = re, re.SubexpIndex("value")
		}
	}

	p.typ = tFloat64
	if pc.Type != "" {
		t, ok := parseType(pc.Type)
		if !ok {
			bad("type", "unknown type %q", pc.Type)
			return nil, errs
		}
		p.typ = t
	} else if binary {
		bad("type", "a binary point needs its type: bool, int8, uint8, int16, uint16, int32, uint32, int64, uint64, float32 or float64")
	}
	if text && !p.typ.textType() {
		bad("type", "%s: a pattern's text reads as float64, int64, bool or string", p.typ)
	}
	if binary {
		switch {
		case p.typ == tString:
			bad("type", "string has no binary form: use pattern for text")
		case *pc.Position < 0:
			bad("position", "%d: want the byte index of the value in the frame, from 0", *pc.Position)
		case s.length > 0 && *pc.Position+p.typ.size() > s.length-s.checksum.size():
			bad("position", "%s at byte %d runs past the data of a %d-byte frame (%d checksum bytes)",
				p.typ, *pc.Position, s.length, s.checksum.size())
		default:
			p.pos = *pc.Position
		}
	}
	if pc.ByteOrder != "" {
		o, ok := parseOrder(pc.ByteOrder)
		switch {
		case !ok:
			bad("byte_order", "%q: want ABCD, CDAB, BADC or DCBA", pc.ByteOrder)
		case text:
			bad("byte_order", "only applies to binary points (position)")
		}
		p.order = o
	}
	p.scale = numcodec.CheckScaling(pc.Scale, p.offset, p.min, p.max, p.typ != tBool && p.typ != tString, p.typ.String(), bad)
	p.scaled = p.scale != 1 || p.offset != 0
	switch {
	case p.access.Subscribes() && pc.Write == "":
		bad("write", "a %s point needs a write template, the bytes that set it, e.g. 'S${value}\\r\\n'", p.access)
	case !p.access.Subscribes() && pc.Write != "":
		bad("write", "only sub and pubsub points are written; this one is %s", p.access)
	case pc.Write != "":
		t, err := parseTemplate(pc.Write, true)
		if err != nil {
			bad("write", "%v", err)
		}
		p.write = t
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}
