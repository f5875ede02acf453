package modbussim

import (
	"bufio"
	"context"
	"io"
	"log"
	"math"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/simonvetter/modbus"
)

const testConfig = `
[[units]]
id = 1
size = 100
[[units.registers]]
area = "holding"
address = 0
type = "float32"
byte_order = "CDAB"
value = 3.5
[[units.registers]]
area = "holding"
address = 2
raw = [0x1234, 0xABCD]
[[units.registers]]
area = "holding"
address = 4
type = "string"
length = 3
value = "abc"
[[units.registers]]
area = "holding"
address = 7
type = "bool"
bit = 3
value = true
[[units.registers]]
area = "holding"
address = 8
type = "uint16"
generator = "counter"
period = "10ms"
[[units.registers]]
area = "coil"
address = 5
type = "bool"
value = true

[[units]]
id = 2
[[units.registers]]
area = "input"
address = 10
type = "int16"
value = -2
`

// quietLogger drops the client library's chatter.
var quietLogger = log.New(io.Discard, "", 0)

func startTest(t *testing.T, url string) *Server {
	t.Helper()
	cfg, err := ParseConfig([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, url, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); s.Close() })
	return s
}

func client(t *testing.T, url string) *modbus.ModbusClient {
	t.Helper()
	c, err := modbus.NewClient(&modbus.ClientConfiguration{URL: url, Timeout: 300 * time.Millisecond, Speed: 115200, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exercise reads and writes through a real client and checks the image.
func exercise(t *testing.T, s *Server, c *modbus.ModbusClient) {
	t.Helper()
	regs, err := c.ReadRegisters(0, 8, modbus.HOLDING_REGISTER)
	if err != nil {
		t.Fatal(err)
	}
	f := math.Float32frombits(uint32(regs[1])<<16 | uint32(regs[0]))
	if f != 3.5 || regs[2] != 0x1234 || regs[3] != 0xABCD || regs[4] != 'a'<<8|'b' || regs[5] != 'c'<<8 || regs[6] != 0 || regs[7] != 8 {
		t.Fatalf("holding image: %04x (float %v)", regs, f)
	}
	// The counter moves.
	first, _ := c.ReadRegister(8, modbus.HOLDING_REGISTER)
	deadline := time.Now().Add(2 * time.Second)
	for {
		v, err := c.ReadRegister(8, modbus.HOLDING_REGISTER)
		if err != nil {
			t.Fatal(err)
		}
		if v != first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("counter does not count")
		}
	}
	// Writes are kept, and stop the generator they touch.
	if err := c.WriteRegisters(8, []uint16{500, 501}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond) // three counter periods: it must not move any more
	if v, _ := s.Read(1, Holding, 8, 2); v[0] != 500 || v[1] != 501 {
		t.Fatalf("written registers not kept: %v", v)
	}
	if err := c.WriteCoil(6, true); err != nil {
		t.Fatal(err)
	}
	bits, err := c.ReadCoils(4, 4)
	if err != nil || !(!bits[0] && bits[1] && bits[2] && !bits[3]) {
		t.Fatalf("coils %v %v", bits, err)
	}
	// Past the unit's size: exception 2.
	if _, err := c.ReadRegisters(99, 2, modbus.HOLDING_REGISTER); err != modbus.ErrIllegalDataAddress {
		t.Fatalf("read past size: %v", err)
	}
	c.SetUnitId(2)
	v, err := c.ReadRegister(10, modbus.INPUT_REGISTER)
	if err != nil || int16(v) != -2 {
		t.Fatalf("unit 2: %v %v", int16(v), err)
	}
	c.SetUnitId(1)
}

func TestTCP(t *testing.T) {
	s := startTest(t, "tcp://127.0.0.1:0")
	if !strings.HasPrefix(s.Addr(), "tcp://127.0.0.1:") || strings.HasSuffix(s.Addr(), ":0") {
		t.Fatalf("addr %q", s.Addr())
	}
	c := client(t, s.Addr())
	exercise(t, s, c)
	s.SetOffline(2, true)
	c.SetUnitId(2)
	if _, err := c.ReadRegister(10, modbus.INPUT_REGISTER); err != modbus.ErrGWTargetFailedToRespond {
		t.Fatalf("offline unit over TCP: %v", err)
	}
	c.SetUnitId(9)
	if _, err := c.ReadRegister(10, modbus.INPUT_REGISTER); err != modbus.ErrGWPathUnavailable {
		t.Fatalf("unknown unit over TCP: %v", err)
	}
}

func TestRTUOnPTY(t *testing.T) {
	s := startTest(t, "rtu://pty")
	if !strings.HasPrefix(s.Addr(), "rtu:///dev/pts/") {
		t.Fatalf("addr %q", s.Addr())
	}
	c := client(t, s.Addr())
	exercise(t, s, c)
	s.SetOffline(2, true)
	c.SetUnitId(2)
	if _, err := c.ReadRegister(10, modbus.INPUT_REGISTER); err != modbus.ErrRequestTimedOut {
		t.Fatalf("offline unit over RTU must be silent: %v", err)
	}
	s.SetOffline(2, false)
	if v, err := c.ReadRegister(10, modbus.INPUT_REGISTER); err != nil || int16(v) != -2 {
		t.Fatalf("unit back: %v %v", v, err)
	}
}

func TestRTUOverTCP(t *testing.T) {
	s := startTest(t, "rtuovertcp://127.0.0.1:0")
	exercise(t, s, client(t, s.Addr()))
}

func TestMbpoll(t *testing.T) {
	if _, err := exec.LookPath("mbpoll"); err != nil {
		t.Skip("mbpoll not installed")
	}
	s := startTest(t, "tcp://127.0.0.1:0")
	hostport := strings.TrimPrefix(s.Addr(), "tcp://")
	host, port, _ := strings.Cut(hostport, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Holding registers 3..4 (mbpoll counts from 1): the raw image.
	out, err := exec.CommandContext(ctx, "mbpoll", "-1", "-q", "-t", "4:hex", "-r", "3", "-c", "2", "-p", port, host).CombinedOutput()
	if err != nil {
		t.Fatalf("mbpoll: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "[3]: \t0x1234") || !strings.Contains(string(out), "[4]: \t0xABCD") {
		t.Fatalf("mbpoll read:\n%s", out)
	}
	// A float written by mbpoll, read back from the image.
	out, err = exec.CommandContext(ctx, "mbpoll", "-1", "-q", "-t", "4:float", "-r", "21", "-p", port, host, "--", "-12.25").CombinedOutput()
	if err != nil {
		t.Fatalf("mbpoll write: %v\n%s", err, out)
	}
	v, _ := s.Read(1, Holding, 20, 2)
	// mbpoll writes floats low word first (its default, -B swaps).
	if got := math.Float32frombits(uint32(v[1])<<16 | uint32(v[0])); got != -12.25 {
		t.Fatalf("mbpoll wrote %04x = %v, want -12.25\n%s", v, got, out)
	}
	// Over RTU on a pseudo-terminal too.
	r := startTest(t, "rtu://pty")
	dev := strings.TrimPrefix(r.Addr(), "rtu://")
	out, err = exec.CommandContext(ctx, "mbpoll", "-1", "-q", "-m", "rtu", "-b", "19200", "-P", "none", "-a", "2", "-t", "3", "-r", "11", dev).CombinedOutput()
	if err != nil {
		t.Fatalf("mbpoll rtu: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "[11]: \t65534 (-2)") {
		t.Fatalf("mbpoll rtu read:\n%s", out)
	}
}

func TestDefaultConfigFileMatchesDefaultConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(DefaultConfigTOML))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	if len(cfg.Units) != 1 || len(cfg.Units[0].Registers) != len(want.Units[0].Registers) {
		t.Fatalf("file has %d registers, DefaultConfig %d", len(cfg.Units[0].Registers), len(want.Units[0].Registers))
	}
	for i, r := range cfg.Units[0].Registers {
		w := want.Units[0].Registers[i]
		if r.Area != w.Area || r.Address != w.Address || r.Type != w.Type || r.Generator != w.Generator || r.Period != w.Period {
			t.Errorf("register %d: file %+v, DefaultConfig %+v", i, r, w)
		}
	}
}

func TestCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Command(ctx, []string{"--listen", "tcp://127.0.0.1:0", "--listen", "rtu://pty"}, pw) }()
	sc := bufio.NewScanner(pr)
	var addrs []string
	for len(addrs) < 2 && sc.Scan() {
		line := sc.Text()
		if _, a, ok := strings.Cut(line, " on "); ok {
			addrs = append(addrs, a)
		}
	}
	go io.Copy(io.Discard, pr)
	if len(addrs) != 2 || !strings.HasPrefix(addrs[1], "rtu:///dev/pts/") {
		t.Fatalf("printed addresses %v", addrs)
	}
	c := client(t, addrs[0])
	if v, err := c.ReadRegister(5, modbus.HOLDING_REGISTER); err != nil || v != 750 {
		t.Fatalf("demo set point: %v %v", v, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := Command(context.Background(), []string{"--listen", "udp://x"}, &out); err == nil || !strings.Contains(err.Error(), "unknown scheme") {
		t.Fatalf("bad listen URL: %v", err)
	}
	if err := Command(context.Background(), []string{"--config", "/nonexistent.toml"}, &out); err == nil {
		t.Fatal("missing config file accepted")
	}
}

func TestConfigErrors(t *testing.T) {
	_, err := ParseConfig([]byte(`
[[units]]
id = 1
size = 10
[[units.registers]]
area = "holdin"
address = 0
[[units.registers]]
area = "holding"
address = 9
type = "float32"
[[units.registers]]
area = "coil"
address = 0
type = "int16"
[[units.registers]]
area = "holding"
address = 0
generator = "saw"
`))
	for _, w := range []string{"registers[0]: area \"holdin\"", "registers[1]: float32 at 9 runs past", "registers[2]: a coil holds bool only", "registers[3]: generator \"saw\""} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("want %q in %v", w, err)
		}
	}
}
