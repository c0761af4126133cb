package agents

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/pacemaker"
)

func TestPromotionScore(t *testing.T) {
	for _, tc := range []struct {
		file string
		want int
	}{
		{"captured-proc-drbd-84-connected-secondary.txt", ScoreBest},
		{"captured-proc-drbd-84-connected-primary.txt", ScoreBest},
		{"captured-proc-drbd-84-syncsource-primary.txt", ScoreBest},
		{"captured-proc-drbd-84-synctarget-secondary.txt", scoreNone},
		{"captured-proc-drbd-84-connected-inconsistent.txt", scoreNone},
		{"captured-proc-drbd-84-after-crash-wfconnection.txt", ScoreLocalOK},
		{"captured-proc-drbd-84-wfconnection-primary.txt", ScoreBest},
		{"captured-proc-drbd-84-standalone-splitbrain-ctl1.txt", ScoreBest},
	} {
		b, err := os.ReadFile("../drbd/testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		st, err := drbd.ParseProcDRBD(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := PromotionScore(st.Resources[0]); got != tc.want {
			t.Errorf("%s (%+v): score %d, want %d", tc.file, st.Resources[0], got, tc.want)
		}
	}
}

// fakeDRBD is a stateful DRBD 8.4 resource (minor 0) and the cluster's
// attribute and constraint store, driven by the agent's commands.
type fakeDRBD struct {
	up, primary, connected bool
	disk, peerDisk         string
	attrs                  map[string]string
	constraints            map[string]bool
	calls                  []string
	failPrimary            bool
}

func (f *fakeDRBD) proc() ([]byte, error) {
	if !f.up {
		return []byte("version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Unconfigured\n"), nil
	}
	role, peer, cs, pd := "Secondary", "Unknown", "WFConnection", "DUnknown"
	if f.primary {
		role = "Primary"
	}
	if f.connected {
		cs, peer, pd = "Connected", "Secondary", f.peerDisk
	}
	return []byte(fmt.Sprintf("version: 8.4.11 (api:1/proto:86-101)\n 0: cs:%s ro:%s/%s ds:%s/%s C r-----\n    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0\n", cs, role, peer, f.disk, pd)), nil
}

func (f *fakeDRBD) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	call := name + " " + strings.Join(args, " ")
	f.calls = append(f.calls, call)
	switch {
	case call == "drbdadm up r0":
		f.up = true
	case call == "drbdadm down r0":
		f.up, f.primary = false, false
	case call == "drbdadm primary r0":
		if f.failPrimary {
			return nil, errors.New("exit 11: State change failed: (-7) Refusing to be Primary while peer is not outdated")
		}
		f.primary = true
	case call == "drbdadm secondary r0":
		f.primary = false
	case name == "crm_attribute":
		if args[len(args)-1] == "-D" {
			delete(f.attrs, args[3])
		} else {
			f.attrs[args[3]] = args[len(args)-1]
		}
	case name == "cibadmin" && args[0] == "--query":
		for id := range f.constraints {
			if strings.Contains(call, id) {
				return []byte("<rsc_location/>"), nil
			}
		}
		return nil, errors.New("exit 105: no such object")
	case name == "cibadmin" && args[0] == "--delete":
		for id := range f.constraints {
			if strings.Contains(call, id) {
				delete(f.constraints, id)
			}
		}
	default:
		return nil, fmt.Errorf("unexpected command %q", call)
	}
	return nil, nil
}

func TestDRBDLifecycle(t *testing.T) {
	ctx := context.Background()
	f := &fakeDRBD{disk: "UpToDate", peerDisk: "UpToDate", attrs: map[string]string{}, constraints: map[string]bool{}}
	env := pacemaker.OCFEnv{Getenv: func(k string) string {
		return map[string]string{"OCF_RESKEY_drbd_resource": "r0", "OCF_RESKEY_minor": "0", "OCF_RESOURCE_INSTANCE": "drbd-r0:1", "OCF_RESKEY_CRM_meta_on_node": "ctl1"}[k]
	}}
	a := DRBDFromEnv(env, f)
	a.ReadProc = f.proc
	if a.Attribute != "master-drbd-r0" || a.Clone != "drbd-r0-clone" || a.Node != "ctl1" || a.Minor != 0 {
		t.Fatalf("agent from env: %+v", a)
	}
	code := pacemaker.OCFCode
	if c := code(a.Monitor(ctx)); c != pacemaker.OCFNotRunning {
		t.Fatalf("probe: %d", c)
	}
	if err := a.Start(ctx); err != nil || !f.up {
		t.Fatalf("start: %v", err)
	}
	// Up, peer not connected yet: good local data, peer unknown.
	if f.attrs["master-drbd-r0"] != "1000" {
		t.Fatalf("score after start: %v", f.attrs)
	}
	f.connected = true
	f.constraints[pacemaker.FenceConstraintID("r0", "drbd-r0-clone")] = true
	if c := code(a.Monitor(ctx)); c != 0 || f.attrs["master-drbd-r0"] != "10000" {
		t.Fatalf("monitor connected: %d %v", c, f.attrs)
	}
	if len(f.constraints) != 0 {
		t.Fatalf("a fence constraint outlived UpToDate/UpToDate: %v", f.constraints)
	}
	if err := a.Promote(ctx); err != nil || !f.primary {
		t.Fatalf("promote: %v", err)
	}
	if c := code(a.Monitor(ctx)); c != pacemaker.OCFRunningPromoted {
		t.Fatalf("monitor primary: %d", c)
	}
	if err := a.Demote(ctx); err != nil || f.primary {
		t.Fatalf("demote: %v", err)
	}
	if err := a.Notify(ctx); err != nil {
		t.Fatalf("notify: %v", err)
	}
	// The peer gone and this disk outdated: no score, so never promoted.
	f.connected, f.disk = false, "Outdated"
	if err := a.Monitor(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.attrs["master-drbd-r0"]; ok {
		t.Fatalf("an Outdated disk kept a promotion score: %v", f.attrs)
	}
	f.disk, f.failPrimary = "UpToDate", true
	if err := a.Promote(ctx); err == nil || !strings.Contains(err.Error(), "Refusing to be Primary") {
		t.Fatalf("failed promote: %v", err)
	}
	f.failPrimary = false
	if err := a.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Stop(ctx); err != nil || f.up {
		t.Fatalf("stop of a Primary: %v", err)
	}
	if _, ok := f.attrs["master-drbd-r0"]; ok {
		t.Fatalf("score left after stop: %v", f.attrs)
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if c := code(a.Demote(ctx)); c != pacemaker.OCFNotRunning {
		t.Fatalf("demote when down: %d", c)
	}
}
