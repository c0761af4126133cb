package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/pacemaker"
	"github.com/haconf/haconf/pacemaker/pacemakertest"
)

// simulatedCluster brings the example configuration's CIB up with
// crm_simulate (services on ctl1, ctl1 the DC) and points the Pacemaker
// tools haconf runs at it (CIB_file).
func simulatedCluster(t *testing.T) string {
	t.Helper()
	c := pacemakertest.Start(t)
	t.Setenv("CIB_file", c.Path)
	return c.Path
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
	expectOut([]string{"maintenance", "on", "--ttl", "0"}, cli.ExitUsage, "--no-expiry")
	expectOut([]string{"maintenance", "on", "--ttl", "10s"}, cli.ExitUsage, "at least 1m")
	expectOut([]string{"maintenance", "on", "--no-expiry", "--ttl", "1h"}, cli.ExitUsage, "exclude each other")

	// The dry run changes nothing.
	expectOut([]string{"maintenance", "on", "--ttl", "20m", "--dry-run"}, 0, "cibadmin --create --scope crm_config --xml-text '<cluster_property_set id=\"haconf-maintenance\"")
	expectOut([]string{"maintenance", "status"}, 0, "maintenance: off")

	start := time.Now()
	expectOut([]string{"maintenance", "on", "--ttl", "20m"}, 0, "maintenance on until ", "It ends by itself")
	out := expectOut([]string{"maintenance", "status", "-o", "json"}, 0, `"schema": "haconf.maintenance.status/v1"`)
	var rep maintenanceReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.On || rep.Source != pacemaker.SourceHaconf || rep.Until.Before(start.Add(20*time.Minute-time.Second)) || rep.Until.After(time.Now().Add(20*time.Minute)) {
		t.Errorf("status after on --ttl 20m: %+v", rep)
	}
	if rep.RemainingSeconds == nil || *rep.RemainingSeconds < 1190 || *rep.RemainingSeconds > 1200 || rep.NodesInMaint == nil {
		t.Errorf("remaining %v s, nodes in maintenance %v", rep.RemainingSeconds, rep.NodesInMaint)
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
