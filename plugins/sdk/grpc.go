package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edgepipe/edgepipe/plugins/sdk/internal/wire"
	"github.com/edgepipe/edgepipe/plugins/sdk/pb"
)

// grpcPlugin joins a plugin factory to go-plugin: the plugin process serves
// it, the host dispenses a *grpcClient that implements every plugin
// interface, so the core never sees the transport.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Factory func() Plugin // plugin side only
}

var _ plugin.GRPCPlugin = (*grpcPlugin)(nil)

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	srv := registerServer(s, p.Factory())
	// go-plugin calls this before it prints the handshake line: the
	// greeting on the session socket is there before the host looks.
	if c := wire.InheritedSession(); c != nil {
		go srv.serveRawSession(c)
	}
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return newGRPCClient(cc), nil
}

// registerServer serves impl on s, which must have been made with
// wire.ServerOptions (its codec reads and writes the hand-written messages
// of framewire.go).
//
// The service is the generated one except for the calls of every poll
// (Gather, Process, Publish): their handlers decode the request straight
// into the SDK's values and encode the answer from them, see framewire.go.
func registerServer(s *grpc.Server, impl Plugin) *grpcServer {
	desc := pb.Plugin_ServiceDesc
	desc.Methods = slices.Clone(desc.Methods)
	for i := range desc.Methods {
		m := &desc.Methods[i]
		switch m.MethodName {
		case "Gather":
			m.Handler = unaryHandler(pb.Plugin_Gather_FullMethodName, func() *pb.GatherRequest { return &pb.GatherRequest{} },
				(*grpcServer).gather)
		case "Process":
			m.Handler = unaryHandler(pb.Plugin_Process_FullMethodName, func() *wireFrame { return &wireFrame{} },
				(*grpcServer).process)
		case "Publish":
			m.Handler = unaryHandler(pb.Plugin_Publish_FullMethodName, func() *wirePublish { return &wirePublish{} },
				(*grpcServer).publish)
		}
	}
	srv := &grpcServer{impl: impl}
	s.RegisterService(&desc, srv)
	return srv
}

// unaryHandler is what protoc-gen-go-grpc writes for a unary method, for a
// request and an answer of any type the codec takes.
func unaryHandler[Req any, Resp any](method string, newReq func() Req,
	call func(*grpcServer, context.Context, Req) (Resp, error)) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
		in := newReq()
		if err := dec(in); err != nil {
			return nil, err
		}
		s := srv.(*grpcServer)
		if ic == nil {
			return call(s, ctx, in)
		}
		info := &grpc.UnaryServerInfo{Server: srv, FullMethod: method}
		return ic(ctx, in, info, func(ctx context.Context, req any) (any, error) { return call(s, ctx, req.(Req)) })
	}
}

// grpcServer runs in the plugin process and calls the plugin.
type grpcServer struct {
	pb.UnimplementedPluginServer
	impl  Plugin
	state *MemState
	// reqs is where the session decodes Process requests: it only ever
	// gets points slices back from a processor that implements
	// FrameReleaser (see recycle), so any other is given fresh ones.
	// Publish requests decode into it only for an output that implements
	// FrameReleaser (publishes).
	reqs pointPool
}

// requests is the pool the session's calls decode their frames with.
func (s *grpcServer) requests() *pointPool { return &s.reqs }

// publishes is the pool the session's Publish requests decode into: nil,
// so that every message is allocated for itself, unless the output
// promised to keep none once Publish returned (FrameReleaser). An output
// that keeps some of its messages must not pin the buffer of a whole call
// with them.
func (s *grpcServer) publishes() *pointPool {
	if _, ok := s.impl.(FrameReleaser); ok {
		return &s.reqs
	}
	return nil
}

func (s *grpcServer) changes() []*pb.StateChange {
	if s.state == nil {
		return nil
	}
	return stateToPB(s.state.TakeChanges())
}

