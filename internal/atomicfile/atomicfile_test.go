package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWriteIfChanged(t *testing.T) {
	p := filepath.Join(t.TempDir(), "etc", "x.conf")
	r, err := WriteIfChanged(p, []byte("a\n"), 0o644)
	if err != nil || r != Created {
		t.Fatalf("first write: %v %v", r, err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	r, err = WriteIfChanged(p, []byte("a\n"), 0o644)
	if err != nil || r != Unchanged {
		t.Fatalf("second write: %v %v", r, err)
	}
	st, _ := os.Stat(p)
	if !st.ModTime().Equal(old) {
		t.Fatalf("unchanged write touched mtime")
	}
	r, err = WriteIfChanged(p, []byte("a\n"), 0o600)
	if err != nil || r != Updated {
		t.Fatalf("mode change: %v %v", r, err)
	}
	st, _ = os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v", st.Mode())
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Fatalf("temp files left behind: %v", entries)
	}
}

func TestCreateLeavesAnExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := Create(path, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Create(path, []byte("second"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Create = %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "first" {
		t.Errorf("file = %q", b)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}
