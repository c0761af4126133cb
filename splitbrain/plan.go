package splitbrain

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/pacemaker"
)

// Step is one command of a recovery plan, run on one node.
type Step struct {
	Node string   `json:"node"`
	Argv []string `json:"argv,omitempty"`
	Why  string   `json:"why"`
	// Check names what the executor verifies after the command (sha256
	// outputs compared, free space, snapshot present); "" for none.
	Check string `json:"check,omitempty"`
	// Tolerate: a failure of this command does not stop the plan (for
	// idempotent steps such as disconnecting an already StandAlone node).
	Tolerate bool `json:"tolerate"`
	// Wait marks the pseudo-step that waits for UpToDate/UpToDate.
	Wait bool `json:"wait"`
}

func (s Step) String() string {
	if s.Wait {
		return fmt.Sprintf("[%s] (wait) %s", s.Node, s.Why)
	}
	return fmt.Sprintf("[%s] %s    # %s", s.Node, strings.Join(s.Argv, " "), s.Why)
}

// Step checks.
const (
	checkSpace      = "space"
	checkSnapshot   = "snapshot"
	checkSumSource  = "sha256-source"
	checkSumCopy    = "sha256-copy"
	checkStandAlone = "standalone"
)

// SnapshotName is the LVM snapshot haconf creates for an incident.
func SnapshotName(id string) string { return "haconf-sb-" + id }

// PreservePath is where the victim's data is preserved for an incident.
func PreservePath(b Backing, preserveDir, resource, id string) (kind, path string) {
	if b.LVM() {
		return PreservedLVM, "/dev/" + b.VG + "/" + SnapshotName(id)
	}
	return PreservedCopy, filepath.Join(preserveDir, resource+"-"+id+".img")
}

// Preservation kinds.
const (
	PreservedLVM  = "lvm-snapshot"
	PreservedCopy = "copy"
)

// managedSteps unmanages (managed false) or re-manages the DRBD clone.
func managedSteps(node, clone string, managed bool) []Step {
	if !managed {
		return []Step{{Node: node, Argv: pacemaker.SetManagedArgv(clone, false),
			Why: "stop Pacemaker's DRBD agent from fighting the manual recovery"}}
	}
	return []Step{
		{Node: node, Argv: pacemaker.SetManagedArgv(clone, true), Why: "hand DRBD back to Pacemaker"},
		{Node: node, Argv: pacemaker.CleanupArgv(clone), Why: "clear the failures the split brain left"},
	}
}

// PeerSteps are the commands the non-acting node runs: on the victim,
// demote, preserve, and reconnect discarding its data; for a reconnect
// decision, just connect.
func PeerSteps(d Decision, self NodeEvidence, resource, id, preserveDir string) []Step {
	n := self.Node
	if d.Action == ActionReconnect {
		return connectSteps(self, resource)
	}
	steps := []Step{
		{Node: n, Argv: drbd.AdmArgv("disconnect", resource), Why: "make sure the victim is StandAlone", Tolerate: true, Check: checkStandAlone},
		{Node: n, Argv: drbd.AdmArgv("secondary", resource), Why: "the victim must be Secondary: nothing writes to it while it is preserved"},
	}
	steps = append(steps, PreserveSteps(self, resource, id, preserveDir)...)
	steps = append(steps, Step{Node: n, Argv: drbd.AdmArgv("connect", resource, "--discard-my-data"),
		Why: fmt.Sprintf("discard the victim's %d KiB of divergent writes (preserved above) and resync from the survivor", self.State.OutOfSyncKiB)})
	return steps
}

