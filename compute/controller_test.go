package compute

import (
	"context"
	"slices"
	"strings"

	"testing"
	"testing/synctest"
	"time"

	"github.com/haconf/haconf/compute/gossip"
)

func testConfig(hosts ...string) *Config {
	c := &Config{}
	for i, h := range hosts {
		c.Hosts = append(c.Hosts, Host{Name: h, Management: "10.0.0." + string(rune('1'+i)), Storage: "10.0.1." + string(rune('1'+i)),
			Fence: Fence{Agent: "/usr/sbin/fence_lab"}})
	}
	c.SetDefaults()
	c.Guards.Settle = 0
	return c
}

type rig struct {
	cfg    *Config
	nova   *fakeNova
	pools  *fakePools
	fence  *fakeFence
	store  *FileStore
	ctl    *Controller
	cancel context.CancelFunc
	done   chan struct{}
}

func newRig(t *testing.T, hosts ...string) *rig {
	r := &rig{cfg: testConfig(hosts...), nova: newFakeNova(hosts...), pools: newFakePools(time.Now(), hosts...), fence: &fakeFence{}}
	r.store = &FileStore{Dir: t.TempDir()}
	r.ctl = &Controller{Config: r.cfg, Nova: r.nova, Fencer: r.fence, Store: r.store, Views: r.pools.views, Tick: time.Second, Poll: time.Second}
	return r
}

func (r *rig) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		_ = r.ctl.Run(ctx, "test")
	}()
}

func (r *rig) stop() {
	r.cancel()
	<-r.done
}

// crash makes host dead on both networks.
func (r *rig) crash(host string) {
	now := time.Now()
	r.pools.set(host, gossip.Management, false, now)
	r.pools.set(host, gossip.Storage, false, now)
}

// failOnce runs the controller, crashes host a second in, and stops the
// controller 30 s later (synctest time): enough for an incident to end.
func (r *rig) failOnce(host string) {
	r.start()
	time.Sleep(time.Second)
	r.crash(host)
	time.Sleep(30 * time.Second)
	r.stop()
}

// heal makes host alive on both networks again.
func (r *rig) heal(host string) {
	now := time.Now()
	r.pools.set(host, gossip.Management, true, now)
	r.pools.set(host, gossip.Storage, true, now)
}

func (r *rig) incidents(t *testing.T) []*Incident {
	t.Helper()
	ins, err := r.store.Incidents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ins
}

func TestControllerEvacuatesAFailedHost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, "cmp1", "cmp2", "cmp3", "cmp4")
		for _, id := range []string{"a", "b", "c", "d"} {
			r.nova.boot(id, "cmp1", 2)
		}
		r.nova.boot("e", "cmp2", 4)
		r.failOnce("cmp1")

		ins := r.incidents(t)
		if len(ins) != 1 || ins[0].State != StateDone || ins[0].Host != "cmp1" {
			t.Fatalf("incidents: %+v", ins)
		}
		if !slices.Equal(r.fence.off, []string{"cmp1"}) {
			t.Errorf("fenced %v, want cmp1 once", r.fence.off)
		}
		// Fence, then force down, then disable, then the evacuations.
		if len(r.nova.calls) < 2 || r.nova.calls[0] != "force-down svc-0 true" || r.nova.calls[1] != "disable svc-0" {
			t.Errorf("nova calls: %v", r.nova.calls)
		}
		targets := map[string]int{}
		for id, n := range r.nova.evacuated {
			if n != 1 {
				t.Errorf("%s evacuated %d times", id, n)
			}
		}
		for _, inst := range ins[0].Instances {
			if inst.State != EvacDone || inst.FinalHost == "cmp1" || inst.FinalHost == "" {
				t.Errorf("instance %+v", inst)
			}
			targets[inst.FinalHost]++
		}
		// Spread: cmp2 already holds 4 vCPU, so cmp3 and cmp4 take more.
		if len(targets) < 2 || targets["cmp2"] > 1 {
			t.Errorf("targets %v: want the load spread", targets)
		}
		if s := r.nova.services["cmp1"]; !s.ForcedDown || s.Status != "disabled" || !strings.HasPrefix(s.DisabledReason, DisabledReasonPrefix) {
			t.Errorf("cmp1's service: %+v", s)
		}
	})
}

