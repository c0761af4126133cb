package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"

	"github.com/haconf/haconf/bootstrap"
	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/templates"
)

// debian holds the files written by hand: copyright, lintian overrides,
// haconf-agent's man page.
//
//go:embed debian
var debian embed.FS

const (
	maintainer = "haconf maintainers <maintainers@haconf.invalid>"
	homepage   = "https://github.com/haconf/haconf"
	// ControllerPackage is the package a controller installs besides haconf.
	ControllerPackage = "haconf-controller"
)

// Options says what to build.
type Options struct {
	OutDir  string // where the .deb files go
	Version string // Debian version; "" means from git describe
	Go      string // the go command
	Source  string // the module root
}

// source is what the build stamps: version, commit and dates.
type source struct {
	Version    string
	Commit     string
	CommitTime time.Time // the changelog's date and every file's mtime
	BuildTime  time.Time // haconf version's build date
}

// Build writes haconf_VERSION_amd64.deb and haconf-controller_VERSION_all.deb
// into o.OutDir and returns their paths.
func Build(ctx context.Context, o Options) ([]string, error) {
	if o.Go == "" {
		o.Go = "go"
	}
	if o.Source == "" {
		o.Source = "."
	}
	src, err := describe(ctx, o)
	if err != nil {
		return nil, err
	}
	stage, err := os.MkdirTemp("", "haconf-deb-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage)
	root := filepath.Join(stage, "root")
	if err := stageFiles(ctx, o, src, stage, root); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	// Only this build's packages in OutDir, so that
	// apt install ./dist/haconf_*.deb names one version.
	for _, glob := range []string{"haconf_*.deb", ControllerPackage + "_*.deb"} {
		old, _ := filepath.Glob(filepath.Join(o.OutDir, glob))
		for _, p := range old {
			if err := os.Remove(p); err != nil {
				return nil, err
			}
		}
	}
	haconf, err := contents(root, src.CommitTime)
	if err != nil {
		return nil, err
	}
	controller, err := controllerDocs(stage, src)
	if err != nil {
		return nil, err
	}
	scripts := nfpm.Scripts{PostInstall: filepath.Join(stage, "haconf.postinst"), PostRemove: filepath.Join(stage, "haconf.postrm")}
	var out []string
	for _, info := range []*nfpm.Info{haconfInfo(src, haconf, scripts), controllerInfo(src, controller)} {
		p, err := writeDeb(o.OutDir, info)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// describe reads the version, the commit and its time from git, and the
// build time from SOURCE_DATE_EPOCH (reproducible builds) or the clock.
func describe(ctx context.Context, o Options) (source, error) {
	run := func(args ...string) (string, error) {
		// safe.directory: the tree may belong to another user than the
		// one building it (root in CI); it is the tree being built and
		// run anyway, so trusting its git metadata adds no risk.
		out, err := runner.Exec{}.Run(ctx, "git", append([]string{"-c", "safe.directory=*", "-C", o.Source}, args...)...)
		return strings.TrimSpace(string(out)), err
	}
	s := source{Version: o.Version, BuildTime: time.Now().UTC().Truncate(time.Second)}
	if s.Version != "" && !debianVersionRE.MatchString(s.Version) {
		return s, fmt.Errorf("-version %q: not a Debian version without revision (digits first; letters, digits, . + ~)", s.Version)
	}
	if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
		sec, err := strconv.ParseInt(e, 10, 64)
		if err != nil {
			return s, fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", e, err)
		}
		s.BuildTime = time.Unix(sec, 0).UTC()
	}
	commit, err := run("rev-parse", "HEAD")
	if err != nil {
		if s.Version == "" {
			return s, fmt.Errorf("no version: %w (not a git checkout? pass -version)", err)
		}
		s.Commit, s.CommitTime = "unknown", s.BuildTime
		return s, nil
	}
	s.Commit = commit
	ct, err := run("log", "-1", "--format=%ct", "HEAD")
	if err != nil {
		return s, err
	}
	sec, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return s, fmt.Errorf("commit time %q: %w", ct, err)
	}
	s.CommitTime = time.Unix(sec, 0).UTC()
	if s.Version == "" {
		d, err := run("describe", "--tags", "--always", "--dirty", "--match", "v[0-9]*")
		if err != nil {
			return s, err
		}
		if s.Version, err = DebianVersion(d, s.CommitTime); err != nil {
			return s, err
		}
	}
	return s, nil
}

// stageFiles builds the binaries and the documentation and lays out
// haconf's package under root, as it is installed.
func stageFiles(ctx context.Context, o Options, src source, stage, root string) error {
	goCmd := func(args ...string) error {
		_, err := runner.Exec{Timeout: 10 * time.Minute}.RunCmd(ctx, runner.Cmd{Name: o.Go, Args: args, Dir: o.Source,
			// Static binaries: the package depends on no libc version.
			Env: []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"}})
		return err
	}
	bin := filepath.Join(root, "usr/bin")
	ldflags := strings.Join([]string{"-s -w",
		"-X main.version=" + src.Version,
		"-X main.commit=" + src.Commit,
		"-X main.date=" + src.BuildTime.Format(time.RFC3339),
		// The package's haconf renders exactly the files the package ships.
		"-X github.com/haconf/haconf/templates.layout=deb",
	}, " ")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	if err := goCmd("build", "-trimpath", "-ldflags", ldflags, "-o", bin+"/", "./cmd/haconf", "./cmd/haconf-agent"); err != nil {
		return fmt.Errorf("build the binaries: %w", err)
	}
	docs := filepath.Join(stage, "docs")
	if err := goCmd("run", "-tags", "gendocs", "./cmd/haconf", "-version", src.Version,
		"-date", src.CommitTime.Format(time.DateOnly), docs); err != nil {
		return fmt.Errorf("generate man pages and completions: %w", err)
	}

	pkgFiles, err := templates.PackageFiles()
	if err != nil {
		return err
	}
	for _, f := range pkgFiles {
		if err := writeFile(filepath.Join(root, f.Path), f.Content, f.Mode); err != nil {
			return err
		}
	}
	// Completions where Debian's bash-completion, zsh and fish look.
	for from, to := range map[string]string{
		"bash-completion/completions/haconf":    "usr/share/bash-completion/completions/haconf",
		"zsh/vendor-completions/_haconf":        "usr/share/zsh/vendor-completions/_haconf",
		"fish/vendor_completions.d/haconf.fish": "usr/share/fish/vendor_completions.d/haconf.fish",
	} {
		b, err := os.ReadFile(filepath.Join(docs, from))
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(root, to), b, 0o644); err != nil {
			return err
		}
	}
	// Man pages, compressed as Debian policy wants.
	man := filepath.Join(root, "usr/share/man/man8")
	pages, err := filepath.Glob(filepath.Join(docs, "man8", "*.8"))
	if err != nil {
		return err
	}
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(man, filepath.Base(p)+".gz"), gzipped(b), 0o644); err != nil {
			return err
		}
	}
	agentPage, err := debian.ReadFile("debian/haconf-agent.8")
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(man, "haconf-agent.8.gz"), gzipped(agentPage), 0o644); err != nil {
		return err
	}

	doc := filepath.Join(root, "usr/share/doc/haconf")
	if err := writeDocs(doc, "haconf", src); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(doc, "examples/haconf.yaml"), config.Example(), 0o644); err != nil {
		return err
	}
	overrides, err := debian.ReadFile("debian/haconf.lintian-overrides")
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(root, "usr/share/lintian/overrides/haconf"), overrides, 0o644); err != nil {
		return err
	}
	// The maintainer scripts, outside root: nfpm puts them in the control archive.
	for _, s := range []string{"haconf.postinst", "haconf.postrm"} {
		b, err := debian.ReadFile("debian/" + s)
		if err != nil {
			return err
		}
		if err := writeFile(filepath.Join(stage, s), b, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// writeDocs writes the copyright file and the changelog every Debian
// package carries in /usr/share/doc/PACKAGE.
func writeDocs(dir, pkg string, src source) error {
	copyright, err := debian.ReadFile("debian/copyright")
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "copyright"), copyright, 0o644); err != nil {
		return err
	}
	// A native package (no Debian revision) has changelog.gz.
	return writeFile(filepath.Join(dir, "changelog.gz"), gzipped([]byte(changelog(pkg, src))), 0o644)
}

