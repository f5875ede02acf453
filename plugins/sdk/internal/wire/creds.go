package wire

import (
	"context"
	"net"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/edgepipe/edgepipe/internal/sockio"
)

// quietCreds is gRPC's insecure transport (a local socket to a child
// process, as go-plugin sets it up without AutoMTLS) with the connection
// wrapped by internal/sockio, on both ends: the calls of a poll then do not wake
// the Go runtime's monitor thread (see package sockio). Transport
// credentials are the one place where both the host (go-plugin dials) and
// the plugin (go-plugin listens) hand us the connection. A host that asks
// go-plugin for AutoMTLS must not use these options: they would replace
// its TLS credentials.
type quietCreds struct {
	credentials.TransportCredentials
}

func newQuietCreds() credentials.TransportCredentials {
	return quietCreds{insecure.NewCredentials()}
}

func (q quietCreds) ClientHandshake(ctx context.Context, authority string, c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := q.TransportCredentials.ClientHandshake(ctx, authority, c)
	if err != nil {
		return conn, info, err
	}
	return sockio.Wrap(conn, sockio.Options{}), info, nil
}

func (q quietCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := q.TransportCredentials.ServerHandshake(c)
	if err != nil {
		return conn, info, err
	}
	return sockio.Wrap(conn, sockio.Options{}), info, nil
}

func (q quietCreds) Clone() credentials.TransportCredentials {
	return quietCreds{q.TransportCredentials.Clone()}
}
