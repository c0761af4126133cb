package pacemaker

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func readCIB(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "cib", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var until = time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)

func TestMaintenanceSetRoundTrip(t *testing.T) {
	for _, u := range []time.Time{until, {}} {
		m, err := ParseMaintenanceConfig([]byte("<crm_config>" + string(MaintenanceSet(u)) + "</crm_config>"))
		if err != nil {
			t.Fatal(err)
		}
		want := &MaintenanceWindow{Value: "true", Until: u}
		if !reflect.DeepEqual(m.Haconf, want) || m.Bootstrap != "" || m.Others != nil {
			t.Errorf("until %v: parsed %+v (haconf %+v)", u, m, m.Haconf)
		}
	}
	if s := string(MaintenanceSet(until)); !strings.Contains(s, `operation="lt" end="2026-11-21 14:00:00Z"`) {
		t.Errorf("set lacks the lt rule: %s", s)
	}
	if strings.Contains(string(MaintenanceSet(time.Time{})), "<rule") {
		t.Error("a set without end has a rule")
	}
}

func TestParseMaintenanceConfig(t *testing.T) {
	m, err := ParseMaintenanceConfig(readCIB(t, "cibadmin-215-crm_config-bootstrap-haconf-other.xml"))
	if err != nil {
		t.Fatal(err)
	}
	want := MaintenanceConfig{
		Bootstrap: "true", BootstrapID: "cib-bootstrap-options-maintenance-mode",
		Haconf: &MaintenanceWindow{Value: "true", Until: until},
		Others: []string{"weekend-window"},
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("got %+v (haconf %+v), want %+v", m, m.Haconf, want)
	}
	m, err = ParseMaintenanceConfig(readCIB(t, "cibadmin-215-crm_config-bootstrap-true.xml"))
	if err != nil || m.Bootstrap != "true" || m.BootstrapID != "cib-bootstrap-options-maintenance-mode" || m.Haconf != nil || m.Others != nil {
		t.Errorf("crm_attribute's maintenance-mode: %+v, %v", m, err)
	}
	// An edited rule: the end is unknown.
	edited := strings.Replace(string(MaintenanceSet(until)), `operation="lt"`, `operation="gt"`, 1)
	m, _ = ParseMaintenanceConfig([]byte(edited))
	if m.Haconf == nil || !m.Haconf.Unrecognized {
		t.Errorf("edited rule: %+v", m.Haconf)
	}
}

func TestMaintenanceState(t *testing.T) {
	before, after := until.Add(-time.Minute), until.Add(time.Minute)
	haconf := MaintenanceConfig{Haconf: &MaintenanceWindow{Value: "true", Until: until}}
	forever := MaintenanceConfig{Haconf: &MaintenanceWindow{Value: "true"}}
	boot := MaintenanceConfig{Bootstrap: "true", BootstrapID: "x", Haconf: haconf.Haconf}
	other := MaintenanceConfig{Others: []string{"weekend-window"}}
	for _, c := range []struct {
		name string
		m    MaintenanceConfig
		on   bool
		now  time.Time
		want MaintenanceState
	}{
		{"haconf window", haconf, true, before, MaintenanceState{On: true, Source: SourceHaconf, SetID: MaintenanceSetID, Until: until}},
		{"haconf window ended", haconf, false, after, MaintenanceState{Ended: until}},
		{"no expiry", forever, true, after, MaintenanceState{On: true, Source: SourceHaconf, SetID: MaintenanceSetID}},
		{"bootstrap wins", boot, true, before, MaintenanceState{On: true, Source: SourceBootstrap, SetID: BootstrapSetID}},
		{"other set", other, true, before, MaintenanceState{On: true, Source: SourceOther, SetID: "weekend-window"}},
		{"off, nothing configured", MaintenanceConfig{}, false, before, MaintenanceState{}},
		// crm_mon is the truth: a set that should be on but is not (the
		// DC's clock, a rule) is reported off.
		{"crm_mon says off", haconf, false, before, MaintenanceState{}},
	} {
		if got := c.m.State(c.on, c.now); got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestMaintenanceChanges(t *testing.T) {
	argv := func(cs []Command) []string {
		var out []string
		for _, c := range cs {
			out = append(out, strings.Join(c.Argv, " "))
		}
		return out
	}
	set := string(MaintenanceSet(until))
	// Fresh: create the set.
	if got := argv(MaintenanceConfig{}.OnChanges(until)); !reflect.DeepEqual(got, []string{"cibadmin --create --scope crm_config --xml-text " + set}) {
		t.Errorf("on, fresh: %q", got)
	}
	// Existing set and a bootstrap maintenance-mode: replace, then remove
	// the bootstrap one (after: no gap when it was true).
	m := MaintenanceConfig{Bootstrap: "false", BootstrapID: "cib-bootstrap-options-maintenance-mode", Haconf: &MaintenanceWindow{Value: "true"}}
	want := []string{
		"cibadmin --replace --scope crm_config --xml-text " + set,
		`cibadmin --delete --xml-text <nvpair id="cib-bootstrap-options-maintenance-mode"/>`,
	}
	if got := argv(m.OnChanges(until)); !reflect.DeepEqual(got, want) {
		t.Errorf("on, replace: %q", got)
	}
	// Off removes haconf's set; a bootstrap false is left alone, true removed.
	if got := argv(m.OffChanges()); !reflect.DeepEqual(got, []string{`cibadmin --delete --xml-text <cluster_property_set id="haconf-maintenance"/>`}) {
		t.Errorf("off: %q", got)
	}
	m.Bootstrap = "true"
	if got := argv(m.OffChanges()); len(got) != 2 || got[1] != want[1] {
		t.Errorf("off with bootstrap true: %q", got)
	}
	if got := (MaintenanceConfig{Others: []string{"w"}}).OffChanges(); got != nil {
		t.Errorf("off touches another set: %+v", got)
	}
}

func TestConfigurationUpdatesKeepMaintenanceSet(t *testing.T) {
	withSet := strings.Replace(live, "</crm_config>", string(MaintenanceSet(until))+"</crm_config>", 1)
	if u := ConfigurationUpdates([]byte(rendered), []byte(withSet)); len(u) != 0 {
		t.Fatalf("a maintenance window made a re-apply push %+v", u)
	}
	changed := strings.Replace(rendered, `value="true"/></cluster_property_set>`, `value="false"/></cluster_property_set>`, 1)
	u := ConfigurationUpdates([]byte(changed), []byte(withSet))
	if len(u) != 1 || u[0].Scope != "crm_config" || !strings.Contains(string(u[0].XML), `id="haconf-maintenance"`) || !strings.Contains(string(u[0].XML), `value="false"`) {
		t.Fatalf("crm_config update lost the change or the maintenance set: %+v", u)
	}
}
