package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/internal/testenv"
	"github.com/haconf/haconf/pacemaker"
	"github.com/haconf/haconf/templates"
)

// simulatedCluster renders the example configuration's CIB, lets
// crm_simulate bring both nodes up (services on ctl1, ctl1 the DC) and
// points the Pacemaker tools haconf runs at it (CIB_file).
func simulatedCluster(t *testing.T) string {
	t.Helper()
	testenv.RequireCommands(t, "crm_simulate", "crm_attribute", "crm_mon", "cibadmin", "crm_resource")
	c, err := config.Parse("example.yaml", config.Example())
	if err != nil {
		t.Fatal(err)
	}
	cib, err := templates.RenderCIB(c, "ctl1", templates.Options{DRBDVersion: "9"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sim := &pacemaker.Simulator{R: runner.Exec{}, Dir: dir}
	tr, err := sim.Start(context.Background(), cib, c.NodeNames(), []string{"master-drbd-" + c.DRBD.Resource})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "cluster.xml")
	if err := os.WriteFile(p, tr.CIB, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CIB_file", p)
	if _, err := (runner.Exec{}).Run(context.Background(), "cibadmin", "--modify", "--xml-text", `<cib dc-uuid="1"/>`); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMaintenanceCommands(t *testing.T) {
	simulatedCluster(t)
	expectOut := func(args []string, code int, want ...string) string {
		t.Helper()
		out, errOut, got := haconf(t, args...)
		if got != code {
			t.Fatalf("haconf %s: exit %d, want %d\n%s%s", strings.Join(args, " "), got, code, out, errOut)
		}
		for _, w := range want {
			if !strings.Contains(out+errOut, w) {
				t.Errorf("haconf %s: no %q in:\n%s%s", strings.Join(args, " "), w, out, errOut)
			}
		}
		return out
	}
	expectOut([]string{"maintenance", "status"}, 0, "maintenance: off")
	expectOut([]string{"maintenance", "on", "--ttl", "0"}, exitUsage, "--no-expiry")
	expectOut([]string{"maintenance", "on", "--ttl", "10s"}, exitUsage, "at least 1m")
	expectOut([]string{"maintenance", "on", "--no-expiry", "--ttl", "1h"}, exitUsage, "exclude each other")

	// The dry run changes nothing.
	expectOut([]string{"maintenance", "on", "--ttl", "20m", "--dry-run"}, 0, "cibadmin --create --scope crm_config --xml-text '<cluster_property_set id=\"haconf-maintenance\"")
	expectOut([]string{"maintenance", "status"}, 0, "maintenance: off")

	start := time.Now()
	expectOut([]string{"maintenance", "on", "--ttl", "20m"}, 0, "maintenance on until ", "It ends by itself")
	out := expectOut([]string{"maintenance", "status", "-o", "json"}, 0)
	var rep maintenanceReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.On || rep.Source != pacemaker.SourceHaconf || rep.Until.Before(start.Add(20*time.Minute-time.Second)) || rep.Until.After(time.Now().Add(20*time.Minute)) {
		t.Errorf("status after on --ttl 20m: %+v", rep)
	}
	if rep.RemainingSeconds < 1190 || rep.RemainingSeconds > 1200 {
		t.Errorf("remaining %d s", rep.RemainingSeconds)
	}
	expectOut([]string{"maintenance", "status"}, 0, "maintenance: ON until ", "ends by itself")

	// Again: the window is replaced, not added.
	expectOut([]string{"maintenance", "on", "--ttl", "2h", "--dry-run"}, 0, "cibadmin --replace")
	expectOut([]string{"maintenance", "on", "--no-expiry"}, 0, "NO END")
	expectOut([]string{"maintenance", "status"}, 0, "ON with no end (haconf maintenance on --no-expiry)")

	expectOut([]string{"maintenance", "off"}, 0, "maintenance off: Pacemaker manages the resources again")
	expectOut([]string{"maintenance", "off"}, 0, "already off")
	expectOut([]string{"maintenance", "status"}, 0, "maintenance: off")

	// Somebody's permanent maintenance-mode=true (pcs property set):
	// status names it, off ends it.
	if _, err := (runner.Exec{}).Run(context.Background(), "crm_attribute", "--type", "crm_config", "-n", "maintenance-mode", "-v", "true"); err != nil {
		t.Fatal(err)
	}
	expectOut([]string{"maintenance", "status"}, 0, "cib-bootstrap-options, set outside haconf")
	expectOut([]string{"maintenance", "off"}, 0, "maintenance off")
	expectOut([]string{"maintenance", "status"}, 0, "maintenance: off")
}

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"cibadmin", "--delete", "--xml-text", `<nvpair id="x"/>`, "it's", ""})
	want := `cibadmin --delete --xml-text '<nvpair id="x"/>' 'it'\''s' ''`
	if got != want {
		t.Errorf("shellJoin = %s, want %s", got, want)
	}
}
