// Package secretfile reads the files secrets live in (keys, tokens,
// passwords): a regular file that neither group nor others can read, of a
// bounded size. Its errors name the file and its mode, never the content.
package secretfile

import (
	"fmt"
	"io"
	"os"
)

// Read returns the content of the secret file at path, at most max bytes.
// It refuses anything but a regular file, and a file whose mode lets group
// or others read it (the error says to chmod it to fix).
func Read(path string, max int64, fix os.FileMode) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: mode %v: readable by group or others (chmod %o %s)", path, st.Mode().Perm(), fix, path)
	}
	return io.ReadAll(io.LimitReader(f, max))
}
