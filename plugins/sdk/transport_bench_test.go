package sdk_test

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/grpcplugin"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// BenchmarkProcessOverSocket is one Process call of a 1000-point frame
// through the production transport over a real Unix socket (both ends in
// this process), the session on its own socket as a plugin process serves
// it (session-socket), and on gRPC's Session stream as with a plugin of an
// SDK without the socket (grpc-stream): the direct encoding, the
// raw-syscall connection. CPU per call on both sides, without the process
// hop's wake-ups that the bench's modbus-mqtt scenario measures.
func BenchmarkProcessOverSocket(b *testing.B) {
	b.Run("session-socket", func(b *testing.B) {
		c := sdktest.Connect(b, &echo{})
		benchProcess(b, c)
	})
	b.Run("grpc-stream", benchProcessGRPCStream)
}

func benchProcessGRPCStream(b *testing.B) {
	sock := filepath.Join(b.TempDir(), "p.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer(grpcplugin.ServerOptions()...)
	grpcplugin.RegisterServer(srv, &echo{})
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	// Plain credentials first, as go-plugin adds them; the SDK's options
	// come after and win.
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, grpcplugin.DialOptions()...)
	cc, err := grpc.NewClient("unix://"+sock, opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	benchProcess(b, grpcplugin.NewClient(cc))
}

func benchProcess(b *testing.B, c grpcplugin.Client) {
	if _, err := c.Init(context.Background(), sdktest.Request("")); err != nil {
		b.Fatal(err)
	}
	bt := sdk.Batch{Device: "plc1", TS: 1732600000000, Points: make([]sdk.Point, 1000)}
	for i := range bt.Points {
		bt.Points[i] = sdk.Point{Name: "p" + strconv.Itoa(i), Value: sdk.Float(float64(i) * 1.5), TS: bt.TS}
	}
	f := &sdk.Frame{Batches: []sdk.Batch{bt}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Process(context.Background(), f); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/point")
}
