package modbussim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/creack/pty"
	"github.com/simonvetter/modbus"
	"go.bug.st/serial"
	"golang.org/x/sys/unix"
)

// unit is one slave's register image.
type unit struct {
	id      uint8
	size    int
	regs    [4][]uint16 // per Area; bit areas hold 0/1
	gens    []*entry    // generators, computed at read time
	offline bool
}

// Server is a running simulator: one register image per unit id, served
// on any number of transports at once (Listen), all sharing the same data.
type Server struct {
	mu    sync.Mutex
	units map[uint8]*unit
	start time.Time

	requests atomic.Uint64
	perUnit  sync.Map // uint8 -> *atomic.Uint64

	lmu     sync.Mutex
	addrs   []string
	closers []func() error
	wg      sync.WaitGroup
	closed  bool
}

// New builds the register images of cfg; nothing is served until Listen.
func New(cfg *Config) (*Server, error) {
	if cfg == nil {
		cfg = DefaultConfig()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{units: map[uint8]*unit{}, start: time.Now()}
	for _, uc := range cfg.Units {
		u := &unit{id: uc.ID, size: uc.size()}
		for a := range u.regs {
			u.regs[a] = make([]uint16, u.size)
		}
		for j := range uc.Registers {
			e, err := compile(&uc.Registers[j], u.size)
			if err != nil {
				return nil, err // Validate saw it already
			}
			e.seed = uint64(uc.ID)<<32 | uint64(j)
			if e.gen != "" {
				u.gens = append(u.gens, e)
				continue
			}
			u.place(e, e.raw)
		}
		s.units[uc.ID] = u
	}
	return s, nil
}

// place writes an entry's content into the image (a bool in a register
// sets or clears its bit).
func (u *unit) place(e *entry, content []uint16) {
	dst := u.regs[e.area]
	if e.typ == "bool" && !e.area.isBits() {
		if content[0] != 0 {
			dst[e.addr] |= 1 << e.bit
		} else {
			dst[e.addr] &^= 1 << e.bit
		}
		return
	}
	copy(dst[e.addr:], content)
}

// Start builds a simulator from cfg (DefaultConfig when nil) and serves it
// on listenURL (see Listen). It stops when ctx is cancelled or Close is
// called.
func Start(ctx context.Context, listenURL string, cfg *Config) (*Server, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.Listen(listenURL); err != nil {
		return nil, err
	}
	go func() {
		<-ctx.Done()
		_ = s.Close()
	}()
	return s, nil
}

// Listen serves the image on one more transport:
//
//	tcp://HOST:PORT         Modbus TCP (port 0 picks a free port; see Addrs)
//	rtuovertcp://HOST:PORT  RTU frames over TCP
//	rtu:///dev/ttyUSB0      RTU slave on a serial port at DefaultLine (9600 8N1),
//	                        as inputs.modbus writes it (ListenRTU sets the line;
//	                        ?baud_rate=...&parity=... is the deprecated form)
//	rtu://pty               RTU slave on a new pseudo-terminal; Addrs gives
//	                        the rtu:///dev/pts/N URL a client opens
func (s *Server) Listen(listenURL string) error {
	scheme, rest, ok := strings.Cut(listenURL, "://")
	if !ok {
		return fmt.Errorf("listen URL %q: want tcp://HOST:PORT, rtuovertcp://HOST:PORT, rtu:///dev/PORT or rtu://pty", listenURL)
	}
	switch scheme {
	case "tcp":
		return s.listenTCP(rest)
	case "rtuovertcp":
		return s.listenRTUOverTCP(rest)
	case "rtu":
		if rest == "pty" {
			return s.listenPTY()
		}
		return s.listenSerial(rest)
	}
	return fmt.Errorf("listen URL %q: unknown scheme %q (want tcp, rtuovertcp or rtu)", listenURL, scheme)
}

// Addrs lists the URLs a client uses to reach the transports served, in
// the order Listen was called, e.g. "tcp://127.0.0.1:40123" or
// "rtu:///dev/pts/7".
func (s *Server) Addrs() []string {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	return append([]string(nil), s.addrs...)
}

// Addr is the first of Addrs, or "".
func (s *Server) Addr() string {
	a := s.Addrs()
	if len(a) == 0 {
		return ""
	}
	return a[0]
}

func (s *Server) addTransport(addr string, closer func() error) {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	s.addrs = append(s.addrs, addr)
	s.closers = append(s.closers, closer)
}

// Close stops every transport and waits for their goroutines.
func (s *Server) Close() error {
	s.lmu.Lock()
	if s.closed {
		s.lmu.Unlock()
		return nil
	}
	s.closed = true
	closers := s.closers
	s.lmu.Unlock()
	var errs []error
	for _, c := range closers {
		if err := c(); err != nil {
			errs = append(errs, err)
		}
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

func (s *Server) listenTCP(hostport string) error {
	return s.listenStream("tcp", hostport, s.ServeTCP)
}

func (s *Server) listenRTUOverTCP(hostport string) error {
	return s.listenStream("rtuovertcp", hostport, s.ServeRTU)
}

// listenStream accepts TCP connections on hostport and serves each with
// serve until the client hangs up or the server closes.
func (s *Server) listenStream(scheme, hostport string, serve func(io.ReadWriter) error) error {
	l, err := net.Listen("tcp", hostport)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				_ = serve(c)
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	s.addTransport(scheme+"://"+l.Addr().String(), func() error {
		err := l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		return err
	})
	return nil
}

func (s *Server) listenPTY() error {
	master, slave, err := pty.Open()
	if err != nil {
		return fmt.Errorf("pseudo-terminal: %w", err)
	}
	// Raw mode on the terminal: no echo, no line buffering, no CR/LF
	// translation, or binary frames would be mangled before any client
	// has set its own mode.
	if err := makeRaw(int(slave.Fd())); err != nil {
		master.Close()
		slave.Close()
		return fmt.Errorf("pseudo-terminal %s raw mode: %w", slave.Name(), err)
	}
	// The simulator keeps the client side open too: without any open slave
	// descriptor, reads on the master fail (EIO) between two clients.
	s.serveStream(master)
	s.addTransport("rtu://"+slave.Name(), func() error {
		err := master.Close()
		slave.Close()
		return err
	})
	return nil
}

func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// Line is the serial line of an RTU slave on a port. The names, values and
// defaults are those of inputs.modbus (baud_rate, data_bits, parity,
// stop_bits; 9600 8N1), so that a simulator and an input left at their
// defaults talk to each other.
type Line struct {
	BaudRate int
	DataBits int
	Parity   string // none | even | odd (n, e, o)
	StopBits int
}

// DefaultLine is inputs.modbus's default line: 9600 baud, 8N1.
var DefaultLine = Line{BaudRate: 9600, DataBits: 8, Parity: "none", StopBits: 1}

// mode checks the line and converts it for the serial library.
func (l Line) mode() (*serial.Mode, error) {
	m := &serial.Mode{BaudRate: l.BaudRate, DataBits: l.DataBits, StopBits: serial.OneStopBit}
	switch strings.ToLower(l.Parity) {
	case "", "none", "n":
		m.Parity = serial.NoParity
	case "even", "e":
		m.Parity = serial.EvenParity
	case "odd", "o":
		m.Parity = serial.OddParity
	default:
		return nil, fmt.Errorf("parity %q: want none, even or odd", l.Parity)
	}
	switch {
	case l.BaudRate <= 0:
		return nil, fmt.Errorf("baud rate %d: want a positive number", l.BaudRate)
	case l.DataBits < 5 || l.DataBits > 8:
		return nil, fmt.Errorf("data bits %d: want 5..8", l.DataBits)
	case l.StopBits == 2:
		m.StopBits = serial.TwoStopBits
	case l.StopBits != 1:
		return nil, fmt.Errorf("stop bits %d: want 1 or 2", l.StopBits)
	}
	return m, nil
}

// ListenRTU serves an RTU slave on the serial port path (the path of an
// inputs.modbus url = "rtu://PATH") with the given line settings.
//
// The port is go.bug.st/serial's, as for inputs.serial and inputs.camera:
// its Close ends a blocked Read cleanly (goburrow/serial, used before,
// raced a Read against Close and returned n = -1 after it).
func (s *Server) ListenRTU(path string, line Line) error {
	m, err := line.mode()
	if err != nil {
		return fmt.Errorf("serial port %s: %w", path, err)
	}
	port, err := serial.Open(path, m)
	if err != nil {
		return fmt.Errorf("serial port %s: %w", path, err)
	}
	s.serveStream(port)
	s.addTransport("rtu://"+path, port.Close)
	return nil
}

// DeprecatedRTUOptions reports whether a listen URL carries the serial
// line in its query (rtu:///dev/ttyS0?baud_rate=19200), the simulator's
// former form, still accepted; inputs.modbus takes the line from its own
// keys, and `edgepipe sim modbus` from --baud-rate, --data-bits, --parity
// and --stop-bits.
func DeprecatedRTUOptions(listenURL string) bool {
	rest, ok := strings.CutPrefix(listenURL, "rtu://")
	return ok && strings.Contains(rest, "?")
}

// listenSerial serves rtu://PATH, with the deprecated ?baud_rate=...
// options over DefaultLine.
func (s *Server) listenSerial(rest string) error {
	path, query, _ := strings.Cut(rest, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return fmt.Errorf("serial options %q: %w", query, err)
	}
	line := DefaultLine
	for k, vs := range q {
		v := vs[0]
		switch k {
		case "baud_rate", "data_bits", "stop_bits":
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("serial option %s=%q: want a number", k, v)
			}
			switch k {
			case "baud_rate":
				line.BaudRate = n
			case "data_bits":
				line.DataBits = n
			default:
				line.StopBits = n
			}
		case "parity":
			line.Parity = v
		default:
			return fmt.Errorf("serial option %q: want baud_rate, data_bits, parity or stop_bits", k)
		}
	}
	return s.ListenRTU(path, line)
}

func (s *Server) serveStream(rw io.ReadWriter) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.ServeRTU(rw)
	}()
}

