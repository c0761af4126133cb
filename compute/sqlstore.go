package compute

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"
)

// SQLStore keeps the controller's state in MariaDB, in haconf's own
// database. With the controller pair that is the pair's database (on the
// DRBD volume, reached through the VIP): a controller started on the other
// node after a failover finds every incident where it stood, resumes it,
// and never evacuates an instance twice; haconf compute status and the
// operator's commands work on either node. The caller builds DB (this
// package knows no credentials). The database and its tables are created
// on first use (InnoDB, utf8mb4):
//
//	compute_incidents   one row per incident: the incident (JSON) in doc,
//	                    copies of id, host, state, opened, updated for queries
//	compute_holds       one row: the operator's holds (JSON)
//	compute_status      one row: the published status without its incidents
//	                    (JSON), written only when it changes
//	compute_controller  one row: the controller, when it started, and its
//	                    last round (at), written every round
//
// The status's heartbeat has a row of its own so that the row written
// every second stays small: the binary log (ROW format, full images)
// would otherwise get the whole status twice a second.
type SQLStore struct {
	DB *sql.DB
	// Database is haconf's schema (default "haconf").
	Database string
	// Timeout bounds each operation (default 10 s): a round of a
	// controller whose database is moving fails, it never hangs.
	Timeout time.Duration

	mu    sync.Mutex
	ready bool // the schema is there

	statusMu  sync.Mutex
	statusDoc []byte // the status document this store last wrote
}

// DefaultDatabase is SQLStore's database unless Database says otherwise.
const DefaultDatabase = "haconf"

var sqlTables = []string{"compute_incidents", "compute_holds", "compute_status", "compute_controller"}

const sqlTableOptions = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

var sqlSchema = []string{
	`CREATE TABLE IF NOT EXISTS %s.compute_incidents (
		id VARCHAR(255) NOT NULL,
		host VARCHAR(255) NOT NULL,
		state VARCHAR(32) NOT NULL,
		opened DATETIME(6) NULL,
		updated DATETIME(6) NULL,
		doc MEDIUMTEXT NOT NULL,
		PRIMARY KEY (id),
		KEY opened (opened),
		KEY host (host)
	)` + sqlTableOptions,
	`CREATE TABLE IF NOT EXISTS %s.compute_holds (
		id TINYINT UNSIGNED NOT NULL,
		updated DATETIME(6) NOT NULL,
		doc TEXT NOT NULL,
		PRIMARY KEY (id)
	)` + sqlTableOptions,
	`CREATE TABLE IF NOT EXISTS %s.compute_status (
		id TINYINT UNSIGNED NOT NULL,
		updated DATETIME(6) NOT NULL,
		doc MEDIUMTEXT NOT NULL,
		PRIMARY KEY (id)
	)` + sqlTableOptions,
	`CREATE TABLE IF NOT EXISTS %s.compute_controller (
		id TINYINT UNSIGNED NOT NULL,
		name VARCHAR(255) NOT NULL,
		started DATETIME(6) NULL,
		at DATETIME(6) NULL,
		PRIMARY KEY (id)
	)` + sqlTableOptions,
}

var sqlIdentifier = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

func (s *SQLStore) database() string {
	if s.Database == "" {
		return DefaultDatabase
	}
	return s.Database
}

// table is the quoted name of one of the store's tables.
func (s *SQLStore) table(name string) string { return "`" + s.database() + "`." + name }

// bound gives one operation its timeout.
func (s *SQLStore) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	d := s.Timeout
	if d == 0 {
		d = 10 * time.Second
	}
	return context.WithTimeout(ctx, d)
}

// fail names the operation that failed and where.
func (s *SQLStore) fail(op string, err error) error {
	return fmt.Errorf("compute state in MariaDB database %s: %s: %w", s.database(), op, err)
}

