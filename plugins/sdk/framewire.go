package sdk

import (
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/edgepipe/edgepipe/plugins/sdk/pb"
)

// The hot messages of the plugin protocol (a frame, its response, a batch
// of messages to publish) written and read straight between the SDK's
// values and protobuf's wire format, without the generated messages in
// between: converting a 1000-point frame to a pb.Frame and marshalling it
// allocated its columns twice and walked them three times, on both sides
// of every hop. The bytes are exactly those of edgepipe.proto (field
// numbers, packed columns, proto3 defaults left out), so a peer built with
// an older SDK, which uses the generated code, reads and writes the same.
//
// The decoder takes the canonical encoding (each packed column once, as
// protobuf-go and this encoder write it) on its fast path and hands
// anything else (a column split in two, unpacked, malformed) to the
// generated code, which defines the answer. The rare parts of a frame
// (alarms, pictures, requests, state changes) go through the generated
// code always.

// errInvalidUTF8 mirrors protobuf-go's refusal to marshal a proto3 string
// that is not UTF-8.
var errInvalidUTF8 = errors.New("proto: string field contains invalid UTF-8")

// Field numbers of edgepipe.proto.
const (
	frameBatches  = 1
	frameAlarms   = 2
	framePictures = 3
	frameMessages = 4
	frameRequests = 5

	batchDevice     = 1
	batchTS         = 2
	batchNames      = 3
	batchNameLens   = 4
	batchKinds      = 5
	batchBits       = 6
	batchStrings    = 7
	batchStringLens = 8
	batchQualities  = 9
	batchTSDelta    = 10
	batchReadBack   = 11
	batchStatuses   = 12 // map<uint32, bytes>: one entry per point with a Status

	statusKey   = 1 // a map entry's key and value
	statusValue = 2

	msgTopic   = 1
	msgPayload = 2
	msgQoS     = 3
	msgRetain  = 4

	respFrame = 1
	respState = 2

	publishMessages = 1
	publishBudget   = 2
)

