// Package testenv lets integration tests say what real tools they need. A
// missing tool skips the test with the reason, except in CI (CI=true or
// HACONF_REQUIRE_ALL=1), where everything is installed and a skip would
// hide a broken install step, so it fails instead. It also holds the
// plumbing such tests share: free ports, waiting for a server, a log sink
// for goroutines.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Strict reports whether missing requirements fail instead of skip.
func Strict() bool {
	return os.Getenv("CI") == "true" || os.Getenv("HACONF_REQUIRE_ALL") == "1"
}

// Missing skips (or, in CI, fails) t with reason.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if Strict() {
		t.Fatalf("required for this test and missing in CI: %s", reason)
	}
	t.Skip("skipped: " + reason)
}

// RequireCommands skips or fails t unless every named command is on PATH.
// It returns their absolute paths in order.
func RequireCommands(t testing.TB, names ...string) []string {
	t.Helper()
	var out []string
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			Missing(t, n+" is not installed (see .ci/run for the packages)")
			return nil
		}
		out = append(out, p)
	}
	return out
}

// RequireRoot skips or fails t unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root")
	}
}
