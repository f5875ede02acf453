// Package statestore persists the small state plugins keep through the SDK
// (last reported values, raised alarms): one JSON file per plugin instance
// under data_dir/state, replaced atomically so that a crash leaves either
// the old or the new file, never half of one.
package statestore

import (
	"encoding/json"
	"fmt"
	"github.com/edgepipe/edgepipe/internal/atomicfile"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// File is an sdk.State backed by a file.
//
// Writes are paced: Save writes at once when the last write is at least
// MinInterval old, and otherwise arms one timer that writes the latest
// state when the interval is up. A deadband that changes its state on
// every 100 ms poll thus costs one fsync a second, not ten; a crash loses
// at most MinInterval of state, which means a point reported once more,
// never a point lost. Close (Flush) always writes what is pending.
type File struct {
	*sdk.MemState
	path string
	// MinInterval between two writes; 0 writes on every Save.
	MinInterval time.Duration

	mu      sync.Mutex // serialises writes
	last    time.Time
	pending *time.Timer
	err     error // of a deferred write, reported by the next Save
}

// DefaultMinInterval is the pacing of Open's files.
const DefaultMinInterval = time.Second

// Save persists changes, now or within MinInterval.
func (f *File) Save() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err; err != nil {
		f.err = nil
		return err
	}
	wait := f.MinInterval - time.Since(f.last)
	if wait <= 0 {
		return f.writeLocked()
	}
	if f.pending == nil {
		f.pending = time.AfterFunc(wait, func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.pending = nil
			f.err = f.writeLocked()
		})
	}
	return nil
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
	f := &File{MemState: sdk.NewMemState(data), path: path, MinInterval: DefaultMinInterval}
	return f, nil
}

// Flush writes pending changes now (at close).
func (f *File) Flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pending != nil {
		f.pending.Stop()
		f.pending = nil
	}
	return f.writeLocked()
}

// writeLocked writes the state when something changed since the last write.
func (f *File) writeLocked() error {
	if f.TakeChanges() == nil {
		return nil
	}
	f.last = time.Now()
	b, err := json.Marshal(f.Snapshot())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(f.path, b, 0o600)
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
