package agents

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haconf/haconf/internal/proc"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/internal/testenv"
	"github.com/haconf/haconf/lab/workload"
	"github.com/haconf/haconf/pacemaker"
	"github.com/haconf/haconf/rabbitmq"
)

func TestRabbitMQDefaults(t *testing.T) {
	a := RabbitMQFromEnv(ocfEnv(nil))
	host, _ := os.Hostname()
	short, _, _ := strings.Cut(host, ".")
	want := RabbitMQ{
		Nodename: "rabbit@" + short, Server: "/usr/sbin/rabbitmq-server", MnesiaBase: "/var/lib/rabbitmq/mnesia",
		PidFile: "/var/lib/rabbitmq/mnesia/rabbit@" + short + ".pid", Port: "5672",
		LogFile: "/var/log/rabbitmq/haconf-server.log", User: "rabbitmq",
	}
	if a.Nodename != want.Nodename || a.Server != want.Server || a.MnesiaBase != want.MnesiaBase || a.PidFile != want.PidFile ||
		a.Port != want.Port || a.LogFile != want.LogFile || a.User != want.User {
		t.Fatalf("defaults:\n got %+v\nwant %+v", *a, want)
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	// The pid file follows mnesia_base and nodename, as RabbitMQ's own default does.
	b := RabbitMQFromEnv(ocfEnv(map[string]string{"OCF_RESKEY_nodename": "rabbit@ctl2", "OCF_RESKEY_mnesia_base": "/srv/mnesia"}))
	if b.PidFile != "/srv/mnesia/rabbit@ctl2.pid" {
		t.Fatalf("pid_file = %s", b.PidFile)
	}
}

func TestRabbitMQValidate(t *testing.T) {
	for _, tc := range []struct {
		params map[string]string
		want   []string // in the reason; none: valid
	}{
		{params: map[string]string{"nodename": "rabbit@ctl1", "port": "1"}},
		{params: map[string]string{"port": "65535"}},
		{params: map[string]string{"port": "0"}, want: []string{`port="0"`}},
		{params: map[string]string{"port": "65536"}, want: []string{`port="65536"`}},
		{params: map[string]string{"port": "amqp"}, want: []string{`port="amqp"`}},
		{params: map[string]string{"nodename": "rabbit"}, want: []string{`nodename="rabbit": must be NAME@HOST`}},
		{params: map[string]string{"nodename": "@ctl1"}, want: []string{`nodename="@ctl1"`}},
		{params: map[string]string{"server": "rabbitmq-server"}, want: []string{`server="rabbitmq-server": must be an absolute path`}},
		{params: map[string]string{"mnesia_base": "mnesia"}, want: []string{`mnesia_base="mnesia"`}},
		{params: map[string]string{"pid_file": "x.pid"}, want: []string{`pid_file="x.pid"`}},
		{params: map[string]string{"log": "server.log"}, want: []string{`log="server.log"`}},
		// Every problem at once.
		{params: map[string]string{"log": "l", "port": "-1", "nodename": "x"}, want: []string{`log="l"`, `port="-1"`, `nodename="x"`}},
	} {
		env := map[string]string{}
		for k, v := range tc.params {
			env["OCF_RESKEY_"+k] = v
		}
		err := RabbitMQFromEnv(ocfEnv(env)).Validate()
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%v: %v", tc.params, err)
			}
			continue
		}
		if c := pacemaker.OCFCode(err); c != pacemaker.OCFErrConfigured {
			t.Errorf("%v: code %d (%v), want %d", tc.params, c, err, pacemaker.OCFErrConfigured)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q does not say %q", tc.params, err, w)
			}
		}
	}
}

func TestRabbitMQMetaData(t *testing.T) {
	env := ocfEnv(nil)
	md := metaData(t, RabbitMQFromEnv(env), env)
	var params []string
	for _, p := range md.Params {
		params = append(params, p.Name)
	}
	if md.Name != "rabbitmq" || strings.Join(params, " ") != "nodename server mnesia_base pid_file port log user config boot_timeout" {
		t.Fatalf("name %q, params %v", md.Name, params)
	}
	var actions []string
	for _, a := range md.Actions {
		actions = append(actions, a.Name+"/"+a.Timeout+"/"+a.Interval)
	}
	if got := strings.Join(actions, " "); got != "start/60s/ stop/120s/ monitor/30s/60s validate-all/10s/ meta-data/5s/" {
		t.Fatalf("actions: %s", got)
	}
}