func (s *grpcServer) Init(ctx context.Context, r *pb.InitRequest) (*pb.InitResponse, error) {
	s.state = NewMemState(r.State)
	req := &InitRequest{Config: r.Config, File: r.File, Line: int(r.Line), Name: r.Name, Alias: r.Alias,
		Points: schemaFromPB(r.Points), State: s.state}
	if a := r.Agent; a != nil {
		req.Agent = AgentInfo{DeviceID: a.DeviceId, TopicPrefix: a.TopicPrefix, DataDir: a.DataDir,
			MaxCommandSize: a.MaxCommandSize, Version: a.Version}
	}
	resp, err := s.impl.Init(ctx, req)
	out := &pb.InitResponse{}
	for _, k := range localKinds(s.impl) {
		out.Kinds = append(out.Kinds, string(k))
	}
	if err != nil {
		for _, e := range AsConfigErrors(err) {
			out.ConfigErrors = append(out.ConfigErrors, &pb.ConfigError{File: e.File, Line: int32(e.Line), Path: e.Path, Msg: e.Msg})
		}
		return out, nil
	}
	if resp != nil {
		out.Points = schemaToPB(resp.Points)
		out.IntervalNs = int64(resp.Interval)
	}
	c := CapsOf(s.impl)
	out.Caps = &pb.Caps{Stream: c.Stream, Write: c.Write, Commands: c.Commands, Health: c.Health, Handle: c.Handle}
	out.State = s.changes()
	return out, nil
}

// Close closes the plugin and sends home what it saved to its state while
// closing (a deadband flushing its last values).
func (s *grpcServer) Close(ctx context.Context, _ *pb.Empty) (*pb.StateResponse, error) {
	if err := s.impl.Close(ctx); err != nil {
		return nil, toStatus(err)
	}
	return &pb.StateResponse{State: s.changes()}, nil
}

func (s *grpcServer) gather(ctx context.Context, r *pb.GatherRequest) (*wireFrameResponse, error) {
	in, ok := s.impl.(Input)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "plugin is not a polled input")
	}
	f, err := in.Gather(WithReadBack(ctx, r.GetReadBack()))
	if err != nil {
		return nil, toStatus(err)
	}
	return newWireFrameResponse(f, s.changes())
}

// recycle runs once the reply to session call c has been sent (r is nil
// for a call that never ran): SendMsg has marshalled the reply into the
// codec's buffer before it returns, so nothing reads its frame after.
//
// A plugin that implements FrameReleaser then gets back the frame that
// Gather or Process returned, and, having promised not to keep references
// into the frames it is given, the points slices its Process request was
// decoded into go back to the pool for the next request. An isolated
// inputs.modbus so reuses its points slices as it does in process, and an
// isolated processors.template its payload buffer, while the request's
// ~80 KB of points per 1,000 are decoded into last call's: together most
// of what those processes allocate per poll.
//
// An output's Publish request goes back likewise, but only when Publish
// returned nil (or never ran): an output that failed may still have
// messages in flight in its client library, whose writer reads them until
// the connection it gave up on is torn down (see FrameReleaser).
func (s *grpcServer) recycle(c *wireCall, r *wireReply) {
	rel, ok := s.impl.(FrameReleaser)
	if !ok {
		return
	}
	if r != nil && r.Frame != nil && r.Frame.F != nil && (c.Gather != nil || c.Process != nil) {
		rel.ReleaseFrame(r.Frame.F)
	}
	if c.Process != nil {
		c.Process.recycle()
	}
	if c.Publish != nil && (r == nil || r.Code == codes.OK) {
		c.Publish.recycle()
	}
}

func (s *grpcServer) Stream(_ *pb.Empty, stream pb.Plugin_StreamServer) error {
	in, ok := s.impl.(StreamingInput)
	if !ok {
		return status.Error(codes.Unimplemented, "plugin is not a streaming input")
	}
	var mu sync.Mutex
	var sendErr error
	err := in.Stream(stream.Context(), func(f *Frame) {
		mu.Lock()
		defer mu.Unlock()
		if sendErr == nil {
			var resp *wireFrameResponse
			if resp, sendErr = newWireFrameResponse(f, s.changes()); sendErr == nil {
				sendErr = stream.SendMsg(resp)
			}
		}
	})
	if err == nil {
		err = sendErr
	}
	return toStatus(err)
}

func (s *grpcServer) process(ctx context.Context, f *wireFrame) (*wireFrameResponse, error) {
	p, ok := s.impl.(Processor)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "plugin is not a processor")
	}
	out, err := p.Process(ctx, f.F)
	if err != nil {
		return nil, toStatus(err)
	}
	return newWireFrameResponse(out, s.changes())
}

