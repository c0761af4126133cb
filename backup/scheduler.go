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
	"strings"
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
	// JobCopy copies the repository's backups to the off-host targets
	// (CopyJob). It has no schedule of its own: the scheduler runs it after
	// each full or differential job.
	JobCopy Job = "copy"
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
	// LastNote says what the last run did besides its job, e.g. the
	// differential job that took a full because the chain was broken.
	LastNote string `json:"last_note,omitempty"`
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

// JobFunc does one job and returns what it did.
type JobFunc func(ctx context.Context) (JobResult, error)

// JobResult is what a job did: a short result (backup id, drill verdict)
// and, when the job did something else than asked, a note saying what and
// why.
type JobResult struct {
	Result string
	Note   string
}

// Scheduler runs the full, differential and drill jobs on their cron
// schedules (Config.Full, .Differential, .Drill), only while isActive says
// MariaDB runs on this node, never two at once, and records each outcome
// in the repository's state.json. After each full or differential job
// that ran (a failed one too: the copy catches up whatever a target
// lacks), it runs the JobCopy job when there is one, in the background so
// that a long copy never holds up the next backup; copies never overlap,
// and one asked for while another runs follows it. The watchdog daemon
// owns one.
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

	copyMu    sync.Mutex
	copying   bool // a copy runs (in the background)
	copyAgain bool // and was asked for again meanwhile
	copies    sync.WaitGroup
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

// Start runs the schedules until Stop; jobs get ctx. The first start for
// a repository is recorded (ScheduledSince).
func (s *Scheduler) Start(ctx context.Context) {
	s.ctx = ctx
	if len(s.cron.Entries()) > 0 {
		if err := markScheduled(s.repo, s.now()); err != nil {
			s.log.Error("cannot record when the backup schedule started", "err", err)
		}
	}
	s.cron.Start()
}

const scheduledName = "scheduled.json"

// ScheduledSince is when a scheduler first ran the schedules for repo (zero
// when none has): a repository with no backup yet is only late once the
// first scheduled run after that has passed.
func ScheduledSince(repo Repository) (time.Time, error) {
	data, err := os.ReadFile(filepath.Join(repo.Dir, scheduledName))
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read backup schedule start: %w", err)
	}
	var v struct {
		Since time.Time `json:"since"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", filepath.Join(repo.Dir, scheduledName), err)
	}
	return v.Since, nil
}

// markScheduled records now as the schedule's start unless one is recorded.
func markScheduled(repo Repository, now time.Time) error {
	if since, err := ScheduledSince(repo); err != nil || !since.IsZero() {
		return err
	}
	data, err := json.Marshal(struct {
		Since time.Time `json:"since"`
	}{now.UTC()})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(repo.Dir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(repo.Dir, scheduledName), append(data, '\n'), 0o600)
}

// Stop stops scheduling and waits for a running job, and a running copy,
// to end (cancel Start's context first to cut them short).
func (s *Scheduler) Stop() {
	<-s.cron.Stop().Done()
	// Taking the lock waits for a job in RunJob, which holds it.
	s.running.Lock()
	defer s.running.Unlock()
	s.copies.Wait()
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
	if job == JobFull || job == JobDifferential {
		s.copyAfter()
	}
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	st, rerr := ReadState(s.repo)
	if rerr != nil {
		st = State{}
	}
	js := st[job]
	js.LastAttempt, js.LastResult, js.LastNote = started.UTC(), result.Result, result.Note
	if err != nil {
		js.LastError = err.Error()
		s.log.Error("backup job failed", "job", job, "err", err, "note", result.Note)
	} else {
		js.LastSuccess, js.LastError = s.now().UTC(), ""
		s.log.Info("backup job done", "job", job, "result", result.Result, "note", result.Note, "duration", s.now().Sub(started).Round(time.Millisecond))
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

// copyAfter starts the copy job in the background unless one runs; then
// that one runs once more when it ends.
func (s *Scheduler) copyAfter() {
	fn := s.jobs[JobCopy]
	if fn == nil {
		return
	}
	s.copyMu.Lock()
	defer s.copyMu.Unlock()
	if s.copying {
		s.copyAgain = true
		return
	}
	s.copying = true
	s.copies.Add(1)
	go func() {
		defer s.copies.Done()
		for {
			switch res, err := fn(s.ctx); {
			case errors.Is(err, ErrCopyBusy):
				s.log.Info("backup copy skipped: another copy from this repository is running", "err", err)
			case err != nil && res.Result == "":
				s.log.Error("backup copy failed", "err", err)
			case err != nil:
				// Copy logged each target's failure.
				s.log.Info("backup copy incomplete: what failed is retried after the next backup", "result", res.Result)
			}
			s.copyMu.Lock()
			if !s.copyAgain {
				s.copying = false
				s.copyMu.Unlock()
				return
			}
			s.copyAgain = false
			s.copyMu.Unlock()
		}
	}()
}

// CopyJob is the copy to every target of o as a job (JobCopy).
func CopyJob(o CopyOptions) JobFunc {
	return func(ctx context.Context) (JobResult, error) {
		res, err := Copy(ctx, o)
		var parts []string
		for _, r := range res {
			parts = append(parts, fmt.Sprintf("%s: %d copied, %d failed", r.Target, len(r.Copied), len(r.Failed)))
		}
		return JobResult{Result: strings.Join(parts, "; ")}, err
	}
}

// Jobs returns the standard job functions: a full or differential backup
// with o, and a drill with d that fails unless the restore is proven.
//
// The differential job never leaves the schedule without a usable chain:
// when the newest full cannot be continued (ErrChainBroken: no full yet,
// binary logs purged, the database is not the one the full was taken
// from) it takes a new full at once, logs why and records it in the job's
// state (last_note); without this a broken chain would leave no usable
// differential until the next scheduled full, up to a week later.
func Jobs(o Options, d DrillOptions) map[Job]JobFunc {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	full := func(ctx context.Context) (JobResult, error) {
		m, err := Run(ctx, Full, o)
		if err != nil {
			return JobResult{}, err
		}
		return JobResult{Result: m.ID}, nil
	}
	return map[Job]JobFunc{
		JobFull: full,
		JobDifferential: func(ctx context.Context) (JobResult, error) {
			m, err := Run(ctx, Differential, o)
			if err == nil {
				return JobResult{Result: m.ID}, nil
			}
			if !errors.Is(err, ErrChainBroken) {
				return JobResult{}, err
			}
			o.Logger.Warn("differential impossible: taking a new full instead", "reason", err)
			note := "took a full instead of a differential: " + err.Error()
			res, ferr := full(ctx)
			if ferr != nil {
				return JobResult{Note: note}, fmt.Errorf("%w; the full taken instead failed: %w", err, ferr)
			}
			res.Note = note
			return res, nil
		},
		JobDrill: func(ctx context.Context) (JobResult, error) {
			rep, err := Drill(ctx, d)
			if err != nil {
				return JobResult{}, err
			}
			if !rep.Pass {
				return JobResult{Result: "fail"}, fmt.Errorf("restore drill failed: %s%v", rep.Error, rep.Mismatches)
			}
			return JobResult{Result: fmt.Sprintf("pass in %s", rep.RestoreTime.Round(time.Millisecond))}, nil
		},
	}
}
