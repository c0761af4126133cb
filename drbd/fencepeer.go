package drbd

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Exit codes of a fence-peer handler, as DRBD reads them.
const (
	FenceFailed       = 1 // no fencing: DRBD keeps I/O frozen and refuses to promote
	FencePeerOutdated = 4 // the peer's disk is marked Outdated (constraint placed, peer reachable)
	FencePeerDown     = 5 // the peer could not be reached
	FencePeerFenced   = 7 // the peer was fenced (node-level) by Pacemaker
)

// FencePeer is DRBD's fence-peer handler for Pacemaker clusters (the
// handler line in the resource file runs `haconf drbd fence-peer`). Like
// crm-fence-peer.sh it places a location constraint that lets only this
// node be Promoted, so the peer, whose data is now behind, cannot be
// promoted until it has resynced (the after-resync handler and the haconf
// DRBD agent remove it). It differs in cost: crm-fence-peer.sh forks a few
// hundred times and took 6.5 s of a failover on a loaded node, DRBD's
// promotion waiting on it; this reads the CIB once (more only while
// fencing is in progress) and adds the constraint with one cibadmin.
type FencePeer struct {
	Resource string
	Clone    string // the promotable clone's id
	Node     string // this node's name in the cluster
	Run      Runner
	// State reads this node's DRBD state for Resource.
	State func(ctx context.Context) (Resource, bool, error)
	// Timeout bounds the wait for Pacemaker to fence an unreachable peer.
	Timeout time.Duration
	Poll    time.Duration
	Sleep   func(time.Duration)
}

// Peer states as the CIB shows them.
const (
	peerReachable = "reachable" // its controller is online: only replication was lost
	peerFenced    = "fenced"    // offline and expected down: fenced (or stopped cleanly)
	peerPending   = "pending"   // offline, not yet expected down: fencing in progress
	peerUnknown   = "unknown"   // no state recorded for it
)

// cibView is what the handler reads from `cibadmin --query`.
type cibView struct {
	Nodes []struct {
		Uname string `xml:"uname,attr"`
		Type  string `xml:"type,attr"`
	} `xml:"configuration>nodes>node"`
	Locations []location `xml:"configuration>constraints>rsc_location"`
	States    []struct {
		Uname    string `xml:"uname,attr"`
		InCCM    string `xml:"in_ccm,attr"`
		Crmd     string `xml:"crmd,attr"`
		Expected string `xml:"expected,attr"`
	} `xml:"status>node_state"`
}

// location is an rsc_location constraint with a rule, as the handler
// writes it.
type location struct {
	ID    string `xml:"id,attr"`
	Exprs []struct {
		Attribute string `xml:"attribute,attr"`
		Operation string `xml:"operation,attr"`
		Value     string `xml:"value,attr"`
	} `xml:"rule>expression"`
}

// peerState is the peer's state in the CIB: the one other node that runs
// resources (a two-node cluster).
func (v cibView) peerState(self string) (peer, state string) {
	for _, n := range v.Nodes {
		if n.Uname != self && n.Type != "ping" && n.Type != "remote" {
			peer = n.Uname
		}
	}
	for _, s := range v.States {
		if s.Uname != peer || peer == "" {
			continue
		}
		// Pacemaker 2.1.7+ records join times instead of true/online.
		member := s.InCCM != "" && s.InCCM != "false"
		online := s.Crmd != "" && s.Crmd != "offline"
		switch {
		case online && member:
			return peer, peerReachable
		case !member && s.Expected == "down":
			return peer, peerFenced
		default:
			return peer, peerPending
		}
	}
	return peer, peerUnknown
}

// owner is the node an existing fence constraint with id keeps Promoted,
// or "" when there is none.
func (v cibView) owner(id string) (string, bool) {
	for _, l := range v.Locations {
		if l.ID != id {
			continue
		}
		for _, e := range l.Exprs {
			if e.Attribute == "#uname" && e.Operation == "ne" {
				return e.Value, true
			}
		}
		return "", true
	}
	return "", false
}

// FenceOwner returns the node the fence-peer constraint of resource lets
// be Promoted, from a CIB document or its constraints section (cibadmin
// --query [--scope constraints]); "" when there is no such constraint.
func FenceOwner(cib []byte, resource, clone string) (string, error) {
	var doc struct {
		XMLName     xml.Name
		Constraints []location `xml:"rsc_location"`                           // <constraints>
		CIB         []location `xml:"configuration>constraints>rsc_location"` // <cib>
	}
	if err := xml.Unmarshal(cib, &doc); err != nil {
		return "", fmt.Errorf("CIB constraints: %w", err)
	}
	var v cibView
	switch doc.XMLName.Local {
	case "constraints":
		v.Locations = doc.Constraints
	case "cib":
		v.Locations = doc.CIB
	default:
		return "", fmt.Errorf("CIB constraints: document is <%s>, not <constraints> or <cib>", doc.XMLName.Local)
	}
	owner, _ := v.owner(FenceConstraintID(resource, clone))
	return owner, nil
}

// FenceDecision is what the handler concluded: the exit code, whether to
// place the constraint, and why.
type FenceDecision struct {
	Code   int
	Place  bool
	Reason string
}

