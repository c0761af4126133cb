package templates

// These tests run the real tools on rendered output: drbdadm (8.4 and 9
// parsers), corosync -t, crm_verify, haproxy -c and crm_simulate. Missing
// tools skip locally and fail in CI (internal/testenv).

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/internal/testenv"
	"github.com/haconf/haconf/pacemaker"
)

func renderTo(t *testing.T, c renderCase) (string, []File) {
	t.Helper()
	_, files := loadCase(t, c)
	root := t.TempDir()
	if _, err := Write(root, files); err != nil {
		t.Fatal(err)
	}
	return root, files
}

func run(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(append(os.Environ(), "LC_ALL=C"), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestDRBDAdmAcceptsRenderedResource(t *testing.T) {
	testenv.RequireCommands(t, "drbdadm")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, _ := loadCase(t, c)
			root, _ := renderTo(t, c)
			res := filepath.Join(root, "etc/drbd.d", cfg.DRBD.Resource+".res")
			driver := map[string]string{"8.4": "8.4.11", "9": "9.2.0"}[c.drbd]
			for _, n := range cfg.Nodes {
				env := []string{"__DRBD_NODE__=" + n.Name, "DRBD_DRIVER_VERSION_OVERRIDE=" + driver}
				out, err := run(t, env, "drbdadm", "-c", res, "dump", cfg.DRBD.Resource)
				if err != nil {
					t.Fatalf("drbdadm (DRBD %s) rejected the file for %s: %v\n%s", driver, n.Name, err, out)
				}
				if !strings.Contains(out, "resource "+cfg.DRBD.Resource) || !strings.Contains(out, n.Storage+":") {
					t.Fatalf("drbdadm dump lacks the resource or %s's storage address:\n%s", n.Name, out)
				}
				// The commands bring-up would run parse too.
				if out, err := run(t, env, "drbdadm", "-c", res, "-d", "up", cfg.DRBD.Resource); err != nil {
					t.Fatalf("drbdadm -d up: %v\n%s", err, out)
				}
			}
			// The other syntax's parser must not silently accept it when they differ:
			// DRBD 9's parser rejects 8.4's disk-section fencing.
			if c.drbd == "8.4" {
				env := []string{"__DRBD_NODE__=" + cfg.Nodes[0].Name, "DRBD_DRIVER_VERSION_OVERRIDE=9.2.0"}
				out, err := run(t, env, "drbdadm", "-c", res, "dump", cfg.DRBD.Resource)
				if exitCode(err) != 10 {
					t.Fatalf("DRBD 9 parser accepted 8.4 syntax (exit %d):\n%s", exitCode(err), out)
				}
			}
		})
	}
}

func TestDRBDAdmRejectsBrokenFile(t *testing.T) {
	testenv.RequireCommands(t, "drbdadm")
	root, _ := renderTo(t, cases[1])
	res := filepath.Join(root, "etc/drbd.d/r0.res")
	b, _ := os.ReadFile(res)
	os.WriteFile(res, []byte(strings.Replace(string(b), "protocol C;", "protocol Q;", 1)), 0o644)
	out, err := run(t, []string{"__DRBD_NODE__=ctl1", "DRBD_DRIVER_VERSION_OVERRIDE=9.2.0"}, "drbdadm", "-c", res, "dump", "r0")
	if exitCode(err) != 10 || !strings.Contains(out, res+":") {
		t.Fatalf("broken file: exit %d, output %s", exitCode(err), out)
	}
}

// corosync -t needs the authkey in /etc/corosync and a hostname equal to a
// node name: run it in private mount and UTS namespaces.
func TestCorosyncAcceptsRenderedConfig(t *testing.T) {
	testenv.RequireCommands(t, "corosync", "unshare")
	testenv.RequireRoot(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, _ := loadCase(t, c)
			root, _ := renderTo(t, c)
			dir := filepath.Join(root, "etc/corosync")
			key := make([]byte, 256)
			rand.Read(key)
			if err := os.WriteFile(filepath.Join(dir, "authkey"), key, 0o400); err != nil {
				t.Fatal(err)
			}
			for _, n := range cfg.Nodes {
				out, err := run(t, nil, "unshare", "--mount", "--uts", "--", "sh", "-c",
					`mount --make-rprivate / && mount --bind "$1" /etc/corosync && hostname "$2" && exec corosync -t`,
					"sh", dir, n.Name)
				if err != nil {
					t.Fatalf("corosync -t as %s: %v\n%s", n.Name, err, out)
				}
			}
		})
	}
}

