package agents

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/haconf/haconf/internal/atomicfile"
	"github.com/haconf/haconf/internal/proc"
	"github.com/haconf/haconf/pacemaker"
)

// Daemon is the OCF resource agent for a plain foreground daemon
// (ocf:haconf:daemon): haproxy -db, haconf compute controller. It starts
// the binary directly, detached in its own session, with its output
// appended to a log file, and records its pid. ocf:heartbeat:anything,
// which it replaces, starts every process through `su - root -c`: a login
// shell that reads root's profile on every start (a slow or noisy
// .bashrc made haproxy's start time out in the lab), and checks only that
// some process has the recorded pid.
type Daemon struct {
	Binary string
	Args   []string
	Pid    string
	Log    string
	// Settle is how long the process must stay up after its start for
	// the start to succeed: a daemon that rejects its configuration
	// exits at once, and that must fail the start, not the first monitor.
	Settle time.Duration

	// Spawn starts the process detached and returns its pid.
	Spawn func(name string, args []string, logPath string) (int, error)
}

// DaemonFromEnv reads the agent's parameters from Pacemaker's environment.
func DaemonFromEnv(env pacemaker.OCFEnv) *Daemon {
	inst := env.Getenv("OCF_RESOURCE_INSTANCE")
	if i := strings.IndexByte(inst, ':'); i >= 0 { // a clone's instance number
		inst = inst[:i]
	}
	d := &Daemon{
		Binary: env.Param("binary", ""),
		Args:   strings.Fields(env.Param("args", "")),
		Pid:    env.Param("pidfile", "/run/haconf-"+inst+".pid"),
		Log:    env.Param("logfile", "/var/log/haconf/"+inst+".log"),
		Settle: time.Second,
	}
	if s := env.Param("settle", ""); s != "" {
		if n, err := strconv.ParseFloat(s, 64); err == nil && n >= 0 && n <= 60 {
			d.Settle = time.Duration(n * float64(time.Second))
		} else {
			d.Settle = -1 // Validate names it
		}
	}
	return d
}

// MetaData implements pacemaker.Agent.
func (a *Daemon) MetaData() string {
	return pacemaker.OCFMetaData{
		Name:  "daemon",
		Short: "a foreground daemon, started directly (haconf)",
		Long: "Starts binary with args (split at spaces; no shell, no quoting) in its own session, stdout and stderr appended to logfile, " +
			"and records its pid in pidfile; the start succeeds once the process has stayed up for settle seconds. " +
			"Monitor checks that the recorded pid is a live process of that binary (not a reused pid); stop sends SIGTERM, then SIGKILL 5 s before the stop timeout.",
		Params: []pacemaker.OCFParam{
			{Name: "binary", Short: "absolute path of the program, which must stay in the foreground", Required: true},
			{Name: "args", Short: "its arguments, separated by spaces"},
			{Name: "pidfile", Short: "where the agent records the pid", Default: "/run/haconf-RESOURCE.pid"},
			{Name: "logfile", Short: "stdout and stderr, appended", Default: "/var/log/haconf/RESOURCE.log"},
			{Name: "settle", Short: "seconds the process must stay up for its start to succeed (0-60)", Default: "1"},
		},
		Start: 30 * time.Second, Stop: 30 * time.Second,
		Monitor: 20 * time.Second, MonitorInterval: 10 * time.Second,
	}.String()
}

// Validate implements pacemaker.Agent.
func (a *Daemon) Validate() error {
	for name, p := range map[string]string{"binary": a.Binary, "pidfile": a.Pid, "logfile": a.Log} {
		if !filepath.IsAbs(p) {
			return pacemaker.OCFFail(pacemaker.OCFErrConfigured, "parameter %s=%q: must be an absolute path", name, p)
		}
	}
	if a.Settle < 0 {
		return pacemaker.OCFFail(pacemaker.OCFErrConfigured, "parameter settle: must be a number of seconds from 0 to 60")
	}
	return nil
}

// Monitor implements pacemaker.Agent.
func (a *Daemon) Monitor(context.Context) error {
	if _, ok := a.running(); !ok {
		return pacemaker.ErrNotRunning
	}
	return nil
}

// Start implements pacemaker.Agent.
func (a *Daemon) Start(ctx context.Context) error {
	if _, ok := a.running(); ok {
		return nil
	}
	if st, err := os.Stat(a.Binary); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return pacemaker.OCFFail(pacemaker.OCFErrInstalled, "binary %s is not an executable file", a.Binary)
	}
	for _, dir := range []string{filepath.Dir(a.Pid), filepath.Dir(a.Log)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	pid, err := a.Spawn(a.Binary, a.Args, a.Log)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(a.Pid, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return fmt.Errorf("record the pid of %s: %w", a.Binary, err)
	}
	settled := time.NewTimer(a.Settle)
	defer settled.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if !a.alive(pid) {
			os.Remove(a.Pid)
			return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "%s (pid %d) exited at its start; %s ends: %s", filepath.Base(a.Binary), pid, a.Log, logTail(a.Log, 3))
		}
		select {
		case <-settled.C:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("%s (pid %d) started: %w", a.Binary, pid, ctx.Err())
		case <-tick.C:
		}
	}
}

// Stop implements pacemaker.Agent: TERM, then KILL shortly before the
// action's deadline; success only once the process is gone.
func (a *Daemon) Stop(ctx context.Context) error {
	pid, ok := a.running()
	if ok {
		if _, err := proc.Stop(ctx, pid, proc.StopOptions{Alive: a.alive, KillBefore: 5 * time.Second}); err != nil {
			return fmt.Errorf("%s: %w", a.Binary, err)
		}
	}
	if err := os.Remove(a.Pid); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// running reads the pid file and checks that the process is alive and
// runs the binary.
func (a *Daemon) running() (int, bool) {
	pid, err := proc.ReadPidFile(a.Pid)
	if err != nil {
		return 0, false
	}
	return pid, a.alive(pid)
}

// alive reports whether pid is a live (not zombie) process of a.Binary.
// The executable's link reads "PATH (deleted)" once a package upgrade
// replaced the file under a running daemon: still the same daemon.
func (a *Daemon) alive(pid int) bool {
	s, err := proc.ReadStat(pid)
	if err != nil || !s.Live() {
		return false
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return false
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	if exe == a.Binary {
		return true
	}
	// binary may be a symlink (/usr/sbin/haproxy -> ...).
	real, err := filepath.EvalSymlinks(a.Binary)
	return err == nil && exe == real
}
