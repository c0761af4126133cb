package secretfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		path, want, err string
	}{
		{write("ok", "s3cret-value", 0o600), "s3cret-value", ""},
		{write("owner-only", "s3cret-value", 0o400), "s3cret-value", ""},
		{write("long", strings.Repeat("x", 100), 0o600), strings.Repeat("x", 64), ""},
		{write("group", "s3cret-value", 0o640), "", "mode -rw-r-----: readable by group or others (chmod 600 "},
		{write("world", "s3cret-value", 0o604), "", "readable by group or others"},
		{dir, "", "is not a regular file"},
		{filepath.Join(dir, "missing"), "", "no such file or directory"},
	} {
		got, err := Read(tc.path, 64, 0o600)
		switch {
		case tc.err == "" && (err != nil || string(got) != tc.want):
			t.Errorf("%s: %q, %v; want %q", tc.path, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: err %v; want %q", tc.path, err, tc.err)
		case err != nil && strings.Contains(err.Error(), "s3cret"):
			t.Errorf("%s: the error shows the secret: %v", tc.path, err)
		}
	}
}
