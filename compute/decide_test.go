package compute

import (
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/compute/gossip"
	"github.com/haconf/haconf/compute/nova"
)

func view(name string, mgmt, stor LinkView) HostView {
	return HostView{Name: name, Domain: DefaultDomain, Links: map[gossip.Link]LinkView{gossip.Management: mgmt, gossip.Storage: stor}}
}

func TestClassify(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	up := LinkView{Seen: true, Alive: true, Since: t0}
	dead := func(d time.Duration) LinkView { return LinkView{Seen: true, Since: t0.Add(d)} }
	left := LinkView{Seen: true, Left: true, Since: t0}
	for _, tc := range []struct {
		name       string
		mgmt, stor LinkView
		want       Condition
		failedAt   time.Time
		detail     string
	}{
		{"both alive", up, up, Healthy, time.Time{}, "both"},
		{"never seen", LinkView{}, LinkView{}, Unknown, time.Time{}, "no agent"},
		{"storage lost", up, dead(time.Second), LinkDown, time.Time{}, "storage network unreachable"},
		{"management lost", dead(time.Second), up, LinkDown, time.Time{}, "management network unreachable"},
		{"storage never seen", up, LinkView{}, LinkDown, time.Time{}, "storage network never seen"},
		{"both lost: the later death counts", dead(2 * time.Second), dead(5 * time.Second), Failed, t0.Add(5 * time.Second), "dead on both"},
		{"agent left both", left, left, Stopped, time.Time{}, "left"},
		{"left one, dead on the other", left, dead(3 * time.Second), Failed, t0.Add(3 * time.Second), "dead"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, detail, at := Classify(view("cmp1", tc.mgmt, tc.stor))
			if c != tc.want || !at.Equal(tc.failedAt) || !strings.Contains(detail, tc.detail) {
				t.Errorf("got %s %q %v, want %s (%q) %v", c, detail, at, tc.want, tc.detail, tc.failedAt)
			}
		})
	}
}

func TestDecideGuards(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	up := LinkView{Seen: true, Alive: true, Since: t0}
	dead := LinkView{Seen: true, Since: t0.Add(time.Minute)}
	hosts := func(failed ...string) []HostView {
		var out []HostView
		for _, h := range []string{"cmp1", "cmp2", "cmp3", "cmp4"} {
			v := view(h, up, up)
			for _, f := range failed {
				if f == h {
					v = view(h, dead, dead)
				}
			}
			out = append(out, v)
		}
		return out
	}
	cfg := testConfig("cmp1", "cmp2", "cmp3", "cmp4")
	cfg.Guards.Settle = 30 * time.Second
	j := Judge{Config: cfg, Started: t0}
	act := func(vs []Verdict) (acts, waits, holds []string) {
		for _, v := range vs {
			switch {
			case v.Act:
				acts = append(acts, v.Host)
			case v.Wait != "":
				waits = append(waits, v.Host)
			case v.Hold != "":
				holds = append(holds, v.Host)
			}
		}
		return
	}
	now := t0.Add(time.Minute + 2*time.Second)
	if a, w, h := act(j.Decide(Round{Now: t0.Add(10 * time.Second), Hosts: hosts("cmp1")})); len(a)+len(h) != 0 || len(w) != 1 {
		t.Errorf("while settling: act %v wait %v hold %v", a, w, h)
	}
	if a, _, _ := act(j.Decide(Round{Now: now, Hosts: hosts("cmp1")})); len(a) != 1 {
		t.Errorf("one of four: act %v", a)
	}
	if a, _, h := act(j.Decide(Round{Now: now, Hosts: hosts("cmp1", "cmp2")})); len(a) != 2 || len(h) != 0 {
		t.Errorf("two of four (half): act %v hold %v", a, h)
	}
	if a, _, h := act(j.Decide(Round{Now: now, Hosts: hosts("cmp1", "cmp2", "cmp3")})); len(a) != 0 || len(h) != 3 {
		t.Errorf("three of four: act %v hold %v", a, h)
	}
	// One already handled in the window counts: a third failure holds.
	r := Round{Now: now, Hosts: hosts("cmp1", "cmp2", "cmp3"), Open: map[string]bool{"cmp1": true}, Recent: map[string]time.Time{"cmp1": t0.Add(time.Minute)}}
	if a, _, h := act(j.Decide(r)); len(a) != 0 || len(h) != 2 {
		t.Errorf("third failure in the window: act %v hold %v", a, h)
	}
	// After a resume, earlier failures no longer count.
	r.Resumed = t0.Add(time.Minute + time.Second)
	r.Hosts = hosts("cmp1", "cmp2")
	r.Recent["cmp2"] = t0.Add(time.Minute)
	if a, _, h := act(j.Decide(r)); len(h) != 0 {
		t.Errorf("after resume: act %v hold %v", a, h)
	}
	// Maintenance waits.
	if a, w, _ := act(j.Decide(Round{Now: now, Hosts: hosts("cmp4"), Maintenance: map[string]string{"cmp4": "until noon"}})); len(a) != 0 || len(w) != 1 {
		t.Errorf("maintenance: act %v wait %v", a, w)
	}
	// The same failure, already handled, is not a new one.
	if a, _, _ := act(j.Decide(Round{Now: now, Hosts: hosts("cmp1"), Handled: map[string]time.Time{"cmp1": t0.Add(time.Minute)}})); len(a) != 0 {
		t.Errorf("handled failure acted on again: %v", a)
	}
}