func (s *grpcServer) publish(ctx context.Context, r *wirePublish) (*pb.StateResponse, error) {
	o, ok := s.impl.(Output)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "plugin is not an output")
	}
	msgs := r.Msgs
	if r.Budget > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(r.Budget))
		defer cancel()
	}
	if err := o.Publish(ctx, msgs); err != nil {
		return nil, partialToStatus(err, len(msgs))
	}
	return &pb.StateResponse{State: s.changes()}, nil
}

func (s *grpcServer) Write(ctx context.Context, r *pb.WriteRequest) (*pb.WriteResponse, error) {
	w, ok := s.impl.(Writer)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "plugin accepts no writes")
	}
	reqs := make([]WriteRequest, len(r.Items))
	for i, it := range r.Items {
		reqs[i] = WriteRequest{Device: it.Device, Name: it.Name, Value: valueFromPB(it.Value)}
	}
	res, err := w.Write(ctx, reqs)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.WriteResponse{Errors: make([]string, len(reqs)), State: s.changes()}
	for i := range out.Errors {
		if i < len(res) {
			out.Errors[i] = res[i].Error
		} else {
			out.Errors[i] = "no result from plugin"
		}
	}
	return out, nil
}

func (s *grpcServer) Commands(_ *pb.Empty, stream pb.Plugin_CommandsServer) error {
	cs, ok := s.impl.(CommandSource)
	if !ok {
		return status.Error(codes.Unimplemented, "plugin is no command source")
	}
	var mu sync.Mutex
	var sendErr error
	err := cs.Commands(stream.Context(), func(c Command) {
		mu.Lock()
		defer mu.Unlock()
		if sendErr == nil {
			sendErr = stream.Send(commandToPB(c))
		}
	})
	if err == nil {
		err = sendErr
	}
	return toStatus(err)
}

func (s *grpcServer) Health(ctx context.Context, _ *pb.Empty) (*pb.HealthResponse, error) {
	hr, ok := s.impl.(HealthReporter)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "plugin reports no health")
	}
	h, err := hr.Health(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return healthToPB(h), nil
}

// healthToPB and healthFromPB carry a Health over the wire; times travel
// as Unix milliseconds, 0 for the zero time.
func healthToPB(h Health) *pb.HealthResponse {
	out := &pb.HealthResponse{Ok: h.OK, Reason: h.Reason, Counters: h.Counters}
	ms := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.UnixMilli()
	}
	for _, d := range h.Devices {
		out.Devices = append(out.Devices, &pb.DeviceHealth{Name: d.Name, Up: d.Up, LastError: d.LastError,
			LastErrorMs: ms(d.LastErrorAt), LastGoodMs: ms(d.LastGood), ReadErrors: d.ReadErrors})
	}
	return out
}

func healthFromPB(r *pb.HealthResponse) Health {
	h := Health{OK: r.GetOk(), Reason: r.GetReason(), Counters: r.GetCounters()}
	at := func(ms int64) time.Time {
		if ms == 0 {
			return time.Time{}
		}
		return time.UnixMilli(ms)
	}
	for _, d := range r.GetDevices() {
		h.Devices = append(h.Devices, DeviceHealth{Name: d.GetName(), Up: d.GetUp(), LastError: d.GetLastError(),
			LastErrorAt: at(d.GetLastErrorMs()), LastGood: at(d.GetLastGoodMs()), ReadErrors: d.GetReadErrors()})
	}
	return h
}

func (s *grpcServer) HandleCommand(ctx context.Context, c *pb.Command) (*pb.FrameResponse, error) {
	h, ok := s.impl.(CommandHandler)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "plugin handles no commands")
	}
	f, err := h.HandleCommand(ctx, commandFromPB(c))
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.FrameResponse{Frame: frameToPB(f), State: s.changes()}, nil
}

func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, err.Error())
	}
	if errors.Is(err, ErrNotMine) {
		return status.Error(codes.NotFound, err.Error())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Unknown, err.Error())
}

// fromStatus turns a plugin's error back into a plain error carrying its
// message; transport failures stay gRPC statuses so that the supervisor can
// tell a crashed process (codes.Unavailable) from a failed call.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Unknown:
		return errors.New(st.Message())
	case codes.Canceled:
		return fmt.Errorf("%w: %s", context.Canceled, st.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("%w: %s", context.DeadlineExceeded, st.Message())
	case codes.NotFound:
		return notMine(st.Message())
	}
	return err
}

