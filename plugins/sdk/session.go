package sdk

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/edgepipe/edgepipe/plugins/sdk/internal/wire"
	"github.com/edgepipe/edgepipe/plugins/sdk/pb"
)

// The Session stream (edgepipe.proto): Gather, Process and Publish of a
// plugin travel as messages on one long-lived bidirectional stream instead
// of one unary call each. A unary call opens an HTTP/2 stream, sends and
// parses headers and trailers, and starts a deadline timer on both sides;
// on a small gateway that per-call work costs as much as the frame it
// carries. A call's semantics stay those of the unary call: its deadline
// travels as timeout_ns, a caller giving up cancels the call in the
// plugin, and an error comes back as the status the unary call would have
// returned.

// Field numbers of Call and Reply.
const (
	callID      = 1
	callGather  = 2
	callProcess = 3
	callPublish = 4
	callTimeout = 5
	callCancel  = 6

	replyID        = 1
	replyFrame     = 2
	replyState     = 3
	replyCode      = 4
	replyMessage   = 5
	replyConfirmed = 6
)

// wireCall is a Call, written by the host and read by the plugin.
type wireCall struct {
	ID      uint64
	Timeout time.Duration
	Cancel  bool
	// One of, as sent:
	Gather  *pb.GatherRequest
	Process *wireFrame
	Publish *wirePublish

	gather []byte // Gather encoded, by SizeWire
	// points, when set, lends a Process request's points slices (the
	// plugin's end, see grpcServer.recycle); publish a Publish request's
	// payloads, messages and topics (only to an output that implements
	// FrameReleaser).
	points  *pointPool
	publish *pointPool
}

func (c *wireCall) SizeWire() (int, error) {
	s := protowire.SizeTag(callID) + protowire.SizeVarint(c.ID)
	switch {
	case c.Gather != nil:
		// Encoded once per call: session.call asks for the size to
		// check it against the limit, then the stream (or gRPC's codec)
		// asks again before AppendWire writes c.gather.
		if c.gather == nil {
			b, err := proto.Marshal(c.Gather)
			if err != nil {
				return 0, err
			}
			c.gather = b
		}
		s += sizeBytesField(callGather, len(c.gather))
	case c.Process != nil:
		n, err := c.Process.SizeWire()
		if err != nil {
			return 0, err
		}
		s += sizeBytesField(callProcess, n)
	case c.Publish != nil:
		n, err := c.Publish.SizeWire()
		if err != nil {
			return 0, err
		}
		s += sizeBytesField(callPublish, n)
	}
	if c.Timeout > 0 {
		s += protowire.SizeTag(callTimeout) + protowire.SizeVarint(uint64(c.Timeout))
	}
	if c.Cancel {
		s += protowire.SizeTag(callCancel) + 1
	}
	return s, nil
}

