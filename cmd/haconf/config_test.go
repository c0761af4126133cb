package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/internal/config"
)

// haconf runs the CLI in-process and returns stdout, stderr and exit code.
func haconf(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	code := exitCode(err, &errb)
	return out.String(), errb.String(), code
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "haconf.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigExampleValidates(t *testing.T) {
	out, _, code := haconf(t, "config", "example")
	if code != 0 || !strings.HasPrefix(out, "# haconf.yaml") {
		t.Fatalf("example: code %d", code)
	}
	p := writeConfig(t, out)
	out, errOut, code := haconf(t, "config", "validate", "-c", p)
	if code != 0 || !strings.Contains(out, "valid") {
		t.Fatalf("validate example: code %d\n%s%s", code, out, errOut)
	}
}

// The acceptance case: an unknown key, a VIP outside both networks
// and a bad cron expression are all named in one run.
func TestConfigValidateListsEveryProblem(t *testing.T) {
	body := strings.NewReplacer(
		"  name: openstack-ctl", "  name: openstack-ctl\n  colour: blue",
		"address: 192.0.2.10/24", "address: 203.0.113.10/24",
		`full: "0 2 * * 0"`, `full: "0 2 * * funday"`,
	).Replace(string(config.Example()))
	p := writeConfig(t, body)
	_, errOut, code := haconf(t, "config", "validate", "-c", p)
	if code != cli.ExitConfig {
		t.Fatalf("exit %d, want %d\n%s", code, cli.ExitConfig, errOut)
	}
	for _, want := range []string{
		"3 problem(s)",
		p + ":8: cluster.colour: unknown key",
		`vip.address: "203.0.113.10/24": is outside both cluster networks`,
		`backup.full: "0 2 * * funday": is not a valid cron expression`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestConfigValidateMissingFile(t *testing.T) {
	_, errOut, code := haconf(t, "config", "validate", "-c", "/nonexistent/haconf.yaml")
	if code != cli.ExitFailure || !strings.Contains(errOut, "/nonexistent/haconf.yaml") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestRenderTwiceChangesNothing(t *testing.T) {
	p := writeConfig(t, string(config.Example()))
	root := t.TempDir()
	out, errOut, code := haconf(t, "render", "-c", p, "--node", "ctl1", "--root", root, "--drbd-version", "8.4")
	if code != 0 || strings.Count(out, "created") != 16 {
		t.Fatalf("first render: code %d\n%s%s", code, out, errOut)
	}
	var stats []os.FileInfo
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			stats = append(stats, info)
		}
		return nil
	})
	out, _, code = haconf(t, "render", "-c", p, "--node", "ctl1", "--root", root, "--drbd-version", "8.4")
	if code != 0 || strings.Count(out, "unchanged") != 16 {
		t.Fatalf("second render: code %d\n%s", code, out)
	}
	i := 0
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			if !info.ModTime().Equal(stats[i].ModTime()) {
				t.Errorf("%s was rewritten", p)
			}
			i++
		}
		return nil
	})
	out, _, code = haconf(t, "plan", "-c", p, "--node", "ctl1", "--root", root, "--drbd-version", "8.4")
	if code != 0 || !strings.Contains(out, "No changes") {
		t.Fatalf("plan after render: %d\n%s", code, out)
	}
	out, _, code = haconf(t, "plan", "-c", p, "--node", "ctl2", "--root", root, "--drbd-version", "8.4")
	if code != 0 || !strings.Contains(out, "Plan: 0 to create, 1 to change, 15 unchanged") {
		t.Fatalf("plan for the other node: %d\n%s", code, out)
	}
}

func TestRenderBadInput(t *testing.T) {
	p := writeConfig(t, string(config.Example()))
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"render", "-c", p, "--node", "ctl7", "--root", t.TempDir()}, cli.ExitFailure, `node "ctl7" is not in nodes (ctl1, ctl2)`},
		{[]string{"render", "-c", p, "--node", "ctl1", "--drbd-version", "8.3", "--root", t.TempDir()}, cli.ExitUsage, `--drbd-version "8.3"`},
		{[]string{"render", "--bogus"}, cli.ExitUsage, "unknown flag"},
	} {
		_, errOut, code := haconf(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}
