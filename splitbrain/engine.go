package splitbrain

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/pacemaker"
)

// Member is a node as the split-brain engine sees it: the local *Node, or
// the peer reached through its watchdog's HTTP endpoint.
type Member interface {
	NodeName() string
	Evidence(ctx context.Context, resource string) (NodeEvidence, error)
	State(ctx context.Context, resource string) (drbd.Resource, error)
	// Apply runs the member's half of a decision (see Node.Apply).
	Apply(ctx context.Context, req PeerRequest) (PeerResult, error)
}

// Engine detects, decides and resolves split brain for a pair. It runs on
// one node (Local) and reaches the other through Peer. Only the actor
// (the survivor) changes anything; the victim runs its half when the
// actor asks, after checking it agrees.
type Engine struct {
	Local  *Node
	Peer   Member
	Policy Policy
	// Incidents receives the actor's records; nil keeps none.
	Incidents *IncidentStore
	// WaitTimeout bounds the wait for UpToDate/UpToDate (default 10m).
	WaitTimeout time.Duration
	// PollInterval between state reads while waiting (default 500ms).
	PollInterval time.Duration
	Now          func() time.Time
	Log          *slog.Logger
}

// Plan is a decision and the exact commands that carry it out.
type Plan struct {
	ID       string   `json:"id"`
	Resource string   `json:"resource"`
	Evidence Evidence `json:"evidence"`
	Decision Decision `json:"decision"`
	// Actor is the node that must run the recovery ("" when nothing runs).
	Actor   string `json:"actor,omitempty"`
	Steps   []Step `json:"steps,omitempty"`
	Refusal string `json:"refusal,omitempty"`
}

// ResolveOptions tune Resolve.
type ResolveOptions struct {
	// DryRun plans and records nothing, changes nothing.
	DryRun bool
	// Expect, when set, is the decision an operator confirmed: Resolve
	// refuses if the fresh evidence leads to another action or victim.
	Expect *Decision
	// Plan, when set, is a plan made moments ago for this resource and
	// policy (the watchdog's check): Resolve acts on it instead of
	// gathering the evidence again. The victim still gathers its own and
	// refuses unless it reaches the same decision.
	Plan *Plan
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Engine) log() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Gather reads both nodes' evidence. The local node's evidence is
// required; an unreachable peer is recorded as such (Decide refuses).
func (e *Engine) Gather(ctx context.Context, resource string) (Evidence, error) {
	ev := Evidence{Resource: resource}
	// Both nodes at once: each read runs a handful of commands (DRBD,
	// crm_mon, ip, lvs, mysql), and the watchdog gathers several times
	// on the way to a resolution.
	var peer NodeEvidence
	var perr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		peer, perr = e.Peer.Evidence(ctx, resource)
	}()
	local, err := e.Local.Evidence(ctx, resource)
	<-done
	if err != nil {
		return ev, err
	}
	err = perr
	if errors.Is(err, drbd.ErrUnknownResource) {
		return ev, fmt.Errorf("peer %s: %w", e.Peer.NodeName(), err)
	}
	if err != nil {
		peer = NodeEvidence{Node: e.Peer.NodeName(), Error: err.Error(), CollectedAt: e.now()}
	}
	ev.Nodes = [2]NodeEvidence{local, peer}
	sort.Slice(ev.Nodes[:], func(i, j int) bool { return ev.Nodes[i].Node < ev.Nodes[j].Node })
	return ev, nil
}

// Plan gathers evidence, decides and lists the commands, changing
// nothing. With a refusal it returns the plan (evidence, partial decision,
// Refusal) and the error.
func (e *Engine) Plan(ctx context.Context, resource string, p Policy) (*Plan, error) {
	ev, err := e.Gather(ctx, resource)
	if err != nil {
		return nil, err
	}
	plan := &Plan{ID: IncidentID(e.now(), resource), Resource: resource, Evidence: ev}
	d, err := Decide(ev, p)
	plan.Decision = d
	if err != nil {
		plan.Refusal = err.Error()
		return plan, err
	}
	plan.Actor = Actor(ev, d)
	plan.Steps = RenderPlan(ev, d, resource, pacemaker.NamesFor(resource).Clone(), plan.ID, e.Local.Config.SplitBrain.PreserveDir)
	return plan, nil
}

