package pacemaker

import (
	"os"
	"testing"
)

func TestGraphWaits(t *testing.T) {
	for _, c := range []struct {
		file        string
		vipAfterFS  bool
		vipAfterSQL bool
	}{
		{"testdata/graph/takeover-vip-in-group-2.1.5.xml", true, false},
		{"testdata/graph/takeover-vip-parallel-2.1.5.xml", false, false},
	} {
		t.Run(c.file, func(t *testing.T) {
			b, err := os.ReadFile(c.file)
			if err != nil {
				t.Fatal(err)
			}
			g, err := ParseGraph(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range []struct {
				action, first string
				want          bool
			}{
				{"drbd-r0_promote_0", "stonith-ctl1-reboot", true}, // promoted only after ctl1 is fenced
				{"fs-haconf_start_0", "drbd-r0_promote_0", true},
				{"mariadb_start_0", "fs-haconf_start_0", true},
				{"vip_start_0", "drbd-r0_promote_0", true},
				{"vip_start_0", "fs-haconf_start_0", c.vipAfterFS},
				{"vip_start_0", "mariadb_start_0", c.vipAfterSQL},
				{"haproxy_start_0", "vip_start_0", true},
				{"fs-haconf_start_0", "mariadb_start_0", false},
				{"no-such_start_0", "stonith-ctl1-reboot", false},
			} {
				if got := g.Waits(w.action, w.first); got != w.want {
					t.Errorf("%s waits for %s: %v, want %v", w.action, w.first, got, w.want)
				}
			}
			if !g.Has("vip_start_0") || g.Has("vip_start_1") {
				t.Errorf("Has: vip_start_0 %v, vip_start_1 %v", g.Has("vip_start_0"), g.Has("vip_start_1"))
			}
		})
	}
}

func TestParseGraphRejects(t *testing.T) {
	for _, b := range []string{"", "<cib/>", "<transition_graph>"} {
		if _, err := ParseGraph([]byte(b)); err == nil {
			t.Errorf("ParseGraph(%q) = nil error", b)
		}
	}
}
