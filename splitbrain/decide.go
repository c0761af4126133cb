package splitbrain

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/haconf/haconf/drbd"
)

// Errors callers act on.
var (
	// ErrSplitBrain: the resource is in split brain (both sides wrote
	// while disconnected and DRBD refused to connect).
	ErrSplitBrain = errors.New("drbd split brain")
	// ErrNoSplitBrain: there is nothing to resolve.
	ErrNoSplitBrain = errors.New("no split brain")
	// ErrUnrelatedData: the two sides share no data generation (different
	// bitmap UUIDs, no common ancestor); only a full sync can join them and
	// haconf never decides that automatically.
	ErrUnrelatedData = errors.New("unrelated data on the two nodes (no common generation UUID)")
	// ErrPeerUnreachable: the other node's evidence could not be read.
	ErrPeerUnreachable = errors.New("peer unreachable")
	// ErrEvidenceConflict: the evidence names different authorized primaries.
	ErrEvidenceConflict = errors.New("evidence disagrees on the authorized primary")
	// ErrNoSafeChoice: the policy cannot pick a victim without guessing.
	ErrNoSafeChoice = errors.New("no safe choice of victim")
	// ErrNotSurvivor: the engine runs on the survivor; this node is the victim.
	ErrNotSurvivor = errors.New("this node is not the survivor")
	// ErrDisagree: the victim's own decision differs from the requester's.
	ErrDisagree = errors.New("nodes disagree on the victim")
)

// Policy selects the victim of a split brain.
type Policy struct {
	Name   string `json:"name"`             // auto, least-changes, prefer, manual
	Prefer string `json:"prefer,omitempty"` // survivor when Name is prefer
}

// PolicyFrom returns the policy configured in c.
func PolicyFrom(c drbd.SplitBrainConfig) Policy { return Policy{Name: c.Policy, Prefer: c.Prefer} }

// NodeEvidence is what one node knows about itself.
type NodeEvidence struct {
	Node      string `json:"node"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`

	Version string        `json:"drbd_version,omitempty"`
	State   drbd.Resource `json:"state"`
	GI      drbd.GI       `json:"gi"`
	// SplitBrainAt is when the split-brain handler last ran here.
	SplitBrainAt time.Time `json:"split_brain_at,omitzero"`
	// HasVIP: the VIP is configured on this node's interfaces (nil: unknown).
	HasVIP *bool          `json:"has_vip,omitempty"`
	MySQL  *MySQLEvidence `json:"mysql,omitempty"`
	// Cluster is Pacemaker as seen from this node.
	Cluster *ClusterView `json:"cluster,omitempty"`
	Backing Backing      `json:"backing"`

	CollectedAt time.Time `json:"collected_at"`
}

// ClusterView is what Pacemaker reports on one node.
type ClusterView struct {
	Promoted   []string  `json:"promoted"`
	PromotedAt time.Time `json:"promoted_at,omitzero"`
	VIPOn      []string  `json:"vip_on,omitempty"`
	// FenceOwner is the node DRBD's fence-peer constraint lets be
	// Promoted ("" when there is none). The handler places it on the node
	// that was Primary when replication broke; while it stands Pacemaker
	// cannot promote another node, so a Promoted instance elsewhere is a
	// Primary made outside Pacemaker (drbdadm primary --force) that its
	// monitor merely observed, not one the cluster authorized.
	FenceOwner string   `json:"fence_owner,omitempty"`
	Online     []string `json:"online,omitempty"`
	Managed    bool     `json:"managed"`
	Error      string   `json:"error,omitempty"`
}

// MySQLEvidence is the binary log position where MariaDB/MySQL runs.
type MySQLEvidence struct {
	Running  bool   `json:"running"`
	File     string `json:"file,omitempty"`
	Position int64  `json:"position,omitempty"`
}

// Backing is the victim-side storage haconf preserves.
type Backing struct {
	Device    string `json:"device"`
	SizeBytes int64  `json:"size_bytes,omitempty"`
	VG        string `json:"vg,omitempty"` // set when the device is an LVM LV
	LV        string `json:"lv,omitempty"`
}

// LVM reports whether the backing device is a logical volume.
func (b Backing) LVM() bool { return b.VG != "" && b.LV != "" }

// Evidence is both nodes' evidence, ordered by node name.
type Evidence struct {
	Resource string          `json:"resource"`
	Nodes    [2]NodeEvidence `json:"nodes"`
}

// Actions a decision can take.
const (
	ActionResolve   = "resolve"   // preserve and discard the victim's changes
	ActionReconnect = "reconnect" // nothing diverged: reconnect, DRBD resyncs
	ActionReport    = "report"    // manual policy: change nothing
)

