// Package watchdog is haconf's daemon loop: it runs checks on a schedule,
// acts on a check only after N consecutive failures, clears it after M
// consecutive successes, and remediates idempotently with a cooldown. Its
// first job is split-brain resolution (SplitBrainCheck); backups and
// service checks plug in through the Check interface.
//
// It also serves the node's HTTP endpoint (/healthz, /status, /metrics and
// the peer API the split-brain engine uses to reach the other controller).
package watchdog

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Check observes one thing. Run returns nil when it is healthy. It must
// honour ctx (the watchdog gives every run a timeout).
type Check interface {
	Name() string
	Run(ctx context.Context) error
}

// Remediator is a Check that can repair what it observes. Remediate must
// be idempotent: the watchdog calls it again after the cooldown while the
// check keeps failing.
type Remediator interface {
	Remediate(ctx context.Context) error
}

// DryRunner is a Remediator that may be set to plan and log only
// (haconf watchdog --dry-run). Its remediations then do not happen: the
// watchdog counts them apart (CheckState.DryRunRemediations), so that
// Remediations and haconf_watchdog_remediations_total count only the
// ones that did.
type DryRunner interface {
	IsDryRun() bool
}

// Spec schedules one check.
type Spec struct {
	Check    Check
	Interval time.Duration // between the end of one run and the next (default 2s)
	Timeout  time.Duration // per run (default Interval, at least 1s)
	// FailuresBeforeAction (N) consecutive failures mark the check failing
	// and allow remediation (default 3).
	FailuresBeforeAction int
	// SuccessesBeforeClear (M) consecutive successes clear it (default 2).
	SuccessesBeforeClear int
	// Cooldown is the minimum time between remediations while the check
	// keeps failing (default 5m). A check that cleared and fails again is
	// a new problem: its first remediation does not wait.
	Cooldown time.Duration
	// RemediationTimeout bounds one remediation (default 15m).
	RemediationTimeout time.Duration
}

func (s *Spec) defaults() {
	if s.Interval <= 0 {
		s.Interval = 2 * time.Second
	}
	if s.Timeout <= 0 {
		s.Timeout = max(s.Interval, time.Second)
	}
	if s.FailuresBeforeAction <= 0 {
		s.FailuresBeforeAction = 3
	}
	if s.SuccessesBeforeClear <= 0 {
		s.SuccessesBeforeClear = 2
	}
	if s.Cooldown <= 0 {
		s.Cooldown = 5 * time.Minute
	}
	if s.RemediationTimeout <= 0 {
		s.RemediationTimeout = 15 * time.Minute
	}
}

// CheckState is what the watchdog knows about one check.
type CheckState struct {
	Name                 string    `json:"name"`
	Failing              bool      `json:"failing"`
	ConsecutiveFailures  int       `json:"consecutive_failures"`
	ConsecutiveSuccesses int       `json:"consecutive_successes"`
	Runs                 int       `json:"runs"`
	LastRun              time.Time `json:"last_run,omitzero"`
	LastError            string    `json:"last_error,omitempty"`
	Remediations         int       `json:"remediations"`
	// DryRunRemediations are remediations a DryRunner only planned.
	DryRunRemediations   int       `json:"dry_run_remediations"`
	LastRemediation      time.Time `json:"last_remediation,omitzero"`
	LastRemediationError string    `json:"last_remediation_error,omitempty"`

	// cooldownFrom is the last remediation of the current failing
	// episode (zero once the check cleared).
	cooldownFrom time.Time
}

// Watchdog runs checks.
type Watchdog struct {
	Specs []Spec
	Log   *slog.Logger

	mu       sync.Mutex
	states   map[string]*CheckState
	triggers map[string]chan struct{}
	started  bool
}

func (w *Watchdog) log() *slog.Logger {
	if w.Log != nil {
		return w.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (w *Watchdog) init() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.states != nil {
		return
	}
	w.states = map[string]*CheckState{}
	w.triggers = map[string]chan struct{}{}
	for i := range w.Specs {
		w.Specs[i].defaults()
		name := w.Specs[i].Check.Name()
		w.states[name] = &CheckState{Name: name}
		w.triggers[name] = make(chan struct{}, 1)
	}
}

// Run runs every check in its own loop until ctx ends. A check never
// overlaps itself: the next run starts Interval after the previous one
// (and any remediation) finished.
func (w *Watchdog) Run(ctx context.Context) error {
	w.init()
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		return fmt.Errorf("watchdog already running")
	}
	w.started = true
	w.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range w.Specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop(ctx, s)
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// Trigger asks the named check to run now instead of at its next
// interval (e.g. on a DRBD state change). It never blocks.
func (w *Watchdog) Trigger(name string) {
	w.init()
	if ch, ok := w.triggers[name]; ok {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// States returns a copy of every check's state, by name.
func (w *Watchdog) States() []CheckState {
	w.init()
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]CheckState, 0, len(w.states))
	for _, s := range w.states {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (w *Watchdog) loop(ctx context.Context, s Spec) {
	name := s.Check.Name()
	for {
		w.runOnce(ctx, s)
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.Interval):
		case <-w.triggers[name]:
		}
	}
}

// runOnce runs the check once and remediates when due.
func (w *Watchdog) runOnce(ctx context.Context, s Spec) {
	name := s.Check.Name()
	rctx, cancel := context.WithTimeout(ctx, s.Timeout)
	began := time.Now()
	err := s.Check.Run(rctx)
	cancel()
	if ctx.Err() != nil {
		return
	}
	w.log().Debug("check ran", "check", name, "took", time.Since(began).Round(time.Millisecond), "err", err)
	w.mu.Lock()
	st := w.states[name]
	st.Runs++
	st.LastRun = time.Now()
	if err == nil {
		st.ConsecutiveFailures, st.LastError = 0, ""
		st.ConsecutiveSuccesses++
		if st.Failing && st.ConsecutiveSuccesses >= s.SuccessesBeforeClear {
			st.Failing, st.cooldownFrom = false, time.Time{}
			w.log().Info("check cleared", "check", name)
		}
		w.mu.Unlock()
		return
	}
	st.ConsecutiveSuccesses, st.LastError = 0, err.Error()
	st.ConsecutiveFailures++
	if !st.Failing && st.ConsecutiveFailures >= s.FailuresBeforeAction {
		st.Failing = true
		w.log().Warn("check failing", "check", name, "failures", st.ConsecutiveFailures, "err", err)
	}
	rem, canRemediate := s.Check.(Remediator)
	due := st.Failing && canRemediate && (st.cooldownFrom.IsZero() || time.Since(st.cooldownFrom) >= s.Cooldown)
	dr, isDR := s.Check.(DryRunner)
	dryRun := isDR && dr.IsDryRun()
	if due {
		st.LastRemediation = time.Now()
		st.cooldownFrom = st.LastRemediation
		if dryRun {
			st.DryRunRemediations++
		} else {
			st.Remediations++
		}
	}
	w.mu.Unlock()
	if !due {
		return
	}
	w.log().Info("remediating", "check", name, "dry_run", dryRun)
	rctx, cancel = context.WithTimeout(ctx, s.RemediationTimeout)
	rerr := rem.Remediate(rctx)
	cancel()
	w.mu.Lock()
	st.LastRemediationError = ""
	if rerr != nil {
		st.LastRemediationError = rerr.Error()
		w.log().Error("remediation failed", "check", name, "err", rerr)
	}
	w.mu.Unlock()
}
