package wire

import (
	"context"
	"sync"

	"google.golang.org/grpc"
)

// Fence orders a plugin's calls across its two transports. A plugin gets
// Init, Write, Close and the rest on gRPC and the calls of every poll on
// its session socket, each on a goroutine of its own; the host makes them
// in order (Gather only after Init answered), but that order travels
// through the kernel, which the Go memory model (and the race detector)
// does not see: what Init stored in the plugin would not be ordered before
// the Gather that reads it. Every call on either transport passes Fence
// as it starts and as it ends, and an unlock happens before the next
// lock: the calls are ordered as the host made them, without being
// serialised (the mutex is held for no longer than the pass).
func Fence() {
	fence.Lock()
	//lint:ignore SA2001 the empty critical section is the point: see Fence
	fence.Unlock()
}

var fence sync.Mutex

func fenceUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	Fence()
	resp, err := handler(ctx, req)
	Fence()
	return resp, err
}

func fenceStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	Fence()
	err := handler(srv, ss)
	Fence()
	return err
}