func sizeBytesField(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendStringField(b []byte, num protowire.Number, v string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, v)
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// batchLayout is what sizing a batch learnt, reused while writing it.
type batchLayout struct {
	size                 int // body
	names, nameLens      int // bytes of the names and of their packed lengths
	strs, strLens, nStrs int
	tsDelta              int
	statuses             int // bytes of the statuses' map entries, tags included
}

// statusEntry is the size of the map entry body of point i's status.
func statusEntry(i int, status string) int {
	return protowire.SizeTag(statusKey) + protowire.SizeVarint(uint64(i)) + sizeBytesField(statusValue, len(status))
}

func layoutBatch(bt *Batch) (batchLayout, error) {
	var l batchLayout
	if !utf8.ValidString(bt.Device) {
		return l, errInvalidUTF8
	}
	for i := range bt.Points {
		p := &bt.Points[i]
		l.names += len(p.Name)
		l.nameLens += protowire.SizeVarint(uint64(len(p.Name)))
		if p.Value.kind == KindString {
			l.strs += len(p.Value.str)
			l.strLens += protowire.SizeVarint(uint64(len(p.Value.str)))
			l.nStrs++
		}
		l.tsDelta += protowire.SizeVarint(protowire.EncodeZigZag(p.TS - bt.TS))
		if p.Status != "" {
			l.statuses += sizeBytesField(batchStatuses, statusEntry(i, p.Status))
		}
	}
	n := len(bt.Points)
	s := 0
	if bt.Device != "" {
		s += sizeBytesField(batchDevice, len(bt.Device))
	}
	if bt.TS != 0 {
		s += protowire.SizeTag(batchTS) + protowire.SizeVarint(uint64(bt.TS))
	}
	if l.names > 0 {
		s += sizeBytesField(batchNames, l.names)
	}
	if n > 0 {
		s += sizeBytesField(batchNameLens, l.nameLens)
		s += sizeBytesField(batchKinds, n)
		s += sizeBytesField(batchBits, 8*n)
	}
	if l.strs > 0 {
		s += sizeBytesField(batchStrings, l.strs)
	}
	if l.nStrs > 0 {
		s += sizeBytesField(batchStringLens, l.strLens)
	}
	if n > 0 {
		s += sizeBytesField(batchQualities, n)
		s += sizeBytesField(batchTSDelta, l.tsDelta)
	}
	if bt.ReadBack {
		s += protowire.SizeTag(batchReadBack) + 1
	}
	s += l.statuses
	l.size = s
	return l, nil
}

func appendBatch(b []byte, bt *Batch, l *batchLayout) []byte {
	pts := bt.Points
	n := len(pts)
	if bt.Device != "" {
		b = appendStringField(b, batchDevice, bt.Device)
	}
	if bt.TS != 0 {
		b = appendVarintField(b, batchTS, uint64(bt.TS))
	}
	if l.names > 0 {
		b = protowire.AppendTag(b, batchNames, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(l.names))
		for i := range pts {
			b = append(b, pts[i].Name...)
		}
	}
	if n > 0 {
		b = protowire.AppendTag(b, batchNameLens, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(l.nameLens))
		for i := range pts {
			b = protowire.AppendVarint(b, uint64(len(pts[i].Name)))
		}
		b = protowire.AppendTag(b, batchKinds, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		for i := range pts {
			b = append(b, byte(pts[i].Value.kind))
		}
		b = protowire.AppendTag(b, batchBits, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(8*n))
		for i := range pts {
			b = binary.LittleEndian.AppendUint64(b, pts[i].Value.bits)
		}
	}
	if l.strs > 0 {
		b = protowire.AppendTag(b, batchStrings, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(l.strs))
		for i := range pts {
			if pts[i].Value.kind == KindString {
				b = append(b, pts[i].Value.str...)
			}
		}
	}
	if l.nStrs > 0 {
		b = protowire.AppendTag(b, batchStringLens, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(l.strLens))
		for i := range pts {
			if pts[i].Value.kind == KindString {
				b = protowire.AppendVarint(b, uint64(len(pts[i].Value.str)))
			}
		}
	}
	if n > 0 {
		b = protowire.AppendTag(b, batchQualities, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		for i := range pts {
			b = append(b, byte(pts[i].Quality))
		}
		b = protowire.AppendTag(b, batchTSDelta, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(l.tsDelta))
		for i := range pts {
			b = protowire.AppendVarint(b, protowire.EncodeZigZag(pts[i].TS-bt.TS))
		}
	}
	if bt.ReadBack {
		b = appendVarintField(b, batchReadBack, 1)
	}
	if l.statuses > 0 {
		for i := range pts {
			if st := pts[i].Status; st != "" {
				b = protowire.AppendTag(b, batchStatuses, protowire.BytesType)
				b = protowire.AppendVarint(b, uint64(statusEntry(i, st)))
				b = appendVarintField(b, statusKey, uint64(i))
				b = appendStringField(b, statusValue, st)
			}
		}
	}
	return b
}

func messageSize(m *Message) (int, error) {
	if !utf8.ValidString(m.Topic) {
		return 0, errInvalidUTF8
	}
	s := 0
	if m.Topic != "" {
		s += sizeBytesField(msgTopic, len(m.Topic))
	}
	if len(m.Payload) > 0 {
		s += sizeBytesField(msgPayload, len(m.Payload))
	}
	if m.QoS != 0 {
		s += protowire.SizeTag(msgQoS) + protowire.SizeVarint(uint64(m.QoS))
	}
	if m.Retain {
		s += protowire.SizeTag(msgRetain) + 1
	}
	return s, nil
}

func appendMessage(b []byte, m *Message) []byte {
	if m.Topic != "" {
		b = appendStringField(b, msgTopic, m.Topic)
	}
	if len(m.Payload) > 0 {
		b = appendBytesField(b, msgPayload, m.Payload)
	}
	if m.QoS != 0 {
		b = appendVarintField(b, msgQoS, uint64(m.QoS))
	}
	if m.Retain {
		b = appendVarintField(b, msgRetain, 1)
	}
	return b
}

// messagesWire is the encoding of a list of messages as repeated field num.
type messagesWire struct {
	msgs  []Message
	sizes []int
	size  int
}

func (w *messagesWire) prepare(num protowire.Number, msgs []Message) error {
	w.msgs, w.size = msgs, 0
	w.sizes = make([]int, len(msgs))
	for i := range msgs {
		s, err := messageSize(&msgs[i])
		if err != nil {
			return err
		}
		w.sizes[i] = s
		w.size += sizeBytesField(num, s)
	}
	return nil
}

func (w *messagesWire) append(b []byte, num protowire.Number) []byte {
	for i := range w.msgs {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(w.sizes[i]))
		b = appendMessage(b, &w.msgs[i])
	}
	return b
}

// frameWire is a frame's encoding as a pb.Frame body, sized once.
type frameWire struct {
	f        *Frame
	batches  []batchLayout
	alarms   [][]byte // encoded pb.Alarm, pb.Picture, pb.Request
	pictures [][]byte
	requests [][]byte
	messages messagesWire
	size     int
}

func marshalEach[T any](items []T, conv func(*T) proto.Message) ([][]byte, int, error) {
	if len(items) == 0 {
		return nil, 0, nil
	}
	out := make([][]byte, len(items))
	size := 0
	for i := range items {
		b, err := proto.Marshal(conv(&items[i]))
		if err != nil {
			return nil, 0, err
		}
		out[i] = b
		size += protowire.SizeTag(1) + protowire.SizeBytes(len(b))
	}
	return out, size, nil
}

func (w *frameWire) prepare(f *Frame) error {
	*w = frameWire{f: f}
	if f == nil {
		return nil
	}
	if len(f.Batches) > 0 {
		w.batches = make([]batchLayout, len(f.Batches))
		for i := range f.Batches {
			l, err := layoutBatch(&f.Batches[i])
			if err != nil {
				return err
			}
			w.batches[i] = l
			w.size += sizeBytesField(frameBatches, l.size)
		}
	}
	var err error
	var n int
	if w.alarms, n, err = marshalEach(f.Alarms, func(a *Alarm) proto.Message {
		return &pb.Alarm{Ts: a.TS, Rule: a.Rule, Point: a.Point, Level: a.Level, State: a.State,
			Value: valueToPB(a.Value), Message: a.Message}
	}); err != nil {
		return err
	}
	w.size += n
	if w.pictures, n, err = marshalEach(f.Pictures, func(p *Picture) proto.Message {
		return &pb.Picture{Ts: p.TS, Device: p.Device, Format: p.Format, Data: p.Data}
	}); err != nil {
		return err
	}
	w.size += n
	if w.requests, n, err = marshalEach(f.Requests, func(r *Request) proto.Message {
		return &pb.Request{Point: r.Point, Value: valueToPB(r.Value), Reason: r.Reason}
	}); err != nil {
		return err
	}
	w.size += n
	if err := w.messages.prepare(frameMessages, f.Messages); err != nil {
		return err
	}
	w.size += w.messages.size
	return nil
}

func appendEach(b []byte, num protowire.Number, items [][]byte) []byte {
	for _, it := range items {
		b = appendBytesField(b, num, it)
	}
	return b
}

func (w *frameWire) append(b []byte) []byte {
	if w.f == nil {
		return b
	}
	for i := range w.f.Batches {
		b = protowire.AppendTag(b, frameBatches, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(w.batches[i].size))
		b = appendBatch(b, &w.f.Batches[i], &w.batches[i])
	}
	b = appendEach(b, frameAlarms, w.alarms)
	b = appendEach(b, framePictures, w.pictures)
	b = w.messages.append(b, frameMessages)
	return appendEach(b, frameRequests, w.requests)
}

// wireFrame is a pb.Frame on the wire (Process's request), both ways: the
// host writes it from F, the plugin reads it into F.
type wireFrame struct {
	F   *Frame
	enc frameWire
	err error
	// points, when set, lends the decoded batches' points slices (the
	// plugin's end of a session); decoded keeps them as decoded, for
	// recycle, since the processor may change F's own.
	points  *pointPool
	decoded [][]Point
}

func newWireFrame(f *Frame) *wireFrame {
	w := &wireFrame{F: f}
	w.err = w.enc.prepare(f)
	return w
}

func (w *wireFrame) SizeWire() (int, error)     { return w.enc.size, w.err }
func (w *wireFrame) AppendWire(b []byte) []byte { return w.enc.append(b) }

func (w *wireFrame) UnmarshalWire(b []byte) error {
	f, err := decodeFrameWith(b, w.points, nil)
	w.F, w.decoded = f, w.decoded[:0]
	if w.points != nil && err == nil {
		for i := range f.Batches {
			w.decoded = append(w.decoded, f.Batches[i].Points)
		}
	}
	return err
}

// recycle gives the decoded points slices to the pool they came from, for
// the next request: call it only once nothing refers to them any more.
func (w *wireFrame) recycle() {
	if w.points == nil {
		return
	}
	for _, s := range w.decoded {
		w.points.put(s)
	}
	w.decoded = nil
}

// wireFrameResponse is a pb.FrameResponse on the wire (the answer to
// Gather, Process, HandleCommand), both ways.
type wireFrameResponse struct {
	F     *Frame
	State []*pb.StateChange
	// points, when set, lends the decoded batches' points slices (the
	// host's end, see pointPool).
	points *pointPool
	// payloads is the buffer, from points, that the decoded messages'
	// payloads are parts of (the host's end; nil: none, or allocated one
	// by one). The caller may give it back (pointPool.putArena) once no
	// message refers to it: grpcClient.Process lends it with the frame.
	payloads []byte
	enc      frameWire
	state    [][]byte
	size     int
}

func newWireFrameResponse(f *Frame, state []*pb.StateChange) (*wireFrameResponse, error) {
	w := &wireFrameResponse{F: f, State: state}
	if err := w.enc.prepare(f); err != nil {
		return nil, err
	}
	w.size = sizeBytesField(respFrame, w.enc.size)
	for _, c := range state {
		b, err := proto.Marshal(c)
		if err != nil {
			return nil, err
		}
		w.state = append(w.state, b)
		w.size += sizeBytesField(respState, len(b))
	}
	return w, nil
}

func (w *wireFrameResponse) SizeWire() (int, error) { return w.size, nil }

func (w *wireFrameResponse) AppendWire(b []byte) []byte {
	// The frame is always present, as in the generated code's responses.
	b = protowire.AppendTag(b, respFrame, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(w.enc.size))
	b = w.enc.append(b)
	return appendEach(b, respState, w.state)
}

func (w *wireFrameResponse) UnmarshalWire(b []byte) error {
	err := w.fast(b)
	if err == errMerge {
		var r pb.FrameResponse
		if err := proto.Unmarshal(b, &r); err != nil {
			return err
		}
		w.F, w.State = frameFromPB(r.Frame), r.State
		return nil
	}
	return err
}

func (w *wireFrameResponse) fast(b []byte) error {
	w.F, w.State = nil, nil
	var fd wireField
	for ok := true; len(b) > 0; {
		if b, ok = nextField(b, &fd); !ok {
			return errWire
		}
		switch {
		case fd.bytes(respFrame):
			// A message field seen twice is merged: only this decoder's
			// fast path would get that wrong.
			if w.F != nil {
				return errMerge
			}
			var arena *[]byte
			if w.points != nil {
				arena = &w.payloads
			}
			f, err := decodeFrameWith(fd.b, w.points, arena)
			if err != nil {
				return err
			}
			w.F = f
		case fd.bytes(respState):
			c := &pb.StateChange{}
			if err := proto.Unmarshal(fd.b, c); err != nil {
				return err
			}
			w.State = append(w.State, c)
		}
	}
	if w.F == nil {
		w.F = &Frame{}
	}
	return nil
}

// wirePublish is a pb.PublishRequest on the wire, both ways.
type wirePublish struct {
	Msgs   []Message
	Budget int64
	enc    messagesWire
	err    error
	// pool, when set, lends the decoded request's memory (an output's
	// process, for an output that implements FrameReleaser: see
	// grpcServer.recycle): the payloads are decoded into arena, one
	// buffer for the call, the messages into list, and the topics are
	// the pool's strings. recycle gives arena and list back.
	pool  *pointPool
	arena []byte
	list  []Message
}

func newWirePublish(msgs []Message, budget int64) *wirePublish {
	w := &wirePublish{Msgs: msgs, Budget: budget}
	w.err = w.enc.prepare(publishMessages, msgs)
	return w
}

func (w *wirePublish) SizeWire() (int, error) {
	s := w.enc.size
	if w.Budget != 0 {
		s += protowire.SizeTag(publishBudget) + protowire.SizeVarint(uint64(w.Budget))
	}
	return s, w.err
}

func (w *wirePublish) AppendWire(b []byte) []byte {
	b = w.enc.append(b, publishMessages)
	if w.Budget != 0 {
		b = appendVarintField(b, publishBudget, uint64(w.Budget))
	}
	return b
}

func (w *wirePublish) UnmarshalWire(b []byte) error {
	orig := b
	w.Msgs, w.Budget = nil, 0
	var arena *[]byte
	if w.pool != nil {
		// The payloads are parts of b: an arena of b's size holds them.
		w.arena, w.list = w.pool.arena(len(b)), w.pool.messages()
		w.Msgs, arena = w.list, &w.arena
	}
	var fd wireField
	for ok := true; len(b) > 0; {
		if b, ok = nextField(b, &fd); !ok {
			return errWire
		}
		switch {
		case fd.bytes(publishMessages):
			m, ok := decodeMessage(fd.b, arena, w.pool)
			if !ok {
				return w.slow(orig)
			}
			w.Msgs = append(w.Msgs, m)
		case fd.varint(publishBudget):
			w.Budget = int64(fd.v)
		}
	}
	if len(w.Msgs) == 0 {
		w.Msgs = nil
	} else if w.pool != nil {
		w.list = w.Msgs // grown past the lent list, if it was short
	}
	return nil
}

// recycle gives the memory the request was decoded into back to the pool
// it came from, for a later request: call it only once nothing refers to
// the messages any more.
func (w *wirePublish) recycle() {
	if w.pool == nil {
		return
	}
	w.pool.putArena(w.arena)
	w.pool.putMessages(w.list)
	w.arena, w.list, w.Msgs = nil, nil, nil
}

func (w *wirePublish) slow(b []byte) error {
	var r pb.PublishRequest
	if err := proto.Unmarshal(b, &r); err != nil {
		return err
	}
	w.Msgs, w.Budget = messagesFromPB(r.Messages), r.BudgetNs
	return nil
}

var (
	errWire  = errors.New("proto: cannot parse invalid wire-format data")
	errMerge = errors.New("frame field repeated") // internal: take the slow path
)

// wireField is one field of a message as the hand-written decoders read
// it: its number and wire type, and a varint's value or a length-delimited
// field's bytes (a field of another wire type is skipped whole).
type wireField struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
}

// varint reports whether f is field num carried as a varint.
func (f *wireField) varint(num protowire.Number) bool {
	return f.num == num && f.typ == protowire.VarintType
}

// bytes reports whether f is field num carried length-delimited.
func (f *wireField) bytes(num protowire.Number) bool {
	return f.num == num && f.typ == protowire.BytesType
}

// nextField reads the field at the start of b into f and returns the rest
// of b; ok is false when b is not valid wire format. Every decoder here
// walks its message with it.
func nextField(b []byte, f *wireField) (rest []byte, ok bool) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || num > protowire.MaxValidNumber {
		// ConsumeTag takes numbers up to 2^31-1; the generated code
		// refuses those past the largest valid one, and so must we.
		return nil, false
	}
	b = b[n:]
	*f = wireField{num: num, typ: typ}
	switch typ {
	case protowire.VarintType:
		f.v, n = protowire.ConsumeVarint(b)
	case protowire.BytesType:
		f.b, n = protowire.ConsumeBytes(b)
	default:
		n = protowire.ConsumeFieldValue(num, typ, b)
	}
	if n < 0 {
		return nil, false
	}
	return b[n:], true
}

