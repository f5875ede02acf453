package reload

import (
	"encoding/json"
	"fmt"
	"github.com/edgepipe/edgepipe/internal/atomicfile"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Keep is how many configuration versions the store keeps.
const Keep = 10

// The states of a configuration (SPEC 9's config_state).
const (
	StateConfirmed  = "confirmed"
	StateTrial      = "trial"
	StateRolledBack = "rolled_back"
)

// Version is one stored configuration.
type Version struct {
	Seq   int       `json:"seq"`
	Hash  string    `json:"hash"`
	State string    `json:"state"`
	Time  time.Time `json:"time"`
	ID    string    `json:"id,omitempty"` // the set's request id
}

// Store keeps the configurations set from the server under
// data_dir/config/: each text as NNNNNNNNNN.toml and an index.json of
// their hashes and states. Every file is written atomically (write, fsync,
// rename, fsync the directory), so a power cut leaves the old file or the
// new one, never half of one.
type Store struct {
	dir string
	mu  sync.Mutex
}

// OpenStore is the store of data directory dataDir.
func OpenStore(dataDir string) *Store { return &Store{dir: filepath.Join(dataDir, "config")} }

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Path is where version seq's text is.
func (s *Store) Path(seq int) string { return filepath.Join(s.dir, fmt.Sprintf("%010d.toml", seq)) }

func (s *Store) index() ([]Version, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, "index.json"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var vs []Version
	if err := json.Unmarshal(b, &vs); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(s.dir, "index.json"), err)
	}
	return vs, nil
}

func (s *Store) writeIndex(vs []Version) error {
	b, err := json.MarshalIndent(vs, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(s.dir, "index.json"), append(b, '\n'), 0o600)
}

// Versions lists the stored versions, oldest first.
func (s *Store) Versions() ([]Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.index()
}

// Save stores a new version and drops all but the newest Keep.
func (s *Store) Save(text []byte, v Version) (Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return v, err
	}
	vs, err := s.index()
	if err != nil {
		return v, err
	}
	v.Seq = 1
	if len(vs) > 0 {
		v.Seq = vs[len(vs)-1].Seq + 1
	}
	if v.Time.IsZero() {
		v.Time = time.Now()
	}
	if err := atomicfile.Write(s.Path(v.Seq), text, 0o600); err != nil {
		return v, err
	}
	vs = append(vs, v)
	var drop []Version
	if len(vs) > Keep {
		drop, vs = vs[:len(vs)-Keep], vs[len(vs)-Keep:]
	}
	if err := s.writeIndex(vs); err != nil {
		return v, err
	}
	for _, d := range drop {
		_ = os.Remove(s.Path(d.Seq))
	}
	return v, nil
}

// SetState records a version's new state.
func (s *Store) SetState(seq int, state string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs, err := s.index()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(vs, func(v Version) bool { return v.Seq == seq })
	if i < 0 {
		return fmt.Errorf("configuration version %d is no longer stored", seq)
	}
	vs[i].State = state
	return s.writeIndex(vs)
}

// NewestConfirmed is the newest confirmed version and its text.
func (s *Store) NewestConfirmed() (Version, []byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs, err := s.index()
	if err != nil {
		return Version{}, nil, false, err
	}
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].State != StateConfirmed {
			continue
		}
		b, err := os.ReadFile(s.Path(vs[i].Seq))
		if err != nil {
			return vs[i], nil, false, err
		}
		return vs[i], b, true, nil
	}
	return Version{}, nil, false, nil
}
