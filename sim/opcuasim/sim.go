// Package opcuasim is an OPC UA server simulator on gopcua's own server
// package (security None, anonymous only): a pure-Go peer for trying
// inputs.opcua without installing node-opcua or a PLC.
package opcuasim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gopcua/opcua/id"
	uaserver "github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"
)

// NamespaceURI is the simulator's namespace; node ids are stable as
// "nsu=urn:edgepipe:sim;s=NAME" whatever index the server gives it.
const NamespaceURI = "urn:edgepipe:sim"

// DefaultListen is where `edgepipe sim opcua` serves without --listen.
const DefaultListen = "opc.tcp://127.0.0.1:4840"

// Node describes one simulated variable, as printed at start.
type Node struct {
	ID       string // ns=N;s=NAME
	Type     string // built-in type name
	Writable bool
}

// state holds the changing values; the server reads them through value
// functions from its own goroutines, hence the mutex.
type state struct {
	mu      sync.Mutex
	tick    uint32
	temp    float64
	running bool
	status  string
}

// Sim is a running simulator.
type Sim struct {
	srv      *uaserver.Server
	ns       *uaserver.NodeNameSpace
	endpoint string
	nodes    []Node
	st       state
	cancel   context.CancelFunc
	done     chan struct{}
}

// gopcuaLogger sends the library server's log to slog at debug level.
type gopcuaLogger struct{}

func (gopcuaLogger) Debug(msg string, args ...any) { slog.Debug(fmt.Sprintf(msg, args...)) }
func (gopcuaLogger) Info(msg string, args ...any)  { slog.Debug(fmt.Sprintf(msg, args...)) }
func (gopcuaLogger) Warn(msg string, args ...any)  { slog.Debug(fmt.Sprintf(msg, args...)) }
func (gopcuaLogger) Error(msg string, args ...any) { slog.Debug(fmt.Sprintf(msg, args...)) }

// parseListen turns opc.tcp://HOST:PORT into host and port (0: any free).
func parseListen(listen string) (string, int, error) {
	u, err := url.Parse(listen)
	if err != nil {
		return "", 0, err
	}
	if u.Scheme != "opc.tcp" {
		return "", 0, fmt.Errorf("listen %q: want opc.tcp://HOST:PORT", listen)
	}
	host, p, err := net.SplitHostPort(u.Host)
	if err != nil {
		return "", 0, fmt.Errorf("listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("listen %q: want a port 0-65535 (0: a free one)", listen)
	}
	return host, port, nil
}

// Start serves the simulator on listen (opc.tcp://HOST:PORT) and changes
// its values once a second (every interval if not zero) until Close.
// Port 0 takes a free port (Endpoint tells which): the library's server
// does not say which port it got, so a free one is found first, and
// another tried should something else take it in between.
func Start(listen string, interval time.Duration) (*Sim, error) {
	host, port, err := parseListen(listen)
	if err != nil {
		return nil, err
	}
	if interval <= 0 {
		interval = time.Second
	}
	if port != 0 {
		return start(host, port, interval)
	}
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, err
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		s, err := start(host, port, interval)
		if err == nil || attempt == 4 {
			return s, err
		}
	}
}

