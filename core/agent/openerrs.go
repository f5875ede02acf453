package agent

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/edgepipe/edgepipe/core/config"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// unopened is what Open knows of the inputs that failed to open. Such an
// input lends no points to the registry, so every processor or output
// naming one of them reports it missing ("no point "plc1.t" among the
// inputs' points"): consequences that bury the one real error. Plugins
// quote the point names (or patterns, or device names) their errors are
// about, so an error quoting a device of a failed input, and no point the
// registry has, is taken as one of those consequences.
type unopened struct {
	devices map[string]string // device name -> ID of the input that failed
	// untold lists the failed inputs whose devices their table does not
	// tell (another layout, an external plugin).
	untold []string
}

// add records input p, which failed to open. The built-in inputs name
// their device `device` (one device) or `name` in each [[devices]]; read
// leniently, since the table may be the very thing that is wrong.
func (u *unopened) add(p *config.Plugin) {
	var t struct {
		Device  any              `toml:"device"`
		Devices []map[string]any `toml:"devices"`
	}
	found := false
	note := func(v any) {
		if s, ok := v.(string); ok && s != "" {
			if u.devices == nil {
				u.devices = map[string]string{}
			}
			u.devices[s] = p.ID
			found = true
		}
	}
	if _, err := toml.Decode(string(p.Text()), &t); err == nil {
		note(t.Device)
		for _, d := range t.Devices {
			note(d["name"])
		}
	}
	if !found {
		u.untold = append(u.untold, p.ID)
	}
}

// filter returns the errors of a processor or output less those caused by
// the failed inputs. While some failed input's devices are untold, an
// error about a device no input has is kept, saying why it may be there.
func (u *unopened) filter(err error, reg *Registry) sdk.ConfigErrors {
	errs := sdk.AsConfigErrors(err)
	if len(u.devices) == 0 && len(u.untold) == 0 {
		return errs
	}
	var known map[string]bool // devices of the registry, made when needed
	kept := errs[:0:0]
	for _, e := range errs {
		if e.Warning {
			kept = append(kept, e)
			continue
		}
		consequence, unknownDevice := false, false
		for _, q := range quoted(e.Msg) {
			if _, _, ok := reg.Lookup(q); ok {
				continue
			}
			dev, _, _ := strings.Cut(q, ".")
			if _, ok := u.devices[dev]; ok {
				consequence = true
				break
			}
			if len(u.untold) > 0 && strings.Contains(q, ".") {
				if known == nil {
					known = map[string]bool{}
					for _, s := range reg.Schemas() {
						known[s.Device] = true
					}
				}
				unknownDevice = unknownDevice || !known[dev]
			}
		}
		switch {
		case consequence:
			continue
		case unknownDevice:
			e.Msg += fmt.Sprintf(" (%s, which failed to open, may define it)", strings.Join(u.untold, ", "))
		}
		kept = append(kept, e)
	}
	return kept
}

// quoted returns the Go-quoted strings in msg (%q, as plugins quote point
// names).
func quoted(msg string) []string {
	var out []string
	for i := 0; i < len(msg); i++ {
		if msg[i] != '"' {
			continue
		}
		lit, err := strconv.QuotedPrefix(msg[i:])
		if err != nil {
			continue
		}
		if s, err := strconv.Unquote(lit); err == nil {
			out = append(out, s)
		}
		i += len(lit) - 1
	}
	return out
}
