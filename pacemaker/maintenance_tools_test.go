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

	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/internal/testenv"
	"github.com/haconf/haconf/pacemaker"
	"github.com/haconf/haconf/templates"
)

// cibFile is a CIB file the real Pacemaker tools work on (CIB_file=).
type cibFile struct {
	t    *testing.T
	path string
}

func (f cibFile) run(name string, args ...string) ([]byte, error) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return runner.Exec{}.RunCmd(ctx, runner.Cmd{Name: name, Args: args, Env: []string{"CIB_file=" + f.path}})
}

func (f cibFile) must(name string, args ...string) []byte {
	f.t.Helper()
	out, err := f.run(name, args...)
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

func (f cibFile) mon() pacemaker.CrmMon {
	f.t.Helper()
	m, err := pacemaker.ParseCrmMon(f.must("crm_mon", "--output-as=xml", "--inactive"))
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

func (f cibFile) maintenance() pacemaker.MaintenanceConfig {
	f.t.Helper()
	m, err := pacemaker.ParseMaintenanceConfig(f.must("cibadmin", "--query", "--scope", "crm_config"))
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

func (f cibFile) apply(changes []pacemaker.CIBChange) {
	f.t.Helper()
	for _, c := range changes {
		f.must(c.Args[0], c.Args[1:]...)
	}
}

// steadyCIB renders the example configuration's CIB and lets crm_simulate
// bring both nodes up and start everything (services on one node).
func steadyCIB(t *testing.T) (cibFile, []byte) {
	t.Helper()
	c, err := config.Parse("example.yaml", config.Example())
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := templates.RenderCIB(c, "ctl1", templates.Options{DRBDVersion: "9"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sim := &pacemaker.Simulator{R: runner.Exec{}, Dir: dir}
	tr, err := sim.Start(context.Background(), rendered, c.NodeNames(), []string{"master-drbd-" + c.DRBD.Resource})
	if err != nil {
		t.Fatal(err)
	}
	f := cibFile{t: t, path: filepath.Join(dir, "cib.xml")}
	if err := os.WriteFile(f.path, tr.CIB, 0o600); err != nil {
		t.Fatal(err)
	}
	return f, rendered
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
	testenv.RequireCommands(t, "crm_simulate", "crm_attribute", "crm_mon", "cibadmin", "crm_verify", "crm_rule", "crm_resource")
	f, rendered := steadyCIB(t)
	f.must("crm_attribute", "--type", "crm_config", "-n", "maintenance-mode", "-v", "false")
	if f.mon().MaintenanceAll {
		t.Fatal("maintenance on before haconf set it")
	}

	until := time.Now().Add(time.Hour).Truncate(time.Second)
	f.apply(f.maintenance().OnChanges(until))
	m := f.maintenance()
	if m.BootstrapID != "" || m.Haconf == nil || !m.Haconf.Until.Equal(until) {
		t.Fatalf("after on: %+v (haconf %+v)", m, m.Haconf)
	}
	mon := f.mon()
	if !mon.MaintenanceAll {
		t.Fatal("crm_mon: maintenance-mode is not on")
	}
	if got := m.State(mon.MaintenanceAll, time.Now()); got.Source != pacemaker.SourceHaconf || !got.Until.Equal(until) {
		t.Errorf("state = %+v", got)
	}
	if out, err := f.run("crm_verify", "-x", f.path); err != nil {
		t.Fatalf("crm_verify rejects the maintenance set: %v\n%s", err, out)
	}

	// crm_rule evaluates the rule: in effect now, expired at its end.
	cib, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	rule := pacemaker.MaintenanceSetID + "-rule"
	if _, err := f.run("crm_rule", "-c", "-r", rule, "-X", string(cib)); err != nil {
		t.Errorf("crm_rule: the rule is not in effect now: %v", err)
	}
	if _, err := f.run("crm_rule", "-c", "-r", rule, "-d", pacemaker.FormatCIBTime(until), "-X", string(cib)); err == nil {
		t.Error("crm_rule: the rule is still in effect at its end")
	}

	// The scheduler: with mariadb asked to stop, nothing happens during
	// the window, the stop happens after it; and the transition graph asks
	// for a recheck at the end of the window.
	f.must("crm_resource", "-r", "mariadb", "--meta", "-p", "target-role", "-v", "Stopped")
	graph := filepath.Join(t.TempDir(), "graph.xml")
	during := f.must("crm_simulate", "-x", f.path, "-S", "-t", pacemaker.FormatCIBTime(until.Add(-time.Minute)), "-G", graph)
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
	after := f.must("crm_simulate", "-x", f.path, "-S", "-t", pacemaker.FormatCIBTime(until.Add(time.Second)))
	if !regexp.MustCompile(`Stop\s+mariadb`).Match(after) {
		t.Errorf("mariadb not stopped after the window ended:\n%s", after)
	}
	f.must("crm_resource", "-r", "mariadb", "--meta", "-d", "target-role")

	// A re-apply of the rendered configuration keeps the window.
	for _, u := range pacemaker.ConfigurationUpdates(rendered, f.must("cibadmin", "--query", "--scope", "configuration")) {
		if u.Scope == "crm_config" || u.Scope == "configuration" {
			t.Errorf("re-apply would replace %s during a maintenance window", u.Scope)
		}
	}

	// An operator's permanent maintenance-mode=true in the bootstrap set:
	// off removes it too.
	f.must("crm_attribute", "--type", "crm_config", "-s", pacemaker.BootstrapSetID, "-n", "maintenance-mode", "-v", "true")
	m = f.maintenance()
	if got := m.State(f.mon().MaintenanceAll, time.Now()); got.Source != pacemaker.SourceBootstrap {
		t.Errorf("bootstrap maintenance-mode: state %+v", got)
	}
	f.apply(m.OffChanges())
	if f.mon().MaintenanceAll {
		t.Error("crm_mon: maintenance-mode still on after off")
	}
	if m := f.maintenance(); m.Haconf != nil || m.BootstrapID != "" {
		t.Errorf("after off: %+v", m)
	}
	// Off again changes nothing.
	if c := f.maintenance().OffChanges(); len(c) != 0 {
		t.Errorf("second off: %+v", c)
	}
}
