package serial

import (
	"strings"

	bug "go.bug.st/serial"
)

// checkPort checks the device name and the port.
func (cfg *Config) checkPort(s *settings, bad badFunc) {
	switch {
	case cfg.Device == "":
		bad("device", "is required: the device name points are reported under")
	case strings.ContainsAny(cfg.Device, ". \t/#+"):
		bad("device", "%q: a device name cannot hold dots, spaces, '/', '#' or '+' (it is part of point names and topics)", cfg.Device)
	}
	if cfg.Port == "" {
		bad("port", "is required, e.g. /dev/ttyUSB0")
	}

}

// checkLine checks the serial line settings: baud rate, data bits, parity
// and stop bits, as for Modbus RTU.
func (cfg *Config) checkLine(s *settings, bad badFunc) {
	s.mode = bug.Mode{BaudRate: cfg.BaudRate, DataBits: cfg.DataBits}
	if s.mode.BaudRate == 0 {
		s.mode.BaudRate = defaultBaud
	} else if s.mode.BaudRate < 0 {
		bad("baud_rate", "%d is not a baud rate", cfg.BaudRate)
	}
	if s.mode.DataBits == 0 {
		s.mode.DataBits = 8
	} else if s.mode.DataBits < 5 || s.mode.DataBits > 8 {
		bad("data_bits", "%d: want 5..8", cfg.DataBits)
	}
	switch strings.ToLower(cfg.Parity) {
	case "", "none", "n":
		s.mode.Parity = bug.NoParity
	case "even", "e":
		s.mode.Parity = bug.EvenParity
	case "odd", "o":
		s.mode.Parity = bug.OddParity
	default:
		bad("parity", "%q: want none, even or odd", cfg.Parity)
	}
	switch cfg.StopBits {
	case 0, 1:
		s.mode.StopBits = bug.OneStopBit
	case 2:
		s.mode.StopBits = bug.TwoStopBits
	default:
		bad("stop_bits", "%d: want 1 or 2", cfg.StopBits)
	}

}