// SetOffline makes a unit stop answering (true) or answer again (false).
// Over RTU an offline unit is silent, as a dead slave on a bus is; over
// Modbus TCP it answers exception 0x0B (gateway target device failed to
// respond), as a TCP-to-serial gateway does for a dead slave behind it.
func (s *Server) SetOffline(unitID uint8, offline bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.units[unitID]; ok {
		u.offline = offline
	}
}

// Requests counts the requests served (answered or not) since start,
// for all units (unitID < 0) or one.
func (s *Server) Requests(unitID int) uint64 {
	if unitID < 0 {
		return s.requests.Load()
	}
	if c, ok := s.perUnit.Load(uint8(unitID)); ok {
		return c.(*atomic.Uint64).Load()
	}
	return 0
}

func (s *Server) count(unitID uint8) {
	s.requests.Add(1)
	c, ok := s.perUnit.Load(unitID)
	if !ok {
		c, _ = s.perUnit.LoadOrStore(unitID, new(atomic.Uint64))
	}
	c.(*atomic.Uint64).Add(1)
}

// Read returns n registers (or bits as 0/1) of a unit's area as a client
// would read them now, generators included.
func (s *Server) Read(unitID uint8, area Area, addr, n int) ([]uint16, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.units[unitID]
	if !ok {
		return nil, fmt.Errorf("no unit %d", unitID)
	}
	return u.read(area, addr, n, time.Since(s.start))
}

