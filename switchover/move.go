package switchover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/pacemaker"
)

// Runner runs one command and returns its standard output.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// DRBDReader reads this node's view of a DRBD resource (*drbd.Node).
type DRBDReader interface {
	State(ctx context.Context, resource string) (drbd.Resource, error)
}

// Defaults.
const (
	DefaultTimeout = 5 * time.Minute
	DefaultPoll    = 2 * time.Second
	// lifetimeMargin is how much longer than the wait the constraint
	// lives: if haconf is killed, it expires by itself this long after
	// the wait would have ended.
	lifetimeMargin = 2 * time.Minute
	// commandTimeout bounds each crm_resource, cibadmin and crm_mon call.
	commandTimeout = 30 * time.Second
	// settleTimeout bounds crm_resource --wait after the constraint is
	// cleared.
	settleTimeout = time.Minute
)

// Gather reads the facts Decide needs: crm_mon, the location constraints
// and this node's DRBD state (whose error is recorded, not returned).
func Gather(ctx context.Context, run Runner, dr DRBDReader, local string, p Pair, now time.Time) (Facts, error) {
	f := Facts{Local: local, Now: now}
	mon, err := readMon(ctx, run)
	if err != nil {
		return f, err
	}
	f.Mon = mon
	cctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	out, err := pacemaker.Cluster{Run: run}.Query(cctx, pacemaker.ScopeConstraints)
	if err != nil {
		return f, fmt.Errorf("read the constraints: %w", err)
	}
	if f.Locations, err = pacemaker.ParseLocations(out); err != nil {
		return f, err
	}
	if dr == nil {
		f.DRBDError = "no DRBD reader"
		return f, nil
	}
	if r, err := dr.State(ctx, p.Resource); err != nil {
		f.DRBDError = err.Error()
	} else {
		f.DRBD = &r
	}
	return f, nil
}

func readMon(ctx context.Context, run Runner) (pacemaker.CrmMon, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	mon, err := pacemaker.Cluster{Run: run}.Status(ctx)
	if err != nil {
		return mon, fmt.Errorf("read the cluster state: %w", err)
	}
	return mon, nil
}

// Progress is how far a switchover got, from one crm_mon reading.
type Progress struct {
	Promoted bool     // DRBD Promoted on the target, and only there
	Started  []string // services Started on the target (only there)
	Done     bool     // both: the services run on the target
	// Abort is set when waiting longer would not help: a new failed
	// action of a moving resource, or the target left the cluster.
	Abort string
}

// Observe reads progress towards d.To in mon. Failed actions already in
// baseline do not count.
func Observe(p Pair, d Decision, baseline []pacemaker.MonFailedAction, mon pacemaker.CrmMon) Progress {
	var pr Progress
	pr.Promoted = slices.Equal(mon.Promoted(p.Clone()), []string{d.To})
	for _, s := range p.Services {
		if slices.Equal(mon.RunningOn(s), []string{d.To}) {
			pr.Started = append(pr.Started, s)
		}
	}
	pr.Done = pr.Promoted && len(pr.Started) == len(p.Services) && len(servicesNotOn(p, mon, d.To)) == 0
	if n, ok := mon.Node(d.To); !ok || !n.Online || n.Unclean {
		pr.Abort = d.To + " left the cluster"
	}
	for _, fa := range mon.FailedActions {
		if seen(baseline, fa) || !slices.Contains(p.resources(), opResource(fa.OpKey)) {
			continue
		}
		msg := fmt.Sprintf("%s failed on %s (%s", fa.OpKey, fa.Node, fa.ExitStatus)
		if fa.ExitReason != "" {
			msg += ": " + fa.ExitReason
		}
		pr.Abort = msg + ")"
		break
	}
	return pr
}

func seen(baseline []pacemaker.MonFailedAction, fa pacemaker.MonFailedAction) bool {
	return slices.ContainsFunc(baseline, func(b pacemaker.MonFailedAction) bool {
		return b.OpKey == fa.OpKey && b.Node == fa.Node && b.Task == fa.Task && b.LastChange.Equal(fa.LastChange)
	})
}

// Commands are the crm_resource commands of a switchover to d.To.
type Commands struct {
	Move, Clear, Settle []string
}