func (c *wireCall) AppendWire(b []byte) []byte {
	b = appendVarintField(b, callID, c.ID)
	switch {
	case c.Gather != nil:
		b = appendBytesField(b, callGather, c.gather)
	case c.Process != nil:
		n, _ := c.Process.SizeWire()
		b = protowire.AppendTag(b, callProcess, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		b = c.Process.AppendWire(b)
	case c.Publish != nil:
		n, _ := c.Publish.SizeWire()
		b = protowire.AppendTag(b, callPublish, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		b = c.Publish.AppendWire(b)
	}
	if c.Timeout > 0 {
		b = appendVarintField(b, callTimeout, uint64(c.Timeout))
	}
	if c.Cancel {
		b = appendVarintField(b, callCancel, 1)
	}
	return b
}

func (c *wireCall) UnmarshalWire(b []byte) error {
	*c = wireCall{points: c.points, publish: c.publish}
	var fd wireField
	for ok := true; len(b) > 0; {
		if b, ok = nextField(b, &fd); !ok {
			return errWire
		}
		switch {
		case fd.varint(callID):
			c.ID = fd.v
		case fd.varint(callTimeout):
			c.Timeout = time.Duration(fd.v)
		case fd.varint(callCancel):
			c.Cancel = fd.v != 0
		case fd.bytes(callGather), fd.bytes(callProcess), fd.bytes(callPublish):
			// A oneof: the last one set wins.
			c.Gather, c.Process, c.Publish = nil, nil, nil
			switch fd.num {
			case callGather:
				c.Gather = &pb.GatherRequest{}
				if err := proto.Unmarshal(fd.b, c.Gather); err != nil {
					return err
				}
			case callProcess:
				c.Process = &wireFrame{points: c.points}
				if err := c.Process.UnmarshalWire(fd.b); err != nil {
					return err
				}
			default:
				c.Publish = &wirePublish{pool: c.publish}
				if err := c.Publish.UnmarshalWire(fd.b); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// wireReply is a Reply, written by the plugin and read by the host.
type wireReply struct {
	ID        uint64
	Frame     *wireFrameResponse // gather, process
	State     *pb.StateResponse  // publish
	Code      codes.Code
	Message   string
	Confirmed uint32

	state  []byte
	points *pointPool // lends the frame's points slices; nil: allocated
}

// replyFor makes the reply to a call that returned (resp, err).
func replyFor(id uint64, frame *wireFrameResponse, state *pb.StateResponse, err error) *wireReply {
	r := &wireReply{ID: id, Frame: frame, State: state}
	if err != nil {
		st, _ := status.FromError(toStatus(err))
		r.Frame, r.State = nil, nil
		r.Code, r.Message = st.Code(), st.Message()
		if r.Code == codes.OK {
			r.Code = codes.Unknown
		}
		for _, d := range st.Details() {
			if p, ok := d.(*pb.PublishPartial); ok {
				r.Confirmed = p.Confirmed
			}
		}
	}
	return r
}

// err is the reply's error as the unary call's status.
func (r *wireReply) err() error {
	if r.Code == codes.OK {
		return nil
	}
	st := status.New(r.Code, r.Message)
	if r.Confirmed > 0 {
		if d, err := st.WithDetails(&pb.PublishPartial{Confirmed: r.Confirmed}); err == nil {
			st = d
		}
	}
	return st.Err()
}

func (r *wireReply) SizeWire() (int, error) {
	s := protowire.SizeTag(replyID) + protowire.SizeVarint(r.ID)
	if r.Frame != nil {
		n, err := r.Frame.SizeWire()
		if err != nil {
			return 0, err
		}
		s += sizeBytesField(replyFrame, n)
	}
	if r.State != nil {
		b, err := proto.Marshal(r.State)
		if err != nil {
			return 0, err
		}
		r.state = b
		s += sizeBytesField(replyState, len(b))
	}
	if r.Code != 0 {
		s += protowire.SizeTag(replyCode) + protowire.SizeVarint(uint64(r.Code))
	}
	if r.Message != "" {
		s += sizeBytesField(replyMessage, len(r.Message))
	}
	if r.Confirmed != 0 {
		s += protowire.SizeTag(replyConfirmed) + protowire.SizeVarint(uint64(r.Confirmed))
	}
	return s, nil
}

func (r *wireReply) AppendWire(b []byte) []byte {
	b = appendVarintField(b, replyID, r.ID)
	if r.Frame != nil {
		n, _ := r.Frame.SizeWire()
		b = protowire.AppendTag(b, replyFrame, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		b = r.Frame.AppendWire(b)
	}
	if r.State != nil {
		b = appendBytesField(b, replyState, r.state)
	}
	if r.Code != 0 {
		b = appendVarintField(b, replyCode, uint64(r.Code))
	}
	if r.Message != "" {
		b = appendStringField(b, replyMessage, r.Message)
	}
	if r.Confirmed != 0 {
		b = appendVarintField(b, replyConfirmed, uint64(r.Confirmed))
	}
	return b
}

func (r *wireReply) UnmarshalWire(b []byte) error {
	*r = wireReply{points: r.points}
	var fd wireField
	for ok := true; len(b) > 0; {
		if b, ok = nextField(b, &fd); !ok {
			return errWire
		}
		switch {
		case fd.varint(replyID):
			r.ID = fd.v
		case fd.varint(replyCode):
			r.Code = codes.Code(uint32(fd.v))
		case fd.varint(replyConfirmed):
			r.Confirmed = uint32(fd.v)
		case fd.bytes(replyFrame):
			if r.Frame != nil {
				return errors.New("session: reply with two frames")
			}
			r.Frame = &wireFrameResponse{points: r.points}
			if err := r.Frame.UnmarshalWire(fd.b); err != nil {
				return err
			}
		case fd.bytes(replyState):
			r.State = &pb.StateResponse{}
			if err := proto.Unmarshal(fd.b, r.State); err != nil {
				return err
			}
		case fd.bytes(replyMessage):
			r.Message = string(fd.b)
		}
	}
	return nil
}

// Session serves the stream in the plugin process: calls run one at a
// time, in order, in a goroutine of their own, while this one reads the
// next messages (a cancel for the running call).
func (s *grpcServer) Session(stream pb.Plugin_SessionServer) error {
	return s.serveSession(stream.Context(), stream)
}

// sessionStream is what a session's two ends need of their stream: the
// gRPC Session stream, or the session's own socket (rawsession.go).
// SendMsg is not called concurrently on one stream, nor RecvMsg.
type sessionStream interface {
	SendMsg(m any) error
	RecvMsg(m any) error
}

// serveSession serves a session on stream until it ends or ctx does.
func (s *grpcServer) serveSession(ctx context.Context, stream sessionStream) error {
	ctx, cancelAll := context.WithCancel(ctx)
	defer cancelAll()
	var (
		mu      sync.Mutex
		started uint64 // id of the last call started (ids grow)
		running bool
		stop    context.CancelFunc
		dropped = map[uint64]bool{} // cancelled before they ran
	)
	calls := make(chan *wireCall, 16)
	done := make(chan error, 1)
	go func() {
		for c := range calls {
			mu.Lock()
			if dropped[c.ID] {
				delete(dropped, c.ID)
				mu.Unlock()
				err := stream.SendMsg(replyFor(c.ID, nil, nil, context.Canceled))
				s.recycle(c, nil)
				if err != nil {
					done <- err
					return
				}
				continue
			}
			var cctx context.Context
			var cancel context.CancelFunc
			if c.Timeout > 0 {
				cctx, cancel = context.WithTimeout(ctx, c.Timeout)
			} else {
				cctx, cancel = context.WithCancel(ctx)
			}
			started, running, stop = c.ID, true, cancel
			mu.Unlock()
			wire.Fence() // ordered after the gRPC calls before it (Init)
			r := s.serve(cctx, c)
			wire.Fence()
			mu.Lock()
			running, stop = false, nil
			mu.Unlock()
			cancel()
			// SendMsg has encoded the reply when it returns: the frames
			// of the call are no longer read.
			err := stream.SendMsg(r)
			s.recycle(c, r)
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	// The stream is not used once this returns: the worker is waited for,
	// its call cancelled first.
	finish := func(err error) error {
		cancelAll()
		close(calls)
		if werr := <-done; err == nil {
			err = werr
		}
		return err
	}
	for {
		c := &wireCall{points: s.requests(), publish: s.publishes()}
		if err := stream.RecvMsg(c); err != nil {
			return finish(nil) // the host closed the session or the connection
		}
		if c.Cancel {
			mu.Lock()
			switch {
			case running && started == c.ID:
				stop()
			case c.ID > started:
				dropped[c.ID] = true // still queued
			}
			mu.Unlock()
			continue
		}
		select {
		case calls <- c:
		case err := <-done:
			done <- err
			return finish(err)
		}
	}
}

// serve runs one call of a session as its unary method would.
func (s *grpcServer) serve(ctx context.Context, c *wireCall) *wireReply {
	switch {
	case c.Gather != nil:
		f, err := s.gather(ctx, c.Gather)
		return replyFor(c.ID, f, nil, err)
	case c.Process != nil:
		f, err := s.process(ctx, c.Process)
		return replyFor(c.ID, f, nil, err)
	case c.Publish != nil:
		st, err := s.publish(ctx, c.Publish)
		return replyFor(c.ID, nil, st, err)
	}
	return replyFor(c.ID, nil, nil, status.Error(codes.Unimplemented, "session: call of an unknown kind"))
}

// session is the host's end of the stream: calls are matched to their
// replies by id, so a caller that gave up does not receive the reply of the
// call it abandoned.
type session struct {
	stream sessionStream
	cancel func()

	send sync.Mutex // SendMsg is not safe for concurrent use

	mu      sync.Mutex
	pending map[uint64]chan *wireReply
	next    uint64
	dead    error // why the stream ended; set once
	gone    chan struct{}

	points *pointPool // the client's, for the frames of replies
}

var sessionDesc = grpc.StreamDesc{StreamName: "Session", ServerStreams: true, ClientStreams: true}

func openSession(cc grpc.ClientConnInterface, points *pointPool) (*session, error) {
	ctx, cancel := context.WithCancel(context.Background())
	st, err := cc.NewStream(ctx, &sessionDesc, pb.Plugin_Session_FullMethodName, wire.CallCodec)
	if err != nil {
		cancel()
		return nil, err
	}
	return startSession(st, cancel, points), nil
}

// openRawSession runs a session on the plugin's session socket; closing
// the session closes the socket.
func openRawSession(c net.Conn, points *pointPool) *session {
	st := newRawStream(c)
	return startSession(st, st.close, points)
}

func startSession(st sessionStream, cancel func(), points *pointPool) *session {
	s := &session{stream: st, cancel: cancel, pending: map[uint64]chan *wireReply{}, gone: make(chan struct{}), points: points}
	go s.read()
	return s
}

func (s *session) read() {
	for {
		r := &wireReply{points: s.points}
		if err := s.stream.RecvMsg(r); err != nil {
			s.mu.Lock()
			s.dead = err
			s.mu.Unlock()
			close(s.gone)
			s.cancel() // the stream's resources (its context, its socket)
			return
		}
		wire.Fence() // see call
		s.mu.Lock()
		ch := s.pending[r.ID]
		delete(s.pending, r.ID)
		s.mu.Unlock()
		if ch != nil {
			ch <- r // buffered: the caller may have left
		}
	}
}

// close ends the session (the plugin's side ends with it).
func (s *session) close() { s.cancel() }

func (s *session) isGone() bool {
	select {
	case <-s.gone:
		return true
	default:
		return false
	}
}

// goneErr is why the stream ended before a reply: its status
// (Unimplemented from a plugin without sessions, Unavailable from a dead
// process).
func (s *session) goneErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead == nil || errors.Is(s.dead, context.Canceled) {
		return status.Error(codes.Unavailable, "plugin session closed")
	}
	return s.dead
}

// call sends c (its ID is set here) and waits for its reply or for ctx.
func (s *session) call(ctx context.Context, c *wireCall) (*wireReply, error) {
	ch := make(chan *wireReply, 1)
	s.mu.Lock()
	if s.dead != nil {
		s.mu.Unlock()
		return nil, s.goneErr()
	}
	s.next++
	c.ID = s.next
	s.pending[c.ID] = ch
	s.mu.Unlock()
	if d, ok := ctx.Deadline(); ok {
		c.Timeout = max(time.Until(d), 1)
	}
	// A message the codec refuses would end the stream: refuse the call
	// instead, as the unary call's marshalling would.
	if _, err := c.SizeWire(); err != nil {
		s.forget(c.ID)
		return nil, status.Errorf(codes.Internal, "grpc: error while marshaling: %v", err)
	}
	// With the plugin in this process (sdktest), its code and the
	// caller's are ordered by the Fence on both ends, as gRPC's in-memory
	// transport ordered them; between processes this costs a free mutex.
	wire.Fence()
	s.send.Lock()
	err := s.stream.SendMsg(c)
	s.send.Unlock()
	if err != nil {
		s.forget(c.ID)
		<-s.gone // io.EOF: the stream ended, its status tells why
		return nil, s.goneErr()
	}
	select {
	case r := <-ch:
		return r, nil
	case <-s.gone:
		select {
		case r := <-ch:
			return r, nil
		default:
		}
		return nil, s.goneErr()
	case <-ctx.Done():
		s.forget(c.ID)
		s.send.Lock()
		_ = s.stream.SendMsg(&wireCall{ID: c.ID, Cancel: true})
		s.send.Unlock()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

func (s *session) forget(id uint64) {
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
}

// onSession runs call on the plugin's session, opened on first use and
// again after it ended. ok is false when the plugin has no Session (an
// older SDK): the caller then makes the unary call, which this one did
// not replace (the plugin refused the stream before reading the call).
func (c *grpcClient) onSession(ctx context.Context, call *wireCall) (r *wireReply, ok bool, err error) {
	c.smu.Lock()
	if c.noSession {
		c.smu.Unlock()
		return nil, false, nil
	}
	s := c.sess
	if s == nil || s.isGone() {
		// The session socket serves one session: once it has ended, the
		// sessions after it are gRPC's.
		if c.raw != nil {
			s, c.raw = openRawSession(c.raw, &c.points), nil
		} else if s, err = openSession(c.cc, &c.points); err != nil {
			c.smu.Unlock()
			return nil, true, err
		}
		c.sess = s
	}
	c.smu.Unlock()
	r, err = s.call(ctx, call)
	if err != nil {
		if status.Code(err) == codes.Unimplemented && s.isGone() {
			c.smu.Lock()
			c.noSession, c.sess = true, nil
			c.smu.Unlock()
			return nil, false, nil
		}
		return nil, true, err
	}
	return r, true, r.err()
}

// closeSession ends the session, cancelling a call the plugin still runs.
func (c *grpcClient) closeSession() {
	c.smu.Lock()
	defer c.smu.Unlock()
	if c.sess != nil {
		c.sess.close()
		c.sess = nil
	}
	if c.raw != nil {
		_ = c.raw.Close()
		c.raw = nil
	}
}
