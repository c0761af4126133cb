package watchdog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/splitbrain"
)

// SplitBrainEngine is what SplitBrainCheck needs from splitbrain.Engine.
type SplitBrainEngine interface {
	Plan(ctx context.Context, resource string, p splitbrain.Policy) (*splitbrain.Plan, error)
	Resolve(ctx context.Context, resource string, opts splitbrain.ResolveOptions) (*splitbrain.Incident, error)
}

// StateReader reads the local DRBD state of a resource.
type StateReader interface {
	State(ctx context.Context, resource string) (drbd.Resource, error)
}

// SplitBrainCheck fails while the resource is in split brain (or cannot
// connect although nothing diverged) and remediates by resolving it.
// It runs on both controllers; the decision is the same on both (same
// evidence, pure splitbrain.Decide) and only its actor, the survivor, acts: on
// the victim Resolve returns splitbrain.ErrNotSurvivor and the check waits for
// the survivor's request, which the victim verifies before discarding.
type SplitBrainCheck struct {
	Engine   SplitBrainEngine
	Local    StateReader
	Resource string
	Policy   splitbrain.Policy
	// DryRun makes remediation plan and log only.
	DryRun bool
	Log    *slog.Logger

	mu     sync.Mutex
	active bool
	last   *splitbrain.Plan
	lastAt time.Time
}

// planReuse is how old a check's plan may be for the remediation that
// follows to act on it instead of gathering the evidence again (gathering
// takes seconds; the victim re-checks with fresh evidence anyway).
const planReuse = 10 * time.Second

// Name implements Check.
func (c *SplitBrainCheck) Name() string { return "drbd-split-brain" }

// Active reports whether the last run saw a split brain.
func (c *SplitBrainCheck) Active() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active
}

// LastPlan is the decision of the last run that saw a problem (nil if none).
func (c *SplitBrainCheck) LastPlan() *splitbrain.Plan {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

func (c *SplitBrainCheck) set(active bool, p *splitbrain.Plan) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active, c.last, c.lastAt = active, p, time.Now()
}

// nodeName is this node's name when Local knows it.
func (c *SplitBrainCheck) nodeName() string {
	if n, ok := c.Local.(interface{ NodeName() string }); ok {
		return n.NodeName()
	}
	return ""
}

// Run implements Check.
func (c *SplitBrainCheck) Run(ctx context.Context) error {
	r, err := c.Local.State(ctx, c.Resource)
	if err != nil {
		return err
	}
	// Connected, or still trying to connect (a peer that is down, or a
	// link that is cut): DRBD has found no split brain, which it would
	// report by dropping to StandAlone. Gathering evidence here would
	// run crm_mon, lvs, ip and a MariaDB probe every interval on the
	// survivor while it takes over from a crashed peer.
	if !r.Disconnected() || r.Connection == drbd.ConnConnecting && !r.SplitBrain {
		c.set(false, nil)
		return nil
	}
	plan, err := c.Engine.Plan(ctx, c.Resource, c.Policy)
	if errors.Is(err, splitbrain.ErrNoSplitBrain) {
		c.set(false, nil) // disconnected, nothing diverged: DRBD reconnects by itself
		return nil
	}
	active := plan != nil && plan.Decision.Relation == drbd.RelSplitBrain || errors.Is(err, splitbrain.ErrUnrelatedData)
	c.set(active, plan)
	if err != nil {
		return fmt.Errorf("%w on %s, no automatic resolution: %v", splitbrain.ErrSplitBrain, c.Resource, err)
	}
	return fmt.Errorf("%w on %s: %s, victim %q, actor %s: %s", splitbrain.ErrSplitBrain, c.Resource, plan.Decision.Action, plan.Decision.Victim, plan.Actor, plan.Decision.Reason)
}

// IsDryRun implements DryRunner.
func (c *SplitBrainCheck) IsDryRun() bool { return c.DryRun }

// Remediate implements Remediator. It is idempotent: Resolve re-gathers
// the evidence and does nothing once the pair is connected again.
func (c *SplitBrainCheck) Remediate(ctx context.Context) error {
	c.mu.Lock()
	plan, at := c.last, c.lastAt
	c.mu.Unlock()
	if plan == nil {
		return nil // the check failed for another reason (DRBD not readable): nothing to resolve
	}
	if self := c.nodeName(); plan.Refusal == "" && plan.Actor != "" && self != "" && plan.Actor != self {
		// The survivor acts and asks this node for its half; planning
		// again here would only load both nodes while it does.
		return nil
	}
	opts := splitbrain.ResolveOptions{DryRun: c.DryRun}
	if plan.Refusal == "" && time.Since(at) < planReuse {
		opts.Plan = plan
	}
	inc, err := c.Engine.Resolve(ctx, c.Resource, opts)
	switch {
	case errors.Is(err, splitbrain.ErrNotSurvivor), errors.Is(err, splitbrain.ErrNoSplitBrain):
		return nil // the survivor acts, or it already did
	case err != nil:
		return err
	}
	if c.Log != nil {
		c.Log.Info("split brain handled", "resource", c.Resource, "id", inc.ID, "result", inc.Result, "victim", inc.Victim)
	}
	return nil
}
