package agents

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/internal/testenv"
	"github.com/haconf/haconf/mysql"
	"github.com/haconf/haconf/pacemaker"
)

// newTestAgent initializes a private datadir the way haconf's bootstrap
// does (root@localhost authenticates by unix_socket) and returns an agent
// for it, stopped at the end of the test. It needs root.
func newTestMariaDB(t *testing.T, ctx context.Context) *MariaDB {
	t.Helper()
	dir := t.TempDir()
	m := testenv.InstallMariaDB(t, dir)
	cnf, datadir := m.Config, m.Datadir
	a := &MariaDB{
		Binary: mysql.DefaultBinary, Config: cnf, Datadir: datadir,
		Pid: filepath.Join(dir, "run", "mysqld.pid"), Socket: filepath.Join(dir, "run", "mysqld.sock"),
		User: "root", Log: filepath.Join(dir, "error.log"),
		Daemon: runner.Exec{}.StartDaemon,
	}
	if p, err := exec.LookPath(a.Binary); err == nil {
		a.Binary = p
	}
	t.Cleanup(func() { a.Stop(context.Background()) })
	return a
}

// TestMariaDBLifecycle drives ocf:haconf:mariadb against a real mariadbd:
// probe, start, idempotent start, crash, recovery, stop, and a datadir
// that is not there (the standby before the filesystem is mounted).
func TestMariaDBLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	a := newTestMariaDB(t, ctx)
	dir := filepath.Dir(a.Datadir)
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	if c := pacemaker.OCFCode(a.Monitor(ctx)); c != pacemaker.OCFNotRunning {
		t.Fatalf("probe before start: code %d, want 7", c)
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("stop of a stopped server: %v", err)
	}
	start := time.Now()
	if err := a.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Logf("start took %s", time.Since(start).Round(time.Millisecond))
	if err := a.Monitor(ctx); err != nil {
		t.Fatalf("monitor after start: %v", err)
	}
	pid, _ := a.running()
	if err := a.Start(ctx); err != nil {
		t.Fatalf("second start: %v", err)
	}
	if p2, _ := a.running(); p2 != pid {
		t.Fatalf("second start replaced the server: pid %d -> %d", pid, p2)
	}

	// A crash: the pid file stays, the process is gone.
	syscall.Kill(pid, syscall.SIGKILL)
	for mariadbAlive(pid) {
		time.Sleep(20 * time.Millisecond)
	}
	if c := pacemaker.OCFCode(a.Monitor(ctx)); c != pacemaker.OCFNotRunning {
		t.Fatalf("monitor after kill -9: code %d, want 7", c)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatalf("start after a crash (InnoDB recovery): %v", err)
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if c := pacemaker.OCFCode(a.Monitor(ctx)); c != pacemaker.OCFNotRunning {
		t.Fatalf("monitor after stop: code %d, want 7", c)
	}
	if _, err := os.Stat(a.Pid); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pid file left after stop: %v", err)
	}

	// The standby: no datadir. Start fails with a reason, probe says stopped.
	b := *a
	b.Datadir = filepath.Join(dir, "not-mounted")
	err := b.Start(ctx)
	if c := pacemaker.OCFCode(err); c != pacemaker.OCFErrGeneric || !strings.Contains(err.Error(), "not initialized or not mounted") {
		t.Fatalf("start without datadir: code %d, %v", c, err)
	}
}

