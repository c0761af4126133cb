package status

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/haconf/haconf/clock"
	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/pacemaker"
	"github.com/haconf/haconf/rabbitmq"
	"github.com/haconf/haconf/watchdog"
)

// Assess turns what the collectors saw into a verdict. It is pure: the
// same snapshot always gives the same report.
func Assess(s Snapshot) Report {
	a := &assessor{s: s, mon: s.Pacemaker.Mon}
	a.active = a.activeNode()
	layers := []Layer{a.corosync(), a.pacemaker(), a.drbd(), a.mysql(), a.rabbitmq(), a.vip(), a.fencing(), a.clockLayer(), a.backup()}
	r := Report{Verdict: Healthy, Reasons: []string{}, Node: s.Node, Time: s.Time, Active: a.active, Layers: layers, Resources: a.placements()}
	worst := StateOK
	for _, l := range layers {
		if l.State.rank() > worst.rank() {
			worst = l.State
		}
	}
	switch worst {
	case StateDown:
		r.Verdict = Down
	case StateDegraded, StateUnknown:
		r.Verdict = Degraded
	}
	// The reasons are the findings that make the verdict: the down ones
	// for DOWN, the degraded and unknown ones for DEGRADED, in layer order
	// (an ok finding is information, never a reason).
	for _, l := range layers {
		for _, f := range l.Findings {
			if f.Severity != StateOK && (r.Verdict == Down) == (f.Severity == StateDown) {
				r.Reasons = append(r.Reasons, f.Layer+": "+f.Message)
			}
		}
	}
	return r
}

type assessor struct {
	s      Snapshot
	mon    *pacemaker.CrmMon
	active string
}

// layer collects one layer's findings.
type layer struct{ Layer }

func newLayer(name string) *layer { return &layer{Layer{Name: name, State: StateOK}} }

func (l *layer) add(sev State, format string, args ...any) {
	l.Findings = append(l.Findings, Finding{Layer: l.Name, Severity: sev, Message: fmt.Sprintf(format, args...)})
	if sev.rank() > l.State.rank() {
		l.State = sev
	}
}

func (l *layer) unknown(err string) Layer {
	l.add(StateUnknown, "could not be read: %s", err)
	l.Summary = "unknown"
	return l.Layer
}

func (l *layer) done(summary string, args ...any) Layer {
	l.Summary = fmt.Sprintf(summary, args...)
	return l.Layer
}

// activeNode is where the services should run: the DRBD Promoted node by
// Pacemaker, else the local DRBD view.
func (a *assessor) activeNode() string {
	if a.mon != nil {
		if p := a.mon.Promoted(pacemaker.NamesFor(a.s.Expect.DRBDResource).Clone()); len(p) == 1 {
			return p[0]
		}
	}
	if r, ok := a.drbdResource(); ok {
		switch {
		case r.Role == drbd.RolePrimary && r.PeerRole != drbd.RolePrimary:
			return a.s.Node
		case r.PeerRole == drbd.RolePrimary && r.Role != drbd.RolePrimary:
			return a.peer()
		}
	}
	return ""
}

func (a *assessor) peer() string {
	for _, n := range a.s.Expect.Nodes {
		if n != a.s.Node {
			return n
		}
	}
	return ""
}

func (a *assessor) corosync() Layer {
	l := newLayer(LayerCorosync)
	f := a.s.Corosync
	if f.Error != "" && f.Links == nil && f.Quorum == nil {
		return l.unknown(f.Error)
	}
	if f.Error != "" {
		l.add(StateUnknown, "partly read: %s", f.Error)
	}
	var parts []string
	names := map[int]string{}
	if q := f.Quorum; q != nil {
		for _, m := range q.Members {
			names[m.NodeID] = m.Name
		}
		if q.Quorate {
			parts = append(parts, "quorate")
		} else {
			blocked := ""
			if q.ActivityBlocked {
				blocked = ", activity blocked"
			}
			if q.HasFlag("2Node") && q.HasFlag("WaitForAll") && len(q.Members) <= 1 {
				// Booted alone: corosync's wait_for_all holds it until it has
				// seen its peer, so it never starts the services on data that
				// may be older than the peer's (the night a standby, Outdated,
				// comes back first).
				l.add(StateDown, "waiting for %s: this node booted alone and runs nothing until it has seen its peer (corosync two_node wait_for_all), because its data may be older than the peer's; start %s (README: When something fails)", a.peer(), a.peer())
			} else {
				l.add(StateDegraded, "this node has no quorum (%d of %d votes%s): Pacemaker stops its resources here", q.TotalVotes, q.ExpectedVotes, blocked)
			}
			parts = append(parts, "NOT quorate")
		}
		var members []string
		for _, n := range a.s.Expect.Nodes {
			if _, ok := q.Member(n); ok {
				members = append(members, n)
			} else {
				l.add(StateDegraded, "%s is not in the corosync membership", n)
			}
		}
		parts = append(parts, fmt.Sprintf("members %d/%d", len(members), len(a.s.Expect.Nodes)))
	}
	if st := f.Links; st != nil {
		if len(st.Links) < 2 {
			l.add(StateDegraded, "%d corosync link(s): no redundant heartbeat path", len(st.Links))
		}
		down := map[int][]int{} // node id -> links it is disconnected on
		for _, link := range st.Links {
			state := "up"
			for _, n := range link.Nodes {
				if n.Status != pacemaker.LinkLocalhost && n.Status != pacemaker.LinkConnected {
					down[n.NodeID] = append(down[n.NodeID], link.ID)
					state = "down"
				}
			}
			parts = append(parts, fmt.Sprintf("link %d %s", link.ID, state))
		}
		for _, id := range sortedKeys(down) {
			name := names[id]
			if name == "" && id >= 1 && id <= len(a.s.Expect.Nodes) {
				name = a.s.Expect.Nodes[id-1] // haconf numbers the nodes in haconf.yaml's order
			}
			if name == "" {
				name = fmt.Sprintf("node %d", id)
			}
			if len(down[id]) == len(st.Links) {
				l.add(StateDegraded, "%s is unreachable on every corosync link", name)
				continue
			}
			for _, li := range down[id] {
				l.add(StateDegraded, "link %d to %s is down (%s): one heartbeat path left", li, name, linkAddr(st, li))
			}
		}
	}
	return l.done("%s", strings.Join(parts, ", "))
}

