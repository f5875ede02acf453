package serial

import (
	"time"

	bug "go.bug.st/serial"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Config is one [[inputs.serial]] table: one port, one device.
type Config struct {
	Device      string        `toml:"device"`
	Port        string        `toml:"port"`
	BaudRate    int           `toml:"baud_rate"`
	DataBits    int           `toml:"data_bits"`
	Parity      string        `toml:"parity"`
	StopBits    int           `toml:"stop_bits"`
	Mode        string        `toml:"mode"`
	Interval    sdk.Duration  `toml:"interval"`
	Request     string        `toml:"request"`
	Timeout     sdk.Duration  `toml:"timeout"`
	Delimiter   string        `toml:"delimiter"`
	FrameLength int           `toml:"frame_length"`
	IdleGap     sdk.Duration  `toml:"idle_gap"`
	Start       string        `toml:"start"`
	Checksum    string        `toml:"checksum"`
	Points      []PointConfig `toml:"points"`
}

// PointConfig is one [[inputs.serial.points]].
type PointConfig struct {
	Name      string     `toml:"name"`
	Pattern   string     `toml:"pattern"`
	Type      string     `toml:"type"`
	Position  *int       `toml:"position"`
	ByteOrder string     `toml:"byte_order"`
	Scale     *float64   `toml:"scale"`
	Offset    float64    `toml:"offset"`
	Unit      string     `toml:"unit"`
	Access    sdk.Access `toml:"access"`
	Write     string     `toml:"write"`
	Min       *float64   `toml:"min"`
	Max       *float64   `toml:"max"`
}

const (
	defaultBaud     = 9600
	defaultInterval = time.Second
	defaultTimeout  = time.Second
)

// settings is the checked configuration.
type settings struct {
	device   string
	port     string
	mode     bug.Mode
	poll     bool
	interval time.Duration // poll: period; stream: expected period of frames, 0 = not watched
	timeout  time.Duration
	request  []tmplPart
	delim    []byte
	length   int
	gap      time.Duration
	start    []byte
	checksum checksum
	points   []*point          // all, in configuration order
	byName   map[string]*point //
	read     []*point          // the points read from frames (pub, pubsub)
}

// badFunc records a problem at a key path of the table.
type badFunc func(path, format string, args ...any)

// check validates the whole table and reports every problem at once, each
// at its key path. The concerns are checked in their own files: the port
// and its line settings (config_line.go), the exchange and framing
// (config_framing.go), and the points (config_points.go).
func (cfg *Config) check(src *sdk.ConfigSource) (*settings, sdk.ConfigErrors) {
	var errs sdk.ConfigErrors
	bad := func(path, format string, args ...any) { errs = append(errs, src.Errorf(path, format, args...)) }
	s := &settings{device: cfg.Device, port: cfg.Port, interval: cfg.Interval.D(), timeout: cfg.Timeout.D(),
		byName: map[string]*point{}}
	cfg.checkPort(s, bad)
	cfg.checkLine(s, bad)
	cfg.checkMode(s, bad)
	cfg.checkFraming(s, bad)
	cfg.checkPoints(src, s, bad)
	return s, errs
}
