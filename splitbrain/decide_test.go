package splitbrain

import (
	"errors"
	"testing"

	"github.com/haconf/haconf/drbd"
)

const (
	uuidParent = 0x5A5A5A5A5A5A5A50
	uuidCtl1   = 0x1111111111111110
	uuidCtl2   = 0x2222222222222220
	uuidOther  = 0x7777777777777770
)

func yes() *bool { b := true; return &b }
func no() *bool  { b := false; return &b }

// node builds one side of a split brain: StandAlone, new generation from
// the common parent, oos KiB written since.
func node(name string, cur uint64, oos int64) NodeEvidence {
	return NodeEvidence{Node: name, Reachable: true,
		State: drbd.Resource{Name: "r0", Role: drbd.RoleSecondary, Disk: drbd.DiskUpToDate, Connection: drbd.ConnStandAlone, PeerRole: drbd.RoleUnknown, PeerDisk: drbd.DiskDUnknown, OutOfSyncKiB: oos},
		GI:    drbd.GI{Current: cur | 1, Bitmap: uuidParent, Raw: "test"}}
}

func promoted(n NodeEvidence, who ...string) NodeEvidence {
	n.Cluster = &ClusterView{Promoted: who, Managed: true}
	return n
}

func fenceOwner(n NodeEvidence, owner string) NodeEvidence {
	c := *n.Cluster
	c.FenceOwner = owner
	n.Cluster = &c
	return n
}

func ev(a, b NodeEvidence) Evidence { return Evidence{Resource: "r0", Nodes: [2]NodeEvidence{a, b}} }