// publishAnswerGrace is how much longer than the batch's budget the host
// waits for an isolated output's answer to Publish.
const publishAnswerGrace = 2 * time.Second

// partialToStatus is toStatus for Publish: a PartialError's count rides
// along as a PublishPartial detail, under the code of the error it wraps
// (so a deadline stays a deadline).
func partialToStatus(err error, n int) error {
	st := toStatus(err)
	c := ConfirmedOf(err, n)
	if c == 0 {
		return st
	}
	s, _ := status.FromError(st)
	if d, derr := s.WithDetails(&pb.PublishPartial{Confirmed: uint32(c)}); derr == nil {
		return d.Err()
	}
	return st
}

// partialFromStatus undoes partialToStatus: the plain error as fromStatus
// makes it, wrapped in a PartialError when the plugin confirmed a prefix.
func partialFromStatus(err error, n int) error {
	plain := fromStatus(err)
	st, ok := status.FromError(err)
	if !ok {
		return plain
	}
	for _, d := range st.Details() {
		if p, ok := d.(*pb.PublishPartial); ok {
			return PartialError{Confirmed: min(int(p.Confirmed), n), Err: plain}
		}
	}
	return plain
}

// grpcClient is the host's view of a plugin in another process. It
// implements every plugin interface; calls the remote plugin does not
// support fail with codes.Unimplemented, and Caps tells which are real.
type grpcClient struct {
	cc    grpc.ClientConnInterface // the calls of every poll, with framewire.go's messages
	c     pb.PluginClient          // the others
	caps  Caps
	kinds []PluginKind // learnt in Init; nil from an older SDK
	state State

	smu       sync.Mutex
	sess      *session // Gather, Process, Publish; see session.go
	noSession bool     // the plugin has no Session: unary calls
	raw       net.Conn // the session socket, until the session opens on it

	points   pointPool      // points slices and payload buffers of released frames, for the next
	lendMu   sync.Mutex     // guards lent and lentMsgs
	lent     []lentFrame    // frames Gather returned, not yet released
	lentMsgs []lentPayloads // frames Process returned, not yet released
}

// lentPayloads is a frame Process returned and the buffer its messages'
// payloads were decoded into.
type lentPayloads struct {
	f     *Frame
	arena []byte
}

// lentFrame is a frame Gather returned and the points slices it was
// decoded into (the core's processors may change the frame's own).
type lentFrame struct {
	f   *Frame
	pts [][]Point
}

// maxLent bounds the frames remembered for ReleaseFrame: a core that
// never releases (an older core, a frame dropped) costs nothing more.
const maxLent = 4

var _ FrameReleaser = (*grpcClient)(nil)

// ReleaseFrame takes back the points slices of a frame Gather returned
// (sdk.FrameReleaser): the next frame decoded on this connection reuses
// them, as an in-process input reuses its own. Given a frame Process
// returned, it takes back the buffer of its messages' payloads, which the
// next reply's payloads are decoded into: the core gives such a frame back
// only once no queue and no output refers to its messages (see the
// agent's settle).
func (c *grpcClient) ReleaseFrame(f *Frame) {
	c.lendMu.Lock()
	defer c.lendMu.Unlock()
	for i, l := range c.lentMsgs {
		if l.f == f {
			c.points.putArena(l.arena)
			c.lentMsgs = slices.Delete(c.lentMsgs, i, i+1)
			return
		}
	}
	for i, l := range c.lent {
		if l.f != f {
			continue
		}
		for _, s := range l.pts {
			c.points.put(s)
		}
		c.lent = append(c.lent[:i], c.lent[i+1:]...)
		return
	}
}

// lend remembers the points slices of a frame Gather returns.
func (c *grpcClient) lend(f *Frame) {
	if f == nil || len(f.Batches) == 0 {
		return
	}
	pts := make([][]Point, 0, len(f.Batches))
	for _, b := range f.Batches {
		pts = append(pts, b.Points)
	}
	c.lendMu.Lock()
	defer c.lendMu.Unlock()
	if len(c.lent) >= maxLent {
		c.lent = append(c.lent[:0], c.lent[1:]...) // the oldest was never given back
	}
	c.lent = append(c.lent, lentFrame{f, pts})
}