// Decision is what to do about a split brain.
type Decision struct {
	Policy   Policy        `json:"policy"`
	Action   string        `json:"action"`
	Victim   string        `json:"victim,omitempty"`
	Survivor string        `json:"survivor,omitempty"`
	Relation drbd.Relation `json:"relation"`
	// Authorized is the node the cluster authorized as primary ("" if unknown).
	Authorized string `json:"authorized,omitempty"`
	// VictimChangesKiB are the writes discarded on the victim (preserved first).
	VictimChangesKiB   int64    `json:"victim_changes_kib"`
	SurvivorChangesKiB int64    `json:"survivor_changes_kib"`
	Reason             string   `json:"reason"`
	Conflicts          []string `json:"conflicts,omitempty"`
	// Advice is, under the manual policy, what auto would have done.
	Advice string `json:"advice,omitempty"`
}

// Decide picks the victim of a split brain from both nodes' evidence. It is
// a pure function: both nodes reach the same decision from the same
// evidence.
//
//   - Both nodes' evidence is required; without it: ErrPeerUnreachable.
//   - Equal or directly descended generations: reconnect, nothing is lost.
//   - Different bitmap UUIDs (no common ancestor): ErrUnrelatedData.
//   - auto: a side without changes is discarded; otherwise the side that
//     Pacemaker did not authorize as primary, unless the evidence
//     disagrees (ErrEvidenceConflict) or names no primary (ErrNoSafeChoice).
//   - least-changes: the side with fewer out-of-sync KiB; a tie refuses.
//   - prefer: the other node than Prefer.
//   - manual: ActionReport, with auto's choice as advice.
func Decide(ev Evidence, p Policy) (Decision, error) {
	d := Decision{Policy: p}
	if p.Name == drbd.PolicyManual {
		auto, err := Decide(ev, Policy{Name: drbd.PolicyAuto})
		d = auto
		if errors.Is(err, ErrNoSplitBrain) {
			// Nothing to report: connected, or disconnected with
			// nothing diverged (DRBD reconnects by itself).
			return d, err
		}
		d.Policy, d.Action, d.Victim, d.Survivor = p, ActionReport, "", ""
		if err != nil {
			d.Advice = "auto would refuse: " + err.Error()
		} else {
			d.Advice = fmt.Sprintf("auto would %s (victim %s): %s", auto.Action, cmp.Or(auto.Victim, "none"), auto.Reason)
		}
		d.Reason = "policy manual: report only, nothing changed"
		return d, nil
	}
	a, b := ev.Nodes[0], ev.Nodes[1]
	for _, n := range ev.Nodes {
		if !n.Reachable {
			return d, fmt.Errorf("%w: no evidence from %s: %s", ErrPeerUnreachable, n.Node, cmp.Or(n.Error, "unknown error"))
		}
	}
	if !a.State.Disconnected() && !b.State.Disconnected() {
		return d, fmt.Errorf("%w: %s is %s on both nodes", ErrNoSplitBrain, ev.Resource, a.State.Connection)
	}
	d.Relation = drbd.Relate(a.GI, b.GI)
	switch d.Relation {
	case drbd.RelUnrelated:
		return d, fmt.Errorf("%w: %s has %s, %s has %s", ErrUnrelatedData, a.Node, a.GI.Raw, b.Node, b.GI.Raw)
	case drbd.RelSame, drbd.RelAhead, drbd.RelBehind:
		if a.State.Connection != drbd.ConnStandAlone && b.State.Connection != drbd.ConnStandAlone {
			// Both nodes still try to connect (a link is down): DRBD
			// reconnects and resyncs by itself once it is back.
			return d, fmt.Errorf("%w: %s is %s/%s and generations are %s: DRBD reconnects by itself", ErrNoSplitBrain,
				ev.Resource, a.State.Connection, b.State.Connection, d.Relation)
		}
		d.Action = ActionReconnect
		d.Reason = fmt.Sprintf("generations are %s: no side has divergent writes, reconnecting lets DRBD resync", d.Relation)
		return d, nil
	}
	if !isStandAlone(a) && !isStandAlone(b) {
		return d, fmt.Errorf("%w: generations diverged but neither node is StandAlone yet (DRBD has not detected the split brain)", ErrNoSplitBrain)
	}
	authorized, conflicts := authority(ev)
	d.Authorized, d.Conflicts = authorized, conflicts
	changes := map[string]int64{a.Node: a.State.OutOfSyncKiB, b.Node: b.State.OutOfSyncKiB}
	pick := func(victim, reason string) (Decision, error) {
		d.Action, d.Victim, d.Survivor, d.Reason = ActionResolve, victim, other(ev, victim), reason
		d.VictimChangesKiB, d.SurvivorChangesKiB = changes[victim], changes[d.Survivor]
		return d, nil
	}
	switch p.Name {
	case drbd.PolicyAuto:
		switch {
		case changes[a.Node] == 0 && changes[b.Node] == 0:
			v := max(a.Node, b.Node) // deterministic whichever node decides
			if authorized != "" {
				v = other(ev, authorized)
			}
			return pick(v, "neither side has changes; nothing is lost")
		case changes[a.Node] == 0:
			return pick(a.Node, fmt.Sprintf("%s has no changes since the split (discard-zero-changes)", a.Node))
		case changes[b.Node] == 0:
			return pick(b.Node, fmt.Sprintf("%s has no changes since the split (discard-zero-changes)", b.Node))
		case len(conflicts) > 0:
			return d, fmt.Errorf("%w: %s", ErrEvidenceConflict, strings.Join(conflicts, "; "))
		case authorized == "":
			return d, fmt.Errorf("%w: both sides wrote (%s %d KiB, %s %d KiB) and Pacemaker names no promoted node", ErrNoSafeChoice, a.Node, changes[a.Node], b.Node, changes[b.Node])
		}
		v := other(ev, authorized)
		return pick(v, fmt.Sprintf("both sides wrote; %s is the cluster-authorized primary (promoted by Pacemaker), %s's %d KiB are preserved then discarded", authorized, v, changes[v]))
	case drbd.PolicyLeastChanges:
		switch {
		case changes[a.Node] < changes[b.Node]:
			return pick(a.Node, fmt.Sprintf("least changes: %d KiB < %d KiB", changes[a.Node], changes[b.Node]))
		case changes[b.Node] < changes[a.Node]:
			return pick(b.Node, fmt.Sprintf("least changes: %d KiB < %d KiB", changes[b.Node], changes[a.Node]))
		}
		return d, fmt.Errorf("%w: both sides changed %d KiB", ErrNoSafeChoice, changes[a.Node])
	case drbd.PolicyPrefer:
		if p.Prefer != a.Node && p.Prefer != b.Node {
			return d, fmt.Errorf("%w: prefer names %q, which is neither %s nor %s", ErrNoSafeChoice, p.Prefer, a.Node, b.Node)
		}
		return pick(other(ev, p.Prefer), fmt.Sprintf("policy prefers %s", p.Prefer))
	}
	return d, fmt.Errorf("%w: unknown policy %q", ErrNoSafeChoice, p.Name)
}

