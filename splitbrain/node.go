package splitbrain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/mysql"
	"github.com/haconf/haconf/pacemaker"
)

// BinlogProbe reads MariaDB's binary log position on a node.
type BinlogProbe interface {
	Binlog(ctx context.Context) (MySQLEvidence, error)
}

// MariaDB is the BinlogProbe of a controller's MariaDB: SHOW MASTER STATUS
// through the mysql client.
type MariaDB struct{ Probe mysql.Binlog }

// Binlog implements BinlogProbe.
func (m MariaDB) Binlog(ctx context.Context) (MySQLEvidence, error) {
	s, err := m.Probe.Status(ctx)
	if err != nil {
		return MySQLEvidence{}, err
	}
	return MySQLEvidence{Running: true, File: s.File, Position: s.Position}, nil
}

// Node is one controller as the split-brain engine sees it: its DRBD, and
// the evidence beside it (Pacemaker, the VIP, MariaDB, the backing disk).
// It reads state and evidence and runs its own half of a recovery.
type Node struct {
	drbd.Node
	// VIP is the virtual IP address without prefix ("" when unknown).
	VIP string
	// MySQL is nil when MariaDB is not part of the evidence.
	MySQL BinlogProbe
	// Incidents holds split-brain handler records and this node's
	// incident records; nil keeps none.
	Incidents *IncidentStore
	Now       func() time.Time
	Log       *slog.Logger
	// CopyTimeout bounds one copy or checksum of the backing device
	// (default 12h); other commands use the runner's timeout.
	CopyTimeout time.Duration
}

func (n *Node) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

func (n *Node) log() *slog.Logger {
	if n.Log != nil {
		return n.Log
	}
	return slog.New(slog.DiscardHandler)
}

// NodeName implements Member.
func (n *Node) NodeName() string { return n.Name }

// Evidence gathers what this node knows. DRBD state and generation
// identifiers are required; Pacemaker, VIP, MariaDB and backing-device
// facts are recorded as unknown when they cannot be read.
func (n *Node) Evidence(ctx context.Context, resource string) (NodeEvidence, error) {
	ev := NodeEvidence{Node: n.Name, Reachable: true, CollectedAt: n.now()}
	r, version, err := n.StateVersion(ctx, resource)
	if err != nil {
		return NodeEvidence{}, err
	}
	ev.State, ev.Version = r, version
	if ev.GI, err = (drbd.Adm{Run: n.Run}).GI(ctx, resource); err != nil {
		return NodeEvidence{}, fmt.Errorf("%s: generation identifiers: %w", n.Name, err)
	}
	if n.Incidents != nil {
		ev.SplitBrainAt = n.Incidents.LastDetected(resource, n.Name)
	}
	ev.Cluster = n.clusterView(ctx, resource)
	if n.VIP != "" {
		if out, err := n.Run.Run(ctx, "ip", "-o", "addr", "show"); err == nil {
			has := hasAddress(out, n.VIP)
			ev.HasVIP = &has
		}
	}
	if n.MySQL != nil {
		if m, err := n.MySQL.Binlog(ctx); err == nil {
			ev.MySQL = &m
		} else {
			ev.MySQL = &MySQLEvidence{Running: false}
			n.log().Debug("mysql evidence unavailable", "node", n.Name, "err", err)
		}
	}
	ev.Backing = n.backing(ctx)
	return ev, nil
}

func (n *Node) clusterView(ctx context.Context, resource string) *ClusterView {
	cl := pacemaker.Cluster{Run: n.Run}
	mon, err := cl.History(ctx)
	if err != nil {
		return &ClusterView{Error: err.Error()}
	}
	names := pacemaker.NamesFor(resource)
	clone := names.Clone()
	v := &ClusterView{Promoted: mon.Promoted(clone), Managed: mon.CloneManaged(clone)}
	if len(v.Promoted) == 1 {
		if op, ok := mon.LastOperation(v.Promoted[0], names.DRBD(), "promote"); ok {
			v.PromotedAt = op.LastChange
		}
	}
	for _, r := range mon.Resources {
		if isVIP(r.Agent) && r.Role != pacemaker.RoleStopped {
			v.VIPOn = append(v.VIPOn, r.Nodes...)
		}
	}
	for _, nd := range mon.Nodes {
		if nd.Online {
			v.Online = append(v.Online, nd.Name)
		}
	}
	if out, err := cl.Query(ctx, pacemaker.ScopeConstraints); err == nil {
		if owner, err := pacemaker.FenceOwner(out, resource, clone); err == nil {
			v.FenceOwner = owner
		} else {
			n.log().Debug("fence constraint unreadable", "node", n.Name, "err", err)
		}
	}
	return v
}

