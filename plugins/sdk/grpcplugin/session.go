package grpcplugin

import (
	"fmt"
	"net"
	"os"
	"os/exec"

	"google.golang.org/grpc"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/internal/wire"
)

// SessionSocket is the socket on which one plugin process serves its
// Session (the calls of every poll) instead of on gRPC (package sdk's
// rawsession.go). A host makes one per process it starts:
//
//	s := grpcplugin.NewSessionSocket()
//	defer s.Close()
//	s.Pass(cmd)    // before the process starts
//	...            // go-plugin's handshake, Dispense
//	s.Use(client)  // before the first call
//
// A nil *SessionSocket (NewSessionSocket on a platform without Unix socket
// pairs) does nothing: the Session runs on gRPC.
type SessionSocket struct {
	host   net.Conn // until Use hands it to a client
	child  *os.File // the plugin's end, this process's copy
	plugin net.Conn // the plugin's end Serve serves in this process
}

// SessionFDEnv names the environment variable that tells a plugin process
// which inherited file descriptor is its session socket.
const SessionFDEnv = wire.SessionFDEnv

// NewSessionSocket makes the socket pair, or returns nil where there is
// none to make.
func NewSessionSocket() *SessionSocket {
	host, child, err := wire.SessionPair()
	if err != nil {
		return nil
	}
	return &SessionSocket{host: host, child: child}
}

// Pass makes cmd, not yet started, inherit the plugin's end and name its
// descriptor in SessionFDEnv (go-plugin appends the host's environment
// after cmd.Env).
func (s *SessionSocket) Pass(cmd *exec.Cmd) {
	if s == nil {
		return
	}
	fd := 3 + len(cmd.ExtraFiles)
	cmd.ExtraFiles = append(cmd.ExtraFiles, s.child)
	cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", SessionFDEnv, fd))
}

// Serve registers impl on srv and serves its Session on the plugin's end
// in this process, greeting first, as sdk.Serve does in a plugin process
// that inherited the socket (package sdktest's in-memory connection).
func (s *SessionSocket) Serve(srv *grpc.Server, impl sdk.Plugin) error {
	if s == nil {
		RegisterServer(srv, impl)
		return nil
	}
	c, err := net.FileConn(s.child)
	if err != nil {
		return err
	}
	s.plugin = c
	server := wire.RegisterServer(srv, impl)
	if err := wire.Greet(c); err != nil {
		return err
	}
	wire.ServeSession(server, c)
	return nil
}

// Use hands the host's end to c, whose Session then runs on it, when the
// plugin greeted on it (an SDK that knows the socket); it reports whether.
// Call it once the plugin process has started and answered go-plugin's
// handshake, before the first call.
func (s *SessionSocket) Use(c Client) bool {
	if s == nil {
		return false
	}
	_ = s.child.Close() // the plugin has its own copy
	u, ok := c.(interface{ UseSessionSocket(net.Conn) bool })
	if !ok || !u.UseSessionSocket(s.host) {
		return false
	}
	s.host = nil
	return true
}

// Close closes what Use did not hand over, and the end Serve serves (both
// ends' session goroutines then end); a used host end is closed with its
// session.
func (s *SessionSocket) Close() {
	if s == nil {
		return
	}
	_ = s.child.Close()
	for _, c := range []net.Conn{s.host, s.plugin} {
		if c != nil {
			_ = c.Close()
		}
	}
}
