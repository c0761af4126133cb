package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/internal/testenv"
	"github.com/haconf/haconf/templates"
)

// TestDebianPackage builds both packages as make deb does, runs lintian on
// them (no error, no warning: what cannot be fixed is overridden with its
// reason in debian/haconf.lintian-overrides), installs them with dpkg into
// an empty root, runs the installed binaries, and has the installed haconf
// render a configuration over that root: dpkg --verify then proves it left
// every file the package ships as it was.
func TestDebianPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Debian packages (go build, lintian, dpkg): not in -short")
	}
	testenv.RequireCommands(t, "git", "dpkg", "dpkg-deb", "lintian")
	testenv.RequireRoot(t) // dpkg installs files owned by root, even into another root
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := runner.Exec{Timeout: 3 * time.Minute}.Run(ctx, name, args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return string(out)
	}

	start := time.Now()
	debs, err := Build(ctx, Options{OutDir: t.TempDir(), Source: ".."})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built %v in %v", debs, time.Since(start).Round(time.Millisecond))
	if len(debs) != 2 || !strings.HasSuffix(debs[0], "_amd64.deb") || !strings.HasSuffix(debs[1], "_all.deb") {
		t.Fatalf("packages %v: want haconf_*_amd64.deb and haconf-controller_*_all.deb", debs)
	}
	version := run("dpkg-deb", "--field", debs[0], "Version")
	version = strings.TrimSpace(version)
	if want := "haconf_" + version + "_amd64.deb"; filepath.Base(debs[0]) != want {
		t.Errorf("package file %s, want %s", filepath.Base(debs[0]), want)
	}
	depends := run("dpkg-deb", "--field", debs[1], "Depends")
	for _, p := range []string{"haconf (= " + version + ")", "pacemaker", "corosync", "drbd-utils", "fence-agents"} {
		if !strings.Contains(depends, p) {
			t.Errorf("haconf-controller's Depends lacks %s: %s", p, depends)
		}
	}

	start = time.Now()
	// lintian warns when run as root (as CI runs it); its findings go to stdout.
	run("lintian", append([]string{"--fail-on", "error,warning"}, debs...)...)
	t.Logf("lintian: no error, no warning, in %v", time.Since(start).Round(time.Millisecond))

	// An empty root with dpkg's database: only what the packages bring.
	// The cluster stack is not there (--force-depends); the maintainer
	// scripts run outside a chroot with DPKG_ROOT set, and do nothing then.
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dpkg := func(args ...string) string {
		t.Helper()
		return run("dpkg", append([]string{"--root=" + root, "--force-depends", "--force-script-chrootless"}, args...)...)
	}
	dpkg(append([]string{"--install"}, debs...)...)
	for _, p := range []string{"haconf", ControllerPackage} {
		if s := dpkg("--status", p); !strings.Contains(s, "Status: install ok installed") {
			t.Errorf("%s is not installed:\n%s", p, s)
		}
	}
	installed := dpkg("--listfiles", "haconf")
	for _, f := range []string{
		"/usr/bin/haconf", "/usr/bin/haconf-agent",
		"/usr/lib/ocf/resource.d/haconf/drbd", "/usr/lib/ocf/resource.d/haconf/fs",
		"/usr/lib/ocf/resource.d/haconf/mariadb", "/usr/lib/ocf/resource.d/haconf/rabbitmq",
		"/usr/lib/ocf/resource.d/haconf/vip", "/usr/lib/drbd/haconf-fence-peer",
		"/lib/systemd/system/haconf-watchdog.service",
		"/lib/systemd/system/haconf-compute-agent.service",
		"/usr/share/man/man8/haconf.8.gz", "/usr/share/man/man8/haconf-watchdog.8.gz", "/usr/share/man/man8/haconf-agent.8.gz",
		"/usr/share/bash-completion/completions/haconf", "/usr/share/zsh/vendor-completions/_haconf",
		"/usr/share/fish/vendor_completions.d/haconf.fish",
		"/usr/share/doc/haconf/examples/haconf.yaml", "/usr/share/doc/haconf/copyright", "/usr/share/doc/haconf/changelog.gz",
	} {
		if !strings.Contains(installed, f+"\n") {
			t.Errorf("the package does not install %s", f)
		}
	}
	if strings.Contains(installed, "haconf-lab") {
		t.Errorf("the package installs the lab:\n%s", installed)
	}

	// The installed haconf says which version, commit and date it was built from.
	out := run(filepath.Join(root, "usr/bin/haconf"), "version", "-o", "json")
	var v struct {
		Version   string `json:"version"`
		Commit    string `json:"commit"`
		BuildDate string `json:"build_date"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("haconf version -o json: %v\n%s", err, out)
	}
	head := strings.TrimSpace(run("git", "-c", "safe.directory=*", "-C", "..", "rev-parse", "HEAD"))
	if v.Version != version || v.Commit != head || v.BuildDate == "" {
		t.Errorf("installed haconf version: %+v; want version %s, commit %s and a build date", v, version, head)
	}
	if out := run(filepath.Join(root, "usr/bin/haconf-agent"), "ocf", "vip", "meta-data"); !strings.Contains(out, `<resource-agent name="vip"`) {
		t.Errorf("installed haconf-agent ocf vip meta-data:\n%s", out)
	}
	example, err := os.ReadFile(filepath.Join(root, "usr/share/doc/haconf/examples/haconf.yaml"))
	if err != nil || string(example) != string(config.Example()) {
		t.Errorf("the example haconf.yaml differs from haconf config example (%v)", err)
	}

	// The installed haconf renders into the root exactly the files the
	// package installed there (and the rest of the controller's files):
	// dpkg finds every file of the package as it installed it.
	cfg := filepath.Join(t.TempDir(), "haconf.yaml")
	if err := os.WriteFile(cfg, example, 0o600); err != nil {
		t.Fatal(err)
	}
	run(filepath.Join(root, "usr/bin/haconf"), "render", "-c", cfg, "--node", "ctl1", "--drbd-version", "8.4", "--root", root)
	if out := dpkg("--verify", "haconf"); out != "" {
		t.Errorf("haconf render changed files the package installed:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/drbd.d/r0.res")); err != nil {
		t.Errorf("haconf render wrote no DRBD resource into the root: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/systemd/system/haconf-watchdog.service")); err == nil {
		t.Error("the installed haconf renders a second watchdog unit into /etc/systemd/system, over the package's")
	}
	pkg, err := templates.PackageFiles()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range pkg {
		b, err := os.ReadFile(filepath.Join(root, f.Path))
		if err != nil || string(b) != string(f.Content) {
			t.Errorf("installed /%s differs from templates.PackageFiles (%v)", f.Path, err)
		}
	}
}
