package agents

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/internal/testenv"
	"github.com/haconf/haconf/pacemaker"
)

func TestDecideFence(t *testing.T) {
	up := drbd.Resource{Role: drbd.RoleSecondary, Disk: drbd.DiskUpToDate, PeerDisk: drbd.DiskDUnknown}
	consistent := drbd.Resource{Role: drbd.RoleSecondary, Disk: "Consistent", PeerDisk: drbd.DiskDUnknown}
	outdated := drbd.Resource{Role: drbd.RoleSecondary, Disk: drbd.DiskOutdated, PeerDisk: drbd.DiskDUnknown}
	for _, tc := range []struct {
		name  string
		self  drbd.Resource
		peer  pacemaker.PeerState
		code  int
		place bool
	}{
		{"failover: peer fenced, my data good", up, pacemaker.PeerFenced, FencePeerFenced, true},
		{"replication link lost, peer alive", up, pacemaker.PeerReachable, FencePeerOutdated, true},
		{"replication link lost, my disk only consistent", consistent, pacemaker.PeerReachable, FencePeerOutdated, true},
		{"peer fenced but my data is not UpToDate", consistent, pacemaker.PeerFenced, FencePeerDown, false},
		{"fencing not confirmed in time, my data good", up, pacemaker.PeerPending, FencePeerDown, true},
		{"fencing not confirmed, my data outdated", outdated, pacemaker.PeerPending, FencePeerDown, false},
		{"no state for the peer, my data good", up, pacemaker.PeerUnknown, FencePeerDown, true},
		{"peer disk UpToDate: nothing to fence", drbd.Resource{Disk: drbd.DiskUpToDate, PeerDisk: drbd.DiskUpToDate}, pacemaker.PeerReachable, FenceFailed, false},
	} {
		d := DecideFence(tc.self, tc.peer)
		if d.Code != tc.code || d.Place != tc.place || d.Reason == "" {
			t.Errorf("%s: got %+v, want code %d place %v", tc.name, d, tc.code, tc.place)
		}
	}
}

// cibRunner answers cibadmin from a sequence of captured CIBs and records
// the constraint the handler creates.
type cibRunner struct {
	cibs    []string // returned in turn; the last one repeats
	created []string
	failAdd bool
}

func (c *cibRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	if name != "cibadmin" {
		return nil, errors.New("unexpected " + name)
	}
	switch args[0] {
	case "--query":
		cib := c.cibs[0]
		if len(c.cibs) > 1 {
			c.cibs = c.cibs[1:]
		}
		return []byte(cib), nil
	case "--create":
		if c.failAdd {
			return nil, errors.New("exit status 102: Update does not conform to the configured schema")
		}
		c.created = append(c.created, args[len(args)-1])
		return nil, nil
	}
	return nil, errors.New("unexpected cibadmin " + strings.Join(args, " "))
}

// capturedCIB is ctl1's CIB right after Pacemaker fenced ctl2 (lab,
// Pacemaker 2.1.5), with the fence constraint crm-fence-peer.sh placed
// removed, and variants of ctl2's node_state.
func capturedCIB(t *testing.T) (fenced, pending, online string) {
	t.Helper()
	b, err := os.ReadFile("../drbd/testdata/cib-peer-fenced-2.1.5.xml")
	if err != nil {
		t.Fatal(err)
	}
	cib := string(b)
	i := strings.Index(cib, `<rsc_location rsc="drbd-r0-clone" id="drbd-fence-by-handler-r0-drbd-r0-clone">`)
	j := strings.Index(cib[i:], "</rsc_location>")
	if i < 0 || j < 0 {
		t.Fatal("captured CIB lacks crm-fence-peer.sh's constraint")
	}
	fenced = cib[:i] + cib[i+j+len("</rsc_location>"):]
	state := `<node_state id="2" uname="ctl2" in_ccm="false" crmd="offline" crm-debug-origin="send_stonith_update" join="down" expected="down"/>`
	if !strings.Contains(fenced, state) {
		t.Fatal("captured CIB lacks ctl2's fenced node_state")
	}
	pending = strings.Replace(fenced, state, `<node_state id="2" uname="ctl2" in_ccm="false" crmd="offline" join="down" expected="member"/>`, 1)
	online = strings.Replace(fenced, state, `<node_state id="2" uname="ctl2" in_ccm="true" crmd="online" join="member" expected="member"/>`, 1)
	return fenced, pending, online
}

func handler(r *cibRunner, self drbd.Resource) *FenceHandler {
	return &FenceHandler{Resource: "r0", Clone: "drbd-r0-clone", Node: "ctl1", Run: r, Timeout: time.Minute,
		State: func(context.Context) (drbd.Resource, bool, error) { return self, true, nil },
		Sleep: func(time.Duration) {}}
}

var upToDate = drbd.Resource{Role: drbd.RoleSecondary, Disk: drbd.DiskUpToDate, Connection: drbd.ConnConnecting, PeerDisk: drbd.DiskDUnknown}