// isVIP reports whether a resource agent is a virtual IP: haconf's own
// (ocf:haconf:vip) or IPaddr2 (CIBs from before haconf had its agent).
func isVIP(agent string) bool {
	return agent == "ocf:haconf:vip" || agent == "ocf:heartbeat:IPaddr2"
}

// backing finds out whether the backing disk is an LVM volume, and its size.
func (n *Node) backing(ctx context.Context) Backing {
	b := Backing{Device: n.Config.Disk}
	out, err := n.Run.Run(ctx, "lvs", "--noheadings", "--nosuffix", "--units", "b", "--separator", ":", "-o", "vg_name,lv_name,lv_size", n.Config.Disk)
	if err == nil {
		f := strings.Split(strings.TrimSpace(string(out)), ":")
		if len(f) == 3 {
			b.VG, b.LV = strings.TrimSpace(f[0]), strings.TrimSpace(f[1])
			b.SizeBytes, _ = strconv.ParseInt(strings.TrimSpace(f[2]), 10, 64)
			return b
		}
	}
	if out, err := n.Run.Run(ctx, "blockdev", "--getsize64", n.Config.Disk); err == nil {
		b.SizeBytes, _ = strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	}
	return b
}

func hasAddress(ipOut []byte, addr string) bool {
	for _, line := range bytes.Split(ipOut, []byte("\n")) {
		f := strings.Fields(string(line))
		for i := 0; i+1 < len(f); i++ {
			if (f[i] == "inet" || f[i] == "inet6") && strings.Split(f[i+1], "/")[0] == addr {
				return true
			}
		}
	}
	return false
}

// PeerRequest asks the non-acting node to run its half of a decision.
type PeerRequest struct {
	ID       string   `json:"id"`
	Resource string   `json:"resource"`
	From     string   `json:"from"`
	Decision Decision `json:"decision"`
	// Evidence is the evidence the actor decided on.
	Evidence Evidence `json:"evidence"`
}

// PeerResult is what the non-acting node did.
type PeerResult struct {
	Node      string          `json:"node"`
	Preserved *Preserved      `json:"preserved,omitempty"`
	Timeline  []TimelineEntry `json:"timeline"`
}

// Preserved is where the victim's divergent data was kept.
type Preserved struct {
	Node string `json:"node"`
	Kind string `json:"kind"` // lvm-snapshot or copy
	// Path is absolute: the snapshot's block device or the copy's file.
	Path      string    `json:"path"`
	Source    string    `json:"source"`
	SizeBytes int64     `json:"size_bytes,omitempty"`
	SHA256    string    `json:"sha256,omitempty"`
	Verified  bool      `json:"verified"`
	At        time.Time `json:"at"`
}

// Apply runs this node's half of a decision: as the victim it demotes,
// preserves, and reconnects discarding its data; for a reconnect it
// connects. It re-reads its own evidence first and refuses when it is not
// the victim or when its generation identifiers changed since the
// decision (something wrote in between).
func (n *Node) Apply(ctx context.Context, req PeerRequest) (PeerResult, error) {
	self, err := n.Evidence(ctx, req.Resource)
	if err != nil {
		return PeerResult{Node: n.Name}, err
	}
	return n.apply(ctx, req, self)
}

// apply is Apply with this node's evidence freshly read.
func (n *Node) apply(ctx context.Context, req PeerRequest, self NodeEvidence) (PeerResult, error) {
	res := PeerResult{Node: n.Name}
	var decided NodeEvidence
	for _, e := range req.Evidence.Nodes {
		if e.Node == n.Name {
			decided = e
		}
	}
	if req.Decision.Action == ActionResolve {
		if req.Decision.Victim != n.Name {
			return res, fmt.Errorf("%w: asked to act as the peer of %s, but the victim is %s", ErrDisagree, n.Name, req.Decision.Victim)
		}
		if drbd.MaskRole(self.GI.Current) != drbd.MaskRole(decided.GI.Current) {
			return res, fmt.Errorf("%w: %s's generation changed since the decision (%s, decided on %s)", ErrDisagree, n.Name, self.GI.Raw, decided.GI.Raw)
		}
	}
	steps := PeerSteps(req.Decision, self, req.Resource, req.ID, n.Config.SplitBrain.PreserveDir)
	var pres *Preserved
	if req.Decision.Action == ActionResolve {
		kind, path := PreservePath(self.Backing, n.Config.SplitBrain.PreserveDir, req.Resource, req.ID)
		pres = &Preserved{Node: n.Name, Kind: kind, Path: path, Source: self.Backing.Device, SizeBytes: self.Backing.SizeBytes}
	}
	start := n.now()
	tl, err := n.RunSteps(ctx, steps, self, pres)
	res.Timeline = tl
	if pres != nil && pres.Verified {
		res.Preserved = pres
	}
	if n.Incidents != nil {
		inc := &Incident{ID: req.ID, Resource: req.Resource, Node: n.Name, Role: "peer", Started: start, Finished: n.now(),
			Result: ResultResolved, Victim: req.Decision.Victim, Survivor: req.Decision.Survivor, Preserved: res.Preserved,
			Decision: &req.Decision, Plan: steps, Timeline: tl}
		if err != nil {
			inc.Result, inc.Error = ResultFailed, err.Error()
		}
		if _, serr := n.Incidents.Save(inc); serr != nil {
			n.log().Error("incident not recorded", "id", req.ID, "err", serr)
		}
	}
	return res, err
}

