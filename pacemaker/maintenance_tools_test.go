package pacemaker_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/pacemaker"
	"github.com/haconf/haconf/pacemaker/pacemakertest"
)

// maintenance reads haconf's maintenance window from the cluster's CIB.
func maintenance(s *pacemakertest.Cluster) pacemaker.MaintenanceConfig {
	s.T.Helper()
	m, err := pacemaker.ParseMaintenanceConfig(s.Must("cibadmin", "--query", "--scope", "crm_config"))
	if err != nil {
		s.T.Fatal(err)
	}
	return m
}

var recheckBy = regexp.MustCompile(`<transition_graph [^>]*recheck-by="(\d+)"`)

// TestMaintenanceWindowWithPacemakerTools checks the timed maintenance
// mode with the real Pacemaker tools on a CIB file: the set haconf writes
// is valid, puts the cluster in maintenance (over an operator's
// maintenance-mode=false in cib-bootstrap-options), is in effect until its
// end and not after, makes the scheduler plan a recheck at exactly its end
// (so it expires with no daemon), survives a configuration re-apply, and
// off ends it.
func TestMaintenanceWindowWithPacemakerTools(t *testing.T) {
	s := pacemakertest.Start(t)
	rendered := s.Rendered
	s.Must("crm_attribute", "--type", "crm_config", "-n", "maintenance-mode", "-v", "false")
	if s.Mon().MaintenanceAll {
		t.Fatal("maintenance on before haconf set it")
	}

	until := time.Now().Add(time.Hour).Truncate(time.Second)
	s.Apply(maintenance(s).OnChanges(until))
	m := maintenance(s)
	if m.BootstrapID != "" || m.Haconf == nil || !m.Haconf.Until.Equal(until) {
		t.Fatalf("after on: %+v (haconf %+v)", m, m.Haconf)
	}
	mon := s.Mon()
	if !mon.MaintenanceAll {
		t.Fatal("crm_mon: maintenance-mode is not on")
	}
	if got := m.State(mon.MaintenanceAll, time.Now()); got.Source != pacemaker.SourceHaconf || !got.Until.Equal(until) {
		t.Errorf("state = %+v", got)
	}
	if out, err := s.Run(context.Background(), "crm_verify", "-x", s.Path); err != nil {
		t.Fatalf("crm_verify rejects the maintenance set: %v\n%s", err, out)
	}

	// crm_rule evaluates the rule: in effect now, expired at its end.
	cib, err := os.ReadFile(s.Path)
	if err != nil {
		t.Fatal(err)
	}
	rule := pacemaker.MaintenanceSetID + "-rule"
	if _, err := s.Run(context.Background(), "crm_rule", "-c", "-r", rule, "-X", string(cib)); err != nil {
		t.Errorf("crm_rule: the rule is not in effect now: %v", err)
	}
	if _, err := s.Run(context.Background(), "crm_rule", "-c", "-r", rule, "-d", pacemaker.FormatCIBTime(until), "-X", string(cib)); err == nil {
		t.Error("crm_rule: the rule is still in effect at its end")
	}

	// The scheduler: with mariadb asked to stop, nothing happens during
	// the window, the stop happens after it; and the transition graph asks
	// for a recheck at the end of the window.
	s.Must("crm_resource", "-r", "mariadb", "--meta", "-p", "target-role", "-v", "Stopped")
	graph := filepath.Join(t.TempDir(), "graph.xml")
	during := s.Must("crm_simulate", "-x", s.Path, "-S", "-t", pacemaker.FormatCIBTime(until.Add(-time.Minute)), "-G", graph)
	if strings.Contains(string(during), "Stop       mariadb") {
		t.Errorf("mariadb stopped during maintenance:\n%s", during)
	}
	g, err := os.ReadFile(graph)
	if err != nil {
		t.Fatal(err)
	}
	if mm := recheckBy.FindSubmatch(g); mm == nil || string(mm[1]) != strconv.FormatInt(until.Unix(), 10) {
		t.Errorf("transition graph recheck-by %q, want the end of the window %d", mm, until.Unix())
	}
	after := s.Must("crm_simulate", "-x", s.Path, "-S", "-t", pacemaker.FormatCIBTime(until.Add(time.Second)))
	if !regexp.MustCompile(`Stop\s+mariadb`).Match(after) {
		t.Errorf("mariadb not stopped after the window ended:\n%s", after)
	}
	s.Must("crm_resource", "-r", "mariadb", "--meta", "-d", "target-role")

	// A re-apply of the rendered configuration keeps the window.
	for _, u := range pacemaker.ConfigurationUpdates(rendered, s.Must("cibadmin", "--query", "--scope", "configuration")) {
		if u.Scope == "crm_config" || u.Scope == "configuration" {
			t.Errorf("re-apply would replace %s during a maintenance window", u.Scope)
		}
	}

	// An operator's permanent maintenance-mode=true in the bootstrap set:
	// off removes it too.
	s.Must("crm_attribute", "--type", "crm_config", "-s", pacemaker.BootstrapSetID, "-n", "maintenance-mode", "-v", "true")
	m = maintenance(s)
	if got := m.State(s.Mon().MaintenanceAll, time.Now()); got.Source != pacemaker.SourceBootstrap {
		t.Errorf("bootstrap maintenance-mode: state %+v", got)
	}
	s.Apply(m.OffChanges())
	if s.Mon().MaintenanceAll {
		t.Error("crm_mon: maintenance-mode still on after off")
	}
	if m := maintenance(s); m.Haconf != nil || m.BootstrapID != "" {
		t.Errorf("after off: %+v", m)
	}
	// Off again changes nothing.
	if c := maintenance(s).OffChanges(); len(c) != 0 {
		t.Errorf("second off: %+v", c)
	}
}
