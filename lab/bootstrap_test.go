package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/drbd"
)

// TestLabBootstrapFailover is issue 5's claim on real nodes: haconf
// bootstrap on both fresh controllers gives a running pair; a second run
// changes nothing; crashing the active node while a client writes through
// the VIP and publishes confirmed messages to the mirrored queue loses no
// acknowledged row and no confirmed message, the crashed node is fenced and, started
// again, rejoins as the standby.
func TestLabBootstrapFailover(t *testing.T) {
	l, _ := newTestLab(t)
	// Bootstrap alone waits minutes for MariaDB and RabbitMQ on UML nodes:
	// this test gets its own, longer budget.
	budget := 30 * time.Minute
	if dl, ok := t.Deadline(); ok && time.Until(dl)-time.Minute < budget {
		budget = time.Until(dl) - time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	if err := l.Up(ctx); err != nil {
		t.Fatalf("lab up: %v", err)
	}

	results, err := l.Bootstrap(ctx, "--timeout", "10m")
	for _, r := range results {
		t.Logf("bootstrap %s: exit %d in %s\n%s", r.Node, r.ExitCode, r.Took.Round(time.Second), r.Output)
	}
	if err != nil {
		t.Fatalf("first bootstrap: %v", err)
	}

	results, err = l.Bootstrap(ctx, "--timeout", "10m")
	for _, r := range results {
		t.Logf("second bootstrap %s: exit %d in %s\n%s", r.Node, r.ExitCode, r.Took.Round(time.Second), r.Output)
	}
	if err != nil {
		t.Fatalf("second bootstrap: %v", err)
	}
	for _, r := range results {
		if !strings.Contains(r.Output, r.Node+": no changes") {
			t.Errorf("second bootstrap on %s changed something:\n%s", r.Node, r.Output)
		}
	}

	fr, err := l.Failover(ctx)
	t.Logf("failover:\n%s", fr)
	if err != nil {
		t.Fatalf("failover: %v", err)
	}
	if fr.Committed == 0 || fr.Found != fr.Committed {
		t.Fatalf("acknowledged rows: %d, on the survivor: %d", fr.Committed, fr.Found)
	}
	if m := fr.Messages; m == nil || m.Confirmed == 0 || m.Missing != 0 {
		t.Fatalf("confirmed RabbitMQ messages: %+v", m)
	}
	fenced := false
	for _, p := range fr.Phases {
		fenced = fenced || p.Name == PhaseFenced
	}
	if !fenced {
		t.Errorf("the survivor never showed %s fenced (phases %v)", fr.Crashed, fr.Phases)
	}
	// The survivor's resource agents and DRBD handler run as haconf-agent
	// (lab up installs it beside haconf; without it the wrappers fall back
	// to haconf), and the promotion's fence-peer handler fenced the peer.
	x := &execer{t: t, ctx: ctx, l: l}
	x.sh(fr.Survivor, "test -x /usr/local/bin/haconf-agent && /usr/local/bin/haconf-agent ocf vip meta-data | grep -q '<resource-agent name=\"vip\"'")
	if log := x.sh(fr.Survivor, "cat /var/log/haconf/drbd-handlers.log"); !strings.Contains(log, "fence-peer r0: exit 7") {
		t.Errorf("%s: no fence-peer handler run that fenced the peer:\n%s", fr.Survivor, log)
	}

	if err := l.Start(ctx, fr.Crashed); err != nil {
		t.Fatalf("start %s: %v", fr.Crashed, err)
	}
	if err := l.WaitRejoined(ctx, fr.Crashed, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitSettled(ctx, 10*time.Minute, true); err != nil {
		t.Fatal(err)
	}
	splitBrainUnderPacemaker(t, x, fr.Survivor, fr.Crashed)
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
		t.Fatal(err)
	}
	defer db.Close()
	count := func() int {
		var n int
		if err := db.QueryRowContext(x.ctx, "SELECT COUNT(*) FROM failover").Scan(&n); err != nil {
			t.Fatalf("count rows through the VIP: %v", err)
		}
		return n
	}
	before := count()

	x.sh(active, haconfBin+" maintenance on --ttl 15m")
	if err := x.l.Partition(x.ctx, standby, LinkStorage); err != nil {
		t.Fatal(err)
	}
	x.waitDRBD(active, "cs:WFConnection")
	x.waitDRBD(standby, "cs:WFConnection")
	const rows = 50
	for i := range rows {
		if _, err := db.ExecContext(x.ctx, "INSERT INTO failover VALUES (?, NOW(6))", 1_000_000+i); err != nil {
			t.Fatalf("write through the VIP during the split: %v", err)
		}
	}
	// The operator's mistake: the standby forced Primary, written to, and
	// demoted again (before Pacemaker's monitor would).
	const victBlock, victCount = 60000, 128 // inside the filesystem: only the victim's copy
	force := x.exec(standby, "drbdadm", "primary", "--force", "r0")
	if force.ExitCode != 0 {
		t.Fatalf("%s: drbdadm primary --force: exit %d: %s%s", standby, force.ExitCode, force.Stdout, force.Stderr)
	}
	x.sh(standby, fmt.Sprintf("dd if=/dev/urandom of=/dev/drbd0 bs=4096 seek=%d count=%d oflag=direct conv=notrunc status=none", victBlock, victCount))
	victSum := strings.Fields(x.sh(standby, fmt.Sprintf("dd if=/dev/drbd0 bs=4096 skip=%d count=%d iflag=direct status=none | sha256sum", victBlock, victCount)))[0]
	x.sh(standby, "drbdadm secondary r0")

	heal := time.Now()
	if err := x.l.Heal(x.ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{active, standby} {
		if last, ok := x.pollDRBD(n, "ds:UpToDate/UpToDate", 3*time.Minute); !ok || !strings.Contains(last, "cs:Connected") {
			t.Fatalf("%s not Connected UpToDate/UpToDate 3 minutes after the heal:\n%s\nwatchdog log:\n%s", n, last, x.sh(n, "tail -n 30 "+WatchdogLog))
		}
	}
	t.Logf("split brain resolved %s after the heal", time.Since(heal).Round(time.Second))

	var rep struct {
		Incidents []drbd.Incident `json:"incidents"`
	}
	var inc *drbd.Incident
	for deadline := time.Now().Add(30 * time.Second); inc == nil; {
		out := x.sh(active, haconfBin+" -c "+NodeConfigPath+" splitbrain status -o json")
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("splitbrain status -o json: %v\n%s", err, out)
		}
		for i := range rep.Incidents {
			if r := rep.Incidents[i]; r.Role == "actor" && r.Started.After(heal) {
				inc = &rep.Incidents[i]
			}
		}
		if inc == nil && time.Now().After(deadline) {
			t.Fatalf("no actor record on %s since the heal: %+v\n%s", active, rep.Incidents, x.sh(active, "tail -n 30 "+WatchdogLog))
		}
		time.Sleep(time.Second)
	}
	t.Logf("incident %s: %s victim %s survivor %s\n%s", inc.ID, inc.Result, inc.Victim, inc.Survivor, timeline(*inc))
	d := inc.Decision
	if inc.Result != drbd.ResultResolved || inc.Victim != standby || inc.Survivor != active || d == nil || d.Policy.Name != drbd.PolicyAuto {
		t.Fatalf("incident %+v, decision %+v; want policy auto resolving with victim %s", inc, d, standby)
	}
	if !strings.Contains(d.Reason, "cluster-authorized primary") || d.Authorized != active {
		t.Errorf("decision: authorized %q, reason %q; want %s named by Pacemaker", d.Authorized, d.Reason, active)
	}
	p := inc.Preserved
	if p == nil || p.Node != standby || p.Kind != drbd.PreservedLVM || !p.Verified {
		t.Fatalf("preserved %+v: want a verified LVM snapshot on %s", p, standby)
	}
	got := strings.Fields(x.sh(standby, fmt.Sprintf("dd if=%s bs=4096 skip=%d count=%d iflag=direct status=none | sha256sum", p.Path, victBlock, victCount)))[0]
	if got != victSum {
		t.Errorf("snapshot %s: the victim's writes read back as sha256 %s, want %s", p.Path, got, victSum)
	}
	x.sh(standby, "lvremove -y "+p.Path+" >/dev/null")
	x.sh(active, haconfBin+" maintenance off")
	if err := x.l.WaitSettled(x.ctx, 5*time.Minute, false); err != nil {
		t.Fatalf("after maintenance off: %v", err)
	}
	if after := count(); after != before+rows {
		t.Errorf("rows through the VIP: %d after the split brain, want %d (%d before + %d during)", after, before+rows, before, rows)
	}
	if node, err := x.l.ActiveNode(x.ctx); err != nil || node != active {
		t.Errorf("MariaDB runs on %q (%v), want %s", node, err, active)
	}
}
