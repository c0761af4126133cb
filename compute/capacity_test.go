package compute

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/haconf/haconf/compute/nova"
)

// twoFailed is a rig where f1 and f2 failed (fenced, their incidents
// evacuating) and t1 and t2 may take their servers; t2 has 1 vCPU used.
func twoFailed(t *testing.T) (*rig, *Incident, *Incident) {
	r := newRig(t, "f1", "f2", "t1", "t2")
	for _, h := range []string{"f1", "f2"} {
		r.crash(h)
		svc := r.nova.services[h]
		svc.State, svc.ForcedDown, svc.Status = "down", true, "disabled"
	}
	r.nova.boot("used", "t2", 1)
	in := func(host, server string) *Incident {
		return &Incident{ID: host + "-1", Host: host, State: StateEvacuating, Instances: []Instance{{ID: server, State: EvacPending}}}
	}
	return r, in("f1", "a"), in("f2", "b")
}

// Two incidents that plan from the same read of Placement see each
// other's targets: the second does not choose the host the first filled
// (the scheduler refused 73 such targets in bench/compute-scale).
func TestConcurrentPlansSeeEachOther(t *testing.T) {
	r, a, b := twoFailed(t)
	r.nova.boot("a", "f1", 6)
	r.nova.boot("b", "f2", 6)
	planA, planB := planBoth(t, r, a, b)
	if planA["a"] != "t1" || planB["b"] != "t2" {
		t.Errorf("a to %q, b to %q; want a to t1 (the emptiest), b to t2 (t1 has 2 vCPUs left once a is there)", planA["a"], planB["b"])
	}
	if r.nova.reads != 1 {
		t.Errorf("%d reads of Placement for two plans at once, want 1 (shared)", r.nova.reads)
	}
}

// A member of an anti-affinity group that another incident sends to a
// host keeps its partner, moved by this incident, off that host.
func TestConcurrentPlansKeepAntiAffinity(t *testing.T) {
	r, a, b := twoFailed(t)
	r.nova.boot("a", "f1", 1)
	r.nova.boot("b", "f2", 1)
	r.nova.groups = []nova.ServerGroup{{ID: "g", Policies: []string{"anti-affinity"}, Members: []string{"a", "b"}}}
	planA, planB := planBoth(t, r, a, b)
	if planA["a"] != "t1" || planB["b"] != "t2" {
		t.Errorf("a to %q, b to %q; want a to t1, b (its anti-affinity partner) to t2", planA["a"], planB["b"])
	}
}

// A refused evacuation gives its target's room back; a plan after it
// may choose the target again.
func TestRefusedClaimReleased(t *testing.T) {
	r, a, b := twoFailed(t)
	r.nova.boot("a", "f1", 6)
	r.nova.boot("b", "f2", 6)
	r.nova.refuse["t1"] = "No valid host was found."
	ctx := context.Background()
	if _, _, err := r.ctl.plan(ctx, a, []int{0}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	a.Instances[0].Target = "t1"
	r.ctl.evacuateOne(ctx, a, 0, new(sync.Mutex))
	if a.Instances[0].State != EvacPending || len(a.Instances[0].Tried) != 1 {
		t.Fatalf("a after the refusal: %+v", a.Instances[0])
	}
	plan, _, err := r.ctl.plan(ctx, b, []int{0}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if plan["b"] != "t1" {
		t.Errorf("b to %q; want t1, free again once a was refused there", plan["b"])
	}
}

// A claim counts against a read until its server is seen on its target
// before the read started: from then on the read counts the allocation.
func TestClaimedUntilPlacementShowsIt(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	free := func(k *capacity, readAt time.Time) int {
		ts := []Target{{Host: "t1", Free: Resources{8, 8192, 100}}}
		k.claimed(ts, readAt)
		return ts[0].Free.VCPU
	}
	var k capacity
	k.claim("a", "t1", Resources{6, 512, 1}, t0)
	if got := free(&k, t0.Add(time.Minute)); got != 2 {
		t.Errorf("claimed, not landed: %d vCPUs free, want 2", got)
	}
	cl := k.claims["a"]
	cl.landed = t0.Add(10 * time.Second)
	k.claims["a"] = cl
	if got := free(&k, t0.Add(5*time.Second)); got != 2 {
		t.Errorf("landed after the read started: %d vCPUs free, want 2 (the read may not count it)", got)
	}
	if got := free(&k, t0.Add(20*time.Second)); got != 8 {
		t.Errorf("landed before the read started: %d vCPUs free, want 8 (the read counts it)", got)
	}
	k.claim("b", "t1", Resources{1, 1, 1}, t0.Add(landedKept+time.Minute))
	if _, ok := k.claims["a"]; ok {
		t.Errorf("a landed claim kept after %s", landedKept)
	}
}

// Every incident's evacuations together take at most
// evacuate.max_in_flight slots.
func TestMaxInFlight(t *testing.T) {
	cfg := testConfig("h1")
	cfg.Evacuate.MaxInFlight = 2
	c := &Controller{Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r1, err1 := c.acquire(ctx)
	_, err2 := c.acquire(ctx)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if _, err := c.acquire(ctx); err == nil {
		t.Fatal("a third evacuation at once with max_in_flight 2")
	}
	r1()
	if _, err := c.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// An incident that opens starts the read of where its servers can go,
// beside its fence.
func TestCapacityReadAtOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, "f1", "t1")
		r.fence.failing = true // the incident stays at the fence
		r.start()
		time.Sleep(time.Second)
		r.crash("f1")
		time.Sleep(3 * time.Second)
		r.stop()
		if r.nova.reads != 1 {
			t.Errorf("%d reads of Placement while fencing, want 1", r.nova.reads)
		}
	})
}

// planBoth plans the first server of each failed host, a's incident first.
func planBoth(t *testing.T, r *rig, a, b *Incident) (planA, planB map[string]string) {
	t.Helper()
	ctx := context.Background()
	planA, _, err := r.ctl.plan(ctx, a, []int{0}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	planB, _, err = r.ctl.plan(ctx, b, []int{0}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return planA, planB
}
