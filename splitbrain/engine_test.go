package splitbrain

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/drbd"
)

type pair struct {
	w          *fakeWorld
	ctl1, ctl2 *Node
	store      *IncidentStore
	dir        string
}

func newPair(t *testing.T, version string) *pair {
	t.Helper()
	w := newFakeWorld(version, "ctl1", "ctl2")
	dir := t.TempDir()
	cfg := drbd.Config{Resource: "r0", Disk: "/dev/vg0/haconf", Device: "/dev/drbd0"}
	cfg.SetDefaults()
	cfg.SplitBrain.PreserveDir = filepath.Join(dir, "preserve")
	clock := time.Date(2026, 11, 21, 10, 2, 40, 0, time.UTC)
	now := func() time.Time { return clock }
	p := &pair{w: w, dir: dir}
	mk := func(name string) *Node {
		return &Node{Node: drbd.Node{Name: name, Run: w.nodes[name], Config: cfg}, VIP: "192.0.2.10", Now: now,
			Incidents: &IncidentStore{Dir: filepath.Join(dir, name, "incidents")}}
	}
	p.ctl1, p.ctl2 = mk("ctl1"), mk("ctl2")
	p.store = p.ctl1.Incidents
	return p
}

func (p *pair) engine(local *Node, peer Member, pol Policy) *Engine {
	return &Engine{Local: local, Peer: peer, Policy: pol, Incidents: local.Incidents, PollInterval: time.Millisecond, WaitTimeout: 5 * time.Second, Now: local.Now}
}

func (p *pair) mutations() []string {
	return append(append([]string{}, p.w.nodes["ctl1"].mutations...), p.w.nodes["ctl2"].mutations...)
}

func TestResolveBothWrote84Copy(t *testing.T) {
	p := newPair(t, "8.4.11")
	p.w.splitBrain("ctl1", map[string][]int{"ctl1": {1, 2, 3}, "ctl2": {7, 8}})
	survivorBefore := digest(p.w.nodes["ctl1"].data)
	victimBefore := digest(p.w.nodes["ctl2"].data)

	inc, err := p.engine(p.ctl1, p.ctl2, Policy{Name: drbd.PolicyAuto}).Resolve(context.Background(), "r0", ResolveOptions{})
	if err != nil {
		t.Fatalf("Resolve: %v\n%+v", err, inc.Timeline)
	}
	if inc.Result != ResultResolved || inc.Victim != "ctl2" || inc.Survivor != "ctl1" {
		t.Fatalf("incident %+v", inc)
	}
	c1, c2 := p.w.nodes["ctl1"], p.w.nodes["ctl2"]
	if digest(c1.data) != survivorBefore || digest(c2.data) != survivorBefore {
		t.Fatal("survivor's writes not intact on both nodes")
	}
	if inc.Preserved == nil || inc.Preserved.Kind != PreservedCopy || !filepath.IsAbs(inc.Preserved.Path) || !inc.Preserved.Verified {
		t.Fatalf("preserved %+v", inc.Preserved)
	}
	if c2.files[inc.Preserved.Path] != victimBefore || inc.Preserved.SHA256 != victimBefore {
		t.Fatal("preserved copy does not hold the victim's divergent writes")
	}
	for _, n := range []*fakeNode{c1, c2} {
		if n.conn != drbd.ConnConnected || n.disk != drbd.DiskUpToDate || n.repl != drbd.ReplEstablished {
			t.Errorf("%s: %s %s %s", n.name, n.conn, n.disk, n.repl)
		}
	}
	if !p.w.managed || p.w.cleanups != 1 {
		t.Errorf("managed=%v cleanups=%d", p.w.managed, p.w.cleanups)
	}
	wantVictim := []string{"drbdadm disconnect r0", "drbdadm secondary r0", "dd if=/dev/vg0/haconf of=" + inc.Preserved.Path + " bs=4M conv=fsync status=none", "drbdadm connect --discard-my-data r0"}
	if strings.Join(c2.mutations, "\n") != strings.Join(wantVictim, "\n") {
		t.Errorf("victim ran:\n%s", strings.Join(c2.mutations, "\n"))
	}
	if !strings.Contains(strings.Join(c1.mutations, "\n"), "drbdadm connect r0") {
		t.Errorf("survivor ran:\n%s", strings.Join(c1.mutations, "\n"))
	}
	// Both nodes recorded the incident, naming the victim and the copy.
	for _, s := range []*IncidentStore{p.ctl1.Incidents, p.ctl2.Incidents} {
		list, err := s.List()
		if err != nil || len(list) != 1 || list[0].Victim != "ctl2" || list[0].Preserved == nil || list[0].Preserved.Path != inc.Preserved.Path {
			t.Errorf("%s: %+v %v", s.Dir, list, err)
		}
	}
	if !strings.Contains(inc.Timeline[len(inc.Timeline)-3].What+inc.Timeline[len(inc.Timeline)-2].What+inc.Timeline[len(inc.Timeline)-1].What, "UpToDate/UpToDate") &&
		!timelineHas(inc, "UpToDate/UpToDate") {
		t.Error("timeline lacks the UpToDate/UpToDate entry")
	}
}

