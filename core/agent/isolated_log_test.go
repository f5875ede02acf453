package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/core/config"
	_ "github.com/edgepipe/edgepipe/plugins/inputs/modbus"
)

// lockedBuffer is a log destination read by the test while plugins write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// closedPort is a 127.0.0.1 port nothing listens on.
func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// A Modbus input at a closed port warns in-process (through slog.Default);
// isolated, its record used to arrive at debug level and vanish. It now
// reaches the gateway's log at warn level, named by the plugin's alias.
func TestIsolatedModbusWarningReachesTheGatewayLog(t *testing.T) {
	doc := fmt.Sprintf(`[agent]
device_id = "GW-T"
data_dir = %q
[[inputs.modbus]]
alias = "boiler"
isolated = true
url = "tcp://127.0.0.1:%d"
timeout = "200ms"
  [[inputs.modbus.devices]]
  name = "plc1"
    [[inputs.modbus.devices.points]]
    name = "temperature"
    area = "holding"
    address = 0
    type = "float32"
`, t.TempDir(), closedPort(t))
	cfg, err := config.Parse("log.toml", []byte(doc), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	var buf lockedBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a := New(cfg, Options{DryRun: true, Logger: log})
	if err := a.Open(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	if _, err := a.Once(context.Background(), 0); err != nil {
		t.Logf("once: %v", err) // the device is down: expected
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, line := range strings.Split(buf.String(), "\n") {
			var r map[string]any
			if json.Unmarshal([]byte(line), &r) != nil || r["msg"] != "modbus: cannot connect" {
				continue
			}
			if r["level"] != "WARN" || r["plugin"] != "boiler" {
				t.Fatalf("the warning arrived as %v", r)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no warning in the gateway's log:\n%s", buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