// A server that exits while starting: the reason quotes its output, with
// the hint when it was waiting for its peer. One that keeps waiting is
// the monitor's: degraded with the hint, then failed after boot_timeout.
func TestRabbitMQStartServerExits(t *testing.T) {
	testenv.RequireCommands(t, "env", "sh")
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	// The advice first: Pacemaker shows the first 128 characters.
	const hint = "waiting for rabbit@ctl2, which was running when this node stopped: start it first, or force_boot if it is lost; "
	for _, tc := range []struct {
		name, script string
		want         []string // the reason starts with the first
	}{
		{"crash", "echo starting; echo 'BOOT FAILED: eaddrinuse' >&2; exit 1", []string{"rabbitmq-server for rabbit@test (launcher pid ", ") exited while starting; ", "extra x | starting | BOOT FAILED: eaddrinuse"}},
		{"gave up", `echo "Waiting for Mnesia tables for 30000 ms, 9 retries left"; echo "Timeout contacting cluster nodes: ['rabbit@ctl2']."; exit 1`,
			[]string{hint + "rabbitmq-server for rabbit@test (launcher pid ", ") exited while starting; "}},
		// Still waiting after the start: the monitor's to report.
		{"waiting", `echo "Waiting for Mnesia tables for 30000 ms, 9 retries left"
echo "Error while waiting for Mnesia tables: {timeout_waiting_for_tables,['rabbit@test','rabbit@ctl2'],[rabbit_durable_queue]}"
exec sleep 60`,
			[]string{"rabbitmq node rabbit@test launched ", "no beam yet", "waiting for rabbit@ctl2, which was running when this node stopped"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			server := filepath.Join(dir, "rabbitmq-server")
			// The script also shows the environment the agent sets.
			os.WriteFile(server, []byte("#!/bin/sh\necho \"node $RABBITMQ_NODENAME pid $RABBITMQ_PID_FILE mnesia $RABBITMQ_MNESIA_BASE extra $EXTRA\"\n"+tc.script+"\n"), 0o755)
			a := &RabbitMQ{
				Nodename: "rabbit@test", Server: server, MnesiaBase: filepath.Join(dir, "mnesia"),
				PidFile: filepath.Join(dir, "run", "rabbit.pid"), Port: "1", LogFile: filepath.Join(dir, "log", "server.log"),
				User: u.Username, Env: []string{"EXTRA=x"}, Daemon: runner.Exec{}.StartDaemon,
			}
			launchFromTest(a)
			// A stale pid file (pid 0x7fffffff does not exist).
			os.MkdirAll(filepath.Dir(a.PidFile), 0o755)
			os.WriteFile(a.PidFile, []byte("2147483647\n"), 0o644)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			t.Cleanup(func() { a.Stop(context.Background()) })
			err := a.Start(ctx)
			if tc.name == "waiting" {
				if err != nil {
					t.Fatalf("start: %v", err)
				}
				// The launcher exec'd the script, which is still waiting.
				err = a.Monitor(ctx)
				if c := pacemaker.OCFCode(err); c != pacemaker.OCFDegraded {
					t.Fatalf("monitor while waiting: code %d, %v", c, err)
				}
				a.BootTimeout = time.Millisecond
				if c := pacemaker.OCFCode(a.Monitor(ctx)); c != pacemaker.OCFErrGeneric {
					t.Errorf("monitor after boot_timeout: code %d", c)
				}
				if err := a.Stop(ctx); err != nil {
					t.Fatalf("stop: %v", err)
				}
				if _, _, alive := a.launcher(); alive {
					t.Errorf("the launcher outlived stop")
				}
				if c := pacemaker.OCFCode(a.Monitor(ctx)); c != pacemaker.OCFNotRunning {
					t.Errorf("monitor after stop: code %d", c)
				}
			} else if c := pacemaker.OCFCode(err); c != pacemaker.OCFErrGeneric {
				t.Fatalf("start: code %d, %v", c, err)
			}
			if !strings.HasPrefix(err.Error(), tc.want[0]) {
				t.Errorf("%q does not start with %q", err, tc.want[0])
			}
			for _, w := range tc.want[1:] {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
			out, _ := os.ReadFile(a.LogFile)
			if want := "node rabbit@test pid " + a.PidFile + " mnesia " + a.MnesiaBase + " extra x"; !strings.Contains(string(out), want) {
				t.Errorf("server output %q, want %q", out, want)
			}
			if _, err := os.Stat(a.MnesiaBase); err != nil {
				t.Errorf("mnesia_base not created: %v", err)
			}
			if _, err := os.Stat(a.PidFile); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("stale pid file kept: %v", err)
			}
		})
	}
}

