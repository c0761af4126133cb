package agents

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/haconf/haconf/internal/atomicfile"
	"github.com/haconf/haconf/internal/proc"
	"github.com/haconf/haconf/pacemaker"
	"github.com/haconf/haconf/rabbitmq"
)

// RabbitMQ is the OCF resource agent for one node of the mirrored RabbitMQ
// cluster (ocf:haconf:rabbitmq), run as a clone on both controllers. Start
// launches the node and returns at once; monitor reads the pid file and
// does the AMQP handshake, forking nothing, and reports a node that is
// still booting (or, blank, waiting for the seed) as degraded (OCF 190,
// which Pacemaker counts as running) until boot_timeout. A start that
// waited for the boot, minutes on a slow node and up to the whole table
// wait of a node that waits for its peer, held every other action of the
// cluster: Pacemaker runs no new transition while one is in flight, and in
// the lab DRBD's promotion and MariaDB waited 5-10 min behind a broker's
// first boot. ocf:heartbeat:rabbitmq-cluster runs
// rabbitmqctl (a whole Erlang VM) several times per action and wipes the
// node's data on start.
//
// Cluster membership is not the agent's business: rabbitmq.conf lists the
// peer (classic_config peer discovery), so a blank node joins it and a
// restarted node rejoins by itself, waiting for the peer that stopped
// last. The agent never resets, joins or forgets nodes, and never deletes
// data: the only file it removes is a stale pid file.
//
// Monitor returns 7 (not running) when neither the pid file nor the
// launcher names a live process, 190 while the node boots, 1 when a booted
// beam does not answer AMQP (or a boot outlasts boot_timeout). Tested
// against RabbitMQ 3.10.8 (Debian 12, Erlang 25).
type RabbitMQ struct {
	Nodename   string // RABBITMQ_NODENAME, e.g. rabbit@ctl1
	Server     string // rabbitmq-server (Debian's su's to the rabbitmq user)
	MnesiaBase string // RABBITMQ_MNESIA_BASE
	PidFile    string // RABBITMQ_PID_FILE
	Port       string // AMQP port, checked on 127.0.0.1
	LogFile    string // the server's stdout and stderr
	User       string // the user the server runs as: owns the directories Start creates
	// Config is rabbitmq.conf, read for the classic_config peer list: a
	// blank node that is not the first listed (the seed) waits for the
	// seed before it boots (see Start).
	Config string

	// Env is added to the server's environment after the variables above
	// (tests set ports, config files and HOME here). The server also gets
	// the agent's own environment.
	Env []string
	// BootTimeout is how long a launched node may take to answer AMQP,
	// the wait for the seed included, before monitor reports a failure.
	BootTimeout time.Duration
	// Self runs this agent's actions: Start launches Self + "launch"
	// (default: this executable's "ocf rabbitmq").
	Self []string

	// Daemon starts a process detached and returns its pid
	// (runner.Exec.StartDaemon).
	Daemon func(name string, args []string, logPath string) (int, error)
	// Log says what Start and Stop did.
	Log *slog.Logger
}

// How often Start checks the node, and how long Monitor's handshake may
// take.
const (
	pollInterval     = 200 * time.Millisecond
	monitorHandshake = 10 * time.Second
	// DefaultBootTimeout bounds a node's own boot (not the wait for the
	// seed): a safety net for a hung boot. A node waiting for its peer's
	// tables gives up after RabbitMQ's own 10 x 30 s, and a first boot
	// took 9 min on a loaded lab node.
	DefaultBootTimeout = 20 * time.Minute
	// LaunchAction is the agent's internal action: the process Start
	// leaves behind, which waits for the seed and then execs the server.
	LaunchAction = "launch"
	// launchCheck is how long Start watches the launcher for an
	// immediate failure.
	launchCheck = 2 * time.Second
)

// RabbitMQFromEnv reads the agent's parameters from Pacemaker's environment.
func RabbitMQFromEnv(env pacemaker.OCFEnv) *RabbitMQ {
	nodename := env.Param("nodename", rabbitmq.DefaultNodename())
	mnesia := env.Param("mnesia_base", rabbitmq.DefaultMnesiaBase)
	return &RabbitMQ{
		Nodename:   nodename,
		Server:     env.Param("server", rabbitmq.DefaultServer),
		MnesiaBase: mnesia,
		PidFile:    env.Param("pid_file", filepath.Join(mnesia, nodename+".pid")),
		Port:       env.Param("port", rabbitmq.DefaultPort),
		LogFile:    env.Param("log", rabbitmq.DefaultServerLog),
		User:       env.Param("user", rabbitmq.DefaultUser),
		Config:     env.Param("config", rabbitmq.DefaultConfig),
		BootTimeout: func() time.Duration {
			if d, err := time.ParseDuration(env.Param("boot_timeout", "")); err == nil && d > 0 {
				return d
			}
			return DefaultBootTimeout
		}(),
	}
}