func TestDecide(t *testing.T) {
	auto := Policy{Name: drbd.PolicyAuto}
	type want struct {
		action, victim string
		err            error
	}
	withVIP := func(n NodeEvidence, v *bool) NodeEvidence { n.HasVIP = v; return n }
	withMySQL := func(n NodeEvidence) NodeEvidence {
		n.MySQL = &MySQLEvidence{Running: true, File: "mysql-bin.000004", Position: 1234}
		return n
	}
	primary := func(n NodeEvidence) NodeEvidence { n.State.Role = drbd.RolePrimary; return n }
	unreachable := NodeEvidence{Node: "ctl2", Error: "dial tcp 192.0.2.12:9750: connection refused"}
	unrelated := node("ctl2", uuidCtl2, 8)
	unrelated.GI.Bitmap = uuidOther
	connected := func(n NodeEvidence) NodeEvidence { n.State.Connection = drbd.ConnConnected; return n }
	ahead := node("ctl1", uuidCtl1, 8)
	behind := node("ctl2", uuidParent, 0)
	behind.GI.Bitmap = 0
	waiting := func(n NodeEvidence) NodeEvidence { n.State.Connection = drbd.ConnConnecting; return n }

	tests := []struct {
		name string
		ev   Evidence
		p    Policy
		want want
	}{
		// zero changes
		{"auto: ctl2 wrote nothing", ev(promoted(node("ctl1", uuidCtl1, 52), "ctl1"), promoted(node("ctl2", uuidCtl2, 0), "ctl1")), auto, want{ActionResolve, "ctl2", nil}},
		{"auto: promoted ctl1 wrote nothing, ctl2 did", ev(promoted(node("ctl1", uuidCtl1, 0), "ctl1"), promoted(node("ctl2", uuidCtl2, 40), "ctl1")), auto, want{ActionResolve, "ctl1", nil}},
		{"auto: nobody wrote, discard the unauthorized side", ev(promoted(node("ctl1", uuidCtl1, 0), "ctl2"), promoted(node("ctl2", uuidCtl2, 0), "ctl2")), auto, want{ActionResolve, "ctl1", nil}},
		{"auto: zero changes wins over conflicting evidence (nothing lost)", ev(withVIP(promoted(node("ctl1", uuidCtl1, 52), "ctl1"), yes()), withVIP(promoted(node("ctl2", uuidCtl2, 0), "ctl2"), yes())), auto, want{ActionResolve, "ctl2", nil}},
		// one-sided writes (no split brain in the generations)
		{"auto: ctl1 ahead, reconnect", ev(ahead, behind), auto, want{ActionReconnect, "", nil}},
		{"auto: same generation, reconnect", ev(node("ctl1", uuidCtl1, 0), node("ctl2", uuidCtl1, 0)), auto, want{ActionReconnect, "", nil}},
		// both sides wrote
		{"auto: both wrote, ctl1 promoted", ev(withMySQL(withVIP(primary(promoted(node("ctl1", uuidCtl1, 52), "ctl1")), yes())), withVIP(promoted(node("ctl2", uuidCtl2, 400), "ctl1"), no())), auto, want{ActionResolve, "ctl2", nil}},
		{"auto: both wrote, ctl2 promoted, more writes on ctl1", ev(promoted(node("ctl1", uuidCtl1, 900), "ctl2"), promoted(node("ctl2", uuidCtl2, 10), "ctl2")), auto, want{ActionResolve, "ctl1", nil}},
		{"auto: both wrote, only the VIP names ctl2", ev(withVIP(node("ctl1", uuidCtl1, 9), no()), withVIP(node("ctl2", uuidCtl2, 10), yes())), auto, want{ActionResolve, "ctl1", nil}},
		{"auto: both wrote, no authority", ev(node("ctl1", uuidCtl1, 9), node("ctl2", uuidCtl2, 10)), auto, want{"", "", ErrNoSafeChoice}},
		{"least-changes: ctl1 wrote less", ev(node("ctl1", uuidCtl1, 9), node("ctl2", uuidCtl2, 10)), Policy{Name: drbd.PolicyLeastChanges}, want{ActionResolve, "ctl1", nil}},
		{"least-changes: tie", ev(node("ctl1", uuidCtl1, 10), node("ctl2", uuidCtl2, 10)), Policy{Name: drbd.PolicyLeastChanges}, want{"", "", ErrNoSafeChoice}},
		{"prefer ctl2", ev(promoted(node("ctl1", uuidCtl1, 9), "ctl1"), node("ctl2", uuidCtl2, 10)), Policy{Name: drbd.PolicyPrefer, Prefer: "ctl2"}, want{ActionResolve, "ctl1", nil}},
		{"prefer unknown node", ev(node("ctl1", uuidCtl1, 9), node("ctl2", uuidCtl2, 10)), Policy{Name: drbd.PolicyPrefer, Prefer: "ctl9"}, want{"", "", ErrNoSafeChoice}},
		{"manual: report only", ev(promoted(node("ctl1", uuidCtl1, 52), "ctl1"), promoted(node("ctl2", uuidCtl2, 0), "ctl1")), Policy{Name: drbd.PolicyManual}, want{ActionReport, "", nil}},
		// unrelated data
		{"auto: unrelated", ev(promoted(node("ctl1", uuidCtl1, 9), "ctl1"), unrelated), auto, want{"", "", ErrUnrelatedData}},
		{"prefer: unrelated still refused", ev(node("ctl1", uuidCtl1, 9), unrelated), Policy{Name: drbd.PolicyPrefer, Prefer: "ctl1"}, want{"", "", ErrUnrelatedData}},
		{"manual: unrelated reported", ev(node("ctl1", uuidCtl1, 9), unrelated), Policy{Name: drbd.PolicyManual}, want{ActionReport, "", nil}},
		// peer unreachable
		{"auto: peer unreachable", ev(promoted(node("ctl1", uuidCtl1, 9), "ctl1"), unreachable), auto, want{"", "", ErrPeerUnreachable}},
		{"prefer: peer unreachable", ev(node("ctl1", uuidCtl1, 9), unreachable), Policy{Name: drbd.PolicyPrefer, Prefer: "ctl1"}, want{"", "", ErrPeerUnreachable}},
		{"least-changes: peer unreachable", ev(node("ctl1", uuidCtl1, 9), unreachable), Policy{Name: drbd.PolicyLeastChanges}, want{"", "", ErrPeerUnreachable}},
		// evidence conflicting
		{"auto: views disagree", ev(promoted(node("ctl1", uuidCtl1, 9), "ctl1"), promoted(node("ctl2", uuidCtl2, 10), "ctl2")), auto, want{"", "", ErrEvidenceConflict}},
		{"auto: two promoted", ev(promoted(node("ctl1", uuidCtl1, 9), "ctl1", "ctl2"), promoted(node("ctl2", uuidCtl2, 10), "ctl1", "ctl2")), auto, want{"", "", ErrEvidenceConflict}},
		{"auto: VIP on the unpromoted node", ev(withVIP(promoted(node("ctl1", uuidCtl1, 9), "ctl1"), no()), withVIP(promoted(node("ctl2", uuidCtl2, 10), "ctl1"), yes())), auto, want{"", "", ErrEvidenceConflict}},
		{"auto: VIP on both", ev(withVIP(promoted(node("ctl1", uuidCtl1, 9), "ctl1"), yes()), withVIP(promoted(node("ctl2", uuidCtl2, 10), "ctl1"), yes())), auto, want{"", "", ErrEvidenceConflict}},
		{"auto: MariaDB on the unpromoted node", ev(promoted(node("ctl1", uuidCtl1, 9), "ctl1"), withMySQL(promoted(node("ctl2", uuidCtl2, 10), "ctl1"))), auto, want{"", "", ErrEvidenceConflict}},
		{"auto: DRBD Primary on the unpromoted node", ev(promoted(node("ctl1", uuidCtl1, 9), "ctl1"), primary(promoted(node("ctl2", uuidCtl2, 10), "ctl1"))), auto, want{"", "", ErrEvidenceConflict}},
		// CI, session 3: the operator forced the standby Primary while
		// Pacemaker managed DRBD; its monitor then reported ctl2 Promoted,
		// but the fence constraint placed when replication broke still
		// let only ctl1 be promoted. auto must not call ctl2 authorized.
		{"auto: promoted node is not the fence constraint's", ev(fenceOwner(promoted(node("ctl1", uuidCtl1, 4420), "ctl2"), "ctl1"), fenceOwner(promoted(node("ctl2", uuidCtl2, 512), "ctl2"), "ctl1")), auto, want{"", "", ErrEvidenceConflict}},
		{"auto: fence constraint agrees with Pacemaker", ev(fenceOwner(promoted(node("ctl1", uuidCtl1, 4420), "ctl1"), "ctl1"), fenceOwner(promoted(node("ctl2", uuidCtl2, 512), "ctl1"), "ctl1")), auto, want{ActionResolve, "ctl2", nil}},
		{"auto: fence constraint, ctl2 wrote nothing", ev(fenceOwner(promoted(node("ctl1", uuidCtl1, 4420), "ctl2"), "ctl1"), fenceOwner(promoted(node("ctl2", uuidCtl2, 0), "ctl2"), "ctl1")), auto, want{ActionResolve, "ctl2", nil}},
		{"least-changes ignores authority conflicts", ev(promoted(node("ctl1", uuidCtl1, 9), "ctl1"), promoted(node("ctl2", uuidCtl2, 10), "ctl2")), Policy{Name: drbd.PolicyLeastChanges}, want{ActionResolve, "ctl1", nil}},
		// not a split brain
		{"connected: nothing to do", ev(connected(node("ctl1", uuidCtl1, 0)), connected(node("ctl2", uuidCtl1, 0))), auto, want{"", "", ErrNoSplitBrain}},
		{"diverged but not yet detected", ev(waiting(node("ctl1", uuidCtl1, 9)), waiting(node("ctl2", uuidCtl2, 10))), auto, want{"", "", ErrNoSplitBrain}},
		// Seen in the lab: during a storage partition only the primary
		// wrote; both nodes are WFConnection and DRBD reconnects by itself.
		// A reconnect decision here made the watchdog wait for
		// UpToDate/UpToDate for minutes, blind to the split brain that
		// followed.
		{"link down, one side ahead: nothing to do", ev(waiting(ahead), waiting(behind)), auto, want{"", "", ErrNoSplitBrain}},
		{"manual: link down, one side ahead: nothing to report", ev(waiting(ahead), waiting(behind)), Policy{Name: drbd.PolicyManual}, want{"", "", ErrNoSplitBrain}},
		{"manual: connected: nothing to report", ev(connected(node("ctl1", uuidCtl1, 0)), connected(node("ctl2", uuidCtl1, 0))), Policy{Name: drbd.PolicyManual}, want{"", "", ErrNoSplitBrain}},
		{"one side StandAlone, other ahead: reconnect", ev(ahead, waiting(behind)), auto, want{ActionReconnect, "", nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Decide(tt.ev, tt.p)
			if tt.want.err != nil {
				if !errors.Is(err, tt.want.err) {
					t.Fatalf("err = %v, want %v (decision %+v)", err, tt.want.err, d)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if d.Action != tt.want.action || d.Victim != tt.want.victim {
				t.Fatalf("action %q victim %q, want %q %q (%s)", d.Action, d.Victim, tt.want.action, tt.want.victim, d.Reason)
			}
			if d.Action == ActionResolve && (d.Survivor == "" || d.Survivor == d.Victim) {
				t.Fatalf("survivor %q victim %q", d.Survivor, d.Victim)
			}
			if d.Reason == "" {
				t.Fatal("no reason")
			}
			// Deterministic and symmetric: the other node, seeing the
			// evidence in the other order, decides the same.
			swapped := Evidence{Resource: tt.ev.Resource, Nodes: [2]NodeEvidence{tt.ev.Nodes[1], tt.ev.Nodes[0]}}
			d2, err2 := Decide(swapped, tt.p)
			if err2 != nil || d2.Victim != d.Victim || d2.Action != d.Action {
				t.Fatalf("swapped evidence decides %+v %v, want victim %q", d2, err2, d.Victim)
			}
		})
	}
}

func TestDecideManualAdvice(t *testing.T) {
	d, err := Decide(ev(promoted(node("ctl1", uuidCtl1, 52), "ctl1"), promoted(node("ctl2", uuidCtl2, 7), "ctl1")), Policy{Name: drbd.PolicyManual})
	if err != nil || d.Action != ActionReport || d.Victim != "" || d.Advice == "" {
		t.Fatalf("%+v %v", d, err)
	}
}

func TestDecideNoChangesNoAuthorityIsDeterministic(t *testing.T) {
	for _, e := range []Evidence{ev(node("ctl1", uuidCtl1, 0), node("ctl2", uuidCtl2, 0)), ev(node("ctl2", uuidCtl2, 0), node("ctl1", uuidCtl1, 0))} {
		d, err := Decide(e, Policy{Name: drbd.PolicyAuto})
		if err != nil || d.Victim != "ctl2" {
			t.Fatalf("%+v %v", d, err)
		}
	}
}
