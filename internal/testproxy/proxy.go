// Package testproxy is a TCP proxy on loopback that limits the bandwidth of
// every connection through it, for tests of slow links: a GPRS modem or a
// saturated uplink between a gateway and its MQTT server.
//
// Its own socket buffers are kept small, so that a sender in front of it
// feels the limit within a few tens of kilobytes, the way it does behind a
// real slow link, instead of filling megabytes of loopback buffers first.
package testproxy

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Proxy forwards connections to one target at a limited rate.
type Proxy struct {
	ln       net.Listener
	target   string
	rate     atomic.Int64 // bytes per second and direction, per connection
	accepted atomic.Int64
	up       atomic.Int64 // bytes forwarded towards the target

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// Start listens on a free loopback port and forwards every connection to
// target at rate bytes per second in each direction. It stops at test end.
func Start(t testing.TB, target string, rate int64) *Proxy {
	t.Helper()
	// The receive buffer is set on the listening socket so that accepted
	// connections advertise a small window from their first segment.
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, bufBytes)
		})
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testproxy: %v", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.rate.Store(rate)
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Accepted counts the connections made through the proxy so far: a client
// that reconnected N times made N+1.
func (p *Proxy) Accepted() int { return int(p.accepted.Load()) }

// BytesUp counts the bytes forwarded from clients to the target.
func (p *Proxy) BytesUp() int64 { return p.up.Load() }

// SetRate changes the limit for data forwarded from now on.
func (p *Proxy) SetRate(bytesPerSecond int64) { p.rate.Store(bytesPerSecond) }

// Close stops listening and cuts every connection.
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn, on bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		if p.conns == nil {
			return false
		}
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
	return true
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, true) || !p.track(up, true) {
			c.Close()
			up.Close()
			return
		}
		for _, s := range []net.Conn{c, up} {
			tc := s.(*net.TCPConn)
			_ = tc.SetReadBuffer(bufBytes)
			_ = tc.SetWriteBuffer(bufBytes)
		}
		p.wg.Add(2)
		go p.pipe(up, c, &p.up)
		go p.pipe(c, up, nil)
	}
}

// bufBytes is the socket buffer size on both sides of the proxy.
const bufBytes = 16 << 10

// pipe copies src to dst in small slices, each sent no earlier than the
// rate allows; it closes both ends when either fails.
func (p *Proxy) pipe(dst, src net.Conn, count *atomic.Int64) {
	defer p.wg.Done()
	defer func() {
		src.Close()
		dst.Close()
		p.track(src, false)
		p.track(dst, false)
	}()
	buf := make([]byte, 4<<10)
	start := time.Now()
	var sent int64
	var rate int64
	for {
		if r := p.rate.Load(); r != rate {
			// A new rate counts from now.
			rate, start, sent = r, time.Now(), 0
		}
		// Slices of about 1/100 s keep the flow smooth.
		n := min(int64(len(buf)), max(rate/100, 1))
		got, err := src.Read(buf[:n])
		if got > 0 {
			sent += int64(got)
			if wait := time.Until(start.Add(time.Duration(sent * int64(time.Second) / rate))); wait > 0 {
				time.Sleep(wait) // pacing, not synchronisation
			}
			if _, werr := dst.Write(buf[:got]); werr != nil {
				return
			}
			if count != nil {
				count.Add(int64(got))
			}
		}
		if err != nil {
			return // io.EOF or a closed connection: both ends go
		}
	}
}