// MetaData implements pacemaker.Agent.
func (a *RabbitMQ) MetaData() string {
	return pacemaker.OCFMetaData{
		Name:  "rabbitmq",
		Short: "RabbitMQ cluster node, run as a clone (haconf)",
		Long: "Launches rabbitmq-server directly and returns at once (a blank node that is not the seed first waits for the seed); " +
			"monitor checks the pid file's beam process and the AMQP handshake on 127.0.0.1, without rabbitmqctl, and reports a node " +
			"that is still booting as degraded (190) until boot_timeout. Cluster membership comes from " +
			"rabbitmq.conf (classic_config peer discovery): the agent never resets, joins or forgets nodes and never deletes data. " +
			"A node that stopped before its peer waits for that peer on start: start the peer, or force_boot this node if the peer is lost.",
		Params: []pacemaker.OCFParam{
			{Name: "nodename", Short: "node name (RABBITMQ_NODENAME); default rabbit@ and the short host name"},
			{Name: "server", Short: "server start script", Default: rabbitmq.DefaultServer},
			{Name: "mnesia_base", Short: "directory of the node's database (RABBITMQ_MNESIA_BASE)", Default: rabbitmq.DefaultMnesiaBase},
			{Name: "pid_file", Short: "pid file (RABBITMQ_PID_FILE); default mnesia_base/nodename.pid, as RabbitMQ's own"},
			{Name: "port", Short: "AMQP port, checked on 127.0.0.1", Default: rabbitmq.DefaultPort},
			{Name: "log", Short: "file for the server's standard output and error", Default: rabbitmq.DefaultServerLog},
			{Name: "user", Short: "system user the server runs as", Default: rabbitmq.DefaultUser},
			{Name: "config", Short: "rabbitmq.conf, read for the classic_config peer list (a blank node waits for the first listed)", Default: rabbitmq.DefaultConfig},
			{Name: "boot_timeout", Short: "how long a launched node may take to answer AMQP (Go duration) before monitor fails it", Default: DefaultBootTimeout.String()},
		},
		Start: 60 * time.Second, Stop: 120 * time.Second,
		Monitor: 30 * time.Second, MonitorInterval: 60 * time.Second,
	}.String()
}

// Validate implements pacemaker.Agent: parameters only, nothing on disk.
// It reports every bad parameter at once.
func (a *RabbitMQ) Validate() error {
	var probs []string
	for _, p := range []struct{ name, value string }{
		{"server", a.Server}, {"mnesia_base", a.MnesiaBase}, {"pid_file", a.PidFile}, {"log", a.LogFile},
	} {
		if !filepath.IsAbs(p.value) {
			probs = append(probs, fmt.Sprintf("parameter %s=%q: must be an absolute path", p.name, p.value))
		}
	}
	if n, err := strconv.Atoi(a.Port); err != nil || n < 1 || n > 65535 {
		probs = append(probs, fmt.Sprintf("parameter port=%q: must be a port number (1-65535)", a.Port))
	}
	if name, host, ok := strings.Cut(a.Nodename, "@"); !ok || name == "" || host == "" {
		probs = append(probs, fmt.Sprintf("parameter nodename=%q: must be NAME@HOST", a.Nodename))
	}
	if a.User == "" {
		probs = append(probs, "parameter user is empty")
	}
	if len(probs) > 0 {
		return pacemaker.OCFFail(pacemaker.OCFErrConfigured, "%s", strings.Join(probs, "; "))
	}
	return nil
}

func (a *RabbitMQ) addr() string { return net.JoinHostPort("127.0.0.1", a.Port) }

func (a *RabbitMQ) log() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