// Resolve plans and, on the actor, carries out the plan: unmanage the DRBD
// clone, have the victim preserve and discard its data, reconnect the
// survivor, wait for UpToDate/UpToDate, re-manage and clean up. It records
// an incident for split brains it reports, refuses, resolves or fails.
// Only the actor acts: on the other node it returns ErrNotSurvivor.
func (e *Engine) Resolve(ctx context.Context, resource string, opts ResolveOptions) (*Incident, error) {
	var plan *Plan
	var err error
	if p := opts.Plan; p != nil && p.Resource == resource && p.Refusal == "" && p.Decision.Policy == e.Policy {
		plan = p
	} else {
		plan, err = e.Plan(ctx, resource, e.Policy)
	}
	if plan == nil {
		return nil, err
	}
	start := e.now()
	inc := &Incident{ID: plan.ID, Resource: resource, Node: e.Local.Name, Role: "actor", Started: start,
		Evidence: &plan.Evidence, Decision: &plan.Decision, Plan: plan.Steps,
		Victim: plan.Decision.Victim, Survivor: plan.Decision.Survivor,
		Timeline: []TimelineEntry{{Time: start, Node: e.Local.Name, What: "evidence gathered and decision taken: " + decisionSummary(plan)}}}
	switch {
	case err != nil:
		inc.Result, inc.Error = ResultRefused, err.Error()
		if !opts.DryRun && !errors.Is(err, ErrNoSplitBrain) {
			e.save(inc)
		}
		return inc, err
	case plan.Decision.Action == ActionReport:
		inc.Result = ResultReported
		if !opts.DryRun {
			e.save(inc)
		}
		return inc, nil
	case opts.DryRun:
		return inc, nil
	case opts.Expect != nil && (opts.Expect.Action != plan.Decision.Action || opts.Expect.Victim != plan.Decision.Victim):
		return inc, fmt.Errorf("%w: the evidence changed since the confirmed plan (%s, victim %q; now %s, victim %q): nothing changed, plan again",
			ErrDisagree, opts.Expect.Action, opts.Expect.Victim, plan.Decision.Action, plan.Decision.Victim)
	case plan.Actor != e.Local.Name:
		return inc, fmt.Errorf("%w: %s acts on this decision (victim %s)", ErrNotSurvivor, plan.Actor, cmp.Or(plan.Decision.Victim, "none"))
	}
	err = e.execute(ctx, plan, inc)
	inc.Finished = e.now()
	if err != nil {
		inc.Result, inc.Error = ResultFailed, err.Error()
	} else {
		inc.Result = ResultResolved
	}
	e.save(inc)
	return inc, err
}

func decisionSummary(p *Plan) string {
	if p.Refusal != "" {
		return "refused: " + p.Refusal
	}
	return fmt.Sprintf("%s (policy %s, victim %s): %s", p.Decision.Action, p.Decision.Policy.Name, cmp.Or(p.Decision.Victim, "none"), p.Decision.Reason)
}

func (e *Engine) save(inc *Incident) {
	if e.Incidents == nil {
		return
	}
	if path, err := e.Incidents.Save(inc); err != nil {
		e.log().Error("incident not recorded", "id", inc.ID, "err", err)
	} else {
		e.log().Info("incident recorded", "id", inc.ID, "result", inc.Result, "path", path)
	}
}

