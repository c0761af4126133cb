package backup

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// staging is one restore's changes to the target, recorded step by step
// so that a failure anywhere can be rolled back (see Restore).
type staging struct {
	db   *sql.DB
	conn *sql.Conn
	log  *slog.Logger
	tag  string
	dbs  []string
	// names maps each backup database to the schema its tables are
	// created and loaded in.
	names map[string]string
	// staged are staging schemas that exist.
	staged map[string]bool
	// published are backup databases created under their own name.
	published []string
	// aside are the target's own databases moved out of the way.
	aside []asideDB
	// accounts existing before the restore (user, host).
	accounts map[[2]string]bool
}

// asideDB is a target database moved aside while the restore publishes
// its own: its tables renamed into schema, its other objects recorded.
type asideDB struct {
	name, schema string
	create       string   // CREATE DATABASE
	tables       []string // moved into schema
	objs         []Object // views, routines, triggers, events, recreated on rollback
}

func newStaging(ctx context.Context, db *sql.DB, conn *sql.Conn, log *slog.Logger, dbs []string) (*staging, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	st := &staging{db: db, conn: conn, log: log, tag: hex.EncodeToString(b), dbs: dbs, names: map[string]string{}, staged: map[string]bool{}}
	for i, d := range dbs {
		st.names[d] = fmt.Sprintf("haconf_restore_%s_%d", st.tag, i)
	}
	var err error
	if st.accounts, err = listAccounts(ctx, conn); err != nil {
		return nil, err
	}
	return st, nil
}

func (st *staging) exec(ctx context.Context, q string) error {
	if _, err := st.conn.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("%.200s: %w", q, err)
	}
	return nil
}

// stage creates every database of the backup under its staging name, and
// its tables in it.
func (st *staging) stage(ctx context.Context, objs []Object) error {
	for _, ob := range objs {
		if ob.Kind != "database" {
			continue
		}
		stmt, err := renameCreateDatabase(ob.SQL, ob.Name, st.names[ob.Name])
		if err != nil {
			return err
		}
		if err := st.exec(ctx, stmt); err != nil {
			return fmt.Errorf("create staging database for %s: %w", ob.Name, err)
		}
		st.staged[st.names[ob.Name]] = true
	}
	for _, ob := range objs {
		if ob.Kind != "table" {
			continue
		}
		into, ok := st.names[ob.DB]
		if !ok {
			return fmt.Errorf("table %s.%s: its database is not in the backup", ob.DB, ob.Name)
		}
		ob.DB = into
		if err := createObject(ctx, st.conn, ob); err != nil {
			return err
		}
	}
	return nil
}

// renameCreateDatabase rewrites SHOW CREATE DATABASE's statement for name
// to create as instead, keeping its options (character set, collation).
func renameCreateDatabase(stmt, name, as string) (string, error) {
	prefix := "CREATE DATABASE " + quoteIdent(name)
	if !strings.HasPrefix(stmt, prefix) {
		return "", fmt.Errorf("the backup's statement for database %s is not %s...: %.100q", name, prefix, stmt)
	}
	return "CREATE DATABASE " + quoteIdent(as) + stmt[len(prefix):], nil
}

// publish moves each backup database's staged tables under its own name,
// first moving aside a database of that name that the target has.
func (st *staging) publish(ctx context.Context, objs []Object) error {
	contents, err := schemaContents(ctx, st.conn)
	if err != nil {
		return err
	}
	for i, ob := range objs {
		if ob.Kind != "database" {
			continue
		}
		if _, exists := contents[ob.Name]; exists {
			if err := st.moveAside(ctx, ob.Name, fmt.Sprintf("haconf_restore_%s_old%d", st.tag, i)); err != nil {
				return err
			}
		}
		if err := st.exec(ctx, ob.SQL); err != nil {
			return fmt.Errorf("create database %s: %w", ob.Name, err)
		}
		st.published = append(st.published, ob.Name)
		stage := st.names[ob.Name]
		tables, err := baseTables(ctx, st.conn, stage)
		if err != nil {
			return err
		}
		if err := renameTables(ctx, st, stage, ob.Name, tables); err != nil {
			return err
		}
		if err := st.exec(ctx, "DROP DATABASE "+quoteIdent(stage)); err != nil {
			return err
		}
		delete(st.staged, stage)
	}
	return nil
}

// moveAside records db's views, routines, triggers and events, drops its
// triggers (a table with triggers cannot change database), renames its
// tables into schema and drops db.
func (st *staging) moveAside(ctx context.Context, db, schema string) error {
	tables, err := listTables(ctx, st.conn, []string{db})
	if err != nil {
		return err
	}
	objs, err := captureSchema(ctx, st.conn, []string{db}, nil, false)
	if err != nil {
		return fmt.Errorf("record %s before replacing it: %w", db, err)
	}
	a := asideDB{name: db, schema: schema, create: objs[0].SQL, objs: objs[1:]}
	for _, t := range tables {
		a.tables = append(a.tables, t.Name)
	}
	st.log.Warn("moving the target's database aside; it is dropped once the restore succeeded", "db", db, "to", schema)
	if err := st.exec(ctx, "CREATE DATABASE "+quoteIdent(schema)); err != nil {
		return err
	}
	st.aside = append(st.aside, a)
	for _, ob := range a.objs {
		if ob.Kind == "trigger" {
			if err := st.exec(ctx, "DROP TRIGGER "+quoteIdent(db)+"."+quoteIdent(ob.Name)); err != nil {
				return err
			}
		}
	}
	if err := renameTables(ctx, st, db, schema, a.tables); err != nil {
		return err
	}
	return st.exec(ctx, "DROP DATABASE "+quoteIdent(db))
}

