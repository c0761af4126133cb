package rabbitmq

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
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
	"github.com/haconf/haconf/pacemaker"
)

func ocfEnv(kv map[string]string) pacemaker.OCFEnv {
	return pacemaker.OCFEnv{Getenv: func(k string) string { return kv[k] }}
}

func TestAgentDefaults(t *testing.T) {
	a := AgentFromEnv(ocfEnv(nil))
	host, _ := os.Hostname()
	short, _, _ := strings.Cut(host, ".")
	want := Agent{
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
	b := AgentFromEnv(ocfEnv(map[string]string{"OCF_RESKEY_nodename": "rabbit@ctl2", "OCF_RESKEY_mnesia_base": "/srv/mnesia"}))
	if b.PidFile != "/srv/mnesia/rabbit@ctl2.pid" {
		t.Fatalf("pid_file = %s", b.PidFile)
	}
}

func TestAgentValidate(t *testing.T) {
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
		err := AgentFromEnv(ocfEnv(env)).Validate()
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

func TestAgentMetaData(t *testing.T) {
	var out bytes.Buffer
	env := ocfEnv(nil)
	if c := pacemaker.RunAgent(context.Background(), AgentFromEnv(env), "meta-data", env, &out, io.Discard, slog.New(slog.DiscardHandler)); c != 0 {
		t.Fatalf("meta-data: %d", c)
	}
	var md struct {
		Name   string `xml:"name,attr"`
		Params []struct {
			Name string `xml:"name,attr"`
		} `xml:"parameters>parameter"`
		Actions []struct {
			Name     string `xml:"name,attr"`
			Timeout  string `xml:"timeout,attr"`
			Interval string `xml:"interval,attr"`
		} `xml:"actions>action"`
	}
	if err := xml.Unmarshal(out.Bytes(), &md); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	var params []string
	for _, p := range md.Params {
		params = append(params, p.Name)
	}
	if md.Name != "rabbitmq" || strings.Join(params, " ") != "nodename server mnesia_base pid_file port log user config" {
		t.Fatalf("name %q, params %v", md.Name, params)
	}
	var actions []string
	for _, a := range md.Actions {
		actions = append(actions, a.Name+"/"+a.Timeout+"/"+a.Interval)
	}
	if got := strings.Join(actions, " "); got != "start/600s/ stop/120s/ monitor/30s/60s validate-all/10s/ meta-data/5s/" {
		t.Fatalf("actions: %s", got)
	}
}

// connectionStart is the start of a real connection.start frame
// (RabbitMQ 3.10.8): type 1, channel 0, size, class 10, method 10,
// version 0-9, then the server properties (cut short here).
var connectionStart = []byte{1, 0, 0, 0, 0, 0, 0x10, 0, 0x0a, 0, 0x0a, 0, 9, 0, 0, 0, 0, 0xce}

// fakeServer accepts one connection, reads the 8-byte protocol header into
// got, answers with reply (or nothing when reply is nil) and closes (or,
// with hang, waits until the test ends).
func fakeServer(t *testing.T, reply []byte, hang bool) (addr string, got chan []byte) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close() })
	got = make(chan []byte, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		hdr := make([]byte, 8)
		n, _ := io.ReadFull(c, hdr)
		got <- hdr[:n]
		if reply != nil {
			c.Write(reply)
		}
		if hang {
			<-done
		}
	}()
	return l.Addr().String(), got
}

