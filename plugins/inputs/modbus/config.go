package modbus

import (
	"crypto/tls"
	"crypto/x509"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Config is one [[inputs.modbus]] table: one connection.
type Config struct {
	URL                  string         `toml:"url"`
	Interval             sdk.Duration   `toml:"interval"`
	Timeout              sdk.Duration   `toml:"timeout"`
	Retries              *int           `toml:"retries"`
	BaudRate             int            `toml:"baud_rate"`
	DataBits             int            `toml:"data_bits"`
	Parity               string         `toml:"parity"`
	StopBits             int            `toml:"stop_bits"`
	ByteOrder            string         `toml:"byte_order"`
	MaxGap               *int           `toml:"max_gap"`
	MaxRegisters         int            `toml:"max_registers"`
	MaxBits              int            `toml:"max_bits"`
	PauseAfterConnect    sdk.Duration   `toml:"pause_after_connect"`
	PauseBetweenRequests sdk.Duration   `toml:"pause_between_requests"`
	MaxBackoff           sdk.Duration   `toml:"max_backoff"`
	WriteMultiple        bool           `toml:"write_multiple"`
	MaxInFlight          *int           `toml:"max_in_flight"`
	TLSCA                string         `toml:"tls_ca"`
	TLSCert              string         `toml:"tls_cert"`
	TLSKey               string         `toml:"tls_key"`
	Devices              []DeviceConfig `toml:"devices"`
}

// DeviceConfig is one [[inputs.modbus.devices]]: a slave on the connection.
type DeviceConfig struct {
	Name      string        `toml:"name"`
	UnitID    *int          `toml:"unit_id"`
	Interval  sdk.Duration  `toml:"interval"`
	ByteOrder string        `toml:"byte_order"`
	Points    []PointConfig `toml:"points"`
}

// PointConfig is one [[inputs.modbus.devices.points]].
type PointConfig struct {
	Name      string     `toml:"name"`
	Area      string     `toml:"area"`
	Address   *int       `toml:"address"`
	Type      string     `toml:"type"`
	Bit       *int       `toml:"bit"`
	Byte      string     `toml:"byte"`
	Length    int        `toml:"length"`
	ByteOrder string     `toml:"byte_order"`
	Scale     *float64   `toml:"scale"`
	Offset    float64    `toml:"offset"`
	Unit      string     `toml:"unit"`
	Access    sdk.Access `toml:"access"`
	Min       *float64   `toml:"min"`
	Max       *float64   `toml:"max"`
}

// Defaults, as SPEC section 3 shows them.
const (
	defaultInterval   = time.Second
	defaultTimeout    = time.Second
	defaultRetries    = 2
	defaultBaud       = 9600
	defaultMaxGap     = 16
	defaultMaxRegs    = 125  // the protocol's limit for FC3/FC4
	defaultMaxBits    = 2000 // the protocol's limit for FC1/FC2
	defaultMaxBackoff = 30 * time.Second
	// maxInFlight bounds max_in_flight: more reads in flight than a
	// device has request buffers for are refused or dropped by it, and 16
	// x 125 registers is already a poll of 2,000 in one round trip.
	maxInFlight = 16
)

// settings is the checked configuration of the connection.
type settings struct {
	scheme, url          string
	interval, timeout    time.Duration
	retries              int
	baud, dataBits       int
	parity, stopBits     uint
	lim                  limits
	pauseAfterConnect    time.Duration
	pauseBetweenRequests time.Duration
	maxBackoff           time.Duration
	writeMultiple        bool
	maxInFlight          int // reads sent without waiting for their answers (1: one at a time)
	tlsCert              *tls.Certificate
	tlsRoots             *x509.CertPool
}

// badFunc records a problem at a key path of the table.
type badFunc func(path, format string, args ...any)

// check validates the whole configuration and builds the devices. Every
// problem is reported, each at its key path. The concerns are checked in
// their own files: the connection (config_connection.go), the devices and
// their points (config_points.go), and the warnings check prints
// (config_lint.go).
func (cfg *Config) check(src *sdk.ConfigSource) (*settings, []*device, sdk.ConfigErrors) {
	var errs sdk.ConfigErrors
	bad := func(path, format string, args ...any) { errs = append(errs, src.Errorf(path, format, args...)) }
	s, connOrder := cfg.checkConnection(bad)
	devices := cfg.checkDevices(src, s, connOrder, bad)
	return s, devices, errs
}
