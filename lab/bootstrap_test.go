package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/agents"
	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/pacemaker"
	"github.com/haconf/haconf/rabbitmq"
	"github.com/haconf/haconf/splitbrain"
)

// TestLabBootstrapFailover is issue 5's claim on real nodes: haconf
// bootstrap on both fresh controllers gives a running pair; a second run
// changes nothing; crashing the active node while a client writes through
// the VIP and publishes confirmed messages to the mirrored queue loses no
// acknowledged row and no confirmed message, the crashed node is fenced and, started
// again, rejoins as the standby. Then the split brain under Pacemaker,
// and with HACONF_LAB_RECOVERY issue 14's crash and partition cases
// (recovery_test.go), each on the same pair.
func TestLabBootstrapFailover(t *testing.T) {
	l, _ := newTestLab(t)
	// Bootstrap alone waits minutes for MariaDB and RabbitMQ on UML nodes,
	// and the recovery cases reboot nodes: this test gets its own, longer
	// budget.
	budget := 75 * time.Minute
	if os.Getenv("HACONF_LAB_RECOVERY") != "" {
		budget = 4 * time.Hour // the cases that reboot nodes (-timeout 4h)
	}
	if dl, ok := t.Deadline(); ok && time.Until(dl)-time.Minute < budget {
		budget = time.Until(dl) - time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	if err := l.Up(ctx); err != nil {
		fatalf(t, "lab up: %v", err)
	}
	// Cleanups run last in first out: this one before the lab goes down.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the nodes at the failure:\n%s", nodeDiagnostics(l))
		}
	})

	results, err := l.Bootstrap(ctx, "--timeout", "25m")
	for _, r := range results {
		t.Logf("bootstrap %s: exit %d in %s\n%s", r.Node, r.ExitCode, r.Took.Round(time.Second), r.Output)
	}
	if err != nil {
		fatalf(t, "first bootstrap: %v", err)
	}

	results, err = l.Bootstrap(ctx, "--timeout", "25m")
	for _, r := range results {
		t.Logf("second bootstrap %s: exit %d in %s\n%s", r.Node, r.ExitCode, r.Took.Round(time.Second), r.Output)
	}
	if err != nil {
		fatalf(t, "second bootstrap: %v", err)
	}
	for _, r := range results {
		if !strings.Contains(r.Output, r.Node+": no changes") {
			errorf(t, "second bootstrap on %s changed something:\n%s", r.Node, r.Output)
		}
	}

	fr, err := l.Failover(ctx)
	t.Logf("failover:\n%s", fr)
	if err != nil {
		fatalf(t, "failover: %v", err)
	}
	if fr.Committed == 0 || fr.Found != fr.Committed {
		fatalf(t, "acknowledged rows: %d, on the survivor: %d", fr.Committed, fr.Found)
	}
	if m := fr.Messages; m == nil || m.Confirmed == 0 || m.Missing != 0 {
		fatalf(t, "confirmed RabbitMQ messages: %+v", m)
	}
	fenced := false
	for _, p := range fr.Phases {
		fenced = fenced || p.Name == PhaseFenced
	}
	if !fenced {
		errorf(t, "the survivor never showed %s fenced (phases %v)", fr.Crashed, fr.Phases)
	}
	// The survivor's resource agents and DRBD handler run as haconf-agent
	// (lab up installs it beside haconf; without it the wrappers fall back
	// to haconf), and the promotion's fence-peer handler fenced the peer.
	x := &execer{t: t, ctx: ctx, l: l}
	x.sh(fr.Survivor, "test -x /usr/local/bin/haconf-agent && /usr/local/bin/haconf-agent ocf vip meta-data | grep -q '<resource-agent name=\"vip\"'")
	if log := x.sh(fr.Survivor, "cat /var/log/haconf/drbd-handlers.log"); !strings.Contains(log, "fence-peer r0: exit 7") {
		errorf(t, "%s: no fence-peer handler run that fenced the peer:\n%s", fr.Survivor, log)
	}

	if err := l.Start(ctx, fr.Crashed); err != nil {
		fatalf(t, "start %s: %v", fr.Crashed, err)
	}
	if err := l.WaitRejoined(ctx, fr.Crashed, 5*time.Minute); err != nil {
		fatal(t, err)
	}
	// RabbitMQ's boot on the rejoined node and its mirror's sync: 4.5 and
	// over 5 min on a loaded 2-core machine (the agent's start no longer
	// holds DRBD's start, so the node rejoins before its broker is up).
	if err := l.WaitSettled(ctx, 20*time.Minute, true); err != nil {
		fatal(t, err)
	}
	// The README's "re-runs change nothing" on the rejoined node: DRBD,
	// the volume and MariaDB are Pacemaker's once the pair is bootstrapped.
	rerun := x.execFor(fr.Crashed, 15*time.Minute, "", "/usr/local/sbin/haconf", "bootstrap", "-c", NodeConfigPath, "--node", fr.Crashed, "--secrets", NodeSecretsPath, "--wait=false")
	out := string(rerun.Stdout) + string(rerun.Stderr)
	if rerun.ExitCode != 0 {
		errorf(t, "bootstrap re-run on the rejoined %s: exit %d:\n%s", fr.Crashed, rerun.ExitCode, out)
	}
	for _, step := range []string{"drbd", "initial-sync", "datadir", "cluster-stack", "cib"} {
		if regexp.MustCompile(`(?m)^changed\s+` + step + `\s`).MatchString(out) {
			errorf(t, "bootstrap re-run on the rejoined %s changed %s:\n%s", fr.Crashed, step, out)
		}
	}
	if !strings.Contains(out, "the pair is bootstrapped") {
		errorf(t, "bootstrap re-run on the rejoined %s did not see the pair:\n%s", fr.Crashed, out)
	}
	splitBrainUnderPacemaker(t, x, fr.Survivor, fr.Crashed)
	// Issue 14's crash and partition cases (recovery_test.go) on the same
	// pair: HACONF_LAB_RECOVERY=ci runs the two that reboot no node (a few
	// minutes each), =all every case, or a regular expression of names.
	// Not in `make test` yet: CI's two have not run in this test's flow.
	if v := os.Getenv("HACONF_LAB_RECOVERY"); v != "" && !t.Failed() {
		runRecovery(t, x, recoveryCasesFor(v))
	}
}

