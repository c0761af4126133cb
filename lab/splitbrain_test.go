package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/splitbrain"
)

// The split-brain tests run haconf as it runs in production: the lab's
// haconf.yaml rendered into both nodes by `haconf render`, DRBD 8.4 on the
// 256 MiB vg0/haconf, and `haconf watchdog` in both nodes. The split brain
// is real: the storage link is cut, both nodes are Primary and write, the
// link comes back and DRBD drops the connection (after-sb-*pri disconnect).
//
// Regions of /dev/drbd0, in 4 KiB blocks (data offsets on the backing LV are
// the same: DRBD 8.4 internal metadata sits at its end).
const (
	sbBlock      = 4096
	sbBaseStart  = 0    // 8 MiB written before the split
	sbBaseCount  = 2048 //
	sbSurvStart  = 4096 // round r: 1 MiB written on the survivor at sbSurvStart+r*1024
	sbSurvCount  = 256
	sbVictStart  = 32768 // round r: 512 KiB written on the victim at sbVictStart+r*1024
	sbVictCount  = 128
	sbClashStart = 64 // the victim also overwrites 64 KiB inside the survivor's region
	sbClashCount = 16
)

// sbLab is a lab with DRBD up on vg0/haconf and a watchdog in each node.
type sbLab struct {
	*execer
	l        *Lab
	policy   string
	baseSum  string
	watchdog map[string]string // node -> pid
}

// TestLabSplitBrainResolved: with policy least-changes, the watchdogs
// resolve a real split brain with no human step. The survivor's blocks
// are intact on both nodes, the victim's divergent writes are readable
// from the LVM snapshot named in the incident record, exactly one node
// acted. HACONF_SPLITBRAIN_ROUNDS repeats the split brain (bench/splitbrain);
// HACONF_SPLITBRAIN_RESULTS writes the timings as Markdown.
func TestLabSplitBrainResolved(t *testing.T) {
	s := newSplitBrainLab(t, "least-changes")
	rounds := 1
	if v := os.Getenv("HACONF_SPLITBRAIN_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 5 {
			fatalf(t, "HACONF_SPLITBRAIN_ROUNDS=%q: want 1 to 5 (the snapshots of the earlier rounds are removed, vg0 holds two)", v)
		}
		rounds = n
	}
	var timings []sbTiming
	for r := range rounds {
		timings = append(timings, s.resolvedRound(t, r))
	}
	if path := os.Getenv("HACONF_SPLITBRAIN_RESULTS"); path != "" {
		if err := os.WriteFile(path, sbMarkdown(timings), 0o644); err != nil {
			fatal(t, err)
		}
	}
	s.dumpLogs(t)
	s.down(t)
}

// sbTiming is one resolved split brain, timed from the test (host clock,
// polling /proc/drbd in both nodes about every 100 ms) and from the
// incident record (node clocks: UML reads the host's clock).
type sbTiming struct {
	HealToStandAlone   time.Duration // link back -> DRBD found the split brain (its connect-int retry)
	StandAloneToSynced time.Duration // split brain found -> Connected UpToDate/UpToDate on both: haconf's part
	HealToSynced       time.Duration
	DemoteToSynced     time.Duration // victim secondary -> UpToDate/UpToDate: snapshot, discard, resync
	ReconnectToSynced  time.Duration // victim connect --discard-my-data -> UpToDate/UpToDate
	DivergenceKiB      int64         // out of sync on both sides together at the decision
}

