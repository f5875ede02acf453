package modbussim

import (
	"bufio"
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/creack/pty"
	"github.com/simonvetter/modbus"
	"golang.org/x/sys/unix"
)

// nullModem joins two pseudo-terminals back to back, like two serial
// ports and a null-modem cable: what is written to one path is read from
// the other. It returns both ports' paths and the first port's terminal,
// whose settings show what the side that opened it set.
func nullModem(t *testing.T) (a, b string, ta *os.File) {
	t.Helper()
	ma, sa, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	mb, sb, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*os.File{sa, sb} {
		if err := makeRaw(int(s.Fd())); err != nil {
			t.Fatal(err)
		}
	}
	go func() { _, _ = io.Copy(ma, mb) }()
	go func() { _, _ = io.Copy(mb, ma) }()
	t.Cleanup(func() { ma.Close(); mb.Close(); sa.Close(); sb.Close() })
	return sa.Name(), sb.Name(), sa
}

// startCommand runs `edgepipe sim modbus` with args and returns what it
// printed up to the first listening address, and that address.
func startCommand(t *testing.T, args ...string) (printed []string, addr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- Command(ctx, args, pw); pw.Close() }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		printed = append(printed, sc.Text())
		if _, a, ok := strings.Cut(sc.Text(), " on "); ok {
			go func() { _, _ = io.Copy(io.Discard, pr) }()
			return printed, a
		}
	}
	t.Fatalf("the simulator printed no address: %q", printed)
	return nil, ""
}

// The simulator's serial URL is the input's: url = "rtu:///dev/ttyX" with
// the line set apart (--baud-rate... as baud_rate...), defaulting to the
// input's 9600 8N1. The former form with the line in the query is still
// served, with a deprecation note.
func TestRTUURLIsTheInputs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    func(port string) []string
		cflag   uint32 // speed and stop bits set on the port (a pty forces CS8, no parity)
		warning bool
	}{
		{"defaults", func(p string) []string { return []string{"--listen", "rtu://" + p} }, unix.B9600, false},
		{"line flags", func(p string) []string {
			return []string{"--listen", "rtu://" + p, "--baud-rate", "19200", "--parity", "even", "--stop-bits", "2", "--data-bits", "7"}
		}, unix.B19200 | unix.CSTOPB, false},
		{"deprecated query", func(p string) []string { return []string{"--listen", "rtu://" + p + "?baud_rate=4800"} }, unix.B4800, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			simPort, clientPort, term := nullModem(t)
			printed, addr := startCommand(t, tc.args(simPort)...)
			if addr != "rtu://"+simPort {
				t.Fatalf("serving on %q, want the input's form rtu://%s", addr, simPort)
			}
			if got := strings.Contains(strings.Join(printed, "\n"), "deprecated"); got != tc.warning {
				t.Fatalf("deprecation note %v, want %v: %q", got, tc.warning, printed)
			}
			tio, err := unix.IoctlGetTermios(int(term.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			if got := tio.Cflag & (unix.CBAUD | unix.CSTOPB); got != tc.cflag {
				t.Fatalf("port line cflag %#o, want %#o", got, tc.cflag)
			}
			c := client(t, "rtu://"+clientPort)
			if v, err := c.ReadRegister(5, modbus.HOLDING_REGISTER); err != nil || v != 750 {
				t.Fatalf("demo set point over the null modem: %v %v", v, err)
			}
		})
	}
	var out strings.Builder
	if err := Command(context.Background(), []string{"--listen", "rtu:///dev/null", "--parity", "mark"}, &out); err == nil || !strings.Contains(err.Error(), "parity") {
		t.Fatalf("bad parity: %v", err)
	}
}
