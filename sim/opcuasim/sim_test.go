package opcuasim

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
)

func freeListen(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "opc.tcp://127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func read(t *testing.T, ctx context.Context, c *opcua.Client, node string) any {
	t.Helper()
	nid := ua.MustParseNodeID(node)
	res, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: nid, AttributeID: ua.AttributeIDValue}}})
	if err != nil {
		t.Fatalf("read %s: %v", node, err)
	}
	if res.Results[0].Status != ua.StatusOK {
		t.Fatalf("read %s: %v", node, res.Results[0].Status)
	}
	return res.Results[0].Value.Value()
}

// TestSimReadWrite reads every node with gopcua's client, waits for the
// counter to change, writes the setpoint and reads it back, and checks a
// read-only node refuses a write.
func TestSimReadWrite(t *testing.T) {
	s, err := Start(freeListen(t), 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := opcua.NewClient(s.Endpoint(), opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AuthAnonymous())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ns := s.ns.ID()
	id := func(name string) string { return "ns=" + strconv.Itoa(int(ns)) + ";s=" + name }
	if v, ok := read(t, ctx, c, id("Temperature")).(float64); !ok || v < 18 || v > 25 {
		t.Errorf("temperature %v", v)
	}
	if _, ok := read(t, ctx, c, id("Running")).(bool); !ok {
		t.Error("running is not a bool")
	}
	if v, ok := read(t, ctx, c, id("Status")).(string); !ok || (v != "running" && v != "idle") {
		t.Errorf("status %q", v)
	}
	first, ok := read(t, ctx, c, id("Counter")).(uint32)
	if !ok {
		t.Fatal("counter is not a uint32")
	}
	for {
		if v := read(t, ctx, c, id("Counter")).(uint32); v != first {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("counter stayed at %d", first)
		case <-time.After(20 * time.Millisecond): // poll interval, not synchronisation
		}
	}

	write := func(node string, v any) ua.StatusCode {
		res, err := c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
			NodeID: ua.MustParseNodeID(node), AttributeID: ua.AttributeIDValue,
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(v)},
		}}})
		if err != nil {
			t.Fatalf("write %s: %v", node, err)
		}
		return res.Results[0]
	}
	if st := write(id("Setpoint"), int32(55)); st != ua.StatusOK {
		t.Fatalf("setpoint write: %v", st)
	}
	if v := read(t, ctx, c, id("Setpoint")); v != int32(55) {
		t.Errorf("setpoint read back %#v", v)
	}
	if st := write(id("Counter"), uint32(7)); st == ua.StatusOK {
		t.Error("counter accepted a write")
	}
}

// syncBuffer is a bytes.Buffer safe for the command's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestCommand runs `sim opcua`, waits for its endpoint and node ids and
// stops it by cancelling its context (what Ctrl-C does).
func TestCommand(t *testing.T) {
	listen := freeListen(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- Command(ctx, []string{"--listen", listen}, &out) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "s=Setpoint") {
		if time.Now().After(deadline) {
			t.Fatalf("no node list: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	for _, want := range []string{listen, "s=Temperature", "s=Counter", "s=Running", "s=Status", "read/write"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("command did not stop")
	}
}

func TestParseListen(t *testing.T) {
	for _, bad := range []string{"tcp://127.0.0.1:4840", "opc.tcp://127.0.0.1", "opc.tcp://h:-1", "opc.tcp://h:65536", "opc.tcp://h:x"} {
		if _, _, err := parseListen(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if h, p, err := parseListen(DefaultListen); err != nil || h != "127.0.0.1" || p != 4840 {
		t.Errorf("default: %q %d %v", h, p, err)
	}
}

// TestStartOnAFreePort: port 0 serves on a free port, which Endpoint
// names (the demo starts the simulator so, beside its other services).
func TestStartOnAFreePort(t *testing.T) {
	s, err := Start("opc.tcp://127.0.0.1:0", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if strings.HasSuffix(s.Endpoint(), ":0") {
		t.Fatalf("endpoint %s", s.Endpoint())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := opcua.NewClient(s.Endpoint(), opcua.SecurityMode(ua.MessageSecurityModeNone), opcua.AuthAnonymous())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if v, ok := read(t, ctx, c, "ns="+strconv.Itoa(int(s.ns.ID()))+";s=Temperature").(float64); !ok || v < 18 || v > 25 {
		t.Errorf("temperature %v", v)
	}
}
