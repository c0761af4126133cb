package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/internal/config"
)

// Without the file the peer key is derived from, the watchdog and the
// split-brain commands stop before they serve or ask anything, and say
// which file is missing and where it comes from.
func TestPeerKeyMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "authkey")
	p := writeConfig(t, strings.Replace(string(config.Example()), "peer_key_file: /etc/corosync/authkey", "peer_key_file: "+missing, 1))
	for _, args := range [][]string{
		{"watchdog", "-c", p, "--node", "ctl1", "--dry-run"},
		{"splitbrain", "status", "-c", p, "--node", "ctl1"},
	} {
		out, errOut, code := haconf(t, args...)
		if code != cli.ExitFailure || out != "" {
			t.Errorf("%v: exit %d, want %d\n%s%s", args, code, cli.ExitFailure, out, errOut)
		}
		for _, want := range []string{"peer key: open " + missing + ": no such file or directory", "haconf bootstrap", "watchdog.peer_key_file"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("%v: stderr lacks %q:\n%s", args, want, errOut)
			}
		}
	}
}

// A token file others can read stops the watchdog before it serves
// anything; the error names the file and the fix.
func TestWatchdogTokenFileExposed(t *testing.T) {
	dir := t.TempDir()
	authkey, token := filepath.Join(dir, "authkey"), filepath.Join(dir, "watchdog.token")
	if err := os.WriteFile(authkey, bytes.Repeat([]byte{0x5a}, 128), 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(token, []byte("0f3c9a7e5b1d2468ace0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(token, 0o644); err != nil {
		t.Fatal(err)
	}
	p := writeConfig(t, strings.Replace(string(config.Example()), "peer_key_file: /etc/corosync/authkey", "peer_key_file: "+authkey+"\n  token_file: "+token, 1))
	out, errOut, code := haconf(t, "watchdog", "-c", p, "--node", "ctl1", "--dry-run")
	if code != cli.ExitFailure || out != "" || !strings.Contains(errOut, "watchdog token: "+token+": mode -rw-r--r--: readable by group or others (chmod 600") {
		t.Fatalf("exit %d, want %d\n%s%s", code, cli.ExitFailure, out, errOut)
	}
}