func TestHandshake(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply []byte
		hang  bool
		want  string // in the error; "" for success
	}{
		{name: "connection.start", reply: connectionStart},
		{name: "http", reply: []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), want: "not an AMQP connection.start frame: got 48 54 54 50"},
		{name: "other method", reply: []byte{1, 0, 0, 0, 0, 0, 4, 0, 0x0a, 0, 0x1e, 0xce}, want: "not an AMQP connection.start frame"},
		{name: "other channel", reply: []byte{1, 0, 1, 0, 0, 0, 4, 0, 0x0a, 0, 0x0a, 0xce}, want: "not an AMQP connection.start frame"},
		{name: "protocol refused", reply: []byte("AMQP\x00\x00\x09\x01"), want: `server refused AMQP 0-9-1: it answered with protocol header "AMQP\x00\x00\t\x01"`},
		{name: "short and closed", reply: []byte{1, 0}, want: `read connection.start: unexpected EOF after "\x01\x00"`},
		{name: "closed", want: "read connection.start: EOF"},
		{name: "silent", hang: true, want: "read connection.start: context deadline exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, got := fakeServer(t, tc.reply, tc.hang)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			err := Handshake(ctx, addr)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Handshake: %v, want %q", err, tc.want)
			}
			if h := <-got; string(h) != "AMQP\x00\x00\x09\x01" {
				t.Fatalf("protocol header sent: %q", h)
			}
		})
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	if err := Handshake(context.Background(), net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("nothing listening: %v", err)
	}
}

// Logs of RabbitMQ 3.10.8 node a, clustered with b, stopped first and
// started alone (captured from TestAgentStartWaitsForPeer; node names
// replaced, retry timeout 3000 ms): the end of an earlier, normal boot,
// then the boot that waits for b.
const (
	normalBoot = `2026-11-21 15:38:37.121669+00:00 [info] <0.223.0> Waiting for Mnesia tables for 3000 ms, 1 retries left
2026-11-21 15:38:37.121790+00:00 [info] <0.223.0> Successfully synced tables from a peer
`
	waitingBoot = `2026-11-21 15:38:45.956714+00:00 [info] <0.223.0>  Starting RabbitMQ 3.10.8 on Erlang 25.2.3 [jit]
2026-11-21 15:38:46.004092+00:00 [info] <0.223.0> Waiting for Mnesia tables for 3000 ms, 1 retries left
`
	waitingRetry = `2026-11-21 15:38:49.005006+00:00 [warning] <0.223.0> Error while waiting for Mnesia tables: {timeout_waiting_for_tables,
2026-11-21 15:38:49.005006+00:00 [warning] <0.223.0>                                         ['rabbit@ctl1',
2026-11-21 15:38:49.005006+00:00 [warning] <0.223.0>                                          'rabbit@ctl2'],
2026-11-21 15:38:49.005006+00:00 [warning] <0.223.0>                                         [rabbit_durable_queue]}
2026-11-21 15:38:49.005145+00:00 [info] <0.223.0> Waiting for Mnesia tables for 3000 ms, 0 retries left
`
	// The server's standard output when it gives up.
	bootFailed = `  Starting broker...
BOOT FAILED
===========
Timeout contacting cluster nodes: ['rabbit@ctl2'].

BACKGROUND
==========

This cluster node was shut down while other nodes were still running.
`
)

