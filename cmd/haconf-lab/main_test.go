package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/haconf/haconf/internal/cli"
)

func TestCommands(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"config"}, cli.ExitOK, "fencing:", ""},
		{[]string{"--bogus"}, cli.ExitUsage, "", "haconf-lab: unknown flag: --bogus"},
		{[]string{"exec", "ctl1", "true"}, cli.ExitUsage, "", "usage: haconf-lab exec NODE -- CMD"},
		{[]string{"crash"}, cli.ExitUsage, "", "accepts 1 arg"},
		{[]string{"agent"}, cli.ExitUsage, "", "required flag"},
		{[]string{"lab", "up"}, cli.ExitUsage, "", `unknown command "lab"`},
		{[]string{"status", "-o", "bogus"}, cli.ExitUsage, "", `invalid value "bogus" for -o: want one of text, json`},
		{[]string{"failover", "-o", "yaml"}, cli.ExitUsage, "", `invalid value "yaml" for -o: want one of text, json`},
	} {
		var out, errb bytes.Buffer
		root := newRootCmd(&out, &errb)
		root.SetArgs(tc.args)
		code := exitCode(root.ExecuteContext(context.Background()), &errb)
		if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errb.String(), tc.err) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d, %q, %q", tc.args, code, out.String(), errb.String(), tc.code, tc.out, tc.err)
		}
	}
	// Every command the lab had under haconf lab is here.
	var out bytes.Buffer
	root := newRootCmd(&out, &out)
	for _, name := range []string{"up", "bootstrap", "status", "exec", "failover", "crash", "start", "partition", "heal", "down", "config", "demo", "fenced", "agent", "fence-agent"} {
		if c, _, err := root.Find([]string{name}); err != nil || c == root {
			t.Errorf("no %s command", name)
		}
	}
}
