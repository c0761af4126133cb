package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// systemSchemas are never backed up unless asked for by name.
var systemSchemas = map[string]bool{
	"mysql": true, "information_schema": true, "performance_schema": true, "sys": true,
}

// IsSystemSchema reports whether db belongs to the server itself.
func IsSystemSchema(db string) bool { return systemSchemas[strings.ToLower(db)] }

// serverInfo reads what identifies the server and whether log_bin is on.
func serverInfo(ctx context.Context, q queryer) (Server, bool, error) {
	var s Server
	var logBin int
	var basename sql.NullString
	err := q.QueryRowContext(ctx, "SELECT @@version, @@hostname, @@server_id, @@gtid_domain_id, @@log_bin, @@log_bin_basename").
		Scan(&s.Version, &s.Hostname, &s.ServerID, &s.GTIDDomainID, &logBin, &basename)
	if err != nil {
		return s, false, fmt.Errorf("read server variables: %w", err)
	}
	s.LogBinBasename = basename.String
	if !strings.Contains(strings.ToLower(s.Version), "mariadb") {
		return s, false, fmt.Errorf("server %s is not MariaDB: haconf backup needs MariaDB 10.4 or later (BACKUP STAGE, binlog_snapshot_position)", s.Version)
	}
	return s, logBin == 1, nil
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// snapshot is a set of connections that all read the same consistent
// snapshot of every InnoDB table.
type snapshot struct {
	conns  []*sql.Conn
	binlog *BinlogPos // nil when log_bin is off
}

func (s *snapshot) close() {
	for _, c := range s.conns {
		_, _ = c.ExecContext(context.Background(), "ROLLBACK")
		c.Close()
	}
}

// openSnapshot opens n connections reading one consistent snapshot.
//
// Each connection runs START TRANSACTION WITH CONSISTENT SNAPSHOT while a
// separate connection holds BACKUP STAGE BLOCK_COMMIT: no transaction can
// commit in between, so every connection sees exactly the same committed
// data, and MariaDB reports the same binlog_snapshot_file/position on each
// (checked). The lock is held for the few milliseconds it takes to start n
// transactions; unlike FLUSH TABLES WITH READ LOCK it does not wait for
// long-running queries, so it cannot stall the application behind them.
func openSnapshot(ctx context.Context, db *sql.DB, n int, logBin bool) (_ *snapshot, err error) {
	s := &snapshot{}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := db.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("open worker connection: %w", err)
		}
		s.conns = append(s.conns, c)
		for _, q := range []string{
			"SET SESSION character_set_results = binary",
			"SET SESSION net_write_timeout = 3600",
			"SET SESSION max_statement_time = 0",
			"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
		} {
			if _, err := c.ExecContext(ctx, q); err != nil {
				return nil, fmt.Errorf("prepare worker session (%s): %w", q, err)
			}
		}
	}
	lock, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("open lock connection: %w", err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "BACKUP STAGE START"); err != nil {
		return nil, fmt.Errorf("BACKUP STAGE START (the user needs the RELOAD privilege): %w", err)
	}
	released := false
	release := func() error {
		if released {
			return nil
		}
		released = true
		_, err := lock.ExecContext(context.Background(), "BACKUP STAGE END")
		return err
	}
	defer func() { _ = release() }()
	if _, err := lock.ExecContext(ctx, "BACKUP STAGE BLOCK_COMMIT"); err != nil {
		return nil, fmt.Errorf("BACKUP STAGE BLOCK_COMMIT: %w", err)
	}
	for i, c := range s.conns {
		if _, err := c.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
			return nil, fmt.Errorf("start snapshot: %w", err)
		}
		if !logBin {
			continue
		}
		pos, err := snapshotPosition(ctx, c)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			s.binlog = pos
		} else if *pos != *s.binlog {
			return nil, fmt.Errorf("worker snapshots disagree (%s vs %s): commits were not blocked", pos, s.binlog)
		}
	}
	if err := release(); err != nil {
		return nil, fmt.Errorf("BACKUP STAGE END: %w", err)
	}
	return s, nil
}

// snapshotPosition reads the binlog position of the connection's snapshot.
func snapshotPosition(ctx context.Context, c *sql.Conn) (*BinlogPos, error) {
	rows, err := c.QueryContext(ctx, "SHOW SESSION STATUS WHERE Variable_name IN ('binlog_snapshot_file', 'binlog_snapshot_position')")
	if err != nil {
		return nil, fmt.Errorf("read binlog snapshot position: %w", err)
	}
	defer rows.Close()
	pos := &BinlogPos{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("read binlog snapshot position: %w", err)
		}
		switch strings.ToLower(k) {
		case "binlog_snapshot_file":
			pos.File = v
		case "binlog_snapshot_position":
			pos.Position, _ = strconv.ParseUint(v, 10, 64)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read binlog snapshot position: %w", err)
	}
	if pos.File == "" {
		return nil, errors.New("the server reports no binlog_snapshot_file although log_bin is on")
	}
	return pos, nil
}

// binlogGTIDPos returns the server's GTID state at a binary log position
// (BINLOG_GTID_POS), and false when the server cannot say: the file is not
// in its binary log, or the position is not an event boundary in it.
func binlogGTIDPos(ctx context.Context, q queryer, pos *BinlogPos) (string, bool, error) {
	var gtid sql.NullString
	if err := q.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, ?)", pos.File, pos.Position).Scan(&gtid); err != nil {
		return "", false, fmt.Errorf("read the GTID state at %s: %w", pos, err)
	}
	return gtid.String, gtid.Valid, nil
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func quoteString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`, "\n", `\n`, "\r", `\r`, "\x1a", `\Z`)
	return "'" + r.Replace(s) + "'"
}