// A probe where the node never ran (no pid file, not even its directory):
// 7, and nothing on stderr.
func TestRabbitMQProbeNeverStarted(t *testing.T) {
	dir := t.TempDir()
	env := ocfEnv(map[string]string{"OCF_RESKEY_mnesia_base": filepath.Join(dir, "mnesia"), "OCF_RESKEY_CRM_meta_interval": "0"})
	a := RabbitMQFromEnv(env)
	var stderr bytes.Buffer
	if c := pacemaker.RunAgent(context.Background(), a, "monitor", env, io.Discard, &stderr, slog.New(slog.NewTextHandler(&stderr, nil))); c != pacemaker.OCFNotRunning || stderr.Len() != 0 {
		t.Fatalf("probe: code %d, stderr %q", c, stderr.String())
	}
	// A pid file naming a live process that is no Erlang VM (this test).
	os.MkdirAll(a.MnesiaBase, 0o755)
	os.WriteFile(a.PidFile, []byte(strconv.Itoa(os.Getpid())), 0o644)
	if c := pacemaker.OCFCode(a.Monitor(context.Background())); c != pacemaker.OCFNotRunning {
		t.Fatalf("probe with a reused pid: code %d", c)
	}
	if err := a.Stop(context.Background()); err != nil {
		t.Fatalf("stop with a reused pid: %v", err)
	}
	if _, err := os.Stat(a.PidFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stop kept the stale pid file: %v", err)
	}
	// A launch file from before a reboot whose pid now names another
	// process (this test): not a launcher, so not running, and a stop
	// signals nothing.
	os.WriteFile(a.launchFile(), []byte(strconv.Itoa(os.Getpid())+"\nlaunched\n1\n"), 0o644)
	if _, _, alive := a.launcher(); alive {
		t.Fatal("a reused pid taken for the launcher")
	}
	if c := pacemaker.OCFCode(a.Monitor(context.Background())); c != pacemaker.OCFNotRunning {
		t.Fatalf("monitor with a stale launch file: code %d", c)
	}
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// agentNode is a private RabbitMQ node for the agent's tests, like
// testBroker (own node name, ports, data and log directories, 127.0.0.1
// only, an epmd of its own) but started and stopped by the Agent, through
// the server script the agent uses by default (Debian's su's to rabbitmq).
type agentNode struct {
	dir      string
	agent    *RabbitMQ
	params   map[string]string
	user     string
	password string
}

// requireAgentNodes skips (fails in CI) unless the agent's tests can run
// a private node: rabbitmq-server, epmd, root and the rabbitmq user.
func requireAgentNodes(t *testing.T) {
	t.Helper()
	testenv.RequireCommands(t, "rabbitmq-server", "epmd")
	testenv.RequireRoot(t)
	if _, err := user.Lookup(rabbitmq.DefaultUser); err != nil {
		testenv.Missing(t, "no rabbitmq user: "+err.Error())
	}
}

// privateEPMD runs an epmd on a free loopback port until the test ends,
// so that the nodes neither start nor use the machine's.
func privateEPMD(t *testing.T) int {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := runner.Exec{}.RunCmd(ctx, runner.Cmd{Name: "epmd", Args: []string{"-port", strconv.Itoa(port), "-address", "127.0.0.1"}})
		done <- err
	}()
	t.Cleanup(func() { stop(); <-done })
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := testenv.WaitListening(wctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), done); err != nil {
		t.Fatalf("epmd: %v", err)
	}
	return port
}

// agentNodename is the private node name for name.
func agentNodename(name string) string {
	return "haconf-agent-test-" + name + "-" + strconv.Itoa(os.Getpid()) + "@localhost"
}

