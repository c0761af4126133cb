package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	noEnv := func(string) string { return "" }
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{"meta-data", []string{"ocf", "vip", "meta-data"}, 0, `<resource-agent name="vip"`, ""},
		{"unknown agent", []string{"ocf", "nope", "monitor"}, 5, "", `unknown agent "nope"`},
		{"no action", []string{"ocf", "vip"}, 2, "", "usage:"},
		{"nothing", nil, 2, "", "haconf-agent ocf AGENT ACTION"},
		{"fence-peer without --clone", []string{"drbd", "fence-peer"}, 1, "", "--clone is required"},
		{"fence-peer outside DRBD", []string{"drbd", "fence-peer", "--clone", "drbd-r0-clone"}, 1, "", "DRBD_RESOURCE is not set"},
		{"fence-peer bad flag", []string{"drbd", "fence-peer", "--clone", "x", "--bogus"}, 1, "", "flag provided but not defined: -bogus"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), c.args, noEnv, &out, &errb)
		if code != c.code || !strings.Contains(out.String(), c.stdout) || !strings.Contains(errb.String(), c.stderr) {
			t.Errorf("%s: run(%q) = %d, stdout %q, stderr %q; want %d, %q, %q", c.name, c.args, code, out.String(), errb.String(), c.code, c.stdout, c.stderr)
		}
	}
}
