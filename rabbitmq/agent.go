package rabbitmq

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/haconf/haconf/internal/proc"
	"github.com/haconf/haconf/pacemaker"
)

// Agent is the OCF resource agent for one node of the mirrored RabbitMQ
// cluster (ocf:haconf:rabbitmq), run as a clone on both controllers. It
// starts rabbitmq-server directly and reports started once the node
// answers the AMQP handshake; monitor reads the pid file and does the
// same handshake, forking nothing. ocf:heartbeat:rabbitmq-cluster runs
// rabbitmqctl (a whole Erlang VM) several times per action and wipes the
// node's data on start.
//
// Cluster membership is not the agent's business: rabbitmq.conf lists the
// peer (classic_config peer discovery), so a blank node joins it and a
// restarted node rejoins by itself, waiting for the peer that stopped
// last. The agent never resets, joins or forgets nodes, and never deletes
// data: the only file it removes is a stale pid file.
//
// Monitor returns 7 (not running) when the pid file names no live beam
// process, 1 when the beam does not answer AMQP. Tested against RabbitMQ
// 3.10.8 (Debian 12, Erlang 25).
type Agent struct {
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
	// Daemon starts a process detached and returns its pid
	// (runner.Exec.StartDaemon).
	Daemon func(name string, args []string, logPath string) (int, error)
	// Log says what Start and Stop did.
	Log *slog.Logger
}

// Agent parameter defaults (Debian's RabbitMQ layout).
const (
	DefaultServer     = "/usr/sbin/rabbitmq-server"
	DefaultMnesiaBase = "/var/lib/rabbitmq/mnesia"
	DefaultPort       = "5672"
	DefaultServerLog  = "/var/log/rabbitmq/haconf-server.log"
	DefaultUser       = "rabbitmq"
	DefaultConfig     = "/etc/rabbitmq/rabbitmq.conf"
)

// How often Start checks the node, and how long Monitor's handshake may
// take.
const (
	pollInterval     = 200 * time.Millisecond
	monitorHandshake = 10 * time.Second
)

// AgentFromEnv reads the agent's parameters from Pacemaker's environment.
func AgentFromEnv(env pacemaker.OCFEnv) *Agent {
	nodename := env.Param("nodename", DefaultNodename())
	mnesia := env.Param("mnesia_base", DefaultMnesiaBase)
	return &Agent{
		Nodename:   nodename,
		Server:     env.Param("server", DefaultServer),
		MnesiaBase: mnesia,
		PidFile:    env.Param("pid_file", filepath.Join(mnesia, nodename+".pid")),
		Port:       env.Param("port", DefaultPort),
		LogFile:    env.Param("log", DefaultServerLog),
		User:       env.Param("user", DefaultUser),
		Config:     env.Param("config", DefaultConfig),
	}
}

// DefaultNodename is RabbitMQ's default node name: rabbit@ and the short
// host name.
func DefaultNodename() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	short, _, _ := strings.Cut(host, ".")
	return "rabbit@" + short
}

// MetaData implements pacemaker.Agent.
func (a *Agent) MetaData() string {
	return pacemaker.OCFMetaData{
		Name:  "rabbitmq",
		Short: "RabbitMQ cluster node, run as a clone (haconf)",
		Long: "Starts rabbitmq-server directly and reports it started as soon as it answers the AMQP handshake on 127.0.0.1; " +
			"monitor checks the pid file's beam process and the handshake, without rabbitmqctl. Cluster membership comes from " +
			"rabbitmq.conf (classic_config peer discovery): the agent never resets, joins or forgets nodes and never deletes data. " +
			"A node that stopped before its peer waits for that peer on start: start the peer, or force_boot this node if the peer is lost.",
		Params: []pacemaker.OCFParam{
			{Name: "nodename", Short: "node name (RABBITMQ_NODENAME); default rabbit@ and the short host name"},
			{Name: "server", Short: "server start script", Default: DefaultServer},
			{Name: "mnesia_base", Short: "directory of the node's database (RABBITMQ_MNESIA_BASE)", Default: DefaultMnesiaBase},
			{Name: "pid_file", Short: "pid file (RABBITMQ_PID_FILE); default mnesia_base/nodename.pid, as RabbitMQ's own"},
			{Name: "port", Short: "AMQP port, checked on 127.0.0.1", Default: DefaultPort},
			{Name: "log", Short: "file for the server's standard output and error", Default: DefaultServerLog},
			{Name: "user", Short: "system user the server runs as", Default: DefaultUser},
			{Name: "config", Short: "rabbitmq.conf, read for the classic_config peer list (a blank node waits for the first listed)", Default: DefaultConfig},
		},
		Start: 600 * time.Second, Stop: 120 * time.Second,
		Monitor: 30 * time.Second, MonitorInterval: 60 * time.Second,
	}.String()
}

