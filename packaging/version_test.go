package main

import (
	"os/exec"
	"testing"
	"time"
)

func TestDebianVersion(t *testing.T) {
	at := time.Date(2026, 12, 6, 23, 30, 0, 0, time.FixedZone("CET", 3600))
	for _, c := range []struct{ describe, want string }{
		{"v1.2.0", "1.2.0"},
		{"v1.2.0-dirty", "1.2.0+dirty"},
		{"v1.2.0-rc1", "1.2.0~rc1"},
		{"v1.2.0-rc1-3-g0123abc", "1.2.0~rc1+git20261206.0123abc"},
		{"v1.2.0-5-gabc1234", "1.2.0+git20261206.abc1234"},
		{"v1.2.0-5-gabc1234-dirty", "1.2.0+git20261206.abc1234+dirty"},
		{"d419c13", "0.0.0~git20261206.d419c13"},
		{"d419c13-dirty", "0.0.0~git20261206.d419c13+dirty"},
	} {
		got, err := DebianVersion(c.describe, at)
		if err != nil || got != c.want {
			t.Errorf("DebianVersion(%q) = %q, %v; want %q", c.describe, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "main", "vX", "v1.0_beta"} {
		if got, err := DebianVersion(bad, at); err == nil {
			t.Errorf("DebianVersion(%q) = %q, want an error", bad, got)
		}
	}
}

// dpkg agrees with the order DebianVersion's doc promises.
func TestDebianVersionOrder(t *testing.T) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg is not installed")
	}
	order := []string{"0.0.0~git20261206.d419c13", "0.0.0", "1.2.0~rc1", "1.2.0~rc1+git20261206.0123abc", "1.2.0", "1.2.0+git20261205.fff0000", "1.2.0+git20261206.abc1234"}
	for i := 1; i < len(order); i++ {
		if err := exec.Command("dpkg", "--compare-versions", order[i-1], "lt", order[i]).Run(); err != nil {
			t.Errorf("dpkg: %s is not before %s", order[i-1], order[i])
		}
	}
}