func isStandAlone(n NodeEvidence) bool {
	return n.State.Connection == drbd.ConnStandAlone || n.State.SplitBrain || !n.SplitBrainAt.IsZero()
}

func other(ev Evidence, node string) string {
	if ev.Nodes[0].Node == node {
		return ev.Nodes[1].Node
	}
	return ev.Nodes[0].Node
}

// authority returns the node the evidence names as authorized primary and
// every disagreement found: the two Pacemaker views, more than one promoted
// node, the VIP held elsewhere or twice, MariaDB running elsewhere, DRBD
// Primary elsewhere.
func authority(ev Evidence) (string, []string) {
	var conflicts []string
	promoted := map[string][]string{}
	for _, n := range ev.Nodes {
		if n.Cluster == nil || n.Cluster.Error != "" {
			continue
		}
		if len(n.Cluster.Promoted) > 1 {
			conflicts = append(conflicts, fmt.Sprintf("Pacemaker on %s reports %s promoted on %v", n.Node, ev.Resource, n.Cluster.Promoted))
		}
		for _, p := range n.Cluster.Promoted {
			if !slices.Contains(promoted[p], n.Node) {
				promoted[p] = append(promoted[p], n.Node)
			}
		}
	}
	authorized := ""
	switch len(promoted) {
	case 1:
		for p := range promoted {
			authorized = p
		}
	case 2:
		conflicts = append(conflicts, fmt.Sprintf("Pacemaker views disagree: %s promoted according to %v, %s according to %v",
			ev.Nodes[0].Node, promoted[ev.Nodes[0].Node], ev.Nodes[1].Node, promoted[ev.Nodes[1].Node]))
	}
	var vip []string
	for _, n := range ev.Nodes {
		if n.HasVIP != nil && *n.HasVIP {
			vip = append(vip, n.Node)
		}
	}
	if len(vip) == 2 {
		conflicts = append(conflicts, "the VIP is configured on both nodes")
	}
	if authorized == "" && len(vip) == 1 && len(conflicts) == 0 {
		authorized = vip[0]
	}
	if authorized == "" {
		return "", conflicts
	}
	for _, n := range ev.Nodes {
		if n.Cluster != nil && n.Cluster.FenceOwner != "" && n.Cluster.FenceOwner != authorized {
			conflicts = append(conflicts, fmt.Sprintf("Pacemaker on %s reports %s promoted, but the DRBD fence constraint (placed when replication broke) lets only %s be promoted: %s's Primary was made outside Pacemaker",
				n.Node, authorized, n.Cluster.FenceOwner, authorized))
			break
		}
	}
	for _, n := range ev.Nodes {
		if n.Node == authorized {
			continue
		}
		if n.HasVIP != nil && *n.HasVIP {
			conflicts = append(conflicts, fmt.Sprintf("the VIP is on %s, not on the promoted node %s", n.Node, authorized))
		}
		if n.MySQL != nil && n.MySQL.Running {
			conflicts = append(conflicts, fmt.Sprintf("MariaDB runs on %s (binlog %s:%d), not on the promoted node %s", n.Node, n.MySQL.File, n.MySQL.Position, authorized))
		}
		if n.State.Role == drbd.RolePrimary {
			conflicts = append(conflicts, fmt.Sprintf("DRBD is Primary on %s, not only on the promoted node %s", n.Node, authorized))
		}
	}
	return authorized, conflicts
}