// decodeFrameWith reads a pb.Frame body, taking the batches' points
// slices and column strings from points (nil: allocated). It falls back
// to the generated code for whatever its fast path does not take.
//
// With arena set, the messages' payloads are decoded into *arena, taken
// from points at the first message, with room for every payload that
// follows (they are parts of b).
func decodeFrameWith(b []byte, points *pointPool, arena *[]byte) (*Frame, error) {
	f := &Frame{}
	orig := b
	var fd wireField
	for ok := true; len(b) > 0; {
		if b, ok = nextField(b, &fd); !ok {
			return f, errWire
		}
		if fd.typ != protowire.BytesType {
			continue
		}
		v := fd.b
		switch fd.num {
		case frameBatches:
			var bt Batch
			if !decodeBatch(v, &bt, points) {
				return slowFrame(orig)
			}
			f.Batches = append(f.Batches, bt)
		case frameMessages:
			if arena != nil && cap(*arena) == 0 {
				*arena = points.arena(len(v) + len(b))
			}
			m, ok := decodeMessage(v, arena, nil)
			if !ok {
				return slowFrame(orig)
			}
			f.Messages = append(f.Messages, m)
		case frameAlarms:
			var a pb.Alarm
			if err := proto.Unmarshal(v, &a); err != nil {
				return f, err
			}
			f.Alarms = append(f.Alarms, Alarm{TS: a.Ts, Rule: a.Rule, Point: a.Point, Level: a.Level,
				State: a.State, Value: valueFromPB(a.Value), Message: a.Message})
		case framePictures:
			var p pb.Picture
			if err := proto.Unmarshal(v, &p); err != nil {
				return f, err
			}
			f.Pictures = append(f.Pictures, Picture{TS: p.Ts, Device: p.Device, Format: p.Format, Data: p.Data})
		case frameRequests:
			var r pb.Request
			if err := proto.Unmarshal(v, &r); err != nil {
				return f, err
			}
			f.Requests = append(f.Requests, Request{Point: r.Point, Value: valueFromPB(r.Value), Reason: r.Reason})
		}
	}
	return f, nil
}

