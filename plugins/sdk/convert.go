package sdk

import "github.com/edgepipe/edgepipe/plugins/sdk/pb"

// Conversions between the SDK's Go types and the wire types. They are the
// hot path of isolated plugins, hence the column layout and the
// preallocation.

func batchToPB(b *Batch) *pb.Batch {
	n := len(b.Points)
	size := 0
	for i := range b.Points {
		size += len(b.Points[i].Name)
	}
	names := make([]byte, 0, size)
	var strs []byte
	out := &pb.Batch{
		Device:    b.Device,
		Ts:        b.TS,
		ReadBack:  b.ReadBack,
		NameLens:  make([]uint32, n),
		Kinds:     make([]byte, n),
		Bits:      make([]uint64, n),
		Qualities: make([]byte, n),
		TsDelta:   make([]int64, n),
	}
	for i := range b.Points {
		p := &b.Points[i]
		names = append(names, p.Name...)
		out.NameLens[i] = uint32(len(p.Name))
		out.Kinds[i] = byte(p.Value.kind)
		out.Bits[i] = p.Value.bits
		if p.Value.kind == KindString {
			strs = append(strs, p.Value.str...)
			out.StringLens = append(out.StringLens, uint32(len(p.Value.str)))
		}
		out.Qualities[i] = byte(p.Quality)
		out.TsDelta[i] = p.TS - b.TS
		if p.Status != "" {
			if out.Statuses == nil {
				out.Statuses = map[uint32][]byte{}
			}
			out.Statuses[uint32(i)] = []byte(p.Status)
		}
	}
	out.Names, out.Strings = names, strs
	return out
}

// cut takes the next n bytes of *s as a substring, clamped to what is left.
func cut(s *string, n uint32) string {
	k := min(int(n), len(*s))
	v := (*s)[:k]
	*s = (*s)[k:]
	return v
}

func batchFromPB(b *pb.Batch, out *Batch) {
	n := len(b.NameLens)
	out.Device, out.TS, out.ReadBack = b.Device, b.Ts, b.ReadBack
	out.Points = make([]Point, n)
	names, strs := string(b.Names), string(b.Strings)
	si := 0
	for i := 0; i < n; i++ {
		p := &out.Points[i]
		p.Name = cut(&names, b.NameLens[i])
		if i < len(b.Kinds) {
			p.Value.kind = Kind(b.Kinds[i])
			if p.Value.kind > KindString {
				p.Value.kind = KindNone
			}
		}
		if i < len(b.Bits) && p.Value.kind != KindString {
			p.Value.bits = b.Bits[i]
		}
		if p.Value.kind == KindString && si < len(b.StringLens) {
			p.Value.str = cut(&strs, b.StringLens[si])
			si++
		}
		if i < len(b.Qualities) {
			p.Quality = Quality(b.Qualities[i])
		}
		p.TS = b.Ts
		if i < len(b.TsDelta) {
			p.TS += b.TsDelta[i]
		}
	}
	for i, st := range b.Statuses {
		if int(i) < n {
			out.Points[i].Status = string(st)
		}
	}
}

func valueToPB(v Value) *pb.Value {
	return &pb.Value{Kind: uint32(v.kind), Bits: v.bits, Str: v.str}
}

func valueFromPB(v *pb.Value) Value {
	if v == nil || v.Kind > uint32(KindString) {
		return Value{}
	}
	return FromBits(Kind(v.Kind), v.Bits, v.Str)
}

// frameToPB converts a frame to its wire form.
func frameToPB(f *Frame) *pb.Frame {
	if f == nil {
		return &pb.Frame{}
	}
	out := &pb.Frame{}
	if len(f.Batches) > 0 {
		out.Batches = make([]*pb.Batch, len(f.Batches))
		for i := range f.Batches {
			out.Batches[i] = batchToPB(&f.Batches[i])
		}
	}
	for _, a := range f.Alarms {
		out.Alarms = append(out.Alarms, &pb.Alarm{Ts: a.TS, Rule: a.Rule, Point: a.Point, Level: a.Level,
			State: a.State, Value: valueToPB(a.Value), Message: a.Message})
	}
	for _, r := range f.Requests {
		out.Requests = append(out.Requests, &pb.Request{Point: r.Point, Value: valueToPB(r.Value), Reason: r.Reason})
	}
	for _, p := range f.Pictures {
		out.Pictures = append(out.Pictures, &pb.Picture{Ts: p.TS, Device: p.Device, Format: p.Format, Data: p.Data})
	}
	out.Messages = messagesToPB(f.Messages)
	return out
}