// ciRecoveryCases are the recovery cases meant for `make test`: both links
// cut and healed on the standby, nothing rebooted. The others reboot a
// node, whose RabbitMQ takes 5-15 minutes to boot and rejoin in a UML node
// on a 2-core machine (bench/results/recovery.md): all of them would take
// CI well past an hour.
const ciRecoveryCases = `^(management link of the standby|storage link of the standby cut and healed)`

// recoveryCasesFor is the regular expression of the cases to run for
// HACONF_LAB_RECOVERY's value: "ci" for CI's two, "all" (or "1") for every
// case, else a regular expression of case names.
func recoveryCasesFor(v string) string {
	switch v {
	case "ci":
		return ciRecoveryCases
	case "all", "1":
		return ""
	}
	return v
}

// nodeDiagnostics is what to read when a lab test fails: each node's
// DRBD and Pacemaker state with the failed actions, and the ends of the
// RabbitMQ, haconf agent and watchdog logs.
func nodeDiagnostics(l *Lab) string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := l.Client()
	if err != nil {
		return err.Error()
	}
	script := "cat /proc/drbd; crm_mon -1 -r -f 2>&1 | tail -n 40; " +
		"for f in " + rabbitmq.DefaultServerLog + " /var/log/rabbitmq/rabbit@$(hostname).log " + agents.HandlerLog + " " + WatchdogLog + "; do echo \"== $f\"; tail -n 25 $f 2>&1; done; echo == pacemaker.log rabbitmq; grep -i rabbitmq /var/log/pacemaker/pacemaker.log 2>&1 | tail -n 25"
	var b strings.Builder
	for _, n := range Nodes {
		res, err := c.Exec(ctx, n.Name, ExecRequest{Argv: []string{"sh", "-c", script}, Timeout: "1m"})
		if err != nil {
			fmt.Fprintf(&b, "=== %s: %v\n", n.Name, err)
			continue
		}
		fmt.Fprintf(&b, "=== %s\n%s%s\n", n.Name, res.Stdout, res.Stderr)
	}
	return b.String()
}

