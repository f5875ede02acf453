package sdk_test

import (
	"context"
	"net"
	"reflect"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/grpcplugin"
	"github.com/edgepipe/edgepipe/plugins/sdk/pb"
)

// generatedPlugin is a plugin as an SDK built on the generated code alone
// serves it (gRPC's default codec, pb messages): an input, processor and
// output at once.
type generatedPlugin struct {
	pb.UnimplementedPluginServer
	published []*pb.Message
	budget    int64
}

func (*generatedPlugin) Gather(context.Context, *pb.GatherRequest) (*pb.FrameResponse, error) {
	return &pb.FrameResponse{Frame: &pb.Frame{Batches: []*pb.Batch{{Device: "plc", Ts: 100, Names: []byte("ab"),
		NameLens: []uint32{1, 1}, Kinds: []byte{byte(sdk.KindInt), byte(sdk.KindString)}, Bits: []uint64{7, 0},
		Strings: []byte("on"), StringLens: []uint32{2}, Qualities: []byte{0, 1}, TsDelta: []int64{0, -3}}}},
		State: []*pb.StateChange{{Key: "k", Value: []byte("v")}}}, nil
}

func (*generatedPlugin) Process(_ context.Context, f *pb.Frame) (*pb.FrameResponse, error) {
	f.Messages = append(f.Messages, &pb.Message{Topic: "t", Payload: []byte("p"), Qos: 1, Retain: true})
	return &pb.FrameResponse{Frame: f}, nil
}

func (g *generatedPlugin) Publish(_ context.Context, r *pb.PublishRequest) (*pb.StateResponse, error) {
	g.published, g.budget = r.Messages, r.BudgetNs
	return &pb.StateResponse{}, nil
}

func bufconnDial(t *testing.T, lis *bufconn.Listener, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	cc, err := grpc.NewClient("passthrough:///compat", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

var wantGathered = &sdk.Frame{Batches: []sdk.Batch{{Device: "plc", TS: 100, Points: []sdk.Point{
	{Name: "a", Value: sdk.Int(7), TS: 100}, {Name: "b", Value: sdk.String("on"), Quality: sdk.QualityBad, TS: 97}}}}}

// The gateway of this SDK drives a plugin built on the generated code
// alone (an older SDK's), also over a connection without its options.
func TestHostTalksToAGeneratedCodePlugin(t *testing.T) {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	g := &generatedPlugin{}
	pb.RegisterPluginServer(srv, g)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	c := grpcplugin.NewClient(bufconnDial(t, lis))
	ctx := context.Background()
	f, err := c.Gather(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f, wantGathered) {
		t.Fatalf("gathered %+v, want %+v", f, wantGathered)
	}
	out, err := c.Process(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if m := out.Messages; out.NumPoints() != 2 || len(m) != 1 || m[0].Topic != "t" || string(m[0].Payload) != "p" || m[0].QoS != 1 || !m[0].Retain {
		t.Fatalf("processed %+v", out)
	}
	msgs := []sdk.Message{{Topic: "x/y", Payload: []byte("{}"), QoS: 1}}
	if err := c.Publish(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if len(g.published) != 1 || g.published[0].Topic != "x/y" || string(g.published[0].Payload) != "{}" || g.published[0].Qos != 1 {
		t.Fatalf("published %+v", g.published)
	}
}

// A host on the generated code alone (gRPC's default codec) drives a
// plugin served by this SDK.
func TestGeneratedCodeHostTalksToThisSDK(t *testing.T) {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpcplugin.ServerOptions()...)
	grpcplugin.RegisterServer(srv, &echo{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	c := pb.NewPluginClient(bufconnDial(t, lis))
	ctx := context.Background()
	if _, err := c.Init(ctx, &pb.InitRequest{Config: []byte("")}); err != nil {
		t.Fatal(err)
	}
	in := &pb.Frame{Batches: []*pb.Batch{{Device: "plc", Ts: 5, Names: []byte("x"), NameLens: []uint32{1},
		Kinds: []byte{byte(sdk.KindFloat)}, Bits: []uint64{sdk.Float(1.5).Bits()}, Qualities: []byte{0}, TsDelta: []int64{0}}}}
	resp, err := c.Process(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if b := resp.GetFrame().GetBatches(); len(b) != 1 || b[0].Device != "plc" || string(b[0].Names) != "x" || b[0].Bits[0] != in.Batches[0].Bits[0] {
		t.Fatalf("processed %+v", resp.GetFrame())
	}
}