func slowFrame(b []byte) (*Frame, error) {
	var p pb.Frame
	if err := proto.Unmarshal(b, &p); err != nil {
		return &Frame{}, err
	}
	return frameFromPB(&p), nil
}

// decodeMessage reads a pb.Message; ok is false when the generated code
// must decide (invalid UTF-8, malformed). The payload is appended to
// *arena when it has room (its capacity is never grown: the payloads
// decoded before stay where they are), else allocated; the topic is one
// of strs's strings (nil: allocated).
func decodeMessage(b []byte, arena *[]byte, strs *pointPool) (m Message, ok bool) {
	var fd wireField
	for ok = true; len(b) > 0; {
		if b, ok = nextField(b, &fd); !ok {
			return m, false
		}
		switch v := fd.b; {
		case fd.bytes(msgTopic):
			if !utf8.Valid(v) {
				return m, false
			}
			m.Topic = strs.str(v)
		case fd.bytes(msgPayload) && arena != nil && len(v) <= cap(*arena)-len(*arena):
			// Its own capacity only: an output appending to a payload
			// must not write into the next one.
			a := *arena
			n := len(a)
			a = append(a, v...)
			m.Payload, *arena = a[n:len(a):len(a)], a
		case fd.bytes(msgPayload):
			// make then copy into a local, which the compiler turns into
			// one allocation without clearing it first (a rendered batch
			// is ~60 KB; appending to make([]byte, 0, n) cleared it).
			p := make([]byte, len(v))
			copy(p, v)
			m.Payload = p
		case fd.varint(msgQoS):
			m.QoS = uint8(min(uint32(fd.v), 2))
		case fd.varint(msgRetain):
			m.Retain = fd.v != 0
		}
	}
	return m, true
}