// newAgentNode prepares (does not start) the node agentNodename(name),
// registered with the epmd on epmdPort, with conf added to its
// rabbitmq.conf. Nodes that are to cluster need the same cookie. The
// node is stopped and its directory removed when the test ends.
func newAgentNode(t *testing.T, name string, epmdPort int, cookie string, conf ...string) *agentNode {
	t.Helper()
	rmq, err := user.Lookup(rabbitmq.DefaultUser)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(rmq.Uid)
	gid, _ := strconv.Atoi(rmq.Gid)
	server := rabbitmq.DefaultServer
	if _, err := os.Stat(server); err != nil {
		server = testenv.RequireCommands(t, "rabbitmq-server")[0]
	}

	dir, err := os.MkdirTemp("", "haconf-rabbitmq-agent-test-")
	if err != nil {
		t.Fatal(err)
	}
	n := &agentNode{dir: dir, user: "haconf-agent-test"}
	pw := make([]byte, 18)
	rand.Read(pw)
	n.password = hex.EncodeToString(pw)
	amqpPort, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	distPort, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"home", "log"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"rabbitmq.conf": strings.Join(append([]string{
			"default_user = " + n.user,
			"default_pass = " + n.password,
			"default_vhost = /",
			"disk_free_limit.absolute = 50MB",
			"log.console = false",
			"log.file.level = info",
		}, conf...), "\n") + "\n",
		"enabled_plugins":   "[].\n",
		"rabbitmq-env.conf": "", // instead of /etc/rabbitmq/rabbitmq-env.conf
		// Used when the server script does not su (which sets HOME to
		// /var/lib/rabbitmq: the node then only reads the machine's cookie).
		"home/.erlang.cookie": cookie,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	// The node runs as the rabbitmq user: it gets the directory (the
	// agent creates mnesia itself, as on a new controller).
	filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err == nil {
			err = os.Chown(p, uid, gid)
		}
		return err
	})

	n.params = map[string]string{
		"OCF_RESKEY_nodename":    agentNodename(name),
		"OCF_RESKEY_server":      server,
		"OCF_RESKEY_mnesia_base": filepath.Join(dir, "mnesia"),
		"OCF_RESKEY_port":        strconv.Itoa(amqpPort),
		"OCF_RESKEY_log":         filepath.Join(dir, "log", "server.log"),
	}
	a := RabbitMQFromEnv(ocfEnv(n.params))
	a.Daemon = runner.Exec{}.StartDaemon
	a.Log = slog.New(slog.NewTextHandler(tWriter{t}, nil)).With("test_node", name)
	a.Env = []string{
		"ERL_EPMD_PORT=" + strconv.Itoa(epmdPort),
		"HOME=" + filepath.Join(dir, "home"),
		"ERL_CRASH_DUMP=" + filepath.Join(dir, "log", "erl_crash.dump"),
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT=" + strconv.Itoa(amqpPort),
		"RABBITMQ_DIST_PORT=" + strconv.Itoa(distPort),
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
		"RABBITMQ_LOG_BASE=" + filepath.Join(dir, "log"),
		"RABBITMQ_CONFIG_FILE=" + filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE=" + filepath.Join(dir, "advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE=" + filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_CONF_ENV_FILE=" + filepath.Join(dir, "rabbitmq-env.conf"),
	}
	launchFromTest(a)
	n.agent = a
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, pid := range n.processes() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if !t.Failed() {
			os.RemoveAll(dir)
			return
		}
		// Keep the logs only: rabbitmq.conf holds the password.
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.Name() != "log" {
				os.RemoveAll(filepath.Join(dir, e.Name()))
			}
		}
		t.Logf("node %s: logs kept in %s", name, filepath.Join(dir, "log"))
	})
	return n
}

func (n *agentNode) endpoint() workload.Endpoint {
	return workload.Endpoint{Addrs: []string{n.agent.addr()}, User: n.user, Password: n.password, DialTimeout: 2 * time.Second}
}

// run performs an OCF action as Pacemaker would: through RunAgent, with
// the parameters in the environment. interval is 0 for a probe.
func (n *agentNode) run(ctx context.Context, action string, interval time.Duration) (int, string) {
	env := map[string]string{"OCF_RESKEY_CRM_meta_interval": strconv.Itoa(int(interval.Milliseconds()))}
	if d, ok := ctx.Deadline(); ok {
		env["OCF_RESKEY_CRM_meta_timeout"] = strconv.Itoa(int(time.Until(d).Milliseconds()))
	}
	for k, v := range n.params {
		env[k] = v
	}
	var stderr bytes.Buffer
	code := pacemaker.RunAgent(ctx, n.agent, action, ocfEnv(env), io.Discard, &stderr, slog.New(slog.NewTextHandler(&stderr, nil)))
	return code, stderr.String()
}

// waitBooted polls monitor as Pacemaker's recurring one would until the
// node answers (0), allowing degraded (190) while it boots; it returns
// the degraded reasons seen. Any other result fails t.
func (n *agentNode) waitBooted(t *testing.T, ctx context.Context, timeout time.Duration) []string {
	t.Helper()
	var seen []string
	begin := time.Now()
	for {
		code, stderr := n.run(ctx, "monitor", time.Minute)
		switch {
		case code == 0:
			t.Logf("%s booted %s after the start returned", n.agent.Nodename, time.Since(begin).Round(time.Millisecond))
			return seen
		case code != pacemaker.OCFDegraded:
			t.Fatalf("%s: monitor while booting: code %d: %s\n%s", n.agent.Nodename, code, stderr, logTail(n.agent.LogFile, 20))
		case time.Since(begin) > timeout:
			t.Fatalf("%s: still booting after %v: %s", n.agent.Nodename, timeout, stderr)
		}
		seen = append(seen, stderr)
		time.Sleep(500 * time.Millisecond)
	}
}

