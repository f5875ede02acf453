// Package atomicfile replaces a file so that a crash or a power cut leaves
// either the old content or the new, never half of it: the plugins' state,
// stored configurations and generated certificates all need that.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces path with data, with mode: a temporary file beside it is
// written and synced, renamed over path, and the directory synced so the
// rename itself survives a power cut.
func Write(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
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