func start(host string, port int, interval time.Duration) (*Sim, error) {
	s := &Sim{done: make(chan struct{})}
	s.st.temp, s.st.status = 21.5, "idle"
	s.srv = uaserver.New(uaserver.EnableSecurity("None", ua.MessageSecurityModeNone),
		uaserver.EnableAuthMode(ua.UserTokenTypeAnonymous),
		uaserver.EndPoint(host, port), uaserver.SetLogger(gopcuaLogger{}))
	root, err := s.srv.Namespace(0)
	if err != nil {
		return nil, err
	}
	s.ns = uaserver.NewNodeNameSpace(s.srv, NamespaceURI)
	root.Objects().AddRef(s.ns.Objects(), id.HasComponent, true)

	// Read-only nodes read the state; their AccessLevel denies writes, so
	// the library never replaces their value function.
	ro := func(name, typ string, v func() any) {
		n := s.ns.AddNewVariableStringNode(name, uaserver.ValueFunc(func() *ua.DataValue {
			s.st.mu.Lock()
			defer s.st.mu.Unlock()
			return uaserver.DataValueFromValue(v())
		}))
		_ = n.SetAttribute(ua.AttributeIDAccessLevel, uaserver.DataValueFromValue(byte(ua.AccessLevelTypeCurrentRead)))
		_ = n.SetAttribute(ua.AttributeIDUserAccessLevel, uaserver.DataValueFromValue(byte(ua.AccessLevelTypeCurrentRead)))
		s.ns.Objects().AddRef(n, id.HasComponent, true)
		s.nodes = append(s.nodes, Node{ID: n.ID().String(), Type: typ})
	}
	ro("Temperature", "Double", func() any { return s.st.temp })
	ro("Counter", "UInt32", func() any { return s.st.tick })
	ro("Running", "Boolean", func() any { return s.st.running })
	ro("Status", "String", func() any { return s.st.status })
	// The setpoint is a plain value node: the library's Write stores
	// what the client sends, and Read returns it.
	sp := s.ns.AddNewVariableStringNode("Setpoint", int32(40))
	s.ns.Objects().AddRef(sp, id.HasComponent, true)
	s.nodes = append(s.nodes, Node{ID: sp.ID().String(), Type: "Int32", Writable: true})

	GuardDeleteSubscriptions(s.srv)
	if err := s.srv.Start(context.Background()); err != nil {
		return nil, err
	}
	s.endpoint = fmt.Sprintf("opc.tcp://%s", net.JoinHostPort(host, strconv.Itoa(port)))
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.run(ctx, interval)
	return s, nil
}

// run changes the values every interval and tells subscribers.
func (s *Sim) run(ctx context.Context, interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.st.mu.Lock()
		s.st.tick++
		s.st.temp = 21.5 + 3*math.Sin(float64(s.st.tick)/10)
		s.st.running = s.st.tick/10%2 == 0
		if s.st.running {
			s.st.status = "running"
		} else {
			s.st.status = "idle"
		}
		s.st.mu.Unlock()
		for _, n := range s.nodes {
			if !n.Writable {
				if nid, err := ua.ParseNodeID(n.ID); err == nil {
					s.srv.ChangeNotification(nid)
				}
			}
		}
	}
}

// Endpoint is the URL clients connect to.
func (s *Sim) Endpoint() string { return s.endpoint }

// Nodes lists the simulated variables.
func (s *Sim) Nodes() []Node { return append([]Node(nil), s.nodes...) }

// Close stops the value changes and the server.
func (s *Sim) Close() error {
	s.cancel()
	<-s.done
	return s.srv.Close()
}

// Command is `edgepipe sim opcua`: it serves the simulator until ctx is
// cancelled, printing its endpoint and node ids. args are the arguments
// after "opcua": --listen opc.tcp://HOST:PORT (default DefaultListen).
func Command(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("edgepipe sim opcua", flag.ContinueOnError)
	fs.SetOutput(stdout)
	listen := fs.String("listen", DefaultListen, "where to serve: opc.tcp://HOST:PORT")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	s, err := Start(*listen, 0)
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(stdout, "opcua simulator: %s (security None, anonymous), namespace %s\n", s.Endpoint(), NamespaceURI)
	for _, n := range s.Nodes() {
		rw := "read"
		if n.Writable {
			rw = "read/write"
		}
		fmt.Fprintf(stdout, "  %-22s %-8s %s\n", n.ID, n.Type, rw)
	}
	<-ctx.Done()
	return nil
}

// GuardDeleteSubscriptions works around gopcua v0.8.0's server, whose
// DeleteSubscriptions dereferences the session without checking it: a
// client deleting its subscriptions after its session closed (inputs.opcua
// in subscribe mode, on Close) crashes the whole process. It answers such a
// request BadSessionIDInvalid itself; call it before srv.Start (handlers
// registered first win over the library's).
func GuardDeleteSubscriptions(srv *uaserver.Server) {
	srv.RegisterHandler(id.DeleteSubscriptionsRequest_Encoding_DefaultBinary, func(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
		if req, ok := r.(*ua.DeleteSubscriptionsRequest); ok && srv.Session(req.Header()) == nil {
			return &ua.DeleteSubscriptionsResponse{ResponseHeader: &ua.ResponseHeader{
				Timestamp: time.Now(), RequestHandle: req.RequestHeader.RequestHandle,
				ServiceResult: ua.StatusBadSessionIDInvalid, ServiceDiagnostics: &ua.DiagnosticInfo{},
				StringTable: []string{}, AdditionalHeader: ua.NewExtensionObject(nil),
			}}, nil
		}
		return srv.SubscriptionService.DeleteSubscriptions(sc, r, reqID)
	})
}