func TestFencePeerAfterPacemakerFenced(t *testing.T) {
	fenced, pending, _ := capturedCIB(t)
	r := &cibRunner{cibs: []string{pending, pending, fenced}}
	code, what := handler(r, upToDate).Fence(context.Background())
	if code != FencePeerFenced {
		t.Fatalf("exit %d (%s), want %d", code, what, FencePeerFenced)
	}
	if len(r.created) != 1 || r.created[0] != pacemaker.FenceConstraintXML("r0", "drbd-r0-clone", "ctl1") {
		t.Fatalf("created %q", r.created)
	}
	if !strings.Contains(what, "ctl2") || !strings.Contains(what, "placed constraint drbd-fence-by-handler-r0-drbd-r0-clone") {
		t.Errorf("report %q", what)
	}
}

func TestFencePeerReachablePeer(t *testing.T) {
	_, _, online := capturedCIB(t)
	r := &cibRunner{cibs: []string{online}}
	if code, what := handler(r, upToDate).Fence(context.Background()); code != FencePeerOutdated || len(r.created) != 1 {
		t.Fatalf("exit %d (%s), created %d", code, what, len(r.created))
	}
}

// crm-fence-peer.sh's own constraint (role Master, this node) counts as
// placed: nothing is added.
func TestFencePeerConstraintAlreadyPlaced(t *testing.T) {
	b, _ := os.ReadFile("../drbd/testdata/cib-peer-fenced-2.1.5.xml")
	r := &cibRunner{cibs: []string{string(b)}}
	code, what := handler(r, upToDate).Fence(context.Background())
	if code != FencePeerFenced || len(r.created) != 0 || !strings.Contains(what, "already in place") {
		t.Fatalf("exit %d (%s), created %q", code, what, r.created)
	}
}

// A constraint keeping the other node Promoted means the peer fenced us
// first: refuse (DRBD then neither promotes nor resumes I/O).
func TestFencePeerLostTheRace(t *testing.T) {
	b, _ := os.ReadFile("../drbd/testdata/cib-peer-fenced-2.1.5.xml")
	r := &cibRunner{cibs: []string{string(b)}}
	h := handler(r, upToDate)
	h.Node = "ctl2"
	// From ctl2's side the peer is ctl1, which is online.
	code, what := h.Fence(context.Background())
	if code != FenceFailed || len(r.created) != 0 || !strings.Contains(what, `keeps "ctl1" Promoted`) {
		t.Fatalf("exit %d (%s), created %q", code, what, r.created)
	}
}

func TestFencePeerTimesOut(t *testing.T) {
	_, pending, _ := capturedCIB(t)
	r := &cibRunner{cibs: []string{pending}}
	h := handler(r, drbd.Resource{Disk: drbd.DiskOutdated, PeerDisk: drbd.DiskDUnknown})
	h.Timeout = 0
	if code, what := h.Fence(context.Background()); code != FencePeerDown || len(r.created) != 0 || !strings.Contains(what, "no constraint") {
		t.Fatalf("exit %d (%s), created %q", code, what, r.created)
	}
}

func TestFencePeerConstraintFails(t *testing.T) {
	fenced, _, _ := capturedCIB(t)
	r := &cibRunner{cibs: []string{fenced}, failAdd: true}
	if code, what := handler(r, upToDate).Fence(context.Background()); code != FenceFailed || !strings.Contains(what, "DATA INTEGRITY") {
		t.Fatalf("exit %d (%s)", code, what)
	}
}

// The constraint goes into a real CIB (cibadmin on a CIB file, schema
// checked), and a second run finds it in place.
func TestFencePeerRealCibadmin(t *testing.T) {
	testenv.RequireCommands(t, "cibadmin")
	fenced, _, _ := capturedCIB(t)
	file := filepath.Join(t.TempDir(), "cib.xml")
	if err := os.WriteFile(file, []byte(fenced), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CIB_file", file)
	h := handler(nil, upToDate)
	h.Run = runner.Exec{Timeout: 30 * time.Second}
	code, what := h.Fence(context.Background())
	if code != FencePeerFenced || !strings.Contains(what, "placed constraint") {
		t.Fatalf("exit %d (%s)", code, what)
	}
	out, err := runner.Exec{}.Run(context.Background(), "cibadmin", "--query", "--scope", "constraints")
	if err != nil || !strings.Contains(string(out), `role="Promoted"`) || !strings.Contains(string(out), `value="ctl1"`) {
		t.Fatalf("constraints after the handler: %s %v", out, err)
	}
	if code, what := h.Fence(context.Background()); code != FencePeerFenced || !strings.Contains(what, "already in place") {
		t.Fatalf("second run: exit %d (%s)", code, what)
	}
}

// Without Pacemaker (cibadmin cannot connect) the handler gives up at once,
// as crm-fence-peer.sh does: DRBD waits for the handler.
func TestFencePeerWithoutPacemaker(t *testing.T) {
	slept := 0
	h := &FenceHandler{Resource: "r0", Clone: "drbd-r0-clone", Node: "ctl1", Timeout: time.Minute,
		Run:   failingRunner{},
		State: func(context.Context) (drbd.Resource, bool, error) { return upToDate, true, nil },
		Sleep: func(time.Duration) { slept++ }}
	code, what := h.Fence(context.Background())
	if code != FenceFailed || slept != 0 || !strings.Contains(what, "is Pacemaker running") {
		t.Fatalf("exit %d after %d waits: %s", code, slept, what)
	}
}

type failingRunner struct{}

func (failingRunner) Run(context.Context, string, ...string) ([]byte, error) {
	return nil, errors.New("exit status 102: Could not connect to the CIB: Transport endpoint is not connected")
}