func linkAddr(st *pacemaker.CfgStatus, id int) string {
	for _, l := range st.Links {
		if l.ID == id {
			return "local address " + l.Addr
		}
	}
	return "unknown address"
}

func sortedKeys[V any](m map[int]V) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (a *assessor) pacemaker() Layer {
	l := newLayer(LayerPacemaker)
	if a.mon == nil {
		return l.unknown(orDefault(a.s.Pacemaker.Error, "no crm_mon output"))
	}
	m := a.mon
	if m.MaintenanceAll {
		l.add(StateDegraded, "maintenance-mode is on%s: Pacemaker starts, stops and recovers nothing", maintenanceWhy(a.s.Pacemaker.Maintenance, a.s.Time))
	}
	if m.DC == "" {
		l.add(StateDegraded, "no DC elected: the cluster makes no decisions")
	}
	var nodeStates []string
	for _, name := range a.s.Expect.Nodes {
		n, ok := m.Node(name)
		switch {
		case !ok:
			l.add(StateDegraded, "%s is not a Pacemaker node", name)
			nodeStates = append(nodeStates, name+" missing")
		case !n.Online && n.Unclean:
			l.add(StateDegraded, "%s is offline and unclean: waiting for it to be fenced", name)
			nodeStates = append(nodeStates, name+" UNCLEAN")
		case !n.Online:
			l.add(StateDegraded, "%s is offline: nothing to fail over to", name)
			nodeStates = append(nodeStates, name+" offline")
		case n.Standby:
			l.add(StateDegraded, "%s is in standby: it cannot take over", name)
			nodeStates = append(nodeStates, name+" standby")
		case n.Maintenance:
			l.add(StateDegraded, "%s is in maintenance: Pacemaker does not manage its resources", name)
			nodeStates = append(nodeStates, name+" maintenance")
		default:
			nodeStates = append(nodeStates, name+" online")
		}
	}

	res := a.s.Expect.DRBDResource
	clone := pacemaker.NamesFor(res).Clone()
	promoted := m.Promoted(clone)
	switch len(promoted) {
	case 0:
		l.add(StateDown, "DRBD %s is Promoted on no node: %s", res, a.why("drbd-"+res))
	case 1:
	default:
		l.add(StateDown, "DRBD %s is Promoted on %s at once", res, strings.Join(promoted, " and "))
	}
	if on := m.RunningOn("drbd-" + res); len(on) < len(a.s.Expect.Nodes) && len(promoted) > 0 {
		for _, n := range a.s.Expect.Nodes {
			if !slices.Contains(on, n) {
				l.add(StateDegraded, "DRBD %s does not run on %s: %s", res, n, a.whyOn("drbd-"+res, n))
			}
		}
	}

	for _, id := range a.s.Expect.Services() {
		if !a.configured(id) {
			l.add(StateDown, "%s is not configured in Pacemaker (haconf apply the CIB)", id)
			continue
		}
		on := m.RunningOn(id)
		switch {
		case len(on) == 0:
			l.add(StateDown, "%s is stopped: %s", id, a.why(id))
		case len(on) > 1:
			l.add(StateDown, "%s runs on %s at once", id, strings.Join(on, " and "))
		case a.active != "" && on[0] != a.active:
			l.add(StateDown, "%s runs on %s, but DRBD %s is Primary on %s", id, on[0], res, a.active)
		}
		for _, r := range m.Resources {
			if r.ID != id {
				continue
			}
			if r.Failed {
				l.add(StateDown, "%s has failed on %s", id, strings.Join(r.Nodes, ", "))
			}
			if !r.Managed && !m.MaintenanceAll {
				l.add(StateDegraded, "%s is unmanaged: Pacemaker will not recover it", id)
			}
		}
	}

	if a.s.Expect.RabbitMQMode != "active-passive" && a.configured(pacemaker.RabbitMQ) {
		on := m.RunningOn(pacemaker.RabbitMQ)
		switch {
		case len(on) == 0:
			l.add(StateDown, "rabbitmq is stopped on every node: %s", a.why(pacemaker.RabbitMQ))
		case len(on) < len(a.s.Expect.Nodes):
			for _, n := range a.s.Expect.Nodes {
				if !slices.Contains(on, n) {
					l.add(StateDegraded, "rabbitmq does not run on %s: %s", n, a.whyOn(pacemaker.RabbitMQ, n))
				}
			}
		}
	}

	for _, f := range m.FailedActions {
		if f.ExitStatus == degradedResult {
			// A monitor said "running, degraded" (a broker still booting):
			// Pacemaker keeps it in the failure history for failure-timeout.
			// What is degraded now, the layers report themselves.
			msg := fmt.Sprintf("%s on %s reported degraded", f.OpKey, f.Node)
			if f.ExitReason != "" {
				msg += " (" + f.ExitReason + ")"
			}
			if !f.LastChange.IsZero() {
				msg += " at " + f.LastChange.UTC().Format("2006-01-02 15:04:05Z")
			}
			l.add(StateOK, "%s; not a failure", msg)
			continue
		}
		msg := fmt.Sprintf("failed action %s on %s: %s", f.OpKey, f.Node, orDefault(f.ExitStatus, "error"))
		if f.ExitReason != "" {
			msg += " (" + f.ExitReason + ")"
		}
		if !f.LastChange.IsZero() {
			msg += " at " + f.LastChange.UTC().Format("2006-01-02 15:04:05Z")
		}
		l.add(StateDegraded, "%s; after fixing the cause: crm_resource --cleanup -r %s", msg, opResource(f.OpKey))
	}
	for _, b := range a.s.Pacemaker.Bans {
		if haconfBan(b) {
			continue
		}
		l.add(StateDegraded, "location constraint %s keeps %s off %s (score %s)%s", b.ID, b.Resource, b.Node, b.Weight, banHint(b))
	}

	where := "services nowhere"
	if on := m.RunningOn(pacemaker.MariaDB); len(on) > 0 {
		where = "services on " + strings.Join(on, ", ")
	}
	dc := orDefault(m.DC, "none")
	return l.done("DC %s; %s; %s", dc, strings.Join(nodeStates, ", "), where)
}