func TestCorosyncRejectsBrokenConfig(t *testing.T) {
	testenv.RequireCommands(t, "corosync", "unshare")
	testenv.RequireRoot(t)
	root, _ := renderTo(t, cases[0])
	dir := filepath.Join(root, "etc/corosync")
	os.WriteFile(filepath.Join(dir, "authkey"), make([]byte, 256), 0o400)
	p := filepath.Join(dir, "corosync.conf")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(b), "link_mode: passive", "link_mode: sideways", 1)), 0o644)
	out, err := run(t, nil, "unshare", "--mount", "--uts", "--", "sh", "-c",
		`mount --make-rprivate / && mount --bind "$1" /etc/corosync && hostname ctl1 && exec corosync -t`, "sh", dir)
	if exitCode(err) != 8 || !strings.Contains(out, "sideways") {
		t.Fatalf("broken config: exit %d\n%s", exitCode(err), out)
	}
}

var statusElement = regexp.MustCompile(`\s*<status/>`)

func TestCrmVerifyAcceptsRenderedCIB(t *testing.T) {
	testenv.RequireCommands(t, "crm_verify")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root, _ := renderTo(t, c)
			p := filepath.Join(root, "etc/haconf/cib.xml")
			b, _ := os.ReadFile(p)
			// Config-only check: without <status> crm_verify does not warn
			// about nodes it has never seen.
			cfgOnly := filepath.Join(t.TempDir(), "cib-config.xml")
			os.WriteFile(cfgOnly, statusElement.ReplaceAll(b, nil), 0o600)
			out, err := run(t, nil, "crm_verify", "-V", "-x", cfgOnly)
			if err != nil || strings.TrimSpace(out) != "" {
				t.Fatalf("crm_verify: %v\n%s", err, out)
			}
		})
	}
}

func TestHaproxyAcceptsRenderedConfig(t *testing.T) {
	testenv.RequireCommands(t, "haproxy")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root, _ := renderTo(t, c)
			out, err := run(t, nil, "haproxy", "-c", "-f", filepath.Join(root, "etc/haproxy/haproxy.cfg"))
			if err != nil || !strings.Contains(out, "Configuration file is valid") {
				t.Fatalf("haproxy -c: %v\n%s", err, out)
			}
		})
	}
}

// TestCrmSimulateFailover starts the rendered CIB on both nodes, lets it
// settle, fails the active node and checks that the node is fenced and every
// service, and the DRBD promotion, end up on the other node.
func TestCrmSimulateFailover(t *testing.T) {
	testenv.RequireCommands(t, "crm_simulate", "crm_attribute", "crm_mon")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, files := loadCase(t, c)
			var cib []byte
			for _, f := range files {
				if f.Path == "etc/haconf/cib.xml" {
					cib = f.Content
				}
			}
			ctx := context.Background()
			sim := &pacemaker.Simulator{R: runner.Exec{}, Dir: t.TempDir()}
			drbdRsc := "drbd-" + cfg.DRBD.Resource
			steady, err := sim.Start(ctx, cib, cfg.NodeNames(), []string{"master-" + drbdRsc})
			if err != nil {
				t.Fatal(err)
			}
			before, err := sim.Placements(ctx, steady)
			if err != nil {
				t.Fatal(err)
			}
			active := nodeOf(before, drbdRsc, "Promoted")
			if active == "" {
				t.Fatalf("DRBD not promoted anywhere after start: %+v", before)
			}
			other := cfg.Nodes[0].Name
			if other == active {
				other = cfg.Nodes[1].Name
			}
			for _, r := range groupResources(cfg.RabbitMQ.Mode) {
				if n := nodeOf(before, r, "Started"); n != active {
					t.Errorf("before failure %s runs on %q, want %s with the DRBD primary", r, n, active)
				}
			}

			failed, err := sim.FailNode(ctx, steady, active)
			if err != nil {
				t.Fatal(err)
			}
			after, err := sim.Placements(ctx, failed)
			if err != nil {
				t.Fatal(err)
			}
			if n := nodeOf(after, drbdRsc, "Promoted"); n != other {
				t.Errorf("after %s failed DRBD is promoted on %q, want %s", active, n, other)
			}
			for _, r := range groupResources(cfg.RabbitMQ.Mode) {
				if n := nodeOf(after, r, "Started"); n != other {
					t.Errorf("after %s failed %s runs on %q, want %s", active, r, n, other)
				}
			}
			for _, p := range after {
				if p.Node == active {
					t.Errorf("%s still placed on the failed node %s", p.Resource, active)
				}
			}
			// The takeover's critical path: the VIP waits for the promotion
			// only, not for the filesystem and MariaDB; haproxy binds to it.
			g := failed.Graph
			promote := drbdRsc + "_promote_0"
			for _, w := range []struct {
				action, first string
				want          bool
			}{
				{"vip_start_0", promote, true},
				{"vip_start_0", "fs-haconf_start_0", false},
				{"vip_start_0", "mariadb_start_0", false},
				{"fs-haconf_start_0", promote, true},
				{"mariadb_start_0", "fs-haconf_start_0", true},
				{"haproxy_start_0", "vip_start_0", true},
				{"haproxy_start_0", "mariadb_start_0", true},
			} {
				if !g.Has(w.action) {
					t.Errorf("the takeover's graph has no %s", w.action)
				} else if got := g.Waits(w.action, w.first); got != w.want {
					t.Errorf("in the takeover %s waits for %s: %v, want %v", w.action, w.first, got, w.want)
				}
			}
			fenced := false
			for _, s := range failed.Summary {
				if strings.HasPrefix(s, "Fence (reboot) "+active) {
					fenced = true
				}
			}
			if cfg.Fencing.Safe() != fenced {
				t.Errorf("fencing of %s: got %v, want %v (summary: %q)", active, fenced, cfg.Fencing.Safe(), failed.Summary)
			}
		})
	}
}

