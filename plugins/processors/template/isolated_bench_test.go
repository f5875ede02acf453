package template

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/grpcplugin"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// connectSocket serves impl over a real Unix socket with the production
// transport (the session stream, the direct encoding, the raw-syscall
// connection), both ends in this process, and returns the host's client.
func connectSocket(tb testing.TB, impl sdk.Plugin) grpcplugin.Client {
	tb.Helper()
	lis, err := net.Listen("unix", filepath.Join(tb.TempDir(), "p.sock"))
	if err != nil {
		tb.Fatal(err)
	}
	srv := grpc.NewServer(grpcplugin.ServerOptions()...)
	grpcplugin.RegisterServer(srv, impl)
	go func() { _ = srv.Serve(lis) }()
	// Plain credentials first, as go-plugin adds them; the SDK's options
	// come after and win.
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, grpcplugin.DialOptions()...)
	cc, err := grpc.NewClient("unix://"+lis.Addr().String(), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = cc.Close()
		srv.Stop()
	})
	return grpcplugin.NewClient(cc)
}

// modbusFrame is a poll of the bench's modbus-mqtt scenario: one device
// of n holding registers, integers whose values move with poll.
func modbusFrame(n, poll int) *sdk.Frame {
	ts := int64(1732600000000) + int64(poll)*100
	b := sdk.Batch{Device: "plc1", TS: ts, Points: make([]sdk.Point, n)}
	for i := range b.Points {
		b.Points[i] = sdk.Point{Name: registerName(i), Value: sdk.Int(int64((i*7 + poll*13) % 65536)), TS: ts}
	}
	return &sdk.Frame{Batches: []sdk.Batch{b}}
}

var registerNames = func() []string {
	s := make([]string, 1000)
	for i := range s {
		s[i] = "hr" + itoa(i)
	}
	return s
}()

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for ; i > 0; i /= 10 {
		n--
		b[n] = byte('0' + i%10)
	}
	return string(b[n:])
}

func registerName(i int) string {
	if i < len(registerNames) {
		return registerNames[i]
	}
	return "hr" + itoa(i)
}

// BenchmarkProcessIsolated is one Process call of the default template on
// a 1000-register poll over the plugin connection: what both ends
// allocate per call (the plugin process's share is its decoded request,
// the rendered payload and the reply's encoding; the host's its encoded
// request and the decoded reply, whose payload it copies for the
// queues). "released" is the template as it is (sdk.FrameReleaser: the
// SDK reuses the requests' points and gives the payload buffer back);
// "fresh" hides its ReleaseFrame, as any processor that does not opt in.
func BenchmarkProcessIsolated(b *testing.B) {
	for _, c := range []struct {
		name string
		impl sdk.Plugin
	}{
		{"released", New()},
		{"fresh", struct{ sdk.Processor }{New()}},
	} {
		b.Run(c.name, func(b *testing.B) {
			cl := connectSocket(b, c.impl)
			if _, err := cl.Init(context.Background(), sdktest.Request("")); err != nil {
				b.Fatal(err)
			}
			frames := [2]*sdk.Frame{modbusFrame(1000, 0), modbusFrame(1000, 1)}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				// The host's Process does not change the frame it
				// sends; the reply is a frame of its own.
				out, err := cl.Process(context.Background(), frames[i%2])
				if err != nil || len(out.Messages) != 1 {
					b.Fatal(err, out)
				}
				i++
			}
		})
	}
}
