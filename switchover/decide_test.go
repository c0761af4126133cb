package switchover

import (
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/internal/fixtures"
	"github.com/haconf/haconf/pacemaker"
)

var (
	pair = Pair{Nodes: []string{"ctl1", "ctl2"}, Resource: "r0", Services: []string{"fs-haconf", "mariadb", "vip", "haproxy"}}
	now  = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
)

// fixture is crm_mon's XML in state, simulated for the switchover tests.
func fixture(t *testing.T, state string) []byte {
	t.Helper()
	return fixtures.Read(t, "pacemaker", "crmmon/sim-switchover/"+state+".xml")
}

func mon(t *testing.T, state string) pacemaker.CrmMon {
	t.Helper()
	m, err := pacemaker.ParseCrmMon(fixture(t, state))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func healthyDRBD() *drbd.Resource {
	return &drbd.Resource{Name: "r0", Role: drbd.RolePrimary, Disk: drbd.DiskUpToDate, Connection: drbd.ConnConnected,
		Replication: drbd.ReplEstablished, PeerRole: drbd.RoleSecondary, PeerDisk: drbd.DiskUpToDate}
}

func facts(t *testing.T, state string) Facts {
	return Facts{Mon: mon(t, state), Local: "ctl1", DRBD: healthyDRBD(), Now: now}
}

// failed returns the names of the failed checks and their details.
func failed(d Decision) (names []string, details string) {
	var ds []string
	for _, c := range d.Failed() {
		names = append(names, c.Name)
		ds = append(ds, c.Detail)
	}
	return names, strings.Join(ds, " | ")
}

func TestDecide(t *testing.T) {
	for _, c := range []struct {
		name   string
		target string
		state  string         // the crm_mon capture: facts(t, state)
		mod    func(f *Facts) // changes to those facts, if any
		// wantFailed are the checks that must fail (nil: all pass), each
		// with a phrase its detail must contain.
		wantFailed map[string]string
		wantFrom   string
		wantTo     string
		already    bool
		expired    []string
	}{
		{name: "healthy, to the other node", state: "ctl1-active", wantFrom: "ctl1", wantTo: "ctl2"},
		{name: "healthy, --to the other node", target: "ctl2", state: "ctl1-active", wantFrom: "ctl1", wantTo: "ctl2"},
		{name: "run on the standby controller", state: "ctl1-active", mod: func(f *Facts) {
			f.Local = "ctl2"
			f.DRBD.Role, f.DRBD.PeerRole = drbd.RoleSecondary, drbd.RolePrimary
		}, wantFrom: "ctl1", wantTo: "ctl2"},
		{name: "target already active", target: "ctl1", state: "ctl1-active", wantFrom: "ctl1", wantTo: "ctl1", already: true},
		{name: "already active even in maintenance", target: "ctl1", state: "maintenance", wantFrom: "ctl1", wantTo: "ctl1", already: true},
		{name: "back after a switchover, its constraint expired", state: "ctl2-active-moved", mod: func(f *Facts) {
			f.Locations = []pacemaker.Location{{ID: "cli-prefer-drbd-r0-clone", Resource: "drbd-r0-clone", Role: "Promoted", Node: "ctl2", Score: "INFINITY", Expires: now.Add(-time.Minute)}}
		}, wantFrom: "ctl2", wantTo: "ctl1", expired: []string{"cli-prefer-drbd-r0-clone"}},
		{name: "an interrupted switchover's constraint still in effect", state: "ctl2-active-moved", mod: func(f *Facts) {
			f.Locations = []pacemaker.Location{{ID: "cli-prefer-drbd-r0-clone", Resource: "drbd-r0-clone", Role: "Promoted", Node: "ctl2", Score: "INFINITY", Expires: now.Add(time.Minute)}}
		}, wantFrom: "ctl2", wantTo: "ctl1", wantFailed: map[string]string{CheckConstraints: "crm_resource --clear -r drbd-r0-clone"}},
		{name: "target in standby", state: "ctl2-standby", wantFrom: "ctl1", wantTo: "ctl2",
			wantFailed: map[string]string{CheckNodes: "ctl2 is in standby"}},
		{name: "target failed and fenced", state: "ctl2-failed", mod: func(f *Facts) {
			f.DRBD.Connection, f.DRBD.PeerDisk, f.DRBD.PeerRole = drbd.ConnConnecting, drbd.DiskDUnknown, drbd.RoleUnknown
		}, wantFrom: "ctl1", wantTo: "ctl2", wantFailed: map[string]string{
			CheckNodes: "ctl2 is offline", CheckDRBD: "ctl2's disk is DUnknown", CheckPromotion: `ctl2's DRBD promotion score is master-drbd-r0=""`,
		}},
		{name: "target unclean", state: "ctl1-active", mod: func(f *Facts) {
			f.Mon.Nodes[1].Unclean = true
		}, wantFrom: "ctl1", wantTo: "ctl2", wantFailed: map[string]string{CheckNodes: "ctl2 is UNCLEAN"}},
		{name: "maintenance", state: "maintenance", wantFrom: "ctl1", wantTo: "ctl2",
			wantFailed: map[string]string{CheckMaintenance: "haconf maintenance off"}},
		{name: "node maintenance on the target", state: "ctl1-active", mod: func(f *Facts) {
			f.Mon.Nodes[1].Maintenance = true
		}, wantFrom: "ctl1", wantTo: "ctl2", wantFailed: map[string]string{CheckNodes: "ctl2 is in maintenance"}},
		{name: "no DC", state: "ctl1-active", mod: func(f *Facts) {
			f.Mon.DC, f.Mon.Quorate = "", false
		}, wantFrom: "ctl1", wantTo: "ctl2", wantFailed: map[string]string{CheckCluster: "no DC"}},
		{name: "peer outdated, fence-peer constraint", state: "fence-peer-ctl1", mod: func(f *Facts) {
			f.DRBD.PeerDisk = drbd.DiskOutdated
		}, wantFrom: "ctl1", wantTo: "ctl2", wantFailed: map[string]string{
			CheckDRBD:        "ctl2's disk is Outdated: promoting it would serve stale data and leave the only good copy behind",
			CheckPromotion:   "master-drbd-r0",
			CheckConstraints: "drbd-fence-by-handler-r0-rule-drbd-r0-clone keeps drbd-r0-clone (promoted) off ctl2: DRBD's fence-peer constraint",
		}},
		{name: "target's own disk outdated, seen from the target", state: "ctl1-active", mod: func(f *Facts) {
			f.Local = "ctl2"
			f.DRBD.Disk = drbd.DiskOutdated
		}, wantFrom: "ctl1", wantTo: "ctl2", wantFailed: map[string]string{CheckDRBD: "ctl2's disk is Outdated"}},
		{name: "source's disk inconsistent", state: "ctl1-active", mod: func(f *Facts) {
			f.DRBD.Disk = drbd.DiskInconsistent
		}, wantFrom: "ctl1", wantTo: "ctl2", wantFailed: map[string]string{CheckDRBD: "the other disk is Inconsistent"}},
		{name: "resync running", state: "ctl1-active", mod: func(f *Facts) {
			f.DRBD.Replication, f.DRBD.PeerDisk = "SyncSource", drbd.DiskInconsistent
			f.DRBD.Sync = &drbd.SyncProgress{Percent: 43.5}
		}, wantFrom: "ctl1", wantTo: "ctl2", wantFailed: map[string]string{CheckDRBD: "a resync is running (SyncSource, 43.5% done)"}},
		{name: "split brain: StandAlone", state: "ctl1-active", mod: func(f *Facts) {
			f.DRBD.Connection, f.DRBD.PeerDisk = drbd.ConnStandAlone, drbd.DiskDUnknown
		}, wantFrom: "ctl1", wantTo: "ctl2", wantFailed: map[string]string{CheckDRBD: "StandAlone on ctl1"}},
		{name: "DRBD unreadable", state: "ctl1-active", mod: func(f *Facts) {
			f.DRBD, f.DRBDError = nil, "ctl1: DRBD is not loaded"
		}, wantFrom: "ctl1", wantTo: "ctl2", wantFailed: map[string]string{CheckDRBD: "cannot read DRBD r0 on ctl1: ctl1: DRBD is not loaded"}},
		{name: "services banned from the target", state: "services-banned-ctl2", mod: func(f *Facts) {
			f.Locations = []pacemaker.Location{{ID: "cli-ban-g-services-on-ctl2", Resource: "g-services", Role: "Started", Node: "ctl2", Score: "-INFINITY"}}
		}, wantFrom: "ctl1", wantTo: "ctl2", wantFailed: map[string]string{CheckConstraints: "cli-ban-g-services-on-ctl2"}},
		{name: "failed start on the target", state: "ctl1-active", mod: func(f *Facts) {
			f.Mon.FailedActions = append(f.Mon.FailedActions, pacemaker.MonFailedAction{OpKey: "mariadb_start_0", Node: "ctl2", ExitStatus: "error", Task: "start"})
		}, wantFrom: "ctl1", wantTo: "ctl2", wantFailed: map[string]string{CheckFailures: "crm_resource --cleanup -r mariadb -N ctl2"}},
		{name: "a failure elsewhere does not matter", state: "ctl1-active", mod: func(f *Facts) {
			f.Mon.FailedActions = append(f.Mon.FailedActions,
				pacemaker.MonFailedAction{OpKey: "mariadb_monitor_10000", Node: "ctl1", ExitStatus: "error", Task: "monitor"},
				pacemaker.MonFailedAction{OpKey: "rabbitmq_start_0", Node: "ctl2", ExitStatus: "error", Task: "start"})
		}, wantFrom: "ctl1", wantTo: "ctl2"},
		{name: "a service stopped", state: "ctl1-active", mod: func(f *Facts) {
			for i := range f.Mon.Resources {
				if f.Mon.Resources[i].ID == "haproxy" {
					f.Mon.Resources[i].Role, f.Mon.Resources[i].Nodes = pacemaker.RoleStopped, nil
				}
			}
		}, wantFrom: "ctl1", wantTo: "ctl2", wantFailed: map[string]string{CheckServices: "haproxy runs on no node"}},
		{name: "DRBD unmanaged", state: "ctl1-active", mod: func(f *Facts) {
			for i := range f.Mon.Resources {
				if f.Mon.Resources[i].Clone == "drbd-r0-clone" {
					f.Mon.Resources[i].Managed = false
				}
			}
		}, wantFrom: "ctl1", wantTo: "ctl2", wantFailed: map[string]string{CheckServices: "drbd-r0 is unmanaged"}},
		{name: "services down", state: "services-banned-ctl2", mod: func(f *Facts) {
			for i := range f.Mon.Resources {
				if f.Mon.Resources[i].Role == pacemaker.RolePromoted {
					f.Mon.Resources[i].Role = pacemaker.RoleUnpromoted
				}
			}
			f.Locations = []pacemaker.Location{{ID: "cli-ban-g-services-on-ctl2", Resource: "g-services", Node: "ctl2", Score: "-INFINITY"}}
		}, target: "ctl2", wantTo: "ctl2", wantFailed: map[string]string{CheckServices: "Promoted on no node", CheckConstraints: "cli-ban"}},
		{name: "target's data rated a bad idea by the DRBD agent", state: "ctl1-active", mod: func(f *Facts) {
			f.Mon.Attributes["ctl2"]["master-drbd-r0"] = "10"
		}, wantFrom: "ctl1", wantTo: "ctl2", wantFailed: map[string]string{CheckPromotion: `master-drbd-r0="10" (at least 1000 needed)`}},
		{name: "not a controller", target: "ctl3", state: "ctl1-active", wantFrom: "ctl1", wantTo: "ctl3",
			wantFailed: map[string]string{CheckNodes: "ctl3 is not one of the controllers", CheckPromotion: "ctl3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := facts(t, c.state)
			if c.mod != nil {
				c.mod(&f)
			}
			d := Decide(pair, c.target, f)
			if d.From != c.wantFrom || d.To != c.wantTo || d.AlreadyActive != c.already {
				t.Fatalf("from %q to %q already %v, want %q %q %v", d.From, d.To, d.AlreadyActive, c.wantFrom, c.wantTo, c.already)
			}
			if c.already {
				if d.OK() || len(d.Checks) != 0 {
					t.Errorf("already active: OK %v, checks %+v", d.OK(), d.Checks)
				}
				return
			}
			names, details := failed(d)
			if len(names) != len(c.wantFailed) {
				t.Errorf("failed checks %v, want %d: %s", names, len(c.wantFailed), details)
			}
			for name, phrase := range c.wantFailed {
				found := false
				for _, ch := range d.Failed() {
					if ch.Name == name && strings.Contains(ch.Detail, phrase) {
						found = true
					}
				}
				if !found {
					t.Errorf("no failed %s check with %q: %s", name, phrase, details)
				}
			}
			if d.OK() != (len(c.wantFailed) == 0) {
				t.Errorf("OK() = %v with failed %v", d.OK(), names)
			}
			if strings.Join(d.Expired, ",") != strings.Join(c.expired, ",") {
				t.Errorf("expired %v, want %v", d.Expired, c.expired)
			}
			if len(d.Checks) != 8 {
				t.Errorf("%d checks, want all 8 reported: %+v", len(d.Checks), d.Checks)
			}
		})
	}
}

func TestObserve(t *testing.T) {
	d := Decision{From: "ctl1", To: "ctl2"}
	if pr := Observe(pair, d, nil, mon(t, "ctl1-active")); pr.Promoted || len(pr.Started) != 0 || pr.Done || pr.Abort != "" {
		t.Errorf("before the move: %+v", pr)
	}
	if pr := Observe(pair, d, nil, mon(t, "ctl2-active-moved")); !pr.Done || !pr.Promoted || len(pr.Started) != 4 || pr.Abort != "" {
		t.Errorf("after the move: %+v", pr)
	}
	failedMon := mon(t, "move-mariadb-failed-ctl2")
	pr := Observe(pair, d, nil, failedMon)
	if pr.Done || !strings.Contains(pr.Abort, "mariadb_start_0 failed on ctl2 (error: User-injected result)") {
		t.Errorf("mariadb failed: %+v", pr)
	}
	// The same failure already there when the decision was made (parsed
	// again: a different time.Location pointer must not matter).
	again := mon(t, "move-mariadb-failed-ctl2")
	if pr := Observe(pair, d, again.FailedActions, failedMon); pr.Abort != "" {
		t.Errorf("an old failure aborted: %+v", pr)
	}
	if pr := Observe(pair, d, nil, mon(t, "ctl2-failed")); !strings.Contains(pr.Abort, "ctl2 left the cluster") {
		t.Errorf("target failed: %+v", pr)
	}
}

func TestPlacement(t *testing.T) {
	if got := Placement(pair, mon(t, "ctl2-active-moved")); got != "DRBD r0 Promoted on ctl2; fs-haconf, mariadb, vip, haproxy on ctl2" {
		t.Errorf("moved: %q", got)
	}
	if got := Placement(pair, mon(t, "move-mariadb-failed-ctl2")); got != "DRBD r0 Promoted on ctl2; fs-haconf, mariadb on ctl2; vip, haproxy stopped" {
		t.Errorf("mariadb failed: %q", got)
	}
}
