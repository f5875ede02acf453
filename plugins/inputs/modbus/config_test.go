package modbus

import (
	"testing"

	"github.com/edgepipe/edgepipe/sim/modbussim"
)

// The simulator's serial line defaults are the input's: a simulator and
// an input both left at their defaults on rtu:///dev/ttyX talk.
func TestSerialDefaultsAreTheSimulators(t *testing.T) {
	var cfg Config
	cfg.URL = "rtu:///dev/ttyUSB0"
	cfg.Devices = []DeviceConfig{{Name: "d", Points: []PointConfig{{Name: "p", Area: "holding", Address: new(int)}}}}
	s, _, errs := cfg.check(nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	l := modbussim.DefaultLine
	if s.baud != l.BaudRate || s.dataBits != l.DataBits || s.parity != 0 || l.Parity != "none" || int(s.stopBits) != l.StopBits {
		t.Fatalf("input %d %d parity %d stop %d, simulator %+v", s.baud, s.dataBits, s.parity, s.stopBits, l)
	}
}
