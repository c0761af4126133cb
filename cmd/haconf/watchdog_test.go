package main

import (
	"path/filepath"
	"strings"
	"testing"

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
		if code != exitFailure || out != "" {
			t.Errorf("%v: exit %d, want %d\n%s%s", args, code, exitFailure, out, errOut)
		}
		for _, want := range []string{"peer key: open " + missing + ": no such file or directory", "haconf bootstrap", "watchdog.peer_key_file"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("%v: stderr lacks %q:\n%s", args, want, errOut)
			}
		}
	}
}