// Monitor implements pacemaker.Agent. A node that answers AMQP runs. A
// launched node that does not answer yet boots (or waits for the seed):
// degraded (190, running to Pacemaker) until boot_timeout, then a failure.
// A node whose beam process and launcher are gone is "not running" (7),
// also after a crash that left the pid file: the agent cannot tell a crash
// from a stop, a probe must say 7 for a stopped node, and Pacemaker
// recovers a started resource whose recurring monitor returns 7 just as it
// does one that returns 1. A booted beam that stops answering fails at once.
func (a *RabbitMQ) Monitor(ctx context.Context) error {
	pid, beam := a.running()
	lpid, launched, launching := a.launcher()
	if !beam && !launching {
		if !launched.IsZero() {
			// Launched, and gone before it ever answered.
			hint, tail := a.exitReason()
			a.log().Warn("rabbitmq node exited while booting", "node", a.Nodename, "launcher", lpid, "reason", strings.TrimPrefix(strings.Join([]string{hint, tail}, "; "), "; "))
			os.Remove(a.launchFile())
		}
		return pacemaker.ErrNotRunning
	}
	var err error
	if beam {
		hctx, cancel := context.WithTimeout(ctx, monitorHandshake)
		err = rabbitmq.Handshake(hctx, a.addr())
		cancel()
		if err == nil {
			if !launched.IsZero() {
				a.log().Info("rabbitmq node answers", "node", a.Nodename, "pid", pid, "booted_in", time.Since(launched).Round(time.Second))
				os.Remove(a.launchFile()) // booted: from now on a silent beam is a failure
			}
			return nil
		}
		if launched.IsZero() {
			return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "rabbitmq node %s (pid %d) does not answer AMQP on %s: %v", a.Nodename, pid, a.addr(), err)
		}
	}
	booting := time.Since(launched)
	what := fmt.Sprintf("rabbitmq node %s booting for %s", a.Nodename, booting.Round(time.Second))
	if _, _, phase, _ := a.launch(); !beam && phase == phaseSeedWait {
		// Blank and not the seed: it must not boot before the seed answers.
		return &pacemaker.OCFError{Code: pacemaker.OCFDegraded, Reason: fmt.Sprintf(
			"rabbitmq node %s, blank, waits for the seed %s for %s before its first boot", a.Nodename, a.seed(), booting.Round(time.Second))}
	} else if !beam {
		what = fmt.Sprintf("rabbitmq node %s launched %s ago, no beam yet", a.Nodename, booting.Round(time.Second))
	}
	if h := a.waitingHint(); h != "" {
		what += ": " + h
	}
	if booting > a.bootTimeout() {
		return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "%s, longer than boot_timeout %s", what, a.bootTimeout())
	}
	return &pacemaker.OCFError{Code: pacemaker.OCFDegraded, Reason: what}
}

func (a *RabbitMQ) bootTimeout() time.Duration {
	if a.BootTimeout > 0 {
		return a.BootTimeout
	}
	return DefaultBootTimeout
}

// Start implements pacemaker.Agent: it launches the node and returns,
// without waiting for the boot (monitor follows it). A node that runs, or
// is being launched, is left alone. The launcher (Self launch, see Launch)
// holds the first boot of a blank node that is not the seed until the
// seed answers, then becomes rabbitmq-server.
func (a *RabbitMQ) Start(ctx context.Context) error {
	if _, ok := a.running(); ok {
		return nil
	}
	if _, _, ok := a.launcher(); ok {
		return nil
	}
	if a.Daemon == nil {
		return errors.New("rabbitmq agent: no Daemon to start the server with")
	}
	if _, err := os.Stat(a.Server); err != nil {
		return pacemaker.OCFFail(pacemaker.OCFErrInstalled, "server start script: %v", err)
	}
	self, err := a.self()
	if err != nil {
		return pacemaker.OCFFail(pacemaker.OCFErrInstalled, "%v", err)
	}
	u, err := user.Lookup(a.User)
	if err != nil {
		return pacemaker.OCFFail(pacemaker.OCFErrInstalled, "user %q: %v", a.User, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// Only directories created here are given to the user: an existing
	// one (and whatever it holds) keeps its owner.
	for _, dir := range []string{a.MnesiaBase, filepath.Dir(a.PidFile)} {
		if err := mkdirOwned(dir, uid, gid); err != nil {
			return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "%v", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(a.LogFile), 0o755); err != nil {
		return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "%v", err)
	}
	// running said no: the pid file, if any, names a dead process (or a
	// reused pid that is no beam).
	if err := os.Remove(a.PidFile); err == nil {
		a.log().Info("removed stale pid file", "pid_file", a.PidFile)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "remove stale pid file: %v", err)
	}
	// env(1) sets the variables and execs the launcher: argv, no shell.
	// The launcher reads the agent's parameters from the OCF_RESKEY_ ones,
	// and passes the rest on to the server.
	args := []string{
		"RABBITMQ_NODENAME=" + a.Nodename,
		"RABBITMQ_PID_FILE=" + a.PidFile,
		"RABBITMQ_MNESIA_BASE=" + a.MnesiaBase,
		"OCF_RESKEY_nodename=" + a.Nodename,
		"OCF_RESKEY_server=" + a.Server,
		"OCF_RESKEY_mnesia_base=" + a.MnesiaBase,
		"OCF_RESKEY_pid_file=" + a.PidFile,
		"OCF_RESKEY_port=" + a.Port,
		"OCF_RESKEY_log=" + a.LogFile,
		"OCF_RESKEY_user=" + a.User,
		"OCF_RESKEY_config=" + a.Config,
	}
	args = append(append(args, a.Env...), self...)
	args = append(args, LaunchAction)
	// A launch file left by a dead launcher would hide the new one's.
	if err := os.Remove(a.launchFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "remove stale launch file: %v", err)
	}
	pid, err := a.Daemon("env", args, a.LogFile)
	if err != nil {
		return err
	}
	// The launcher may have recorded its own phase already (a blank node
	// waiting for the seed): that record is newer and stays.
	if err := a.recordLaunch(pid); err != nil {
		return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "record the launcher: %v", err)
	}
	a.log().Info("launched rabbitmq-server", "node", a.Nodename, "launcher", pid, "log", a.LogFile)
	// An immediate failure (a broken server script, a bad environment) is
	// the start's; a later one is the monitor's.
	deadline := time.Now().Add(launchCheck)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, ok := a.running(); !ok && gone(pid) {
			os.Remove(a.launchFile())
			return a.startFailed(fmt.Sprintf("rabbitmq-server for %s (launcher pid %d) exited while starting", a.Nodename, pid))
		}
		time.Sleep(pollInterval)
	}
	return nil
}