// RunSteps runs this node's steps in order, verifying each step's check.
// It stops at the first failure; a failure before the discard step leaves
// the victim's data untouched.
func (n *Node) RunSteps(ctx context.Context, steps []Step, self NodeEvidence, pres *Preserved) ([]TimelineEntry, error) {
	var tl []TimelineEntry
	var sourceSum string
	for _, s := range steps {
		if s.Wait || s.Node != n.Name {
			continue
		}
		if drbd.IsAdm(s.Argv, "connect", "--discard-my-data") && (pres == nil || !pres.Verified) {
			err := fmt.Errorf("%s: refusing to discard data: it was not preserved", n.Name)
			tl = append(tl, TimelineEntry{Time: n.now(), Node: n.Name, What: "refused discard", Err: err.Error()})
			return tl, err
		}
		out, err := n.runStep(ctx, s)
		e := TimelineEntry{Time: n.now(), Node: n.Name, What: s.Why, Argv: s.Argv, Output: truncate(strings.TrimSpace(string(out)), 400)}
		if err == nil {
			err = n.check(ctx, s, out, self, pres, &sourceSum)
		}
		if err != nil {
			e.Err = err.Error()
			tl = append(tl, e)
			if s.Tolerate && !errors.Is(err, errCheck) {
				n.log().Info("tolerated step failure", "node", n.Name, "argv", s.Argv, "err", err)
				continue
			}
			return tl, fmt.Errorf("%s: %s: %w", n.Name, strings.Join(s.Argv, " "), err)
		}
		tl = append(tl, e)
	}
	return tl, nil
}

var errCheck = errors.New("check failed")

// runStep runs one step; copies and checksums of a whole device get the
// long CopyTimeout instead of the runner's default.
func (n *Node) runStep(ctx context.Context, s Step) ([]byte, error) {
	if s.Argv[0] == "dd" || s.Argv[0] == "sha256sum" || s.Argv[0] == "lvcreate" {
		t := n.CopyTimeout
		if t == 0 {
			t = 12 * time.Hour
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	switch {
	case drbd.IsAdmCommand(s.Argv):
		return drbd.Adm{Run: n.Run}.Do(ctx, s.Argv)
	case pacemaker.IsResourceCommand(s.Argv):
		return pacemaker.Cluster{Run: n.Run}.Do(ctx, s.Argv)
	}
	return n.Run.Run(ctx, s.Argv[0], s.Argv[1:]...)
}

func (n *Node) check(ctx context.Context, s Step, out []byte, self NodeEvidence, pres *Preserved, sourceSum *string) error {
	switch s.Check {
	case checkStandAlone:
		r, err := n.State(ctx, self.State.Name)
		if err != nil {
			return err
		}
		if r.Connection != drbd.ConnStandAlone {
			return fmt.Errorf("%w: %s is %s, not StandAlone", errCheck, n.Name, r.Connection)
		}
	case checkSpace:
		f := strings.Fields(string(out))
		if len(f) == 0 {
			return fmt.Errorf("%w: df printed nothing", errCheck)
		}
		avail, err := strconv.ParseInt(f[len(f)-1], 10, 64)
		if err != nil || avail < self.Backing.SizeBytes {
			return fmt.Errorf("%w: %s bytes free, %d needed for the copy", errCheck, f[len(f)-1], self.Backing.SizeBytes)
		}
	case checkSnapshot:
		if strings.TrimSpace(string(out)) == "" {
			return fmt.Errorf("%w: snapshot not listed", errCheck)
		}
		pres.Verified, pres.At = true, n.now()
	case checkSumSource:
		*sourceSum = firstField(out)
	case checkSumCopy:
		sum := firstField(out)
		if sum == "" || sum != *sourceSum {
			return fmt.Errorf("%w: copy sha256 %s differs from source %s", errCheck, sum, *sourceSum)
		}
		pres.SHA256, pres.Verified, pres.At = sum, true, n.now()
	}
	return nil
}

func firstField(b []byte) string {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// truncate shortens s to n bytes for a log or a timeline.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
