package agents

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/pacemaker"
)

// DRBD is the OCF resource agent for the DRBD resource as a promotable
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
type DRBD struct {
	Resource string
	// Minor is the device minor; -1 asks drbdadm (8.4's /proc/drbd names
	// minors, not resources).
	Minor int
	// Attribute is the promotion score's node attribute
	// (pacemaker.PromotionAttrOf the primitive's id).
	Attribute string
	// Node is this node's name in the cluster.
	Node string
	// Clone is the promotable clone's id, used for the fence constraint.
	Clone string
	// Run runs drbdadm and drbdsetup (through drbd.Adm), Pacemaker's
	// tools (through pacemaker.Cluster) and modprobe.
	Run Runner
	// ReadProc reads /proc/drbd.
	ReadProc func() ([]byte, error)
}

// Promotion scores (see DRBD).
const (
	ScoreBest       = 10000
	ScoreLocalOK    = 1000
	ScoreOnlyRemote = 10
	scoreNone       = -1
)

// DRBDFromEnv reads the agent's parameters from Pacemaker's environment.
func DRBDFromEnv(env pacemaker.OCFEnv, run Runner) *DRBD {
	a := &DRBD{Resource: env.Param("drbd_resource", ""), Minor: -1, Run: run, ReadProc: func() ([]byte, error) { return os.ReadFile("/proc/drbd") }}
	if m, err := strconv.Atoi(env.Param("minor", "")); err == nil && m >= 0 {
		a.Minor = m
	}
	id, _, _ := strings.Cut(env.Getenv("OCF_RESOURCE_INSTANCE"), ":")
	if id == "" {
		id = pacemaker.NamesFor(a.Resource).DRBD()
	}
	a.Attribute = pacemaker.PromotionAttrOf(id)
	a.Clone = env.Param("clone", pacemaker.CloneOf(id))
	a.Node = env.Getenv("OCF_RESKEY_CRM_meta_on_node")
	if a.Node == "" {
		h, _ := os.Hostname()
		a.Node, _, _ = strings.Cut(h, ".")
	}
	return a
}

// MetaData implements pacemaker.Agent.
func (a *DRBD) MetaData() string {
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
func (a *DRBD) Validate() error {
	if a.Resource == "" || strings.ContainsAny(a.Resource, " /\t\n") {
		return pacemaker.OCFFail(pacemaker.OCFErrConfigured, "parameter drbd_resource=%q: must be a DRBD resource name", a.Resource)
	}
	return nil
}

func (a *DRBD) adm() drbd.Adm              { return drbd.Adm{Run: a.Run} }
func (a *DRBD) cluster() pacemaker.Cluster { return pacemaker.Cluster{Run: a.Run} }

// state reads the resource's state; up is false when the module is not
// loaded or the resource is not configured.
func (a *DRBD) state(ctx context.Context) (r drbd.Resource, up bool, err error) {
	b, err := a.ReadProc()
	if errors.Is(err, fs.ErrNotExist) {
		return drbd.Resource{}, false, nil
	}
	if err != nil {
		return drbd.Resource{}, false, err
	}
	st, err := drbd.ParseProcDRBD(b)
	if err != nil {
		return drbd.Resource{}, false, err
	}
	if !drbd.Is84(st.Version) {
		out, err := a.adm().StatusJSON(ctx, a.Resource)
		if err != nil {
			// drbdsetup fails for a resource that is not configured.
			return drbd.Resource{}, false, nil
		}
		st9, err := drbd.ParseStatusJSON(out)
		if err != nil {
			return drbd.Resource{}, false, err
		}
		r, ok := st9.ByName(a.Resource, 0)
		return r, ok && r.Connection != drbd.ConnUnconfigured, nil
	}
	if a.Minor < 0 {
		m, err := a.adm().Minor(ctx, a.Resource)
		if err != nil {
			return drbd.Resource{}, false, pacemaker.OCFFail(pacemaker.OCFErrConfigured, "resource %s is not in the DRBD configuration: %v", a.Resource, err)
		}
		a.Minor = m
	}
	for _, r := range st.Resources {
		if r.Minor == a.Minor {
			r.Name = a.Resource
			return r, r.Connection != drbd.ConnUnconfigured, nil
		}
	}
	return drbd.Resource{}, false, nil
}

// PromotionScore is the score a node with state r should have (-1: none).
func PromotionScore(r drbd.Resource) int {
	switch {
	case r.Disk == drbd.DiskUpToDate && (r.Role == drbd.RolePrimary || r.Connection == drbd.ConnConnected):
		return ScoreBest
	case r.Disk == drbd.DiskUpToDate:
		return ScoreLocalOK
	case r.Disk == drbd.DiskDiskless && r.Connection == drbd.ConnConnected && r.PeerDisk == drbd.DiskUpToDate:
		return ScoreOnlyRemote
	}
	return scoreNone
}

// setScore writes (or with -1 deletes) this node's promotion score.
func (a *DRBD) setScore(ctx context.Context, score int) error {
	return a.cluster().SetPromotionScore(ctx, a.Node, a.Attribute, score)
}

// unfence removes a fence-peer constraint once both disks are UpToDate
// and connected: its reason (the peer's data is outdated) is gone. The
// after-resync handler does it too, but misses it when the resync ends
// before Pacemaker runs on the sync target.
func (a *DRBD) unfence(ctx context.Context) {
	id := pacemaker.FenceConstraintID(a.Resource, a.Clone)
	if !a.cluster().HasConstraint(ctx, id) {
		return // not there (or no CIB): nothing to do
	}
	a.cluster().DeleteConstraint(ctx, id)
}

// observe updates the promotion score (and the fence constraint) from r.
func (a *DRBD) observe(ctx context.Context, r drbd.Resource) error {
	if r.Healthy() {
		a.unfence(ctx)
	}
	return a.setScore(ctx, PromotionScore(r))
}

// Monitor implements pacemaker.Agent.
func (a *DRBD) Monitor(ctx context.Context) error {
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
	if r.Role == drbd.RolePrimary {
		return pacemaker.RunningPromoted
	}
	return nil
}

// Start implements pacemaker.Agent: the resource up, Secondary.
func (a *DRBD) Start(ctx context.Context) error {
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
		if err := a.adm().Up(ctx, a.Resource); err != nil {
			return fmt.Errorf("bring %s up: %w", a.Resource, err)
		}
		if r, up, err = a.state(ctx); err != nil {
			return err
		}
		if !up {
			return fmt.Errorf("%s is not up after bringing it up", a.Resource)
		}
	}
	return a.observe(ctx, r)
}