// lendPayloads remembers the payload buffer of a frame Process returns,
// the last maxLent of them: a core that does not give them back costs
// nothing more, their buffers are the collector's.
func (c *grpcClient) lendPayloads(f *Frame, arena []byte) {
	c.lendMu.Lock()
	defer c.lendMu.Unlock()
	if len(c.lentMsgs) >= maxLent {
		c.lentMsgs = slices.Delete(c.lentMsgs, 0, 1)
	}
	c.lentMsgs = append(c.lentMsgs, lentPayloads{f, arena})
}

// newGRPCClient wraps a connection to a plugin server.
func newGRPCClient(cc grpc.ClientConnInterface) *grpcClient {
	return &grpcClient{cc: cc, c: pb.NewPluginClient(cc)}
}

var (
	_ Input          = (*grpcClient)(nil)
	_ StreamingInput = (*grpcClient)(nil)
	_ Writer         = (*grpcClient)(nil)
	_ Processor      = (*grpcClient)(nil)
	_ Output         = (*grpcClient)(nil)
	_ CommandSource  = (*grpcClient)(nil)
	_ HealthReporter = (*grpcClient)(nil)
	_ CommandHandler = (*grpcClient)(nil)
)

// Caps is what the remote plugin can do, learnt in Init.
func (c *grpcClient) Caps() Caps { return c.caps }

// Kinds are the roles the remote plugin serves, learnt in Init (see
// KindsOf).
func (c *grpcClient) Kinds() ([]PluginKind, bool) { return c.kinds, c.kinds != nil }

func (c *grpcClient) Init(ctx context.Context, req *InitRequest) (*InitResponse, error) {
	r := &pb.InitRequest{Config: req.Config, File: req.File, Line: int32(req.Line), Name: req.Name, Alias: req.Alias,
		Agent: &pb.AgentInfo{DeviceId: req.Agent.DeviceID, TopicPrefix: req.Agent.TopicPrefix, DataDir: req.Agent.DataDir,
			MaxCommandSize: req.Agent.MaxCommandSize, Version: req.Agent.Version},
		Points: schemaToPB(req.Points)}
	c.state = req.State
	if req.State != nil {
		r.State = map[string][]byte{}
		for _, k := range req.State.Keys() {
			if v, ok := req.State.Get(k); ok {
				r.State[k] = v
			}
		}
	}
	resp, err := c.c.Init(ctx, r)
	if err != nil {
		return nil, fromStatus(err)
	}
	applyState(c.state, resp.State)
	c.kinds = nil
	for _, k := range resp.Kinds {
		c.kinds = append(c.kinds, PluginKind(k))
	}
	if len(resp.ConfigErrors) > 0 {
		errs := make(ConfigErrors, len(resp.ConfigErrors))
		for i, e := range resp.ConfigErrors {
			errs[i] = ConfigError{File: e.File, Line: int(e.Line), Path: e.Path, Msg: e.Msg}
		}
		return nil, errs
	}
	if cp := resp.Caps; cp != nil {
		c.caps = Caps{Stream: cp.Stream, Write: cp.Write, Commands: cp.Commands, Health: cp.Health, Handle: cp.Handle}
	}
	return &InitResponse{Points: schemaFromPB(resp.Points), Interval: time.Duration(resp.IntervalNs)}, nil
}

func (c *grpcClient) Close(ctx context.Context) error {
	c.closeSession()
	resp, err := c.c.Close(ctx, &pb.Empty{})
	if err != nil {
		return fromStatus(err)
	}
	applyState(c.state, resp.State)
	return nil
}

// callOpts are those of the generated client plus the codec that takes
// framewire.go's messages.
var callOpts = []grpc.CallOption{grpc.StaticMethod(), wire.CallCodec}

func (c *grpcClient) Gather(ctx context.Context) (*Frame, error) {
	req := &pb.GatherRequest{ReadBack: ReadBackDevices(ctx)}
	if r, ok, err := c.onSession(ctx, &wireCall{Gather: req}); ok {
		f, err := c.frameReply(r, err)
		if err == nil {
			c.lend(f)
		}
		return f, err
	}
	var resp wireFrameResponse
	err := c.cc.Invoke(ctx, pb.Plugin_Gather_FullMethodName, req, &resp, callOpts...)
	return c.frameReply(&wireReply{Frame: &resp}, err)
}

// frameReply is the frame a Gather or Process answered, its state changes
// applied.
func (c *grpcClient) frameReply(r *wireReply, err error) (*Frame, error) {
	if err != nil {
		return nil, fromStatus(err)
	}
	if r.Frame == nil {
		return &Frame{}, nil
	}
	applyState(c.state, r.Frame.State)
	return r.Frame.F, nil
}

