package mysql

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/internal/testenv"
	"github.com/haconf/haconf/pacemaker"
)

func ocfCode(err error) int {
	if err == nil {
		return pacemaker.OCFSuccess
	}
	var oe *pacemaker.OCFError
	if errors.As(err, &oe) {
		return oe.Code
	}
	return pacemaker.OCFErrGeneric
}

// TestAgentLifecycle drives ocf:haconf:mariadb against a real mariadbd:
// probe, start, idempotent start, crash, recovery, stop, and a datadir
// that is not there (the standby before the filesystem is mounted).
func TestAgentLifecycle(t *testing.T) {
	testenv.RequireCommands(t, "mariadbd", "mariadb-install-db")
	testenv.RequireRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	datadir := filepath.Join(dir, "data")
	if _, err := (runner.Exec{}).Run(ctx, "mariadb-install-db", "--no-defaults", "--datadir="+datadir, "--user=root", "--skip-test-db"); err != nil {
		t.Fatal(err)
	}
	cnf := filepath.Join(dir, "my.cnf")
	os.WriteFile(cnf, []byte("[mysqld]\nskip-networking\nskip-log-bin\ninnodb-buffer-pool-size=32M\n"), 0o644)
	a := &Agent{
		Binary: DefaultBinary, Config: cnf, Datadir: datadir,
		Pid: filepath.Join(dir, "run", "mysqld.pid"), Socket: filepath.Join(dir, "run", "mysqld.sock"),
		User: "root", Log: filepath.Join(dir, "error.log"),
		Daemon: runner.Exec{}.StartDaemon,
	}
	if p, err := exec.LookPath(a.Binary); err == nil {
		a.Binary = p
	}
	t.Cleanup(func() { a.Stop(context.Background()) })
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	if c := ocfCode(a.Monitor(ctx)); c != pacemaker.OCFNotRunning {
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
	for alive(pid) {
		time.Sleep(20 * time.Millisecond)
	}
	if c := ocfCode(a.Monitor(ctx)); c != pacemaker.OCFNotRunning {
		t.Fatalf("monitor after kill -9: code %d, want 7", c)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatalf("start after a crash (InnoDB recovery): %v", err)
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if c := ocfCode(a.Monitor(ctx)); c != pacemaker.OCFNotRunning {
		t.Fatalf("monitor after stop: code %d, want 7", c)
	}
	if _, err := os.Stat(a.Pid); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pid file left after stop: %v", err)
	}

	// The standby: no datadir. Start fails with a reason, probe says stopped.
	b := *a
	b.Datadir = filepath.Join(dir, "not-mounted")
	err := b.Start(ctx)
	if c := ocfCode(err); c != pacemaker.OCFErrGeneric || !strings.Contains(err.Error(), "not initialized or not mounted") {
		t.Fatalf("start without datadir: code %d, %v", c, err)
	}
}

func TestRunAgentCodes(t *testing.T) {
	env := func(kv map[string]string) pacemaker.OCFEnv {
		return pacemaker.OCFEnv{Getenv: func(k string) string { return kv[k] }}
	}
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	good := env(map[string]string{"OCF_RESKEY_datadir": dir, "OCF_RESKEY_pid": filepath.Join(dir, "x.pid")})
	var out, errb bytes.Buffer
	if c := pacemaker.RunAgent(context.Background(), AgentFromEnv(good), "meta-data", good, &out, io.Discard, log); c != 0 {
		t.Fatalf("meta-data: %d", c)
	}
	var md struct {
		Name   string `xml:"name,attr"`
		Params []struct {
			Name string `xml:"name,attr"`
		} `xml:"parameters>parameter"`
	}
	if err := xml.Unmarshal(out.Bytes(), &md); err != nil || md.Name != "mariadb" || len(md.Params) != 7 {
		t.Fatalf("meta-data: %v %+v\n%s", err, md, out.String())
	}
	if c := pacemaker.RunAgent(context.Background(), AgentFromEnv(good), "monitor", good, io.Discard, io.Discard, log); c != pacemaker.OCFNotRunning {
		t.Fatalf("probe: %d, want 7", c)
	}
	bad := env(map[string]string{"OCF_RESKEY_datadir": "relative/dir"})
	if c := pacemaker.RunAgent(context.Background(), AgentFromEnv(bad), "start", bad, io.Discard, &errb, log); c != pacemaker.OCFErrConfigured ||
		!strings.Contains(errb.String(), `ocf-exit-reason:parameter datadir="relative/dir"`) {
		t.Fatalf("start with a relative datadir: %d %q", c, errb.String())
	}
	if c := pacemaker.RunAgent(context.Background(), AgentFromEnv(bad), "monitor", bad, io.Discard, io.Discard, log); c != pacemaker.OCFNotRunning {
		t.Fatalf("probe with bad parameters: %d, want 7", c)
	}
	recurring := env(map[string]string{"OCF_RESKEY_datadir": "relative/dir", "OCF_RESKEY_CRM_meta_interval": "10000"})
	if c := pacemaker.RunAgent(context.Background(), AgentFromEnv(recurring), "monitor", recurring, io.Discard, io.Discard, log); c != pacemaker.OCFErrConfigured {
		t.Fatalf("recurring monitor with bad parameters: %d, want 6", c)
	}
	if c := pacemaker.RunAgent(context.Background(), AgentFromEnv(good), "reload-agent", good, io.Discard, io.Discard, log); c != pacemaker.OCFErrUnimplemented {
		t.Fatalf("unknown action: %d", c)
	}
}

func TestHandshakeRefusesNonMySQL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := Handshake(ctx, filepath.Join(t.TempDir(), "none.sock")); err == nil {
		t.Fatal("handshake on a missing socket succeeded")
	}
}