// ensure creates the database and the tables unless a store found them
// already; after a failure the next operation tries again.
func (s *SQLStore) ensure(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready {
		return nil
	}
	if s.DB == nil {
		return errors.New("no database connection")
	}
	db := s.database()
	if !sqlIdentifier.MatchString(db) {
		return fmt.Errorf("database name %q: want letters, digits and _", db)
	}
	var n int
	err := s.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?, ?, ?, ?)",
		db, sqlTables[0], sqlTables[1], sqlTables[2], sqlTables[3]).Scan(&n)
	if err != nil {
		return fmt.Errorf("look for the tables: %w", err)
	}
	if n < len(sqlTables) {
		if _, err := s.DB.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+db+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
			return fmt.Errorf("create the database: %w", err)
		}
		for i, stmt := range sqlSchema {
			if _, err := s.DB.ExecContext(ctx, fmt.Sprintf(stmt, "`"+db+"`")); err != nil {
				return fmt.Errorf("create table %s: %w", sqlTables[i], err)
			}
		}
	}
	// The holds' one row exists before anyone updates it: SELECT ... FOR
	// UPDATE then always locks a row (two updates inserting a missing row
	// at once would deadlock on the gap). When it is there this writes
	// nothing.
	if _, err := s.DB.ExecContext(ctx, "INSERT IGNORE INTO "+s.table("compute_holds")+" (id, updated, doc) VALUES (1, UTC_TIMESTAMP(6), '{}')"); err != nil {
		return fmt.Errorf("create the holds: %w", err)
	}
	s.ready = true
	return nil
}

// sqlTime is t for a DATETIME(6) column: UTC, NULL when zero.
func sqlTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02 15:04:05.000000")
}

// Save writes the incident whole, inserting or replacing its row.
func (s *SQLStore) Save(ctx context.Context, in *Incident) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	op := "save incident " + in.ID
	if err := s.ensure(ctx); err != nil {
		return s.fail(op, err)
	}
	doc, err := json.Marshal(in)
	if err != nil {
		return s.fail(op, err)
	}
	_, err = s.DB.ExecContext(ctx, "INSERT INTO "+s.table("compute_incidents")+" (id, host, state, opened, updated, doc) VALUES (?, ?, ?, ?, ?, ?)"+
		" ON DUPLICATE KEY UPDATE host = VALUES(host), state = VALUES(state), opened = VALUES(opened), updated = VALUES(updated), doc = VALUES(doc)",
		in.ID, in.Host, string(in.State), sqlTime(in.Opened), sqlTime(in.Updated), doc)
	if err != nil {
		return s.fail(op, err)
	}
	return nil
}

