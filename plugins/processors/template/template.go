// Package template is the processor that turns points, alarm events and
// pictures into MQTT messages, with topics and JSON payloads written as
// templates. Its defaults are exactly the payloads of SPEC section 4, and
// the core appends it with an empty configuration when a configuration has
// none, so every pipeline ends in messages.
//
// Templates are compiled once at load into a list of literal bytes and
// placeholders; rendering appends into one buffer per call and never
// reparses, which is what makes millions of points per second possible.
// Output is valid JSON by construction: literals were checked as JSON at
// load and every substituted string goes through the SDK's JSON escaping.
package template

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"strings"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/fbox"
)

//go:embed sample.conf
var sampleConf string

func init() {
	sdk.Register(sdk.Registration{
		Kind:         sdk.KindProcessor,
		Name:         "template",
		Description:  "render points, alarms and pictures into MQTT topics and JSON payloads",
		SampleConfig: sampleConf,
		Factory:      func() sdk.Plugin { return New() },
	})
}

// The default topics (SPEC section 4) are package fbox's, written with the
// template's placeholders as the prefix, the gateway's ID and the camera,
// so that the topics of the protocol have one owner.
var (
	defaults          = fbox.NewTopics("${prefix}", "${device_id}")
	DefaultDataTopic  = defaults.Data()
	DefaultAlarmTopic = defaults.Alarm()
	DefaultImageTopic = defaults.Image("${device}")
)

// The default payloads: SPEC section 4.
const (
	DefaultDataPayload  = `{"ts":"${ts}","device":"${device}","points":"${points}"}`
	DefaultPoint        = `{"name":"${name}","value":"${value}","q":"${quality}","ts":"${ts}"}`
	DefaultAlarmPayload = `{"ts":"${ts}","rule":"${rule}","point":"${point}","level":"${level}","state":"${state}","value":"${value}","message":"${message}"}`
	DefaultImagePayload = `{"ts":"${ts}","camera":"${camera}","format":"${format}","size":"${size}","data":"${data}"}`
	// DefaultImagePartPayload is used for the parts of a picture larger
	// than chunk_size when no image payload is configured.
	DefaultImagePartPayload = `{"ts":"${ts}","camera":"${camera}","format":"${format}","size":"${size}","id":"${id}","part":"${part}","parts":"${parts}","data":"${data}"}`
	// rawPartSuffix is added to the image topic of raw parts when the topic
	// does not place them itself: raw bytes have nowhere else to say which
	// part they are.
	rawPartSuffix = "/${id}/${part}/${parts}"
)

// Config is the processor's TOML table.
type Config struct {
	Aliases map[string]string `toml:"aliases"`
	QoS     *int              `toml:"qos"`
	Retain  bool              `toml:"retain"`
	Data    struct {
		Topic   *string `toml:"topic"`
		Mode    string  `toml:"mode"`
		Payload *string `toml:"payload"`
		Point   *string `toml:"point"`
		QoS     *int    `toml:"qos"`
		Retain  *bool   `toml:"retain"`
	} `toml:"data"`
	Alarm struct {
		Topic   *string `toml:"topic"`
		Payload *string `toml:"payload"`
		QoS     *int    `toml:"qos"`
		Retain  *bool   `toml:"retain"`
	} `toml:"alarm"`
	Image struct {
		Topic     *string   `toml:"topic"`
		Format    string    `toml:"format"`
		ChunkSize chunkSize `toml:"chunk_size"`
		Payload   *string   `toml:"payload"`
		QoS       *int      `toml:"qos"`
		Retain    *bool     `toml:"retain"`
	} `toml:"image"`
}

// chunkSize accepts a size string ("64KiB", as the spec writes it) or a
// plain integer.
type chunkSize int64

func (c *chunkSize) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return fmt.Errorf("chunk_size must not be negative")
		}
		*c = chunkSize(x)
		return nil
	case string:
		var s sdk.Size
		if err := s.UnmarshalText([]byte(x)); err != nil {
			return err
		}
		*c = chunkSize(s)
		return nil
	}
	return fmt.Errorf("chunk_size: want a size such as \"64KiB\" or a number of bytes")
}

type section struct {
	topic   *program
	payload *program
	qos     uint8
	retain  bool
}

