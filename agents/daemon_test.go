package agents

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/internal/proc"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/pacemaker"
)

func TestDaemonParameters(t *testing.T) {
	for _, tc := range []struct {
		kv   map[string]string
		want string
	}{
		{map[string]string{"OCF_RESKEY_binary": "/usr/sbin/haproxy", "OCF_RESOURCE_INSTANCE": "haproxy"}, ""},
		{map[string]string{"OCF_RESKEY_binary": "haproxy"}, `parameter binary="haproxy": must be an absolute path`},
		{map[string]string{"OCF_RESKEY_binary": "/bin/x", "OCF_RESKEY_pidfile": "x.pid"}, `parameter pidfile="x.pid": must be an absolute path`},
		{map[string]string{"OCF_RESKEY_binary": "/bin/x", "OCF_RESKEY_settle": "soon"}, "parameter settle: must be a number of seconds from 0 to 60"},
	} {
		err := DaemonFromEnv(ocfEnv(tc.kv)).Validate()
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%v: %q, want %q", tc.kv, got, tc.want)
		}
	}
	a := DaemonFromEnv(ocfEnv(map[string]string{"OCF_RESKEY_binary": "/usr/sbin/haproxy", "OCF_RESKEY_args": "-db  -f /etc/haproxy/haproxy.cfg", "OCF_RESOURCE_INSTANCE": "haproxy"}))
	if strings.Join(a.Args, "|") != "-db|-f|/etc/haproxy/haproxy.cfg" || a.Pid != "/run/haconf-haproxy.pid" || a.Log != "/var/log/haconf/haproxy.log" || a.Settle != time.Second {
		t.Errorf("parsed %+v", a)
	}
	md := metaData(t, a, ocfEnv(nil))
	if md.Name != "daemon" || len(md.Params) != 5 || md.Params[0].Name != "binary" || md.Params[0].Required != 1 {
		t.Errorf("meta-data: %+v", md)
	}
}

// TestDaemonLifecycle runs a real process through start, monitor and
// stop: /bin/sleep stands for the daemon, sh -c 'exit 3' for one that
// rejects its configuration.
func TestDaemonLifecycle(t *testing.T) {
	dir := t.TempDir()
	sleep, err := filepath.EvalSymlinks("/bin/sleep")
	if err != nil {
		t.Skip(err)
	}
	a := &Daemon{Binary: sleep, Args: []string{"600"}, Pid: filepath.Join(dir, "run", "d.pid"), Log: filepath.Join(dir, "log", "d.log"), Settle: 200 * time.Millisecond, Spawn: runner.Exec{}.StartDaemon}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if err := a.Monitor(ctx); !errors.Is(err, pacemaker.ErrNotRunning) {
		t.Fatalf("monitor before start: %v, want not running", err)
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("stop of a stopped daemon: %v", err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	pid, err := proc.ReadPidFile(a.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Monitor(ctx); err != nil {
		t.Fatalf("monitor: %v", err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatalf("second start: %v", err)
	}
	if again, _ := proc.ReadPidFile(a.Pid); again != pid {
		t.Errorf("second start started another process: pid %d, was %d", again, pid)
	}
	// A pid file naming a live process of another binary (a reused pid)
	// is not the daemon.
	other := &Daemon{Binary: "/usr/sbin/haproxy-not-this", Pid: a.Pid}
	if err := other.Monitor(ctx); !errors.Is(err, pacemaker.ErrNotRunning) {
		t.Errorf("monitor of another binary with the same pid: %v, want not running", err)
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if proc.Alive(pid) {
		t.Errorf("pid %d still alive after stop", pid)
	}
	if _, err := os.Stat(a.Pid); !os.IsNotExist(err) {
		t.Errorf("pid file after stop: %v", err)
	}

	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Skip(err)
	}
	bad := &Daemon{Binary: sh, Args: []string{"-c", "echo 'bad config line 3'; exit 3"}, Pid: a.Pid, Log: a.Log, Settle: 2 * time.Second, Spawn: runner.Exec{}.StartDaemon}
	err = bad.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "exited at its start") || !strings.Contains(err.Error(), "bad config line 3") {
		t.Errorf("start of a daemon that exits: %v", err)
	}
	if _, err := os.Stat(a.Pid); !os.IsNotExist(err) {
		t.Errorf("pid file after a failed start: %v", err)
	}
	missing := &Daemon{Binary: filepath.Join(dir, "nothing"), Pid: a.Pid, Log: a.Log, Spawn: runner.Exec{}.StartDaemon}
	var oe *pacemaker.OCFError
	if err := missing.Start(ctx); !errors.As(err, &oe) || oe.Code != pacemaker.OCFErrInstalled {
		t.Errorf("start of a missing binary: %v, want not installed", err)
	}
}