// frameFromPB converts a wire frame back; nil gives an empty frame.
func frameFromPB(p *pb.Frame) *Frame {
	f := &Frame{}
	if p == nil {
		return f
	}
	if len(p.Batches) > 0 {
		f.Batches = make([]Batch, len(p.Batches))
		for i, b := range p.Batches {
			batchFromPB(b, &f.Batches[i])
		}
	}
	for _, a := range p.Alarms {
		f.Alarms = append(f.Alarms, Alarm{TS: a.Ts, Rule: a.Rule, Point: a.Point, Level: a.Level,
			State: a.State, Value: valueFromPB(a.Value), Message: a.Message})
	}
	for _, r := range p.Requests {
		f.Requests = append(f.Requests, Request{Point: r.Point, Value: valueFromPB(r.Value), Reason: r.Reason})
	}
	for _, pic := range p.Pictures {
		f.Pictures = append(f.Pictures, Picture{TS: pic.Ts, Device: pic.Device, Format: pic.Format, Data: pic.Data})
	}
	f.Messages = messagesFromPB(p.Messages)
	return f
}

func messagesToPB(ms []Message) []*pb.Message {
	if len(ms) == 0 {
		return nil
	}
	out := make([]*pb.Message, len(ms))
	backing := make([]pb.Message, len(ms))
	for i, m := range ms {
		b := &backing[i]
		b.Topic, b.Payload, b.Qos, b.Retain = m.Topic, m.Payload, uint32(m.QoS), m.Retain
		out[i] = b
	}
	return out
}

func messagesFromPB(ms []*pb.Message) []Message {
	if len(ms) == 0 {
		return nil
	}
	out := make([]Message, len(ms))
	for i, m := range ms {
		out[i] = Message{Topic: m.Topic, Payload: m.Payload, QoS: uint8(min(m.Qos, 2)), Retain: m.Retain}
	}
	return out
}

func schemaToPB(s []PointSchema) []*pb.PointSchema {
	out := make([]*pb.PointSchema, len(s))
	for i, p := range s {
		q := &pb.PointSchema{Device: p.Device, Name: p.Name, Type: p.Type, Kind: uint32(p.Kind),
			Access: uint32(p.Access), Unit: p.Unit}
		if p.Min != nil {
			q.HasMin, q.Min = true, *p.Min
		}
		if p.Max != nil {
			q.HasMax, q.Max = true, *p.Max
		}
		out[i] = q
	}
	return out
}

func schemaFromPB(s []*pb.PointSchema) []PointSchema {
	out := make([]PointSchema, len(s))
	for i, q := range s {
		p := PointSchema{Device: q.Device, Name: q.Name, Type: q.Type, Kind: Kind(q.Kind),
			Access: Access(q.Access), Unit: q.Unit}
		if p.Kind > KindString {
			p.Kind = KindNone
		}
		if q.HasMin {
			v := q.Min
			p.Min = &v
		}
		if q.HasMax {
			v := q.Max
			p.Max = &v
		}
		out[i] = p
	}
	return out
}

func stateToPB(changes map[string][]byte) []*pb.StateChange {
	if len(changes) == 0 {
		return nil
	}
	out := make([]*pb.StateChange, 0, len(changes))
	for k, v := range changes {
		out = append(out, &pb.StateChange{Key: k, Value: v, Deleted: v == nil})
	}
	return out
}

// applyState writes changes that came home with a response into the
// host's store.
func applyState(dst State, changes []*pb.StateChange) {
	if dst == nil {
		return
	}
	for _, c := range changes {
		if c.Deleted {
			dst.Set(c.Key, nil)
		} else {
			v := c.Value
			if v == nil {
				v = []byte{}
			}
			dst.Set(c.Key, v)
		}
	}
}

func commandToPB(c Command) *pb.Command {
	out := &pb.Command{Kind: uint32(c.Kind), Id: c.ID, ReplyTopic: c.ReplyTopic, Err: c.Err, Rule: c.Rule,
		System: uint32(c.System), Name: c.Name, Output: c.Output, Config: c.Config}
	if len(c.Points) > 0 {
		out.Points = make([]*pb.PointWrite, len(c.Points))
		for i, p := range c.Points {
			out.Points[i] = &pb.PointWrite{Name: p.Name, Value: p.Value}
		}
	}
	return out
}

// commandFromPB reads a command from a plugin; kinds and operations this
// SDK does not know become refusals, never a command acted on blindly.
func commandFromPB(c *pb.Command) Command {
	out := Command{Kind: CommandKind(c.Kind), ID: c.Id, ReplyTopic: c.ReplyTopic, Err: c.Err, Rule: c.Rule,
		System: SystemOp(c.System), Name: c.Name, Output: c.Output, Config: c.Config}
	if out.Kind > CommandConfig {
		out.Kind, out.Err = CommandNone, "unknown command kind"
	}
	if out.System > SystemResume {
		out.System = SystemUnknown
	}
	if len(c.Points) > 0 {
		out.Points = make([]PointWrite, len(c.Points))
		for i, p := range c.Points {
			out.Points[i] = PointWrite{Name: p.Name, Value: p.Value}
		}
	}
	return out
}