// Validate implements pacemaker.Agent: parameters only, nothing on disk.
// It reports every bad parameter at once.
func (a *Agent) Validate() error {
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

func (a *Agent) addr() string { return net.JoinHostPort("127.0.0.1", a.Port) }

func (a *Agent) log() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

// Monitor implements pacemaker.Agent. A node whose beam process is gone
// is "not running" (7), also after a crash that left the pid file: the
// agent cannot tell a crash from a stop, a probe must say 7 for a stopped
// node, and Pacemaker recovers a started resource whose recurring monitor
// returns 7 just as it does one that returns 1.
func (a *Agent) Monitor(ctx context.Context) error {
	pid, ok := a.running()
	if !ok {
		return pacemaker.ErrNotRunning
	}
	hctx, cancel := context.WithTimeout(ctx, monitorHandshake)
	defer cancel()
	if err := Handshake(hctx, a.addr()); err != nil {
		return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "rabbitmq node %s (pid %d) does not answer AMQP on %s: %v", a.Nodename, pid, a.addr(), err)
	}
	return nil
}

// Start implements pacemaker.Agent. A running node is waited for, not
// started again.
func (a *Agent) Start(ctx context.Context) error {
	if pid, ok := a.running(); ok {
		return a.waitReady(ctx, pid, time.Now())
	}
	if a.Daemon == nil {
		return errors.New("rabbitmq agent: no Daemon to start the server with")
	}
	if _, err := os.Stat(a.Server); err != nil {
		return pacemaker.OCFFail(pacemaker.OCFErrInstalled, "server start script: %v", err)
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
	// env(1) sets the variables and execs the server: argv, no shell.
	args := append([]string{
		"RABBITMQ_NODENAME=" + a.Nodename,
		"RABBITMQ_PID_FILE=" + a.PidFile,
		"RABBITMQ_MNESIA_BASE=" + a.MnesiaBase,
	}, a.Env...)
	args = append(args, a.Server)
	begin := time.Now()
	if err := a.waitSeed(ctx); err != nil {
		return err
	}
	pid, err := a.Daemon("env", args, a.LogFile)
	if err != nil {
		return err
	}
	a.log().Info("started rabbitmq-server", "node", a.Nodename, "pid", pid, "log", a.LogFile)
	return a.waitReady(ctx, pid, begin)
}

// waitReady polls until the node answers the AMQP handshake. It fails as
// soon as the process it started (pid) and the beam process from the pid
// file are both gone.
func (a *Agent) waitReady(ctx context.Context, pid int, begin time.Time) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		beam, running := a.running()
		if !running && !proc.Alive(pid) {
			return a.startFailed(fmt.Sprintf("rabbitmq-server for %s (pid %d) exited while starting", a.Nodename, pid))
		}
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := Handshake(hctx, a.addr())
		cancel()
		if err == nil {
			a.log().Info("rabbitmq node answers", "node", a.Nodename, "pid", beam, "addr", a.addr(), "after", time.Since(begin).Round(time.Millisecond))
			return nil
		}
		select {
		case <-ctx.Done():
			return a.startFailed(fmt.Sprintf("rabbitmq node %s did not answer AMQP on %s within %s (last: %v)",
				a.Nodename, a.addr(), time.Since(begin).Round(time.Second), err))
		case <-tick.C:
		}
	}
}

// startFailed is Start's failure: what happened and the end of the
// server's output, after the advice when the node waits for its peer.
// The advice comes first because Pacemaker keeps only the first 128
// characters of a reason (the rest is in its log).
func (a *Agent) startFailed(what string) error {
	reason := fmt.Sprintf("%s; %s ends: %s", what, a.LogFile, logTail(a.LogFile, 5))
	if h := a.waitingHint(); h != "" {
		reason = h + "; " + reason
	}
	return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "%s", reason)
}