// countVarints counts the varints of a packed column, false when the last
// one is cut off.
func countVarints(b []byte) (int, bool) {
	if len(b) > 0 && b[len(b)-1] >= 0x80 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < 0x80 {
			n++
		}
	}
	return n, true
}

// decodeBatch reads a pb.Batch into out with the semantics of
// batchFromPB; false sends the batch to the generated code.
func decodeBatch(b []byte, out *Batch, points *pointPool) bool {
	var names, nameLens, kinds, bits, strs, strLens, quals, tsDelta []byte
	var statuses [][]byte // map entries, in wire order (a later one wins)
	var seen uint32
	var fd wireField
	for ok := true; len(b) > 0; {
		if b, ok = nextField(b, &fd); !ok {
			return false
		}
		num := fd.num
		if num >= batchDevice && num <= batchReadBack {
			if seen&(1<<num) != 0 {
				return false // repeated or merged: the generated code decides
			}
			seen |= 1 << num
		}
		switch num {
		case batchStatuses:
			if fd.typ != protowire.BytesType {
				return false
			}
			statuses = append(statuses, fd.b)
		case batchTS, batchReadBack:
			if fd.typ != protowire.VarintType {
				return false
			}
			if num == batchTS {
				out.TS = int64(fd.v)
			} else {
				out.ReadBack = fd.v != 0
			}
		case batchDevice, batchNames, batchNameLens, batchKinds, batchBits, batchStrings,
			batchStringLens, batchQualities, batchTSDelta:
			if fd.typ != protowire.BytesType {
				return false
			}
			v := fd.b
			switch num {
			case batchDevice:
				if !utf8.Valid(v) {
					return false
				}
				out.Device = points.str(v)
			case batchNames:
				names = v
			case batchNameLens:
				nameLens = v
			case batchKinds:
				kinds = v
			case batchBits:
				bits = v
			case batchStrings:
				strs = v
			case batchStringLens:
				strLens = v
			case batchQualities:
				quals = v
			case batchTSDelta:
				tsDelta = v
			}
		}
	}
	np, ok := countVarints(nameLens)
	if !ok || len(bits)%8 != 0 {
		return false
	}
	if _, ok := countVarints(strLens); !ok {
		return false
	}
	if _, ok := countVarints(tsDelta); !ok {
		return false
	}
	nbits := len(bits) / 8
	out.Points = points.get(np)
	nameStr, strStr := points.str(names), points.str(strs)
	for i := range out.Points {
		p := &out.Points[i]
		v, n := protowire.ConsumeVarint(nameLens)
		if n < 0 {
			return false
		}
		nameLens = nameLens[n:]
		p.Name = cut(&nameStr, uint32(v))
		if i < len(kinds) {
			p.Value.kind = Kind(kinds[i])
			if p.Value.kind > KindString {
				p.Value.kind = KindNone
			}
		}
		if i < nbits && p.Value.kind != KindString {
			p.Value.bits = binary.LittleEndian.Uint64(bits[8*i:])
		}
		if p.Value.kind == KindString && len(strLens) > 0 {
			v, n := protowire.ConsumeVarint(strLens)
			if n < 0 {
				return false
			}
			strLens = strLens[n:]
			p.Value.str = cut(&strStr, uint32(v))
		}
		if i < len(quals) {
			p.Quality = Quality(quals[i])
		}
		p.TS = out.TS
		if len(tsDelta) > 0 {
			v, n := protowire.ConsumeVarint(tsDelta)
			if n < 0 {
				return false
			}
			tsDelta = tsDelta[n:]
			p.TS += protowire.DecodeZigZag(v)
		}
	}
	for _, e := range statuses {
		i, st, ok := decodeStatusEntry(e)
		if !ok {
			return false
		}
		if int(i) < len(out.Points) {
			out.Points[i].Status = string(st)
		}
	}
	return true
}

