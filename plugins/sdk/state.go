package sdk

import (
	"maps"
	"sync"
)

// State is a plugin's small key/value memory that survives restarts of the
// plugin process and of the gateway. Values are copied in and out. The core
// persists changes after the call that made them returns, so a plugin that
// Sets during Process has its change on disk before the frame moves on.
type State interface {
	Get(key string) ([]byte, bool)
	Set(key string, value []byte) // nil value deletes the key
	Keys() []string
}

// MemState is a State in memory; it records which keys changed so that the
// gRPC server can send the changes home with each response, and the core
// knows what to persist.
type MemState struct {
	mu    sync.Mutex
	data  map[string][]byte
	dirty map[string]bool
}

// NewMemState returns a State holding a copy of initial.
func NewMemState(initial map[string][]byte) *MemState {
	s := &MemState{data: make(map[string][]byte, len(initial)), dirty: map[string]bool{}}
	for k, v := range initial {
		s.data[k] = append([]byte(nil), v...)
	}
	return s
}

func (s *MemState) Get(key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[key]
	if !ok {
		return nil, false
	}
	return append([]byte(nil), v...), true
}

func (s *MemState) Set(key string, value []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if value == nil {
		delete(s.data, key)
	} else {
		s.data[key] = append([]byte(nil), value...)
	}
	s.dirty[key] = true
}

func (s *MemState) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.data))
	for k := range s.data {
		keys = append(keys, k)
	}
	return keys
}

// Snapshot returns a copy of everything held.
func (s *MemState) Snapshot() map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.data)
}

// TakeChanges returns the keys changed since the last call with their
// values (nil for deleted keys) and forgets them; nil when nothing changed.
func (s *MemState) TakeChanges() map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.dirty) == 0 {
		return nil
	}
	out := make(map[string][]byte, len(s.dirty))
	for k := range s.dirty {
		out[k] = s.data[k]
	}
	clear(s.dirty)
	return out
}

// Apply merges changes (as returned by TakeChanges) and marks them dirty.
func (s *MemState) Apply(changes map[string][]byte) {
	for k, v := range changes {
		s.Set(k, v)
	}
}