func (s *sbLab) resolvedRound(t *testing.T, r int) sbTiming {
	t.Helper()
	const survivor, victim = "ctl1", "ctl2"
	surv, vict := sbSurvStart+r*1024, sbVictStart+r*1024
	clash := surv + sbClashStart
	// What the survivor holds, before the split, where the victim will write.
	preVict := s.sum(survivor, "/dev/drbd0", vict, sbVictCount)
	preClash := s.sum(survivor, "/dev/drbd0", clash, sbClashCount)

	s.partition(t)
	survSum := s.write(survivor, surv, sbSurvCount)
	s.promoteForce(victim)
	victSum := s.write(victim, vict, sbVictCount)
	victClash := s.write(victim, clash, sbClashCount)
	if victSum == preVict {
		fatal(t, "the victim's writes did not change its region")
	}

	heal := time.Now()
	if err := s.l.Heal(s.ctx); err != nil {
		fatal(t, err)
	}
	standalone, synced := s.waitResolved(t, heal, 90*time.Second)

	// The incident: exactly one node acted, both agree, the record says
	// what happened. The actor writes its record once it saw both nodes
	// UpToDate, which can be after the test did.
	var mine, peers, all []splitbrain.Incident
	for deadline := time.Now().Add(30 * time.Second); ; {
		mine, peers = s.incidents(t, survivor)
		all = append(slices.Clone(mine), peers...)
		n := len(filterIncidents(all, func(i splitbrain.Incident) bool { return i.Role == "actor" && i.Result == splitbrain.ResultResolved }))
		if n > r || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	// DRBD's split-brain handler (haconf splitbrain notify) recorded the
	// moment DRBD found the split brain, more precisely than polling.
	handlers := filterIncidents(all, func(i splitbrain.Incident) bool { return i.Role == "handler" && i.Started.After(heal) })
	if len(handlers) != 2 {
		errorf(t, "round %d: %d split-brain handler records since the heal, want one per node", r, len(handlers))
	} else if handlers[0].Started.Before(standalone) {
		standalone = handlers[0].Started
	}
	tm := sbTiming{HealToStandAlone: standalone.Sub(heal), StandAloneToSynced: synced.Sub(standalone), HealToSynced: synced.Sub(heal)}
	t.Logf("round %d: link back -> split brain detected %s -> UpToDate/UpToDate on both %s (heal to synced %s)",
		r, tm.HealToStandAlone.Round(time.Millisecond), tm.StandAloneToSynced.Round(time.Millisecond), tm.HealToSynced.Round(time.Millisecond))
	actors := filterIncidents(all, func(i splitbrain.Incident) bool { return i.Role == "actor" })
	for _, a := range actors {
		if a.Node != survivor {
			errorf(t, "%s recorded itself as actor of %s (%s): only the survivor acts", a.Node, a.ID, a.Result)
		}
	}
	for _, i := range all {
		if i.Result == splitbrain.ResultFailed || i.Result == splitbrain.ResultRefused {
			errorf(t, "%s recorded %s as %s (%s): %s", i.Node, i.ID, i.Result, i.Role, i.Error)
		}
	}
	resolved := filterIncidents(actors, func(i splitbrain.Incident) bool { return i.Result == splitbrain.ResultResolved })
	if len(resolved) != r+1 {
		fatalf(t, "round %d: %d resolved actor records, want %d: %+v", r, len(resolved), r+1, actors)
	}
	inc := resolved[len(resolved)-1]
	if inc.Node != survivor || inc.Result != splitbrain.ResultResolved || inc.Victim != victim || inc.Survivor != survivor {
		fatalf(t, "actor record: node %s result %s victim %s survivor %s error %q", inc.Node, inc.Result, inc.Victim, inc.Survivor, inc.Error)
	}
	d := inc.Decision
	if d == nil || d.Policy.Name != s.policy || d.Action != splitbrain.ActionResolve || d.Relation != drbd.RelSplitBrain || d.Reason == "" {
		fatalf(t, "decision %+v", d)
	}
	if d.VictimChangesKiB != (sbVictCount+sbClashCount)*4 || d.SurvivorChangesKiB != sbSurvCount*4 {
		errorf(t, "decision counted %d KiB on the victim and %d KiB on the survivor, want %d and %d",
			d.VictimChangesKiB, d.SurvivorChangesKiB, (sbVictCount+sbClashCount)*4, sbSurvCount*4)
	}
	tm.DivergenceKiB = d.VictimChangesKiB + d.SurvivorChangesKiB
	if inc.Evidence == nil || !inc.Evidence.Nodes[0].Reachable || !inc.Evidence.Nodes[1].Reachable {
		errorf(t, "evidence %+v", inc.Evidence)
	}
	p := inc.Preserved
	wantPath := "/dev/vg0/" + splitbrain.SnapshotName(inc.ID)
	if p == nil || p.Node != victim || p.Kind != splitbrain.PreservedLVM || p.Path != wantPath || !p.Verified || p.Source != "/dev/vg0/haconf" {
		fatalf(t, "preserved %+v, want a verified LVM snapshot %s on %s", p, wantPath, victim)
	}
	var demote, reconnect, healthy time.Time
	for _, e := range inc.Timeline {
		switch {
		case e.Node == victim && slices.Equal(e.Argv, []string{"drbdadm", "secondary", "r0"}) && e.Err == "":
			demote = e.Time
		case e.Node == victim && slices.Contains(e.Argv, "--discard-my-data") && e.Err == "":
			reconnect = e.Time
		case e.Node == "both" && strings.Contains(e.What, "UpToDate/UpToDate"):
			healthy = e.Time
		}
	}
	if demote.IsZero() || reconnect.IsZero() || healthy.IsZero() {
		fatalf(t, "timeline lacks the victim's demotion, its discard or the wait:\n%s", timeline(inc))
	}
	tm.DemoteToSynced, tm.ReconnectToSynced = healthy.Sub(demote), healthy.Sub(reconnect)
	t.Logf("round %d: incident %s timeline (split brain seen by the test at %s):\n%s", r, inc.ID, standalone.Format("15:04:05.000"), timeline(inc))
	t.Logf("round %d: incident %s: victim demoted -> UpToDate/UpToDate %s, discard+reconnect -> UpToDate/UpToDate %s; %d KiB diverged",
		r, inc.ID, tm.DemoteToSynced.Round(time.Millisecond), tm.ReconnectToSynced.Round(time.Millisecond), tm.DivergenceKiB)
	var peerRec []splitbrain.Incident
	for _, i := range peers {
		if i.ID == inc.ID {
			peerRec = append(peerRec, i)
		}
	}
	if len(peerRec) != 1 || peerRec[0].Role != "peer" || peerRec[0].Victim != victim || peerRec[0].Result != splitbrain.ResultResolved {
		errorf(t, "victim's records of %s: %+v, want one resolved peer record naming %s", inc.ID, peerRec, victim)
	}

	// Every block the survivor wrote is on both nodes; the victim's
	// divergent writes are gone from both and kept in the snapshot.
	for _, n := range []struct{ node, dev string }{{survivor, "/dev/drbd0"}, {victim, "/dev/vg0/haconf"}} {
		for _, c := range []struct {
			what         string
			start, count int
			want         string
		}{
			{"base pattern", sbBaseStart, sbBaseCount, s.baseSum},
			{"survivor's writes", surv, sbSurvCount, survSum},
			{"survivor's data where the victim wrote", vict, sbVictCount, preVict},
		} {
			if got := s.sum(n.node, n.dev, c.start, c.count); got != c.want {
				errorf(t, "%s %s: %s at block %d: sha256 %s, want %s", n.node, n.dev, c.what, c.start, got, c.want)
			}
		}
	}
	if got := s.sum(victim, p.Path, vict, sbVictCount); got != victSum {
		errorf(t, "snapshot %s: the victim's writes at block %d: sha256 %s, want %s", p.Path, vict, got, victSum)
	}
	if got := s.sum(victim, p.Path, clash, sbClashCount); got != victClash || got == preClash {
		errorf(t, "snapshot %s: the victim's writes over the survivor's region at block %d: sha256 %s, want %s", p.Path, clash, got, victClash)
	}
	if got := s.sum(victim, p.Path, sbBaseStart, sbBaseCount); got != s.baseSum {
		errorf(t, "snapshot %s: base pattern sha256 %s, want %s", p.Path, got, s.baseSum)
	}
	for _, n := range []string{survivor, victim} {
		if st := s.drbdLine(n); !strings.Contains(st, "ds:UpToDate/UpToDate") || !strings.Contains(st, "oos:0") {
			errorf(t, "%s after the checks: %s", n, st)
		}
	}
	// vg0 has room for two full-size snapshots: drop this one once read.
	s.sh(victim, "lvremove -y "+p.Path+" >/dev/null")
	return tm
}

// TestLabSplitBrainManual: with policy manual the watchdogs record and
// report the split brain and change nothing: both nodes stay StandAlone
// and Primary with their own writes, no snapshot, no discard. Bad input is
// refused with nothing changed: an unknown resource, and a resolution
// asked for while the peer's watchdog is down.
func TestLabSplitBrainManual(t *testing.T) {
	s := newSplitBrainLab(t, "manual")
	surv, vict := sbSurvStart, sbVictStart
	s.partition(t)
	sum1 := s.write("ctl1", surv, sbSurvCount)
	s.promoteForce("ctl2")
	sum2 := s.write("ctl2", vict, sbVictCount)
	if err := s.l.Heal(s.ctx); err != nil {
		fatal(t, err)
	}
	s.waitDRBD("ctl1", "cs:StandAlone")
	s.waitDRBD("ctl2", "cs:StandAlone")

	// Both watchdogs report (each records its own "reported" incident).
	deadline := time.Now().Add(60 * time.Second)
	var reported []splitbrain.Incident
	for {
		mine, peers := s.incidents(t, "ctl1")
		reported = filterIncidents(append(mine, peers...), func(i splitbrain.Incident) bool { return i.Result == splitbrain.ResultReported })
		if len(reported) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(reported) < 2 {
		fatalf(t, "watchdogs recorded %d reported incidents within 60 s, want one per node", len(reported))
	}
	// Give them time to do something wrong.
	time.Sleep(6 * time.Second)
	for _, i := range reported {
		if i.Decision == nil || i.Decision.Action != splitbrain.ActionReport || i.Victim != "" || i.Decision.Relation != drbd.RelSplitBrain || i.Decision.Advice == "" {
			errorf(t, "%s's record %s: decision %+v victim %q", i.Node, i.ID, i.Decision, i.Victim)
		}
		if i.Preserved != nil || len(i.Plan) > 0 {
			errorf(t, "%s's record %s preserves %+v or plans %v", i.Node, i.ID, i.Preserved, i.Plan)
		}
	}
	t.Logf("reported: %s", reported[0].Decision.Advice)
	mine, peers := s.incidents(t, "ctl1")
	for _, i := range append(mine, peers...) {
		if i.Result != splitbrain.ResultReported && i.Result != splitbrain.ResultDetected {
			errorf(t, "%s recorded %s (%s) under policy manual", i.Node, i.Result, i.Role)
		}
	}
	s.untouched(t, sum1, sum2)

	// Bad input: unknown resource.
	before := s.state()
	res := s.exec("ctl1", haconfBin, "-c", sbConfig, "splitbrain", "plan", "--resource", "nosuch")
	if res.ExitCode == 0 || !strings.Contains(string(res.Stderr), `unknown DRBD resource: "nosuch"`) {
		errorf(t, "plan --resource nosuch: exit %d\n%s%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	t.Logf("plan --resource nosuch: exit %d: %s", res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	res = s.exec("ctl1", haconfBin, "-c", sbConfig, "splitbrain", "resolve", "--resource", "nosuch", "--policy", "least-changes", "--yes")
	if res.ExitCode == 0 || !strings.Contains(string(res.Stderr), "nosuch") {
		errorf(t, "resolve --resource nosuch: exit %d\n%s%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	// Bad input: a resolution while the peer cannot be asked (its watchdog is down).
	s.stopWatchdog(t, "ctl2")
	res = s.exec("ctl1", haconfBin, "-c", sbConfig, "splitbrain", "resolve", "--policy", "least-changes", "--yes")
	if res.ExitCode == 0 || !strings.Contains(string(res.Stdout)+string(res.Stderr), "peer unreachable") {
		errorf(t, "resolve with the peer's watchdog down: exit %d\n%s%s", res.ExitCode, res.Stdout, res.Stderr)
	}
	t.Logf("resolve with the peer's watchdog down: exit %d: %s", res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	if after := s.state(); after != before {
		errorf(t, "bad input changed the nodes:\nbefore %s\nafter  %s", before, after)
	}
	s.untouched(t, sum1, sum2)
	s.down(t)
}

// untouched checks that both nodes are still split: StandAlone, Primary,
// each with its own writes, and that no snapshot was taken.
func (s *sbLab) untouched(t *testing.T, sum1, sum2 string) {
	t.Helper()
	for _, n := range []string{"ctl1", "ctl2"} {
		if st := s.drbdLine(n); !strings.Contains(st, "cs:StandAlone ro:Primary/Unknown") {
			errorf(t, "%s is no longer split: %s", n, st)
		}
		if lvs := strings.TrimSpace(s.sh(n, "lvs --noheadings -o lv_name vg0")); lvs != "haconf" {
			errorf(t, "%s has logical volumes %q, want only haconf", n, lvs)
		}
	}
	if got := s.sum("ctl1", "/dev/drbd0", sbSurvStart, sbSurvCount); got != sum1 {
		errorf(t, "ctl1's writes changed: %s, want %s", got, sum1)
	}
	if got := s.sum("ctl2", "/dev/drbd0", sbVictStart, sbVictCount); got != sum2 {
		errorf(t, "ctl2's writes changed: %s, want %s", got, sum2)
	}
}

// state is both nodes' DRBD line and volumes, to compare before and after.
func (s *sbLab) state() string {
	var b strings.Builder
	for _, n := range []string{"ctl1", "ctl2"} {
		fmt.Fprintf(&b, "%s: %s %s; ", n, strings.TrimSpace(s.drbdLine(n)), strings.Join(strings.Fields(s.sh(n, "lvs --noheadings -o lv_name vg0")), ","))
	}
	return b.String()
}

const (
	haconfBin = "/usr/local/sbin/haconf"
	sbConfig  = "/etc/haconf/haconf.yaml"
)

// newSplitBrainLab brings a lab up with DRBD replicating vg0/haconf,
// ctl1 Primary, an 8 MiB pattern written, and a watchdog in each node.
func newSplitBrainLab(t *testing.T, policy string) *sbLab {
	l, ctx := newTestLab(t)
	if err := l.Up(ctx); err != nil {
		fatalf(t, "lab up: %v", err)
	}
	s := &sbLab{execer: &execer{t: t, ctx: ctx, l: l}, l: l, policy: policy, watchdog: map[string]string{}}
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpLogs(t)
		}
	})
	cfg := Config()
	old := []byte("    policy: auto\n")
	if !bytes.Contains(cfg, old) {
		fatalf(t, "the lab config has no %q to replace:\n%s", old, cfg)
	}
	cfg = bytes.Replace(cfg, old, []byte("    policy: "+policy+"\n    incident_dir: /var/lib/haconf/incidents\n"), 1)
	// The watchdogs sign peer requests with a key derived from the
	// corosync authkey, which bootstrap would install: the same on both.
	authkey := make([]byte, 64)
	rand.Read(authkey)
	for _, n := range []string{"ctl1", "ctl2"} {
		s.shIn(n, string(cfg), "mkdir -p /etc/haconf /var/log/haconf && cat > "+sbConfig)
		s.shIn(n, hex.EncodeToString(authkey), "mkdir -p /etc/corosync && umask 077 && cat > /etc/corosync/authkey && chmod 0400 /etc/corosync/authkey")
		// The rendered split-brain handler runs /usr/local/bin/haconf;
		// the lab installs haconf in /usr/local/sbin.
		s.sh(n, "ln -sf "+haconfBin+" /usr/local/bin/haconf")
		out := s.sh(n, haconfBin+" render -c "+sbConfig+" --node "+n+" --root / --drbd-version 8.4")
		if !strings.Contains(out, "/etc/drbd.d/r0.res") {
			fatalf(t, "%s: render wrote no DRBD resource:\n%s", n, out)
		}
		res := s.sh(n, "cat /etc/drbd.d/r0.res")
		for _, want := range []string{"disk /dev/vg0/haconf;", "after-sb-2pri disconnect;", `split-brain "/usr/local/bin/haconf splitbrain notify";`} {
			if !strings.Contains(res, want) {
				fatalf(t, "%s: rendered r0.res lacks %q:\n%s", n, want, res)
			}
		}
		s.sh(n, "modprobe drbd && drbdadm create-md --force r0 >/dev/null 2>&1 && drbdadm up r0")
	}
	s.save("drbd-r0-84-rendered-lab.res", s.sh("ctl1", "cat /etc/drbd.d/r0.res"))
	s.waitDRBD("ctl1", "cs:Connected ro:Secondary/Secondary ds:Inconsistent/Inconsistent")
	start := time.Now()
	s.sh("ctl1", "drbdadm primary --force r0")
	s.waitDRBD("ctl1", "cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate")
	s.waitDRBD("ctl2", "cs:Connected ro:Secondary/Primary ds:UpToDate/UpToDate")
	t.Logf("initial sync of the 256 MiB vg0/haconf: %s", time.Since(start).Round(100*time.Millisecond))
	s.baseSum = s.write("ctl1", sbBaseStart, sbBaseCount)
	if got := s.sum("ctl2", "/dev/vg0/haconf", sbBaseStart, sbBaseCount); got != s.baseSum {
		fatalf(t, "the pattern did not replicate: ctl2 has %s, ctl1 wrote %s", got, s.baseSum)
	}
	for _, n := range []string{"ctl1", "ctl2"} {
		s.startWatchdog(t, n)
	}
	return s
}

func (s *sbLab) startWatchdog(t *testing.T, node string) {
	t.Helper()
	pid := strings.TrimSpace(s.sh(node, haconfBin+" watchdog -c "+sbConfig+" >>/var/log/haconf/watchdog.log 2>&1 </dev/null & echo $!"))
	s.watchdog[node] = pid
	n, _ := NodeByName(node)
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The watchdog answers on the management network; the host is on it.
		out, err := healthz(s.ctx, fmt.Sprintf("http://%s:9750/healthz", n.Mgmt))
		if err == nil && out == "ok" {
			return
		}
		if time.Now().After(deadline) {
			fatalf(t, "%s: watchdog (pid %s) does not answer on %s:9750: %v\n%s", node, pid, n.Mgmt, err, s.sh(node, "tail -n 20 /var/log/haconf/watchdog.log"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func healthz(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return strings.TrimSpace(string(b)), err
}

func (s *sbLab) stopWatchdog(t *testing.T, node string) {
	t.Helper()
	pid := s.watchdog[node]
	s.sh(node, "kill "+pid+"; while kill -0 "+pid+" 2>/dev/null; do sleep 0.1; done")
	delete(s.watchdog, node)
}

// partition cuts ctl2's storage link and waits until both nodes lost the
// connection.
func (s *sbLab) partition(t *testing.T) {
	t.Helper()
	if err := s.l.Partition(s.ctx, "ctl2", LinkStorage); err != nil {
		fatal(t, err)
	}
	s.waitDRBD("ctl1", "cs:WFConnection")
	s.waitDRBD("ctl2", "cs:WFConnection")
}

// promoteForce makes node Primary while the peer is unreachable. The
// rendered resource has fencing resource-only, whose handler needs
// Pacemaker: without it only a forced promotion works, which is the
// operator's mistake this split brain stands for.
func (s *sbLab) promoteForce(node string) {
	s.t.Helper()
	s.sh(node, "drbdadm primary --force r0")
}

// write fills count blocks at start of node's /dev/drbd0 with random data
// and returns their sha256 as read back.
func (s *sbLab) write(node string, start, count int) string {
	s.t.Helper()
	s.sh(node, fmt.Sprintf("dd if=/dev/urandom of=/dev/drbd0 bs=%d seek=%d count=%d oflag=direct conv=notrunc status=none", sbBlock, start, count))
	return s.sum(node, "/dev/drbd0", start, count)
}

// sum is the sha256 of count blocks at start of dev in node, read with
// O_DIRECT (no page cache between DRBD and its backing device).
func (s *sbLab) sum(node, dev string, start, count int) string {
	s.t.Helper()
	out := s.sh(node, fmt.Sprintf("dd if=%s bs=%d skip=%d count=%d iflag=direct status=none | sha256sum", dev, sbBlock, start, count))
	return strings.Fields(out)[0]
}

// drbdLine is the state line of minor 0 in node's /proc/drbd.
func (s *sbLab) drbdLine(node string) string {
	s.t.Helper()
	out := s.sh(node, "cat /proc/drbd")
	i := strings.Index(out, " 0: cs:")
	if i < 0 {
		return out
	}
	return out[i:]
}

// waitResolved polls both nodes from the heal until both are Connected
// UpToDate/UpToDate, and returns when DRBD first showed the split brain
// (StandAlone) and when both were in sync.
func (s *sbLab) waitResolved(t *testing.T, since time.Time, d time.Duration) (standalone, synced time.Time) {
	t.Helper()
	deadline := since.Add(d)
	var last [2]string
	for {
		now := time.Now()
		ok := 0
		for i, n := range []string{"ctl1", "ctl2"} {
			last[i] = s.drbdLine(n)
			if standalone.IsZero() && strings.Contains(last[i], "cs:StandAlone") {
				standalone = now
			}
			if strings.Contains(last[i], "cs:Connected") && strings.Contains(last[i], "ds:UpToDate/UpToDate") {
				ok++
			}
		}
		if ok == 2 {
			if standalone.IsZero() {
				fatalf(t, "both nodes in sync without a split brain seen:\n%s%s", last[0], last[1])
			}
			return standalone, now
		}
		if now.After(deadline) {
			fatalf(t, "not Connected UpToDate/UpToDate %s after the heal:\nctl1%sctl2%s", d, last[0], last[1])
		}
		// Each read forks in the UML nodes, which the watchdogs share.
		time.Sleep(250 * time.Millisecond)
	}
}

// incidents reads `haconf splitbrain status -o json` in node: its own
// records and the peer's (read through the peer's watchdog).
func (s *sbLab) incidents(t *testing.T, node string) (mine, peer []splitbrain.Incident) {
	t.Helper()
	out := s.sh(node, haconfBin+" -c "+sbConfig+" splitbrain status -o json")
	var rep struct {
		Incidents     []splitbrain.Incident `json:"incidents"`
		PeerIncidents []splitbrain.Incident `json:"peer_incidents"`
		PeerError     string                `json:"peer_error"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		fatalf(t, "splitbrain status -o json: %v\n%s", err, out)
	}
	if rep.PeerError != "" {
		fatalf(t, "splitbrain status on %s could not read the peer's incidents: %s", node, rep.PeerError)
	}
	return rep.Incidents, rep.PeerIncidents
}

func filterIncidents(list []splitbrain.Incident, keep func(splitbrain.Incident) bool) []splitbrain.Incident {
	var out []splitbrain.Incident
	for _, i := range list {
		if keep(i) {
			out = append(out, i)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}

func timeline(inc splitbrain.Incident) string {
	var b strings.Builder
	for _, e := range inc.Timeline {
		fmt.Fprintf(&b, "  %s %s %s %v %s\n", e.Time.Format("15:04:05.000"), e.Node, e.What, e.Argv, e.Err)
	}
	return b.String()
}

func (s *sbLab) dumpLogs(t *testing.T) {
	c, err := s.l.Client()
	if err != nil {
		return
	}
	for _, n := range []string{"ctl1", "ctl2"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := c.Exec(ctx, n, ExecRequest{Argv: []string{"sh", "-c", "cat /proc/drbd; tail -n 40 /var/log/haconf/watchdog.log; ls -l /var/lib/haconf/incidents"}})
		cancel()
		if err == nil {
			t.Logf("%s:\n%s%s", n, res.Stdout, res.Stderr)
		}
	}
}

// down takes the lab down and checks that nothing of it is left.
func (s *sbLab) down(t *testing.T) {
	t.Helper()
	downAndCheck(s.ctx, t, s.l)
}

// sbMarkdown is the benchmark table bench/splitbrain/run publishes.
func sbMarkdown(ts []sbTiming) []byte {
	var b bytes.Buffer
	fmt.Fprintln(&b, "| round | divergence | link back -> split brain found (DRBD) | split brain found -> UpToDate/UpToDate (haconf) | link back -> UpToDate/UpToDate | victim demoted -> UpToDate/UpToDate (snapshot, discard, resync) | discard+reconnect -> UpToDate/UpToDate |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|---|")
	sec := func(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
	for i, t := range ts {
		fmt.Fprintf(&b, "| %d | %d KiB (%.2f%%) | %s | %s | %s | %s | %s |\n", i+1, t.DivergenceKiB, float64(t.DivergenceKiB)/(256*1024)*100,
			sec(t.HealToStandAlone), sec(t.StandAloneToSynced), sec(t.HealToSynced), sec(t.DemoteToSynced), sec(t.ReconnectToSynced))
	}
	col := func(f func(sbTiming) time.Duration) (med, mx time.Duration) {
		var v []time.Duration
		for _, t := range ts {
			v = append(v, f(t))
		}
		slices.Sort(v)
		n := len(v)
		med = v[n/2]
		if n%2 == 0 {
			med = (v[n/2-1] + v[n/2]) / 2
		}
		return med, v[n-1]
	}
	for _, agg := range []string{"median", "max"} {
		fmt.Fprintf(&b, "| **%s** | |", agg)
		for _, f := range []func(sbTiming) time.Duration{
			func(t sbTiming) time.Duration { return t.HealToStandAlone },
			func(t sbTiming) time.Duration { return t.StandAloneToSynced },
			func(t sbTiming) time.Duration { return t.HealToSynced },
			func(t sbTiming) time.Duration { return t.DemoteToSynced },
			func(t sbTiming) time.Duration { return t.ReconnectToSynced },
		} {
			med, mx := col(f)
			if agg == "median" {
				fmt.Fprintf(&b, " %s |", sec(med))
			} else {
				fmt.Fprintf(&b, " %s |", sec(mx))
			}
		}
		fmt.Fprintln(&b)
	}
	return b.Bytes()
}