// Write sets registers (or bits as 0/1) as a client write would; a
// generator covering them stops, keeping the written value.
func (s *Server) Write(unitID uint8, area Area, addr int, vals []uint16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.units[unitID]
	if !ok {
		return fmt.Errorf("no unit %d", unitID)
	}
	u.freeze(area, addr, len(vals), time.Since(s.start))
	return u.write(area, addr, vals)
}

func (u *unit) read(area Area, addr, n int, t time.Duration) ([]uint16, error) {
	if area < Coil || area > Input {
		return nil, fmt.Errorf("unknown area %d", area)
	}
	if addr < 0 || n < 0 || addr+n > u.size {
		return nil, modbus.ErrIllegalDataAddress
	}
	out := make([]uint16, n)
	copy(out, u.regs[area][addr:addr+n])
	for _, g := range u.gens {
		if g.area != area || g.addr >= addr+n || g.addr+g.n <= addr {
			continue
		}
		content := g.generated(t)
		if g.typ == "bool" && !area.isBits() {
			if content[0] != 0 {
				out[g.addr-addr] |= 1 << g.bit
			} else {
				out[g.addr-addr] &^= 1 << g.bit
			}
			continue
		}
		for i, v := range content {
			if j := g.addr + i - addr; j >= 0 && j < n {
				out[j] = v
			}
		}
	}
	return out, nil
}

