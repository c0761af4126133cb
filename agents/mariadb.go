package agents

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/haconf/haconf/internal/proc"
	"github.com/haconf/haconf/mysql"
	"github.com/haconf/haconf/pacemaker"
)

// MariaDB is the OCF resource agent for MariaDB on the DRBD volume
// (ocf:haconf:mariadb). It starts mariadbd directly and reports started
// the moment the server answers on its socket; ocf:heartbeat:mysql goes
// through mysqld_safe and a login shell and polls every 2 s with client
// programs, which took half a minute of a failover on a loaded node.
type MariaDB struct {
	Binary  string // mariadbd
	Config  string // --defaults-file
	Datadir string
	Pid     string
	Socket  string
	User    string
	Log     string // --log-error

	// Daemon starts mariadbd detached and returns its pid.
	Daemon func(name string, args []string, logPath string) (int, error)
}

// MariaDBFromEnv reads the agent's parameters from Pacemaker's environment.
func MariaDBFromEnv(env pacemaker.OCFEnv) *MariaDB {
	return &MariaDB{
		Binary:  env.Param("binary", mysql.DefaultBinary),
		Config:  env.Param("config", "/etc/mysql/my.cnf"),
		Datadir: env.Param("datadir", ""),
		Pid:     env.Param("pid", mysql.DefaultPid),
		Socket:  env.Param("socket", mysql.DefaultSocket),
		User:    env.Param("user", "mysql"),
		Log:     env.Param("log", mysql.DefaultLog),
	}
}

// MetaData implements pacemaker.Agent.
func (a *MariaDB) MetaData() string {
	return pacemaker.OCFMetaData{
		Name:  "mariadb",
		Short: "MariaDB on the DRBD volume (haconf)",
		Long:  "Starts mariadbd directly and reports it started as soon as it answers on its socket; monitor checks the process and the server handshake (logging in as root by unix_socket and quitting, so the error log stays quiet).",
		Params: []pacemaker.OCFParam{
			{Name: "datadir", Short: "data directory (on the DRBD filesystem)", Required: true},
			{Name: "binary", Short: "server binary", Default: mysql.DefaultBinary},
			{Name: "config", Short: "option file (--defaults-file)", Default: "/etc/mysql/my.cnf"},
			{Name: "pid", Short: "pid file", Default: mysql.DefaultPid},
			{Name: "socket", Short: "unix socket", Default: mysql.DefaultSocket},
			{Name: "user", Short: "system user the server runs as", Default: "mysql"},
			{Name: "log", Short: "error log (--log-error)", Default: mysql.DefaultLog},
		},
		Start: 120 * time.Second, Stop: 120 * time.Second,
		Monitor: 30 * time.Second, MonitorInterval: 10 * time.Second,
	}.String()
}

// Validate implements pacemaker.Agent: parameters only, nothing on disk
// (the datadir is absent on the standby, where probes must still work).
func (a *MariaDB) Validate() error {
	for name, p := range map[string]string{"datadir": a.Datadir, "binary": a.Binary, "config": a.Config, "pid": a.Pid, "socket": a.Socket, "log": a.Log} {
		if !filepath.IsAbs(p) {
			return pacemaker.OCFFail(pacemaker.OCFErrConfigured, "parameter %s=%q: must be an absolute path", name, p)
		}
	}
	if a.User == "" {
		return pacemaker.OCFFail(pacemaker.OCFErrConfigured, "parameter user is empty")
	}
	return nil
}

// Monitor implements pacemaker.Agent.
func (a *MariaDB) Monitor(ctx context.Context) error {
	pid, ok := a.running()
	if !ok {
		return pacemaker.ErrNotRunning
	}
	if err := mysql.Handshake(ctx, a.Socket); err != nil {
		return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "mariadbd (pid %d) does not answer on %s: %v", pid, a.Socket, err)
	}
	return nil
}

// Start implements pacemaker.Agent.
func (a *MariaDB) Start(ctx context.Context) error {
	if pid, ok := a.running(); ok {
		return a.waitReady(ctx, pid)
	}
	if _, err := os.Stat(a.Binary); err != nil {
		return pacemaker.OCFFail(pacemaker.OCFErrInstalled, "server binary: %v", err)
	}
	if _, err := os.Stat(filepath.Join(a.Datadir, "mysql")); err != nil {
		return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "datadir %s is not initialized or not mounted: %v", a.Datadir, err)
	}
	u, err := user.Lookup(a.User)
	if err != nil {
		return pacemaker.OCFFail(pacemaker.OCFErrInstalled, "user %q: %v", a.User, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, dir := range []string{filepath.Dir(a.Pid), filepath.Dir(a.Socket)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			return err
		}
	}
	// The error log is the server's (--log-error) and also takes its
	// stdout and stderr, which the agent opens as root: it must exist and
	// belong to the server's user, or mariadbd cannot open it ("Can't
	// create file ... Permission denied" at every start in the lab).
	if err := ownLog(a.Log, uid, gid); err != nil {
		return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "error log %s: %v", a.Log, err)
	}
	// A pid file left by a crash would make mariadbd refuse nothing, but
	// it would make Monitor look at a stranger's pid.
	if err := os.Remove(a.Pid); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	args := []string{
		"--defaults-file=" + a.Config,
		"--datadir=" + a.Datadir,
		"--pid-file=" + a.Pid,
		"--socket=" + a.Socket,
		"--log-error=" + a.Log,
		"--user=" + a.User,
	}
	pid, err := a.Daemon(a.Binary, args, a.Log)
	if err != nil {
		return err
	}
	return a.waitReady(ctx, pid)
}

// waitReady polls until the server answers, failing as soon as it exits.
func (a *MariaDB) waitReady(ctx context.Context, pid int) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if !mariadbAlive(pid) {
			return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "mariadbd (pid %d) exited while starting; %s ends: %s", pid, a.Log, logTail(a.Log, 3))
		}
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := mysql.Handshake(hctx, a.Socket)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("mariadbd (pid %d) did not answer on %s: %w (last: %v)", pid, a.Socket, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// Stop implements pacemaker.Agent: TERM, then KILL shortly before the
// action's deadline. It only returns success once the server is gone.
func (a *MariaDB) Stop(ctx context.Context) error {
	pid, ok := a.running()
	if !ok {
		os.Remove(a.Pid)
		return nil
	}
	if _, err := proc.Stop(ctx, pid, proc.StopOptions{Alive: mariadbAlive, KillBefore: 5 * time.Second}); err != nil {
		return fmt.Errorf("mariadbd: %w", err)
	}
	os.Remove(a.Pid)
	return nil
}

// running reads the pid file and checks that the process is a live
// MariaDB/MySQL server (not a reused pid).
func (a *MariaDB) running() (int, bool) {
	pid, err := proc.ReadPidFile(a.Pid)
	if err != nil {
		return 0, false
	}
	return pid, mariadbAlive(pid)
}

// mariadbAlive reports whether pid is a running (not zombie) mariadbd or mysqld.
func mariadbAlive(pid int) bool {
	s, err := proc.ReadStat(pid)
	return err == nil && s.Live() && (s.Comm == "mariadbd" || s.Comm == "mysqld")
}

// ownLog creates the log file (mode 0640) if needed and gives a root-owned
// one to uid:gid; a file another user owns is left alone.
func ownLog(path string, uid, gid int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid == 0 && uid != 0 {
		return f.Chown(uid, gid)
	}
	return nil
}
