package serial

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/edgepipe/edgepipe/plugins/inputs/internal/numcodec"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// checkPoints checks every [[points]] table and builds the points.
func (cfg *Config) checkPoints(src *sdk.ConfigSource, s *settings, bad badFunc) {
	if len(cfg.Points) == 0 {
		bad("points", "no [[inputs.serial.points]]: say what to read from the frames")
	}
	for i := range cfg.Points {
		pp := fmt.Sprintf("points[%d]", i)
		p, perrs := checkPoint(src, pp, &cfg.Points[i], s)
		for _, e := range perrs {
			bad(e.Path, "%s", e.Msg)
		}
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
