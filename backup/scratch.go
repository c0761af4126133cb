package backup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// ScratchOptions configure a throw-away MariaDB server.
type ScratchOptions struct {
	// Dir is where the datadir, socket and logs go (default: a new temp
	// directory, removed by Stop).
	Dir string
	// Runner starts mariadb-install-db and mariadbd (internal/runner.Exec).
	Runner Runner
	// LogBin turns the binary log on (as on the production server).
	LogBin bool
	// BufferPool is innodb_buffer_pool_size (default 256M).
	BufferPool string
	// Args are extra mariadbd options.
	Args []string
	// TestDB keeps the empty test database mariadb-install-db creates by
	// default (a fresh server as a distribution installs it).
	TestDB bool
	// Reuse starts mariadbd on the datadir a previous StartScratch left in
	// Dir (stopped, Dir given by the caller) instead of installing one: the
	// same database started again, as after a failover.
	Reuse  bool
	Logger *slog.Logger
}

// ScratchServer is a MariaDB server on 127.0.0.1 with its own datadir,
// started for a drill or a test. Its account is haconf@127.0.0.1 with a
// random password that exists only in memory and in a 0600 init file
// inside Dir.
type ScratchServer struct {
	Dir    string
	Port   int
	Socket string
	// Config reaches the server as haconf with all privileges.
	Config *mysql.Config

	removeDir bool
	cancel    context.CancelFunc
	done      chan error
}

// StartScratch installs a fresh datadir and starts mariadbd on a free port,
// returning once it accepts connections. Stop it with Stop.
func StartScratch(ctx context.Context, o ScratchOptions) (_ *ScratchServer, err error) {
	if o.Runner == nil {
		return nil, errors.New("scratch server: no runner")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.BufferPool == "" {
		o.BufferPool = "256M"
	}
	s := &ScratchServer{Dir: o.Dir}
	if s.Dir == "" {
		if s.Dir, err = os.MkdirTemp("", "haconf-scratch-"); err != nil {
			return nil, fmt.Errorf("scratch server: %w", err)
		}
		s.removeDir = true
	}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	datadir := filepath.Join(s.Dir, "data")
	// A tmpdir of its own: mariadbd deletes every #sql* file in its
	// tmpdir at start, so a scratch server sharing /tmp with the
	// controller's MariaDB would delete that server's temporary tables.
	tmpdir := filepath.Join(s.Dir, "tmp")
	if err := os.MkdirAll(tmpdir, 0o700); err != nil {
		return nil, fmt.Errorf("scratch server: %w", err)
	}
	s.Socket = filepath.Join(s.Dir, "mysqld.sock")
	ictx, icancel := context.WithTimeout(ctx, 2*time.Minute)
	defer icancel()
	install := []string{"--no-defaults", "--datadir=" + datadir, "--tmpdir=" + tmpdir, "--auth-root-authentication-method=normal"}
	if !o.TestDB {
		install = append(install, "--skip-test-db")
	}
	if os.Geteuid() == 0 {
		install = append(install, "--user=root")
	}
	if !o.Reuse {
		if _, err := o.Runner.Run(ictx, "mariadb-install-db", install...); err != nil {
			return nil, fmt.Errorf("scratch server: install datadir: %w", err)
		}
	}
	if s.Port, err = freePort(); err != nil {
		return nil, fmt.Errorf("scratch server: %w", err)
	}
	pw := make([]byte, 18)
	if _, err := rand.Read(pw); err != nil {
		return nil, fmt.Errorf("scratch server: %w", err)
	}
	password := hex.EncodeToString(pw)
	init := filepath.Join(s.Dir, "init.sql")
	// Not in the binary log: a differential must not carry the account
	// (a replay would change the restoring account's password).
	initSQL := "SET SESSION sql_log_bin = 0;\n" +
		"CREATE USER IF NOT EXISTS 'haconf'@'127.0.0.1';\n" +
		"ALTER USER 'haconf'@'127.0.0.1' IDENTIFIED BY '" + password + "';\n" +
		"GRANT ALL PRIVILEGES ON *.* TO 'haconf'@'127.0.0.1' WITH GRANT OPTION;\n"
	if err := os.WriteFile(init, []byte(initSQL), 0o600); err != nil {
		return nil, fmt.Errorf("scratch server: %w", err)
	}
	args := []string{"--no-defaults",
		"--datadir=" + datadir,
		"--tmpdir=" + tmpdir,
		"--socket=" + s.Socket,
		"--port=" + strconv.Itoa(s.Port),
		"--bind-address=127.0.0.1",
		"--pid-file=" + filepath.Join(s.Dir, "mysqld.pid"),
		"--log-error=" + filepath.Join(s.Dir, "error.log"),
		"--skip-name-resolve",
		"--init-file=" + init,
		"--innodb-buffer-pool-size=" + o.BufferPool,
		"--innodb-flush-log-at-trx-commit=2",
		"--max-allowed-packet=256M",
		"--local-infile=1",
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	if o.LogBin {
		args = append(args, "--log-bin="+filepath.Join(datadir, "binlog"), "--server-id=1")
	} else {
		args = append(args, "--skip-log-bin")
	}
	args = append(args, o.Args...)
	// mariadbd runs until Stop cancels its context; the far deadline keeps
	// the runner's default timeout from killing it.
	sctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), time.Now().Add(7*24*time.Hour))
	s.cancel = cancel
	s.done = make(chan error, 1)
	go func() {
		_, err := o.Runner.Run(sctx, "mariadbd", args...)
		s.done <- err
	}()
	s.Config = TCPConfig("haconf", password, s.Port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		db, perr := open(pctx, s.Config, 0)
		pcancel()
		if perr == nil {
			db.Close()
			break
		}
		select {
		case err := <-s.done:
			s.done <- err
			return nil, fmt.Errorf("scratch server: mariadbd exited: %v: %s", err, s.errorLogTail())
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("scratch server: not ready after 60s: %v: %s", perr, s.errorLogTail())
		}
	}
	o.Logger.Debug("scratch server ready", "dir", s.Dir, "port", s.Port)
	return s, nil
}

func (s *ScratchServer) errorLogTail() string {
	data, _ := os.ReadFile(filepath.Join(s.Dir, "error.log"))
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

// Stop kills the server, waits for it and removes its directory if
// StartScratch created it.
func (s *ScratchServer) Stop() {
	if s.cancel != nil {
		s.cancel()
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
		}
		s.cancel = nil
	}
	if s.removeDir {
		_ = os.RemoveAll(s.Dir)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
