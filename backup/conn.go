package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Errors callers act on.
var (
	// ErrAccessDenied means the server rejected the user or password.
	ErrAccessDenied = errors.New("access denied")
	// ErrUnreachable means no connection could be made to the server.
	ErrUnreachable = errors.New("server unreachable")
	// ErrPasswordInDSN means a DSN given on the command line carried a password.
	ErrPasswordInDSN = errors.New("the DSN contains a password")
)

// Credentials say where a password may come from, in order: the MYSQL_PWD
// environment variable, then the [client] section of an option file.
type Credentials struct {
	// File is a client option file ([client] user=, password=, host=,
	// port=, socket=). It must not be readable by other users.
	File string
	// Required makes a missing File an error even when the DSN is given
	// (a file named on the command line must exist).
	Required bool
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
}

// ResolveDSN turns a DSN without a password (go-sql-driver syntax, e.g.
// "backup@tcp(127.0.0.1:3306)/"; empty means the credentials file's host,
// or 127.0.0.1:3306) into a driver configuration carrying the password from
// cr. A password written in the DSN itself is refused: it would show in the
// process list and in shell history.
//
// The credentials file is needed only when it is the one source: without a
// DSN (the local server, as the watchdog and status connect) and without
// MYSQL_PWD, a missing file is an error. With a DSN, a missing file is not
// (a machine that only holds a repository has none): the password is then
// MYSQL_PWD's, or none. A file that exists is always read, and refused when
// other users can read it.
func ResolveDSN(dsn string, cr Credentials) (*mysql.Config, error) {
	getenv := cr.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	var opts map[string]string
	if cr.File != "" {
		data, err := readSecretFile(cr.File)
		optional := !cr.Required && (dsn != "" || getenv("MYSQL_PWD") != "")
		if err != nil && !(errors.Is(err, os.ErrNotExist) && optional) {
			return nil, err
		}
		opts = ParseOptionFile(data, "client")
	}
	var cfg *mysql.Config
	if dsn == "" {
		cfg = mysql.NewConfig()
		switch {
		case opts["socket"] != "" && opts["host"] == "":
			cfg.Net, cfg.Addr = "unix", opts["socket"]
		default:
			host, port := opts["host"], opts["port"]
			if host == "" || host == "localhost" {
				host = "127.0.0.1"
			}
			if port == "" {
				port = "3306"
			}
			cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(host, port)
		}
	} else {
		var err error
		cfg, err = mysql.ParseDSN(dsn)
		if err != nil {
			return nil, fmt.Errorf("parse DSN: %w", err)
		}
		if cfg.Passwd != "" {
			return nil, fmt.Errorf("%w: give the password in the credentials file or MYSQL_PWD instead", ErrPasswordInDSN)
		}
	}
	if cfg.User == "" {
		cfg.User = opts["user"]
	}
	if cfg.User == "" {
		cfg.User = "root"
	}
	if pw := getenv("MYSQL_PWD"); pw != "" {
		cfg.Passwd = pw
	} else {
		cfg.Passwd = opts["password"]
	}
	cfg.DBName = ""
	return cfg, nil
}

// readSecretFile reads a file that holds a password, refusing one that other
// users can read.
func readSecretFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("credentials file: %w", err)
	}
	if st.Mode().Perm()&0o004 != 0 {
		return nil, fmt.Errorf("credentials file %s is readable by every user (mode %v): chmod 600 it", path, st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credentials file: %w", err)
	}
	return data, nil
}

// TCPConfig returns a driver configuration for user@127.0.0.1:port.
func TCPConfig(user, password string, port int) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = user, password
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return cfg
}

type nopLogger struct{}

func (nopLogger) Print(...any) {}

// Where describes cfg for messages: user and address, never the password.
func Where(cfg *mysql.Config) string {
	return fmt.Sprintf("%s@%s", cfg.User, cfg.Addr)
}

// open connects to the server described by cfg and checks that it answers.
// Its errors wrap ErrAccessDenied or ErrUnreachable when that is the cause.
func open(ctx context.Context, base *mysql.Config, conns int) (*sql.DB, error) {
	cfg := base.Clone()
	cfg.Logger = nopLogger{}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	cfg.InterpolateParams = false
	cfg.MultiStatements = false
	cfg.ParseTime = false
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", Where(cfg), err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(conns + 2)
	db.SetMaxIdleConns(conns + 2)
	db.SetConnMaxIdleTime(time.Hour)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, classify(err, cfg)
	}
	return db, nil
}

// classify wraps a connection error with the sentinel that explains it.
func classify(err error, cfg *mysql.Config) error {
	var me *mysql.MySQLError
	if errors.As(err, &me) && (me.Number == 1045 || me.Number == 1698) {
		return fmt.Errorf("connect to %s: %w: wrong user or password (check the credentials file or MYSQL_PWD): %v", Where(cfg), ErrAccessDenied, err)
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "connection refused") {
		return fmt.Errorf("connect to %s: %w: is MariaDB running and listening there? %v", Where(cfg), ErrUnreachable, err)
	}
	return fmt.Errorf("connect to %s: %w", Where(cfg), err)
}
