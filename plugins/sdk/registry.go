package sdk

import (
	"fmt"
	"sort"
	"sync"
)

// PluginKind is the role of a plugin in the pipeline.
type PluginKind string

const (
	KindInput     PluginKind = "inputs"
	KindProcessor PluginKind = "processors"
	KindOutput    PluginKind = "outputs"
)

// Registration describes a built-in plugin. The same Factory serves the
// plugin in the core's process and, re-executed, in its own process.
type Registration struct {
	Kind         PluginKind
	Name         string // "modbus"; the full name is Kind + "." + Name
	Description  string // one line, for `edgepipe plugins`
	SampleConfig string // TOML sample, normally the plugin's embedded sample.conf
	Factory      func() Plugin
	// Lint, when set, looks at a table that Init accepts for what is
	// valid but likely a mistake, and returns warnings (ConfigErrors
	// with Warning set). `edgepipe check` calls it in its own process,
	// whether the plugin runs isolated or not; it must not open anything.
	Lint func(req *InitRequest) ConfigErrors
}

// FullName is "inputs.modbus".
func (r Registration) FullName() string { return string(r.Kind) + "." + r.Name }

var (
	regMu    sync.RWMutex
	registry = map[string]Registration{}
)

// Register adds a built-in plugin; call it from the plugin package's init.
// Registering a name twice panics: a silent overwrite would make which
// plugin runs depend on import order.
func Register(r Registration) {
	if r.Factory == nil || r.Name == "" {
		panic("sdk.Register: name and factory are required")
	}
	switch r.Kind {
	case KindInput, KindProcessor, KindOutput:
	default:
		panic(fmt.Sprintf("sdk.Register %s: unknown kind %q", r.Name, r.Kind))
	}
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[r.FullName()]; dup {
		panic("sdk.Register: " + r.FullName() + " registered twice")
	}
	registry[r.FullName()] = r
}

// Lookup finds a registered plugin by its full name ("inputs.modbus").
func Lookup(fullName string) (Registration, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	r, ok := registry[fullName]
	return r, ok
}

// Registered lists the registered plugins sorted by full name, optionally
// only those of one kind.
func Registered(kind PluginKind) []Registration {
	regMu.RLock()
	defer regMu.RUnlock()
	var out []Registration
	for _, r := range registry {
		if kind == "" || r.Kind == kind {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FullName() < out[j].FullName() })
	return out
}