// Incidents returns every incident, oldest first.
func (s *SQLStore) Incidents(ctx context.Context) ([]*Incident, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.ensure(ctx); err != nil {
		return nil, s.fail("read the incidents", err)
	}
	out, err := s.incidents(ctx, s.DB)
	if err != nil {
		return nil, s.fail("read the incidents", err)
	}
	return out, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *SQLStore) incidents(ctx context.Context, q querier) ([]*Incident, error) {
	rows, err := q.QueryContext(ctx, "SELECT id, doc FROM "+s.table("compute_incidents")+" ORDER BY opened, id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Incident
	for rows.Next() {
		var id string
		var doc []byte
		if err := rows.Scan(&id, &doc); err != nil {
			return nil, err
		}
		in := &Incident{}
		if err := json.Unmarshal(doc, in); err != nil {
			return nil, fmt.Errorf("incident %s: %w", id, err)
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// Holds reads the operator's holds.
func (s *SQLStore) Holds(ctx context.Context) (Holds, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var h Holds
	if err := s.ensure(ctx); err != nil {
		return h, s.fail("read the holds", err)
	}
	var doc []byte
	err := s.DB.QueryRowContext(ctx, "SELECT doc FROM "+s.table("compute_holds")+" WHERE id = 1").Scan(&doc)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return h, nil
	case err != nil:
		return h, s.fail("read the holds", err)
	}
	if err := json.Unmarshal(doc, &h); err != nil {
		return h, s.fail("read the holds", err)
	}
	return h, nil
}

// UpdateHolds changes the holds with f in one transaction that holds the
// row's lock (SELECT ... FOR UPDATE) from the read to the write: two
// operators' haconf compute maintenance never lose each other's hold.
func (s *SQLStore) UpdateHolds(ctx context.Context, f func(*Holds)) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	const op = "update the holds"
	if err := s.ensure(ctx); err != nil {
		return s.fail(op, err)
	}
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(op, err)
	}
	defer tx.Rollback()
	var h Holds
	var doc []byte
	err = tx.QueryRowContext(ctx, "SELECT doc FROM "+s.table("compute_holds")+" WHERE id = 1 FOR UPDATE").Scan(&doc)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return s.fail(op, err)
	default:
		if err := json.Unmarshal(doc, &h); err != nil {
			return s.fail(op, err)
		}
	}
	f(&h)
	if doc, err = json.Marshal(h); err != nil {
		return s.fail(op, err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+s.table("compute_holds")+" (id, updated, doc) VALUES (1, UTC_TIMESTAMP(6), ?)"+
		" ON DUPLICATE KEY UPDATE updated = VALUES(updated), doc = VALUES(doc)", doc); err != nil {
		return s.fail(op, err)
	}
	if err := tx.Commit(); err != nil {
		return s.fail(op, err)
	}
	return nil
}

// SaveStatus publishes st: the controller's row every time, the status
// document only when it changed: when it is the one this store wrote
// last, it is not sent at all (at 1,000 hosts it is several hundred KB,
// every round), and MariaDB does not rewrite a row whose doc is the same.
// st.Incidents are not written: Status reads them from their table.
func (s *SQLStore) SaveStatus(ctx context.Context, st Status) error {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	ctx, cancel := s.bound(ctx)
	defer cancel()
	const op = "publish the status"
	if err := s.ensure(ctx); err != nil {
		return s.fail(op, err)
	}
	body := st
	body.At, body.Incidents = time.Time{}, nil
	doc, err := json.Marshal(body)
	if err != nil {
		return s.fail(op, err)
	}
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(op, err)
	}
	defer tx.Rollback()
	// updated is assigned before doc, so it compares with the old doc;
	// an unchanged row is not written at all.
	if !bytes.Equal(doc, s.statusDoc) {
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+s.table("compute_status")+" (id, updated, doc) VALUES (1, UTC_TIMESTAMP(6), ?)"+
			" ON DUPLICATE KEY UPDATE updated = IF(doc = VALUES(doc), updated, VALUES(updated)), doc = VALUES(doc)", doc); err != nil {
			return s.fail(op, err)
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO "+s.table("compute_controller")+" (id, name, started, at) VALUES (1, ?, ?, ?)"+
		" ON DUPLICATE KEY UPDATE name = VALUES(name), started = VALUES(started), at = VALUES(at)",
		st.Controller, sqlTime(st.Started), sqlTime(st.At)); err != nil {
		return s.fail(op, err)
	}
	if err := tx.Commit(); err != nil {
		s.statusDoc = nil // sent again next time: it may not be there
		return s.fail(op, err)
	}
	s.statusDoc = doc
	return nil
}

// Status reads the published status and every incident, from one
// snapshot of the database.
func (s *SQLStore) Status(ctx context.Context) (*Status, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	const op = "read the status"
	if err := s.ensure(ctx); err != nil {
		return nil, s.fail(op, err)
	}
	tx, err := s.DB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.fail(op, err)
	}
	defer tx.Rollback()
	var name string
	var started, at sql.NullString
	const layout = "%Y-%m-%d %H:%i:%s.%f"
	err = tx.QueryRowContext(ctx, "SELECT name, DATE_FORMAT(started, '"+layout+"'), DATE_FORMAT(at, '"+layout+"') FROM "+s.table("compute_controller")+" WHERE id = 1").
		Scan(&name, &started, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w with MariaDB database %s", ErrNoStatus, s.database())
	}
	if err != nil {
		return nil, s.fail(op, err)
	}
	var st Status
	var doc []byte
	err = tx.QueryRowContext(ctx, "SELECT doc FROM "+s.table("compute_status")+" WHERE id = 1").Scan(&doc)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, s.fail(op, err)
	default:
		if err := json.Unmarshal(doc, &st); err != nil {
			return nil, s.fail(op, err)
		}
	}
	st.Controller = name
	if st.Started, err = parseSQLTime(started); err != nil {
		return nil, s.fail(op, err)
	}
	if st.At, err = parseSQLTime(at); err != nil {
		return nil, s.fail(op, err)
	}
	if st.Incidents, err = s.incidents(ctx, tx); err != nil {
		return nil, s.fail(op, err)
	}
	return &st, nil
}

func parseSQLTime(v sql.NullString) (time.Time, error) {
	if !v.Valid {
		return time.Time{}, nil
	}
	return time.ParseInLocation("2006-01-02 15:04:05.000000", v.String, time.UTC)
}
