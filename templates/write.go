package templates

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/aymanbagabas/go-udiff"

	"github.com/haconf/haconf/internal/atomicfile"
)

// Change is what writing one file under a root does (or would do).
type Change struct {
	File   File
	Action atomicfile.Result // Created, Updated or Unchanged
	// Diff is a unified diff from the file on disk to the rendered file
	// ("" when unchanged).
	Diff string
	// ModeOnly is true when only the permission bits differ.
	ModeOnly bool
	OldMode  fs.FileMode
}

// Under joins a relative rendered path to root, refusing paths that escape it.
func Under(root, rel string) (string, error) {
	if filepath.IsAbs(rel) || strings.HasPrefix(filepath.Clean(rel), "..") {
		return "", fmt.Errorf("rendered path %q must be relative to the root", rel)
	}
	return filepath.Join(root, rel), nil
}

// Plan compares every file with what is under root and changes nothing.
func Plan(root string, files []File) ([]Change, error) {
	var out []Change
	for _, f := range files {
		p, err := Under(root, f.Path)
		if err != nil {
			return nil, err
		}
		c := Change{File: f}
		old, err := os.ReadFile(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			c.Action = atomicfile.Created
			c.Diff = udiff.Unified("/dev/null", "/"+f.Path, "", string(f.Content))
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", p, err)
		default:
			st, err := os.Stat(p)
			if err != nil {
				return nil, err
			}
			c.OldMode = st.Mode().Perm()
			if !bytes.Equal(old, f.Content) {
				c.Action = atomicfile.Updated
				c.Diff = udiff.Unified("/"+f.Path, "/"+f.Path, string(old), string(f.Content))
			} else if c.OldMode != f.Mode.Perm() {
				c.Action = atomicfile.Updated
				c.ModeOnly = true
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// Write writes every file under root atomically, only those whose content
// or mode differ; unchanged files keep their modification time.
func Write(root string, files []File) ([]Change, error) {
	plan, err := Plan(root, files)
	if err != nil {
		return nil, err
	}
	for i, c := range plan {
		if c.Action == atomicfile.Unchanged {
			continue
		}
		p, _ := Under(root, c.File.Path)
		res, err := atomicfile.WriteIfChanged(p, c.File.Content, c.File.Mode)
		if err != nil {
			return plan[:i], err
		}
		plan[i].Action = res
	}
	return plan, nil
}
