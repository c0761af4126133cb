package compute

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/haconf/haconf/compute/nova"
)

// Resources are the amounts the chooser weighs, in Placement's classes.
type Resources struct {
	VCPU     int `json:"vcpu"`
	MemoryMB int `json:"memory_mb"`
	DiskGB   int `json:"disk_gb"`
}

func (r Resources) fits(in Resources) bool {
	return r.VCPU <= in.VCPU && r.MemoryMB <= in.MemoryMB && r.DiskGB <= in.DiskGB
}

func (r Resources) minus(o Resources) Resources {
	return Resources{r.VCPU - o.VCPU, r.MemoryMB - o.MemoryMB, r.DiskGB - o.DiskGB}
}

func (r Resources) String() string {
	return fmt.Sprintf("%d vCPU, %d MB, %d GB", r.VCPU, r.MemoryMB, r.DiskGB)
}

// Target is a host that may receive instances.
type Target struct {
	Host     string    `json:"host"`
	Zone     string    `json:"zone,omitempty"`
	Reserved bool      `json:"reserved"`
	Capacity Resources `json:"capacity"` // Placement's (total-reserved)*allocation ratio
	Free     Resources `json:"free"`     // Capacity minus usages
}

// Need is one instance to place.
type Need struct {
	ServerID string    `json:"server_id"`
	Name     string    `json:"name,omitempty"`
	Size     Resources `json:"size"`
	Zone     string    `json:"zone,omitempty"`
	// AntiAffinity: the hosts that already hold another member of one of
	// its anti-affinity server groups.
	AntiAffinity []string `json:"anti_affinity,omitempty"`
	// Priority: higher is placed first.
	Priority int `json:"priority"`
	// Avoid: hosts that refused it already (a retry goes elsewhere).
	Avoid []string `json:"avoid,omitempty"`
}

// Placement is the chooser's answer for one instance.
type Placement struct {
	ServerID string `json:"server_id"`
	Name     string `json:"name,omitempty"`
	Host     string `json:"host,omitempty"` // "" when nothing fits
	Reason   string `json:"reason,omitempty"`
}

// Choose picks a target for each need: reserved hosts first when they
// fit, otherwise the host left with the most free capacity (spread), in
// the instance's availability zone when one fits, never beside a member
// of its anti-affinity groups. Larger and higher-priority instances go
// first. Nova's scheduler still validates each choice.
func Choose(targets []Target, needs []Need) []Placement {
	free := make([]Target, len(targets))
	copy(free, targets)
	order := slices.Clone(needs)
	sort.SliceStable(order, func(a, b int) bool {
		if order[a].Priority != order[b].Priority {
			return order[a].Priority > order[b].Priority
		}
		return order[a].Size.MemoryMB+1024*order[a].Size.VCPU > order[b].Size.MemoryMB+1024*order[b].Size.VCPU
	})
	// Members of the same anti-affinity group placed in this plan.
	placedWith := map[string][]string{} // host -> server IDs placed
	byID := map[string]Need{}
	for _, n := range needs {
		byID[n.ServerID] = n
	}
	var out []Placement
	for _, n := range order {
		best, reason := -1, ""
		bestScore := math.Inf(-1)
		for i, t := range free {
			switch {
			case slices.Contains(n.Avoid, t.Host):
				continue
			case slices.Contains(n.AntiAffinity, t.Host) || sharesGroup(n, placedWith[t.Host], byID):
				reason = "anti-affinity excludes " + t.Host
				continue
			case !n.Size.fits(t.Free):
				continue
			}
			score := spreadScore(t, n.Size)
			if t.Reserved {
				score += 10 // reserved spares fill first
			}
			if n.Zone != "" && t.Zone == n.Zone {
				score += 5 // stay in the instance's zone when one fits
			}
			if score > bestScore {
				best, bestScore = i, score
			}
		}
		p := Placement{ServerID: n.ServerID, Name: n.Name}
		if best < 0 {
			p.Reason = "no healthy host has " + n.Size.String() + " free"
			if reason != "" {
				p.Reason += " (" + reason + ")"
			}
		} else {
			p.Host = free[best].Host
			free[best].Free = free[best].Free.minus(n.Size)
			placedWith[p.Host] = append(placedWith[p.Host], n.ServerID)
		}
		out = append(out, p)
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].ServerID < out[b].ServerID })
	return out
}

// sharesGroup reports whether n must not be placed beside one of placed:
// both are members of one anti-affinity group (groupKey on AntiAffinity
// entries "group:<id>").
func sharesGroup(n Need, placed []string, byID map[string]Need) bool {
	for _, g := range n.AntiAffinity {
		if !strings.HasPrefix(g, "group:") {
			continue
		}
		for _, id := range placed {
			if slices.Contains(byID[id].AntiAffinity, g) {
				return true
			}
		}
	}
	return false
}

// spreadScore is the smallest share of a resource left free on t after
// placing size: higher means emptier.
func spreadScore(t Target, size Resources) float64 {
	share := func(free, capacity, need int) float64 {
		if capacity <= 0 {
			return 0
		}
		return float64(free-need) / float64(capacity)
	}
	return min(share(t.Free.VCPU, t.Capacity.VCPU, size.VCPU),
		share(t.Free.MemoryMB, t.Capacity.MemoryMB, size.MemoryMB),
		share(t.Free.DiskGB, t.Capacity.DiskGB, size.DiskGB))
}

// SizeOf is what an instance of flavor f takes in Placement.
func SizeOf(f nova.Flavor) Resources {
	return Resources{VCPU: f.VCPUs, MemoryMB: f.RAM + f.Swap, DiskGB: f.Disk + f.Ephemeral}
}

// TargetOf turns a Placement resource provider into a target.
func TargetOf(host string, p nova.Provider) Target {
	t := Target{Host: host, Capacity: Resources{p.Capacity["VCPU"], p.Capacity["MEMORY_MB"], p.Capacity["DISK_GB"]}}
	t.Free = t.Capacity.minus(Resources{p.Usages["VCPU"], p.Usages["MEMORY_MB"], p.Usages["DISK_GB"]})
	return t
}

// Needs turns the servers of a failed host into needs: each server's
// size, zone and anti-affinity (the hosts of the other members of its
// anti-affinity groups, and "group:<id>" so that two members being moved
// together are kept apart too).
func Needs(servers []nova.Server, groups []nova.ServerGroup, hostOf map[string]string) []Need {
	var out []Need
	for _, s := range servers {
		n := Need{ServerID: s.ID, Name: s.Name, Size: SizeOf(s.Flavor), Zone: s.AvailabilityZone}
		for _, g := range groups {
			if !slices.Contains(g.Members, s.ID) || !antiAffinity(g) {
				continue
			}
			n.AntiAffinity = append(n.AntiAffinity, "group:"+g.ID)
			for _, m := range g.Members {
				if h := hostOf[m]; m != s.ID && h != "" && !slices.Contains(n.AntiAffinity, h) {
					n.AntiAffinity = append(n.AntiAffinity, h)
				}
			}
		}
		if p, ok := s.Metadata["haconf_priority"]; ok {
			fmt.Sscanf(p, "%d", &n.Priority)
		}
		out = append(out, n)
	}
	return out
}

func antiAffinity(g nova.ServerGroup) bool {
	// soft-anti-affinity is Nova's weigher's preference, not a rule.
	return slices.Contains(g.Policies, "anti-affinity")
}