// Launch is the process Start leaves behind (the launch action): a blank
// node that is not the seed waits here until the seed answers, then the
// process becomes rabbitmq-server (exec, same pid) with the environment
// Start gave it.
func (a *RabbitMQ) Launch(ctx context.Context) error {
	pid := os.Getpid()
	if a.needsSeed() {
		// The wait has no deadline of its own (the node can do nothing
		// else, and a restart would not help); monitor says what it waits for.
		a.writeLaunch(pid, phaseSeedWait)
	}
	if err := a.waitSeed(ctx); err != nil {
		return err
	}
	// boot_timeout counts from here: the node's own boot.
	a.writeLaunch(pid, phaseBooting)
	return syscall.Exec(a.Server, []string{a.Server}, os.Environ())
}

// The launch file's second line: what the launcher is doing.
const (
	phaseLaunched = "launched"
	phaseSeedWait = "waiting-for-the-seed"
	phaseBooting  = "booting"
)

// writeLaunch records the launcher: its pid, phase and start time (a pid
// alone may name another process after a reboot: the file is on disk).
func (a *RabbitMQ) writeLaunch(pid int, phase string) error {
	b, err := launchRecord(pid, phase)
	if err != nil {
		return err
	}
	return atomicfile.Write(a.launchFile(), b, 0o644)
}

func launchRecord(pid int, phase string) ([]byte, error) {
	st, err := proc.ReadStat(pid)
	if err != nil {
		return nil, err
	}
	return []byte(fmt.Sprintf("%d\n%s\n%d\n", pid, phase, st.Start)), nil
}

