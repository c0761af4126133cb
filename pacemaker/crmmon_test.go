package pacemaker

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func readMon(t *testing.T, name string) CrmMon {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "crmmon", name))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCrmMon(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

func TestParseCrmMonPromoted(t *testing.T) {
	c := readMon(t, "2.1-promoted-ctl1.xml")
	if c.DC != "ctl1" || len(c.Nodes) != 2 || !c.Nodes[0].Online || !c.Nodes[1].Online || !c.Nodes[0].DC {
		t.Errorf("nodes: dc=%q %+v", c.DC, c.Nodes)
	}
	if got := c.Promoted("drbd-r0-clone"); !reflect.DeepEqual(got, []string{"ctl1"}) {
		t.Errorf("Promoted = %v", got)
	}
	if got := c.RunningOn("vip"); !reflect.DeepEqual(got, []string{"ctl1"}) {
		t.Errorf("vip on %v", got)
	}
	if !c.CloneManaged("drbd-r0-clone") {
		t.Error("clone unmanaged")
	}
	var vip MonResource
	for _, r := range c.Resources {
		if r.ID == "vip" {
			vip = r
		}
	}
	if vip.Group != "g-services" || vip.Agent != "ocf:heartbeat:IPaddr2" {
		t.Errorf("vip %+v", vip)
	}
	if c.Attributes["ctl2"]["master-drbd-r0"] != "10000" {
		t.Errorf("attributes %v", c.Attributes)
	}
	op, ok := c.LastOperation("ctl1", "drbd-r0", "promote")
	if !ok || !op.LastChange.Equal(time.Date(2026, 11, 21, 9, 58, 3, 0, time.UTC)) {
		t.Errorf("promote op %+v %v", op, ok)
	}
	if _, ok := c.LastOperation("ctl2", "drbd-r0", "promote"); ok {
		t.Error("ctl2 never promoted")
	}
}

func TestParseCrmMonOfflineFailedOldRoles(t *testing.T) {
	c := readMon(t, "2.1-ctl2-offline-failed.xml")
	n, _ := c.Node("ctl2")
	if n.Online || !n.Unclean {
		t.Errorf("ctl2 %+v", n)
	}
	if got := c.Promoted("drbd-r0-clone"); !reflect.DeepEqual(got, []string{"ctl1"}) {
		t.Errorf("Master not read as Promoted: %v", got)
	}
	if c.CloneManaged("drbd-r0-clone") {
		t.Error("clone should be unmanaged")
	}
	if len(c.FailedActions) != 1 || c.FailedActions[0].Node != "ctl2" || c.FailedActions[0].Task != "monitor" || c.FailedActions[0].LastChange.IsZero() {
		t.Errorf("failed actions %+v", c.FailedActions)
	}
}

func TestParseCrmMonErrors(t *testing.T) {
	b, _ := os.ReadFile(filepath.Join("testdata", "crmmon", "error.xml"))
	if _, err := ParseCrmMon(b); err == nil {
		t.Error("status 102 accepted")
	}
	if _, err := ParseCrmMon([]byte("<crm_mon version=\"1.1\"/>")); err == nil {
		t.Error("1.1 root accepted")
	}
	if _, err := ParseCrmMon([]byte("not xml")); err == nil {
		t.Error("garbage accepted")
	}
}

func TestParseCrmTime(t *testing.T) {
	want := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for _, s := range []string{"2026-11-21 10:00:00 +00:00", "Sat Nov 21 10:00:00 2026", "2026-11-21T10:00:00Z"} {
		if got := parseCrmTime(s); !got.Equal(want) {
			t.Errorf("parseCrmTime(%q) = %v", s, got)
		}
	}
}

func FuzzParseCrmMon(f *testing.F) {
	for _, n := range []string{"2.1-promoted-ctl1.xml", "2.1-ctl2-offline-failed.xml", "error.xml"} {
		b, err := os.ReadFile(filepath.Join("testdata", "crmmon", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCrmMon(data)
		if err != nil {
			return
		}
		for _, r := range c.Resources {
			if r.Role == "Master" || r.Role == "Slave" {
				t.Fatalf("role not normalized: %+v", r)
			}
		}
	})
}

// Captured in the haconf UML lab (Pacemaker 2.1.5).
func TestParseCrmMonCaptured(t *testing.T) {
	c := readMon(t, "captured-crm_mon-215-xml-peer-fenced-offline.xml")
	n1, _ := c.Node("ctl1")
	n2, _ := c.Node("ctl2")
	if c.DC != "ctl1" || !n1.Online || !n1.DC || n2.Online {
		t.Errorf("nodes %+v", c.Nodes)
	}
	if got := c.RunningOn("fence-ctl1"); len(got) != 1 || got[0] != "ctl1" {
		t.Errorf("fence-ctl1 on %v", got)
	}
	op, ok := c.LastOperation("ctl1", "fence-ctl1", "start")
	if !ok || !op.LastChange.Equal(time.Date(2026, 11, 21, 10, 18, 20, 0, time.UTC)) {
		t.Errorf("start op %+v %v", op, ok)
	}
	for _, op := range c.Operations {
		if op.Resource == "fence-ctl2" && (op.Call != -1 || op.RC != 193) {
			t.Errorf("pending op %+v", op)
		}
	}
	c = readMon(t, "captured-crm_mon-215-xml-two-online-fencing-started.xml")
	for _, n := range c.Nodes {
		if !n.Online {
			t.Errorf("%s offline", n.Name)
		}
	}
}

func TestParseCrmMonBansAndQuorum(t *testing.T) {
	c := readMon(t, "sim-215-fence-peer-ctl1.xml")
	if c.DC != "ctl1" || !c.Quorate {
		t.Errorf("dc=%q quorate=%v", c.DC, c.Quorate)
	}
	want := MonBan{ID: "drbd-fence-by-handler-r0-rule-drbd-r0-clone", Resource: "drbd-r0-clone", Node: "ctl2", Weight: -1000000, PromotedOnly: true}
	if len(c.Bans) != 3 || c.Bans[0] != want {
		t.Fatalf("bans = %+v", c.Bans)
	}
	if _, ok := c.Attributes["ctl2"]["master-drbd-r0"]; ok {
		t.Error("ctl2 has a promotion score; the fixture removed it")
	}
}