func timelineHas(inc *Incident, s string) bool {
	for _, e := range inc.Timeline {
		if strings.Contains(e.What, s) {
			return true
		}
	}
	return false
}

func TestResolve9LVMSnapshot(t *testing.T) {
	p := newPair(t, "9.2.8")
	for _, n := range p.w.nodes {
		n.lvm = true
	}
	p.w.splitBrain("ctl2", map[string][]int{"ctl1": {5}, "ctl2": {6, 9}})
	victimBefore := p.w.nodes["ctl1"].data
	survivorBefore := digest(p.w.nodes["ctl2"].data)

	inc, err := p.engine(p.ctl2, p.ctl1, Policy{Name: drbd.PolicyAuto}).Resolve(context.Background(), "r0", ResolveOptions{})
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if inc.Victim != "ctl1" || inc.Preserved.Kind != PreservedLVM || inc.Preserved.Path != "/dev/vg0/haconf-sb-20261121T100240Z-r0" {
		t.Fatalf("%+v %+v", inc, inc.Preserved)
	}
	snap := p.w.nodes["ctl1"].snapshots["haconf-sb-20261121T100240Z-r0"]
	if digest(snap) != digest(victimBefore) || snap[5] != "ctl1-wrote-5" {
		t.Fatal("snapshot does not hold the victim's writes")
	}
	if digest(p.w.nodes["ctl1"].data) != survivorBefore {
		t.Fatal("victim not resynced from survivor")
	}
	got := strings.Join(p.w.nodes["ctl2"].mutations, "\n")
	if !strings.Contains(got, "drbdadm disconnect r0\ndrbdadm connect r0") {
		t.Errorf("DRBD 9 survivor must disconnect then connect:\n%s", got)
	}
}

