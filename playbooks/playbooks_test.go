package playbooks

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/haconf/haconf/bootstrap"
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
	// The secrets, with the example's fence passwords: installed as root
	// only (the Erlang cookie goes to the rabbitmq user).
	_, noRabbit := user.Lookup("rabbitmq")
	withSecrets := os.Geteuid() == 0 && noRabbit == nil
	if !withSecrets {
		t.Log("not root, or no rabbitmq user: the secrets are not installed")
	}
	secrets, err := bootstrap.GenerateSecrets()
	if err != nil {
		t.Fatal(err)
	}
	secrets.FencePasswords = map[string]string{"ctl1": "bmc-ctl1-pw", "ctl2": "bmc-ctl2-pw"}
	secrets.ComputeFencePasswords = map[string]string{"cmp1": "bmc-cmp1-pw", "cmp2": "bmc-cmp2-pw"}
	secretsFile := filepath.Join(dir, "secrets.yaml")
	os.WriteFile(secretsFile, secrets.Marshal(), 0o600)

	if !withSecrets {
		secretsFile = ""
	}
	play := func(extra ...string) string {
		args := append([]string{"-i", "ctl1,", "-c", "local", "site.yml",
			"-e", "haconf_hosts=ctl1", "-e", "haconf_become=false",
			"-e", "haconf_install_packages=false",
			"-e", "haconf_binary=" + bin, "-e", "haconf_config=" + cfg, "-e", "haconf_secrets=" + secretsFile,
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
	for p, want := range map[string]string{"etc/haconf/ipmi-ctl2.pass": "bmc-ctl2-pw\n", "etc/haconf/ipmi-cmp1.password": "bmc-cmp1-pw\n"} {
		if !withSecrets {
			break
		}
		st, err := os.Stat(filepath.Join(root, p))
		got, _ := os.ReadFile(filepath.Join(root, p))
		if err != nil || st.Mode().Perm() != 0o600 || string(got) != want {
			t.Errorf("fence password %s: %v, %q", p, err, got)
		}
	}
	if strings.Contains(out, "bmc-ctl2-pw") {
		t.Errorf("a fence password is in the playbook's output")
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

// The playbook installs every package bootstrap checks for (preflight
// runs before bootstrap installs anything).
func TestSitePackagesAreBootstraps(t *testing.T) {
	b, err := os.ReadFile("site.yml")
	if err != nil {
		t.Fatal(err)
	}
	var plays []struct {
		Vars struct {
			Packages []string `yaml:"haconf_packages"`
		} `yaml:"vars"`
	}
	if err := yaml.Unmarshal(b, &plays); err != nil || len(plays) == 0 {
		t.Fatalf("site.yml: %v", err)
	}
	for _, p := range bootstrap.Packages {
		if !slices.Contains(plays[0].Vars.Packages, p) {
			t.Errorf("haconf_packages lacks %s (bootstrap.Packages)", p)
		}
	}
}
