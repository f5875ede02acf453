package sdk_test

import (
	"context"
	"net"
	"slices"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/grpcplugin"
	"github.com/edgepipe/edgepipe/plugins/sdk/pb"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// The roles a plugin serves cross the Init handshake, also when Init
// fails with configuration errors (the core then reports the kind, not
// the keys a plugin of another kind does not know).
func TestKindsCrossTheWire(t *testing.T) {
	c := sdktest.Connect(t, &echo{})
	if _, known := sdk.KindsOf(c); known {
		t.Fatal("kinds known before Init")
	}
	if _, err := c.Init(context.Background(), sdktest.Request("limit = -1\n")); err == nil {
		t.Fatal("Init accepted a negative limit")
	}
	kinds, known := sdk.KindsOf(c)
	if !known || !slices.Equal(kinds, []sdk.PluginKind{sdk.KindProcessor}) {
		t.Fatalf("kinds %v known %v, want processors", kinds, known)
	}
	if !sdk.Serves(c, sdk.KindProcessor) || sdk.Serves(c, sdk.KindInput) || sdk.Serves(c, sdk.KindOutput) {
		t.Fatal("Serves disagrees with KindsOf")
	}
	if local, _ := sdk.KindsOf(&echo{}); !slices.Equal(local, kinds) {
		t.Fatalf("in-process %v, over the wire %v", local, kinds)
	}
}

// oldServer answers Init as a plugin built with an SDK from before the
// kinds field.
type oldServer struct{ pb.UnimplementedPluginServer }

func (oldServer) Init(context.Context, *pb.InitRequest) (*pb.InitResponse, error) {
	return &pb.InitResponse{Caps: &pb.Caps{}}, nil
}

func TestPluginOfAnOlderSDKIsTrustedWithItsKind(t *testing.T) {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	pb.RegisterPluginServer(srv, oldServer{})
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	cc, err := grpc.NewClient("passthrough:///old", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := grpcplugin.NewClient(cc)
	if _, err := c.Init(context.Background(), sdktest.Request("")); err != nil {
		t.Fatal(err)
	}
	if _, known := sdk.KindsOf(c); known {
		t.Fatal("an older plugin's kinds taken as known")
	}
	if !sdk.Serves(c, sdk.KindInput) || !sdk.Serves(c, sdk.KindOutput) {
		t.Fatal("an older plugin is refused")
	}
}
