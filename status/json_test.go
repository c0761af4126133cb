package status

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/pacemaker"
)

// haconf status -o json keeps the fields whose false, zero or empty value
// says something: a script must be able to read quorate: false on quorum
// loss, not find the field gone.
func TestJSONKeepsFalseAndZero(t *testing.T) {
	no := false
	s := Snapshot{Node: "ctl1", Time: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC),
		Corosync:  CorosyncFacts{Quorum: &pacemaker.Quorum{Members: []pacemaker.Member{{NodeID: 1, Name: "ctl1"}}}},
		Pacemaker: PacemakerFacts{Mon: &pacemaker.CrmMon{Resources: []pacemaker.MonResource{{ID: "p_drbd"}}}, StonithEnabled: &no, Bans: []Ban{{ID: "cli-ban"}}},
		DRBD:      DRBDFacts{Status: &drbd.Status{Resources: []drbd.Resource{{Name: "r0"}}}},
		MySQL:     MySQLFacts{Reachable: true},
	}
	r := Assess(s)
	r.Facts = &s
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"reasons":[`, `"quorate":false`, `"activity_blocked":false`, `"local":false`, `"maintenance_mode":false`,
		`"promotable":false`, `"stonith_enabled":false`, `"promoted_only":false`, `"split_brain":false`, `"out_of_sync_kib":0`, `"read_only":false`, `"backup_max_age":0`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("status JSON lacks %s:\n%s", key, b)
		}
	}
}
