package drbd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/haconf/haconf/pacemaker"
)

// Agent is the OCF resource agent for the DRBD resource as a promotable
// clone (ocf:haconf:drbd). It does what ocf:linbit:drbd does for a
// two-node, single-primary resource - up/down, primary/secondary, and the
// promotion score that tells Pacemaker which copy is good - in one process
// per action, reading /proc/drbd directly. ocf:linbit:drbd is a shell
// script that took 2-9 s per action on a loaded node, and a failover runs
// five of them (notifications included) before MariaDB can start.
//
// Promotion scores follow ocf:linbit:drbd's defaults: 10000 when this disk
// is UpToDate and Primary or connected (its data is as good as it gets),
// 1000 when UpToDate with the peer unknown (good data, but fencing must
// keep the peer from diverging), 10 when diskless with an UpToDate peer,
// and no score (never promote) otherwise.
type Agent struct {
	Resource string
	// Minor is the device minor; -1 asks drbdadm (8.4's /proc/drbd names
	// minors, not resources).
	Minor int
	// Attribute is the promotion score's node attribute (master-<id>).
	Attribute string
	// Node is this node's name in the cluster.
	Node string
	// Clone is the promotable clone's id, used for the fence constraint.
	Clone string
	Run   Runner
	// ReadProc reads /proc/drbd.
	ReadProc func() ([]byte, error)
}

// Promotion scores (see Agent).
const (
	ScoreBest       = 10000
	ScoreLocalOK    = 1000
	ScoreOnlyRemote = 10
	scoreNone       = -1
)

// AgentFromEnv reads the agent's parameters from Pacemaker's environment.
func AgentFromEnv(env pacemaker.OCFEnv, run Runner) *Agent {
	a := &Agent{Resource: env.Param("drbd_resource", ""), Minor: -1, Run: run, ReadProc: func() ([]byte, error) { return os.ReadFile("/proc/drbd") }}
	if m, err := strconv.Atoi(env.Param("minor", "")); err == nil && m >= 0 {
		a.Minor = m
	}
	id, _, _ := strings.Cut(env.Getenv("OCF_RESOURCE_INSTANCE"), ":")
	if id == "" {
		id = "drbd-" + a.Resource
	}
	a.Attribute = "master-" + id
	a.Clone = env.Param("clone", id+"-clone")
	a.Node = env.Getenv("OCF_RESKEY_CRM_meta_on_node")
	if a.Node == "" {
		h, _ := os.Hostname()
		a.Node, _, _ = strings.Cut(h, ".")
	}
	return a
}

// MetaData implements pacemaker.Agent.
func (a *Agent) MetaData() string {
	return pacemaker.OCFMetaData{
		Name:  "drbd",
		Short: "DRBD resource as a promotable clone (haconf)",
		Long:  "Brings a DRBD resource up and down, promotes and demotes it, and keeps the promotion score that tells Pacemaker which copy is good.",
		Params: []pacemaker.OCFParam{
			{Name: "drbd_resource", Short: "DRBD resource name", Required: true},
			{Name: "minor", Short: "device minor (default: asked from drbdadm)"},
			{Name: "clone", Short: "the promotable clone's id (default: <resource id>-clone)"},
		},
		Start: 240 * time.Second, Stop: 100 * time.Second,
		Monitor: 20 * time.Second, MonitorInterval: 31 * time.Second,
		Promotable: true,
	}.String()
}

// Validate implements pacemaker.Agent.
func (a *Agent) Validate() error {
	if a.Resource == "" || strings.ContainsAny(a.Resource, " /\t\n") {
		return pacemaker.OCFFail(pacemaker.OCFErrConfigured, "parameter drbd_resource=%q: must be a DRBD resource name", a.Resource)
	}
	return nil
}

