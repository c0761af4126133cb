package switchover

// These tests run the real Pacemaker tools (crm_resource, cibadmin,
// crm_mon, crm_simulate, crm_attribute, crm_rule) on a CIB file
// (CIB_file=): the rendered example CIB, brought up by crm_simulate, is the
// cluster, and each crm_mon reading first lets crm_simulate carry out the
// pending transition, as the DC would. Missing tools skip locally and fail
// in CI (internal/testenv).

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/pacemaker"
	"github.com/haconf/haconf/pacemaker/pacemakertest"
)

// simCluster runs the real tools on a CIB file. Before each crm_mon
// reading and crm_resource --wait it runs one crm_simulate transition on
// the file (the cluster acting on what changed); opFail is injected into
// the first transition after crm_resource --move.
type simCluster struct {
	*pacemakertest.Cluster
	opFail string
	moved  bool
	// transitions are the crm_simulate summaries, one per transition.
	transitions []string
}

// actions are the lines of crm_simulate's Transition Summary.
func actions(out []byte) string {
	_, after, _ := strings.Cut(string(out), "Transition Summary:\n")
	var lines []string
	for _, l := range strings.Split(after, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "* ") {
			break
		}
		lines = append(lines, strings.TrimSpace(l))
	}
	return strings.Join(lines, "\n")
}

func (s *simCluster) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	if name == "crm_mon" || (name == "crm_resource" && args[0] == "--wait") {
		sim := []string{"-x", s.Path, "-S", "-O", s.Path}
		if s.moved && s.opFail != "" {
			sim = append(sim, "--op-fail", s.opFail)
			s.opFail = ""
		}
		out, err := runner.Exec{}.RunCmd(ctx, runner.Cmd{Name: "crm_simulate", Args: sim})
		if err != nil {
			return nil, err
		}
		if a := actions(out); a != "" {
			s.transitions = append(s.transitions, a)
		}
	}
	if name == "crm_resource" && args[0] == "--move" {
		s.moved = true
	}
	return s.Cluster.Run(ctx, name, args...)
}

type healthyDRBDReader struct{}

func (healthyDRBDReader) State(context.Context, string) (drbd.Resource, error) {
	return *healthyDRBD(), nil
}

// startCluster renders the example configuration's CIB, brings both nodes
// up with crm_simulate (ctl1 the DC) and lets it settle: services on ctl1.
func startCluster(t *testing.T) (*simCluster, Pair) {
	t.Helper()
	c := pacemakertest.Start(t)
	p := Pair{Nodes: c.Config.NodeNames(), Resource: c.Config.DRBD.Resource, Services: []string{"fs-haconf", "mariadb", "vip", "haproxy"}}
	return &simCluster{Cluster: c}, p
}

func gather(t *testing.T, s *simCluster, p Pair, now time.Time) Facts {
	t.Helper()
	f, err := Gather(context.Background(), s, healthyDRBDReader{}, "ctl1", p, now)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func cliConstraints(t *testing.T, s *simCluster) []string {
	t.Helper()
	ls, err := pacemaker.ParseLocations(s.Must("cibadmin", "--query", "--scope", "constraints"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range ls {
		if l.CLI() {
			ids = append(ids, l.ID)
		}
	}
	return ids
}

// TestSwitchoverWithPacemakerTools switches the services to ctl2 and back
// with the real crm_resource, and checks that no constraint is left and
// that the cluster, left alone, moves nothing afterwards (stickiness).
func TestSwitchoverWithPacemakerTools(t *testing.T) {
	s, p := startCluster(t)
	for _, want := range []struct{ from, to string }{{"ctl1", "ctl2"}, {"ctl2", "ctl1"}} {
		f := gather(t, s, p, time.Now())
		d := Decide(p, "", f)
		if !d.OK() || d.From != want.from || d.To != want.to {
			t.Fatalf("decision %s -> %s, failed %+v", d.From, d.To, d.Failed())
		}
		m := &Mover{Run: s, Pair: p, Poll: 10 * time.Millisecond, Timeout: time.Minute}
		res, err := m.Switch(context.Background(), d, f.Mon)
		if err != nil {
			t.Fatalf("%s -> %s: %v (transitions %q)", want.from, want.to, err, s.transitions)
		}
		if wantFinal := "DRBD r0 Promoted on " + want.to + "; fs-haconf, mariadb, vip, haproxy on " + want.to; res.Final != wantFinal || !res.Cleared {
			t.Errorf("final %q cleared %v", res.Final, res.Cleared)
		}
		if ids := cliConstraints(t, s); len(ids) != 0 {
			t.Errorf("constraints left behind: %v", ids)
		}
		// Left alone, the cluster moves nothing: stickiness keeps the
		// services on the new node without the constraint.
		out := s.Must("crm_simulate", "-x", s.Path, "-S", "-O", s.Path)
		if a := actions(out); a != "" {
			t.Errorf("after the switchover the cluster still acts:\n%s", a)
		}
		// Asked again for the same target: already active.
		if d := Decide(p, want.to, gather(t, s, p, time.Now())); !d.AlreadyActive {
			t.Errorf("second switchover to %s: %+v", want.to, d)
		}
	}
}

// TestSwitchoverRefusalsWithPacemakerTools sets up, with the real tools,
// each state a switchover must refuse.
func TestSwitchoverRefusalsWithPacemakerTools(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(s *simCluster)
		check string
		want  string
	}{
		{"target in standby", func(s *simCluster) {
			s.Must("crm_attribute", "-N", "ctl2", "-n", "standby", "-v", "on", "-l", "forever")
		},
			CheckNodes, "ctl2 is in standby"},
		{"maintenance window", func(s *simCluster) {
			m, _ := pacemaker.ParseMaintenanceConfig(s.Must("cibadmin", "--query", "--scope", "crm_config"))
			for _, ch := range m.OnChanges(time.Now().Add(time.Hour)) {
				s.Must(ch.Argv[0], ch.Argv[1:]...)
			}
		}, CheckMaintenance, "maintenance-mode is on"},
		{"services banned from the target", func(s *simCluster) { s.Must("crm_resource", "--ban", "-r", "g-services", "-N", "ctl2") },
			CheckConstraints, "cli-ban-g-services-on-ctl2 (from crm_resource --move/--ban or an interrupted switchover) is still in effect"},
		{"DRBD fence-peer constraint", func(s *simCluster) {
			s.Must("cibadmin", "--create", "--scope", "constraints", "--xml-text", `<rsc_location rsc="drbd-r0-clone" id="drbd-fence-by-handler-r0-drbd-r0-clone"><rule role="Promoted" score="-INFINITY" id="drbd-fence-by-handler-r0-rule-drbd-r0-clone"><expression attribute="#uname" operation="ne" value="ctl1" id="drbd-fence-by-handler-r0-expr-1-drbd-r0-clone"/></rule></rsc_location>`)
		}, CheckConstraints, "DRBD's fence-peer constraint"},
		{"no promotion score on the target", func(s *simCluster) {
			s.Must("crm_attribute", "-N", "ctl2", "-n", "master-drbd-r0", "-l", "reboot", "-D")
		},
			CheckPromotion, `master-drbd-r0=""`},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, p := startCluster(t)
			c.setup(s)
			d := Decide(p, "", gather(t, s, p, time.Now()))
			if d.OK() {
				t.Fatal("switchover allowed")
			}
			found := false
			for _, ch := range d.Failed() {
				found = found || ch.Name == c.check && strings.Contains(ch.Detail, c.want)
			}
			if !found {
				t.Errorf("no failed %s check with %q: %+v", c.check, c.want, d.Failed())
			}
		})
	}
}