// processes are the pids whose environment names this node: the beam and
// the scripts and su around it.
func (n *agentNode) processes() []int {
	want := []byte("RABBITMQ_NODENAME=" + n.agent.Nodename + "\x00")
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err == nil && bytes.Contains(env, want) && proc.Alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// beams are the node's Erlang VMs.
func (n *agentNode) beams() []int {
	var out []int
	for _, pid := range n.processes() {
		if isBeam(pid) {
			out = append(out, pid)
		}
	}
	return out
}

func randomCookie() string {
	b := make([]byte, 16)
	rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestRabbitMQLifecycle drives ocf:haconf:rabbitmq against a real
// rabbitmq-server: probe, start, idempotent start, kill -9, recovery on
// the same data (a persistent message survives), stop.
func TestRabbitMQLifecycle(t *testing.T) {
	requireAgentNodes(t)
	n := newAgentNode(t, "solo", privateEPMD(t), randomCookie())
	a := n.agent
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	opCtx := func(d time.Duration) (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, d) }
	must := func(what string, code int, stderr string, want int) {
		t.Helper()
		if code != want {
			t.Fatalf("%s: code %d, want %d: %s\n%s", what, code, want, stderr, logTail(a.LogFile, 20))
		}
	}

	// A probe on a node never started: 7 and nothing on stderr.
	code, stderr := n.run(ctx, "monitor", 0)
	must("probe before start", code, stderr, pacemaker.OCFNotRunning)
	if stderr != "" {
		t.Fatalf("probe before start wrote %q", stderr)
	}
	code, stderr = n.run(ctx, "stop", 0)
	must("stop before start", code, stderr, 0)

	sctx, scancel := opCtx(3 * time.Minute)
	begin := time.Now()
	code, stderr = n.run(sctx, "start", 0)
	scancel()
	must("start", code, stderr, 0)
	t.Logf("start took %s", time.Since(begin).Round(time.Millisecond))
	n.waitBooted(t, ctx, 3*time.Minute)
	if err := rabbitmq.Handshake(ctx, a.addr()); err != nil {
		t.Fatalf("handshake after start: %v", err)
	}
	if st, err := os.Stat(a.MnesiaBase); err != nil || st.Sys().(*syscall.Stat_t).Uid == 0 {
		t.Fatalf("mnesia_base not created for the rabbitmq user: %v", err)
	}
	pid, ok := a.running()
	if beams := n.beams(); !ok || len(beams) != 1 || beams[0] != pid {
		t.Fatalf("pid file says %d (%v), the node's beams are %v", pid, ok, beams)
	}

	begin = time.Now()
	code, stderr = n.run(ctx, "start", 0)
	must("second start", code, stderr, 0)
	t.Logf("second start took %s", time.Since(begin).Round(time.Millisecond))
	if beams := n.beams(); len(beams) != 1 || beams[0] != pid {
		t.Fatalf("second start: beams %v, want only %d", beams, pid)
	}
	begin = time.Now()
	code, stderr = n.run(ctx, "monitor", time.Minute)
	must("monitor", code, stderr, 0)
	t.Logf("monitor took %s", time.Since(begin).Round(time.Microsecond))

	// A hung node: the beam is there, AMQP does not answer.
	syscall.Kill(pid, syscall.SIGSTOP)
	// kill returns before every thread of the beam has stopped: wait for
	// the stopped state (T) the kernel reports.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if f := strings.Fields(string(st)); len(f) > 2 && f[2] == "T" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("beam %d not stopped 5 s after SIGSTOP", pid)
		}
	}
	mctx, mcancel := opCtx(3 * time.Second)
	code, stderr = n.run(mctx, "monitor", time.Minute)
	mcancel()
	syscall.Kill(pid, syscall.SIGCONT)
	must("monitor of a stopped (SIGSTOP) beam", code, stderr, pacemaker.OCFErrGeneric)
	if !strings.Contains(stderr, "ocf-exit-reason:rabbitmq node "+a.Nodename+" (pid "+strconv.Itoa(pid)+") does not answer AMQP") {
		t.Fatalf("monitor of a hung node: %s", stderr)
	}
	code, stderr = n.run(ctx, "monitor", time.Minute)
	must("monitor after SIGCONT", code, stderr, 0)

	// No pid file (a slow boot writes it late; here it is hidden): the
	// beam is found by its environment, and a start launches no second
	// server (one did, which died on the first one's distribution port).
	if err := os.Rename(a.PidFile, a.PidFile+".hidden"); err != nil {
		t.Fatal(err)
	}
	code, stderr = n.run(ctx, "monitor", time.Minute)
	must("monitor without the pid file", code, stderr, 0)
	code, stderr = n.run(ctx, "start", 0)
	must("start without the pid file", code, stderr, 0)
	if beams := n.beams(); len(beams) != 1 || beams[0] != pid {
		t.Fatalf("start without the pid file: beams %v, want only %d", beams, pid)
	}
	if err := os.Rename(a.PidFile+".hidden", a.PidFile); err != nil {
		t.Fatal(err)
	}

	// A persistent message, confirmed before the crash. The queue exists a
	// few seconds before it: RabbitMQ 3.10 writes a durable queue's
	// declaration to Mnesia's log asynchronously, and on a loaded host a
	// queue declared under a second before the SIGKILL was gone after the
	// restart (as lab/workload's crash test found). What is tested is that
	// confirmed messages survive, not a declaration racing the crash.
	p := &workload.Publisher{Endpoint: n.endpoint(), Queue: "haconf-agent-test", Count: 3}
	if err := declareQueue(ctx, p.Endpoint, p.Queue, false); err != nil {
		t.Fatalf("declare %s: %v", p.Queue, err)
	}
	time.Sleep(2 * time.Second)
	res, err := p.Run(ctx)
	if err != nil || len(res.Confirmed) != 3 {
		t.Fatalf("publish: %v, %+v", err, res)
	}

	// The crash: the pid file stays, the beam is gone. 7 for the probe
	// and the recurring monitor alike (see Agent.Monitor).
	syscall.Kill(pid, syscall.SIGKILL)
	for isBeam(pid) {
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(a.PidFile); err != nil {
		t.Fatalf("the crash took the pid file: %v", err)
	}
	code, stderr = n.run(ctx, "monitor", time.Minute)
	must("monitor after kill -9", code, stderr, pacemaker.OCFNotRunning)
	code, stderr = n.run(ctx, "monitor", 0)
	must("probe after kill -9", code, stderr, pacemaker.OCFNotRunning)

	sctx, scancel = opCtx(3 * time.Minute)
	begin = time.Now()
	code, stderr = n.run(sctx, "start", 0)
	scancel()
	must("start after kill -9", code, stderr, 0)
	t.Logf("start after kill -9 took %s", time.Since(begin).Round(time.Millisecond))
	n.waitBooted(t, ctx, 3*time.Minute)
	pid2, _ := a.running()
	if beams := n.beams(); pid2 == pid || len(beams) != 1 || beams[0] != pid2 {
		t.Fatalf("after the restart: pid file %d (before %d), beams %v", pid2, pid, beams)
	}
	// Same data: the queue and its messages are still there.
	d, err := workload.Drain(ctx, n.endpoint(), p.Queue)
	if err != nil {
		t.Fatalf("drain after the restart: %v", err)
	}
	if v := workload.Verify(res, d); v.Err() != nil || d.Messages != 3 {
		t.Fatalf("after the restart: %d messages, %+v: %v", d.Messages, v, v.Err())
	}

	stctx, stcancel := opCtx(2 * time.Minute)
	begin = time.Now()
	code, stderr = n.run(stctx, "stop", 0)
	stcancel()
	must("stop", code, stderr, 0)
	t.Logf("stop took %s", time.Since(begin).Round(time.Millisecond))
	if isBeam(pid2) {
		t.Fatalf("beam %d still running after stop", pid2)
	}
	if _, err := os.Stat(a.PidFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pid file left after stop: %v", err)
	}
	// The scripts and su around the beam follow it out.
	for deadline := time.Now().Add(10 * time.Second); len(n.processes()) > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("processes of the node left after stop: %v", n.processes())
		}
	}
	code, stderr = n.run(ctx, "stop", 0)
	must("second stop", code, stderr, 0)
	code, stderr = n.run(ctx, "monitor", 0)
	must("probe after stop", code, stderr, pacemaker.OCFNotRunning)
}

