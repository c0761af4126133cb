package playbooks

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/testenv"
)

// TestSiteRunsAndIsIdempotent runs site.yml for real against localhost into
// a scratch root: the first run renders every file, the second reports no
// change at all (ha_cluster's top complaint is a role that is not idempotent).
func TestSiteRunsAndIsIdempotent(t *testing.T) {
	testenv.RequireCommands(t, "ansible-playbook", "go")
	dir := t.TempDir()
	bin := filepath.Join(dir, "haconf")
	build := exec.Command("go", "build", "-o", dir+"/", "../cmd/haconf", "../cmd/haconf-agent")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build haconf and haconf-agent: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "haconf.yaml")
	os.WriteFile(cfg, config.Example(), 0o600)
	root := filepath.Join(dir, "root")
	os.MkdirAll(root, 0o755)

	play := func(extra ...string) string {
		args := append([]string{"-i", "ctl1,", "-c", "local", "site.yml",
			"-e", "haconf_hosts=ctl1", "-e", "haconf_become=false",
			"-e", "haconf_install_packages=false",
			"-e", "haconf_binary=" + bin, "-e", "haconf_config=" + cfg,
			"-e", "haconf_root=" + root, "-e", "haconf_node=ctl1"}, extra...)
		cmd := exec.Command("ansible-playbook", args...)
		cmd.Env = append(os.Environ(), "ANSIBLE_NOCOLOR=1", "ANSIBLE_HOST_KEY_CHECKING=False",
			"ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"), "ANSIBLE_PYTHON_INTERPRETER=auto_silent")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ansible-playbook %v: %v\n%s", extra, err, out)
		}
		return string(out)
	}
	recap := regexp.MustCompile(`ctl1\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=0\s+failed=0`)

	// Check mode on an empty root: shows the plan, writes nothing.
	play("--check", "--diff")
	if _, err := os.Stat(filepath.Join(root, "etc/corosync/corosync.conf")); err == nil {
		t.Fatal("check mode wrote a file")
	}
	out := play()
	if m := recap.FindStringSubmatch(out); m == nil || m[2] == "0" {
		t.Fatalf("first run changed nothing:\n%s", out)
	}
	for _, f := range []string{"etc/corosync/corosync.conf", "etc/haconf/cib.xml", "etc/drbd.d/r0.res", "usr/local/bin/haconf", "usr/local/bin/haconf-agent", "usr/lib/drbd/haconf-fence-peer"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("first run did not create %s", f)
		}
	}
	out = play()
	if m := recap.FindStringSubmatch(out); m == nil || m[2] != "0" {
		t.Fatalf("second run is not idempotent:\n%s", out)
	}
	if !strings.Contains(out, "Render the cluster files") {
		t.Fatalf("render task did not run:\n%s", out)
	}
}

func TestSiteSyntax(t *testing.T) {
	testenv.RequireCommands(t, "ansible-playbook")
	out, err := exec.Command("ansible-playbook", "--syntax-check", "-i", "inventory.example.ini", "site.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("syntax check: %v\n%s", err, out)
	}
}

func TestSiteLint(t *testing.T) {
	testenv.RequireCommands(t, "ansible-lint")
	cmd := exec.Command("ansible-lint", "--offline", "--nocolor", "site.yml")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ansible-lint: %v\n%s", err, out)
	}
}