// decodeStatusEntry reads one entry of Batch.statuses (map<uint32,
// bytes>) as the generated code does: a missing key is 0, a missing value
// empty, a repeated field's last occurrence wins, unknown fields skipped.
func decodeStatusEntry(b []byte) (key uint32, val []byte, ok bool) {
	var fd wireField
	for ok = true; len(b) > 0; {
		if b, ok = nextField(b, &fd); !ok {
			return 0, nil, false
		}
		switch {
		case fd.varint(statusKey):
			key = uint32(fd.v)
		case fd.bytes(statusValue):
			val = fd.b
		}
	}
	return key, val, true
}

// pointPool holds points slices given back for the next decoded frame: on
// the host's end of a plugin connection those of the frames Gather
// returned (grpcClient.ReleaseFrame), in a processor's process those of
// the requests of a processor that promised not to keep them (see
// grpcServer.recycle). An isolated input's poll of 1,000 points decodes
// into ~80 KB of points, nearly half of what the gateway allocates per
// poll, and the collector's cycles are a tenth of its CPU. A slice comes
// out cleared (decodeBatch sets only what the wire carries); a pool that
// is never given any allocates every time, so a frame from it is as fresh
// as a nil pool's.
//
// The pool also keeps the last strings the batches' name and string
// columns were decoded into: a poll's names are those of the last poll,
// byte for byte, and a string is immutable, so handing the same one out
// again is safe for any reader, and saves ~5 KB per 1,000 points.
//
// In an output's process the pool also holds the payload buffers and
// message lists of the Publish requests of an output that promised not to
// keep them (FrameReleaser), and the topics are its strings: an isolated
// outputs.mqtt so decodes its ~64 KB payload per call into the buffer of
// an earlier call instead of allocating it anew.
//
// Safe for concurrent use; a nil pool allocates.
type pointPool struct {
	mu     sync.Mutex
	free   [][]Point
	arenas [][]byte                 // payload buffers, empty, for arena
	lists  [][]Message              // message lists, cleared, for messages
	strs   [maxPooledStrings]string // recent column strings, for str
	next   int                      // the entry of strs str replaces next
	held   int                      // bytes of strs
}

