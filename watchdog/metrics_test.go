package watchdog

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/splitbrain"
)

// The whole /metrics registry passes promlint (names, units, help,
// counters ending in _total), and carries the build, the Go runtime and
// the process besides the watchdog's own view.
func TestMetricsRegistry(t *testing.T) {
	sb := &SplitBrainCheck{Resource: "r0"}
	s := &Server{Watchdog: &Watchdog{Specs: []Spec{{Check: sb}}}, Node: stubNode{"ctl2"}, SplitBrain: sb, DRBD: &DRBDState{},
		Incidents: &splitbrain.IncidentStore{Dir: t.TempDir()}, Build: BuildInfo{Version: "1.4.0", Commit: "3347667"}}
	s.DRBD.Set(drbd.Status{Resources: []drbd.Resource{{Name: "r0", Role: "Secondary", Disk: "Inconsistent", Connection: "Connected", Replication: "SyncTarget",
		PeerRole: "Primary", PeerDisk: "UpToDate", OutOfSyncKiB: 1024, Sync: &drbd.SyncProgress{Percent: 42.5}}}})
	reg := s.registry()
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	want := `
# HELP haconf_build_info The running haconf's version, commit and Go version (always 1).
# TYPE haconf_build_info gauge
haconf_build_info{commit="3347667",goversion="` + runtime.Version() + `",version="1.4.0"} 1
# HELP haconf_drbd_sync_ratio Progress of a running resync, from 0 to 1.
# TYPE haconf_drbd_sync_ratio gauge
haconf_drbd_sync_ratio{resource="r0",volume="0"} 0.425
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "haconf_build_info", "haconf_drbd_sync_ratio"); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"go_goroutines", "process_start_time_seconds", "haconf_watchdog_remediations_total", "haconf_watchdog_dry_run_remediations_total"} {
		if !names[n] && (n != "process_start_time_seconds" || runtime.GOOS == "linux") {
			t.Errorf("%s missing from /metrics", n)
		}
	}
	if names["haconf_drbd_sync_percent"] {
		t.Error("haconf_drbd_sync_percent is still exported")
	}
}

// dryRunCheck is a scriptCheck whose remediations are dry runs.
type dryRunCheck struct{ scriptCheck }

func (c *dryRunCheck) IsDryRun() bool { return true }

// A dry run's remediation did not happen: it is counted apart, and
// haconf_watchdog_remediations_total stays 0.
func TestDryRunRemediationsCountedApart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &dryRunCheck{scriptCheck{script: []bool{false}}}
		w := &Watchdog{Specs: []Spec{{Check: c, Interval: time.Second, FailuresBeforeAction: 1, Cooldown: 2 * time.Second}}}
		ctx, cancel := context.WithCancel(t.Context())
		go w.Run(ctx)
		time.Sleep(3500 * time.Millisecond) // fails at 0,1,2,3: remediations at 0 and 2
		synctest.Wait()
		cancel()
		st := w.States()[0]
		if st.Remediations != 0 || st.DryRunRemediations != 2 || len(c.remediations()) != 2 {
			t.Fatalf("state %+v, Remediate called %d times; want 0 remediations, 2 dry runs", st, len(c.remediations()))
		}
		s := &Server{Watchdog: w, Node: stubNode{"ctl1"}}
		want := `
# HELP haconf_watchdog_dry_run_remediations_total Remediations of the check only planned and logged (haconf watchdog --dry-run).
# TYPE haconf_watchdog_dry_run_remediations_total counter
haconf_watchdog_dry_run_remediations_total{check="script"} 2
# HELP haconf_watchdog_remediations_total Remediations started for the check (not counting dry runs).
# TYPE haconf_watchdog_remediations_total counter
haconf_watchdog_remediations_total{check="script"} 0
`
		if err := testutil.GatherAndCompare(s.registry(), strings.NewReader(want), "haconf_watchdog_remediations_total", "haconf_watchdog_dry_run_remediations_total"); err != nil {
			t.Fatal(err)
		}
	})
	// The split-brain check is a dry runner exactly when --dry-run is set.
	if (&SplitBrainCheck{}).IsDryRun() || !(&SplitBrainCheck{DryRun: true}).IsDryRun() {
		t.Fatal("SplitBrainCheck.IsDryRun does not follow DryRun")
	}
}
