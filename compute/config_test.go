package compute

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/haconf/haconf/compute/gossip"
)

func TestDomainHosts(t *testing.T) {
	c := testConfig("cmp1", "cmp2", "cmp3", "cmp4", "cmp5")
	c.Domains = []Domain{{Name: "rack1", Hosts: []string{"cmp4", "cmp1"}}, {Name: "rack2", Hosts: []string{"cmp2"}}}
	for domain, want := range map[string][]string{
		"rack1":       {"cmp1", "cmp4"}, // in the order of hosts
		"rack2":       {"cmp2"},
		DefaultDomain: {"cmp3", "cmp5"},
		"rack3":       nil,
	} {
		if got := c.DomainHosts(domain); !slices.Equal(got, want) {
			t.Errorf("DomainHosts(%s) = %v, want %v", domain, got, want)
		}
		for _, h := range want {
			if got := c.DomainOf(h); got != domain {
				t.Errorf("DomainOf(%s) = %s, DomainHosts(%s) lists it", h, got, domain)
			}
		}
	}
}

// BenchmarkDecide is one judgement of 1,000 hosts in racks of 40, a rack's
// 20 hosts failed (bench/compute-scale's case).
func BenchmarkDecide(b *testing.B) {
	var names []string
	for i := range 1000 {
		names = append(names, fmt.Sprintf("cmp%04d", i+1))
	}
	c := testConfig(names...)
	for i := 0; i < len(names); i += 40 {
		c.Domains = append(c.Domains, Domain{Name: fmt.Sprintf("rack%02d", i/40+1), Hosts: names[i : i+40]})
	}
	c.Guards.MaxFailedHosts = 20
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	var hosts []HostView
	for i, h := range names {
		link := LinkView{Seen: true, Alive: true, Since: t0}
		if i >= 80 && i < 100 {
			link = LinkView{Seen: true, Since: t0.Add(time.Minute)}
		}
		hosts = append(hosts, HostView{Name: h, Domain: c.DomainOf(h), Links: map[gossip.Link]LinkView{gossip.Management: link, gossip.Storage: link}})
	}
	j := Judge{Config: c, Started: t0}
	r := Round{Now: t0.Add(2 * time.Minute), Hosts: hosts}
	for b.Loop() {
		acted := 0
		for _, v := range j.Decide(r) {
			if v.Act {
				acted++
			}
		}
		if acted != 20 {
			b.Fatalf("acted on %d hosts, want 20", acted)
		}
	}
}