// PreserveSteps copy or snapshot the victim's backing device.
func PreserveSteps(self NodeEvidence, resource, id, preserveDir string) []Step {
	n, b := self.Node, self.Backing
	kind, path := PreservePath(b, preserveDir, resource, id)
	if kind == PreservedLVM {
		lv := b.VG + "/" + b.LV
		return []Step{
			{Node: n, Argv: []string{"lvcreate", "--snapshot", "--extents", "100%ORIGIN", "--name", SnapshotName(id), lv},
				Why: "snapshot the victim's backing volume (full size: it stays valid while the resync and later writes change the origin)"},
			{Node: n, Argv: []string{"lvs", "--noheadings", "-o", "lv_name,origin,lv_attr", b.VG + "/" + SnapshotName(id)}, Why: "verify the snapshot " + path + " exists", Check: checkSnapshot},
		}
	}
	return []Step{
		{Node: n, Argv: []string{"mkdir", "-p", preserveDir}, Why: "directory for the preserved copy"},
		{Node: n, Argv: []string{"df", "--output=avail", "-B1", preserveDir}, Why: fmt.Sprintf("check %d bytes are free", b.SizeBytes), Check: checkSpace},
		{Node: n, Argv: []string{"dd", "if=" + b.Device, "of=" + path, "bs=4M", "conv=fsync", "status=none"}, Why: "copy the victim's backing device (its data and DRBD metadata)"},
		{Node: n, Argv: []string{"sha256sum", b.Device}, Why: "checksum the source", Check: checkSumSource},
		{Node: n, Argv: []string{"sha256sum", path}, Why: "verify the copy " + path + " matches", Check: checkSumCopy},
	}
}

// connectSteps reconnect a node that is not connected. DRBD 8.4 connects
// a StandAlone node with `connect`; DRBD 9 needs disconnect then connect.
// A node already trying to connect needs nothing on 8.4.
func connectSteps(self NodeEvidence, resource string) []Step {
	n := self.Node
	if !drbd.Is84(self.Version) {
		return []Step{
			{Node: n, Argv: drbd.AdmArgv("disconnect", resource), Why: "DRBD 9: reset the connection", Tolerate: true},
			{Node: n, Argv: drbd.AdmArgv("connect", resource), Why: "connect to the peer"},
		}
	}
	if self.State.Connection == drbd.ConnConnecting || self.State.Connection == drbd.ConnConnected {
		return nil
	}
	return []Step{{Node: n, Argv: drbd.AdmArgv("connect", resource), Why: "connect the StandAlone node to the peer"}}
}

// RenderPlan lists every command of a recovery, in order, for both nodes.
// The actor (see [Actor]) runs the Pacemaker commands and its own half.
func RenderPlan(ev Evidence, d Decision, resource, clone, id, preserveDir string) []Step {
	if d.Action != ActionResolve && d.Action != ActionReconnect {
		return nil
	}
	actor, peer := ev.Nodes[0], ev.Nodes[1]
	if Actor(ev, d) == peer.Node {
		actor, peer = peer, actor
	}
	// Without Pacemaker on either node (crm_mon failed on both, e.g. a
	// bare DRBD pair) there is no clone to unmanage.
	cluster := actor.Cluster != nil && actor.Cluster.Error == "" || peer.Cluster != nil && peer.Cluster.Error == ""
	var steps []Step
	if cluster {
		steps = managedSteps(actor.Node, clone, false)
	}
	steps = append(steps, PeerSteps(d, peer, resource, id, preserveDir)...)
	steps = append(steps, connectSteps(actor, resource)...)
	steps = append(steps, Step{Node: "both", Wait: true, Why: "wait for Connected and UpToDate/UpToDate on both nodes"})
	if cluster {
		steps = append(steps, managedSteps(actor.Node, clone, true)...)
	}
	return steps
}

// Actor returns the node that acts on a decision: the survivor, or for a
// reconnect the authorized primary (else the lower node name).
func Actor(ev Evidence, d Decision) string {
	switch {
	case d.Action == ActionResolve:
		return d.Survivor
	case d.Action == ActionReconnect && d.Authorized != "":
		return d.Authorized
	case d.Action == ActionReconnect:
		return min(ev.Nodes[0].Node, ev.Nodes[1].Node)
	}
	return ""
}