// changelog is a one-entry Debian changelog: the package is built from a
// commit, whose history is the changelog.
func changelog(pkg string, src source) string {
	return fmt.Sprintf(`%s (%s) unstable; urgency=medium

  * Built from commit %s
    of %s: the changes are its git history.

 -- %s  %s
`, pkg, src.Version, src.Commit, homepage, maintainer, src.CommitTime.Format(time.RFC1123Z))
}

// controllerDocs stages haconf-controller's files: its documentation only.
func controllerDocs(stage string, src source) (files.Contents, error) {
	root := filepath.Join(stage, "controller")
	if err := writeDocs(filepath.Join(root, "usr/share/doc", ControllerPackage), ControllerPackage, src); err != nil {
		return nil, err
	}
	return contents(root, src.CommitTime)
}

// contents lists every regular file under root for nfpm, owned by root,
// with its mode and the given mtime.
func contents(root string, mtime time.Time) (files.Contents, error) {
	var out files.Contents
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		out = append(out, &files.Content{
			Source:      p,
			Destination: "/" + filepath.ToSlash(rel),
			FileInfo:    &files.ContentFileInfo{Owner: "root", Group: "root", Mode: info.Mode().Perm(), MTime: mtime},
		})
		return nil
	})
	return out, err
}

const description = `highly available OpenStack controller pair on DRBD and Pacemaker
 haconf makes two OpenStack controllers a highly available active/passive
 pair on DRBD, Corosync and Pacemaker with fencing, and keeps it healthy:
 MariaDB on DRBD, RabbitMQ, the API virtual IP behind haproxy, split-brain
 resolution that never loses a write, and backups proven by restore.`

