// Package modbussim is a Modbus slave simulator: a register image per unit
// id, filled from a small TOML file with static values and generators
// (counter, ramp, sine, random), served over Modbus TCP (through
// github.com/simonvetter/modbus's server) and over RTU on a serial port, a
// pseudo-terminal or a TCP socket (its own RTU framing, which that library
// lacks on the server side).
//
// It exists for three audiences: `edgepipe demo`, the tests of the Modbus
// input (a real slave on loopback or a pty, not a mock), and integrators
// commissioning a configuration before the real device is on site.
package modbussim

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the simulator's whole configuration: the units (slaves) it
// answers as.
type Config struct {
	Units []UnitConfig `toml:"units"`
}

// UnitConfig is one slave.
type UnitConfig struct {
	ID uint8 `toml:"id"`
	// Size is how many addresses each area has (1..65536); reading past it
	// is answered with exception 2 (illegal data address), as a real device
	// with a small register map does. 0 means 65536.
	Size      int              `toml:"size"`
	Registers []RegisterConfig `toml:"registers"`
}

// RegisterConfig places one value in a unit's register image.
type RegisterConfig struct {
	Area    string `toml:"area"`    // coil | discrete | holding | input
	Address int    `toml:"address"` // 0-based protocol address
	// Type is the encoding (bool int16 uint16 int32 uint32 int64 uint64
	// float16 float32 float64 bcd16 bcd32 string); bool in a register area
	// sets one bit. One byte of a register (int8, uint8) is given as raw.
	Type      string `toml:"type"`
	ByteOrder string `toml:"byte_order"` // ABCD (default) | CDAB | BADC | DCBA
	Bit       int    `toml:"bit"`        // bool in a register: which bit (0-15)
	Length    int    `toml:"length"`     // string: registers (default: enough for the value)
	// Value is the static value (or the start value of a counter).
	Value any `toml:"value"`
	// Raw sets registers (or bits, 0/1) verbatim from Address on; it wins
	// over Type and Value. Tests use it for exact register images.
	Raw []int64 `toml:"raw"`
	// Generator makes the value change over time: counter | ramp | sine | random.
	Generator string   `toml:"generator"`
	Min       float64  `toml:"min"`    // ramp, sine, random: lower bound
	Max       float64  `toml:"max"`    // ramp, sine, random: upper bound
	Period    Duration `toml:"period"` // ramp, sine: one cycle (default 60s); counter, random: one step (default 1s)
	Step      float64  `toml:"step"`   // counter: added every period (default 1)
}

// Duration is a TOML string duration ("500ms").
type Duration time.Duration

// UnmarshalText reads "500ms", "60s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: want e.g. \"500ms\", \"60s\"", b)
	}
	*d = Duration(v)
	return nil
}

// LoadConfig reads a simulator configuration file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig decodes a configuration strictly (unknown keys are errors)
// and checks it.
func ParseConfig(data []byte) (*Config, error) {
	var cfg Config
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg)
	if err != nil {
		return nil, err
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("unknown keys: %s", strings.Join(keys, ", "))
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Validate checks every register entry and returns all problems found.
func (c *Config) Validate() error {
	var errs []error
	seen := map[uint8]bool{}
	if len(c.Units) == 0 {
		errs = append(errs, errors.New("no [[units]]: the simulator needs at least one unit"))
	}
	for i, u := range c.Units {
		if seen[u.ID] {
			errs = append(errs, fmt.Errorf("units[%d]: unit id %d defined twice", i, u.ID))
		}
		seen[u.ID] = true
		if u.Size < 0 || u.Size > 65536 {
			errs = append(errs, fmt.Errorf("units[%d].size: %d is out of 0..65536", i, u.Size))
		}
		for j := range u.Registers {
			if _, err := compile(&u.Registers[j], u.size()); err != nil {
				errs = append(errs, fmt.Errorf("units[%d].registers[%d]: %w", i, j, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (u *UnitConfig) size() int {
	if u.Size == 0 {
		return 65536
	}
	return u.Size
}

// DefaultConfig is the demo device: unit 1 with a temperature (float32
// sine), a counter, a pressure ramp, a pump coil and a device name string,
// matching the sample configuration of inputs.modbus.
func DefaultConfig() *Config {
	return &Config{Units: []UnitConfig{{
		ID: 1,
		Registers: []RegisterConfig{
			{Area: "holding", Address: 0, Type: "float32", Generator: "sine", Min: 18, Max: 26, Period: Duration(60 * time.Second)},
			{Area: "holding", Address: 2, Type: "uint32", Generator: "counter", Step: 1, Period: Duration(time.Second)},
			{Area: "holding", Address: 4, Type: "int16", Generator: "ramp", Min: 0, Max: 1000, Period: Duration(30 * time.Second)},
			{Area: "holding", Address: 5, Type: "uint16", Value: int64(750)},
			{Area: "holding", Address: 10, Type: "string", Length: 8, Value: "edgepipe-sim"},
			{Area: "coil", Address: 0, Type: "bool", Value: true},
			{Area: "discrete", Address: 0, Type: "bool", Generator: "random", Min: 0, Max: 1, Period: Duration(5 * time.Second)},
			{Area: "input", Address: 0, Type: "float32", Generator: "random", Min: 0.9, Max: 1.1, Period: Duration(time.Second)},
		},
	}}}
}

// DefaultConfigTOML is DefaultConfig written as a configuration file, for
// `edgepipe sim modbus --print-config` and the README.
const DefaultConfigTOML = `# edgepipe Modbus simulator configuration
[[units]]
id = 1            # unit id (slave address)
size = 0          # addresses per area; reading past it answers exception 2; 0 = 65536

[[units.registers]]   # temperature, degC: float32 sine between 18 and 26, one cycle a minute
area = "holding"
address = 0
type = "float32"
generator = "sine"
min = 18.0
max = 26.0
period = "60s"

[[units.registers]]   # a counter, +1 every second
area = "holding"
address = 2
type = "uint32"
generator = "counter"
step = 1.0
period = "1s"

[[units.registers]]   # pressure, raw 0..1000 (scale 0.01 -> bar), ramping over 30 s
area = "holding"
address = 4
type = "int16"
generator = "ramp"
min = 0.0
max = 1000.0
period = "30s"

[[units.registers]]   # a set point, writable
area = "holding"
address = 5
type = "uint16"
value = 750

[[units.registers]]   # device name, 8 registers
area = "holding"
address = 10
type = "string"
length = 8
value = "edgepipe-sim"

[[units.registers]]   # pump on/off
area = "coil"
address = 0
type = "bool"
value = true

[[units.registers]]   # door contact, changes at random every 5 s
area = "discrete"
address = 0
type = "bool"
generator = "random"
min = 0.0
max = 1.0
period = "5s"

[[units.registers]]   # a noisy input register
area = "input"
address = 0
type = "float32"
generator = "random"
min = 0.9
max = 1.1
period = "1s"
`
