package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// MariaDBDir is a private MariaDB data directory made by InstallMariaDB.
type MariaDBDir struct {
	Datadir string
	// Config is a my.cnf for mariadbd --defaults-file: no network, no
	// binary log, a small buffer pool and a private tmpdir.
	Config string
}

// InstallMariaDB initializes a datadir under dir the way haconf's
// bootstrap does (root@localhost authenticates by unix_socket; no test
// database). It needs root and mariadb-install-db.
//
// Every server gets its own tmpdir: mariadbd deletes every #sql* file in
// its tmpdir when it starts, so servers sharing /tmp (tests running in
// parallel) delete each other's temporary tables.
func InstallMariaDB(t testing.TB, dir string) MariaDBDir {
	t.Helper()
	RequireCommands(t, "mariadbd", "mariadb-install-db")
	RequireRoot(t)
	os.Chmod(dir, 0o755)
	m := MariaDBDir{Datadir: filepath.Join(dir, "data"), Config: filepath.Join(dir, "my.cnf")}
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "mariadb-install-db", "--no-defaults", "--datadir="+m.Datadir, "--tmpdir="+tmp,
		"--user=root", "--skip-test-db", "--auth-root-authentication-method=socket").CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	cnf := "[mysqld]\nskip-networking\nskip-log-bin\ninnodb-buffer-pool-size=32M\ntmpdir=" + tmp + "\n"
	if err := os.WriteFile(m.Config, []byte(cnf), 0o644); err != nil {
		t.Fatal(err)
	}
	return m
}

// MariaDBServer is a private mariadbd started by StartMariaDB: its unix
// socket (no network unless its args say --skip-networking=0 and a port),
// and an account with every privilege that logs in by password (the Go
// driver cannot use unix_socket authentication).
type MariaDBServer struct {
	Socket   string
	User     string
	Password string
}

// StartMariaDB installs a datadir in a temp dir, starts mariadbd on it
// with extra options args, and returns once it accepts connections. The
// server stops when t ends. It needs root.
func StartMariaDB(t testing.TB, args ...string) MariaDBServer {
	t.Helper()
	bin := RequireCommands(t, "mariadbd")[0]
	dir := t.TempDir()
	m := InstallMariaDB(t, dir)
	pw := make([]byte, 12)
	if _, err := rand.Read(pw); err != nil {
		t.Fatal(err)
	}
	s := MariaDBServer{Socket: filepath.Join(dir, "mysqld.sock"), User: "haconf", Password: hex.EncodeToString(pw)}
	init := filepath.Join(dir, "init.sql")
	var initSQL string
	for _, host := range []string{"localhost", "%"} { // the socket, and TCP when args turn networking on
		initSQL += "CREATE USER '" + s.User + "'@'" + host + "' IDENTIFIED BY '" + s.Password + "';\n" +
			"GRANT ALL PRIVILEGES ON *.* TO '" + s.User + "'@'" + host + "';\n"
	}
	if err := os.WriteFile(init, []byte(initSQL), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "error.log")
	cmd := exec.Command(bin, append([]string{"--defaults-file=" + m.Config, "--datadir=" + m.Datadir,
		"--pid-file=" + filepath.Join(dir, "mysqld.pid"), "--socket=" + s.Socket, "--log-error=" + logFile,
		"--init-file=" + init, "--user=root"}, args...)...)
	done := StartProcess(t, cmd, time.Minute)
	// The socket accepts connections once InnoDB is up and the init file
	// ran.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		c, err := net.DialTimeout("unix", s.Socket, time.Second)
		if err == nil {
			c.Close()
			return s
		}
		select {
		case e := <-done:
			done <- e
			b, _ := os.ReadFile(logFile)
			t.Fatalf("mariadbd exited before it answered: %v\n%s", e, b)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logFile)
			t.Fatalf("mariadbd does not answer on %s: %v\n%s", s.Socket, err, b)
		}
	}
}

// StartProcess starts cmd (a server the test needs) and stops it when the
// test ends: SIGTERM, then SIGKILL after grace. The channel receives
// cmd.Wait's result when the process exits.
func StartProcess(t testing.TB, cmd *exec.Cmd, grace time.Duration) chan error {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(grace):
			cmd.Process.Kill()
			<-done
		}
	})
	return done
}