// Mover carries out a switchover decided by Decide.
type Mover struct {
	Run  Runner
	Pair Pair
	// Timeout bounds the wait for the services to run on the target
	// (DefaultTimeout when zero); Poll is how often crm_mon is read.
	Timeout time.Duration
	Poll    time.Duration
	// OnEvent, when set, is told each step as it happens.
	OnEvent func(Event)
	Log     *slog.Logger
}

// Event is one step of a switchover.
type Event struct {
	Elapsed time.Duration
	Message string
}

// Result is what a switchover did.
type Result struct {
	From string `json:"from"`
	To   string `json:"to"`
	// PromotedAfter and StartedAfter are when DRBD was seen Promoted and
	// every service Started on the target (0: not seen).
	PromotedAfter time.Duration `json:"promoted_after"`
	StartedAfter  time.Duration `json:"started_after"`
	Total         time.Duration `json:"total"`
	// Cleared is set once the temporary constraint is gone.
	Cleared bool    `json:"cleared"`
	Events  []Event `json:"events"`
	// Final is where things ran at the end.
	Final string `json:"final,omitempty"`
}

// ErrAborted wraps why a switchover stopped before the services ran on
// the target (timeout, interruption, a failure). The temporary constraint
// has been removed unless the error says otherwise.
var ErrAborted = errors.New("switchover aborted")

func (m *Mover) timeout() time.Duration {
	if m.Timeout > 0 {
		return m.Timeout
	}
	return DefaultTimeout
}

func (m *Mover) poll() time.Duration {
	if m.Poll > 0 {
		return m.Poll
	}
	return DefaultPoll
}

func (m *Mover) log() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Lifetime is how long the temporary constraint lives: the wait plus a
// margin, so it outlives a normal run and ends soon after a killed one.
func (m *Mover) Lifetime() time.Duration { return m.timeout() + lifetimeMargin }

// Commands returns the exact commands a switchover to to runs.
func (m *Mover) Commands(to string) Commands {
	clone := m.Pair.Clone()
	return Commands{
		Move:   pacemaker.MoveArgv(clone, to, m.Lifetime()),
		Clear:  pacemaker.ClearArgv(clone),
		Settle: pacemaker.WaitArgv(settleTimeout),
	}
}

// Switch moves the services to d.To and removes the temporary constraint,
// whatever happens: when the services run on the target, on timeout, on
// a failure and when ctx is cancelled (the removal itself is not
// cancelled). baseline is the crm_mon reading the decision was made from.
func (m *Mover) Switch(ctx context.Context, d Decision, baseline pacemaker.CrmMon) (Result, error) {
	if !d.OK() {
		return Result{}, fmt.Errorf("switchover: the decision does not allow it")
	}
	res := Result{From: d.From, To: d.To}
	start := time.Now()
	event := func(format string, args ...any) {
		e := Event{Elapsed: time.Since(start), Message: fmt.Sprintf(format, args...)}
		res.Events = append(res.Events, e)
		m.log().Info("switchover", "elapsed", e.Elapsed, "event", e.Message)
		if m.OnEvent != nil {
			m.OnEvent(e)
		}
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("%w before it started: %w", ErrAborted, err)
	}
	cmds := m.Commands(d.To)
	// The move and the clear run to completion even when ctx is cancelled:
	// a half-done crm_resource would leave haconf not knowing whether the
	// constraint exists.
	bg := context.WithoutCancel(ctx)
	_, moveErr := m.run(bg, cmds.Move)
	if moveErr != nil {
		// crm_resource may have written the constraint before it failed.
		cleared, clearErr := m.clear(bg, cmds.Clear)
		res.Cleared = cleared
		res.Total = time.Since(start)
		return res, errors.Join(fmt.Errorf("%w: %w", ErrAborted, moveErr), clearErr)
	}
	event("constraint cli-prefer-%s prefers %s for the promoted DRBD instance (expires by itself in %s)", m.Pair.Clone(), d.To, m.Lifetime())

	waitErr := m.wait(ctx, d, baseline.FailedActions, &res, start, event)

	cleared, clearErr := m.clear(bg, cmds.Clear)
	res.Cleared = cleared
	if cleared {
		event("constraint removed (crm_resource --clear)")
	}
	if waitErr == nil && clearErr == nil {
		sctx, cancel := context.WithTimeout(bg, settleTimeout+commandTimeout)
		_, err := m.Run.Run(sctx, cmds.Settle[0], cmds.Settle[1:]...)
		cancel()
		if err != nil {
			// Not fatal: something else may keep the cluster busy; what
			// counts is where the services are.
			m.log().Warn("cluster not settled after the switchover", "err", err)
		}
	}
	final, err := readMon(bg, m.Run)
	if err == nil {
		res.Final = Placement(m.Pair, final)
		if waitErr == nil && !Observe(m.Pair, d, baseline.FailedActions, final).Done {
			waitErr = fmt.Errorf("%w: the services did not stay on %s after the constraint was removed (%s): something prefers another node (haconf status)", ErrAborted, d.To, res.Final)
		}
	}
	res.Total = time.Since(start)
	return res, errors.Join(waitErr, clearErr)
}