func (e *Engine) execute(ctx context.Context, plan *Plan, inc *Incident) error {
	var self NodeEvidence
	for _, n := range plan.Evidence.Nodes {
		if n.Node == e.Local.Name {
			self = n
		}
	}
	unmanaged := false
	defer func() {
		if unmanaged {
			// Hand DRBD back to Pacemaker even after a failure: the
			// victim's data is either untouched or preserved.
			tl, err := e.Local.RunSteps(context.WithoutCancel(ctx), managedSteps(e.Local.Name, pacemaker.NamesFor(plan.Resource).Clone(), true), self, nil)
			inc.Timeline = append(inc.Timeline, tl...)
			if err != nil {
				e.log().Error("DRBD clone left unmanaged", "clone", pacemaker.NamesFor(plan.Resource).Clone(), "err", err)
			}
		}
	}()
	peerDone := false
	for i := 0; i < len(plan.Steps); i++ {
		s := plan.Steps[i]
		switch {
		case s.Wait:
			if err := e.waitHealthy(ctx, plan.Resource, inc); err != nil {
				return err
			}
		case s.Node == e.Local.Name:
			if isManage(s) {
				continue // done by the deferred re-manage
			}
			tl, err := e.Local.RunSteps(ctx, []Step{s}, self, nil)
			inc.Timeline = append(inc.Timeline, tl...)
			if err != nil {
				return err
			}
			if isUnmanage(s) {
				unmanaged = true
			}
		case !peerDone:
			peerDone = true
			res, err := e.Peer.Apply(ctx, PeerRequest{ID: plan.ID, Resource: plan.Resource, From: e.Local.Name, Decision: plan.Decision, Evidence: plan.Evidence})
			inc.Timeline = append(inc.Timeline, res.Timeline...)
			inc.Preserved = res.Preserved
			if err != nil {
				return fmt.Errorf("peer %s: %w", e.Peer.NodeName(), err)
			}
			if plan.Decision.Action == ActionResolve && (res.Preserved == nil || !res.Preserved.Verified) {
				return fmt.Errorf("peer %s reported no verified preserved copy", e.Peer.NodeName())
			}
		}
	}
	return nil
}

func isUnmanage(s Step) bool {
	return pacemaker.IsSetManaged(s.Argv, false)
}

// isManage matches the re-manage and cleanup steps.
func isManage(s Step) bool {
	return pacemaker.IsResourceCommand(s.Argv) && !isUnmanage(s)
}

// waitHealthy polls both nodes until Connected, UpToDate/UpToDate.
func (e *Engine) waitHealthy(ctx context.Context, resource string, inc *Incident) error {
	timeout, every := e.WaitTimeout, e.PollInterval
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	if every == 0 {
		every = 500 * time.Millisecond
	}
	start := e.now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		a, errA := e.Local.State(ctx, resource)
		b, errB := e.Peer.State(ctx, resource)
		if errA == nil && errB == nil && a.Healthy() && b.Healthy() {
			inc.Timeline = append(inc.Timeline, TimelineEntry{Time: e.now(), Node: "both",
				What: fmt.Sprintf("Connected UpToDate/UpToDate %s after reconnect", e.now().Sub(start).Round(time.Millisecond))})
			return nil
		}
		last = fmt.Sprintf("%s: %s %s/%s %s; %s: %s %s/%s %s (errors: %v, %v)", e.Local.Name, a.Connection, a.Disk, a.PeerDisk, a.Replication,
			e.Peer.NodeName(), b.Connection, b.Disk, b.PeerDisk, b.Replication, errA, errB)
		select {
		case <-ctx.Done():
			return fmt.Errorf("not UpToDate/UpToDate after %s: %s", timeout, last)
		case <-time.After(every):
		}
	}
}

// ApplyForPeer serves a peer's request to run this node's half: it gathers
// the evidence again from both nodes, decides with this node's own policy,
// and runs Local.Apply only when it reaches the same decision.
func (e *Engine) ApplyForPeer(ctx context.Context, req PeerRequest) (PeerResult, error) {
	plan, err := e.Plan(ctx, req.Resource, e.Policy)
	if err != nil {
		return PeerResult{Node: e.Local.Name}, fmt.Errorf("%w: %s refuses: %v", ErrDisagree, e.Local.Name, err)
	}
	d := plan.Decision
	if d.Action != req.Decision.Action || d.Victim != req.Decision.Victim || plan.Actor != req.From {
		return PeerResult{Node: e.Local.Name}, fmt.Errorf("%w: %s decided %s with victim %q and actor %q, %s asked for %s with victim %q",
			ErrDisagree, e.Local.Name, d.Action, d.Victim, plan.Actor, req.From, req.Decision.Action, req.Decision.Victim)
	}
	// The plan just gathered this node's evidence: Apply need not read it again.
	for _, n := range plan.Evidence.Nodes {
		if n.Node == e.Local.Name {
			return e.Local.apply(ctx, req, n)
		}
	}
	return e.Local.Apply(ctx, req)
}
