// Package switchover is `haconf switchover`: a planned move of the services
// (the promoted DRBD instance and the g-services group colocated with it) to
// the other controller, which leaves no constraint behind.
//
// [Decide] is pure: from crm_mon, the CIB's location constraints and this
// node's DRBD state it decides whether a switchover is safe and where it
// goes. [Mover] carries it out: crm_resource --move --promoted with a
// lifetime (a temporary cli-prefer constraint that expires by itself should
// haconf be killed), a wait on crm_mon until DRBD is Promoted and every
// service Started on the target, then crm_resource --clear, whatever
// happened; resource-stickiness keeps the services where they are.
// Pacemaker 2.1 (crm_resource, crm_mon --output-as=xml, cibadmin), DRBD 8.4
// and 9.
package switchover

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/pacemaker"
)

// Pair names the controllers and what moves between them.
type Pair struct {
	Nodes    []string // the two controllers (haconf.yaml order)
	Resource string   // DRBD resource, e.g. r0
	Services []string // what runs with the promoted instance: g-services' members and the VIP
}

// Clone is the promotable DRBD clone (drbd-r0-clone).
func (p Pair) Clone() string { return pacemaker.NamesFor(p.Resource).Clone() }

// Primitive is the DRBD primitive inside the clone (drbd-r0).
func (p Pair) Primitive() string { return pacemaker.NamesFor(p.Resource).DRBD() }

// PromotionAttr is the node attribute the DRBD agent sets where its data
// may be promoted (master-drbd-r0).
func (p Pair) PromotionAttr() string { return pacemaker.NamesFor(p.Resource).PromotionAttr() }

// Other is the controller that is not node ("" when node is unknown).
func (p Pair) Other(node string) string {
	if !slices.Contains(p.Nodes, node) {
		return ""
	}
	for _, n := range p.Nodes {
		if n != node {
			return n
		}
	}
	return ""
}

// resources are every resource id a constraint or a failure can name that
// matters to the move.
func (p Pair) resources() []string {
	return append([]string{p.Clone(), p.Primitive(), pacemaker.Group}, p.Services...)
}

// Facts is what the decision is made from.
type Facts struct {
	Mon pacemaker.CrmMon
	// Locations are the CIB's rsc_location constraints.
	Locations []pacemaker.Location
	// Local is the controller the facts were read on; DRBD is its view
	// (its disk and its peer's), nil when it could not be read (DRBDError).
	Local     string
	DRBD      *drbd.Resource
	DRBDError string
	Now       time.Time
}

// Check is one precondition, passed or not, with what was seen.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Decision says whether and where the services move.
type Decision struct {
	From string `json:"from,omitempty"` // where DRBD is Promoted now
	To   string `json:"to,omitempty"`
	// AlreadyActive: To already runs the services; nothing to do.
	AlreadyActive bool    `json:"already_active,omitempty"`
	Checks        []Check `json:"checks"`
	// Expired are crm_resource constraints on the moving resources whose
	// lifetime ended (inert; the final crm_resource --clear removes them).
	Expired []string `json:"expired_constraints,omitempty"`
}