// Stop implements pacemaker.Agent: Secondary, then down.
func (a *DRBD) Stop(ctx context.Context) error {
	r, up, err := a.state(ctx)
	if err != nil {
		return err
	}
	if up {
		if r.Role == drbd.RolePrimary {
			if err := a.adm().Secondary(ctx, a.Resource); err != nil {
				return fmt.Errorf("demote %s (is the device still in use?): %w", a.Resource, err)
			}
		}
		if err := a.adm().Down(ctx, a.Resource); err != nil {
			return fmt.Errorf("take %s down: %w", a.Resource, err)
		}
		if _, up, err = a.state(ctx); err != nil || up {
			return fmt.Errorf("%s still up after taking it down (%v)", a.Resource, err)
		}
	}
	a.setScore(ctx, scoreNone)
	return nil
}

// Promote implements pacemaker.PromotableAgent. With fencing configured,
// DRBD runs the fence-peer handler first when the peer is unreachable.
func (a *DRBD) Promote(ctx context.Context) error {
	r, up, err := a.state(ctx)
	if err != nil {
		return err
	}
	if !up {
		return pacemaker.OCFFail(pacemaker.OCFNotRunning, "%s is not up", a.Resource)
	}
	if r.Role != drbd.RolePrimary {
		if err := a.adm().Primary(ctx, a.Resource, false); err != nil {
			return fmt.Errorf("promote %s (disk %s, peer %s %s): %w", a.Resource, r.Disk, r.Connection, r.PeerDisk, err)
		}
		if r, _, err = a.state(ctx); err != nil {
			return err
		}
		if r.Role != drbd.RolePrimary {
			return fmt.Errorf("%s is %s after promoting it", a.Resource, r.Role)
		}
	}
	return a.observe(ctx, r)
}

// Demote implements pacemaker.PromotableAgent.
func (a *DRBD) Demote(ctx context.Context) error {
	r, up, err := a.state(ctx)
	if err != nil {
		return err
	}
	if !up {
		return pacemaker.OCFFail(pacemaker.OCFNotRunning, "%s is not up", a.Resource)
	}
	if r.Role == drbd.RolePrimary {
		if err := a.adm().Secondary(ctx, a.Resource); err != nil {
			return fmt.Errorf("demote %s (is the device still in use?): %w", a.Resource, err)
		}
		if r, _, err = a.state(ctx); err != nil {
			return err
		}
	}
	return a.observe(ctx, r)
}

// Notify implements pacemaker.PromotableAgent: only the score is kept up
// to date (this agent needs no notifications; they are harmless).
func (a *DRBD) Notify(ctx context.Context) error {
	r, up, err := a.state(ctx)
	if err != nil || !up {
		return err
	}
	return a.observe(ctx, r)
}