// TestRabbitMQStartWaitsForPeer: two private nodes clustered through
// classic_config; a stops first, then b. Started alone, a waits for b (the
// last one running) and fails with the hint; once b runs, a starts and
// rejoins by itself, its data intact. The agent joins nothing.
func TestRabbitMQStartWaitsForPeer(t *testing.T) {
	requireAgentNodes(t)
	epmd, cookie := privateEPMD(t), randomCookie()
	conf := []string{
		"cluster_formation.peer_discovery_backend = classic_config",
		"cluster_formation.classic_config.nodes.1 = " + agentNodename("a"),
		"cluster_formation.classic_config.nodes.2 = " + agentNodename("b"),
		// Give up waiting for the peer after 2 x 3 s instead of 10 x 30 s.
		"mnesia_table_loading_retry_timeout = 3000",
		"mnesia_table_loading_retry_limit = 2",
	}
	a, b := newAgentNode(t, "a", epmd, cookie, conf...), newAgentNode(t, "b", epmd, cookie, conf...)
	b.user, b.password = a.user, a.password // b joins a: a's users
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	step := func(n *agentNode, action string, timeout time.Duration, want int) string {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, timeout)
		defer scancel()
		begin := time.Now()
		code, stderr := n.run(sctx, action, 0)
		t.Logf("%s %s: %d in %s", n.agent.Nodename, action, code, time.Since(begin).Round(time.Millisecond))
		if code != want {
			t.Fatalf("%s %s: code %d, want %d: %s\n%s", n.agent.Nodename, action, code, want, stderr, logTail(n.agent.LogFile, 20))
		}
		if action == "start" {
			n.waitBooted(t, ctx, 3*time.Minute)
		}
		return stderr
	}
	step(a, "start", 3*time.Minute, 0)
	step(b, "start", 3*time.Minute, 0)
	// A durable queue with a message on a; b sees the queue: one cluster.
	p := &workload.Publisher{Endpoint: a.endpoint(), Queue: "haconf-agent-test-pair", Count: 1}
	res, err := p.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := declarePassive(ctx, b.endpoint(), p.Queue); err != nil {
		t.Fatalf("b does not see a's queue (not clustered?): %v", err)
	}
	step(a, "stop", 2*time.Minute, 0)
	step(b, "stop", 2*time.Minute, 0)

	// Started alone, a waits for b: the start returns, the monitor says
	// degraded with the advice while RabbitMQ waits for b's tables, then
	// not running once RabbitMQ gives up.
	if code, stderr := a.run(ctx, "start", 0); code != 0 {
		t.Fatalf("start of a without b: code %d: %s", code, stderr)
	}
	want := "waiting for " + b.agent.Nodename + ", which was running when this node stopped: start it first, or force_boot if it is lost"
	var hinted bool
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		code, stderr := a.run(ctx, "monitor", time.Minute)
		if code == pacemaker.OCFNotRunning {
			break
		}
		if code != pacemaker.OCFDegraded || time.Now().After(deadline) {
			t.Fatalf("monitor of a waiting for b: code %d: %s", code, stderr)
		}
		hinted = hinted || strings.Contains(stderr, want)
	}
	if !hinted {
		t.Errorf("monitor of a waiting for b never said %q", want)
	}
	if beams := a.beams(); len(beams) != 0 {
		t.Fatalf("a's failed start left beams %v", beams)
	}

	step(b, "start", 3*time.Minute, 0)
	step(a, "start", 3*time.Minute, 0)
	d, err := workload.Drain(ctx, a.endpoint(), p.Queue)
	if err != nil {
		t.Fatal(err)
	}
	if v := workload.Verify(res, d); v.Err() != nil || d.Messages != 1 {
		t.Fatalf("a after rejoining: %d messages: %v", d.Messages, v.Err())
	}
	step(a, "stop", 2*time.Minute, 0)
	step(b, "stop", 2*time.Minute, 0)
}

