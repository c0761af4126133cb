package splitbrain

import (
	"errors"
	"testing"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/internal/fixtures"
)

// TestCapturedSplitBrain84 decides on a split brain captured in the lab:
// /proc/drbd and drbdadm get-gi of both nodes (drbd/testdata).
func TestCapturedSplitBrain84(t *testing.T) {
	gi1, err := drbd.ParseGI(fixtures.Read(t, "drbd", "captured-drbdadm-84-get-gi-splitbrain-ctl1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	gi2, err := drbd.ParseGI(fixtures.Read(t, "drbd", "captured-drbdadm-84-get-gi-splitbrain-ctl2.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// The bitmap UUIDs differ only in the role bit: 6C787FD3E962CB2B/...2A.
	if gi1.Bitmap == gi2.Bitmap || drbd.Relate(gi1, gi2) != drbd.RelSplitBrain {
		t.Fatalf("Relate(%s, %s) = %s, want split-brain (role bit masked)", gi1.Raw, gi2.Raw, drbd.Relate(gi1, gi2))
	}
	show, err := drbd.ParseGI(fixtures.Read(t, "drbd", "captured-drbdadm-84-show-gi-splitbrain-ctl1.txt"))
	if err != nil || show.Current != gi1.Current {
		t.Fatalf("show-gi %+v %v", show, err)
	}
	connected, _ := drbd.ParseGI(fixtures.Read(t, "drbd", "captured-drbdadm-84-get-gi-connected-primary.txt"))
	if drbd.Relate(gi1, connected) != drbd.RelAhead {
		t.Fatalf("split side vs pre-split generation: %s", drbd.Relate(gi1, connected))
	}

	var ev Evidence
	ev.Resource = "r0"
	for i, name := range []string{"ctl1", "ctl2"} {
		st, err := drbd.ParseProcDRBD(fixtures.Read(t, "drbd", "captured-proc-drbd-84-standalone-splitbrain-"+name+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		r := st.Resources[0]
		if r.Connection != drbd.ConnStandAlone || r.Role != drbd.RolePrimary || r.PeerDisk != drbd.DiskDUnknown || r.Protocol != "" {
			t.Fatalf("%s: %+v", name, r)
		}
		ev.Nodes[i] = NodeEvidence{Node: name, Reachable: true, State: r, GI: []drbd.GI{gi1, gi2}[i]}
	}
	if ev.Nodes[0].State.OutOfSyncKiB != 64 || ev.Nodes[1].State.OutOfSyncKiB != 32 {
		t.Fatalf("oos %d %d", ev.Nodes[0].State.OutOfSyncKiB, ev.Nodes[1].State.OutOfSyncKiB)
	}
	// Both wrote and nothing names an authorized primary: auto refuses,
	// least-changes discards ctl2 (32 KiB < 64 KiB).
	if _, err := Decide(ev, Policy{Name: drbd.PolicyAuto}); !errors.Is(err, ErrNoSafeChoice) {
		t.Fatalf("auto: %v", err)
	}
	d, err := Decide(ev, Policy{Name: drbd.PolicyLeastChanges})
	if err != nil || d.Victim != "ctl2" || d.VictimChangesKiB != 32 {
		t.Fatalf("least-changes: %+v %v", d, err)
	}
}