// Template is the processor. Call New.
type Template struct {
	prefix, deviceID string

	data       section
	pointMode  bool
	pointProg  *program
	alarm      section
	image      section
	imagePart  *program // payload of picture parts
	partTopic  *program // topic of picture parts
	raw        bool
	chunk      int
	topicLevel int // data topic: 0 const, 1 per device, 2 per point, 3 per message
	constTopic string

	// statusMember: the point template is a JSON object that does not
	// place ${status}, so a point with a Status gets it as a last member.
	statusMember bool

	aliases   map[string]map[string]string // device -> point -> alias
	aliasFull map[string]string            // "device.point" -> alias
	units     map[string]map[string]string
	unitsFull map[string]string
	// devLen is the length of the device part of every full point name
	// the inputs offer (device names may hold dots), not a copy of its
	// schema: 20 B of map a point instead of 100.
	devLen map[string]int32

	devTopics   map[string]string
	pointTopics map[string]map[string]string
	cached      int

	hint int // arena size of the last call
	// lastTS and lastTSText cache the digits of the last time rendered:
	// the points of a poll share their time, and its 13 digits were a
	// fifth of the cost of rendering a point.
	lastTS     int64
	lastTSText []byte
	pending    []pending
	scratch    []byte
	seq        uint64

	// The payload buffer of the frame last returned, for ReleaseFrame:
	// once that frame is given back its payloads are dead and the next
	// call renders into the same buffer. Until a frame was ever given
	// back (in the gateway's process none is: the outputs' queues keep
	// the payloads) only the first calls' are remembered, so that a
	// template that is never released does not pin a payload.
	lastOut   *sdk.Frame
	lastArena []byte
	spare     []byte // given back, for the next call
	released  bool
	unclaimed int
}

// maxUnclaimed is how many calls remember their payload buffer before any
// frame was given back.
const maxUnclaimed = 2

type pending struct {
	sec        *section
	topic      string
	start, end int
}

// New returns an uninitialised processor.
func New() *Template { return &Template{} }

var (
	_ sdk.Processor     = (*Template)(nil)
	_ sdk.FrameReleaser = (*Template)(nil)
)