func (u *unit) write(area Area, addr int, vals []uint16) error {
	if addr < 0 || addr+len(vals) > u.size {
		return modbus.ErrIllegalDataAddress
	}
	end := addr + len(vals)
	kept := u.gens[:0]
	for _, g := range u.gens {
		if g.area == area && g.addr < end && g.addr+g.n > addr {
			continue
		}
		kept = append(kept, g)
	}
	u.gens = kept
	copy(u.regs[area][addr:], vals)
	return nil
}

// freeze stores the current content of the generators overlapping a range
// into the static image, so that the part of a generated value a write does
// not cover keeps its value instead of falling back to zero; called before
// write removes those generators.
func (u *unit) freeze(area Area, addr, n int, t time.Duration) {
	for _, g := range u.gens {
		if g.area == area && g.addr < addr+n && g.addr+g.n > addr {
			u.place(g, g.generated(t))
		}
	}
}

// handler runs requests against the units for both framings, Modbus TCP
// (tcp.go) and RTU (rtu.go).
type handler struct{ s *Server }

// lookup finds the unit a request addresses. Over Modbus TCP, unit ids 0
// and 255 mean "the device itself" to many clients; with a single unit
// configured they reach it.
func (h *handler) lookup(id uint8) (*unit, error) {
	u, ok := h.s.units[id]
	if !ok && (id == 0 || id == 255) && len(h.s.units) == 1 {
		for _, only := range h.s.units {
			u, ok = only, true
		}
	}
	if !ok {
		return nil, modbus.ErrGWPathUnavailable
	}
	if u.offline {
		return nil, modbus.ErrGWTargetFailedToRespond
	}
	return u, nil
}

func (h *handler) bits(id uint8, area Area, addr, qty uint16, write bool, args []bool) ([]bool, error) {
	h.s.count(id)
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	u, err := h.lookup(id)
	if err != nil {
		return nil, err
	}
	t := time.Since(h.s.start)
	if write {
		vals := make([]uint16, len(args))
		for i, b := range args {
			if b {
				vals[i] = 1
			}
		}
		u.freeze(area, int(addr), len(vals), t)
		return nil, u.write(area, int(addr), vals)
	}
	regs, err := u.read(area, int(addr), int(qty), t)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(regs))
	for i, r := range regs {
		out[i] = r != 0
	}
	return out, nil
}

func (h *handler) registers(id uint8, area Area, addr, qty uint16, write bool, args []uint16) ([]uint16, error) {
	h.s.count(id)
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	u, err := h.lookup(id)
	if err != nil {
		return nil, err
	}
	t := time.Since(h.s.start)
	if write {
		u.freeze(area, int(addr), len(args), t)
		return nil, u.write(area, int(addr), args)
	}
	return u.read(area, int(addr), int(qty), t)
}
