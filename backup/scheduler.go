package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/haconf/haconf/internal/atomicfile"
)

// Job is a scheduled backup task.
type Job string

const (
	JobFull         Job = "full"
	JobDifferential Job = "differential"
	JobDrill        Job = "drill"
)

// Scheduler errors: the job was skipped, not failed.
var (
	// ErrNotActive means MariaDB does not run on this node: only the active
	// node backs up.
	ErrNotActive = errors.New("MariaDB is not active on this node")
	// ErrBusy means another scheduled job is still running.
	ErrBusy = errors.New("another backup job is still running")
)

// JobState is the last outcome of one job, for monitoring.
type JobState struct {
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastResult  string    `json:"last_result,omitempty"` // backup id, or the drill verdict
}

// State is the content of <repository>/state.json.
type State map[Job]JobState

const stateName = "state.json"

// ReadState reads the jobs' last outcomes from the repository (empty when
// nothing ran yet). Another process (the watchdog's metrics) may call it.
func ReadState(repo Repository) (State, error) {
	data, err := os.ReadFile(filepath.Join(repo.Dir, stateName))
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read backup state: %w", err)
	}
	st := State{}
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("backup state %s: %w", filepath.Join(repo.Dir, stateName), err)
	}
	return st, nil
}

// JobFunc does one job and returns a short result (backup id, verdict).
type JobFunc func(ctx context.Context) (string, error)

// Scheduler runs the full, differential and drill jobs on their cron
// schedules (Config.Full, .Differential, .Drill), only while isActive says
// MariaDB runs on this node, never two at once, and records each outcome
// in the repository's state.json. The watchdog daemon owns one.
type Scheduler struct {
	repo     Repository
	jobs     map[Job]JobFunc
	isActive func() bool
	log      *slog.Logger
	cron     *cron.Cron
	now      func() time.Time

	running sync.Mutex // held while a job runs
	stateMu sync.Mutex
	ctx     context.Context
}

// NewScheduler checks the schedules and prepares the jobs; Start runs them.
func NewScheduler(cfg Config, jobs map[Job]JobFunc, isActive func() bool, log *slog.Logger) (*Scheduler, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{repo: Repository{Dir: cfg.Repository}, jobs: jobs, isActive: isActive, log: log, now: time.Now, ctx: context.Background()}
	s.cron = cron.New(cron.WithParser(CronParser))
	for _, e := range []struct {
		job  Job
		expr string
	}{{JobFull, cfg.Full}, {JobDifferential, cfg.Differential}, {JobDrill, cfg.Drill}} {
		if e.expr == "" {
			continue
		}
		if jobs[e.job] == nil {
			return nil, fmt.Errorf("backup schedule: no function for the %s job", e.job)
		}
		job := e.job
		if _, err := s.cron.AddFunc(e.expr, func() { _ = s.RunJob(s.ctx, job) }); err != nil {
			return nil, fmt.Errorf("backup schedule %s %q: %w", job, e.expr, err)
		}
	}
	return s, nil
}

// Start runs the schedules until Stop; jobs get ctx.
func (s *Scheduler) Start(ctx context.Context) {
	s.ctx = ctx
	s.cron.Start()
}

// Stop stops scheduling and waits for a running job to end.
func (s *Scheduler) Stop() {
	<-s.cron.Stop().Done()
	// Taking the lock waits for a job in RunJob, which holds it.
	s.running.Lock()
	defer s.running.Unlock()
}

// Next returns when each scheduled job runs next.
func (s *Scheduler) Next() []time.Time {
	var out []time.Time
	for _, e := range s.cron.Entries() {
		out = append(out, e.Next)
	}
	return out
}

// LastSuccess returns when job last succeeded (zero if never).
func (s *Scheduler) LastSuccess(job Job) time.Time {
	st, err := ReadState(s.repo)
	if err != nil {
		return time.Time{}
	}
	return st[job].LastSuccess
}

// RunJob runs job now, with the same rules as a scheduled run. It returns
// ErrNotActive or ErrBusy when the job was skipped.
func (s *Scheduler) RunJob(ctx context.Context, job Job) error {
	fn := s.jobs[job]
	if fn == nil {
		return fmt.Errorf("no %s job", job)
	}
	if s.isActive != nil && !s.isActive() {
		s.log.Debug("backup job skipped: MariaDB is not active here", "job", job)
		return ErrNotActive
	}
	if !s.running.TryLock() {
		s.log.Warn("backup job skipped: the previous one is still running", "job", job)
		return ErrBusy
	}
	defer s.running.Unlock()
	started := s.now()
	s.log.Info("backup job started", "job", job)
	result, err := fn(ctx)
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	st, rerr := ReadState(s.repo)
	if rerr != nil {
		st = State{}
	}
	js := st[job]
	js.LastAttempt, js.LastResult = started.UTC(), result
	if err != nil {
		js.LastError = err.Error()
		s.log.Error("backup job failed", "job", job, "err", err)
	} else {
		js.LastSuccess, js.LastError = s.now().UTC(), ""
		s.log.Info("backup job done", "job", job, "result", result, "duration", s.now().Sub(started).Round(time.Millisecond))
	}
	st[job] = js
	data, merr := json.MarshalIndent(st, "", "  ")
	if merr == nil {
		if err := os.MkdirAll(s.repo.Dir, 0o700); err == nil {
			merr = atomicfile.Write(filepath.Join(s.repo.Dir, stateName), append(data, '\n'), 0o600)
		}
	}
	if merr != nil {
		s.log.Error("cannot record backup job state", "job", job, "err", merr)
	}
	return err
}

// Jobs returns the standard job functions: a full or differential backup
// with o, and a drill with d that fails unless the restore is proven.
func Jobs(o Options, d DrillOptions) map[Job]JobFunc {
	backup := func(kind Kind) JobFunc {
		return func(ctx context.Context) (string, error) {
			m, err := Run(ctx, kind, o)
			if err != nil {
				return "", err
			}
			return m.ID, nil
		}
	}
	return map[Job]JobFunc{
		JobFull:         backup(Full),
		JobDifferential: backup(Differential),
		JobDrill: func(ctx context.Context) (string, error) {
			rep, err := Drill(ctx, d)
			if err != nil {
				return "", err
			}
			if !rep.Pass {
				return "fail", fmt.Errorf("restore drill failed: %s%v", rep.Error, rep.Mismatches)
			}
			return fmt.Sprintf("pass in %s", rep.RestoreTime.Round(time.Millisecond)), nil
		},
	}
}