func TestChoose(t *testing.T) {
	cap8 := Resources{8, 8192, 100}
	targets := []Target{
		{Host: "cmp2", Capacity: cap8, Free: Resources{2, 2048, 90}},
		{Host: "cmp3", Capacity: cap8, Free: cap8},
		{Host: "cmp4", Capacity: cap8, Free: cap8},
	}
	small := Resources{1, 512, 1}
	t.Run("spread", func(t *testing.T) {
		got := Choose(targets, []Need{{ServerID: "a", Size: small}, {ServerID: "b", Size: small}, {ServerID: "c", Size: small}})
		hosts := map[string]int{}
		for _, p := range got {
			hosts[p.Host]++
		}
		if hosts["cmp3"] == 0 || hosts["cmp4"] == 0 || hosts["cmp2"] > 1 {
			t.Errorf("%+v", got)
		}
	})
	t.Run("reserved first", func(t *testing.T) {
		ts := append([]Target{{Host: "spare", Reserved: true, Capacity: cap8, Free: Resources{2, 8192, 100}}}, targets...)
		got := Choose(ts, []Need{{ServerID: "a", Size: small}, {ServerID: "b", Size: small}, {ServerID: "c", Size: small}})
		n := 0
		for _, p := range got {
			if p.Host == "spare" {
				n++
			}
		}
		if n != 2 {
			t.Errorf("spare took %d, want 2 (its vCPUs): %+v", n, got)
		}
	})
	t.Run("anti-affinity", func(t *testing.T) {
		groups := []nova.ServerGroup{{ID: "g", Policies: []string{"anti-affinity"}, Members: []string{"a", "b", "x"}}}
		servers := []nova.Server{{ID: "a", Flavor: nova.Flavor{VCPUs: 1, RAM: 512, Disk: 1}}, {ID: "b", Flavor: nova.Flavor{VCPUs: 1, RAM: 512, Disk: 1}}}
		got := Choose(targets, Needs(servers, groups, map[string]string{"x": "cmp3"}))
		if got[0].Host == got[1].Host || got[0].Host == "cmp3" || got[1].Host == "cmp3" || got[0].Host == "" || got[1].Host == "" {
			t.Errorf("%+v", got)
		}
	})
	t.Run("shortfall", func(t *testing.T) {
		got := Choose(targets[:1], []Need{{ServerID: "big", Size: Resources{4, 512, 1}}})
		if got[0].Host != "" || !strings.Contains(got[0].Reason, "4 vCPU") {
			t.Errorf("%+v", got)
		}
	})
	t.Run("avoid a host that refused", func(t *testing.T) {
		got := Choose(targets, []Need{{ServerID: "a", Size: small, Avoid: []string{"cmp3", "cmp4"}}})
		if got[0].Host != "cmp2" {
			t.Errorf("%+v", got)
		}
	})
}
