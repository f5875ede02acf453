package modbus_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
	"github.com/edgepipe/edgepipe/sim/modbussim"
)

// The tests of max_in_flight: a poll with several reads in flight reports
// what the same poll with one request at a time reports, against the
// simulator, pymodbus and small peers written here that answer out of
// order, drop the connection, garble or go silent mid-pipeline.

// pipelinePoints configures, after a connection's keys, a device "d" of
// unit 1 with holding registers 0..holding-1 as uint16 points "h<addr>",
// and when more is set 40 int32 input registers, 300 coils and 20
// discrete inputs: 8 reads of holding registers for 1,000 and 3 more.
func pipelinePoints(conn string, holding int, more bool) string {
	var b strings.Builder
	b.WriteString(conn)
	b.WriteString("\n[[devices]]\nname = \"d\"\nunit_id = 1\n")
	for a := range holding {
		fmt.Fprintf(&b, "[[devices.points]]\nname = \"h%d\"\narea = \"holding\"\naddress = %d\n", a, a)
	}
	if more {
		for a := 0; a < 80; a += 2 {
			fmt.Fprintf(&b, "[[devices.points]]\nname = \"i%d\"\narea = \"input\"\naddress = %d\ntype = \"int32\"\n", a, a)
		}
		for a := range 300 {
			fmt.Fprintf(&b, "[[devices.points]]\nname = \"c%d\"\narea = \"coil\"\naddress = %d\n", a, a)
		}
		for a := range 20 {
			fmt.Fprintf(&b, "[[devices.points]]\nname = \"x%d\"\narea = \"discrete\"\naddress = %d\n", a, a)
		}
	}
	return b.String()
}

// initPlugin starts the input on conf; it is closed at test end.
func initPlugin(t *testing.T, conf string) sdk.Input {
	t.Helper()
	p := factory()
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	if _, err := p.Init(context.Background(), sdktest.Request(conf)); err != nil {
		t.Fatal(err)
	}
	return p.(sdk.Input)
}

// pollNow gathers with the device due whatever its interval.
func pollNow(t *testing.T, in sdk.Input) sdk.Batch {
	t.Helper()
	f, err := in.Gather(sdk.WithReadBack(context.Background(), []string{"d"}))
	if err != nil || len(f.Batches) != 1 {
		t.Fatalf("Gather: %v, %+v", err, f)
	}
	return f.Batches[0]
}

// sameBatch reports the first difference between two polls' points.
func sameBatch(a, b sdk.Batch) error {
	if len(a.Points) != len(b.Points) {
		return fmt.Errorf("%d points, %d points", len(a.Points), len(b.Points))
	}
	for i, p := range a.Points {
		q := b.Points[i]
		if p.Name != q.Name || p.Quality != q.Quality || !p.Value.Equal(q.Value) {
			return fmt.Errorf("%s: %#v (%s), %s: %#v (%s)", p.Name, p.Value, p.Quality, q.Name, q.Value, q.Quality)
		}
	}
	return nil
}

// bad lists the points of a poll that are not good.
func bad(b sdk.Batch) []string {
	var out []string
	for _, p := range b.Points {
		if p.Quality != sdk.QualityGood {
			out = append(out, p.Name)
		}
	}
	return out
}

