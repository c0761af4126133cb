package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/runner"
)

// simRunner runs the real Pacemaker tools on the simulated cluster
// (CIB_file, set by simulatedCluster); before each crm_mon reading and
// crm_resource --wait, crm_simulate carries out the pending transition,
// as the DC would.
type simRunner struct{ path string }

func (s simRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	if name == "crm_mon" || (name == "crm_resource" && args[0] == "--wait") {
		if _, err := (runner.Exec{}).Run(ctx, "crm_simulate", "-x", s.path, "-S", "-O", s.path); err != nil {
			return nil, err
		}
	}
	return runner.Exec{}.Run(ctx, name, args...)
}

type fakeDRBD struct {
	r   drbd.Resource
	err error
}

func (f fakeDRBD) State(context.Context, string) (drbd.Resource, error) { return f.r, f.err }

var upToDate = fakeDRBD{r: drbd.Resource{Name: "r0", Role: drbd.RolePrimary, Disk: drbd.DiskUpToDate, Connection: drbd.ConnConnected,
	Replication: drbd.ReplEstablished, PeerRole: drbd.RoleSecondary, PeerDisk: drbd.DiskUpToDate}}

func switchoverCLI(t *testing.T, cfgPath string, o *switchoverOptions, args ...string) (string, int) {
	t.Helper()
	g := &globals{configFile: cfgPath, logger: slog.New(slog.DiscardHandler)}
	var out, errb bytes.Buffer
	cmd := newSwitchoverCmdWith(g, o)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(append([]string{"--node", "ctl1"}, args...))
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	code := exitCode(cmd.ExecuteContext(context.Background()), &errb)
	return out.String() + errb.String(), code
}

func cliConstraints(t *testing.T) string {
	out, err := (runner.Exec{}).Run(context.Background(), "cibadmin", "--query", "--scope", "constraints")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestSwitchoverCommand(t *testing.T) {
	path := simulatedCluster(t)
	cfg := writeConfig(t, string(config.Example()))
	opts := func() *switchoverOptions {
		return &switchoverOptions{run: simRunner{path}, drbd: upToDate, poll: time.Millisecond}
	}
	expect := func(o *switchoverOptions, code int, args []string, want ...string) string {
		t.Helper()
		out, got := switchoverCLI(t, cfg, o, args...)
		if got != code {
			t.Fatalf("switchover %v: exit %d, want %d\n%s", args, got, code, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("switchover %v: no %q in:\n%s", args, w, out)
			}
		}
		return out
	}

	expect(opts(), cli.ExitUsage, []string{"--to", "ctl3"}, "not one of the controllers")
	expect(opts(), cli.ExitOK, []string{"--to", "ctl1"}, "ctl1 is already active", "nothing to do")

	expect(opts(), cli.ExitOK, []string{"--dry-run"},
		"switchover (dry run: nothing changed) ctl1 -> ctl2",
		"ok  drbd         r0 Connected, UpToDate/UpToDate (seen from ctl1)",
		"crm_resource --move --promoted -r drbd-r0-clone -N ctl2 --lifetime PT420S",
		"crm_resource --clear -r drbd-r0-clone",
		"crm_resource --wait --timeout 60s")
	if strings.Contains(cliConstraints(t), "cli-") {
		t.Fatal("the dry run changed the constraints")
	}

	// Refusals change nothing.
	outdated := upToDate
	outdated.r.PeerDisk = drbd.DiskOutdated
	o := opts()
	o.drbd = outdated
	expect(o, cli.ExitFailure, nil, "REFUSED  drbd", "ctl2's disk is Outdated", "switchover refused (drbd): nothing was changed")
	o.drbd = fakeDRBD{err: errors.New("ctl1: DRBD is not loaded")}
	expect(o, cli.ExitFailure, []string{"--dry-run"}, "REFUSED  drbd", "cannot read DRBD r0 on ctl1")
	if strings.Contains(cliConstraints(t), "cli-") {
		t.Fatal("a refused switchover changed the constraints")
	}

	expect(opts(), cli.ExitOK, nil, "switchover ctl1 -> ctl2, checked from ctl1",
		"DRBD r0 Promoted on ctl2", "haproxy started on ctl2", "constraint removed",
		"switchover ctl1 -> ctl2 done in", "no constraint left",
		"now: DRBD r0 Promoted on ctl2; fs-haconf, mariadb, vip, haproxy on ctl2")
	if strings.Contains(cliConstraints(t), "cli-") {
		t.Fatalf("constraint left behind:\n%s", cliConstraints(t))
	}
	expect(opts(), cli.ExitOK, nil, "switchover ctl2 -> ctl1", "done in")

	// Maintenance: refused, with the way out.
	if _, _, code := haconf(t, "maintenance", "on", "--ttl", "5m"); code != 0 {
		t.Fatal("maintenance on failed")
	}
	expect(opts(), cli.ExitFailure, nil, "REFUSED  maintenance", "haconf maintenance off first")
}
