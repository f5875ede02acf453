package modbus

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
)

// checkConnection checks the keys of the connection itself: the URL, the
// timing, the serial line, the request limits and TLS. It returns the
// settings with defaults applied and the connection's byte order.
func (cfg *Config) checkConnection(bad badFunc) (*settings, byteOrder) {
	s := &settings{interval: cfg.Interval.D(), timeout: cfg.Timeout.D(), retries: defaultRetries,
		baud: cfg.BaudRate, dataBits: cfg.DataBits, pauseAfterConnect: cfg.PauseAfterConnect.D(),
		pauseBetweenRequests: cfg.PauseBetweenRequests.D(), maxBackoff: cfg.MaxBackoff.D(), writeMultiple: cfg.WriteMultiple,
		lim: limits{maxRegs: cfg.MaxRegisters, maxBits: cfg.MaxBits, maxGap: defaultMaxGap}}
	cfg.checkURL(s, bad)
	if s.interval == 0 {
		s.interval = defaultInterval
	}
	if s.timeout == 0 {
		s.timeout = defaultTimeout
	}
	if s.maxBackoff == 0 {
		s.maxBackoff = defaultMaxBackoff
	}
	if cfg.Retries != nil {
		s.retries = *cfg.Retries
		if s.retries < 0 || s.retries > 10 {
			bad("retries", "%d: want 0..10", s.retries)
		}
	}
	cfg.checkSerialLine(s, bad)
	connOrder := orderABCD
	if cfg.ByteOrder != "" {
		o, ok := parseOrder(cfg.ByteOrder)
		if !ok {
			bad("byte_order", "%q: want ABCD, CDAB, BADC or DCBA", cfg.ByteOrder)
		}
		connOrder = o
	}
	cfg.checkLimits(s, bad)
	cfg.checkInFlight(s, bad)
	cfg.checkTLS(s, bad)
	return s, connOrder
}

// checkTLS loads the client certificate and CA of a tcp+tls:// URL, and
// refuses TLS keys on any other.
func (cfg *Config) checkTLS(s *settings, bad badFunc) {
	if s.scheme == "tcp+tls" {
		if cfg.TLSCert == "" || cfg.TLSKey == "" {
			bad("tls_cert", "tcp+tls needs a client certificate: tls_cert and tls_key (Modbus/TCP Security mandates mutual TLS)")
		} else if cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
			bad("tls_cert", "loading %s and %s: %v", cfg.TLSCert, cfg.TLSKey, err)
		} else {
			s.tlsCert = &cert
		}
		if cfg.TLSCA == "" {
			bad("tls_ca", "tcp+tls needs tls_ca: the CA (or the server's own certificate) to verify the server")
		} else if pem, err := os.ReadFile(cfg.TLSCA); err != nil {
			bad("tls_ca", "%v", err)
		} else {
			s.tlsRoots = x509.NewCertPool()
			if !s.tlsRoots.AppendCertsFromPEM(pem) {
				bad("tls_ca", "%s holds no PEM certificate", cfg.TLSCA)
			}
		}
	} else {
		for key, v := range map[string]string{"tls_ca": cfg.TLSCA, "tls_cert": cfg.TLSCert, "tls_key": cfg.TLSKey} {
			if v != "" {
				bad(key, "only used with tcp+tls:// URLs")
			}
		}
	}
}

// checkSerialLine checks the RTU line settings (ignored over TCP).
func (cfg *Config) checkSerialLine(s *settings, bad badFunc) {
	if s.baud == 0 {
		s.baud = defaultBaud
	} else if s.baud < 0 {
		bad("baud_rate", "%d is not a baud rate", s.baud)
	}
	if s.dataBits == 0 {
		s.dataBits = 8
	} else if s.dataBits < 5 || s.dataBits > 8 {
		bad("data_bits", "%d: want 5..8", s.dataBits)
	}
	switch strings.ToLower(cfg.Parity) {
	case "", "none", "n":
		s.parity = 0
	case "even", "e":
		s.parity = 1
	case "odd", "o":
		s.parity = 2
	default:
		bad("parity", "%q: want none, even or odd", cfg.Parity)
	}
	switch cfg.StopBits {
	case 0, 1:
		s.stopBits = 1
	case 2:
		s.stopBits = 2
	default:
		bad("stop_bits", "%d: want 1 or 2", cfg.StopBits)
	}
}