// TestPipelineMatchesOneInFlight: against the simulator, whose image
// changes between polls, a poll with 8 reads in flight reports exactly
// the points and values a poll with one at a time does, in as many
// requests, over many polls.
func TestPipelineMatchesOneInFlight(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	raw := func(n int, bits bool) []int64 {
		v := make([]int64, n)
		for i := range v {
			if bits {
				v[i] = rng.Int64N(2)
			} else {
				v[i] = rng.Int64N(1 << 16)
			}
		}
		return v
	}
	s := startSim(t, "tcp://127.0.0.1:0", &modbussim.Config{Units: []modbussim.UnitConfig{{ID: 1, Registers: []modbussim.RegisterConfig{
		{Area: "holding", Address: 0, Raw: raw(1000, false)},
		{Area: "input", Address: 0, Raw: raw(80, false)},
		{Area: "coil", Address: 0, Raw: raw(300, true)},
		{Area: "discrete", Address: 0, Raw: raw(20, true)},
	}}}})
	conn := fmt.Sprintf("url = %q\ntimeout = \"5s\"", s.Addr())
	one := initPlugin(t, pipelinePoints(conn, 1000, true))
	eight := initPlugin(t, pipelinePoints(conn+"\nmax_in_flight = 8", 1000, true))
	for round := range 40 {
		// Change a few values of every area between polls.
		for range 20 {
			_ = s.Write(1, modbussim.Holding, rng.IntN(1000), []uint16{uint16(rng.Uint32())})
			_ = s.Write(1, modbussim.Input, rng.IntN(80), []uint16{uint16(rng.Uint32())})
			_ = s.Write(1, modbussim.Coil, rng.IntN(300), []uint16{uint16(rng.IntN(2))})
			_ = s.Write(1, modbussim.Discrete, rng.IntN(20), []uint16{uint16(rng.IntN(2))})
		}
		before := s.Requests(1)
		a := pollNow(t, one)
		mid := s.Requests(1)
		b := pollNow(t, eight)
		if n1, n8 := mid-before, s.Requests(1)-mid; n1 != 11 || n8 != 11 {
			t.Fatalf("round %d: %d requests one at a time, %d pipelined; want 11", round, n1, n8)
		}
		if err := sameBatch(a, b); err != nil {
			t.Fatalf("round %d: one in flight vs 8: %v", round, err)
		}
		if bd := bad(b); len(bd) > 0 {
			t.Fatalf("round %d: bad points %v", round, bd)
		}
		// The values are the simulator's, not merely the same twice.
		want, _ := s.Read(1, modbussim.Holding, 0, 1000)
		for i, p := range b.Points[:1000] {
			if p.Value.UintValue() != uint64(want[i]) {
				t.Fatalf("round %d: %s = %v, simulator holds %d", round, p.Name, p.Value.UintValue(), want[i])
			}
		}
	}
}

// TestPipelineAgainstPymodbus: the same comparison against pymodbus, an
// independent implementation of the server side of pipelining.
func TestPipelineAgainstPymodbus(t *testing.T) {
	img := make([]byte, 2000)
	for i := range img {
		img[i] = byte(i*31 + i/7)
	}
	url := startPymodbus(t, false, "0="+hex.EncodeToString(img))
	conn := fmt.Sprintf("url = %q\ntimeout = \"5s\"", url)
	one := initPlugin(t, pipelinePoints(conn, 1000, false))
	eight := initPlugin(t, pipelinePoints(conn+"\nmax_in_flight = 8", 1000, false))
	for round := range 20 {
		a, b := pollNow(t, one), pollNow(t, eight)
		if err := sameBatch(a, b); err != nil {
			t.Fatalf("round %d: one in flight vs 8: %v", round, err)
		}
		for i, p := range b.Points {
			if p.Quality != sdk.QualityGood || p.Value.UintValue() != uint64(binary.BigEndian.Uint16(img[2*i:])) {
				t.Fatalf("round %d: %s = %#v (%s), pymodbus serves %d", round, p.Name, p.Value, p.Quality, binary.BigEndian.Uint16(img[2*i:]))
			}
		}
	}
}

// peerValue is what testPeer serves in holding register a.
func peerValue(a int) uint16 { return uint16(a*7 + 1) }

// testPeer is a Modbus TCP slave for holding registers (FC3, peerValue)
// that takes the requests that have come in together and answers them as
// its answer hook says, so that a test can make it answer out of order,
// answer with exceptions, garble, drop or go silent at a given point.
type testPeer struct {
	l     net.Listener
	conns atomic.Int32
	// reversed counts groups of requests answered last first.
	reversed atomic.Int32
	// groups are the sizes of the groups of requests that came together,
	// per connection (1-based).
	mu     sync.Mutex
	groups map[int][]int
	// answer gives the frames to send for the request of the n-th answer
	// (0-based) on connection conn (1-based) as frames, with stop to close
	// the connection after them and silent to send nothing from then on.
	answer  func(conn, n int, req mbapRequest) (frames [][]byte, stop, silent bool)
	reverse bool
	wg      sync.WaitGroup
}

// mbapRequest is a read request as testPeer parsed it.
type mbapRequest struct {
	txn        uint16
	unit, fc   byte
	addr, qty  uint16
	seenBefore bool // a request for the same address came earlier on this connection
}

