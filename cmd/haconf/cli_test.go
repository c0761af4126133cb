package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/haconf/haconf/internal/cli"
)

// notFormat are the -o/--output flags that are not an output format.
var notFormat = map[string]string{
	"haconf secrets generate": "-o names the file to create",
}

// labMoving: lab.go moves to cmd/haconf-lab (issue 13); its commands get
// the contract there, after the move.
const labMoving = "haconf lab"

func allCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, sub := range c.Commands() {
		out = append(out, allCommands(sub)...)
	}
	return out
}

// Every output format flag is the one enum flag: -o bogus is a usage error
// (64) naming the allowed values, before the command does anything.
func TestOutputFlagsRefuseOtherValues(t *testing.T) {
	var checked []string
	for _, c := range allCommands(newRootCmd(io.Discard, io.Discard)) {
		path := c.CommandPath()
		f := c.Flags().Lookup("output")
		if f == nil {
			f = c.Flags().ShorthandLookup("o")
		}
		if f == nil {
			continue
		}
		if why, ok := notFormat[path]; ok {
			t.Logf("%s: skipped, %s", path, why)
			continue
		}
		if path == labMoving || strings.HasPrefix(path, labMoving+" ") {
			t.Logf("%s: skipped, lab.go is moving to cmd/haconf-lab", path)
			continue
		}
		values, ok := cli.IsEnumFlag(f)
		if !ok || f.Name != "output" || f.Shorthand != "o" {
			// Not run: a plain string flag would let the command go ahead.
			t.Errorf("%s: -%s/--%s is not cli.OutputFlag", path, f.Shorthand, f.Name)
			continue
		}
		want := "want one of " + strings.Join(values, ", ")
		if !strings.Contains(f.Usage, "{"+strings.Join(values, "|")+"}") {
			t.Errorf("%s: help %q does not list %v", path, f.Usage, values)
		}
		args := append(strings.Fields(path)[1:], "-c", "/nonexistent/haconf.yaml", "-o", "bogus")
		out, errOut, code := haconf(t, args...)
		if code != cli.ExitUsage || !strings.Contains(errOut, `invalid value "bogus" for -o: `+want) || out != "" {
			t.Errorf("haconf %s: exit %d, stdout %q, stderr %q; want %d and %q", strings.Join(args, " "), code, out, errOut, cli.ExitUsage, want)
		}
		checked = append(checked, path)
	}
	for _, must := range []string{"haconf status", "haconf drbd status", "haconf splitbrain status", "haconf splitbrain plan",
		"haconf maintenance status", "haconf backup list", "haconf preflight", "haconf bootstrap"} {
		if !slices.Contains(checked, must) {
			t.Errorf("%s was not checked (checked: %v)", must, checked)
		}
	}
}

func TestUsageErrorsExit64(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus" for "haconf"`},
		{[]string{"stauts"}, "Did you mean this?\n\tstatus"},
		{[]string{"drbd", "bogus"}, `unknown command "bogus" for "haconf drbd"`},
		{[]string{"status", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"backup", "list", "-x"}, "unknown shorthand flag: 'x' in -x"},
		{[]string{"status", "--timeout", "soon"}, `invalid argument "soon" for "--timeout"`},
		{[]string{"status", "extra"}, `unknown command "extra" for "haconf status"`},
		{[]string{"backup", "verify", "a", "b"}, "accepts at most 1 arg(s), received 2"},
		{[]string{"backup", "run"}, `required flag(s) "type" not set`},
		{[]string{"status", "-o"}, "flag needs an argument"},
	} {
		out, errOut, code := haconf(t, tc.args...)
		if code != cli.ExitUsage || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("haconf %s: exit %d, stdout %q, stderr %q; want %d and %q", strings.Join(tc.args, " "), code, out, errOut, cli.ExitUsage, tc.want)
		}
	}
	// Pacemaker reads haconf ocf's status as an OCF code: OCF_ERR_ARGS.
	if _, errOut, code := haconf(t, "ocf", "vip"); code != 2 || !strings.Contains(errOut, "accepts 2 arg(s)") {
		t.Errorf("haconf ocf vip: exit %d, %q; want OCF_ERR_ARGS (2)", code, errOut)
	}
	// A group alone prints its help, as cobra does.
	if out, _, code := haconf(t, "backup"); code != cli.ExitOK || !strings.Contains(out, "Available Commands") {
		t.Errorf("haconf backup: exit %d\n%s", code, out)
	}
}

// The exit codes in haconf --help are cli's.
func TestHelpDocumentsExitCodes(t *testing.T) {
	out, _, code := haconf(t, "--help")
	if code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, c := range []int{cli.ExitOK, cli.ExitFailure, cli.ExitDown, cli.ExitConfig, cli.ExitUsage, cli.ExitInternal} {
		if !strings.Contains(out, fmt.Sprintf("\n  %-4d", c)) {
			t.Errorf("haconf --help does not document exit %d:\n%s", c, out)
		}
	}
}