func TestMariaDBRunAgentCodes(t *testing.T) {
	env := ocfEnv
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	good := env(map[string]string{"OCF_RESKEY_datadir": dir, "OCF_RESKEY_pid": filepath.Join(dir, "x.pid")})
	var errb bytes.Buffer
	if md := metaData(t, MariaDBFromEnv(good), good); md.Name != "mariadb" || len(md.Params) != 7 {
		t.Fatalf("meta-data: %+v", md)
	}
	if c := pacemaker.RunAgent(context.Background(), MariaDBFromEnv(good), "monitor", good, io.Discard, io.Discard, log); c != pacemaker.OCFNotRunning {
		t.Fatalf("probe: %d, want 7", c)
	}
	bad := env(map[string]string{"OCF_RESKEY_datadir": "relative/dir"})
	if c := pacemaker.RunAgent(context.Background(), MariaDBFromEnv(bad), "start", bad, io.Discard, &errb, log); c != pacemaker.OCFErrConfigured ||
		!strings.Contains(errb.String(), `ocf-exit-reason:parameter datadir="relative/dir"`) {
		t.Fatalf("start with a relative datadir: %d %q", c, errb.String())
	}
	if c := pacemaker.RunAgent(context.Background(), MariaDBFromEnv(bad), "monitor", bad, io.Discard, io.Discard, log); c != pacemaker.OCFNotRunning {
		t.Fatalf("probe with bad parameters: %d, want 7", c)
	}
	recurring := env(map[string]string{"OCF_RESKEY_datadir": "relative/dir", "OCF_RESKEY_CRM_meta_interval": "10000"})
	if c := pacemaker.RunAgent(context.Background(), MariaDBFromEnv(recurring), "monitor", recurring, io.Discard, io.Discard, log); c != pacemaker.OCFErrConfigured {
		t.Fatalf("recurring monitor with bad parameters: %d, want 6", c)
	}
	if c := pacemaker.RunAgent(context.Background(), MariaDBFromEnv(good), "reload-agent", good, io.Discard, io.Discard, log); c != pacemaker.OCFErrUnimplemented {
		t.Fatalf("unknown action: %d", c)
	}
}

// fakeMariadbd starts a process whose name is mariadbd (a copy of sleep)
// and writes its pid to pidFile, so MariaDB.running finds a server.
func fakeMariadbd(t *testing.T, pidFile string) {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary to pose as mariadbd")
	}
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "mariadbd")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot run a copy of sleep from %s: %v", bin, err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
	for !mariadbAlive(cmd.Process.Pid) { // comm changes at exec
		time.Sleep(5 * time.Millisecond)
	}
}

// The agent opens the error log as root for mariadbd's stdout and stderr;
// a root-owned log made mariadbd (as mysql) fail to open it at every start.
func TestMariaDBOwnLog(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	fresh := filepath.Join(dir, "log", "error.log")
	if err := ownLog(fresh, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	rootOwned := filepath.Join(dir, "root.log")
	os.WriteFile(rootOwned, []byte("kept\n"), 0o640)
	if err := ownLog(rootOwned, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.log")
	os.WriteFile(other, nil, 0o640)
	os.Chown(other, 1, 1)
	if err := ownLog(other, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]uint32{fresh: 65534, rootOwned: 65534, other: 1} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if uid := st.Sys().(*syscall.Stat_t).Uid; uid != want {
			t.Errorf("%s: owner %d, want %d", path, uid, want)
		}
	}
	if b, _ := os.ReadFile(rootOwned); string(b) != "kept\n" {
		t.Errorf("existing log content changed: %q", b)
	}
}

// TestMariaDBMonitorServerAnswersWithError: a live mariadbd that refuses
// the connection instead of greeting (too many connections) is up; the
// protocol's other answers are mysql's tests.
func TestMariaDBMonitorServerAnswersWithError(t *testing.T) {
	dir := t.TempDir()
	a := &MariaDB{Pid: filepath.Join(dir, "mysqld.pid"), Socket: filepath.Join(dir, "mysqld.sock")}
	fakeMariadbd(t, a.Pid)
	ln, err := net.Listen("unix", a.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		// An ERR packet (1040) instead of the greeting: length 23, sequence 0.
		c.Write(append([]byte{23, 0, 0, 0, 0xff, 0x10, 0x04}, "Too many connections"...))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Monitor(ctx); err != nil {
		t.Fatalf("monitor: %v", err)
	}
}
