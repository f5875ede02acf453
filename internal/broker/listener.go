package broker

import (
	"crypto/tls"
	"log/slog"
	"net"
	"sync"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// Listener is a TCP (or, with a TLS configuration, TLS) listener for a
// mochi server that stops cleanly: its Close returns only once every
// connection it accepted has been handed back by the server.
//
// Why not mochi's own listeners.TCP: the server counts attached clients
// in a WaitGroup (Add as a connection attaches, Wait as the server
// closes), and a connection accepted while the server closes can Add
// while Close already Waits, which the race detector reports (one run in
// thirty of TestPinMismatchFailsOverToSecondServer, which stops a broker
// while the gateway reconnects). Here Close stops accepting, closes the
// connections and waits for every one to be done, all before the server
// Waits (see Close for the order).
type Listener struct {
	id, addr string
	tls      *tls.Config
	log      *slog.Logger

	mu     sync.Mutex
	ln     net.Listener
	closed bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup // a goroutine per accepted connection
}

var _ listeners.Listener = (*Listener)(nil)

// NewListener listens on addr once the server starts it (Init); tlsConfig
// nil serves plain TCP.
func NewListener(id, addr string, tlsConfig *tls.Config) *Listener {
	return &Listener{id: id, addr: addr, tls: tlsConfig, conns: map[net.Conn]struct{}{}}
}

// ID is the listener's name in the server.
func (l *Listener) ID() string { return l.id }

// Address is where it listens: the bound address once listening.
func (l *Listener) Address() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.addr
}

// Protocol is the listener's protocol name, as mochi's TCP listener says.
func (l *Listener) Protocol() string { return "tcp" }

// Init opens the address.
func (l *Listener) Init(log *slog.Logger) error {
	var ln net.Listener
	var err error
	if l.tls != nil {
		ln, err = tls.Listen("tcp", l.addr, l.tls)
	} else {
		ln, err = net.Listen("tcp", l.addr)
	}
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.ln, l.log = ln, log
	l.mu.Unlock()
	return nil
}

// Serve accepts connections and hands each to establish in a goroutine of
// its own, until Close.
func (l *Listener) Serve(establish listeners.EstablishFn) {
	l.mu.Lock()
	ln := l.ln
	l.mu.Unlock()
	if ln == nil {
		return
	}
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			conn.Close()
			return
		}
		l.conns[conn] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go func() {
			defer l.wg.Done()
			if err := establish(l.id, conn); err != nil && l.log != nil {
				l.log.Debug("connection ended", "listener", l.id, "err", err)
			}
			l.mu.Lock()
			delete(l.conns, conn)
			l.mu.Unlock()
			conn.Close()
		}()
	}
}

// Close stops accepting, closes every connection it accepted (an attached
// client's read fails and the server detaches it, as when the peer hangs
// up), waits until each is done, and only then has the server disconnect
// what is left (closeClients: nothing from this listener by then). A
// second call does nothing.
//
// In that order because mochi's closeListenerClients takes the clients'
// read lock twice over (GetByListener calls Len): with a client detaching
// at that moment, its write lock waits between the two and all three
// block for good (seen with clients connecting while the server closed).
func (l *Listener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	ln := l.ln
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	l.wg.Wait()
	closeClients(l.id)
}
