package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestExitCode(t *testing.T) {
	base := errors.New("boom")
	for _, tc := range []struct {
		name   string
		err    error
		code   int
		stderr string // substring; "" means nothing printed
	}{
		{"nil", nil, ExitOK, ""},
		{"plain", base, ExitFailure, "boom"},
		{"wrapped plain", fmt.Errorf("reading: %w", base), ExitFailure, "reading: boom"},
		{"with code", WithCode(ExitDown, base), ExitDown, "boom"},
		{"silent", SilentExit(ExitDegraded), ExitDegraded, ""},
		{"usage", UsageError(base), ExitUsage, "boom"},
		{"usagef", Usagef("--ttl %s: too short", "1s"), ExitUsage, "--ttl 1s: too short"},
		{"usage keeps a code", UsageError(WithCode(2, base)), 2, "boom"},
		{"outer code wins", WithCode(ExitConfig, fmt.Errorf("x: %w", WithCode(ExitDown, base))), ExitConfig, "x: boom"},
		{"context around a code", fmt.Errorf("load: %w", WithCode(ExitConfig, base)), ExitConfig, "load: boom"},
		{"internal", InternalError(base), ExitInternal, "internal error"},
	} {
		var errb bytes.Buffer
		code := ExitCode(tc.err, &errb)
		if code != tc.code {
			t.Errorf("%s: code %d, want %d", tc.name, code, tc.code)
		}
		if tc.stderr == "" && errb.Len() > 0 || !strings.Contains(errb.String(), tc.stderr) {
			t.Errorf("%s: stderr %q, want %q", tc.name, errb.String(), tc.stderr)
		}
	}
	if UsageError(nil) != nil {
		t.Error("UsageError(nil) != nil")
	}
}

func TestGuard(t *testing.T) {
	err := Guard(func() error { panic("nil map") })
	var errb bytes.Buffer
	if code := ExitCode(err, &errb); code != ExitInternal || !strings.Contains(errb.String(), "panic: nil map") || !strings.Contains(errb.String(), "goroutine") {
		t.Errorf("code %d, stderr %q", code, errb.String())
	}
	if err := Guard(func() error { return base() }); ExitCode(err, &bytes.Buffer{}) != ExitFailure {
		t.Error("Guard changed an ordinary error")
	}
}

func base() error { return errors.New("x") }

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, "prog.test/v1", map[string]any{"reason": "a<b && c>d", "n": []int{1}}); err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"schema\": \"prog.test/v1\",\n  \"n\": [\n    1\n  ],\n  \"reason\": \"a<b && c>d\"\n}\n"
	if b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
	b.Reset()
	if err := WriteJSON(&b, "prog.empty/v2", struct{}{}); err != nil || b.String() != "{\n  \"schema\": \"prog.empty/v2\"\n}\n" {
		t.Errorf("empty object: %q, %v", b.String(), err)
	}
	// Only objects, each with one schema, named name/vN.
	for _, tc := range []struct {
		schema string
		v      any
	}{
		{"prog.list/v1", []int{1}},
		{"prog.text/v1", "x"},
		{"prog.dup/v1", map[string]string{"schema": "mine"}},
		{"prog.unversioned", map[string]int{}},
	} {
		b.Reset()
		err := WriteJSON(&b, tc.schema, tc.v)
		if ExitCode(err, io.Discard) != ExitInternal || b.Len() > 0 {
			t.Errorf("%s %#v: %v, wrote %q; want an internal error and nothing written", tc.schema, tc.v, err, b.String())
		}
	}
}

// tree is a small command tree as a binary would build it, with Setup.
func tree() (*cobra.Command, *string) {
	var output, kind string
	root := &cobra.Command{Use: "prog", SilenceErrors: true, SilenceUsage: true}
	status := &cobra.Command{Use: "status", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error { return nil }}
	OutputFlag(status, &output, "text", "json")
	group := &cobra.Command{Use: "backup"}
	run := &cobra.Command{Use: "run", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error { return nil }}
	StringEnumFlag(run, &kind, "type", "", "", []string{"full", "differential"}, "backup type")
	_ = run.MarkFlagRequired("type")
	verify := &cobra.Command{Use: "verify [ID]", Args: cobra.MaximumNArgs(1), RunE: func(*cobra.Command, []string) error { return nil }}
	group.AddCommand(run, verify)
	root.AddCommand(status, group)
	Setup(root)
	return root, &output
}

func execute(args ...string) (int, string, string) {
	root, _ := tree()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	code := ExitCode(root.Execute(), &errb)
	return code, out.String(), errb.String()
}

func TestSetupUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"status"}, ExitOK, ""},
		{[]string{"status", "-o", "json"}, ExitOK, ""},
		{[]string{"status", "--output=json"}, ExitOK, ""},
		{[]string{"status", "-o", "bogus"}, ExitUsage, `invalid value "bogus" for -o: want one of text, json`},
		{[]string{"status", "--output", "bogus"}, ExitUsage, "want one of text, json"},
		{[]string{"status", "-o"}, ExitUsage, "flag needs an argument"},
		{[]string{"status", "--bogus"}, ExitUsage, "unknown flag: --bogus"},
		{[]string{"status", "extra"}, ExitUsage, `unknown command "extra" for "prog status"`},
		{[]string{"bogus"}, ExitUsage, `unknown command "bogus" for "prog"`},
		{[]string{"statsu"}, ExitUsage, "Did you mean this?\n\tstatus"},
		{[]string{"backup", "bogus"}, ExitUsage, `unknown command "bogus" for "prog backup"`},
		{[]string{"backup", "run"}, ExitUsage, `required flag(s) "type" not set`},
		{[]string{"backup", "run", "--type", "incremental"}, ExitUsage, "want one of full, differential"},
		{[]string{"backup", "run", "--type", "full"}, ExitOK, ""},
		{[]string{"backup", "verify", "a", "b"}, ExitUsage, "accepts at most 1 arg(s)"},
		{[]string{"completion", "bash", "extra"}, ExitUsage, "unknown command"},
	} {
		code, _, stderr := execute(tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.stderr)
		}
	}
	// A command group without a subcommand prints its help, as before.
	if code, out, _ := execute("backup"); code != ExitOK || !strings.Contains(out, "Available Commands") {
		t.Errorf("backup: exit %d\n%s", code, out)
	}
}

func TestOutputFlagHelp(t *testing.T) {
	root, output := tree()
	status, _, _ := root.Find([]string{"status"})
	f := status.Flags().Lookup("output")
	if f.Shorthand != "o" || f.DefValue != "text" || *output != "text" || !strings.Contains(f.Usage, "{text|json}") {
		t.Errorf("flag %+v", f)
	}
	if v, ok := IsEnumFlag(f); !ok || strings.Join(v, ",") != "text,json" {
		t.Errorf("IsEnumFlag = %v, %v", v, ok)
	}
}

func TestOutput(t *testing.T) {
	text := func(w io.Writer, v map[string]int) { fmt.Fprintf(w, "%d values\n", len(v)) }
	for format, want := range map[string]string{"json": "{\n  \"schema\": \"prog.values/v1\",\n  \"a\": 1,\n  \"b\": 2\n}\n", "text": "2 values\n"} {
		var b bytes.Buffer
		if err := Output(&b, format, "prog.values/v1", map[string]int{"a": 1, "b": 2}, text); err != nil || b.String() != want {
			t.Errorf("%s: %q, %v; want %q", format, b.String(), err, want)
		}
	}
}