// declarePassive checks that queue exists, as the broker at e sees it.
func declarePassive(ctx context.Context, e workload.Endpoint, queue string) error {
	return declareQueue(ctx, e, queue, true)
}

// declareQueue declares the durable queue at e, or with passive checks
// that it exists.
func declareQueue(ctx context.Context, e workload.Endpoint, queue string, passive bool) error {
	conn, _, err := e.Dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	declare := ch.QueueDeclare
	if passive {
		declare = ch.QueueDeclarePassive
	}
	_, err = declare(queue, true, false, false, false, nil)
	return err
}

// A blank node that is not the seed does not boot while the seed does not
// answer: it would form a cluster of its own.
func TestRabbitMQBlankNodeWaitsForTheSeed(t *testing.T) {
	dir := t.TempDir()
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	conf := filepath.Join(dir, "rabbitmq.conf")
	os.WriteFile(conf, []byte("cluster_formation.classic_config.nodes.1 = rabbit@127.0.0.1\ncluster_formation.classic_config.nodes.2 = rabbit@localhost\n"), 0o644)
	started := false
	a := &RabbitMQ{Nodename: "rabbit@localhost", MnesiaBase: filepath.Join(dir, "mnesia"), Port: port, Config: conf,
		Daemon: func(string, []string, string) (int, error) { started = true; return 0, errors.New("must not start") }}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	err = a.waitSeed(ctx)
	if err == nil || !strings.Contains(err.Error(), "waits for the seed rabbit@127.0.0.1") {
		t.Fatalf("waitSeed = %v", err)
	}
	if started {
		t.Error("the server was started")
	}
	// Not blank (it booted before): no wait, its database knows its cluster.
	os.MkdirAll(filepath.Join(a.MnesiaBase, a.Nodename), 0o750)
	os.WriteFile(filepath.Join(a.MnesiaBase, a.Nodename, "schema.DAT"), nil, 0o640)
	if err := a.waitSeed(context.Background()); err != nil {
		t.Errorf("non-blank node waited: %v", err)
	}
	// The seed itself never waits.
	b := &RabbitMQ{Nodename: "rabbit@127.0.0.1", MnesiaBase: filepath.Join(dir, "other"), Port: port, Config: conf}
	if err := b.waitSeed(context.Background()); err != nil {
		t.Errorf("the seed waited: %v", err)
	}
}

