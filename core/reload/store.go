package reload

import (
	"encoding/json"
	"fmt"
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
	return writeAtomic(filepath.Join(s.dir, "index.json"), append(b, '\n'))
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
	if err := writeAtomic(s.Path(v.Seq), text); err != nil {
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

// writeAtomic replaces path with data: a temporary file beside it is
// written and synced, renamed over path, and the directory synced so the
// rename itself survives a power cut.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o600)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