// Failed returns the checks that did not pass.
func (d Decision) Failed() []Check {
	var out []Check
	for _, c := range d.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// OK reports whether the switchover may go ahead.
func (d Decision) OK() bool { return !d.AlreadyActive && d.To != "" && len(d.Failed()) == 0 }

// minPromotionScore is the lowest promotion score the DRBD agent gives
// data it calls good (1000: UpToDate locally; 10000 with the peer too).
const minPromotionScore = 1000

// Check names, in the order they are reported.
const (
	CheckCluster     = "cluster"
	CheckMaintenance = "maintenance"
	CheckNodes       = "nodes"
	CheckServices    = "services"
	CheckDRBD        = "drbd"
	CheckPromotion   = "promotion"
	CheckConstraints = "constraints"
	CheckFailures    = "failures"
)

// Decide checks that the services can move to target ("" for the other
// controller) without losing data or availability, and where they go.
func Decide(p Pair, target string, f Facts) Decision {
	m := f.Mon
	var d Decision
	if promoted := m.Promoted(p.Clone()); len(promoted) == 1 {
		d.From = promoted[0]
	}
	d.To = target
	if d.To == "" {
		d.To = p.Other(d.From)
	}
	if d.To != "" && d.To == d.From && len(servicesNotOn(p, m, d.To)) == 0 {
		d.AlreadyActive = true
		return d
	}
	add := func(name string, problems []string, ok string) {
		if len(problems) > 0 {
			d.Checks = append(d.Checks, Check{Name: name, Detail: strings.Join(problems, "; ")})
			return
		}
		d.Checks = append(d.Checks, Check{Name: name, OK: true, Detail: ok})
	}

	switch {
	case m.DC == "":
		add(CheckCluster, []string{"no DC elected: the cluster makes no decisions"}, "")
	case !m.Quorate:
		add(CheckCluster, []string{"the partition has no quorum"}, "")
	default:
		add(CheckCluster, nil, "DC "+m.DC+", quorate")
	}

	if m.MaintenanceAll {
		add(CheckMaintenance, []string{"maintenance-mode is on: Pacemaker moves nothing (haconf maintenance off first)"}, "")
	} else {
		add(CheckMaintenance, nil, "maintenance-mode is off")
	}

	d.Checks = append(d.Checks, checkNodes(p, m, d.From, d.To))
	d.Checks = append(d.Checks, checkServices(p, m, d.From, d.To))
	d.Checks = append(d.Checks, checkDRBD(p, f, d.To))

	// The DRBD agent rates its data with the promotion score: 10000 as
	// good as it gets, 1000 good locally (peer unknown), 10 or 5 a bad
	// idea, none: do not promote.
	score := m.Attributes[d.To][p.PromotionAttr()]
	if n, err := strconv.Atoi(score); err == nil && n >= minPromotionScore || score == "INFINITY" {
		add(CheckPromotion, nil, fmt.Sprintf("%s=%s on %s", p.PromotionAttr(), score, d.To))
	} else {
		add(CheckPromotion, []string{fmt.Sprintf("%s's DRBD promotion score is %s=%q (at least %d needed): the DRBD agent does not consider its data good enough to promote",
			orUnknown(d.To), p.PromotionAttr(), score, minPromotionScore)}, "")
	}

	var cs []string
	cs, d.Expired = constraintProblems(p, f, d.To)
	add(CheckConstraints, cs, "nothing keeps the services off "+orUnknown(d.To)+" and no crm_resource constraint is left over")

	var fails []string
	for _, fa := range m.FailedActions {
		if r := opResource(fa.OpKey); fa.Node == d.To && slices.Contains(p.resources(), r) {
			fails = append(fails, fmt.Sprintf("%s %s failed on %s (%s): after fixing the cause, crm_resource --cleanup -r %s -N %s", r, fa.Task, fa.Node, fa.ExitStatus, r, fa.Node))
		}
	}
	add(CheckFailures, fails, "no failed actions of the services or DRBD on "+orUnknown(d.To))
	return d
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown target)"
	}
	return s
}

func checkNodes(p Pair, m pacemaker.CrmMon, from, to string) Check {
	var problems []string
	for _, name := range p.Nodes {
		n, ok := m.Node(name)
		switch {
		case !ok:
			problems = append(problems, name+" is not a Pacemaker node")
		case n.Unclean:
			problems = append(problems, name+" is UNCLEAN: it must be fenced first")
		case n.Maintenance && (name == from || name == to):
			problems = append(problems, name+" is in maintenance: Pacemaker does not stop or start anything there")
		}
	}
	switch {
	case to == "":
		problems = append(problems, "no target: DRBD is Promoted on no node and --to was not given")
	case !slices.Contains(p.Nodes, to):
		problems = append(problems, fmt.Sprintf("%s is not one of the controllers %v", to, p.Nodes))
	default:
		if n, ok := m.Node(to); ok && !n.Online {
			problems = append(problems, to+" is offline")
		} else if ok && n.Standby {
			problems = append(problems, to+" is in standby: it cannot run the services")
		}
	}
	if len(problems) > 0 {
		return Check{Name: CheckNodes, Detail: strings.Join(problems, "; ")}
	}
	return Check{Name: CheckNodes, OK: true, Detail: strings.Join(p.Nodes, " and ") + " online, " + to + " not in standby"}
}

// servicesNotOn lists what keeps node from being the active controller:
// DRBD not Promoted (only) there, a service not Started (only) there.
func servicesNotOn(p Pair, m pacemaker.CrmMon, node string) []string {
	var out []string
	if pr := m.Promoted(p.Clone()); !slices.Equal(pr, []string{node}) {
		out = append(out, fmt.Sprintf("DRBD %s is Promoted on %s", p.Resource, nodesOrNone(pr)))
	}
	for _, s := range p.Services {
		on := m.RunningOn(s)
		if !slices.Equal(on, []string{node}) {
			out = append(out, fmt.Sprintf("%s runs on %s", s, nodesOrNone(on)))
			continue
		}
		for _, r := range m.Resources {
			if r.ID == s && r.Failed {
				out = append(out, s+" has failed")
			}
		}
	}
	return out
}

func nodesOrNone(ns []string) string {
	if len(ns) == 0 {
		return "no node"
	}
	return strings.Join(ns, " and ")
}