// state reads the resource's state; up is false when the module is not
// loaded or the resource is not configured.
func (a *Agent) state(ctx context.Context) (r Resource, up bool, err error) {
	b, err := a.ReadProc()
	if errors.Is(err, fs.ErrNotExist) {
		return Resource{}, false, nil
	}
	if err != nil {
		return Resource{}, false, err
	}
	st, err := ParseProcDRBD(b)
	if err != nil {
		return Resource{}, false, err
	}
	if !Is84(st.Version) {
		out, err := a.Run.Run(ctx, "drbdsetup", "status", "--json", a.Resource)
		if err != nil {
			// drbdsetup fails for a resource that is not configured.
			return Resource{}, false, nil
		}
		st9, err := ParseStatusJSON(out)
		if err != nil {
			return Resource{}, false, err
		}
		r, ok := st9.ByName(a.Resource, 0)
		return r, ok && r.Connection != ConnUnconfigured, nil
	}
	if a.Minor < 0 {
		out, err := a.Run.Run(ctx, "drbdadm", "sh-minor", a.Resource)
		if err != nil {
			return Resource{}, false, pacemaker.OCFFail(pacemaker.OCFErrConfigured, "resource %s is not in the DRBD configuration: %v", a.Resource, err)
		}
		if a.Minor, err = strconv.Atoi(strings.TrimSpace(string(out))); err != nil {
			return Resource{}, false, fmt.Errorf("drbdadm sh-minor %s: %q", a.Resource, out)
		}
	}
	for _, r := range st.Resources {
		if r.Minor == a.Minor {
			r.Name = a.Resource
			return r, r.Connection != ConnUnconfigured, nil
		}
	}
	return Resource{}, false, nil
}

// PromotionScore is the score a node with state r should have (-1: none).
func PromotionScore(r Resource) int {
	switch {
	case r.Disk == DiskUpToDate && (r.Role == RolePrimary || r.Connection == ConnConnected):
		return ScoreBest
	case r.Disk == DiskUpToDate:
		return ScoreLocalOK
	case r.Disk == DiskDiskless && r.Connection == ConnConnected && r.PeerDisk == DiskUpToDate:
		return ScoreOnlyRemote
	}
	return scoreNone
}

// setScore writes (or with -1 deletes) this node's promotion score.
func (a *Agent) setScore(ctx context.Context, score int) error {
	args := []string{"-N", a.Node, "-n", a.Attribute, "-l", "reboot"}
	if score < 0 {
		args = append(args, "-D")
	} else {
		args = append(args, "-v", strconv.Itoa(score))
	}
	_, err := a.Run.Run(ctx, "crm_attribute", args...)
	return err
}

// FenceConstraintID is the location constraint the fence-peer handler
// adds (crm-fence-peer.sh's name, so either handler's is found).
func FenceConstraintID(resource, clone string) string {
	return "drbd-fence-by-handler-" + resource + "-" + clone
}

// unfence removes a fence-peer constraint once both disks are UpToDate
// and connected: its reason (the peer's data is outdated) is gone. The
// after-resync handler does it too, but misses it when the resync ends
// before Pacemaker runs on the sync target.
func (a *Agent) unfence(ctx context.Context) {
	id := FenceConstraintID(a.Resource, a.Clone)
	if _, err := a.Run.Run(ctx, "cibadmin", "--query", "--scope", "constraints", "--xpath", "//rsc_location[@id='"+id+"']"); err != nil {
		return // not there (or no CIB): nothing to do
	}
	a.Run.Run(ctx, "cibadmin", "--delete", "--scope", "constraints", "--xml-text", "<rsc_location id='"+id+"'/>")
}

// observe updates the promotion score (and the fence constraint) from r.
func (a *Agent) observe(ctx context.Context, r Resource) error {
	if r.Healthy() {
		a.unfence(ctx)
	}
	return a.setScore(ctx, PromotionScore(r))
}

// Monitor implements pacemaker.Agent.
func (a *Agent) Monitor(ctx context.Context) error {
	r, up, err := a.state(ctx)
	if err != nil {
		return err
	}
	if !up {
		a.setScore(ctx, scoreNone)
		return pacemaker.ErrNotRunning
	}
	if err := a.observe(ctx, r); err != nil {
		return err
	}
	if r.Role == RolePrimary {
		return pacemaker.RunningPromoted
	}
	return nil
}

