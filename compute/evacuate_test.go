package compute

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/haconf/haconf/compute/nova"
)

// readCounting is fakeNova counting the servers read, by id.
type readCounting struct {
	*fakeNova
	mu   sync.Mutex
	read map[string]int
}

func (r *readCounting) Server(ctx context.Context, id string) (nova.Server, error) {
	r.mu.Lock()
	r.read[id]++
	r.mu.Unlock()
	return r.fakeNova.Server(ctx, id)
}

// A plan reads where the partners of the failed host's servers run, and
// nothing of the cloud's other server groups (at 20,000 servers each plan
// read about 1,000 of them, one call each: bench/compute-scale).
func TestPlanReadsOnlyThePartners(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, "cmp1", "cmp2", "cmp3", "cmp4")
		for _, id := range []string{"a", "b"} {
			r.nova.boot(id, "cmp1", 1)
		}
		r.nova.boot("x", "cmp2", 1) // a's partner
		r.nova.groups = []nova.ServerGroup{{ID: "g-a", Policies: []string{"anti-affinity"}, Members: []string{"a", "x"}}}
		for i := range 10 {
			y, z := fmt.Sprintf("y%d", i), fmt.Sprintf("z%d", i)
			r.nova.boot(y, "cmp3", 0)
			r.nova.boot(z, "cmp4", 0)
			r.nova.groups = append(r.nova.groups, nova.ServerGroup{ID: "g-" + y, Policies: []string{"anti-affinity"}, Members: []string{y, z}})
		}
		// b's soft group is the scheduler's preference, not a rule.
		r.nova.groups = append(r.nova.groups, nova.ServerGroup{ID: "g-b", Policies: []string{"soft-anti-affinity"}, Members: []string{"b", "y0"}})
		counted := &readCounting{fakeNova: r.nova, read: map[string]int{}}
		r.ctl.Nova = counted
		r.failOnce("cmp1")

		ins := r.incidents(t)
		if len(ins) != 1 || ins[0].State != StateDone {
			for _, in := range ins {
				t.Logf("%s: %+v", in.Summary(), in.Instances)
			}
			t.Fatalf("%d incidents, want one done", len(ins))
		}
		for _, inst := range ins[0].Instances {
			if inst.ID == "a" && inst.FinalHost == "cmp2" {
				t.Errorf("a went beside its partner x on cmp2: %+v", inst)
			}
		}
		if counted.read["x"] == 0 {
			t.Error("x, a's partner, was never read")
		}
		for id, n := range counted.read {
			if id != "a" && id != "b" && id != "x" {
				t.Errorf("%s, in no group of cmp1's servers, was read %d times", id, n)
			}
		}
	})
}
