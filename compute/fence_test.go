package compute

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/internal/runner"
)

// fenceAgent writes a fence agent of the fence-agents protocol (options on
// stdin) that keeps the host's power in a file and logs its stdin.
func fenceAgent(t *testing.T, offWorks bool) (agent, power, log string) {
	dir := t.TempDir()
	agent, power, log = filepath.Join(dir, "fence_test"), filepath.Join(dir, "power"), filepath.Join(dir, "stdin.log")
	off := `echo off > ` + power
	if !offWorks {
		off = `echo "Failed: Unable to obtain correct plug status or plug is not available" >&2; exit 1`
	}
	script := `#!/bin/sh
in=$(cat); printf '%s\n--\n' "$in" >> ` + log + `
action=$(printf '%s\n' "$in" | sed -n 's/^action=//p')
case "$action" in
off) ` + off + ` ;;
status) [ "$(cat ` + power + `)" = on ] && exit 0; exit 2 ;;
*) exit 1 ;;
esac
`
	if err := os.WriteFile(agent, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(power, []byte("on\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return agent, power, log
}

func TestFencerOffConfirmsByStatus(t *testing.T) {
	agent, power, log := fenceAgent(t, true)
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("s3cret\n"), 0o600)
	h := Host{Name: "cmp1", Fence: Fence{Agent: agent, Options: map[string]string{"ip": "192.0.2.5", "username": "admin"}, PasswordFile: pw, Timeout: 10 * time.Second}}
	f := &Fencer{Runner: runner.Exec{}, Poll: 10 * time.Millisecond}
	if err := f.Off(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	if p, _ := os.ReadFile(power); strings.TrimSpace(string(p)) != "off" {
		t.Fatalf("power %q", p)
	}
	in, _ := os.ReadFile(log)
	want := "action=off\nip=192.0.2.5\nusername=admin\npassword=s3cret\n--\naction=status\n"
	if !strings.HasPrefix(string(in), want) {
		t.Errorf("agent's stdin:\n%s\nwant it to start:\n%s", in, want)
	}
}

func TestFencerFailure(t *testing.T) {
	agent, _, _ := fenceAgent(t, false)
	h := Host{Name: "cmp1", Fence: Fence{Agent: agent, Timeout: 5 * time.Second}}
	err := (&Fencer{Runner: runner.Exec{}}).Off(context.Background(), h)
	if err == nil || !strings.Contains(err.Error(), "plug is not available") {
		t.Fatalf("err %v, want the agent's message", err)
	}
}

// An agent whose off succeeds while the host stays on is not a fence.
func TestFencerOffNotConfirmed(t *testing.T) {
	agent, _, _ := fenceAgent(t, true)
	script, _ := os.ReadFile(agent)
	os.WriteFile(agent, []byte(strings.Replace(string(script), "echo off >", "true ||", 1)), 0o755)
	h := Host{Name: "cmp1", Fence: Fence{Agent: agent, Timeout: 500 * time.Millisecond}}
	err := (&Fencer{Runner: runner.Exec{}, Poll: 50 * time.Millisecond}).Off(context.Background(), h)
	if !errors.Is(err, ErrNotOff) {
		t.Fatalf("err %v, want ErrNotOff", err)
	}
}