// registersAnswer is the normal answer to a read of holding registers.
func registersAnswer(r mbapRequest) []byte {
	pdu := []byte{r.fc, byte(2 * r.qty)}
	for a := range int(r.qty) {
		pdu = binary.BigEndian.AppendUint16(pdu, peerValue(int(r.addr)+a))
	}
	return mbapFrame(r.txn, 0, r.unit, pdu)
}

func mbapFrame(txn, proto uint16, unit byte, pdu []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, txn)
	b = binary.BigEndian.AppendUint16(b, proto)
	b = binary.BigEndian.AppendUint16(b, uint16(1+len(pdu)))
	return append(append(b, unit), pdu...)
}

func startPeer(t *testing.T, p *testPeer) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.l = l
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n := int(p.conns.Add(1))
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer c.Close()
				p.serve(c, n)
			}()
		}
	}()
	t.Cleanup(func() { l.Close(); p.wg.Wait() })
	return "tcp://" + l.Addr().String()
}

// serve answers one connection. The requests of one write of the client
// arrive together: each read takes what has come and answers all the
// whole requests in it, last first when reverse is set.
func (p *testPeer) serve(c net.Conn, conn int) {
	r := bufio.NewReaderSize(c, 4096)
	seen := map[uint16]bool{}
	answered, silent := 0, false
	for {
		var reqs []mbapRequest
		for len(reqs) == 0 || r.Buffered() >= 7 {
			var hdr [12]byte
			if _, err := io.ReadFull(r, hdr[:]); err != nil {
				return
			}
			q := mbapRequest{txn: binary.BigEndian.Uint16(hdr[0:]), unit: hdr[6], fc: hdr[7],
				addr: binary.BigEndian.Uint16(hdr[8:]), qty: binary.BigEndian.Uint16(hdr[10:])}
			q.seenBefore = seen[q.addr]
			seen[q.addr] = true
			reqs = append(reqs, q)
		}
		p.mu.Lock()
		if p.groups == nil {
			p.groups = map[int][]int{}
		}
		p.groups[conn] = append(p.groups[conn], len(reqs))
		p.mu.Unlock()
		if silent {
			continue
		}
		if p.reverse && len(reqs) > 1 {
			slices.Reverse(reqs)
			p.reversed.Add(1)
		}
		var out []byte
		for _, q := range reqs {
			frames, stop, quiet := p.answer(conn, answered, q)
			answered++
			if quiet {
				silent = true
				break
			}
			for _, f := range frames {
				out = append(out, f...)
			}
			if stop {
				_, _ = c.Write(out)
				return
			}
		}
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// TestPipelineOutOfOrder: a peer that answers each pipeline last request
// first, sends a frame of no outstanding transaction and one of another
// protocol id before its answers, refuses one read with an exception
// (server device failure: those points bad, the connection kept) and
// answers another "busy" the first time (tried again, good). Pipelined,
// every poll reports what one request at a time reports, on one
// connection.
func TestPipelineOutOfOrder(t *testing.T) {
	answer := func(_, _ int, q mbapRequest) ([][]byte, bool, bool) {
		stray := mbapFrame(q.txn+0x8000, 0, 1, []byte{3, 2, 0xDE, 0xAD})
		other := mbapFrame(q.txn, 1, 1, []byte{3, 2, 0xDE, 0xAD})
		switch {
		case q.addr == 250:
			return [][]byte{stray, mbapFrame(q.txn, 0, q.unit, []byte{q.fc | 0x80, 4})}, false, false
		case q.addr == 500 && !q.seenBefore:
			return [][]byte{other, mbapFrame(q.txn, 0, q.unit, []byte{q.fc | 0x80, 6})}, false, false
		}
		return [][]byte{stray, other, registersAnswer(q)}, false, false
	}
	var polls [2][]sdk.Batch
	for i, inFlight := range []int{1, 8} {
		peer := &testPeer{answer: answer, reverse: true}
		url := startPeer(t, peer)
		in := initPlugin(t, pipelinePoints(fmt.Sprintf("url = %q\ntimeout = \"5s\"\nmax_in_flight = %d", url, inFlight), 1000, false))
		for range 10 {
			polls[i] = append(polls[i], pollNow(t, in))
		}
		if n := peer.conns.Load(); n != 1 {
			t.Errorf("max_in_flight %d: %d connections, want 1 (exceptions keep the connection)", inFlight, n)
		}
		if inFlight > 1 && peer.reversed.Load() < 10 {
			t.Errorf("the peer answered only %d pipelines out of order", peer.reversed.Load())
		}
	}
	for n := range polls[0] {
		if err := sameBatch(polls[0][n], polls[1][n]); err != nil {
			t.Fatalf("poll %d: one in flight vs 8: %v", n, err)
		}
		for a, p := range polls[1][n].Points {
			refused := a >= 250 && a < 375
			if refused != (p.Quality == sdk.QualityBad) || !refused && p.Value.UintValue() != uint64(peerValue(a)) {
				t.Fatalf("poll %d: %s = %#v (%s)", n, p.Name, p.Value, p.Quality)
			}
		}
	}
}

// TestPipelineBrokenMidway: a peer that, on its first connection, closes
// it, garbles an answer (a byte count that does not fit the read) or goes
// silent after three answers. With retries = 0 the read concerned has its
// points bad (a silent peer: it and the rest of the poll, the device
// backed off), the connection is dropped and opened again, and the next
// polls are all good: as with one request in flight, point for point.
func TestPipelineBrokenMidway(t *testing.T) {
	for _, mode := range []string{"close", "garble", "silent"} {
		t.Run(mode, func(t *testing.T) {
			var first [2]sdk.Batch
			var counters [2]map[string]uint64
			for i, inFlight := range []int{1, 8} {
				peer := &testPeer{answer: func(conn, n int, q mbapRequest) ([][]byte, bool, bool) {
					if conn > 1 || n < 3 {
						return [][]byte{registersAnswer(q)}, false, false
					}
					switch mode {
					case "close":
						return nil, true, false
					case "garble":
						f := registersAnswer(q)
						f[8]-- // the byte count
						return [][]byte{f}, false, false
					}
					return nil, false, true
				}}
				url := startPeer(t, peer)
				in := initPlugin(t, pipelinePoints(fmt.Sprintf("url = %q\ninterval = \"50ms\"\ntimeout = \"1s\"\nretries = 0\nmax_in_flight = %d", url, inFlight), 1000, false))
				first[i] = pollNow(t, in)
				h, err := in.(sdk.HealthReporter).Health(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				counters[i] = h.Counters
				// Then good again: at once, or after the device's backoff.
				deadline := time.Now().Add(30 * time.Second)
				for len(bad(pollNow(t, in))) > 0 {
					if time.Now().After(deadline) {
						t.Fatalf("max_in_flight %d: points still bad after 30 s", inFlight)
					}
					time.Sleep(10 * time.Millisecond) // the backoff's pace, not a synchronisation
				}
				if n := peer.conns.Load(); n != 2 {
					t.Errorf("max_in_flight %d: %d connections, want 2", inFlight, n)
				}
				peer.mu.Lock()
				g := peer.groups[2]
				peer.mu.Unlock()
				// A silent slave is probed with one read, then read in full.
				if inFlight > 1 && mode == "silent" && (len(g) < 2 || g[0] != 1 || g[1] != 7) {
					t.Errorf("second connection: requests came in groups of %v, want 1 (the probe), 7, ...", g)
				} else if inFlight > 1 && mode != "silent" && (len(g) < 1 || g[0] != 4) {
					t.Errorf("second connection: requests came in groups of %v, want the 4 reads after the failed one first", g)
				}
			}
			if err := sameBatch(first[0], first[1]); err != nil {
				t.Fatalf("first poll, one in flight vs 8: %v", err)
			}
			t.Logf("counters after the first poll: %v", counters[1])
			// Requests, errors, timeouts and connections counted alike.
			if fmt.Sprint(counters[0]) != fmt.Sprint(counters[1]) {
				t.Errorf("counters after the first poll: one in flight %v, 8 %v", counters[0], counters[1])
			}
			// Reads of 125 registers: the fourth, or from it on.
			last := 500
			if mode == "silent" {
				last = 1000
			}
			for a, p := range first[1].Points {
				want := a < 375 || a >= last
				if want != (p.Quality == sdk.QualityGood) || want && p.Value.UintValue() != uint64(peerValue(a)) {
					t.Fatalf("first poll: %s = %#v (%s)", p.Name, p.Value, p.Quality)
				}
			}
		})
	}
}

// TestMaxInFlightConfig: the key's range, and where it is refused: RTU
// framings have no transaction id, the TLS client sends one request at a
// time, and paced requests cannot go together. Each error names the key
// and its line.
func TestMaxInFlightConfig(t *testing.T) {
	const points = "\n[[devices]]\nname = \"d\"\n[[devices.points]]\nname = \"p\"\narea = \"holding\"\naddress = 0\n"
	cases := []struct{ conn, err string }{
		{"url = \"tcp://127.0.0.1:502\"\nmax_in_flight = 8", ""},
		{"url = \"tcp://127.0.0.1:502\"\nmax_in_flight = 16", ""},
		{"url = \"rtu:///dev/ttyUSB0\"\nmax_in_flight = 1", ""},
		{"url = \"rtuovertcp://127.0.0.1:502\"\nmax_in_flight = 1", ""},
		{"url = \"tcp://127.0.0.1:502\"\nmax_in_flight = 0", "test.toml:2: max_in_flight: 0: want 1..16 requests"},
		{"url = \"tcp://127.0.0.1:502\"\nmax_in_flight = 17", "test.toml:2: max_in_flight: 17: want 1..16 requests"},
		{"url = \"rtu:///dev/ttyUSB0\"\nmax_in_flight = 2", "test.toml:2: max_in_flight: 2: rtu:// sends one request at a time: RTU frames carry no transaction id"},
		{"url = \"rtuovertcp://127.0.0.1:502\"\n\nmax_in_flight = 8", "test.toml:3: max_in_flight: 8: rtuovertcp:// sends one request at a time: RTU frames carry no transaction id"},
		{"url = \"tcp://127.0.0.1:502\"\npause_between_requests = \"10ms\"\nmax_in_flight = 4", "test.toml:3: max_in_flight: 4: pause_between_requests is set"},
	}
	for _, c := range cases {
		_, err := factory().Init(context.Background(), sdktest.Request(c.conn+points))
		ces := sdk.AsConfigErrors(err)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.conn, err)
		case c.err != "" && (len(ces) != 1 || !strings.Contains(ces[0].Error(), c.err)):
			t.Errorf("%q: %v, want the one error %q", c.conn, err, c.err)
		}
	}
	// Over TLS, beside the errors of its missing certificates.
	_, err := factory().Init(context.Background(), sdktest.Request("url = \"tcp+tls://127.0.0.1:802\"\nmax_in_flight = 2"+points))
	if err == nil || !strings.Contains(err.Error(), "test.toml:2: max_in_flight: 2: not supported over tcp+tls://") {
		t.Errorf("tcp+tls: %v", err)
	}
	if !errors.As(err, new(sdk.ConfigErrors)) {
		t.Errorf("tcp+tls: %T is no configuration error", err)
	}
}

// TestTypesOverTCPPipelined: every type and byte order over Modbus TCP
// with reads in flight together (five reads, one pipeline).
func TestTypesOverTCPPipelined(t *testing.T) { checkTypes(t, "tcp://127.0.0.1:0", "max_in_flight = 8") }

// TestPipelineRetriedAfterDrop: with retries, the read a dropped
// connection left unanswered is tried again on the new connection with
// the reads after it, and the poll is all good, as with one in flight.
func TestPipelineRetriedAfterDrop(t *testing.T) {
	for _, inFlight := range []int{1, 8} {
		peer := &testPeer{answer: func(conn, n int, q mbapRequest) ([][]byte, bool, bool) {
			if conn == 1 && n == 3 {
				return nil, true, false // closed instead of the fourth answer
			}
			return [][]byte{registersAnswer(q)}, false, false
		}}
		url := startPeer(t, peer)
		in := initPlugin(t, pipelinePoints(fmt.Sprintf("url = %q\ntimeout = \"5s\"\nretries = 1\nmax_in_flight = %d", url, inFlight), 1000, false))
		b := pollNow(t, in)
		for a, p := range b.Points {
			if p.Quality != sdk.QualityGood || p.Value.UintValue() != uint64(peerValue(a)) {
				t.Fatalf("max_in_flight %d: %s = %#v (%s)", inFlight, p.Name, p.Value, p.Quality)
			}
		}
		peer.mu.Lock()
		g := peer.groups[2]
		peer.mu.Unlock()
		if n := peer.conns.Load(); n != 2 || inFlight > 1 && (len(g) != 1 || g[0] != 5) {
			t.Errorf("max_in_flight %d: %d connections, the second's requests in groups of %v, want 2 and [5]", inFlight, n, g)
		}
	}
}