// checkLimits checks how requests may be merged and sized.
func (cfg *Config) checkLimits(s *settings, bad badFunc) {
	if cfg.MaxGap != nil {
		s.lim.maxGap = *cfg.MaxGap
		if s.lim.maxGap < 0 || s.lim.maxGap > defaultMaxRegs {
			bad("max_gap", "%d: want 0..125 registers", s.lim.maxGap)
		}
	}
	if s.lim.maxRegs == 0 {
		s.lim.maxRegs = defaultMaxRegs
	} else if s.lim.maxRegs < 1 || s.lim.maxRegs > defaultMaxRegs {
		bad("max_registers", "%d: want 1..125 (the protocol's limit per read)", s.lim.maxRegs)
	}
	if s.lim.maxBits == 0 {
		s.lim.maxBits = defaultMaxBits
	} else if s.lim.maxBits < 1 || s.lim.maxBits > defaultMaxBits {
		bad("max_bits", "%d: want 1..2000 (the protocol's limit per read)", s.lim.maxBits)
	}
}

// checkInFlight checks max_in_flight: how many reads a poll sends before
// it waits for their answers. Only Modbus TCP pairs answers with requests
// (by MBAP transaction id); pauses between requests and pipelining
// contradict each other.
func (cfg *Config) checkInFlight(s *settings, bad badFunc) {
	s.maxInFlight = 1
	if cfg.MaxInFlight == nil {
		return
	}
	n := *cfg.MaxInFlight
	switch {
	case n < 1 || n > maxInFlight:
		bad("max_in_flight", "%d: want 1..%d requests", n, maxInFlight)
	case n == 1:
	case s.scheme == "rtu" || s.scheme == "rtuovertcp":
		bad("max_in_flight", "%d: %s:// sends one request at a time: RTU frames carry no transaction id to pair answers with requests (only tcp:// can have several in flight)", n, s.scheme)
	case s.scheme == "tcp+tls":
		bad("max_in_flight", "%d: not supported over tcp+tls:// yet, whose client sends one request at a time (only tcp:// can have several in flight)", n)
	case s.pauseBetweenRequests > 0:
		bad("max_in_flight", "%d: pause_between_requests is set: requests paced one by one cannot be sent together (use one or the other)", n)
	default:
		s.maxInFlight = n
	}
}

// checkURL checks the connection URL and sets its scheme.
func (cfg *Config) checkURL(s *settings, bad badFunc) {
	scheme, rest, ok := strings.Cut(cfg.URL, "://")
	// Copies: a substring of the configuration text would keep all of it.
	s.scheme, s.url = strings.Clone(strings.ToLower(scheme)), strings.Clone(cfg.URL)
	switch {
	case cfg.URL == "":
		bad("url", "is required: tcp://HOST:PORT, rtu:///dev/ttyX, rtuovertcp://HOST:PORT or tcp+tls://HOST:PORT")
	case !ok || rest == "":
		bad("url", "%q: want tcp://HOST:PORT, rtu:///dev/ttyX, rtuovertcp://HOST:PORT or tcp+tls://HOST:PORT", cfg.URL)
	default:
		switch s.scheme {
		case "tcp", "rtuovertcp", "tcp+tls":
			if !strings.Contains(rest, ":") {
				bad("url", "%q: want HOST:PORT after %s://", cfg.URL, s.scheme)
			}
		case "rtu":
		default:
			bad("url", "%q: unknown scheme %q (want tcp, rtu, rtuovertcp or tcp+tls)", cfg.URL, scheme)
		}
	}
}
