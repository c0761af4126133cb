package workload

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/internal/testenv"
)

// testBroker is a private RabbitMQ node for this package's tests: its own
// node name, data and log directories, Erlang cookie (HOME) and epmd, all
// in a 0700 temp directory, listening on 127.0.0.1 only. It never touches
// the machine's RabbitMQ (/etc/rabbitmq, /var/lib/rabbitmq, port 5672).
type testBroker struct {
	dir      string
	bin      string
	env      []string
	user     string
	password string // in rabbitmq.conf (0600) only
	addr     string // 127.0.0.1:port

	stopEPMD context.CancelFunc
	epmdDone chan error
	stop     context.CancelFunc
	done     chan error
}

// One broker per package run: it takes about 5 s to boot.
var shared struct {
	once sync.Once
	b    *testBroker
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.b != nil {
		shared.b.close(code != 0)
	}
	os.Exit(code)
}

// broker returns the package's running broker, starting it on first use.
func broker(t *testing.T) *testBroker {
	t.Helper()
	testenv.RequireCommands(t, "rabbitmq-server", "epmd")
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.b, shared.err = newTestBroker(ctx)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.b
}

func (b *testBroker) endpoint() Endpoint {
	return Endpoint{Addrs: []string{b.addr}, User: b.user, Password: b.password, DialTimeout: time.Second}
}

func newTestBroker(ctx context.Context) (_ *testBroker, err error) {
	// Debian's /usr/sbin/rabbitmq-server re-runs itself as the rabbitmq
	// user through su; the script it wraps runs as the caller.
	bin := "/usr/lib/rabbitmq/bin/rabbitmq-server"
	if _, err := os.Stat(bin); err != nil {
		bin = "rabbitmq-server"
	}
	dir, err := os.MkdirTemp("", "haconf-rabbitmq-test-")
	if err != nil {
		return nil, err
	}
	b := &testBroker{dir: dir, bin: bin, user: "haconf-test"}
	defer func() {
		if err != nil {
			b.close(true)
		}
	}()
	pw := make([]byte, 18)
	if _, err := rand.Read(pw); err != nil {
		return nil, err
	}
	b.password = hex.EncodeToString(pw)
	var ports [3]int
	for i := range ports {
		if ports[i], err = testenv.FreePort(); err != nil {
			return nil, err
		}
	}
	amqpPort, distPort, epmdPort := ports[0], ports[1], ports[2]
	b.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(amqpPort))
	for _, d := range []string{"home", "mnesia", "log"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	files := map[string]string{
		"rabbitmq.conf": strings.Join([]string{
			"default_user = " + b.user,
			"default_pass = " + b.password,
			"default_vhost = /",
			"disk_free_limit.absolute = 50MB",
			"log.console = false",
			"log.file.level = info",
			"",
		}, "\n"),
		"enabled_plugins":   "[].\n",
		"rabbitmq-env.conf": "", // instead of /etc/rabbitmq/rabbitmq-env.conf
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return nil, err
		}
	}
	epmd := []string{"ERL_EPMD_PORT=" + strconv.Itoa(epmdPort), "ERL_EPMD_ADDRESS=127.0.0.1"}
	b.env = append(epmd,
		"HOME="+filepath.Join(dir, "home"), // the Erlang cookie
		"RABBITMQ_NODENAME=haconf-test-"+strconv.Itoa(os.Getpid())+"@localhost",
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(amqpPort),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(distPort),
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(dir, "advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_PID_FILE="+filepath.Join(dir, "rabbitmq.pid"),
		// The script then execs the VM instead of running it as a child:
		// killing the process we started kills the broker.
		"RUNNING_UNDER_SYSTEMD=true",
	)

	// Our own epmd on a free loopback port, so the broker neither starts
	// nor uses the machine's (port 4369, all interfaces).
	ectx, ecancel := context.WithDeadline(context.Background(), time.Now().Add(24*time.Hour))
	b.stopEPMD, b.epmdDone = ecancel, make(chan error, 1)
	go func() {
		_, err := runner.Exec{}.RunCmd(ectx, runner.Cmd{Name: "epmd", Args: []string{"-port", strconv.Itoa(epmdPort), "-address", "127.0.0.1"}})
		b.epmdDone <- err
	}()
	if err := testenv.WaitListening(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(epmdPort)), b.epmdDone); err != nil {
		return nil, fmt.Errorf("epmd: %w", err)
	}
	return b, b.start(ctx)
}

// start boots the node and returns once it accepts an AMQP login.
func (b *testBroker) start(ctx context.Context) error {
	sctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(24*time.Hour))
	b.stop, b.done = cancel, make(chan error, 1)
	go func() {
		_, err := runner.Exec{}.RunCmd(sctx, runner.Cmd{Name: b.bin, Env: b.env, Dir: b.dir})
		b.done <- err
	}()
	ep := b.endpoint()
	for {
		conn, _, err := ep.Dial(ctx)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case e := <-b.done:
			b.done <- e
			return fmt.Errorf("rabbitmq-server exited: %v\n%s", e, b.logTail())
		case <-ctx.Done():
			return fmt.Errorf("rabbitmq-server not accepting logins: %v\n%s", err, b.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// kill ends the node with SIGKILL: a crash, nothing flushed on the way out.
func (b *testBroker) kill() {
	if b.stop == nil {
		return
	}
	b.stop()
	select {
	case <-b.done:
	case <-time.After(15 * time.Second):
	}
	b.stop = nil
}

// terminate stops the node cleanly with SIGTERM, as its service manager
// would, and waits for it to exit.
func (b *testBroker) terminate(wait time.Duration) error {
	data, err := os.ReadFile(filepath.Join(b.dir, "rabbitmq.pid"))
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return fmt.Errorf("rabbitmq.pid: %w", err)
	}
	// Only the VM this test started (the script execs it): its parent is us.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil || !strings.Contains(string(status), fmt.Sprintf("\nPPid:\t%d\n", os.Getpid())) {
		return fmt.Errorf("pid %d from rabbitmq.pid is not the broker this test started", pid)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-b.done:
		b.stop()
		b.stop = nil
		return nil
	case <-time.After(wait):
		return fmt.Errorf("rabbitmq-server did not stop within %s of SIGTERM", wait)
	}
}

func (b *testBroker) close(keepLogs bool) {
	b.kill()
	if b.stopEPMD != nil {
		b.stopEPMD()
		select {
		case <-b.epmdDone:
		case <-time.After(5 * time.Second):
		}
	}
	if !keepLogs {
		_ = os.RemoveAll(b.dir)
		return
	}
	// Keep the logs only: rabbitmq.conf holds the password, home the cookie.
	entries, _ := os.ReadDir(b.dir)
	for _, e := range entries {
		if e.Name() != "log" {
			_ = os.RemoveAll(filepath.Join(b.dir, e.Name()))
		}
	}
	fmt.Fprintf(os.Stderr, "rabbitmq test broker: logs kept in %s\n", filepath.Join(b.dir, "log"))
}

func (b *testBroker) logTail() string {
	matches, _ := filepath.Glob(filepath.Join(b.dir, "log", "*.log"))
	var out []string
	for _, m := range matches {
		data, _ := os.ReadFile(m)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		out = append(out, lines[max(0, len(lines)-15):]...)
	}
	return strings.Join(out, "\n")
}