func TestResolveRefusesAndChangesNothing(t *testing.T) {
	tests := []struct {
		name  string
		setup func(p *pair) (*Engine, string)
		want  error
	}{
		{"unrelated data", func(p *pair) (*Engine, string) {
			p.w.splitBrain("ctl1", map[string][]int{"ctl1": {1}, "ctl2": {2}})
			p.w.nodes["ctl2"].gi.Bitmap = uuidOther
			return p.engine(p.ctl1, p.ctl2, Policy{Name: drbd.PolicyAuto}), "r0"
		}, ErrUnrelatedData},
		{"peer unreachable", func(p *pair) (*Engine, string) {
			p.w.splitBrain("ctl1", map[string][]int{"ctl1": {1}, "ctl2": {2}})
			return p.engine(p.ctl1, unreachableMember{"ctl2"}, Policy{Name: drbd.PolicyAuto}), "r0"
		}, ErrPeerUnreachable},
		{"unknown resource", func(p *pair) (*Engine, string) {
			p.w.splitBrain("ctl1", map[string][]int{"ctl1": {1}, "ctl2": {2}})
			return p.engine(p.ctl1, p.ctl2, Policy{Name: drbd.PolicyAuto}), "r9"
		}, drbd.ErrUnknownResource},
		{"evidence conflict: VIP on the unpromoted node", func(p *pair) (*Engine, string) {
			p.w.splitBrain("ctl1", map[string][]int{"ctl1": {1}, "ctl2": {2}})
			p.w.vipOn = "ctl2"
			return p.engine(p.ctl1, p.ctl2, Policy{Name: drbd.PolicyAuto}), "r0"
		}, ErrEvidenceConflict},
		{"running on the victim", func(p *pair) (*Engine, string) {
			p.w.splitBrain("ctl1", map[string][]int{"ctl1": {1}, "ctl2": {2}})
			return p.engine(p.ctl2, p.ctl1, Policy{Name: drbd.PolicyAuto}), "r0"
		}, ErrNotSurvivor},
		{"no split brain", func(p *pair) (*Engine, string) {
			return p.engine(p.ctl1, p.ctl2, Policy{Name: drbd.PolicyAuto}), "r0"
		}, ErrNoSplitBrain},
		{"victim disagrees (prefers itself)", func(p *pair) (*Engine, string) {
			p.w.splitBrain("ctl1", map[string][]int{"ctl1": {1}, "ctl2": {2}})
			victim := p.engine(p.ctl2, nil, Policy{Name: drbd.PolicyPrefer, Prefer: "ctl2"})
			victim.Peer = p.ctl1
			return p.engine(p.ctl1, applyVia{victim}, Policy{Name: drbd.PolicyAuto}), "r0"
		}, ErrDisagree},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPair(t, "8.4.11")
			e, res := tt.setup(p)
			before := map[string]string{"ctl1": digest(p.w.nodes["ctl1"].data), "ctl2": digest(p.w.nodes["ctl2"].data)}
			_, err := e.Resolve(context.Background(), res, ResolveOptions{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			for name, d := range before {
				if digest(p.w.nodes[name].data) != d {
					t.Errorf("%s's data changed", name)
				}
			}
			// The victim-disagrees case unmanages and re-manages the clone
			// around the refused request; nothing else may run.
			for _, m := range p.mutations() {
				if !strings.HasPrefix(m, "crm_resource") {
					t.Errorf("ran %q", m)
				}
			}
			if !p.w.managed {
				t.Error("clone left unmanaged")
			}
		})
	}
}

// applyVia is the peer as the HTTP endpoint presents it: evidence and
// state directly, Apply through the peer's own engine (which verifies).
type applyVia struct{ e *Engine }

func (a applyVia) NodeName() string { return a.e.Local.Name }
func (a applyVia) Evidence(ctx context.Context, r string) (NodeEvidence, error) {
	return a.e.Local.Evidence(ctx, r)
}
func (a applyVia) State(ctx context.Context, r string) (drbd.Resource, error) {
	return a.e.Local.State(ctx, r)
}
func (a applyVia) Apply(ctx context.Context, req PeerRequest) (PeerResult, error) {
	return a.e.ApplyForPeer(ctx, req)
}

func TestResolveAgreeingPeerThroughItsEngine(t *testing.T) {
	p := newPair(t, "8.4.11")
	p.w.splitBrain("ctl1", map[string][]int{"ctl1": {1}, "ctl2": {2}})
	victim := p.engine(p.ctl2, p.ctl1, Policy{Name: drbd.PolicyAuto})
	inc, err := p.engine(p.ctl1, applyVia{victim}, Policy{Name: drbd.PolicyAuto}).Resolve(context.Background(), "r0", ResolveOptions{})
	if err != nil || inc.Result != ResultResolved {
		t.Fatalf("%v %+v", err, inc)
	}
}

func TestResolveManualAndDryRunChangeNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		pol  Policy
		opts ResolveOptions
		want string
	}{
		{"manual", Policy{Name: drbd.PolicyManual}, ResolveOptions{}, ResultReported},
		{"dry run", Policy{Name: drbd.PolicyAuto}, ResolveOptions{DryRun: true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t, "8.4.11")
			p.w.splitBrain("ctl1", map[string][]int{"ctl1": {1}, "ctl2": {2}})
			inc, err := p.engine(p.ctl1, p.ctl2, tc.pol).Resolve(context.Background(), "r0", tc.opts)
			if err != nil || inc.Result != tc.want {
				t.Fatalf("%v %+v", err, inc)
			}
			if m := p.mutations(); len(m) > 0 {
				t.Fatalf("changed: %v", m)
			}
			list, _ := p.store.List()
			if tc.want == ResultReported && (len(list) != 1 || list[0].Decision.Advice == "") {
				t.Fatalf("manual report not recorded: %+v", list)
			}
			if tc.opts.DryRun && len(list) != 0 {
				t.Fatal("dry run recorded an incident")
			}
		})
	}
}