// Stop implements pacemaker.Agent: SIGTERM (RabbitMQ shuts down cleanly
// and records which nodes were running, which its next start needs), then
// SIGKILL 5 s before the action's deadline. It returns once the beam
// process is gone, and removes the pid file.
func (a *Agent) Stop(ctx context.Context) error {
	pid, ok := a.running()
	if !ok {
		if err := os.Remove(a.PidFile); err == nil {
			a.log().Info("removed stale pid file", "pid_file", a.PidFile)
		}
		return nil
	}
	begin := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM rabbitmq node %s (pid %d): %w", a.Nodename, pid, err)
	}
	a.log().Info("sent SIGTERM", "node", a.Nodename, "pid", pid)
	killAt := time.Now().Add(60 * time.Second)
	if d, ok := ctx.Deadline(); ok {
		killAt = d.Add(-5 * time.Second)
	}
	killed := false
	for isBeam(pid) {
		if !killed && time.Now().After(killAt) {
			syscall.Kill(pid, syscall.SIGKILL)
			killed = true
			a.log().Warn("sent SIGKILL: no exit after SIGTERM", "node", a.Nodename, "pid", pid, "after", time.Since(begin).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rabbitmq node %s (pid %d) still running: %w", a.Nodename, pid, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
	os.Remove(a.PidFile)
	a.log().Info("rabbitmq node stopped", "node", a.Nodename, "pid", pid, "killed", killed, "after", time.Since(begin).Round(time.Millisecond))
	return nil
}

// running reads the pid file and checks that it names a live beam process.
func (a *Agent) running() (int, bool) {
	pid, err := proc.ReadPidFile(a.PidFile)
	if err != nil {
		return 0, false
	}
	return pid, isBeam(pid)
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

// amqpHeader opens an AMQP 0-9-1 connection.
const amqpHeader = "AMQP\x00\x00\x09\x01"

// Handshake sends the AMQP 0-9-1 protocol header to addr (host:port) and
// reads the server's first frame, which must be connection.start: proof
// that the node's AMQP listener is up and its Erlang side answers,
// without credentials. It closes the connection right after, which
// RabbitMQ logs: "accepting AMQP connection" (info) and "client
// unexpectedly closed TCP connection" (warning).
func Handshake(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := io.WriteString(c, amqpHeader); err != nil {
		return fmt.Errorf("send protocol header: %w", err)
	}
	// Frame header (type, channel, payload size), then the method's class
	// and method ids.
	var f [11]byte
	n, err := io.ReadFull(c, f[:])
	if n >= 8 && string(f[:4]) == "AMQP" {
		return fmt.Errorf("server refused AMQP 0-9-1: it answered with protocol header %q", f[:8])
	}
	if err != nil {
		// The connection's deadline is the context's.
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = cmpOr(ctx.Err(), context.DeadlineExceeded)
		}
		if n > 0 {
			return fmt.Errorf("read connection.start: %w after %q", err, f[:n])
		}
		return fmt.Errorf("read connection.start: %w", err)
	}
	typ, channel := f[0], binary.BigEndian.Uint16(f[1:3])
	class, method := binary.BigEndian.Uint16(f[7:9]), binary.BigEndian.Uint16(f[9:11])
	if typ != 1 || channel != 0 || class != 10 || method != 10 {
		return fmt.Errorf("not an AMQP connection.start frame: got % x", f[:])
	}
	return nil
}

// What a node logs about its peers' tables (RabbitMQ 3.10). Every boot
// logs "Waiting for Mnesia tables for 30000 ms, 9 retries left" and at
// once "Successfully synced tables from a peer". A node that stopped
// while its peer still ran waits for that peer instead; each retry ends
// with {timeout_waiting_for_tables,['rabbit@ctl2','rabbit@ctl1'],[tables]}
// (spread over several log lines), and once the retries are used up the
// server prints "BOOT FAILED" and "Timeout contacting cluster nodes:
// ['rabbit@ctl2']." and exits.
var (
	logPrefixRE = regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \S+ \[\w+\] <[\d.]+> ?`)
	bootRE      = regexp.MustCompile(`Starting RabbitMQ \d|##  ##      RabbitMQ \d`)
	timeoutRE   = regexp.MustCompile(`(?:timeout_waiting_for_tables,|Timeout contacting cluster nodes:)\s*\[([^\]]*)\]`)
)

// waitingHint explains a start that waits for (or gave up on) the peer
// that was running when this node stopped; "" when the logs say nothing
// of the kind. It reads the server's output and the log files its start
// banner names.
func (a *Agent) waitingHint() string {
	out := tailBytes(a.LogFile, 64<<10)
	if h := WaitingHint(out, a.Nodename); h != "" {
		return h
	}
	for _, f := range bannerLogs(out) {
		if h := WaitingHint(tailBytes(f, 256<<10), a.Nodename); h != "" {
			return h
		}
	}
	return ""
}

// WaitingHint is the advice for node whose log (text) shows its last boot
// waiting for a peer's tables; "" when it does not.
func WaitingHint(text []byte, node string) string {
	text = logPrefixRE.ReplaceAll(text, nil)
	if loc := bootRE.FindAllIndex(text, -1); len(loc) > 0 {
		text = text[loc[len(loc)-1][0]:]
	}
	timeouts := timeoutRE.FindAllSubmatch(text, -1)
	waits := bytes.LastIndex(text, []byte("Waiting for Mnesia tables"))
	synced := bytes.LastIndex(text, []byte("Successfully synced tables"))
	if len(timeouts) == 0 && (waits < 0 || waits < synced) {
		return ""
	}
	peer := "the peer"
	if len(timeouts) > 0 {
		for _, n := range strings.Split(string(timeouts[len(timeouts)-1][1]), ",") {
			if n = strings.Trim(n, " \t\n'"); n != "" && n != node {
				peer = n
				break
			}
		}
	}
	return fmt.Sprintf("waiting for %s, which was running when this node stopped: start it first, or force_boot if it is lost", peer)
}

// bannerLogs are the log files a start banner names:
//
//	Logs: /var/log/rabbitmq/rabbit@ctl1.log
//	      /var/log/rabbitmq/rabbit@ctl1_upgrade.log
//	      <stdout>
func bannerLogs(out []byte) []string {
	var files []string
	in := false
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "Logs:"); ok {
			files, in = files[:0], true
			line = strings.TrimSpace(rest)
		}
		if !in {
			continue
		}
		if !filepath.IsAbs(line) {
			in = false
			continue
		}
		files = append(files, line)
	}
	return files
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

// Seed is the first node of the classic_config peer list in a
// rabbitmq.conf (cluster_formation.classic_config.nodes.N, lowest N), or
// "" when there is none.
func Seed(conf []byte) string {
	seed, low := "", -1
	for _, line := range strings.Split(string(conf), "\n") {
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		n, found := strings.CutPrefix(strings.TrimSpace(key), "cluster_formation.classic_config.nodes.")
		i, err := strconv.Atoi(n)
		if !found || err != nil {
			continue
		}
		if low < 0 || i < low {
			seed, low = strings.TrimSpace(value), i
		}
	}
	return seed
}

// blank reports whether the node has no database yet (it never booted).
func (a *Agent) blank() bool {
	_, err := os.Stat(filepath.Join(a.MnesiaBase, a.Nodename, "schema.DAT"))
	return errors.Is(err, fs.ErrNotExist)
}

// waitSeed holds the first boot of a blank node that is not the seed until
// the seed answers AMQP. A blank node that finds no peer forms a cluster
// of its own, and two clusters never merge by themselves: this happened
// in the lab when the second controller booted blank while the first was
// restarting. Only the seed may form the cluster; every other blank node
// joins it.
func (a *Agent) waitSeed(ctx context.Context) error {
	if !a.blank() {
		return nil
	}
	conf, err := os.ReadFile(a.Config)
	if err != nil {
		return nil // no peer list: nothing to wait for
	}
	seed := Seed(conf)
	_, host, ok := strings.Cut(seed, "@")
	if seed == "" || seed == a.Nodename || !ok {
		return nil
	}
	addr := net.JoinHostPort(host, a.Port)
	a.log().Info("blank node: waiting for the seed before the first boot", "node", a.Nodename, "seed", seed, "addr", addr)
	for {
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := Handshake(hctx, addr)
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