// TestSwitchoverFailureWithPacemakerTools: mariadb fails to start on the
// target; the switchover stops waiting at once and the constraint goes.
func TestSwitchoverFailureWithPacemakerTools(t *testing.T) {
	s, p := startCluster(t)
	s.opFail = "mariadb_start_0@ctl2=1"
	f := gather(t, s, p, time.Now())
	m := &Mover{Run: s, Pair: p, Poll: 10 * time.Millisecond, Timeout: time.Minute}
	res, err := m.Switch(context.Background(), Decide(p, "", f), f.Mon)
	if !errors.Is(err, ErrAborted) || !strings.Contains(err.Error(), "mariadb_start_0 failed on ctl2") {
		t.Fatalf("err = %v (transitions %q)", err, s.transitions)
	}
	if !res.Cleared || len(cliConstraints(t, s)) != 0 {
		t.Errorf("constraint left after a failed switchover: %v", cliConstraints(t, s))
	}
	if res.Final == "" {
		t.Error("no final placement reported")
	}
}

var recheckBy = regexp.MustCompile(`<transition_graph [^>]*recheck-by="(\d+)"`)

// TestSwitchoverConstraintExpires is the safety net when haconf is killed
// after the move: the constraint crm_resource wrote ends by itself at
// the lifetime, the scheduler plans a recheck then, and a later switchover
// sees it as expired (not as a reason to refuse).
func TestSwitchoverConstraintExpires(t *testing.T) {
	s, p := startCluster(t)
	m := &Mover{Run: s, Pair: p, Timeout: time.Minute}
	before := time.Now().Truncate(time.Second)
	s.Must(m.Commands("ctl2").Move[0], m.Commands("ctl2").Move[1:]...)
	ls, err := pacemaker.ParseLocations(s.Must("cibadmin", "--query", "--scope", "constraints"))
	if err != nil {
		t.Fatal(err)
	}
	var l pacemaker.Location
	for _, x := range ls {
		if x.ID == "cli-prefer-drbd-r0-clone" {
			l = x
		}
	}
	if after := l.Expires.Sub(before); after < m.Lifetime() || after > m.Lifetime()+5*time.Second {
		t.Fatalf("constraint %+v expires %s after the move, want %s", l, after, m.Lifetime())
	}
	cib, _ := os.ReadFile(s.Path)
	rule := "cli-prefer-rule-drbd-r0-clone"
	if _, err := (runner.Exec{}).Run(context.Background(), "crm_rule", "-c", "-r", rule, "-d", pacemaker.FormatCIBTime(l.Expires), "-X", string(cib)); err == nil {
		t.Error("crm_rule: the move constraint is still in effect at its end")
	}
	graph := filepath.Join(t.TempDir(), "graph.xml")
	s.Must("crm_simulate", "-x", s.Path, "-S", "-G", graph)
	g, _ := os.ReadFile(graph)
	if mm := recheckBy.FindSubmatch(g); mm == nil || string(mm[1]) != strconv.FormatInt(l.Expires.Unix(), 10) {
		t.Errorf("recheck-by %q, want the constraint's end %d", mm, l.Expires.Unix())
	}
	// A switchover decided after the end: the leftover is expired, the
	// decision goes ahead and the final clear removes it.
	s.Must("crm_simulate", "-x", s.Path, "-S", "-O", s.Path) // the move happened before haconf died
	d := Decide(p, "", gather(t, s, p, l.Expires.Add(time.Second)))
	if !d.OK() || strings.Join(d.Expired, ",") != "cli-prefer-drbd-r0-clone" {
		t.Errorf("after the lifetime: ok %v expired %v failed %+v", d.OK(), d.Expired, d.Failed())
	}
	// Before the end it refuses.
	if d := Decide(p, "", gather(t, s, p, time.Now())); d.OK() {
		t.Error("a live leftover constraint did not refuse")
	}
}