// renameTables moves tables from one database to another in one RENAME
// TABLE statement: all or none.
func renameTables(ctx context.Context, st *staging, from, to string, tables []string) error {
	if len(tables) == 0 {
		return nil
	}
	parts := make([]string, len(tables))
	for i, t := range tables {
		parts[i] = quoteIdent(from) + "." + quoteIdent(t) + " TO " + quoteIdent(to) + "." + quoteIdent(t)
	}
	return st.exec(ctx, "RENAME TABLE "+strings.Join(parts, ", "))
}

// baseTables lists the base tables of db.
func baseTables(ctx context.Context, q queryer, db string) ([]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = "+quoteString(db)+" AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY TABLE_NAME")
	if err != nil {
		return nil, fmt.Errorf("list tables of %s: %w", db, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// createUsers creates the backup's accounts that the target does not have
// (never one that exists, the restoring account included: its GRANT
// lines carry the source's password hash).
func (st *staging) createUsers(ctx context.Context, objs []Object) error {
	var users []Object
	for _, ob := range objs {
		if ob.Kind != "user" {
			continue
		}
		exists := false
		for a := range st.accounts {
			exists = exists || a[0]+"@"+a[1] == ob.Name
		}
		if exists {
			st.log.Warn("account exists on the restore target; left as it is", "user", ob.Name)
			continue
		}
		users = append(users, ob)
	}
	return createObjects(ctx, st.conn, users, "user")
}

// listAccounts returns the server's accounts.
func listAccounts(ctx context.Context, q queryer) (map[[2]string]bool, error) {
	rows, err := q.QueryContext(ctx, "SELECT User, Host FROM mysql.user")
	if err != nil {
		return nil, fmt.Errorf("list the target's accounts: %w", err)
	}
	defer rows.Close()
	out := map[[2]string]bool{}
	for rows.Next() {
		var u, h string
		if err := rows.Scan(&u, &h); err != nil {
			return nil, fmt.Errorf("list the target's accounts: %w", err)
		}
		out[[2]string{u, h}] = true
	}
	return out, rows.Err()
}

// rollback undoes every recorded step, newest first, on a connection of
// its own (the failure may have been the restore's connection), and
// returns what it could not undo.
func (st *staging) rollback() (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w (look for schemas named haconf_restore_%s_*: _<n> are staged copies, _old<n> the target's own databases moved aside)", err, st.tag)
		}
	}()
	conn, err := st.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect to roll back: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION foreign_key_checks = 0"); err != nil {
		return fmt.Errorf("prepare the rollback session: %w", err)
	}
	st.conn = conn
	var errs []error
	do := func(q string) {
		if err := st.exec(ctx, q); err != nil {
			errs = append(errs, err)
		}
	}
	st.log.Warn("restore failed: rolling back", "published", st.published, "moved_aside", len(st.aside))
	for i := len(st.published) - 1; i >= 0; i-- {
		do("DROP DATABASE IF EXISTS " + quoteIdent(st.published[i]))
	}
	for s := range st.staged {
		do("DROP DATABASE IF EXISTS " + quoteIdent(s))
	}
	for i := len(st.aside) - 1; i >= 0; i-- {
		a := st.aside[i]
		do(strings.Replace(a.create, "CREATE DATABASE ", "CREATE DATABASE IF NOT EXISTS ", 1))
		tables, err := baseTables(ctx, st.conn, a.schema)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := renameTables(ctx, st, a.schema, a.name, tables); err != nil {
			errs = append(errs, err)
			continue
		}
		for _, kind := range []string{"view", "procedure", "function", "trigger", "event"} {
			if err := createObjects(ctx, st.conn, a.objs, kind); err != nil {
				errs = append(errs, err)
			}
		}
		do("DROP DATABASE " + quoteIdent(a.schema))
	}
	now, err := listAccounts(ctx, st.conn)
	if err != nil {
		errs = append(errs, err)
	}
	for a := range now {
		if !st.accounts[a] {
			do("DROP USER " + quoteString(a[0]) + "@" + quoteString(a[1]))
		}
	}
	return errors.Join(errs...)
}

// commit drops the moved-aside databases: the restore succeeded.
func (st *staging) commit(ctx context.Context) error {
	var errs []error
	for _, a := range st.aside {
		st.log.Warn("dropping the target's replaced database", "db", a.name, "schema", a.schema)
		if err := st.exec(ctx, "DROP DATABASE "+quoteIdent(a.schema)); err != nil {
			errs = append(errs, fmt.Errorf("the restore succeeded, but the replaced %s is left in %s: %w", a.name, a.schema, err))
		}
	}
	return errors.Join(errs...)
}