// Init compiles the templates; an empty configuration gives the defaults.
func (t *Template) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	var cfg Config
	src, err := sdk.DecodeConfig(req, &cfg)
	if err != nil {
		return nil, err
	}
	t.prefix, t.deviceID = req.Agent.TopicPrefix, req.Agent.DeviceID
	var errs sdk.ConfigErrors
	bad := func(path, format string, args ...any) { errs = append(errs, src.Errorf(path, format, args...)) }

	t.devLen = make(map[string]int32, len(req.Points))
	t.units, t.unitsFull = map[string]map[string]string{}, map[string]string{}
	for _, s := range req.Points {
		t.devLen[s.FullName()] = int32(len(s.Device))
		if s.Unit != "" {
			if t.units[s.Device] == nil {
				t.units[s.Device] = map[string]string{}
			}
			t.units[s.Device][s.Name] = s.Unit
			t.unitsFull[s.FullName()] = s.Unit
		}
	}
	t.aliasesFrom(cfg.Aliases, req.Points, bad)

	qos := func(path string, v *int, def uint8) uint8 {
		if v == nil {
			return def
		}
		if *v < 0 || *v > 2 {
			bad(path, "want 0, 1 or 2, got %d", *v)
			return def
		}
		return uint8(*v)
	}
	defQoS := qos("qos", cfg.QoS, 1)
	retain := func(v *bool) bool {
		if v == nil {
			return cfg.Retain
		}
		return *v
	}
	json := func(path string, v *string, def, what string, allowed set) *program {
		s, given := def, v != nil
		if given {
			s = *v
		}
		p, ce := compileJSON(s, what, allowed)
		if ce != nil {
			errs = append(errs, t.placed(src, req, path, s, given, ce))
			return nil
		}
		return p
	}
	text := func(path string, v *string, def, what string, allowed set) *program {
		s, given := def, v != nil
		if given {
			s = *v
		}
		p, ce := compileText(s, what, allowed)
		if ce != nil {
			errs = append(errs, t.placed(src, req, path, s, given, ce))
			return nil
		}
		return p
	}

	// data
	switch strings.ToLower(cfg.Data.Mode) {
	case "", "batch":
	case "point":
		t.pointMode = true
	default:
		bad("data.mode", "%q: want batch or point", cfg.Data.Mode)
	}
	payloadSet, topicSet, what := batchSet, common, "a data payload with mode = \"batch\""
	if t.pointMode {
		payloadSet, topicSet, what = pointMode, pointSet, "a data payload with mode = \"point\""
	}
	t.data = section{
		topic:   text("data.topic", cfg.Data.Topic, DefaultDataTopic, "the data topic", topicSet),
		payload: json("data.payload", cfg.Data.Payload, DefaultDataPayload, what, payloadSet),
		qos:     qos("data.qos", cfg.Data.QoS, defQoS),
		retain:  retain(cfg.Data.Retain),
	}
	t.pointProg = json("data.point", cfg.Data.Point, DefaultPoint, "the point template", pointSet)
	p := t.pointProg
	t.statusMember = p != nil && !p.uses.has(phStatus) && len(p.ops[0].lit) > 0 && p.ops[0].lit[0] == '{'

	// alarm
	t.alarm = section{
		topic:   text("alarm.topic", cfg.Alarm.Topic, DefaultAlarmTopic, "the alarm topic", alarmSet),
		payload: json("alarm.payload", cfg.Alarm.Payload, DefaultAlarmPayload, "the alarm payload", alarmSet),
		qos:     qos("alarm.qos", cfg.Alarm.QoS, defQoS),
		retain:  retain(cfg.Alarm.Retain),
	}

	// image
	switch strings.ToLower(cfg.Image.Format) {
	case "", "json":
	case "raw":
		t.raw = true
	default:
		bad("image.format", "%q: want json or raw", cfg.Image.Format)
	}
	t.chunk = int(cfg.Image.ChunkSize)
	t.image = section{
		topic:  text("image.topic", cfg.Image.Topic, DefaultImageTopic, "the image topic", imageSet),
		qos:    qos("image.qos", cfg.Image.QoS, defQoS),
		retain: retain(cfg.Image.Retain),
	}
	switch {
	case t.raw && cfg.Image.Payload != nil:
		bad("image.payload", "is not used with format = \"raw\": the payload is the picture's bytes")
	case t.raw:
	default:
		t.image.payload = json("image.payload", cfg.Image.Payload, DefaultImagePayload, "the image payload", imageSet)
		t.imagePart = t.image.payload
		if cfg.Image.Payload == nil {
			t.imagePart = json("image.payload", nil, DefaultImagePartPayload, "the image payload", imageSet)
		} else if t.chunk > 0 && t.image.payload != nil && !t.image.payload.uses.has(phPart) {
			bad("image.payload", "with chunk_size > 0 the payload must place the parts: use ${id}, ${part} and ${parts}")
		}
	}
	t.partTopic = t.image.topic
	if t.raw && t.chunk > 0 && t.image.topic != nil && !t.image.topic.uses.has(phPart) {
		t.partTopic = text("image.topic", nil, topicSource(cfg.Image.Topic, DefaultImageTopic)+rawPartSuffix, "the image topic", imageSet)
	}
	if len(errs) > 0 {
		return nil, errs
	}

	u := t.data.topic.uses
	switch {
	case u&setOf(phTS, phValue, phQuality, phStatus) != 0:
		t.topicLevel = 3
	case u&setOf(phName, phPoint, phUnit) != 0:
		t.topicLevel = 2
	case u.has(phDevice):
		t.topicLevel = 1
	default:
		t.constTopic = string(t.topicText(nil, t.data.topic, &item{batch: &sdk.Batch{}}))
	}
	t.devTopics, t.pointTopics = map[string]string{}, map[string]map[string]string{}
	return &sdk.InitResponse{}, nil
}

func topicSource(v *string, def string) string {
	if v != nil {
		return *v
	}
	return def
}

// aliasesFrom checks the aliases: each names a point (when the registry is
// known), is not empty, and no two points of a device end up reported
// under the same name.
func (t *Template) aliasesFrom(aliases map[string]string, points []sdk.PointSchema, bad func(string, string, ...any)) {
	if len(aliases) == 0 {
		return
	}
	t.aliases, t.aliasFull = map[string]map[string]string{}, map[string]string{}
	for _, full := range sortedKeys(aliases) {
		a := aliases[full]
		if a == "" {
			bad("aliases", "alias of %q is empty", full)
			continue
		}
		dev, name := t.split(full)
		if len(points) > 0 {
			if _, ok := t.devLen[full]; !ok {
				bad("aliases", "%q is not a point of any input", full)
				continue
			}
		}
		if t.aliases[dev] == nil {
			t.aliases[dev] = map[string]string{}
		}
		t.aliases[dev][name] = a
		t.aliasFull[full] = a
	}
	// Names as reported, per device.
	seen := map[string]map[string]string{} // device -> reported name -> full name
	add := func(dev, reported, full string) {
		if seen[dev] == nil {
			seen[dev] = map[string]string{}
		}
		if other, dup := seen[dev][reported]; dup && other != full {
			a, b := min(other, full), max(other, full)
			bad("aliases", "%q and %q would both be reported as %q", a, b, reported)
			return
		}
		seen[dev][reported] = full
	}
	for _, full := range sortedKeys(t.aliasFull) {
		dev, _ := t.split(full)
		add(dev, t.aliasFull[full], full)
	}
	for _, s := range points {
		if !s.Access.Publishes() {
			continue
		}
		if _, aliased := t.aliasFull[s.FullName()]; !aliased {
			add(s.Device, s.Name, s.FullName())
		}
	}
}

