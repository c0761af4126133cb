package gossip

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// node is what memberlist hands the event delegate for a member with health h.
func node(t *testing.T, name string, h Health) *memberlist.Node {
	t.Helper()
	b, err := json.Marshal(meta{Role: RoleAgent, Health: h})
	if err != nil {
		t.Fatal(err)
	}
	return &memberlist.Node{Name: name, Addr: []byte{127, 0, 2, 1}, Port: 7946, Meta: b}
}

// TestObserve drives the view and the events as memberlist's callbacks
// would, without a network.
func TestObserve(t *testing.T) {
	p := newPools(testConfig("rack1", "ctl", RoleController, 10, 7946), 4)
	checked := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	up := Health{NovaCompute: true, Checked: checked}
	later := Health{NovaCompute: false, Checked: checked.Add(time.Minute)}
	next := func() Event {
		t.Helper()
		select {
		case ev := <-p.Events():
			return ev
		default:
			t.Fatal("no event")
			return Event{}
		}
	}
	storage := func() LinkState { return p.View()["host1"].Links[Storage] }

	p.observe(Storage, node(t, "host1", up), true)
	ev := next()
	if !ev.Alive || ev.Left || ev.Link != Storage || ev.Role != RoleAgent || ev.Domain != "rack1" || !ev.Health.NovaCompute {
		t.Errorf("join event: %+v", ev)
	}
	joined := storage()
	if !joined.Alive || joined.Addr != "127.0.2.1:7946" {
		t.Errorf("after the join: %+v", joined)
	}
	if _, ok := p.View()["host1"].Links[Management]; ok {
		t.Error("host1 has a management state without being seen there")
	}

	p.observe(Storage, node(t, "host1", later), true)
	if ev := next(); !ev.Alive || ev.Health.NovaCompute {
		t.Errorf("health event: %+v", ev)
	}
	if got := storage(); got.Since != joined.Since {
		t.Errorf("a health change moved Since from %s to %s", joined.Since, got.Since)
	}

	p.observe(Storage, node(t, "host1", up), false) // a dead link's meta can be stale
	if ev := next(); ev.Alive || ev.Left {
		t.Errorf("failure event: %+v", ev)
	}
	if got := p.View()["host1"]; got.Health.NovaCompute || got.Links[Storage].Alive || got.Links[Storage].Left {
		t.Errorf("after the failure: %+v", got)
	}

	p.observe(Storage, node(t, "host1", Health{}), true) // back after a restart, not reported yet
	if ev := next(); !ev.Alive {
		t.Errorf("rejoin event: %+v", ev)
	}
	if got := p.View()["host1"]; !got.Health.Checked.IsZero() || !got.Links[Storage].Alive {
		t.Errorf("after the rejoin: %+v", got)
	}

	p.noticed(Storage, []byte(`{"leaving":"host1"}`))
	p.observe(Storage, node(t, "host1", up), false)
	if ev := next(); ev.Alive || !ev.Left {
		t.Errorf("leave event: %+v", ev)
	}
	if got := storage(); got.Alive || !got.Left {
		t.Errorf("after the leave: %+v", got)
	}
	p.observe(Storage, node(t, "host1", up), true)
	p.observe(Storage, node(t, "host1", up), false) // the notice was used up by the leave
	next()
	if ev := next(); ev.Left {
		t.Errorf("a later failure counts as a leave: %+v", ev)
	}

	for range 6 { // the buffer holds 4
		p.observe(Management, node(t, "host2", up), true)
	}
	if got := p.Dropped(); got != 2 {
		t.Errorf("Dropped = %d, want 2", got)
	}
	if err := p.Shutdown(); err != nil {
		t.Fatal(err)
	}
	p.observe(Management, node(t, "host2", up), false) // after Shutdown: no send on the closed channel
}

// SetHealth advertises a health only when it says something new of the
// host: the agent calls it every 5 s, and each advertisement is a
// broadcast to the whole domain.
func TestSetHealthOnlyOnChange(t *testing.T) {
	p := newPools(Config{Name: "host1", Domain: "rack1", Role: RoleAgent}, 1)
	no, yes := false, true
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for i, step := range []struct {
		h       Health
		updates int64
	}{
		{Health{NovaCompute: true, Checked: t0}, 1},
		{Health{NovaCompute: true, Checked: t0.Add(5 * time.Second)}, 1}, // only Checked moved
		{Health{NovaCompute: false, Checked: t0.Add(10 * time.Second)}, 2},
		{Health{NovaCompute: false, Libvirt: &yes, Checked: t0.Add(15 * time.Second)}, 3},
		{Health{NovaCompute: false, Libvirt: &no, Checked: t0.Add(20 * time.Second)}, 4},
		{Health{NovaCompute: false, Libvirt: &no, Checked: t0.Add(25 * time.Second)}, 4},
	} {
		if err := p.SetHealth(step.h); err != nil {
			t.Fatal(err)
		}
		if got := p.updates.Load(); got != step.updates {
			t.Errorf("step %d: %d advertisements, want %d", i, got, step.updates)
		}
	}
	var m meta
	if err := json.Unmarshal(*p.meta.Load(), &m); err != nil || m.Health.NovaCompute || m.Health.Libvirt == nil || *m.Health.Libvirt {
		t.Errorf("meta %s, %v", *p.meta.Load(), err)
	}
}
