package bootstrap

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The secrets step installs each fence password the secrets file holds
// (mode 0600, atomically) where haconf.yaml names its file; without one in
// the secrets file, a file already on the node is kept (secrets files from
// before fence passwords), and neither is a clear error.
func TestSecretsStepFencePasswords(t *testing.T) {
	ctx := context.Background()
	step := func(b *Bootstrap) (Result, error) { return b.runStep(ctx, step{name: "secrets", check: b.secrets}) }
	fenceFiles := []string{"/etc/haconf/ipmi-ctl1.pass", "/etc/haconf/ipmi-ctl2.pass", "/etc/haconf/ipmi-cmp1.password", "/etc/haconf/ipmi-cmp2.password"}
	withoutFence := func(b *Bootstrap) {
		b.Secrets.FencePasswords, b.Secrets.ComputeFencePasswords = nil, nil
		b.Secrets.File = "/etc/haconf/secrets.yaml"
	}
	write := func(t *testing.T, b *Bootstrap, p, content string, mode os.FileMode) {
		t.Helper()
		os.MkdirAll(filepath.Dir(b.path(p)), 0o755)
		if err := os.WriteFile(b.path(p), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(b.path(p), mode)
	}

	t.Run("installed from the secrets file", func(t *testing.T) {
		b, _ := newRun(t, "ctl1")
		r, err := step(b)
		if err != nil || !r.Changed {
			t.Fatalf("%+v %v", r, err)
		}
		for p, want := range map[string]string{"/etc/haconf/ipmi-ctl2.pass": "bmc-ctl2-password\n", "/etc/haconf/ipmi-cmp1.password": "bmc-cmp1-password\n"} {
			st, err := os.Stat(b.path(p))
			got, _ := os.ReadFile(b.path(p))
			if err != nil || st.Mode().Perm() != 0o600 || string(got) != want {
				t.Errorf("%s: %v %q, want 0600 %q", p, st.Mode(), got, want)
			}
		}
		// A changed password (a BMC's rotated) is installed again; the rest stays.
		b.Secrets.FencePasswords["ctl2"] = "rotated"
		r, err = step(b)
		if err != nil || r.Detail != "installed /etc/haconf/ipmi-ctl2.pass" {
			t.Fatalf("after a rotation: %+v %v", r, err)
		}
		if r, _ := step(b); r.Changed || !strings.Contains(r.Detail, "4 fence password(s) in place") {
			t.Errorf("third run: %+v", r)
		}
	})
	t.Run("an older secrets file, the files already on the node", func(t *testing.T) {
		b, _ := newRun(t, "ctl1")
		withoutFence(b)
		for _, p := range fenceFiles {
			write(t, b, p, "set by hand\n", 0o600)
		}
		r, err := step(b)
		if err != nil || !strings.Contains(r.Detail, "kept "+strings.Join(fenceFiles, ", ")+" (no password for it in the secrets file)") {
			t.Fatalf("%+v %v", r, err)
		}
		if got, _ := os.ReadFile(b.path(fenceFiles[0])); string(got) != "set by hand\n" {
			t.Errorf("a kept file changed: %q", got)
		}
	})
	t.Run("neither in the secrets file nor on the node", func(t *testing.T) {
		b, _ := newRun(t, "ctl1")
		withoutFence(b)
		write(t, b, fenceFiles[0], "set by hand\n", 0o600)
		_, err := step(b)
		for _, want := range []string{
			"/etc/haconf/ipmi-ctl2.pass (the password of ctl2's BMC) does not exist and /etc/haconf/secrets.yaml has no fence_passwords.ctl2",
			"/etc/haconf/ipmi-cmp1.password (the password of compute host cmp1's fence agent) does not exist and /etc/haconf/secrets.yaml has no compute_fence_passwords.cmp1",
		} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v\nwant %q", err, want)
			}
		}
		if err != nil && strings.Contains(err.Error(), "ipmi-ctl1.pass") {
			t.Errorf("the file on the node is reported missing: %v", err)
		}
	})
	t.Run("a file on the node others can read", func(t *testing.T) {
		b, _ := newRun(t, "ctl1")
		withoutFence(b)
		for _, p := range fenceFiles {
			write(t, b, p, "set by hand\n", 0o600)
		}
		write(t, b, fenceFiles[1], "set by hand\n", 0o644)
		if _, err := step(b); err == nil || !strings.Contains(err.Error(), "/etc/haconf/ipmi-ctl2.pass (the password of ctl2's BMC): mode -rw-r--r--: readable by group or others (chmod 600") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("a password for no file", func(t *testing.T) {
		b, _ := newRun(t, "ctl1")
		b.Secrets.FencePasswords["ctl-2"] = "typo"
		if _, err := step(b); err == nil || !strings.Contains(err.Error(), "fence_passwords.ctl-2: haconf.yaml has no fencing.ipmi.<node>.password_file for ctl-2") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("hosts sharing a file", func(t *testing.T) {
		b, _ := newRun(t, "ctl1")
		b.Cfg.Compute.Hosts[1].Fence.PasswordFile = b.Cfg.Compute.Hosts[0].Fence.PasswordFile
		if _, err := step(b); err == nil || !strings.Contains(err.Error(), "compute_fence_passwords.cmp1 and compute_fence_passwords.cmp2 differ, but haconf.yaml has both read from /etc/haconf/ipmi-cmp1.password") {
			t.Errorf("different passwords: err = %v", err)
		}
		b.Secrets.ComputeFencePasswords["cmp2"] = b.Secrets.ComputeFencePasswords["cmp1"]
		if r, err := step(b); err != nil || strings.Contains(r.Detail, "cmp2") {
			t.Errorf("the same password: %+v %v", r, err)
		}
	})
}