func banHint(b Ban) string {
	if strings.HasPrefix(b.ID, "cli-") {
		return ": left by crm_resource --move/--ban; remove with crm_resource --clear -r " + b.Resource
	}
	if strings.HasPrefix(b.ID, "drbd-fence-by-handler") {
		return ": set by DRBD's fence-peer handler when replication broke; removed once DRBD has resynced"
	}
	return ""
}

// opResource returns the resource of an operation key such as
// mariadb_start_0 or drbd-r0_monitor_31000.
func opResource(opKey string) string {
	parts := strings.Split(opKey, "_")
	if len(parts) >= 3 {
		return strings.Join(parts[:len(parts)-2], "_")
	}
	return opKey
}

// configured reports whether crm_mon lists the primitive.
func (a *assessor) configured(id string) bool {
	for _, r := range a.mon.Resources {
		if r.ID == id {
			return true
		}
	}
	return false
}

// containers returns the primitive's group and clone ids.
func (a *assessor) containers(id string) []string {
	var out []string
	for _, r := range a.mon.Resources {
		if r.ID == id {
			for _, c := range []string{r.Group, r.Clone} {
				if c != "" && !slices.Contains(out, c) {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// why explains why the primitive id runs nowhere.
func (a *assessor) why(id string) string { return a.explain(id, "") }

// whyChain is why, followed down to the first stopped member of the
// service group when id waits for it.
func (a *assessor) whyChain(id string) string {
	services := a.s.Expect.Services()
	if !slices.Contains(services, id) {
		return a.why(id)
	}
	for _, before := range services[:slices.Index(services, id)] {
		if a.configured(before) && len(a.mon.RunningOn(before)) == 0 {
			return fmt.Sprintf("it starts after %s, which is stopped: %s", before, a.why(before))
		}
	}
	return a.why(id)
}

// whyOn explains why the primitive id does not run on node.
func (a *assessor) whyOn(id, node string) string { return a.explain(id, node) }

func (a *assessor) explain(id, node string) string {
	m := a.mon
	// The service group starts in order: the first stopped member holds
	// back the ones after it.
	if services := a.s.Expect.Services(); node == "" && slices.Contains(services, id) {
		for _, before := range services[:slices.Index(services, id)] {
			if a.configured(before) && len(m.RunningOn(before)) == 0 {
				return fmt.Sprintf("it starts after %s, which is stopped", before)
			}
		}
	}
	var rs []string
	if m.MaintenanceAll {
		rs = append(rs, "maintenance-mode is on")
	}
	ids := append([]string{id}, a.containers(id)...)
	for _, r := range m.Resources {
		if r.ID == id && !r.Managed && !m.MaintenanceAll {
			rs = append(rs, "it is unmanaged")
			break
		}
	}
	for _, x := range ids {
		if role := a.s.Pacemaker.TargetRoles[x]; role == "Stopped" || role == "stopped" {
			rs = append(rs, fmt.Sprintf("%s is disabled (target-role=Stopped)", x))
		}
	}
	for _, f := range m.FailedActions {
		if opResource(f.OpKey) != id || (node != "" && f.Node != node) || f.ExitStatus == degradedResult {
			continue
		}
		s := fmt.Sprintf("%s failed on %s: %s", f.Task, f.Node, orDefault(f.ExitStatus, "error"))
		if f.ExitReason != "" {
			s += " (" + f.ExitReason + ")"
		}
		rs = append(rs, s)
	}
	for _, b := range a.s.Pacemaker.Bans {
		if slices.Contains(ids, b.Resource) && (node == "" || b.Node == node) && !haconfBan(b) {
			rs = append(rs, fmt.Sprintf("constraint %s keeps %s off %s", b.ID, b.Resource, b.Node))
		}
	}
	nodes := a.s.Expect.Nodes
	if node != "" {
		nodes = []string{node}
	}
	for _, n := range nodes {
		mn, ok := m.Node(n)
		switch {
		case !ok:
			rs = append(rs, n+" is not a cluster node")
		case !mn.Online && mn.Unclean && a.fencingDisabled():
			rs = append(rs, n+" is unclean and fencing is disabled: Pacemaker cannot recover what ran there")
		case !mn.Online && mn.Unclean:
			rs = append(rs, n+" is unclean, waiting to be fenced")
		case !mn.Online:
			rs = append(rs, n+" is offline")
		case mn.Standby:
			rs = append(rs, n+" is in standby")
		case mn.Maintenance:
			rs = append(rs, n+" is in maintenance")
		}
	}
	if slices.Contains(a.s.Expect.Services(), id) && len(m.Promoted(pacemaker.NamesFor(a.s.Expect.DRBDResource).Clone())) == 0 {
		rs = append(rs, fmt.Sprintf("DRBD %s is Promoted nowhere and the services follow the DRBD Primary", a.s.Expect.DRBDResource))
	}
	if len(rs) == 0 {
		return "Pacemaker reports no reason (check crm_simulate -Ls for scores)"
	}
	return strings.Join(rs, "; ")
}

// degradedResult is how crm_mon names a monitor's OCF_DEGRADED (190)
// result in its failure history.
const degradedResult = "OCF_DEGRADED"

func (a *assessor) fencingDisabled() bool {
	se := a.s.Pacemaker.StonithEnabled
	return (se != nil && !*se) || a.s.Expect.FencingType == "none"
}

func (a *assessor) drbdResource() (drbd.Resource, bool) {
	st := a.s.DRBD.Status
	if st == nil {
		return drbd.Resource{}, false
	}
	if r, ok := st.ByName(a.s.Expect.DRBDResource, 0); ok {
		return r, true
	}
	if len(st.Resources) == 1 && st.Resources[0].Name == "" {
		return st.Resources[0], true
	}
	return drbd.Resource{}, false
}

func (a *assessor) drbd() Layer {
	l := newLayer(LayerDRBD)
	if a.s.DRBD.Status == nil {
		return l.unknown(orDefault(a.s.DRBD.Error, "no DRBD status"))
	}
	name := a.s.Expect.DRBDResource
	r, ok := a.drbdResource()
	if !ok || r.Connection == drbd.ConnUnconfigured {
		l.add(StateDegraded, "%s is not up on %s", name, a.s.Node)
		return l.done("%s not up on %s", name, a.s.Node)
	}
	peer := a.peer()
	switch {
	case r.SplitBrain:
		l.add(StateDegraded, "SPLIT BRAIN on %s: both nodes wrote independently (haconf splitbrain status)", name)
	case r.Connection == drbd.ConnStandAlone:
		l.add(StateDegraded, "%s is StandAlone: replication stopped, likely after a split brain (haconf splitbrain status)", name)
	case r.Connection != drbd.ConnConnected:
		l.add(StateDegraded, "%s is disconnected from %s (%s): the peer's copy falls behind", name, peer, r.Connection)
	}
	if r.Role == drbd.RolePrimary && r.PeerRole == drbd.RolePrimary {
		l.add(StateDegraded, "%s is Primary on both nodes: their data diverges", name)
	}
	if r.Connection == drbd.ConnConnected && r.Role == drbd.RoleSecondary && r.PeerRole == drbd.RoleSecondary {
		l.add(StateDown, "%s is Secondary on both nodes: no node serves the data", name)
	}
	if r.Connection == drbd.ConnConnected && r.Replication != "" && r.Replication != drbd.ReplEstablished {
		msg := fmt.Sprintf("%s is resyncing (%s)", name, r.Replication)
		if r.Sync != nil {
			msg += fmt.Sprintf(" %.1f%%", r.Sync.Percent)
			if r.Sync.ETASeconds >= 0 {
				msg += fmt.Sprintf(", about %s left", time.Duration(r.Sync.ETASeconds)*time.Second)
			}
		}
		if r.Disk == drbd.DiskInconsistent {
			msg += fmt.Sprintf(": %s cannot take over until it finishes", a.s.Node)
		} else if r.PeerDisk == drbd.DiskInconsistent {
			msg += fmt.Sprintf(": %s cannot take over until it finishes", peer)
		}
		l.add(StateDegraded, "%s", msg)
	} else {
		if r.Disk != drbd.DiskUpToDate {
			l.add(StateDegraded, "%s's disk is %s: it cannot take over", a.s.Node, r.Disk)
		}
		if r.Connection == drbd.ConnConnected && r.PeerDisk != drbd.DiskUpToDate {
			l.add(StateDegraded, "%s's disk is %s: it cannot take over", peer, r.PeerDisk)
		}
		if r.Connection == drbd.ConnConnected && r.OutOfSyncKiB > 0 {
			l.add(StateDegraded, "%s has %d KiB out of sync", name, r.OutOfSyncKiB)
		}
	}
	if a.mon != nil {
		if p := a.mon.Promoted(pacemaker.NamesFor(name).Clone()); len(p) == 1 && ((p[0] == a.s.Node) != (r.Role == drbd.RolePrimary)) {
			l.add(StateDegraded, "Pacemaker reports %s Promoted on %s but DRBD here is %s", name, p[0], r.Role)
		}
	}
	summary := fmt.Sprintf("%s %s/%s %s/%s %s", name, r.Role, orDefault(r.PeerRole, "?"), r.Disk, orDefault(r.PeerDisk, "?"), r.Connection)
	if r.Replication != "" && r.Replication != drbd.ReplEstablished && r.Replication != drbd.ReplOff {
		summary += " " + r.Replication
	}
	if r.OutOfSyncKiB > 0 {
		summary += fmt.Sprintf(", %d KiB out of sync", r.OutOfSyncKiB)
	}
	if v := a.s.DRBD.Status.Version; v != "" {
		summary += " (DRBD " + v + ")"
	}
	return l.done("%s", summary)
}

func (a *assessor) mysql() Layer {
	l := newLayer(LayerMySQL)
	f := a.s.MySQL
	if f.Error != "" {
		return l.unknown(f.Error)
	}
	if !f.Reachable {
		l.add(StateDown, "MariaDB does not answer at %s: %s", f.Address, orDefault(f.Problem, "no answer"))
		return l.done("NOT reachable at %s", f.Address)
	}
	mode := "read-write"
	if f.ReadOnly {
		mode = "READ-ONLY"
		l.add(StateDown, "MariaDB at %s is read-only: every write fails", f.Address)
	}
	return l.done("reachable at %s, %s, %s", f.Address, mode, orDefault(f.Version, "version unknown"))
}

func (a *assessor) rabbitmq() Layer {
	l := newLayer(LayerRabbitMQ)
	f := a.s.RabbitMQ
	mode := a.s.Expect.RabbitMQMode
	if f.Cluster == nil {
		if mode == "active-passive" && a.active != "" && a.active != a.s.Node {
			return l.done("active-passive: runs on %s, not here (%s)", a.active, orDefault(f.Error, "not running"))
		}
		return l.unknown(orDefault(f.Error, "no cluster status"))
	}
	if f.Error != "" {
		l.add(StateUnknown, "partly read: %s", f.Error)
	}
	c := f.Cluster
	switch mode {
	case "active-passive":
		if len(c.RunningNodes) > 1 {
			l.add(StateDegraded, "active-passive RabbitMQ runs on %s at once", strings.Join(c.RunningNodes, " and "))
		}
	default:
		for _, n := range a.s.Expect.Nodes {
			if !runsOn(c.RunningNodes, n) {
				if a.mon != nil && slices.Contains(a.mon.RunningOn(pacemaker.RabbitMQ), n) {
					// Seen after every rejoin in the lab: the agent's start
					// is done (AMQP answers) before the node is back in the
					// cluster's running nodes.
					l.add(StateDegraded, "RabbitMQ on %s has not joined the cluster yet (Pacemaker reports it started; a node back from a crash rejoins within about a minute): its queues have no copy there yet", n)
					continue
				}
				l.add(StateDegraded, "RabbitMQ does not run on %s: its queues have no copy there", n)
			}
		}
	}
	for n, p := range c.Partitions {
		l.add(StateDegraded, "network partition: %s lost %s (restart the node that should lose its changes)", n, strings.Join(p, ", "))
	}
	for _, al := range c.Alarms {
		l.add(StateDown, "resource alarm %s: publishers are blocked", al)
	}
	running := slices.Sorted(slices.Values(c.RunningNodes))
	parts := []string{"running on " + orDefault(strings.Join(running, ", "), "no node")}
	if mode == "mirrored" {
		p, ok := rabbitmq.FindPolicy(f.Policies, "/", a.s.Expect.RabbitMQPolicy)
		switch {
		case !ok:
			l.add(StateDegraded, "mirrored-queue policy %s is missing on vhost /: classic queues are not mirrored", a.s.Expect.RabbitMQPolicy)
			parts = append(parts, "NO mirror policy")
		case p.HAMode() == "":
			l.add(StateDegraded, "policy %s sets no ha-mode: classic queues are not mirrored", p.Name)
		default:
			parts = append(parts, fmt.Sprintf("policy %s (%s, sync %s)", p.Name, p.HAMode(), orDefault(p.HASyncMode(), "manual")))
		}
	}
	var notRunning, unmirrored, unsynced, quorumShort []string
	mirrored := 0
	for _, q := range f.Queues {
		if q.State != "" && q.State != "running" && q.State != "idle" {
			notRunning = append(notRunning, q.Name+" ("+q.State+")")
		}
		switch q.Type {
		case "quorum", "stream":
			if len(q.Online) < len(q.Members) {
				quorumShort = append(quorumShort, q.Name)
			}
		default:
			if mode != "mirrored" || len(c.RunningNodes) < 2 {
				continue
			}
			switch {
			case q.Mirrors == 0:
				unmirrored = append(unmirrored, q.Name)
			case q.SyncedMirrors < q.Mirrors:
				unsynced = append(unsynced, q.Name)
				mirrored++
			default:
				mirrored++
			}
		}
	}
	if len(notRunning) > 0 {
		l.add(StateDown, "%d queue(s) not running: %s", len(notRunning), examples(notRunning))
	}
	if len(unmirrored) > 0 {
		l.add(StateDegraded, "%d classic queue(s) have no mirror: %s", len(unmirrored), examples(unmirrored))
	}
	if len(unsynced) > 0 {
		l.add(StateDegraded, "%d queue(s) have unsynchronised mirrors, a failover now loses their messages: %s", len(unsynced), examples(unsynced))
	}
	if len(quorumShort) > 0 {
		l.add(StateDegraded, "%d quorum queue(s) miss a replica: %s", len(quorumShort), examples(quorumShort))
	}
	qs := fmt.Sprintf("%d queues", len(f.Queues))
	if mode == "mirrored" {
		qs += fmt.Sprintf(", %d mirrored, %d synced", mirrored, mirrored-len(unsynced))
	}
	parts = append(parts, qs)
	return l.done("%s", strings.Join(parts, "; "))
}

// runsOn reports whether a RabbitMQ node name (rabbit@ctl1) lives on host.
func runsOn(rabbitNodes []string, host string) bool {
	for _, n := range rabbitNodes {
		if _, h, ok := strings.Cut(n, "@"); ok && (h == host || strings.HasPrefix(h, host+".")) {
			return true
		}
	}
	return false
}

func examples(names []string) string {
	if len(names) <= 3 {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:3], ", ") + fmt.Sprintf(" and %d more", len(names)-3)
}

func (a *assessor) vip() Layer {
	l := newLayer(LayerVIP)
	f := a.s.VIP
	addr := orDefault(a.s.Expect.VIP, f.Address)
	if a.mon == nil {
		if f.Error != "" {
			return l.unknown(f.Error)
		}
		if f.HeldHere {
			return l.done("%s on %s (Pacemaker unknown)", addr, a.s.Node)
		}
		return l.unknown("not on " + a.s.Node + " and Pacemaker's view is unknown")
	}
	on := a.mon.RunningOn(pacemaker.VIP)
	switch {
	case len(on) == 0:
		if f.HeldHere {
			l.add(StateDown, "VIP %s is configured on %s outside Pacemaker while Pacemaker runs it nowhere", addr, a.s.Node)
		} else {
			l.add(StateDown, "VIP %s is on no node: %s", addr, a.whyChain(pacemaker.VIP))
		}
	case len(on) > 1:
		l.add(StateDown, "VIP %s is on %s at once: clients reach either node", addr, strings.Join(on, " and "))
	case f.Error == "" && f.HeldHere && on[0] != a.s.Node:
		l.add(StateDown, "VIP %s is on both nodes: Pacemaker runs it on %s and it is also configured here on %s", addr, on[0], a.s.Node)
	case f.Error == "" && !f.HeldHere && on[0] == a.s.Node:
		l.add(StateDegraded, "Pacemaker runs vip on %s but %s is on no interface here", a.s.Node, addr)
	}
	if f.Error != "" {
		l.add(StateUnknown, "local interfaces could not be read: %s", f.Error)
	}
	holder := "no node"
	if len(on) > 0 {
		holder = strings.Join(on, " and ")
	}
	return l.done("%s on %s", addr, holder)
}

func (a *assessor) fencing() Layer {
	l := newLayer(LayerFencing)
	typ := a.s.Expect.FencingType
	if typ == "none" || typ == "" {
		l.add(StateDegraded, "UNSAFE: fencing.type is none: after a partition both nodes can run MariaDB on diverging copies of the data")
	}
	answers := a.fenceDevices(l)
	if a.mon == nil {
		if typ == "none" || typ == "" {
			return l.done("UNSAFE: none, no fence device to ask")
		}
		l.add(StateUnknown, "could not be read: %s", orDefault(a.s.Pacemaker.Error, "Pacemaker state unknown"))
		return l.done("%s; Pacemaker's view unknown%s", typ, answers)
	}
	if se := a.s.Pacemaker.StonithEnabled; se != nil && !*se && typ != "none" {
		l.add(StateDegraded, "UNSAFE: stonith-enabled=false in the cluster although haconf.yaml configures %s fencing", typ)
	}
	var devs []string
	if typ != "none" && typ != "" {
		for _, n := range a.s.Expect.Nodes {
			id := "fence-" + n
			if !a.configured(id) {
				l.add(StateDegraded, "no fence device %s: %s cannot be fenced", id, n)
				continue
			}
			on := a.mon.RunningOn(id)
			if len(on) == 0 {
				l.add(StateDegraded, "%s is stopped, %s cannot be fenced: %s", id, n, a.why(id))
				continue
			}
			devs = append(devs, id+" on "+strings.Join(on, ","))
		}
	}
	last := ""
	if h := a.s.Pacemaker.Fenced; len(h) > 0 {
		e := h[len(h)-1]
		last = fmt.Sprintf("; last %s of %s: %s %s", e.Action, e.Target, e.Status, e.Completed)
		if e.Status != "success" && e.Status != "" {
			l.add(StateDegraded, "the last fencing (%s of %s) did not succeed: %s", e.Action, e.Target, e.Status)
		}
	}
	if typ == "none" || typ == "" {
		return l.done("UNSAFE: none, no fence device to ask%s", last)
	}
	return l.done("%s; %s%s%s", typ, orDefault(strings.Join(devs, ", "), "no device running"), answers, last)
}

// fenceDevices adds what the fence devices' agents answered to l and
// returns it for the summary: "; devices answer: ctl1 on, ctl2 on".
func (a *assessor) fenceDevices(l *layer) string {
	typ := a.s.Expect.FencingType
	switch typ {
	case "none", "":
		return ""
	case pacemaker.FenceSBD:
		return "; no fence device to ask (SBD)"
	}
	f := a.s.Fencing
	if f.Error != "" {
		l.add(StateUnknown, "the fence devices could not be asked: %s", f.Error)
		return ""
	}
	var answered []string
	for _, n := range a.s.Expect.Nodes {
		id := pacemaker.FenceDevice(n)
		i := slices.IndexFunc(f.Devices, func(d pacemaker.FenceStatus) bool { return d.Device == id })
		if i < 0 {
			l.add(StateUnknown, "%s was not asked", id)
			continue
		}
		switch d := f.Devices[i]; {
		case d.Power != "":
			answered = append(answered, n+" "+d.Power)
		case d.Missing:
			l.add(StateDegraded, "%s is not installed on %s: %s cannot be fenced from here", d.Agent, a.s.Node, n)
		default:
			l.add(StateDegraded, "%s (%s, from %s): %s: %s cannot be fenced", id, d.Agent, a.s.Node, d.Error, n)
		}
	}
	if len(answered) == 0 {
		return ""
	}
	return "; devices answer: " + strings.Join(answered, ", ")
}

// clockLayer is this node's clock synchronisation and its offset to the
// peer's clock.
func (a *assessor) clockLayer() Layer {
	l := newLayer(LayerClock)
	f := a.s.Clock
	if f.Error != "" {
		return l.unknown(f.Error)
	}
	var parts []string
	switch s := f.Sync; {
	case s == nil:
		l.add(StateUnknown, "no clock state")
	case s.State == clock.Synchronised:
		parts = append(parts, "synchronised ("+s.Tool+")")
	case s.State == clock.NotSynchronised:
		l.add(StateDegraded, "the clock of %s is not synchronised (%s: %s): run an NTP client (chrony or systemd-timesyncd) with the same servers on both controllers", a.s.Node, s.Tool, s.Detail)
		parts = append(parts, "NOT synchronised ("+s.Tool+")")
	case f.PeerOffsetMS != nil:
		// No timedatectl and no chronyc: a node without systemd (a
		// container, the lab's UML nodes, whose kernel keeps the host's
		// time). What the pair needs of its clocks, agreeing with the
		// peer's, is measured below: not knowing more is no fault.
		parts = append(parts, "synchronisation not known ("+s.Detail+")")
	default:
		l.add(StateUnknown, "no tool tells whether the clock of %s is synchronised (%s), and the offset to %s's is not known either", a.s.Node, s.Detail, orDefault(f.Peer, "the peer"))
		parts = append(parts, "synchronisation unknown")
	}
	switch {
	case f.PeerOffsetMS != nil:
		off := time.Duration(*f.PeerOffsetMS) * time.Millisecond
		abs := max(off, -off)
		switch {
		case abs > watchdog.MaxClockSkew:
			l.add(StateDegraded, "%s's clock is %s: more than %s apart, the watchdogs refuse each other's signed requests (split-brain evidence, incidents)", f.Peer, clock.Relative(off, a.s.Node+"'s"), watchdog.MaxClockSkew)
		case abs >= clock.MaxPeerOffset:
			l.add(StateDegraded, "%s's clock is %s (they should be less than %s apart)", f.Peer, clock.Relative(off, a.s.Node+"'s"), clock.MaxPeerOffset)
		}
		parts = append(parts, f.Peer+" "+clock.Describe(off))
	case f.PeerError != "":
		l.add(StateUnknown, "the offset to %s's clock could not be measured: %s", f.Peer, f.PeerError)
		parts = append(parts, "offset to "+f.Peer+" unknown")
	}
	return l.done("%s", strings.Join(parts, ", "))
}

func (a *assessor) backup() Layer {
	l := newLayer(LayerBackup)
	f := a.s.Backup
	if f.Error != "" {
		return l.unknown(f.Error)
	}
	if f.LastSuccess.IsZero() {
		if a.active != "" && a.active != a.s.Node {
			l.add(StateUnknown, "no backup state on %s: backups run on the active node %s", a.s.Node, a.active)
			return l.done("not known here (backups run on %s)", a.active)
		}
		return a.noBackupYet(l, f)
	}
	age := a.s.Time.Sub(f.LastSuccess)
	if max := a.s.Expect.BackupMaxAge; max > 0 && age > max {
		l.add(StateDegraded, "the last successful backup is %s old (expected at most %s)", fmtAge(age), fmtAge(max))
	}
	if f.LastError != "" {
		l.add(StateDegraded, "the last backup attempt failed at %s: %s", f.LastAttempt.UTC().Format("2006-01-02 15:04Z"), f.LastError)
	}
	if len(f.Damaged) > 0 {
		l.add(StateDegraded, "%d damaged backup(s) in %s: %s (haconf backup list says why; haconf backup verify checks every file)", len(f.Damaged), f.Repository, strings.Join(f.Damaged, ", "))
	}
	what := ""
	if f.LastID != "" {
		what = " (" + strings.TrimSpace(f.LastType+" "+f.LastID) + ")"
	}
	if c := f.Chain; c != nil {
		what += fmt.Sprintf("; chain: full %s + %d differential(s)", c.Full, c.Differentials)
	}
	if f.LastNote != "" {
		what += "; differential job: " + f.LastNote
	}
	what += a.backupCopies(l, f)
	return l.done("last success %s, %s ago%s", f.LastSuccess.UTC().Format("2006-01-02 15:04Z"), fmtAge(age), what)
}

// backupCopies judges the off-host copies: degraded when a target's last
// copy failed, or when a backup has been here without being on a target
// for longer than a backup may be old (a copy missed at least one backup
// cycle). It returns what the done line says of them.
func (a *assessor) backupCopies(l *layer, f BackupFacts) string {
	var parts []string
	for _, c := range f.Copies {
		if c.LastError != "" && !c.LastAttempt.Before(c.LastSuccess) {
			l.add(StateDegraded, "the last copy of backups to %s failed at %s: %s (retried after the next backup; haconf backup copy --target %s does it now)",
				c.Target, c.LastAttempt.UTC().Format("2006-01-02 15:04Z"), c.LastError, c.Target)
		}
		if c.Uncopied.IsZero() {
			parts = append(parts, c.Target+" up to date")
			continue
		}
		lag := a.s.Time.Sub(c.Uncopied)
		if max := a.s.Expect.BackupMaxAge; max > 0 && lag > max {
			l.add(StateDegraded, "a backup finished %s ago is not on the copy target %s yet (expected within %s)", fmtAge(lag), c.Target, fmtAge(max))
		}
		parts = append(parts, fmt.Sprintf("%s %s behind", c.Target, fmtAge(lag)))
	}
	if len(parts) == 0 {
		return ""
	}
	return "; copies: " + strings.Join(parts, ", ")
}

// noBackupYet judges a repository without any backup: not late until the
// first scheduled full backup after the schedule started here has had its
// time (a new pair is not degraded for a backup that is not due yet).
func (a *assessor) noBackupYet(l *layer, f BackupFacts) Layer {
	sched := a.s.Expect.BackupFull
	switch {
	case sched == "":
		l.add(StateDegraded, "no backup in %s, and none is scheduled (backup.full is empty)", f.Repository)
		return l.done("none, none scheduled")
	case f.ScheduledSince.IsZero():
		l.add(StateDegraded, "no backup in %s, and haconf watchdog never ran the schedule here", f.Repository)
		return l.done("none yet, schedule not running")
	}
	due := firstFullDue(sched, f.ScheduledSince)
	if due.IsZero() || !a.s.Time.Before(due) {
		l.add(StateDegraded, "no successful backup yet in %s: the first full backup (%s) was due by %s", f.Repository, sched, due.UTC().Format("2006-01-02 15:04Z"))
		return l.done("none yet, overdue")
	}
	return l.done("none yet: the first full backup (%s) is due by %s", sched, due.UTC().Format("2006-01-02 15:04Z"))
}

// fmtAge renders a duration the way people say it: 45s, 12m, 5h10m, 3d4h.
func fmtAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		h := int(d.Hours())
		m := int(d.Minutes()) - 60*h
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	}
	days := int(d.Hours()) / 24
	return fmt.Sprintf("%dd%dh", days, int(d.Hours())-24*days)
}

// placements lists where the pair's resources run, with the reason for
// those that are not where they should be.
func (a *assessor) placements() []Placement {
	if a.mon == nil {
		return nil
	}
	var out []Placement
	add := func(id, role string, nodes []string, why string) {
		if nodes == nil {
			nodes = []string{}
		}
		out = append(out, Placement{Resource: id, Role: role, Nodes: nodes, Why: why})
	}
	res := a.s.Expect.DRBDResource
	clone := pacemaker.NamesFor(res).Clone()
	promoted := a.mon.Promoted(clone)
	why := ""
	if len(promoted) == 0 {
		why = a.why("drbd-" + res)
	}
	add(clone, pacemaker.RolePromoted, promoted, why)
	var unpromoted []string
	for _, r := range a.mon.Resources {
		if r.Clone == clone && r.Role == pacemaker.RoleUnpromoted {
			unpromoted = append(unpromoted, r.Nodes...)
		}
	}
	add(clone, pacemaker.RoleUnpromoted, unpromoted, "")
	ids := a.s.Expect.Services()
	if a.s.Expect.RabbitMQMode != "active-passive" {
		ids = append(ids, pacemaker.RabbitMQ)
	}
	for _, n := range a.s.Expect.Nodes {
		ids = append(ids, "fence-"+n)
	}
	for _, id := range ids {
		if !a.configured(id) {
			continue
		}
		on := a.mon.RunningOn(id)
		why := ""
		role := pacemaker.RoleStarted
		switch {
		case len(on) == 0:
			why, role = a.whyChain(id), pacemaker.RoleStopped
		case slices.Contains(a.s.Expect.Services(), id) && a.active != "" && (len(on) > 1 || on[0] != a.active):
			why = fmt.Sprintf("should run on %s, the DRBD Primary", a.active)
		}
		add(id, role, on, why)
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// maintenanceWhy says who set maintenance mode and when it ends.
func maintenanceWhy(st *pacemaker.MaintenanceState, now time.Time) string {
	if st == nil {
		return ""
	}
	switch {
	case st.Source == pacemaker.SourceHaconf && !st.Until.IsZero():
		return fmt.Sprintf(" until %s (haconf maintenance, %s left; it ends by itself)", pacemaker.FormatCIBTime(st.Until), st.Until.Sub(now).Round(time.Minute))
	case st.Source == pacemaker.SourceHaconf:
		return " with no end (haconf maintenance on --no-expiry; haconf maintenance off ends it)"
	case st.Source == pacemaker.SourceBootstrap:
		return " with no end (cib-bootstrap-options; haconf maintenance off ends it)"
	case st.Source == pacemaker.SourceOther:
		return " (cluster_property_set " + st.SetID + ")"
	}
	return ""
}