// recordLaunch records a launcher just started, unless it recorded
// itself first.
func (a *RabbitMQ) recordLaunch(pid int) error {
	b, err := launchRecord(pid, phaseLaunched)
	if err != nil {
		return err
	}
	err = atomicfile.Create(a.launchFile(), b, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	return err
}

// gone reports whether pid has exited, looking twice: a multithreaded
// process that execs from another thread than its first (the launcher, a
// Go program, execs rabbitmq-server) shows its old leader as a zombie for
// an instant, which once made a live launcher look dead.
func gone(pid int) bool {
	if proc.Alive(pid) {
		return false
	}
	time.Sleep(250 * time.Millisecond)
	return !proc.Alive(pid)
}

// self is the argv that runs this agent's actions.
func (a *RabbitMQ) self() ([]string, error) {
	if len(a.Self) > 0 {
		return a.Self, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this agent's executable for the launcher: %w", err)
	}
	return []string{exe, "ocf", "rabbitmq"}, nil
}

// launchFile records the launcher's pid; its time is the launch's. It
// stays until the node first answers (or stops).
func (a *RabbitMQ) launchFile() string { return a.PidFile + ".launch" }

// launcher reads the launch file: the launcher's pid, when it entered its
// phase (zero without a file), and whether that process still lives.
func (a *RabbitMQ) launcher() (int, time.Time, bool) {
	pid, at, _, ok := a.launch()
	return pid, at, ok
}

// launch is launcher with the launcher's phase.
func (a *RabbitMQ) launch() (pid int, at time.Time, phase string, alive bool) {
	st, err := os.Stat(a.launchFile())
	if err != nil {
		return 0, time.Time{}, "", false
	}
	b, _ := os.ReadFile(a.launchFile())
	f := strings.Split(strings.TrimSpace(string(b)), "\n")
	pid, err = strconv.Atoi(f[0])
	if err != nil || pid <= 0 || len(f) < 3 {
		return 0, st.ModTime(), "", false
	}
	same := func() bool {
		ps, err := proc.ReadStat(pid)
		return err == nil && ps.Live() && strconv.FormatUint(ps.Start, 10) == f[2]
	}
	alive = same()
	if !alive && !gone(pid) {
		alive = same() // it was exec'ing (see gone)
	}
	return pid, st.ModTime(), f[1], alive
}

// exitReason is what the server's output says about why it ended: the
// advice when it waited for its peer ("" otherwise), and its last lines.
func (a *RabbitMQ) exitReason() (hint, tail string) {
	return a.waitingHint(), a.LogFile + " ends: " + logTail(a.LogFile, 5)
}

// startFailed is Start's failure: what happened and the end of the
// server's output, after the advice when the node waits for its peer.
// The advice comes first because Pacemaker keeps only the first 128
// characters of a reason (the rest is in its log).
func (a *RabbitMQ) startFailed(what string) error {
	hint, tail := a.exitReason()
	reason := what + "; " + tail
	if hint != "" {
		reason = hint + "; " + reason
	}
	return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "%s", reason)
}

// Stop implements pacemaker.Agent: SIGTERM (RabbitMQ shuts down cleanly
// and records which nodes were running, which its next start needs), then
// SIGKILL 5 s before the action's deadline. It returns once the beam
// process and the launcher are gone, and removes the pid files.
func (a *RabbitMQ) Stop(ctx context.Context) error {
	lpid, _, launching := a.launcher()
	// Every server VM of this node (normally one; after a lost pid file
	// there were two), then whatever is left of the launcher's session.
	for {
		pid, ok := a.running()
		if !ok {
			break
		}
		begin := time.Now()
		a.log().Info("sending SIGTERM", "node", a.Nodename, "pid", pid)
		killed, err := proc.Stop(ctx, pid, proc.StopOptions{Alive: isBeam, KillBefore: 5 * time.Second, Poll: pollInterval, Killed: func() {
			a.log().Warn("sent SIGKILL: no exit after SIGTERM", "node", a.Nodename, "pid", pid, "after", time.Since(begin).Round(time.Second))
		}})
		if err != nil {
			return fmt.Errorf("rabbitmq node %s: %w", a.Nodename, err)
		}
		a.log().Info("rabbitmq node stopped", "node", a.Nodename, "pid", pid, "killed", killed, "after", time.Since(begin).Round(time.Millisecond))
		os.Remove(a.PidFile)
	}
	if launching {
		// Waiting for the seed, or the scripts around a beam now gone.
		a.endSession(ctx, lpid)
	}
	if err := os.Remove(a.PidFile); err == nil {
		a.log().Info("removed stale pid file", "pid_file", a.PidFile)
	}
	os.Remove(a.launchFile())
	return nil
}

// running finds this node's Erlang VM: the one the pid file names or,
// when there is none (a booting node writes the file only late in its
// boot, minutes on a slow machine), the server beam whose environment
// names this node (RABBITMQ_NODENAME, which Start sets; rabbitmqctl's
// beams have neither that nor "-s rabbit boot"). Missing such a beam, a
// start once launched a second server that died on the first one's
// distribution port, and a stop left the first one running.
func (a *RabbitMQ) running() (int, bool) {
	if pid, err := proc.ReadPidFile(a.PidFile); err == nil && isBeam(pid) {
		return pid, true
	}
	pids := a.serverBeams()
	if len(pids) == 0 {
		return 0, false
	}
	return pids[0], true
}