func checkServices(p Pair, m pacemaker.CrmMon, from, to string) Check {
	c := Check{Name: CheckServices}
	switch pr := m.Promoted(p.Clone()); {
	case len(pr) == 0:
		c.Detail = fmt.Sprintf("DRBD %s is Promoted on no node: the services are down, this is not a switchover (see haconf status)", p.Resource)
		return c
	case len(pr) > 1:
		c.Detail = fmt.Sprintf("DRBD %s is Promoted on %s at once", p.Resource, strings.Join(pr, " and "))
		return c
	}
	var problems []string
	if to == from {
		problems = append(problems, fmt.Sprintf("DRBD is already Promoted on %s but: %s", to, strings.Join(servicesNotOn(p, m, to), ", ")))
	} else if bad := servicesNotOn(p, m, from); len(bad) > 0 {
		problems = append(problems, fmt.Sprintf("the services do not all run on %s (%s): fix that first (haconf status)", from, strings.Join(bad, ", ")))
	}
	for _, r := range m.Resources {
		if !r.Managed && !m.MaintenanceAll && (r.Clone == p.Clone() || slices.Contains(p.Services, r.ID)) {
			problems = append(problems, r.ID+" is unmanaged: Pacemaker would not move it")
			break
		}
	}
	if len(problems) > 0 {
		c.Detail = strings.Join(problems, "; ")
		return c
	}
	c.OK = true
	c.Detail = fmt.Sprintf("DRBD %s Promoted on %s with %s", p.Resource, from, strings.Join(p.Services, ", "))
	return c
}

func checkDRBD(p Pair, f Facts, to string) Check {
	c := Check{Name: CheckDRBD}
	r := f.DRBD
	if r == nil {
		c.Detail = fmt.Sprintf("cannot read DRBD %s on %s: %s", p.Resource, f.Local, f.DRBDError)
		return c
	}
	// This node sees its own disk and its peer's.
	target, other := r.PeerDisk, r.Disk
	if f.Local == to {
		target, other = r.Disk, r.PeerDisk
	}
	var problems []string
	if r.Connection != drbd.ConnConnected {
		problems = append(problems, fmt.Sprintf("DRBD %s is %s on %s: the peers do not replicate, so the target's data is not known to be current", p.Resource, r.Connection, f.Local))
	}
	if target != drbd.DiskUpToDate {
		problems = append(problems, fmt.Sprintf("%s's disk is %s: promoting it would serve stale data and leave the only good copy behind", orUnknown(to), target))
	}
	if other != drbd.DiskUpToDate {
		problems = append(problems, fmt.Sprintf("the other disk is %s: after the move there would be no second good copy", other))
	}
	if r.Connection == drbd.ConnConnected && r.Replication != "" && r.Replication != drbd.ReplEstablished {
		msg := "a resync is running (" + r.Replication
		if r.Sync != nil {
			msg += fmt.Sprintf(", %.1f%% done", r.Sync.Percent)
		}
		problems = append(problems, msg+"): wait until it finishes")
	}
	if len(problems) > 0 {
		c.Detail = strings.Join(problems, "; ")
		return c
	}
	c.OK = true
	c.Detail = fmt.Sprintf("%s Connected, %s/%s (seen from %s)", p.Resource, r.Disk, r.PeerDisk, f.Local)
	return c
}

// constraintProblems returns what keeps the services off to (bans as
// crm_mon evaluated them, e.g. DRBD's crm-fence-peer constraint) and
// crm_resource constraints left over on the moving resources: an active
// one refuses (its owner meant it; crm_resource --clear would remove it),
// an expired one is only reported.
func constraintProblems(p Pair, f Facts, to string) (problems, expired []string) {
	rs := p.resources()
	for _, b := range f.Mon.Bans {
		if b.Node != to || !slices.Contains(rs, b.Resource) || strings.HasPrefix(b.ID, "cli-") {
			continue // crm_resource's own constraints are reported below
		}
		what := b.Resource
		if b.PromotedOnly {
			what += " (promoted)"
		}
		msg := fmt.Sprintf("%s keeps %s off %s", b.ID, what, to)
		if pacemaker.IsFenceConstraint(b.ID) {
			msg += ": DRBD's fence-peer constraint, the target's data is outdated (removed once DRBD has resynced)"
		}
		problems = append(problems, msg)
	}
	for _, l := range f.Locations {
		if !l.CLI() || !slices.Contains(rs, l.Resource) {
			continue
		}
		if l.Expired(f.Now) {
			expired = append(expired, l.ID)
			continue
		}
		problems = append(problems, fmt.Sprintf("%s (from crm_resource --move/--ban or an interrupted switchover) is still in effect: remove it with crm_resource --clear -r %s", l.ID, l.Resource))
	}
	return problems, expired
}

// opResource is the resource of an operation key (mariadb_start_0,
// drbd-r0_monitor_29000).
func opResource(opKey string) string {
	parts := strings.Split(opKey, "_")
	if len(parts) >= 3 {
		return strings.Join(parts[:len(parts)-2], "_")
	}
	return opKey
}
