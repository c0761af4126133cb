// Package atomicfile writes files so that a reader sees the old content or
// the new content, never a half-written file, and leaves unchanged files
// untouched (same content, same modification time).
package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Result says what WriteIfChanged did.
type Result int

const (
	Unchanged Result = iota // content and mode already matched
	Created                 // the file did not exist
	Updated                 // the content or mode differed
)

func (r Result) String() string {
	switch r {
	case Created:
		return "created"
	case Updated:
		return "updated"
	default:
		return "unchanged"
	}
}

// WriteIfChanged writes data to path with the given mode unless the file
// already holds exactly data with that mode. Parent directories are created
// with mode 0755. The write goes to a temporary file in the same directory,
// is fsynced, then renamed over path, and the directory is fsynced.
func WriteIfChanged(path string, data []byte, mode fs.FileMode) (Result, error) {
	old, err := os.ReadFile(path)
	switch {
	case err == nil:
		st, serr := os.Stat(path)
		if serr == nil && bytes.Equal(old, data) && st.Mode().Perm() == mode.Perm() {
			return Unchanged, nil
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return Unchanged, fmt.Errorf("read %s: %w", path, err)
	}
	res := Updated
	if errors.Is(err, fs.ErrNotExist) {
		res = Created
	}
	if err := Write(path, data, mode); err != nil {
		return Unchanged, err
	}
	return res, nil
}

// Write replaces path with data atomically.
func Write(path string, data []byte, mode fs.FileMode) error {
	return write(path, data, mode, os.Rename)
}

// Create writes path with data atomically unless path exists, in which
// case it leaves it alone and returns an error that matches fs.ErrExist.
// Two writers racing (one with Create, one with Write) never leave a
// mixed file: a reader sees the whole of one or the other.
func Create(path string, data []byte, mode fs.FileMode) error {
	return write(path, data, mode, func(tmp, path string) error {
		err := os.Link(tmp, path)
		os.Remove(tmp)
		return err
	})
}

func write(path string, data []byte, mode fs.FileMode, place func(tmp, path string) error) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".haconf-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// Set the mode before any byte lands, so a secret is never briefly world-readable.
	if err = f.Chmod(mode.Perm()); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = place(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
