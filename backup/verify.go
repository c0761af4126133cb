package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrCorrupt means a backup file is missing or does not match its checksum.
var ErrCorrupt = errors.New("backup is corrupt")

// Problem is one damaged file.
type Problem struct {
	Backup string `json:"backup"`
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

func (p Problem) String() string { return p.Backup + "/" + p.Path + ": " + p.Reason }

// Verify re-reads every file of backup id and compares its size and SHA-256
// with the manifest, and the manifest with its own checksum. It returns the
// damaged files (none means the backup is intact); a manifest that is
// missing, truncated, edited or unparsable is one problem and its files are
// not read. The error is for a repository that cannot be read at all.
func (r Repository) Verify(ctx context.Context, id string) ([]Problem, error) {
	m, err := r.Load(id)
	switch {
	case errors.Is(err, ErrNotFound):
		return []Problem{{id, manifestName, "missing"}}, nil
	case errors.Is(err, ErrCorrupt):
		return []Problem{{id, manifestName, strings.TrimPrefix(err.Error(), ErrCorrupt.Error()+": "+id+": ")}}, nil
	case err != nil:
		return nil, fmt.Errorf("verify %s: %w", id, err)
	}
	return r.verifyFiles(ctx, m)
}

// verifyFiles checks every file of m against its manifest entry.
func (r Repository) verifyFiles(ctx context.Context, m *Manifest) ([]Problem, error) {
	var problems []Problem
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return problems, err
		}
		if p := checkFile(r.Path(m.ID, f.Path), f); p != "" {
			problems = append(problems, Problem{m.ID, f.Path, p})
		}
	}
	return problems, nil
}

// checkFile returns why the file at path does not match f, or "".
func checkFile(path string, f FileInfo) string {
	fh, err := os.Open(path)
	return checkOpened(fh, err, f)
}

// checkOpened returns why the file opened (open's result, locally or on a
// copy target) does not match f, or "", and closes it.
func checkOpened(fh io.ReadCloser, err error, f FileInfo) string {
	if errors.Is(err, fs.ErrNotExist) {
		return "missing"
	}
	if err != nil {
		return err.Error()
	}
	defer fh.Close()
	h := sha256.New()
	n, err := io.Copy(h, fh)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	return compareFile(n, hex.EncodeToString(h.Sum(nil)), f)
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// relPath builds a slash-separated path inside a backup from untrusted
// names (database and table names may hold any character).
func relPath(parts ...string) string {
	esc := make([]string, len(parts))
	for i, p := range parts {
		esc[i] = escapeName(p)
	}
	return filepath.ToSlash(filepath.Join(esc...))
}

// escapeName makes s safe as one path element: letters, digits, '_', '-'
// and '.' stay (but not a leading '.'), everything else becomes %XX.
func escapeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