// DecideFence is crm-fence-peer.sh's decision table: a reachable peer (only
// replication is down) is outdated when this disk is at least Consistent;
// a fenced peer needs this disk UpToDate; an unreachable one (fencing did
// not finish in time) is treated as down, constrained only when this disk
// is UpToDate. Without good local data nothing is placed: the constraint
// would pin the services to the worse copy.
func DecideFence(self Resource, peerState string) FenceDecision {
	good := self.Disk == DiskUpToDate
	consistent := good || self.Disk == "Consistent"
	switch {
	case self.PeerDisk == DiskUpToDate:
		return FenceDecision{Code: FenceFailed, Reason: "the peer's disk is UpToDate: no constraint placed"}
	case peerState == peerReachable && consistent:
		return FenceDecision{Code: FencePeerOutdated, Place: true, Reason: "peer reachable, my disk " + self.Disk}
	case peerState == peerFenced && good:
		return FenceDecision{Code: FencePeerFenced, Place: true, Reason: "peer fenced, my disk UpToDate"}
	case peerState != peerReachable && peerState != peerFenced && good:
		return FenceDecision{Code: FencePeerDown, Place: true, Reason: "peer " + peerState + " (fencing not confirmed in time), my disk UpToDate"}
	}
	return FenceDecision{Code: FencePeerDown, Reason: fmt.Sprintf("peer %s, my disk %s: no constraint placed", peerState, self.Disk)}
}

func (f *FencePeer) query(ctx context.Context) (cibView, error) {
	var v cibView
	out, err := f.Run.Run(ctx, "cibadmin", "--query")
	if err != nil {
		return v, fmt.Errorf("cibadmin --query: %w", err)
	}
	if err := xml.Unmarshal(out, &v); err != nil {
		return v, fmt.Errorf("cibadmin --query: %w", err)
	}
	return v, nil
}

// ConstraintXML is the fence constraint: only node may be Promoted.
func ConstraintXML(resource, clone, node string) string {
	id := FenceConstraintID(resource, clone)
	var b strings.Builder
	b.WriteString(`<rsc_location rsc="` + clone + `" id="` + id + `">`)
	b.WriteString(`<rule role="Promoted" score="-INFINITY" id="drbd-fence-by-handler-` + resource + `-rule-` + clone + `">`)
	b.WriteString(`<expression attribute="#uname" operation="ne" value="` + node + `" id="drbd-fence-by-handler-` + resource + `-expr-` + clone + `"/>`)
	b.WriteString(`</rule></rsc_location>`)
	return b.String()
}

// Fence runs the handler and returns its exit code and what it did.
func (f *FencePeer) Fence(ctx context.Context) (int, string) {
	if f.Poll == 0 {
		f.Poll = 500 * time.Millisecond
	}
	if f.Sleep == nil {
		f.Sleep = time.Sleep
	}
	deadline := time.Now().Add(f.Timeout)
	var (
		v     cibView
		peer  string
		state string
	)
	for first := true; ; first = false {
		var err error
		if v, err = f.query(ctx); err == nil {
			peer, state = v.peerState(f.Node)
			if state == peerReachable || state == peerFenced {
				break
			}
		} else if first {
			// No CIB at all (Pacemaker not running here): nothing to wait
			// for, as crm-fence-peer.sh, which gives up at once too.
			return FenceFailed, "cannot read the CIB (is Pacemaker running?): " + err.Error()
		}
		if !time.Now().Before(deadline) {
			if err != nil {
				return FenceFailed, "cannot read the CIB: " + err.Error()
			}
			break
		}
		f.Sleep(f.Poll)
	}
	self, up, err := f.State(ctx)
	if err != nil || !up {
		return FenceFailed, fmt.Sprintf("cannot read my DRBD state for %s (up=%v): %v", f.Resource, up, err)
	}
	d := DecideFence(self, state)
	if peer == "" {
		peer = "the peer"
	}
	if !d.Place {
		return d.Code, peer + ": " + d.Reason
	}
	id := FenceConstraintID(f.Resource, f.Clone)
	if owner, ok := v.owner(id); ok {
		if owner == f.Node {
			return d.Code, fmt.Sprintf("%s: %s; constraint %s already in place", peer, d.Reason, id)
		}
		// The constraint keeps another node Promoted: the peer fenced us
		// first (or an operator placed it). Its data wins; ours must wait.
		return FenceFailed, fmt.Sprintf("%s: constraint %s already keeps %q Promoted: not promoting over it", peer, id, owner)
	}
	if _, err := f.Run.Run(ctx, "cibadmin", "--create", "--scope", "constraints", "--xml-text", ConstraintXML(f.Resource, f.Clone, f.Node)); err != nil {
		return FenceFailed, fmt.Sprintf("%s: %s, but placing constraint %s failed (DATA INTEGRITY at risk: DRBD keeps I/O frozen): %v", peer, d.Reason, id, err)
	}
	return d.Code, fmt.Sprintf("%s: %s; placed constraint %s", peer, d.Reason, id)
}

// FencePeerFromEnv builds the handler from DRBD's environment (DRBD_RESOURCE,
// DRBD_MINOR) for the clone clone.
func FencePeerFromEnv(getenv func(string) string, clone string, run Runner) *FencePeer {
	a := &Agent{Resource: getenv("DRBD_RESOURCE"), Minor: -1, Run: run, ReadProc: func() ([]byte, error) { return os.ReadFile("/proc/drbd") }}
	if m, err := strconv.Atoi(getenv("DRBD_MINOR")); err == nil && m >= 0 {
		a.Minor = m
	}
	h, _ := os.Hostname()
	node, _, _ := strings.Cut(h, ".")
	return &FencePeer{Resource: a.Resource, Clone: clone, Node: node, Run: run, State: a.state, Timeout: 90 * time.Second}
}