func (c *grpcClient) Stream(ctx context.Context, emit func(*Frame)) error {
	stream, err := c.c.Stream(ctx, &pb.Empty{}, wire.CallCodec)
	if err != nil {
		return fromStatus(err)
	}
	for {
		var resp wireFrameResponse
		err := stream.RecvMsg(&resp)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fromStatus(err)
		}
		applyState(c.state, resp.State)
		emit(resp.F)
	}
}

func (c *grpcClient) Process(ctx context.Context, f *Frame) (*Frame, error) {
	req := newWireFrame(f)
	if r, ok, err := c.onSession(ctx, &wireCall{Process: req}); ok {
		out, err := c.frameReply(r, err)
		if err == nil && r.Frame != nil && len(out.Messages) > 0 && cap(r.Frame.payloads) > 0 {
			c.lendPayloads(out, r.Frame.payloads)
		}
		return out, err
	}
	var resp wireFrameResponse
	err := c.cc.Invoke(ctx, pb.Plugin_Process_FullMethodName, req, &resp, callOpts...)
	return c.frameReply(&wireReply{Frame: &resp}, err)
}

func (c *grpcClient) Publish(ctx context.Context, msgs []Message) error {
	var budget int64
	callCtx := ctx
	if d, ok := ctx.Deadline(); ok {
		// The plugin gets the budget, the call a grace period on top, so
		// that the answer of a plugin that stops at its deadline (with how
		// many it confirmed) still arrives. Cancelling ctx still cancels
		// the call at once.
		budget = max(int64(time.Until(d)), 1)
		call, cancel := context.WithDeadline(context.WithoutCancel(ctx), d.Add(publishAnswerGrace))
		defer cancel()
		stop := context.AfterFunc(ctx, func() {
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				cancel()
			}
		})
		defer stop()
		callCtx = call
	}
	req := newWirePublish(msgs, budget)
	r, ok, err := c.onSession(callCtx, &wireCall{Publish: req})
	if !ok {
		r = &wireReply{State: &pb.StateResponse{}}
		err = c.cc.Invoke(callCtx, pb.Plugin_Publish_FullMethodName, req, r.State, callOpts...)
	}
	if err != nil {
		return partialFromStatus(err, len(msgs))
	}
	if r.State != nil {
		applyState(c.state, r.State.State)
	}
	return nil
}

func (c *grpcClient) Write(ctx context.Context, reqs []WriteRequest) ([]WriteResult, error) {
	r := &pb.WriteRequest{Items: make([]*pb.WriteItem, len(reqs))}
	for i, w := range reqs {
		r.Items[i] = &pb.WriteItem{Device: w.Device, Name: w.Name, Value: valueToPB(w.Value)}
	}
	resp, err := c.c.Write(ctx, r)
	if err != nil {
		return nil, fromStatus(err)
	}
	applyState(c.state, resp.State)
	out := make([]WriteResult, len(reqs))
	for i := range out {
		if i < len(resp.Errors) {
			out[i].Error = resp.Errors[i]
		} else {
			out[i].Error = "no result from plugin"
		}
	}
	return out, nil
}

func (c *grpcClient) Commands(ctx context.Context, handle func(Command)) error {
	stream, err := c.c.Commands(ctx, &pb.Empty{})
	if err != nil {
		return fromStatus(err)
	}
	for {
		cmd, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fromStatus(err)
		}
		handle(commandFromPB(cmd))
	}
}

func (c *grpcClient) Health(ctx context.Context) (Health, error) {
	resp, err := c.c.Health(ctx, &pb.Empty{})
	if err != nil {
		return Health{}, fromStatus(err)
	}
	return healthFromPB(resp), nil
}

func (c *grpcClient) HandleCommand(ctx context.Context, cmd Command) (*Frame, error) {
	resp, err := c.c.HandleCommand(ctx, commandToPB(cmd))
	if err != nil {
		return nil, fromStatus(err)
	}
	applyState(c.state, resp.State)
	return frameFromPB(resp.Frame), nil
}

// notMine carries a remote ErrNotMine with its message.
type notMine string

func (e notMine) Error() string { return string(e) }
func (e notMine) Unwrap() error { return ErrNotMine }