func TestResolvePreservationFailureKeepsVictimData(t *testing.T) {
	p := newPair(t, "8.4.11")
	p.w.splitBrain("ctl1", map[string][]int{"ctl1": {1}, "ctl2": {2}})
	p.w.nodes["ctl2"].freeBytes = 1024
	before := digest(p.w.nodes["ctl2"].data)
	inc, err := p.engine(p.ctl1, p.ctl2, Policy{Name: drbd.PolicyAuto}).Resolve(context.Background(), "r0", ResolveOptions{})
	if err == nil || inc.Result != ResultFailed {
		t.Fatalf("%v %+v", err, inc)
	}
	if digest(p.w.nodes["ctl2"].data) != before {
		t.Fatal("victim data discarded without a preserved copy")
	}
	for _, m := range p.w.nodes["ctl2"].mutations {
		if strings.Contains(m, "discard") || strings.HasPrefix(m, "dd ") {
			t.Errorf("ran %q", m)
		}
	}
	if !p.w.managed {
		t.Error("clone left unmanaged")
	}
}

func TestPlanListsCommands(t *testing.T) {
	p := newPair(t, "8.4.11")
	p.w.splitBrain("ctl1", map[string][]int{"ctl1": {1}, "ctl2": {2}})
	plan, err := p.engine(p.ctl1, p.ctl2, Policy{Name: drbd.PolicyAuto}).Plan(context.Background(), "r0", Policy{Name: drbd.PolicyAuto})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, s := range plan.Steps {
		lines = append(lines, s.String())
	}
	got := strings.Join(lines, "\n")
	for _, want := range []string{
		"[ctl1] crm_resource --resource drbd-r0-clone --meta --set-parameter is-managed --parameter-value false",
		"[ctl2] drbdadm secondary r0",
		"[ctl2] sha256sum " + filepath.Join(p.ctl1.Config.SplitBrain.PreserveDir, "r0-20261121T100240Z-r0.img"),
		"[ctl2] drbdadm connect --discard-my-data r0",
		"[ctl1] drbdadm connect r0",
		"[both] (wait)",
		"[ctl1] crm_resource --cleanup --resource drbd-r0-clone",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("plan lacks %q:\n%s", want, got)
		}
	}
	if len(p.mutations()) != 0 {
		t.Error("plan changed something")
	}
}

func TestRecordHandler(t *testing.T) {
	s := &IncidentStore{Dir: t.TempDir()}
	now := time.Date(2026, 11, 21, 10, 2, 40, 0, time.UTC)
	if _, _, err := s.RecordHandler("ctl1", map[string]string{}, now); err == nil {
		t.Fatal("no DRBD_RESOURCE accepted")
	}
	if _, _, err := s.RecordHandler("ctl1", map[string]string{"DRBD_RESOURCE": "r0", "DRBD_MINOR": "0"}, now); err != nil {
		t.Fatal(err)
	}
	if got := s.LastDetected("r0", "ctl1"); !got.Equal(now) {
		t.Fatalf("LastDetected = %v", got)
	}
	// Once this node resolved (or reported) it, the handler record is no
	// longer evidence of a split brain in progress.
	for _, result := range []string{ResultResolved, ResultReported} {
		s := &IncidentStore{Dir: t.TempDir()}
		s.RecordHandler("ctl1", map[string]string{"DRBD_RESOURCE": "r0"}, now)
		if _, err := s.Save(&Incident{ID: "x", Resource: "r0", Node: "ctl1", Role: "actor", Started: now.Add(time.Second), Result: result}); err != nil {
			t.Fatal(err)
		}
		if got := s.LastDetected("r0", "ctl1"); !got.IsZero() {
			t.Errorf("LastDetected after a %s incident = %v, want zero", result, got)
		}
		s.RecordHandler("ctl1", map[string]string{"DRBD_RESOURCE": "r0"}, now.Add(time.Minute))
		if got := s.LastDetected("r0", "ctl1"); !got.Equal(now.Add(time.Minute)) {
			t.Errorf("LastDetected after a new split brain = %v", got)
		}
	}
}

