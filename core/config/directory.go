package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// noInputs is the error of a configuration without inputs.
const noInputs = "no inputs configured; add at least one [[inputs.NAME]]"

// LoadDirectory loads the main file and then every DIR/*.toml in name
// order (`edgepipe run --config FILE --config-directory DIR`, as Telegraf
// does): [agent] comes from the main file only, the plugin tables of all
// files are appended in that order. Plugin IDs count across files
// (inputs.modbus#2 may be the first table of the second file); aliases
// must be unique across files. Every error of every file is reported.
// An empty dir is Load.
func LoadDirectory(path, dir string) (*Config, error) {
	if dir == "" {
		return Load(path)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("--config-directory: %w", err)
	}
	sort.Strings(files)
	counts := map[string]int{}
	var errs sdk.ConfigErrors
	load := func(file string, o parseOptions) *Config {
		data, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, sdk.ConfigError{File: file, Msg: err.Error()})
			return nil
		}
		o.counts = counts
		c, err := parse(file, data, os.LookupEnv, o)
		errs = append(errs, sdk.AsConfigErrors(err)...)
		return c
	}
	cfg := load(path, parseOptions{})
	if cfg == nil {
		return nil, errs.Err()
	}
	aliases := map[string]*Plugin{}
	for _, p := range cfg.Plugins() {
		if p.Alias != "" {
			aliases[p.Alias] = p
		}
	}
	for _, f := range files {
		c := load(f, parseOptions{fragment: true})
		if c == nil {
			continue
		}
		for _, p := range c.Plugins() {
			if prev, dup := aliases[p.Alias]; p.Alias != "" && dup {
				errs = append(errs, sdk.ConfigError{File: p.File, Line: p.Line,
					Msg: fmt.Sprintf("alias %q is already used at %s:%d", p.Alias, prev.File, prev.Line)})
			}
			if p.Alias != "" {
				aliases[p.Alias] = p
			}
		}
		cfg.Inputs = append(cfg.Inputs, c.Inputs...)
		cfg.Processors = append(cfg.Processors, c.Processors...)
		cfg.Outputs = append(cfg.Outputs, c.Outputs...)
		// Redact replaces the longest secrets first (see collectSecrets).
		cfg.secrets = append(cfg.secrets, c.secrets...)
		slices.SortStableFunc(cfg.secrets, func(a, b secret) int { return len(b.value) - len(a.value) })
	}
	if len(cfg.Inputs) == 0 {
		errs = append(errs, sdk.ConfigError{File: path, Msg: noInputs})
	}
	return cfg, cfg.Redact(errs.Err())
}
