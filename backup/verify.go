package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
// damaged files (none means the backup is intact).
func (r Repository) Verify(ctx context.Context, id string) ([]Problem, error) {
	var problems []Problem
	mpath := r.Path(id, manifestName)
	data, err := os.ReadFile(mpath)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", id, err)
	}
	sumFile, err := os.ReadFile(mpath + ".sha256")
	if err != nil {
		problems = append(problems, Problem{id, manifestName + ".sha256", "missing"})
	} else if want, _, _ := strings.Cut(string(sumFile), " "); want != sha256hex(data) {
		problems = append(problems, Problem{id, manifestName, "sha256 does not match manifest.json.sha256"})
		return problems, nil
	}
	m, err := r.Load(id)
	if err != nil {
		problems = append(problems, Problem{id, manifestName, err.Error()})
		return problems, nil
	}
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return problems, err
		}
		if p := checkFile(r.Path(id, f.Path), f); p != "" {
			problems = append(problems, Problem{id, f.Path, p})
		}
	}
	return problems, nil
}

// checkFile returns why the file at path does not match f, or "".
func checkFile(path string, f FileInfo) string {
	fh, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "missing"
		}
		return err.Error()
	}
	defer fh.Close()
	h := sha256.New()
	n, err := io.Copy(h, fh)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	if n != f.Size {
		return fmt.Sprintf("size %d, manifest says %d", n, f.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return fmt.Sprintf("sha256 %s, manifest says %s", got, f.SHA256)
	}
	return ""
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