// A blank node that is not the seed, started while the seed does not
// answer: the start returns, the launcher waits, monitor says degraded for
// as long as it waits (boot_timeout counts the node's own boot only), and
// stop ends the launcher before the server ever ran.
func TestRabbitMQLauncherWaitsForTheSeed(t *testing.T) {
	testenv.RequireCommands(t, "env", "sh")
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close() // nothing answers there
	conf := filepath.Join(dir, "rabbitmq.conf")
	os.WriteFile(conf, []byte("cluster_formation.classic_config.nodes.1 = rabbit@127.0.0.1\ncluster_formation.classic_config.nodes.2 = rabbit@localhost\n"), 0o644)
	server := filepath.Join(dir, "rabbitmq-server")
	os.WriteFile(server, []byte("#!/bin/sh\necho SERVER RAN\nexec sleep 60\n"), 0o755)
	a := &RabbitMQ{Nodename: "rabbit@localhost", Server: server, MnesiaBase: filepath.Join(dir, "mnesia"),
		PidFile: filepath.Join(dir, "run", "rabbit.pid"), Port: port, LogFile: filepath.Join(dir, "server.log"),
		User: u.Username, Config: conf, BootTimeout: time.Millisecond, Daemon: runner.Exec{}.StartDaemon}
	launchFromTest(a)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Cleanup(func() { a.Stop(context.Background()) })
	if err := a.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, _, phase, _ := a.launch(); phase == phaseSeedWait {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the launcher never said it waits for the seed; log: %s", logTail(a.LogFile, 5))
		}
	}
	time.Sleep(10 * time.Millisecond) // past boot_timeout
	err = a.Monitor(ctx)
	if c := pacemaker.OCFCode(err); c != pacemaker.OCFDegraded || !strings.Contains(err.Error(), "waits for the seed rabbit@127.0.0.1") {
		t.Fatalf("monitor while waiting for the seed: code %d, %v", c, err)
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, _, alive := a.launcher(); alive {
		t.Error("the launcher outlived stop")
	}
	if c := pacemaker.OCFCode(a.Monitor(ctx)); c != pacemaker.OCFNotRunning {
		t.Errorf("monitor after stop: code %d", c)
	}
	if out, _ := os.ReadFile(a.LogFile); strings.Contains(string(out), "SERVER RAN") {
		t.Errorf("the server ran before the seed answered:\n%s", out)
	}
}

// The launcher can record that it waits for the seed before Start records
// it as launched (a loaded host schedules the child first): Start's older
// record must not hide the launcher's (it did, once, in CI).
func TestRabbitMQLaunchRecordKeepsTheLaunchersPhase(t *testing.T) {
	a := &RabbitMQ{PidFile: filepath.Join(t.TempDir(), "rabbit.pid")}
	pid := os.Getpid()
	if err := a.writeLaunch(pid, phaseSeedWait); err != nil {
		t.Fatal(err)
	}
	if err := a.recordLaunch(pid); err != nil {
		t.Fatal(err)
	}
	if _, _, phase, alive := a.launch(); phase != phaseSeedWait || !alive {
		t.Errorf("phase %q alive %v, want %q", phase, alive, phaseSeedWait)
	}
	os.Remove(a.launchFile())
	if err := a.recordLaunch(pid); err != nil {
		t.Fatal(err)
	}
	if _, _, phase, _ := a.launch(); phase != phaseLaunched {
		t.Errorf("phase %q, want %q", phase, phaseLaunched)
	}
}

// TestRabbitMQQuorumConfOnThisRelease checks rabbitmq.CheckMode's claim
// about quorum mode against the broker on this machine: a release it
// refuses (Debian 12's 3.10.8) does not start with quorum mode's
// default_queue_type line, a release it accepts does.
func TestRabbitMQQuorumConfOnThisRelease(t *testing.T) {
	requireAgentNodes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	v, installed, err := rabbitmq.PackageVersion(ctx, runner.Exec{})
	if err != nil || !installed {
		testenv.Missing(t, fmt.Sprintf("rabbitmq-server's release: installed=%v %v", installed, err))
	}
	refused := rabbitmq.CheckMode(rabbitmq.ModeQuorum, v)
	t.Logf("RabbitMQ %s; CheckMode(quorum): %v", v, refused)
	n := newAgentNode(t, "quorum-conf", privateEPMD(t), randomCookie(), "default_queue_type = quorum")
	code, stderr := n.run(ctx, "start", 0)
	// The start returns once the broker is launched: its monitor tells
	// whether it boots (0) or has stopped (anything but degraded).
	for booting := code == 0; booting; booting = code == pacemaker.OCFDegraded {
		time.Sleep(500 * time.Millisecond)
		code, stderr = n.run(ctx, "monitor", time.Minute)
	}
	b, _ := os.ReadFile(n.agent.LogFile)
	log := string(b)
	switch {
	case refused != nil && code == 0:
		t.Fatalf("RabbitMQ %s booted with default_queue_type, which CheckMode refuses: %v", v, refused)
	case refused != nil && !strings.Contains(log, "Conf file attempted to set unknown variable: default_queue_type"):
		t.Fatalf("RabbitMQ %s did not boot (code %d), but not for default_queue_type: %s\n%s", v, code, stderr, logTail(n.agent.LogFile, 40))
	case refused == nil && code != 0:
		t.Fatalf("RabbitMQ %s: boot with default_queue_type: code %d: %s\n%s", v, code, stderr, logTail(n.agent.LogFile, 40))
	}
	t.Logf("monitor after the start: code %d (%s)", code, strings.TrimSpace(stderr))
}
