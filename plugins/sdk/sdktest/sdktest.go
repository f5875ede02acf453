// Package sdktest runs a plugin's tests twice: with the plugin in the
// test's process, and through the real gRPC adapters over an in-memory
// connection. A plugin whose values, errors or state do not survive the
// wire fails its own tests, not only the isolation tests of the core.
package sdktest

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/grpcplugin"
)

// Mode names the two ways a plugin runs.
const (
	InProcess = "in-process"
	GRPC      = "grpc"
)

// Run calls fn as a subtest for each mode with a fresh plugin from factory.
// fn receives the plugin as the core would see it; it should Init it
// (see Init) and exercise it.
func Run(t *testing.T, factory func() sdk.Plugin, fn func(t *testing.T, p sdk.Plugin)) {
	t.Helper()
	t.Run(InProcess, func(t *testing.T) {
		p := factory()
		t.Cleanup(func() { _ = p.Close(context.Background()) })
		fn(t, p)
	})
	t.Run(GRPC, func(t *testing.T) {
		c := Connect(t, factory())
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		fn(t, c)
	})
}

// Connect serves impl over an in-memory gRPC connection with the production
// options and returns the host-side client, with the calls of every poll
// on a session socket beside it, as a plugin process serves them.
// Everything stops at test end.
func Connect(t testing.TB, impl sdk.Plugin) grpcplugin.Client {
	t.Helper()
	sess := grpcplugin.NewSessionSocket()
	if sess == nil {
		t.Log("sdktest: no session socket here: the session runs on gRPC")
	}
	c := connect(t, impl, sess)
	if sess != nil && !sess.Use(c) {
		t.Fatal("sdktest: the plugin did not greet on its session socket")
	}
	return c
}

// ConnectGRPCSession is Connect without the session socket: the calls of
// every poll travel on gRPC's Session stream, as with a host that did not
// pass a socket.
func ConnectGRPCSession(t testing.TB, impl sdk.Plugin) grpcplugin.Client {
	t.Helper()
	return connect(t, impl, nil)
}

func connect(t testing.TB, impl sdk.Plugin, sess *grpcplugin.SessionSocket) grpcplugin.Client {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpcplugin.ServerOptions()...)
	if err := sess.Serve(srv, impl); err != nil {
		t.Fatalf("sdktest: session socket: %v", err)
	}
	go func() { _ = srv.Serve(lis) }()
	opts := append(grpcplugin.DialOptions(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	cc, err := grpc.NewClient("passthrough:///bufconn", opts...)
	if err != nil {
		t.Fatalf("sdktest: dial: %v", err)
	}
	t.Cleanup(func() {
		sess.Close()
		_ = cc.Close()
		srv.Stop()
	})
	return grpcplugin.NewClient(cc)
}

// Request builds an InitRequest for a configuration snippet written as the
// plugin's own table (no [[inputs.x]] header), with a fresh in-memory state.
func Request(config string) *sdk.InitRequest {
	return &sdk.InitRequest{
		Config: []byte(config),
		File:   "test.toml",
		Line:   1,
		Agent:  sdk.AgentInfo{DeviceID: "GW-TEST", TopicPrefix: "Topic/flexem/fbox/"},
		State:  sdk.NewMemState(nil),
	}
}

// Init initialises p with config and fails the test on error.
func Init(t testing.TB, p sdk.Plugin, config string) *sdk.InitResponse {
	t.Helper()
	resp, err := p.Init(context.Background(), Request(config))
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return resp
}

// Clock is a settable clock for plugins with an injectable time source
// (`now func() time.Time`). It is safe to use while the plugin runs on the
// gRPC server's goroutines.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock showing t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time; pass c.Now to the plugin.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock by d (negative: back).
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
