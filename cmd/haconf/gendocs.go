//go:build gendocs

// With -tags gendocs this package builds a documentation generator instead
// of haconf: it writes the man pages and the shell completions of haconf's
// command tree, for the Debian package (go run ./packaging). haconf itself
// does not carry the generator.
//
//	go build -tags gendocs -o gendocs ./cmd/haconf
//	gendocs -version 1.0.0 -date 2026-12-06 DIR
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra/doc"
)

// The paths under DIR, as Debian's bash-completion, zsh and fish look for them.
const (
	manDir  = "man8"
	bashOut = "bash-completion/completions/haconf"
	zshOut  = "zsh/vendor-completions/_haconf"
	fishOut = "fish/vendor_completions.d/haconf.fish"
)

func main() {
	fs := flag.NewFlagSet("gendocs", flag.ExitOnError)
	ver := fs.String("version", version, "the version the man pages name")
	day := fs.String("date", time.Now().UTC().Format(time.DateOnly), "the date the man pages carry (YYYY-MM-DD)")
	fs.Parse(os.Args[1:])
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: gendocs [-version V] [-date YYYY-MM-DD] DIR")
		os.Exit(2)
	}
	if err := generate(fs.Arg(0), *ver, *day); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

// generate writes under dir man8/haconf*.8 (one page per command) and the
// bash, zsh and fish completions.
func generate(dir, ver, day string) error {
	d, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return err
	}
	root := newRootCmd(io.Discard, io.Discard)
	root.DisableAutoGenTag = true // no generation date in the pages: reproducible
	if err := os.MkdirAll(filepath.Join(dir, manDir), 0o755); err != nil {
		return err
	}
	header := &doc.GenManHeader{Section: "8", Date: &d, Source: "haconf " + ver, Manual: "haconf manual"}
	if err := doc.GenManTree(root, header, filepath.Join(dir, manDir)); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	for path, gen := range map[string]func(io.Writer) error{
		bashOut: func(w io.Writer) error { return root.GenBashCompletionV2(w, true) },
		zshOut:  root.GenZshCompletion,
		fishOut: func(w io.Writer) error { return root.GenFishCompletion(w, true) },
	} {
		if err := writeFile(filepath.Join(dir, path), gen); err != nil {
			return fmt.Errorf("completion %s: %w", path, err)
		}
	}
	return nil
}

func writeFile(path string, gen func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := gen(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