// info is what both packages share: version, section, maintainer.
func info(src source, name, arch, description string) *nfpm.Info {
	return &nfpm.Info{
		Name:          name,
		Arch:          arch,
		Version:       src.Version,
		VersionSchema: "none",
		Section:       "admin",
		Priority:      "optional",
		Maintainer:    maintainer,
		Homepage:      homepage,
		MTime:         src.CommitTime,
		Description:   description,
	}
}

func haconfInfo(src source, c files.Contents, scripts nfpm.Scripts) *nfpm.Info {
	i := info(src, "haconf", "amd64", description+`
 .
 This package holds the haconf and haconf-agent commands, haconf's
 Pacemaker resource agents (ocf:haconf:*), its DRBD fence-peer handler and
 the watchdog's systemd unit (started by haconf bootstrap), with man pages
 and shell completions. On a controller, install haconf-controller too.`)
	i.Overridables = nfpm.Overridables{Suggests: []string{ControllerPackage}, Contents: c, Scripts: scripts}
	return i
}

func controllerInfo(src source, c files.Contents) *nfpm.Info {
	i := info(src, ControllerPackage, "all", strings.Replace(description, "highly available OpenStack controller pair", "haconf controller metapackage: the cluster stack", 1)+`
 .
 This metapackage depends on what haconf bootstrap needs on a controller (the
 packages its preflight checks): Corosync, Pacemaker, DRBD's tools, the
 resource and fence agents, MariaDB, RabbitMQ, haproxy and LVM. Compute
 hosts install haconf alone.`)
	i.Overridables = nfpm.Overridables{
		Depends:  append([]string{fmt.Sprintf("haconf (= %s)", src.Version)}, bootstrap.Packages...),
		Suggests: []string{"sbd", "ipmitool"},
		Contents: c,
	}
	return i
}

// writeDeb writes info's package into dir as NAME_VERSION_ARCH.deb.
func writeDeb(dir string, info *nfpm.Info) (string, error) {
	info = nfpm.WithDefaults(info)
	if err := nfpm.Validate(info); err != nil {
		return "", fmt.Errorf("%s: %w", info.Name, err)
	}
	name := deb.Default.ConventionalFileName(info)
	p := filepath.Join(dir, name)
	var b bytes.Buffer
	if err := deb.Default.Package(info, &b); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		return "", err
	}
	return p, nil
}

func writeFile(p string, b []byte, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(p, b, mode); err != nil {
		return err
	}
	return os.Chmod(p, mode) // WriteFile's mode is under the umask
}

// gzipped is b compressed as gzip -9n does: no name, no timestamp.
func gzipped(b []byte) []byte {
	var out bytes.Buffer
	w, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	w.Write(b)
	w.Close()
	return out.Bytes()
}