// placed turns a template compile error into a ConfigError at the file
// line of the mistake: for a multi-line TOML string (”'...”') the
// template's own line is added to the key's line.
func (t *Template) placed(src *sdk.ConfigSource, req *sdk.InitRequest, path, tmpl string, given bool, ce *compileError) sdk.ConfigError {
	if !given {
		// Defaults compile; a failure here is a bug, said plainly.
		return src.Errorf(path, "built-in default does not compile: %s", ce.msg)
	}
	off := min(max(ce.off, 0), len(tmpl))
	line := 1 + strings.Count(tmpl[:off], "\n")
	col := 1 + len([]rune(tmpl[strings.LastIndexByte(tmpl[:off], '\n')+1:off]))
	e := src.Errorf(path, "template line %d, column %d: %s", line, col, ce.msg)
	if strings.IndexByte(tmpl, '\n') < 0 {
		e = src.Errorf(path, "column %d of the template: %s", col, ce.msg)
		return e
	}
	if e.Line > 0 {
		base := max(req.Line, 1)
		lines := bytes.Split(req.Config, []byte("\n"))
		if k := e.Line - base; k >= 0 && k < len(lines) {
			_, val, ok := bytes.Cut(lines[k], []byte("="))
			val = bytes.TrimLeft(val, " \t")
			if ok && (bytes.HasPrefix(val, []byte("'''")) || bytes.HasPrefix(val, []byte(`"""`))) {
				first := e.Line
				if len(bytes.TrimRight(val[3:], "\r")) == 0 {
					first++ // TOML drops the newline right after the opening quotes
				}
				e.Line = first + line - 1
			}
		}
	}
	return e
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// Deterministic error order.
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// Close has nothing to release.
func (t *Template) Close(context.Context) error { return nil }

// maxCached bounds the topic caches: names come from the point registry in
// practice, but a frame could carry anything.
const maxCached = 1 << 16

// dataTopic returns the topic of a data message, from a cache when the
// topic only depends on the device or the point.
func (t *Template) dataTopic(it *item) string {
	switch t.topicLevel {
	case 0:
		return t.constTopic
	case 1:
		if s, ok := t.devTopics[it.batch.Device]; ok {
			return s
		}
		t.scratch = t.topicText(t.scratch[:0], t.data.topic, it)
		s := string(t.scratch)
		if t.cached < maxCached {
			t.devTopics[strings.Clone(it.batch.Device)] = s
			t.cached++
		}
		return s
	case 2:
		m := t.pointTopics[it.batch.Device]
		if s, ok := m[it.point.Name]; ok {
			return s
		}
		t.scratch = t.topicText(t.scratch[:0], t.data.topic, it)
		s := string(t.scratch)
		if t.cached < maxCached {
			if m == nil {
				m = map[string]string{}
				t.pointTopics[strings.Clone(it.batch.Device)] = m
			}
			m[strings.Clone(it.point.Name)] = s
			t.cached++
		}
		return s
	}
	t.scratch = t.topicText(t.scratch[:0], t.data.topic, it)
	return string(t.scratch)
}

// Process renders every batch, alarm and picture of f into f.Messages and
// removes them from the frame. Payloads of one call share one buffer,
// each message holding its own capacity-limited slice of it, so no append
// can touch a payload already handed on. The buffer is fresh unless the
// frame of an earlier call was given back (ReleaseFrame); in the
// gateway's process that never happens, so a payload held by a queue is
// never written again.
//
// The template keeps no reference into the frames it is given or returns
// beyond the identity of the last one, which is what implementing
// sdk.FrameReleaser promises.
func (t *Template) Process(_ context.Context, f *sdk.Frame) (*sdk.Frame, error) {
	if f == nil {
		return f, nil
	}
	var arena []byte
	if cap(t.spare) >= t.hint {
		arena = t.spare[:0]
	} else {
		arena = make([]byte, 0, t.hint)
	}
	t.spare = nil
	t.pending = t.pending[:0]
	for bi := range f.Batches {
		b := &f.Batches[bi]
		if len(b.Points) == 0 {
			continue
		}
		it := item{batch: b}
		if !t.pointMode {
			start := len(arena)
			arena = t.render(arena, t.data.payload, &it)
			t.pending = append(t.pending, pending{sec: &t.data, topic: t.dataTopic(&it), start: start, end: len(arena)})
			continue
		}
		for pi := range b.Points {
			it.point = &b.Points[pi]
			start := len(arena)
			arena = t.render(arena, t.data.payload, &it)
			t.pending = append(t.pending, pending{sec: &t.data, topic: t.dataTopic(&it), start: start, end: len(arena)})
		}
	}
	for ai := range f.Alarms {
		it := item{alarm: &f.Alarms[ai]}
		start := len(arena)
		arena = t.render(arena, t.alarm.payload, &it)
		t.scratch = t.topicText(t.scratch[:0], t.alarm.topic, &it)
		topic := string(t.scratch)
		t.pending = append(t.pending, pending{sec: &t.alarm, topic: topic, start: start, end: len(arena)})
	}
	// Room for the next call's few more digits: a poll renders about as
	// much as the last one. The arena is the messages' payload, held by
	// the queue until delivered, so it is not reused; an eighth more (as
	// before) cost a 72 KB allocation for a 59 KB message, 64 KB now.
	t.hint = len(arena) + len(arena)/32 + 64
	for i := range t.pending {
		p := &t.pending[i]
		f.Messages = append(f.Messages, sdk.Message{Topic: p.topic, Payload: arena[p.start:p.end:p.end], QoS: p.sec.qos, Retain: p.sec.retain})
	}
	clear(t.pending)
	for pi := range f.Pictures {
		t.picture(f, &f.Pictures[pi])
	}
	f.Batches, f.Alarms, f.Pictures = nil, nil, nil
	t.lastOut, t.lastArena = nil, nil
	if !t.released {
		t.unclaimed = min(t.unclaimed+1, maxUnclaimed+1)
	}
	if t.released || t.unclaimed <= maxUnclaimed {
		t.lastOut, t.lastArena = f, arena
	}
	return f, nil
}

// ReleaseFrame takes back the frame the last Process call returned
// (sdk.FrameReleaser): its payloads are no longer read, and the next call
// renders into their buffer. Any other frame is ignored. The SDK calls it
// in the template's own process, after the reply is encoded and before
// the next Process call.
func (t *Template) ReleaseFrame(f *sdk.Frame) {
	if f == nil || f != t.lastOut {
		return
	}
	t.released = true
	t.spare = t.lastArena
	t.lastOut, t.lastArena = nil, nil
}

// picture renders one picture, in parts when it is larger than chunk_size.
// Pictures get their own allocations: a large one must not make every
// later call reserve its size.
func (t *Template) picture(f *sdk.Frame, pic *sdk.Picture) {
	t.seq++
	it := item{pic: pic, parts: 1, part: 1, chunk: pic.Data}
	it.id = pic.Device + "-" + strconv.FormatInt(pic.TS, 10) + "-" + strconv.FormatUint(t.seq, 10)
	topic, payload := t.image.topic, t.image.payload
	if t.chunk > 0 && len(pic.Data) > t.chunk {
		it.parts = (len(pic.Data) + t.chunk - 1) / t.chunk
		topic, payload = t.partTopic, t.imagePart
	}
	for part := 1; part <= it.parts; part++ {
		it.part = part
		if it.parts > 1 {
			lo := (part - 1) * t.chunk
			it.chunk = pic.Data[lo:min(lo+t.chunk, len(pic.Data))]
		}
		var body []byte
		if t.raw {
			body = bytes.Clone(it.chunk)
			if body == nil {
				body = []byte{}
			}
		} else {
			t.scratch = t.render(t.scratch[:0], payload, &it)
			body = bytes.Clone(t.scratch)
		}
		f.Messages = append(f.Messages, sdk.Message{
			Topic:   string(t.topicText(t.scratch[:0], topic, &it)),
			Payload: body, QoS: t.image.qos, Retain: t.image.retain,
		})
	}
	if cap(t.scratch) > 1<<20 {
		t.scratch = nil // do not keep a picture-sized buffer between calls
	}
}
