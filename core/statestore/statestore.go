// Package statestore persists the small state plugins keep through the SDK
// (last reported values, raised alarms): one JSON file per plugin instance
// under data_dir/state, replaced atomically so that a crash leaves either
// the old or the new file, never half of one.
package statestore

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// File is an sdk.State backed by a file.
type File struct {
	*sdk.MemState
	path string
	mu   sync.Mutex // serialises Flush
}

// Open loads the state of plugin id from dir (missing file: empty state).
func Open(dir, id string) (*File, error) {
	path := filepath.Join(dir, safeName(id)+".json")
	data := map[string][]byte{}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &data); err != nil {
			return nil, fmt.Errorf("state file %s is damaged: %w (remove it to start afresh)", path, err)
		}
	case os.IsNotExist(err):
	default:
		return nil, err
	}
	f := &File{MemState: sdk.NewMemState(data), path: path}
	return f, nil
}

// Flush writes the state when something changed since the last Flush.
func (f *File) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.TakeChanges() == nil {
		return nil
	}
	b, err := json.Marshal(f.Snapshot())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
		return err
	}
	tmp := f.path + ".tmp"
	fh, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := fh.Write(b); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, f.path)
}

// safeName turns a plugin id ("inputs.modbus#1", an alias) into a file name.
func safeName(id string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, id)
}