func (m *Mover) wait(ctx context.Context, d Decision, baseline []pacemaker.MonFailedAction, res *Result, start time.Time, event func(string, ...any)) error {
	deadline := time.NewTimer(m.timeout())
	defer deadline.Stop()
	tick := time.NewTicker(m.poll())
	defer tick.Stop()
	var started []string
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: interrupted (%w)", ErrAborted, ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("%w: the services did not run on %s within %s", ErrAborted, d.To, m.timeout())
		case <-tick.C:
		}
		mon, err := readMon(ctx, m.Run)
		if err != nil {
			// crm_mon fails briefly while a DC is elected; keep waiting.
			m.log().Warn("crm_mon failed during the switchover", "err", err)
			continue
		}
		pr := Observe(m.Pair, d, baseline, mon)
		if pr.Promoted && res.PromotedAfter == 0 {
			res.PromotedAfter = time.Since(start)
			event("DRBD %s Promoted on %s", m.Pair.Resource, d.To)
		}
		for _, s := range pr.Started {
			if !slices.Contains(started, s) {
				started = append(started, s)
				event("%s started on %s", s, d.To)
			}
		}
		if pr.Abort != "" {
			return fmt.Errorf("%w: %s", ErrAborted, pr.Abort)
		}
		if pr.Done {
			res.StartedAfter = time.Since(start)
			return nil
		}
	}
}

// clear removes the temporary constraint and checks that it is gone,
// retrying a few times (the CIB may be busy).
func (m *Mover) clear(ctx context.Context, args []string) (bool, error) {
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * time.Second)
		}
		if _, err := m.run(ctx, args); err != nil {
			last = err
			continue
		}
		left, err := m.leftover(ctx)
		if err != nil {
			last = err
			continue
		}
		if len(left) == 0 {
			return true, nil
		}
		last = fmt.Errorf("still in the CIB: %s", strings.Join(left, ", "))
	}
	return false, fmt.Errorf("the temporary constraint could not be removed (%w); it expires by itself within %s, or run: %s",
		last, m.Lifetime(), strings.Join(args, " "))
}

// leftover lists the crm_resource constraints on the DRBD clone.
func (m *Mover) leftover(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	out, err := pacemaker.Cluster{Run: m.Run}.Query(ctx, pacemaker.ScopeConstraints)
	if err != nil {
		return nil, err
	}
	ls, err := pacemaker.ParseLocations(out)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, l := range ls {
		if l.CLI() && l.Resource == m.Pair.Clone() {
			ids = append(ids, l.ID)
		}
	}
	return ids, nil
}

func (m *Mover) run(ctx context.Context, argv []string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	return pacemaker.Cluster{Run: m.Run}.Do(ctx, argv)
}

// Placement says where DRBD is Promoted and where each service runs, e.g.
// "DRBD r0 Promoted on ctl2; fs-haconf, mariadb, vip, haproxy on ctl2".
func Placement(p Pair, mon pacemaker.CrmMon) string {
	byNode := map[string][]string{}
	var order []string
	for _, s := range p.Services {
		on := nodesOrNone(mon.RunningOn(s))
		if on == "no node" {
			on = "stopped"
		}
		if _, ok := byNode[on]; !ok {
			order = append(order, on)
		}
		byNode[on] = append(byNode[on], s)
	}
	parts := []string{fmt.Sprintf("DRBD %s Promoted on %s", p.Resource, nodesOrNone(mon.Promoted(p.Clone())))}
	for _, on := range order {
		if on == "stopped" {
			parts = append(parts, strings.Join(byNode[on], ", ")+" stopped")
		} else {
			parts = append(parts, strings.Join(byNode[on], ", ")+" on "+on)
		}
	}
	return strings.Join(parts, "; ")
}
