package monitor

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Config says what a monitor serves and how.
type Config struct {
	Addr   string // "127.0.0.1:9273"; port 0 picks one
	Source Source
	// Console, when set, serves every path but /healthz and /metrics (the
	// local console and API, core/console, with its own access control);
	// those two never ask for a password.
	Console http.Handler
	// TLSCert and TLSKey, when set, serve HTTPS.
	TLSCert, TLSKey string
	Logger          *slog.Logger
}

// Serve starts serving c.
func Serve(c Config) (*Server, error) {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	var h http.Handler = Handler(c.Source)
	if c.Console != nil {
		mux := http.NewServeMux()
		mux.Handle("/healthz", h)
		mux.Handle("/metrics", h)
		mux.Handle("/", c.Console)
		h = mux
	}
	l, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return nil, err
	}
	// Requests that never end by themselves (a live-points stream) end
	// when the server shuts down, so that Close does not wait for them.
	base, stop := context.WithCancel(context.Background())
	s := &Server{srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second,
		BaseContext: func(net.Listener) context.Context { return base }}, addr: l.Addr().String()}
	s.srv.RegisterOnShutdown(stop)
	go func() {
		var err error
		if c.TLSCert != "" {
			err = s.srv.ServeTLS(l, c.TLSCert, c.TLSKey)
		} else {
			err = s.srv.Serve(l)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.Logger.Error("monitor stopped", "err", err)
		}
	}()
	return s, nil
}

// Handler is what the server serves (tests call it without a network).
func (s *Server) Handler() http.Handler { return s.srv.Handler }