// maxPooledArenas and maxPooledLists bound the Publish requests' memory
// a pool keeps: calls run one at a time, so one is in use while the next
// is decoded. maxArenaBytes and maxListLen bound what one may pin: a
// replay's batch of 256 large messages is allocated for itself and
// dropped after, not kept for calls a hundredth of its size.
const (
	maxPooledArenas = 2
	maxPooledLists  = 2
	maxArenaBytes   = 1 << 20
	maxListLen      = 1024
)

// arena returns an empty buffer of at least n bytes' capacity: a buffer
// given back when one is large enough, else a new one with room for a
// slightly larger request next time (exactly n when it will not be kept).
func (p *pointPool) arena(n int) []byte {
	if n > maxArenaBytes {
		return make([]byte, 0, n)
	}
	p.mu.Lock()
	for i, a := range p.arenas {
		if cap(a) >= n {
			p.arenas = slices.Delete(p.arenas, i, i+1)
			p.mu.Unlock()
			return a
		}
	}
	p.mu.Unlock()
	return make([]byte, 0, min(n+n/4, maxArenaBytes))
}

func (p *pointPool) putArena(a []byte) {
	if cap(a) == 0 || cap(a) > maxArenaBytes {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.arenas) < maxPooledArenas {
		p.arenas = append(p.arenas, a[:0])
		return
	}
	// Full: a larger buffer replaces the smallest, so that requests
	// that grew for good stop allocating.
	i := 0
	for j := range p.arenas {
		if cap(p.arenas[j]) < cap(p.arenas[i]) {
			i = j
		}
	}
	if cap(a) > cap(p.arenas[i]) {
		p.arenas[i] = a[:0]
	}
}