func TestControllerOneLinkNeverMovesAVM(t *testing.T) {
	for _, l := range gossip.Links {
		t.Run(string(l), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, "cmp1", "cmp2")
				r.nova.boot("a", "cmp1", 1)
				r.start()
				r.pools.set("cmp1", l, false, time.Now())
				time.Sleep(5 * time.Minute)
				r.stop()
				if ins := r.incidents(t); len(ins) != 0 || len(r.fence.off) != 0 || len(r.nova.calls) != 0 {
					t.Fatalf("incidents %+v, fenced %v, nova %v", ins, r.fence.off, r.nova.calls)
				}
				st := r.ctl.status
				if st.Hosts[0].Condition != LinkDown || !strings.Contains(st.Hosts[0].Detail, string(l)+" network unreachable") {
					t.Errorf("status %+v", st.Hosts[0])
				}
			})
		})
	}
}

func TestControllerNoEvacuationWithoutFence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, "cmp1", "cmp2")
		r.nova.boot("a", "cmp1", 1)
		r.fence.failing = true
		r.start()
		r.crash("cmp1")
		time.Sleep(time.Minute)
		ins := r.incidents(t)
		if len(ins) != 1 || ins[0].State != StateFenceFailed || ins[0].FenceAttempts < 3 {
			t.Fatalf("incidents %+v", ins)
		}
		if len(r.nova.calls) != 0 {
			t.Fatalf("nova was called before the fence succeeded: %v", r.nova.calls)
		}
		r.fence.mu.Lock()
		r.fence.failing = false
		r.fence.mu.Unlock()
		time.Sleep(2 * time.Minute)
		r.stop()
		ins = r.incidents(t)
		if ins[0].State != StateDone || r.nova.evacuated["a"] != 1 {
			t.Fatalf("after the fence works: %+v, evacuated %v", ins[0], r.nova.evacuated)
		}
	})
}

func TestControllerFenceFailedHostComesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, "cmp1", "cmp2")
		r.nova.boot("a", "cmp1", 1)
		r.fence.failing = true
		r.start()
		r.crash("cmp1")
		time.Sleep(20 * time.Second)
		r.heal("cmp1")
		time.Sleep(5 * time.Minute)
		r.stop()
		ins := r.incidents(t)
		if len(ins) != 1 || ins[0].State != StateCancelled || len(r.nova.calls) != 0 {
			t.Fatalf("incidents %+v, nova %v", ins, r.nova.calls)
		}
	})
}

func TestControllerMassFailureHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, "cmp1", "cmp2", "cmp3", "cmp4", "cmp5", "cmp6")
		r.cfg.Guards.MaxFailedHosts = 10
		for _, h := range []string{"cmp1", "cmp2", "cmp3", "cmp4"} {
			r.nova.boot("vm-"+h, h, 1)
		}
		r.start()
		// Crashes half-way between the controller's rounds: a crash at the
		// instant of a round was seen in that round or the next, at random
		// (synctest wakes both at once), and two hosts then failed together.
		time.Sleep(500 * time.Millisecond)
		for _, h := range []string{"cmp1", "cmp2", "cmp3", "cmp4"} {
			r.crash(h)
			time.Sleep(time.Second)
		}
		time.Sleep(10 * time.Minute) // past the guard window: still held
		held := 0
		for _, in := range r.incidents(t) {
			if in.State == StateHeld {
				held++
			}
		}
		// The first three were within the share (3 of 6); the fourth tripped it.
		if held != 1 || len(r.fence.off) != 3 {
			t.Fatalf("held %d, fenced %v: %v", held, r.fence.off, summaries(r.incidents(t)))
		}
		if err := r.store.UpdateHolds(context.Background(), func(h *Holds) { h.Resumed = time.Now() }); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		r.stop()
		for _, in := range r.incidents(t) {
			if in.State.Closed() == false {
				t.Errorf("after resume: %s", in.Summary())
			}
		}
	})
}

func TestControllerResumesWithoutEvacuatingTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, "cmp1", "cmp2")
		r.nova.boot("a", "cmp1", 1)
		r.nova.boot("b", "cmp1", 1)
		r.crash("cmp1")
		// The previous controller fenced, isolated, and evacuated a; it
		// stopped before seeing a run on cmp2.
		_ = r.nova.ForceDown(context.Background(), "svc-0", true)
		_ = r.nova.Evacuate(context.Background(), "a", "cmp2")
		r.nova.calls = nil
		t0 := time.Now()
		in := &Incident{ID: "cmp1-old", Host: "cmp1", Domain: DefaultDomain, State: StateEvacuating, FailedAt: t0, Opened: t0, ServiceID: "svc-0",
			Instances: []Instance{{ID: "a", State: EvacRunning, Target: "cmp2", Started: t0, Attempts: 1}, {ID: "b", State: EvacPending}}}
		if err := r.store.Save(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		r.start()
		time.Sleep(time.Minute)
		r.stop()
		if r.nova.evacuated["a"] != 1 || r.nova.evacuated["b"] != 1 || len(r.fence.off) != 0 {
			t.Fatalf("evacuations %v, fenced %v", r.nova.evacuated, r.fence.off)
		}
		ins := r.incidents(t)
		if len(ins) != 1 || ins[0].State != StateDone {
			t.Fatalf("%v", summaries(ins))
		}
	})
}

func TestControllerRecoversAHostThatComesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, "cmp1", "cmp2")
		r.nova.boot("a", "cmp1", 1)
		r.start()
		r.crash("cmp1")
		time.Sleep(30 * time.Second)
		r.heal("cmp1")
		time.Sleep(30 * time.Second)
		r.stop()
		ins := r.incidents(t)
		if len(ins) != 1 || ins[0].Recovered.IsZero() {
			t.Fatalf("%v", summaries(ins))
		}
		if s := r.nova.services["cmp1"]; s.ForcedDown || s.Status != "enabled" {
			t.Errorf("cmp1's service after recovery: %+v", s)
		}
	})
}

func summaries(ins []*Incident) []string {
	var out []string
	for _, in := range ins {
		out = append(out, in.Summary())
	}
	return out
}

// A stopped instance stays stopped: one that comes up running on its new
// host is stopped again, and the incident says so.
func TestControllerStoppedInstanceStaysStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, "cmp1", "cmp2")
		r.nova.boot("up", "cmp1", 1)
		r.nova.boot("down", "cmp1", 1)
		r.nova.servers["down"].Status = "SHUTOFF"
		r.failOnce("cmp1")

		ins := r.incidents(t)
		if len(ins) != 1 || ins[0].State != StateDone {
			t.Fatalf("incidents: %+v", ins)
		}
		for _, inst := range ins[0].Instances {
			want := map[string]string{"up": "ACTIVE", "down": "SHUTOFF"}[inst.ID]
			if inst.FinalState != want || inst.FinalHost != "cmp2" {
				t.Errorf("%s: %+v, want %s on cmp2", inst.ID, inst, want)
			}
			if inst.ID == "down" && !strings.Contains(inst.Note, "stopped again") {
				t.Errorf("%s: note %q", inst.ID, inst.Note)
			}
		}
		if got := r.nova.servers["down"].Status; got != "SHUTOFF" {
			t.Errorf("the stopped instance is %s", got)
		}
		if slices.Contains(r.nova.calls, "stop up") || !slices.Contains(r.nova.calls, "stop down") {
			t.Errorf("nova calls: %v", r.nova.calls)
		}
	})
}

// A server deleted between the listing and its evacuation is skipped and
// never holds the others back (it once blocked a whole incident: plan
// failed on its 404 at every round).
func TestControllerDeletedServerDoesNotBlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, "cmp1", "cmp2")
		r.nova.boot("a", "cmp1", 1)
		r.nova.boot("gone", "cmp1", 1)
		r.nova.deleteListed = "gone"
		r.failOnce("cmp1")

		ins := r.incidents(t)
		if len(ins) != 1 || ins[0].State != StateDone {
			t.Fatalf("incidents: %+v", ins)
		}
		for _, inst := range ins[0].Instances {
			want := map[string]EvacState{"a": EvacDone, "gone": EvacSkipped}[inst.ID]
			if inst.State != want {
				t.Errorf("%s: %+v, want %s", inst.ID, inst, want)
			}
		}
		if r.nova.evacuated["gone"] != 0 {
			t.Errorf("the deleted server was evacuated")
		}
	})
}