func TestWaitingHint(t *testing.T) {
	const hint = "waiting for rabbit@ctl2, which was running when this node stopped: start it first, or force_boot if it is lost"
	for _, tc := range []struct{ name, log, want string }{
		{"normal boot", normalBoot, ""},
		{"nothing", "Starting broker...\n", ""},
		{"first wait", normalBoot + waitingBoot, "waiting for the peer, which was running when this node stopped: start it first, or force_boot if it is lost"},
		// The node list names this node too.
		{"after a retry", normalBoot + waitingBoot + waitingRetry, hint},
		{"boot failed", bootFailed, hint},
		// An earlier boot's wait, then a boot that got its tables.
		{"waited before", waitingBoot + waitingRetry + strings.ReplaceAll(waitingBoot, "Waiting for Mnesia", "Foo") + normalBoot, ""},
	} {
		if got := WaitingHint([]byte(tc.log), "rabbit@ctl1"); got != tc.want {
			t.Errorf("%s: WaitingHint = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestBannerLogs(t *testing.T) {
	banner := `
  ##  ##      RabbitMQ 3.10.8

  Doc guides:  https://rabbitmq.com/documentation.html

  Logs: /var/log/rabbitmq/rabbit@ctl1.log
        /var/log/rabbitmq/rabbit@ctl1_upgrade.log
        <stdout>

  Config file(s): /etc/rabbitmq/rabbitmq.conf

  Starting broker... completed with 0 plugins.
`
	got := strings.Join(bannerLogs([]byte(banner)), " ")
	if got != "/var/log/rabbitmq/rabbit@ctl1.log /var/log/rabbitmq/rabbit@ctl1_upgrade.log" {
		t.Fatalf("bannerLogs: %s", got)
	}
}

// A server that exits while starting: the reason quotes its output, with
// the hint when it was waiting for its peer.
func TestAgentStartServerExits(t *testing.T) {
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
		{"crash", "echo starting; echo 'BOOT FAILED: eaddrinuse' >&2; exit 1", []string{"rabbitmq-server for rabbit@test (pid ", ") exited while starting; ", "extra x | starting | BOOT FAILED: eaddrinuse"}},
		{"gave up", `echo "Waiting for Mnesia tables for 30000 ms, 9 retries left"; echo "Timeout contacting cluster nodes: ['rabbit@ctl2']."; exit 1`,
			[]string{hint + "rabbitmq-server for rabbit@test (pid ", ") exited while starting; "}},
		// Still waiting when the start action's time is up.
		{"timeout", `echo "Waiting for Mnesia tables for 30000 ms, 9 retries left"
echo "Error while waiting for Mnesia tables: {timeout_waiting_for_tables,['rabbit@test','rabbit@ctl2'],[rabbit_durable_queue]}"
echo $$ >"$0.pid"; exec sleep 60`,
			[]string{hint + "rabbitmq node rabbit@test did not answer AMQP on 127.0.0.1:1 within ", "(last: dial tcp 127.0.0.1:1: "}}, // refused, or i/o timeout when the deadline hits mid-dial (a loaded CI host)
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			server := filepath.Join(dir, "rabbitmq-server")
			// The script also shows the environment the agent sets.
			os.WriteFile(server, []byte("#!/bin/sh\necho \"node $RABBITMQ_NODENAME pid $RABBITMQ_PID_FILE mnesia $RABBITMQ_MNESIA_BASE extra $EXTRA\"\n"+tc.script+"\n"), 0o755)
			a := &Agent{
				Nodename: "rabbit@test", Server: server, MnesiaBase: filepath.Join(dir, "mnesia"),
				PidFile: filepath.Join(dir, "run", "rabbit.pid"), Port: "1", LogFile: filepath.Join(dir, "log", "server.log"),
				User: u.Username, Env: []string{"EXTRA=x"}, Daemon: runner.Exec{}.StartDaemon,
			}
			// A stale pid file (pid 0x7fffffff does not exist).
			os.MkdirAll(filepath.Dir(a.PidFile), 0o755)
			os.WriteFile(a.PidFile, []byte("2147483647\n"), 0o644)
			timeout := 10 * time.Second
			if tc.name == "timeout" {
				timeout = 2 * time.Second
				t.Cleanup(func() {
					if b, err := os.ReadFile(server + ".pid"); err == nil {
						pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
						syscall.Kill(pid, syscall.SIGKILL)
					}
				})
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			err := a.Start(ctx)
			if c := pacemaker.OCFCode(err); c != pacemaker.OCFErrGeneric || (ctx.Err() != nil) != (tc.name == "timeout") {
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
func TestAgentProbeNeverStarted(t *testing.T) {
	dir := t.TempDir()
	env := ocfEnv(map[string]string{"OCF_RESKEY_mnesia_base": filepath.Join(dir, "mnesia"), "OCF_RESKEY_CRM_meta_interval": "0"})
	a := AgentFromEnv(env)
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
}

// agentNode is a private RabbitMQ node for the agent's tests, like
// testBroker (own node name, ports, data and log directories, 127.0.0.1
// only, an epmd of its own) but started and stopped by the Agent, through
// the server script the agent uses by default (Debian's su's to rabbitmq).
type agentNode struct {
	dir      string
	agent    *Agent
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
	if _, err := user.Lookup(DefaultUser); err != nil {
		testenv.Missing(t, "no rabbitmq user: "+err.Error())
	}
}

// privateEPMD runs an epmd on a free loopback port until the test ends,
// so that the nodes neither start nor use the machine's.
func privateEPMD(t *testing.T) int {
	t.Helper()
	port, err := freePort()
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
	if err := waitListening(wctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), done); err != nil {
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
	rmq, err := user.Lookup(DefaultUser)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(rmq.Uid)
	gid, _ := strconv.Atoi(rmq.Gid)
	server := DefaultServer
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
	amqpPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	distPort, err := freePort()
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
	a := AgentFromEnv(ocfEnv(n.params))
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

func (n *agentNode) endpoint() Endpoint {
	return Endpoint{Addrs: []string{n.agent.addr()}, User: n.user, Password: n.password, DialTimeout: 2 * time.Second}
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

// TestAgentLifecycle drives ocf:haconf:rabbitmq against a real
// rabbitmq-server: probe, start, idempotent start, kill -9, recovery on
// the same data (a persistent message survives), stop.
func TestAgentLifecycle(t *testing.T) {
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
	if err := Handshake(ctx, a.addr()); err != nil {
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

	// A persistent message, confirmed before the crash.
	p := &Publisher{Endpoint: n.endpoint(), Queue: "haconf-agent-test", Count: 3}
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
	pid2, _ := a.running()
	if beams := n.beams(); pid2 == pid || len(beams) != 1 || beams[0] != pid2 {
		t.Fatalf("after the restart: pid file %d (before %d), beams %v", pid2, pid, beams)
	}
	// Same data: the queue and its messages are still there.
	d, err := Drain(ctx, n.endpoint(), p.Queue)
	if err != nil {
		t.Fatalf("drain after the restart: %v", err)
	}
	if v := Verify(res, d); v.Err() != nil || d.Messages != 3 {
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

// TestAgentStartWaitsForPeer: two private nodes clustered through
// classic_config; a stops first, then b. Started alone, a waits for b (the
// last one running) and fails with the hint; once b runs, a starts and
// rejoins by itself, its data intact. The agent joins nothing.
func TestAgentStartWaitsForPeer(t *testing.T) {
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
		return stderr
	}
	step(a, "start", 3*time.Minute, 0)
	step(b, "start", 3*time.Minute, 0)
	// A durable queue with a message on a; b sees the queue: one cluster.
	p := &Publisher{Endpoint: a.endpoint(), Queue: "haconf-agent-test-pair", Count: 1}
	res, err := p.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := declarePassive(ctx, b.endpoint(), p.Queue); err != nil {
		t.Fatalf("b does not see a's queue (not clustered?): %v", err)
	}
	step(a, "stop", 2*time.Minute, 0)
	step(b, "stop", 2*time.Minute, 0)

	stderr := step(a, "start", 2*time.Minute, pacemaker.OCFErrGeneric)
	want := "ocf-exit-reason:waiting for " + b.agent.Nodename + ", which was running when this node stopped: start it first, or force_boot if it is lost; "
	if !strings.Contains(stderr, want) {
		t.Fatalf("start of a without b: %s\nwant %q", stderr, want)
	}
	if beams := a.beams(); len(beams) != 0 {
		t.Fatalf("a's failed start left beams %v", beams)
	}

	step(b, "start", 3*time.Minute, 0)
	step(a, "start", 3*time.Minute, 0)
	d, err := Drain(ctx, a.endpoint(), p.Queue)
	if err != nil {
		t.Fatal(err)
	}
	if v := Verify(res, d); v.Err() != nil || d.Messages != 1 {
		t.Fatalf("a after rejoining: %d messages: %v", d.Messages, v.Err())
	}
	step(a, "stop", 2*time.Minute, 0)
	step(b, "stop", 2*time.Minute, 0)
}

// declarePassive checks that queue exists, as the broker at e sees it.
func declarePassive(ctx context.Context, e Endpoint, queue string) error {
	conn, _, err := e.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	_, err = ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	return err
}
