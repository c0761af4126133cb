package compute

import (
	"fmt"
	"maps"
	"math"
	"sort"
	"time"

	"github.com/haconf/haconf/compute/gossip"
)

// LinkView is what the controller knows of one host's link.
type LinkView struct {
	Seen  bool      // the host was a member on this link since the controller started
	Alive bool      // alive now
	Left  bool      // left gracefully (its agent stopped), not a failure
	Since time.Time // when Alive last changed
}

// HostView is the controller's view of one compute host.
type HostView struct {
	Name, Domain string
	Links        map[gossip.Link]LinkView
	Health       gossip.Health
}

// Condition is a host's state as the decider judges it.
type Condition string

// Conditions.
const (
	// Unknown: no agent of the host has been seen (not started, or the
	// controller just started): never judged.
	Unknown Condition = "unknown"
	// Healthy: alive on both networks.
	Healthy Condition = "healthy"
	// LinkDown: one network lost, the other alive. The host and its
	// virtual machines run: a warning, never an evacuation.
	LinkDown Condition = "link-down"
	// Failed: dead on both networks, confirmed by the pools' indirect
	// probes. Its instances are moved once it is fenced.
	Failed Condition = "failed"
	// Stopped: its agent left the pools gracefully (a clean shutdown or
	// a stopped agent): reported, not acted on.
	Stopped Condition = "stopped"
)

// Classify judges one host from its two links. failedAt is when the
// second link died (for Failed).
func Classify(h HostView) (c Condition, detail string, failedAt time.Time) {
	m, s := h.Links[gossip.Management], h.Links[gossip.Storage]
	switch {
	case !m.Seen && !s.Seen:
		return Unknown, "no agent seen on either network", time.Time{}
	case m.Alive && s.Alive:
		return Healthy, "alive on both networks", time.Time{}
	case m.Alive || s.Alive:
		lost, alive := gossip.Storage, gossip.Management
		if !m.Alive {
			lost, alive = gossip.Management, gossip.Storage
		}
		since := h.Links[lost].Since
		how := "unreachable"
		if h.Links[lost].Left {
			how = "left"
		} else if !h.Links[lost].Seen {
			how = "never seen"
		}
		return LinkDown, fmt.Sprintf("%s network %s since %s, %s network alive: no action", lost, how, since.Format(time.TimeOnly), alive), time.Time{}
	case m.Left && s.Left:
		return Stopped, "its agent left both pools (clean shutdown or stopped agent)", time.Time{}
	default:
		at := m.Since
		if s.Since.After(at) {
			at = s.Since
		}
		return Failed, "dead on both networks", at
	}
}

// Verdict is what the decider says about one host in one round.
type Verdict struct {
	Host      string
	Domain    string
	Condition Condition
	Detail    string
	FailedAt  time.Time
	// Act: open an incident and fence the host. Wait: not now, judge it
	// again next round (the controller settles, or the host is in
	// maintenance). Hold: a mass-failure guard tripped: open the incident
	// held, and act only after `haconf compute resume`.
	Act  bool
	Wait string
	Hold string
}

// Judge is the decider: from the pools' view it says which hosts failed
// and whether haconf may act on them. It is pure: the controller feeds it
// and carries its verdicts out.
type Judge struct {
	Config *Config
	// Started is when this controller started: nothing is judged before
	// Config.Guards.Settle has passed (after a controller failover every
	// pool is rebuilt and many hosts look absent for a moment).
	Started time.Time
}

// Round is the input of one judgement.
type Round struct {
	Now   time.Time
	Hosts []HostView
	// Open: hosts with an incident that is not closed (never judged again).
	Open map[string]bool
	// Handled: when the failure of each host's latest incident happened.
	// A host still dead since then is that incident's (fenced, or given
	// up on), not a new failure.
	Handled map[string]time.Time
	// Recent: when each host's incident of the guard window opened,
	// including closed ones: mass failure counts them.
	Recent map[string]time.Time
	// Maintenance: hosts out of haconf's hands (operator's maintenance, or
	// a nova-compute service the operator disabled).
	Maintenance map[string]string
	// Resumed: the operator's last `haconf compute resume`: failures
	// before it no longer count towards the guards.
	Resumed time.Time
}

// Decide judges every host of r.
func (j *Judge) Decide(r Round) []Verdict {
	r.Open = maps.Clone(r.Open)
	if r.Open == nil {
		r.Open = map[string]bool{}
	}
	g := j.Config.Guards
	var out []Verdict
	settling := r.Now.Sub(j.Started) < g.Settle
	// Failures within the window, per domain and in all, counting both
	// this round's failed hosts and incidents opened in the window.
	failedIn := map[string]map[string]bool{}
	count := func(domain, host string, at time.Time) {
		if r.Now.Sub(at) > g.Window || !at.After(r.Resumed) {
			return
		}
		if failedIn[domain] == nil {
			failedIn[domain] = map[string]bool{}
		}
		failedIn[domain][host] = true
	}
	for host, at := range r.Recent {
		count(j.Config.DomainOf(host), host, at)
	}
	for _, h := range r.Hosts {
		v := Verdict{Host: h.Name, Domain: h.Domain}
		v.Condition, v.Detail, v.FailedAt = Classify(h)
		if v.Condition == Failed && !v.FailedAt.After(r.Handled[h.Name]) {
			r.Open[h.Name] = true // the same failure: its incident's
		}
		if v.Condition == Failed && !r.Open[h.Name] {
			count(h.Domain, h.Name, v.FailedAt)
		}
		out = append(out, v)
	}
	total := 0
	for _, hosts := range failedIn {
		total += len(hosts)
	}
	sizes := map[string]int{} // hosts per domain, read once per judgement
	for i := range out {
		v := &out[i]
		if v.Condition != Failed || r.Open[v.Host] {
			continue
		}
		size, ok := sizes[v.Domain]
		if !ok {
			size = len(j.Config.DomainHosts(v.Domain))
			sizes[v.Domain] = size
		}
		limit := int(math.Floor(g.MaxFailedShare * float64(size)))
		switch {
		case r.Maintenance[v.Host] != "":
			v.Wait = "in maintenance: " + r.Maintenance[v.Host]
		case settling:
			v.Wait = fmt.Sprintf("the controller started %s ago; hosts are judged after guards.settle (%s)", r.Now.Sub(j.Started).Round(time.Second), g.Settle)
		case size > 1 && len(failedIn[v.Domain]) > limit:
			v.Hold = fmt.Sprintf("%d of %d hosts of domain %s failed within %s (more than guards.max_failed_share %.2g): this looks like the controller's own isolation; haconf compute resume acts on them", len(failedIn[v.Domain]), size, v.Domain, g.Window, g.MaxFailedShare)
		case total > g.MaxFailedHosts:
			v.Hold = fmt.Sprintf("%d hosts failed within %s (more than guards.max_failed_hosts %d): haconf compute resume acts on them", total, g.Window, g.MaxFailedHosts)
		default:
			v.Act = true
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Host < out[b].Host })
	return out
}
