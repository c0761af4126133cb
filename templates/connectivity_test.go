package templates_test

import (
	"context"
	"testing"

	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/internal/testenv"
	"github.com/haconf/haconf/pacemaker"
	"github.com/haconf/haconf/pacemaker/pacemakertest"
)

// TestCrmSimulatePromotionFollowsConnectivity: with vip.ping_hosts, the
// services move off a node that lost its management network (its pingd
// attribute drops to 0) and stay where they are when both nodes reach the
// same number of hosts, none included (a dead gateway moves nothing).
func TestCrmSimulatePromotionFollowsConnectivity(t *testing.T) {
	testenv.RequireCommands(t, "crm_simulate", "crm_attribute", "crm_mon")
	c, cib := pacemakertest.Example(t)
	if len(c.VIP.PingHosts) == 0 {
		t.Fatal("the example configuration has no vip.ping_hosts")
	}
	ctx := context.Background()
	sim := &pacemaker.Simulator{R: runner.Exec{}, Dir: t.TempDir()}
	names := pacemaker.NamesFor(c.DRBD.Resource)
	steady, err := sim.Start(ctx, cib, c.NodeNames(), []string{names.PromotionAttr()})
	if err != nil {
		t.Fatal(err)
	}
	promoted := func(tr *pacemaker.Transition) string {
		t.Helper()
		ps, err := sim.Placements(ctx, tr)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []string{pacemaker.MariaDB, pacemaker.VIP} {
			if n, want := placedOn(ps, r, "Started"), placedOn(ps, names.DRBD(), "Promoted"); n != want {
				t.Errorf("%s runs on %q, DRBD is promoted on %q", r, n, want)
			}
		}
		return placedOn(ps, names.DRBD(), "Promoted")
	}
	active := promoted(steady)
	other := c.NodeNames()[0]
	if other == active {
		other = c.NodeNames()[1]
	}
	both, err := sim.SetAttributes(ctx, steady, pacemaker.PingAttr, map[string]string{active: "1000", other: "1000"})
	if err != nil {
		t.Fatal(err)
	}
	if n := promoted(both); n != active {
		t.Errorf("both nodes reach the gateway: services moved from %s to %s", active, n)
	}
	none, err := sim.SetAttributes(ctx, both, pacemaker.PingAttr, map[string]string{active: "0", other: "0"})
	if err != nil {
		t.Fatal(err)
	}
	if n := promoted(none); n != active {
		t.Errorf("neither node reaches the gateway: services moved from %s to %s", active, n)
	}
	cut, err := sim.SetAttributes(ctx, both, pacemaker.PingAttr, map[string]string{active: "0"})
	if err != nil {
		t.Fatal(err)
	}
	if n := promoted(cut); n != other {
		t.Errorf("%s lost its management network: services on %q, want %s (summary %q)", active, n, other, cut.Summary)
	}
	back, err := sim.SetAttributes(ctx, cut, pacemaker.PingAttr, map[string]string{active: "1000"})
	if err != nil {
		t.Fatal(err)
	}
	if n := promoted(back); n != other {
		t.Errorf("%s's network is back: services moved back to %q, want them to stay on %s", active, n, other)
	}
}

// placedOn is the node where rsc runs in role ("" when nowhere).
func placedOn(ps []pacemaker.Placement, rsc, role string) string {
	for _, p := range ps {
		if p.Resource == rsc && p.Role == role {
			return p.Node
		}
	}
	return ""
}