// splitBrainUnderPacemaker is issue 4's auto policy on the bootstrapped
// pair, Pacemaker and the watchdogs (started by lab bootstrap) running:
// an operator puts the cluster in maintenance (haconf maintenance on, as
// for any manual work), the storage link is cut, MariaDB keeps taking rows
// through the VIP on the active node, and on the standby the operator
// forces DRBD Primary, writes, and demotes it again. (Without maintenance,
// Pacemaker's monitor may see the forced Primary first and act on it: in
// one CI run it ended with the standby promoted; see the session notes.)
// When the link returns DRBD finds the split brain,
// and the watchdogs resolve it with no human step: the cluster-authorized
// primary (promoted by Pacemaker, holding the VIP and MariaDB) survives,
// the standby's writes are kept in an LVM snapshot before they are
// discarded, and every acknowledged row is still there.
func splitBrainUnderPacemaker(t *testing.T, x *execer, active, standby string) {
	t.Helper()
	db, err := demoDB()
	if err != nil {
		fatal(t, err)
	}
	defer db.Close()
	count := func() int {
		var n int
		if err := db.QueryRowContext(x.ctx, "SELECT COUNT(*) FROM failover").Scan(&n); err != nil {
			fatalf(t, "count rows through the VIP: %v", err)
		}
		return n
	}
	before := count()

	x.sh(active, haconfBin+" maintenance on --ttl 15m")
	if err := x.l.Partition(x.ctx, standby, LinkStorage); err != nil {
		fatal(t, err)
	}
	x.waitDRBD(active, "cs:WFConnection")
	x.waitDRBD(standby, "cs:WFConnection")
	// The active node's fence-peer handler marks the standby Outdated with
	// its constraint, as an operator sees before any manual work. Without
	// this wait, on a slow machine the forced standby's own handler placed
	// the constraint first (for itself), and the watchdogs rightly refused
	// to pick a survivor from evidence that disagreed.
	c, err := x.l.Client()
	if err != nil {
		fatal(t, err)
	}
	names := pacemaker.NamesFor(DRBDResource)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		cons, err := pacemaker.Cluster{Run: c.Runner(active)}.Query(x.ctx, pacemaker.ScopeConstraints)
		if err == nil {
			if owner, _ := pacemaker.FenceOwner(cons, DRBDResource, names.Clone()); owner == active {
				break
			}
		}
		if time.Now().After(deadline) {
			fatalf(t, "%s's fence-peer handler placed no constraint for %s within 2 minutes of the cut", active, active)
		}
	}
	const rows = 50
	for i := range rows {
		if _, err := db.ExecContext(x.ctx, "INSERT INTO failover VALUES (?, NOW(6))", 1_000_000+i); err != nil {
			fatalf(t, "write through the VIP during the split: %v", err)
		}
	}
	// The operator's mistake: the standby forced Primary, written to, and
	// demoted again (before Pacemaker's monitor would).
	const victBlock, victCount = 60000, 128 // inside the filesystem: only the victim's copy
	force := x.exec(standby, "drbdadm", "primary", "--force", "r0")
	if force.ExitCode != 0 {
		fatalf(t, "%s: drbdadm primary --force: exit %d: %s%s", standby, force.ExitCode, force.Stdout, force.Stderr)
	}
	x.sh(standby, fmt.Sprintf("dd if=/dev/urandom of=/dev/drbd0 bs=4096 seek=%d count=%d oflag=direct conv=notrunc status=none", victBlock, victCount))
	victSum := strings.Fields(x.sh(standby, fmt.Sprintf("dd if=/dev/drbd0 bs=4096 skip=%d count=%d iflag=direct status=none | sha256sum", victBlock, victCount)))[0]
	x.sh(standby, "drbdadm secondary r0")

	heal := time.Now()
	if err := x.l.Heal(x.ctx); err != nil {
		fatal(t, err)
	}
	for _, n := range []string{active, standby} {
		// Both watchdogs see the split brain at once, and on loaded UML
		// nodes a first attempt may refuse (the peer's evidence took longer
		// than its timeout) and the next one comes after the 2 min cooldown.
		if last, ok := x.pollDRBD(n, "ds:UpToDate/UpToDate", 7*time.Minute); !ok || !strings.Contains(last, "cs:Connected") {
			fatalf(t, "%s not Connected UpToDate/UpToDate 7 minutes after the heal:\n%s\nwatchdog log:\n%s", n, last, x.sh(n, "tail -n 30 "+WatchdogLog))
		}
	}
	t.Logf("split brain resolved %s after the heal", time.Since(heal).Round(time.Second))

	var rep struct {
		Incidents []splitbrain.Incident `json:"incidents"`
	}
	var inc *splitbrain.Incident
	for deadline := time.Now().Add(30 * time.Second); inc == nil; {
		out := x.sh(active, haconfBin+" -c "+NodeConfigPath+" splitbrain status -o json")
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			fatalf(t, "splitbrain status -o json: %v\n%s", err, out)
		}
		for i := range rep.Incidents {
			if r := rep.Incidents[i]; r.Role == "actor" && r.Started.After(heal) {
				inc = &rep.Incidents[i]
			}
		}
		if inc == nil && time.Now().After(deadline) {
			fatalf(t, "no actor record on %s since the heal: %+v\n%s", active, rep.Incidents, x.sh(active, "tail -n 30 "+WatchdogLog))
		}
		time.Sleep(time.Second)
	}
	t.Logf("incident %s: %s victim %s survivor %s\n%s", inc.ID, inc.Result, inc.Victim, inc.Survivor, timeline(*inc))
	d := inc.Decision
	if inc.Result != splitbrain.ResultResolved || inc.Victim != standby || inc.Survivor != active || d == nil || d.Policy.Name != drbd.PolicyAuto {
		fatalf(t, "incident %+v, decision %+v; want policy auto resolving with victim %s", inc, d, standby)
	}
	if !strings.Contains(d.Reason, "cluster-authorized primary") || d.Authorized != active {
		errorf(t, "decision: authorized %q, reason %q; want %s named by Pacemaker", d.Authorized, d.Reason, active)
	}
	p := inc.Preserved
	if p == nil || p.Node != standby || p.Kind != splitbrain.PreservedLVM || !p.Verified {
		fatalf(t, "preserved %+v: want a verified LVM snapshot on %s", p, standby)
	}
	got := strings.Fields(x.sh(standby, fmt.Sprintf("dd if=%s bs=4096 skip=%d count=%d iflag=direct status=none | sha256sum", p.Path, victBlock, victCount)))[0]
	if got != victSum {
		errorf(t, "snapshot %s: the victim's writes read back as sha256 %s, want %s", p.Path, got, victSum)
	}
	x.sh(standby, "lvremove -y "+p.Path+" >/dev/null")
	x.sh(active, haconfBin+" maintenance off")
	if err := x.l.WaitSettled(x.ctx, 5*time.Minute, false); err != nil {
		fatalf(t, "after maintenance off: %v", err)
	}
	if after := count(); after != before+rows {
		errorf(t, "rows through the VIP: %d after the split brain, want %d (%d before + %d during)", after, before+rows, before, rows)
	}
	if node, err := x.l.ActiveNode(x.ctx); err != nil || node != active {
		errorf(t, "MariaDB runs on %q (%v), want %s", node, err, active)
	}
}
