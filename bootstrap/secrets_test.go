package bootstrap

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecretsRoundTrip(t *testing.T) {
	s, err := GenerateSecrets()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "secrets.yaml")
	if err := os.WriteFile(p, s.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadSecrets(p)
	if err != nil {
		t.Fatal(err)
	}
	if got.ErlangCookie != s.ErlangCookie || len(got.Authkey()) != 256 || got.MySQLPassword != s.MySQLPassword {
		t.Fatal("secrets changed on the way through the file")
	}
	if !strings.Contains(string(got.MySQLOptionFile()), "password="+s.MySQLPassword) {
		t.Fatal("option file lacks the password")
	}
	other, _ := GenerateSecrets()
	if other.ErlangCookie == s.ErlangCookie || other.CorosyncAuthkey == s.CorosyncAuthkey {
		t.Fatal("two generations gave the same secrets")
	}
}

func TestLoadSecretsRefusesExposedOrBadFiles(t *testing.T) {
	s, _ := GenerateSecrets()
	dir := t.TempDir()
	open := filepath.Join(dir, "open.yaml")
	os.WriteFile(open, s.Marshal(), 0o644)
	os.Chmod(open, 0o644)
	if _, err := LoadSecrets(open); !errors.Is(err, ErrSecretsExposed) {
		t.Fatalf("world-readable file: err = %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("corosync_authkey: c2hvcnQ=\nerlang_cookie: abc\nmysql_user: x\nmysql_password: "+s.MySQLPassword[:5]+"\n"), 0o600)
	_, err := LoadSecrets(bad)
	if err == nil {
		t.Fatal("weak secrets accepted")
	}
	for _, want := range []string{"corosync_authkey", "erlang_cookie", "mysql_password"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), s.MySQLPassword[:5]) {
		t.Fatal("error shows a secret value")
	}
	if _, err := LoadSecrets(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "haconf secrets generate") {
		t.Fatalf("missing file: %v", err)
	}
	if s := (SecretFile{Path: "/x", Content: []byte("topsecret")}).String(); strings.Contains(s, "topsecret") {
		t.Fatal("SecretFile prints its content")
	}
}

func TestSecretsFencePasswords(t *testing.T) {
	s, _ := GenerateSecrets()
	if out := string(s.Marshal()); !strings.Contains(out, "# fence_passwords:") || !strings.Contains(out, "# compute_fence_passwords:") {
		t.Errorf("a generated file does not say where the fence passwords go:\n%s", out)
	}
	s.FencePasswords = map[string]string{"ctl1": "bmc one", "ctl2": "bmc-two"}
	s.ComputeFencePasswords = map[string]string{"cmp1": "cmp-pw"}
	p := filepath.Join(t.TempDir(), "secrets.yaml")
	if err := os.WriteFile(p, s.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadSecrets(p)
	if err != nil {
		t.Fatal(err)
	}
	if got.FencePasswords["ctl1"] != "bmc one" || got.ComputeFencePasswords["cmp1"] != "cmp-pw" || got.File != p {
		t.Fatalf("fence passwords changed on the way through the file: %+v", got)
	}
	// One line each (the agents read their options one per line), never
	// empty, and no value in the error.
	s.FencePasswords = map[string]string{"ctl1": "first\nsecond", "ctl2": ""}
	os.WriteFile(p, s.Marshal(), 0o600)
	_, err = LoadSecrets(p)
	for _, want := range []string{p + ": fence_passwords.ctl1: must be one line", p + ": fence_passwords.ctl2: is empty"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "second") {
		t.Fatal("error shows a fence password")
	}
}
