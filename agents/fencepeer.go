package agents

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/pacemaker"
)

// Exit codes of a fence-peer handler, as DRBD reads them.
const (
	FenceFailed       = 1 // no fencing: DRBD keeps I/O frozen and refuses to promote
	FencePeerOutdated = 4 // the peer's disk is marked Outdated (constraint placed, peer reachable)
	FencePeerDown     = 5 // the peer could not be reached
	FencePeerFenced   = 7 // the peer was fenced (node-level) by Pacemaker
)

// FenceHandler is DRBD's fence-peer handler for Pacemaker clusters (the
// handler line in the resource file runs `haconf-agent drbd fence-peer`,
// see FencePeer). Like
// crm-fence-peer.sh it places a location constraint that lets only this
// node be Promoted, so the peer, whose data is now behind, cannot be
// promoted until it has resynced (the after-resync handler and the haconf
// DRBD agent remove it). It differs in cost: crm-fence-peer.sh forks a few
// hundred times and took 6.5 s of a failover on a loaded node, DRBD's
// promotion waiting on it; this reads the CIB once (more only while
// fencing is in progress) and adds the constraint with one cibadmin.
type FenceHandler struct {
	Resource string
	Clone    string // the promotable clone's id
	Node     string // this node's name in the cluster
	Run      Runner
	// State reads this node's DRBD state for Resource.
	State func(ctx context.Context) (drbd.Resource, bool, error)
	// Timeout bounds the wait for Pacemaker to fence an unreachable peer.
	Timeout time.Duration
	Poll    time.Duration
	Sleep   func(time.Duration)
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
func DecideFence(self drbd.Resource, peerState pacemaker.PeerState) FenceDecision {
	good := self.Disk == drbd.DiskUpToDate
	consistent := good || self.Disk == "Consistent"
	switch {
	case self.PeerDisk == drbd.DiskUpToDate:
		return FenceDecision{Code: FenceFailed, Reason: "the peer's disk is UpToDate: no constraint placed"}
	case peerState == pacemaker.PeerReachable && consistent:
		return FenceDecision{Code: FencePeerOutdated, Place: true, Reason: "peer reachable, my disk " + self.Disk}
	case peerState == pacemaker.PeerFenced && good:
		return FenceDecision{Code: FencePeerFenced, Place: true, Reason: "peer fenced, my disk UpToDate"}
	case peerState != pacemaker.PeerReachable && peerState != pacemaker.PeerFenced && good:
		return FenceDecision{Code: FencePeerDown, Place: true, Reason: "peer " + string(peerState) + " (fencing not confirmed in time), my disk UpToDate"}
	}
	return FenceDecision{Code: FencePeerDown, Reason: fmt.Sprintf("peer %s, my disk %s: no constraint placed", peerState, self.Disk)}
}

func (f *FenceHandler) cluster() pacemaker.Cluster { return pacemaker.Cluster{Run: f.Run} }

// query reads the whole CIB.
func (f *FenceHandler) query(ctx context.Context) (pacemaker.FenceView, error) {
	out, err := f.cluster().Query(ctx, "")
	if err != nil {
		return pacemaker.FenceView{}, fmt.Errorf("read the CIB: %w", err)
	}
	return pacemaker.ParseFenceView(out)
}

// Fence runs the handler and returns its exit code and what it did.
func (f *FenceHandler) Fence(ctx context.Context) (int, string) {
	if f.Poll == 0 {
		f.Poll = 500 * time.Millisecond
	}
	if f.Sleep == nil {
		f.Sleep = time.Sleep
	}
	deadline := time.Now().Add(f.Timeout)
	var (
		v     pacemaker.FenceView
		peer  string
		state pacemaker.PeerState
	)
	for first := true; ; first = false {
		var err error
		if v, err = f.query(ctx); err == nil {
			peer, state = v.Peer(f.Node)
			if state == pacemaker.PeerReachable || state == pacemaker.PeerFenced {
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
	id := pacemaker.FenceConstraintID(f.Resource, f.Clone)
	if owner, ok := v.Owner(id); ok {
		if owner == f.Node {
			return d.Code, fmt.Sprintf("%s: %s; constraint %s already in place", peer, d.Reason, id)
		}
		// The constraint keeps another node Promoted: the peer fenced us
		// first (or an operator placed it). Its data wins; ours must wait.
		return FenceFailed, fmt.Sprintf("%s: constraint %s already keeps %q Promoted: not promoting over it", peer, id, owner)
	}
	if err := f.cluster().Create(ctx, pacemaker.ScopeConstraints, pacemaker.FenceConstraintXML(f.Resource, f.Clone, f.Node)); err != nil {
		return FenceFailed, fmt.Sprintf("%s: %s, but placing constraint %s failed (DATA INTEGRITY at risk: DRBD keeps I/O frozen): %v", peer, d.Reason, id, err)
	}
	return d.Code, fmt.Sprintf("%s: %s; placed constraint %s", peer, d.Reason, id)
}

// FenceHandlerFromEnv builds the handler from DRBD's environment
// (DRBD_RESOURCE, DRBD_MINOR) for the clone clone; it reads the DRBD
// state as the resource agent does.
func FenceHandlerFromEnv(getenv func(string) string, clone string, run Runner) *FenceHandler {
	a := &DRBD{Resource: getenv("DRBD_RESOURCE"), Minor: -1, Run: run, ReadProc: func() ([]byte, error) { return os.ReadFile("/proc/drbd") }}
	if m, err := strconv.Atoi(getenv("DRBD_MINOR")); err == nil && m >= 0 {
		a.Minor = m
	}
	h, _ := os.Hostname()
	node, _, _ := strings.Cut(h, ".")
	return &FenceHandler{Resource: a.Resource, Clone: clone, Node: node, Run: run, State: a.state, Timeout: 90 * time.Second}
}