// messages returns an empty message list, one given back if any.
func (p *pointPool) messages() []Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.lists); n > 0 {
		l := p.lists[n-1]
		p.lists[n-1] = nil
		p.lists = p.lists[:n-1]
		return l
	}
	return nil
}

func (p *pointPool) putMessages(l []Message) {
	if cap(l) == 0 || cap(l) > maxListLen {
		return
	}
	clear(l[:cap(l)]) // no topic or payload is held on to
	p.mu.Lock()
	if len(p.lists) < maxPooledLists {
		p.lists = append(p.lists, l[:0])
	}
	p.mu.Unlock()
}

// maxPooledSlices bounds what a pool keeps: a frame holds a batch per
// device.
const maxPooledSlices = 64

// maxPooledStrings is how many column strings a pool remembers (a name
// column per device of a poll, and string values that repeat), and
// maxPooledStringBytes how many bytes: string values that change every
// poll must not pin much memory.
const (
	maxPooledStrings     = 64
	maxPooledStringBytes = 256 << 10
)

// str returns b as a string: one handed out before when it holds the same
// bytes, else a new one, remembered in place of the oldest.
func (p *pointPool) str(b []byte) string {
	if p == nil || len(b) == 0 {
		return string(b)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range &p.strs {
		if len(s) == len(b) && s == string(b) {
			return s
		}
	}
	s := string(b)
	if len(s) > maxPooledStringBytes/4 {
		return s
	}
	for p.held+len(s) > maxPooledStringBytes || p.strs[p.next] != "" {
		p.held -= len(p.strs[p.next])
		p.strs[p.next] = ""
		if p.held+len(s) > maxPooledStringBytes {
			p.next = (p.next + 1) % maxPooledStrings
		}
	}
	p.strs[p.next] = s
	p.held += len(s)
	p.next = (p.next + 1) % maxPooledStrings
	return s
}

func (p *pointPool) get(n int) []Point {
	if p != nil && n > 0 {
		p.mu.Lock()
		for i := len(p.free) - 1; i >= 0; i-- {
			if s := p.free[i]; cap(s) >= n {
				p.free[i] = p.free[len(p.free)-1]
				p.free[len(p.free)-1] = nil
				p.free = p.free[:len(p.free)-1]
				p.mu.Unlock()
				s = s[:n]
				clear(s)
				return s
			}
		}
		p.mu.Unlock()
	}
	return make([]Point, n)
}

func (p *pointPool) put(s []Point) {
	if cap(s) == 0 {
		return
	}
	p.mu.Lock()
	if len(p.free) < maxPooledSlices {
		p.free = append(p.free, s[:0])
	}
	p.mu.Unlock()
}
