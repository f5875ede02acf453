package wire

import (
	"fmt"
	"math/bits"
	"sync"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// The buffers behind the plugin transport: gRPC's default pool has no tier
// between 32 KB and 1 MB and clears every buffer it hands out, so each
// rendered batch (~65 KB) cost a 1 MB memclr on every hop, both ways, on
// the sending and on the receiving side: 8-12 % of every plugin process's
// CPU in the modbus-mqtt bench. pool has a tier per power of two and does
// not clear: every user of a buffer overwrites the length it asked for
// (the transport reads exactly that many bytes into it, the codec marshals
// exactly that many), so stale bytes are never seen.

const (
	minShift = 8  // 256 B: below gRPC's pooling threshold anyway
	maxShift = 26 // 64 MB: MaxMessageBytes
)

type tieredPool struct {
	tiers [maxShift - minShift + 1]sync.Pool
}

// pool is the one buffer pool of this process's plugin connections.
var pool = &tieredPool{}

var _ mem.BufferPool = (*tieredPool)(nil)

// tierFor is the index of the smallest tier that holds n bytes, or -1 when
// n is beyond the largest.
func tierFor(n int) int {
	if n <= 1<<minShift {
		return 0
	}
	s := bits.Len(uint(n - 1))
	if s > maxShift {
		return -1
	}
	return s - minShift
}

func (p *tieredPool) Get(n int) *[]byte {
	t := tierFor(n)
	if t < 0 {
		b := make([]byte, n)
		return &b
	}
	if b, ok := p.tiers[t].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<(t+minShift))
	return &b
}

func (p *tieredPool) Put(b *[]byte) {
	c := cap(*b)
	if c < 1<<minShift || c&(c-1) != 0 {
		return // not one of ours (a power of two we handed out)
	}
	t := bits.Len(uint(c)) - 1 - minShift
	if t >= len(p.tiers) {
		return
	}
	*b = (*b)[:0]
	p.tiers[t].Put(b)
}

// codec is protobuf, as gRPC's default codec, marshalling into pool
// instead of gRPC's process-wide default pool. The bytes on the wire are
// the same, so either side may be built with an SDK that does not use it.
type codec struct{}

var _ encoding.CodecV2 = codec{}

func messageOf(v any) proto.Message {
	switch m := v.(type) {
	case protoadapt.MessageV2:
		return m
	case protoadapt.MessageV1:
		return protoadapt.MessageV2Of(m)
	}
	return nil
}

// Marshaler is a message that writes its own protobuf encoding, straight
// from the SDK's values (package sdk's frames and message batches): no
// intermediate generated message, no reflection. AppendWire must append
// exactly the bytes SizeWire announced; SizeWire's error (a string that
// is not UTF-8, as protobuf refuses it) fails the call.
type Marshaler interface {
	SizeWire() (int, error)
	AppendWire(b []byte) []byte
}

// Unmarshaler decodes its protobuf encoding itself. b is only valid during
// the call: keep copies, not slices of it.
type Unmarshaler interface {
	UnmarshalWire(b []byte) error
}

func (codec) Marshal(v any) (mem.BufferSlice, error) {
	if w, ok := v.(Marshaler); ok {
		size, err := w.SizeWire()
		if err != nil {
			return nil, err
		}
		buf := pool.Get(size)
		b := w.AppendWire((*buf)[:0])
		if len(b) != size {
			pool.Put(buf)
			return nil, fmt.Errorf("wire: %T wrote %d bytes, announced %d", v, len(b), size)
		}
		*buf = b
		return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
	}
	m := messageOf(v)
	if m == nil {
		return nil, fmt.Errorf("proto: cannot marshal %T, want a proto.Message", v)
	}
	// UseCachedSize below reuses the size computed here; the message is
	// not changed in between.
	size := proto.Size(m)
	opts := proto.MarshalOptions{UseCachedSize: true}
	if mem.IsBelowBufferPoolingThreshold(size) {
		b, err := opts.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	buf := pool.Get(size)
	b, err := opts.MarshalAppend((*buf)[:0], m)
	if err != nil {
		pool.Put(buf)
		return nil, err
	}
	*buf = b
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	if w, ok := v.(Unmarshaler); ok {
		buf := data.MaterializeToBuffer(pool)
		defer buf.Free()
		return w.UnmarshalWire(buf.ReadOnlyData())
	}
	m := messageOf(v)
	if m == nil {
		return fmt.Errorf("proto: cannot unmarshal into %T, want a proto.Message", v)
	}
	buf := data.MaterializeToBuffer(pool)
	defer buf.Free()
	return proto.Unmarshal(buf.ReadOnlyData(), m)
}

// Name is gRPC's name of protobuf: the content-subtype stays "proto".
func (codec) Name() string { return "proto" }