func groupResources(rabbitMode string) []string {
	rs := []string{"fs-haconf", "mariadb", "vip", "haproxy"}
	if rabbitMode == "active-passive" {
		rs = append(rs, "rabbitmq")
	}
	return rs
}

func nodeOf(ps []pacemaker.Placement, rsc, role string) string {
	for _, p := range ps {
		if p.Resource == rsc && p.Role == role {
			return p.Node
		}
	}
	return ""
}

// TestWrappersPreferHaconfAgent runs the rendered resource-agent and DRBD
// handler wrappers with sh: they exec haconf-agent when it is installed
// beside haconf, and haconf when it is not. Stand-in scripts print what
// they were run as. The handler runs with the arguments the resource file
// gives it, as DRBD runs it (/bin/sh -c).
func TestWrappersPreferHaconfAgent(t *testing.T) {
	cfg, err := config.Parse("example.yaml", config.Example())
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	files, err := Render(cfg, "ctl1", Options{DRBDVersion: "8.4", HaconfBin: filepath.Join(bin, "haconf")})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if _, err := Write(root, files); err != nil {
		t.Fatal(err)
	}
	handler := fencePeerHandler(t, files)
	if len(handler) == 0 || handler[0] != "/"+FencePeerPath {
		t.Fatalf("etc/drbd.d/r0.res runs fence-peer %q, not the wrapper /%s", handler, FencePeerPath)
	}
	stub := func(name string) {
		os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\necho "+name+" \"$@\"\n"), 0o755)
	}
	wrappers := []struct {
		path string
		args []string
		want string
	}{
		{OCFDir + "/mariadb", []string{"monitor"}, "ocf mariadb monitor"},
		{OCFDir + "/drbd", []string{"promote"}, "ocf drbd promote"},
		{FencePeerPath, handler[1:], "drbd fence-peer --clone drbd-r0-clone"},
	}
	stub("haconf")
	for _, agent := range []bool{false, true} {
		if agent {
			stub(AgentBinName)
		}
		for _, w := range wrappers {
			out, err := run(t, nil, filepath.Join(root, w.path), w.args...)
			want := "haconf " + w.want
			if agent {
				want = AgentBinName + " " + w.want
			}
			if err != nil || strings.TrimSpace(out) != want {
				t.Errorf("%s %s (haconf-agent installed: %v): %q, %v; want %q", w.path, w.args, agent, out, err, want)
			}
		}
	}
}

// fencePeerHandler is the fence-peer command line of the rendered DRBD
// resource file, split into words.
func fencePeerHandler(t *testing.T, files []File) []string {
	t.Helper()
	for _, f := range files {
		if !strings.HasSuffix(f.Path, ".res") {
			continue
		}
		for _, line := range strings.Split(string(f.Content), "\n") {
			if cmd, ok := strings.CutPrefix(strings.TrimSpace(line), "fence-peer "); ok {
				return strings.Fields(strings.Trim(cmd, `";`))
			}
		}
	}
	t.Fatal("no fence-peer handler in the rendered resource file")
	return nil
}