// Only ctl1 wrote (ctl2 never started a new generation): no split brain in
// the data, both StandAlone after a manual disconnect. The engine just
// reconnects; DRBD resyncs ctl2 from ctl1, nothing is discarded.
func TestResolveReconnectsWithoutDiscard(t *testing.T) {
	p := newPair(t, "8.4.11")
	p.w.splitBrain("ctl1", map[string][]int{"ctl1": {1, 2}})
	p.w.nodes["ctl2"].gi = drbd.GI{Current: uuidParent}
	p.w.nodes["ctl2"].conn = drbd.ConnConnecting // 8.4 WFConnection: needs no command
	want := digest(p.w.nodes["ctl1"].data)
	inc, err := p.engine(p.ctl1, p.ctl2, Policy{Name: drbd.PolicyAuto}).Resolve(context.Background(), "r0", ResolveOptions{})
	if err != nil || inc.Result != ResultResolved || inc.Decision.Action != ActionReconnect || inc.Preserved != nil {
		t.Fatalf("%v %+v", err, inc)
	}
	if digest(p.w.nodes["ctl2"].data) != want || !p.w.Healthy() {
		t.Fatal("not resynced")
	}
	for _, m := range p.mutations() {
		if strings.Contains(m, "discard") || strings.Contains(m, "secondary") || strings.HasPrefix(m, "dd ") {
			t.Errorf("ran %q", m)
		}
	}
	if len(p.w.nodes["ctl2"].mutations) != 0 {
		t.Errorf("ctl2 in WFConnection needed no command: %v", p.w.nodes["ctl2"].mutations)
	}
}

func TestResolveRefusesWhenTheConfirmedDecisionChanged(t *testing.T) {
	p := newPair(t, "8.4.11")
	p.w.splitBrain("ctl1", map[string][]int{"ctl1": {1}, "ctl2": {2}})
	confirmed := Decision{Action: ActionResolve, Victim: "ctl1"}
	_, err := p.engine(p.ctl1, p.ctl2, Policy{Name: drbd.PolicyAuto}).Resolve(context.Background(), "r0", ResolveOptions{Expect: &confirmed})
	if !errors.Is(err, ErrDisagree) || len(p.mutations()) != 0 {
		t.Fatalf("err = %v, mutations %v", err, p.mutations())
	}
}

// A bare DRBD pair (no Pacemaker, as in the captured lab split brain):
// both Primary, least-changes; no cluster commands are planned.
func TestResolveWithoutPacemaker(t *testing.T) {
	p := newPair(t, "8.4.11")
	p.w.splitBrain("", map[string][]int{"ctl1": {1, 2}, "ctl2": {3}})
	for _, n := range p.w.nodes {
		n.role = drbd.RolePrimary
		n.fail["crm_mon"] = errors.New("crm_mon: Error: cluster is not available on this node (exit 102)")
	}
	want := digest(p.w.nodes["ctl1"].data)
	inc, err := p.engine(p.ctl1, p.ctl2, Policy{Name: drbd.PolicyLeastChanges}).Resolve(context.Background(), "r0", ResolveOptions{})
	if err != nil || inc.Victim != "ctl2" || inc.Result != ResultResolved {
		t.Fatalf("%v %+v", err, inc)
	}
	for _, m := range p.mutations() {
		if strings.HasPrefix(m, "crm_resource") {
			t.Errorf("ran %q without Pacemaker", m)
		}
	}
	if digest(p.w.nodes["ctl2"].data) != want {
		t.Fatal("not resynced")
	}
	if _, err := p.engine(p.ctl1, p.ctl2, Policy{Name: drbd.PolicyAuto}).Plan(context.Background(), "r0", Policy{Name: drbd.PolicyAuto}); !errors.Is(err, ErrNoSplitBrain) {
		t.Fatalf("after resolving: %v", err)
	}
}