// serverBeams are the live RabbitMQ server VMs of this node.
func (a *RabbitMQ) serverBeams() []int {
	env := []byte("RABBITMQ_NODENAME=" + a.Nodename + "\x00")
	var out []int
	for _, pid := range proc.Pids() {
		if !isBeam(pid) {
			continue
		}
		dir := "/proc/" + strconv.Itoa(pid)
		cmdline, _ := os.ReadFile(dir + "/cmdline")
		environ, _ := os.ReadFile(dir + "/environ")
		if bytes.Contains(cmdline, []byte("\x00-s\x00rabbit\x00boot\x00")) && bytes.Contains(environ, env) {
			out = append(out, pid)
		}
	}
	return out
}

// endSession stops every process left in the launcher's session (su and
// the server scripts around a beam that is gone): SIGTERM, then SIGKILL.
func (a *RabbitMQ) endSession(ctx context.Context, sid int) {
	members := func() []int { return proc.Session(sid) }
	left := members()
	for _, pid := range left {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	for deadline := time.Now().Add(5 * time.Second); len(left) > 0 && time.Now().Before(deadline) && ctx.Err() == nil; left = members() {
		time.Sleep(pollInterval)
	}
	for _, pid := range left {
		a.log().Warn("sent SIGKILL to a process of the launcher's session", "node", a.Nodename, "pid", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// isBeam reports whether pid is a live Erlang VM.
func isBeam(pid int) bool {
	if !proc.Alive(pid) {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && bytes.Contains(cmdline, []byte("beam"))
}

// mkdirOwned creates dir (and missing parents, mode 0755) and gives dir
// to uid:gid; an existing dir is left as it is.
func mkdirOwned(dir string, uid, gid int) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.Chown(dir, uid, gid)
}

// waitingHint explains a start that waits for (or gave up on) the peer
// that was running when this node stopped; "" when the logs say nothing
// of the kind. It reads the server's output and the log files its start
// banner names.
func (a *RabbitMQ) waitingHint() string {
	out := tailBytes(a.LogFile, 64<<10)
	if h := rabbitmq.WaitingHint(out, a.Nodename); h != "" {
		return h
	}
	for _, f := range rabbitmq.BannerLogs(out) {
		if h := rabbitmq.WaitingHint(tailBytes(f, 256<<10), a.Nodename); h != "" {
			return h
		}
	}
	return ""
}

// tailBytes is the last max bytes of path (nil when unreadable).
func tailBytes(path string, max int64) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > max {
		f.Seek(-max, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return b
}

// logTail is the last n non-empty lines of path, joined with " | ".
func logTail(path string, n int) string {
	b := tailBytes(path, 8<<10)
	if b == nil {
		return "(unreadable)"
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return "(empty)"
	}
	return strings.Join(lines, " | ")
}

// blank reports whether the node has no database yet (it never booted).
func (a *RabbitMQ) blank() bool {
	_, err := os.Stat(filepath.Join(a.MnesiaBase, a.Nodename, "schema.DAT"))
	return errors.Is(err, fs.ErrNotExist)
}

// seed is the first node rabbitmq.conf lists ("" without a peer list).
func (a *RabbitMQ) seed() string {
	conf, err := os.ReadFile(a.Config)
	if err != nil {
		return ""
	}
	return rabbitmq.Seed(conf)
}

// needsSeed reports whether this node may only boot once the seed
// answers: it is blank and another node is the seed.
func (a *RabbitMQ) needsSeed() bool {
	if !a.blank() {
		return false
	}
	seed := a.seed()
	_, _, ok := strings.Cut(seed, "@")
	return ok && seed != a.Nodename
}

// waitSeed holds the first boot of a blank node that is not the seed until
// the seed answers AMQP. A blank node that finds no peer forms a cluster
// of its own, and two clusters never merge by themselves: this happened
// in the lab when the second controller booted blank while the first was
// restarting. Only the seed may form the cluster; every other blank node
// joins it.
func (a *RabbitMQ) waitSeed(ctx context.Context) error {
	if !a.needsSeed() {
		return nil
	}
	seed := a.seed()
	_, host, _ := strings.Cut(seed, "@")
	addr := net.JoinHostPort(host, a.Port)
	a.log().Info("blank node: waiting for the seed before the first boot", "node", a.Nodename, "seed", seed, "addr", addr)
	for {
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := rabbitmq.Handshake(hctx, addr)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "blank node %s waits for the seed %s (%s does not answer AMQP: %v): only the seed forms the cluster; start it first", a.Nodename, seed, addr, err)
		case <-time.After(time.Second):
		}
	}
}