// Start implements pacemaker.Agent: the resource up, Secondary.
func (a *Agent) Start(ctx context.Context) error {
	r, up, err := a.state(ctx)
	if err != nil {
		return err
	}
	if !up {
		if _, err := a.ReadProc(); errors.Is(err, fs.ErrNotExist) {
			if _, err := a.Run.Run(ctx, "modprobe", "drbd"); err != nil {
				return pacemaker.OCFFail(pacemaker.OCFErrInstalled, "load the DRBD module: %v", err)
			}
		}
		if _, err := a.Run.Run(ctx, "drbdadm", "up", a.Resource); err != nil {
			return fmt.Errorf("drbdadm up %s: %w", a.Resource, err)
		}
		if r, up, err = a.state(ctx); err != nil {
			return err
		}
		if !up {
			return fmt.Errorf("%s is not up after drbdadm up", a.Resource)
		}
	}
	return a.observe(ctx, r)
}

// Stop implements pacemaker.Agent: Secondary, then down.
func (a *Agent) Stop(ctx context.Context) error {
	r, up, err := a.state(ctx)
	if err != nil {
		return err
	}
	if up {
		if r.Role == RolePrimary {
			if _, err := a.Run.Run(ctx, "drbdadm", "secondary", a.Resource); err != nil {
				return fmt.Errorf("drbdadm secondary %s (is the device still in use?): %w", a.Resource, err)
			}
		}
		if _, err := a.Run.Run(ctx, "drbdadm", "down", a.Resource); err != nil {
			return fmt.Errorf("drbdadm down %s: %w", a.Resource, err)
		}
		if _, up, err = a.state(ctx); err != nil || up {
			return fmt.Errorf("%s still up after drbdadm down (%v)", a.Resource, err)
		}
	}
	a.setScore(ctx, scoreNone)
	return nil
}

// Promote implements pacemaker.PromotableAgent. With fencing configured,
// DRBD runs the fence-peer handler first when the peer is unreachable.
func (a *Agent) Promote(ctx context.Context) error {
	r, up, err := a.state(ctx)
	if err != nil {
		return err
	}
	if !up {
		return pacemaker.OCFFail(pacemaker.OCFNotRunning, "%s is not up", a.Resource)
	}
	if r.Role != RolePrimary {
		if _, err := a.Run.Run(ctx, "drbdadm", "primary", a.Resource); err != nil {
			return fmt.Errorf("drbdadm primary %s (disk %s, peer %s %s): %w", a.Resource, r.Disk, r.Connection, r.PeerDisk, err)
		}
		if r, _, err = a.state(ctx); err != nil {
			return err
		}
		if r.Role != RolePrimary {
			return fmt.Errorf("%s is %s after drbdadm primary", a.Resource, r.Role)
		}
	}
	return a.observe(ctx, r)
}

// Demote implements pacemaker.PromotableAgent.
func (a *Agent) Demote(ctx context.Context) error {
	r, up, err := a.state(ctx)
	if err != nil {
		return err
	}
	if !up {
		return pacemaker.OCFFail(pacemaker.OCFNotRunning, "%s is not up", a.Resource)
	}
	if r.Role == RolePrimary {
		if _, err := a.Run.Run(ctx, "drbdadm", "secondary", a.Resource); err != nil {
			return fmt.Errorf("drbdadm secondary %s (is the device still in use?): %w", a.Resource, err)
		}
		if r, _, err = a.state(ctx); err != nil {
			return err
		}
	}
	return a.observe(ctx, r)
}

// Notify implements pacemaker.PromotableAgent: only the score is kept up
// to date (this agent needs no notifications; they are harmless).
func (a *Agent) Notify(ctx context.Context) error {
	r, up, err := a.state(ctx)
	if err != nil || !up {
		return err
	}
	return a.observe(ctx, r)
}
