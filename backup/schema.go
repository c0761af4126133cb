package backup

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
)

// Object is one schema object, stored as the statement that creates it
// together with the session settings it was defined under.
type Object struct {
	Kind      string   `json:"kind"` // database, user, table, view, procedure, function, trigger, event
	DB        string   `json:"db,omitempty"`
	Name      string   `json:"name"`
	SQL       string   `json:"sql"`
	Extra     []string `json:"extra,omitempty"` // further statements (a user's GRANTs)
	SQLMode   string   `json:"sql_mode,omitempty"`
	Charset   string   `json:"character_set_client,omitempty"`
	Collation string   `json:"collation_connection,omitempty"`
}

// tableMeta is what the dump needs to know about one base table.
type tableMeta struct {
	DB, Name   string
	Columns    []string // stored columns (generated columns are recomputed on restore)
	Types      []string // their DATA_TYPE
	PK         []string
	IntPK      bool // a single integer primary key column: chunked by range
	EstRows    int64
	DataLength int64
}

func (t *tableMeta) qualified() string { return quoteIdent(t.DB) + "." + quoteIdent(t.Name) }

// listDatabases returns the databases to back up: only (if non-empty), or
// every database but the system schemas.
func listDatabases(ctx context.Context, q queryer, only []string) ([]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME")
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	defer rows.Close()
	want := map[string]bool{}
	for _, d := range only {
		want[d] = true
	}
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("list databases: %w", err)
		}
		if strings.EqualFold(name, "information_schema") || strings.EqualFold(name, "performance_schema") {
			continue
		}
		if len(only) > 0 && want[name] || len(only) == 0 && !IsSystemSchema(name) {
			out = append(out, name)
			delete(want, name)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	for d := range want {
		return nil, fmt.Errorf("database %q does not exist", d)
	}
	return out, nil
}

// inList renders a parenthesised list of string literals.
func inList(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = quoteString(v)
	}
	return "(" + strings.Join(q, ",") + ")"
}

// listTables returns the base tables of dbs with their columns and keys.
func listTables(ctx context.Context, q queryer, dbs []string) ([]*tableMeta, error) {
	if len(dbs) == 0 {
		return nil, nil
	}
	byName := map[string]*tableMeta{}
	var out []*tableMeta
	rows, err := q.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME, COALESCE(TABLE_ROWS, 0), COALESCE(DATA_LENGTH, 0)
		FROM information_schema.TABLES
		WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') AND TABLE_SCHEMA IN `+inList(dbs)+`
		ORDER BY TABLE_SCHEMA, TABLE_NAME`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	for rows.Next() {
		t := &tableMeta{}
		if err := rows.Scan(&t.DB, &t.Name, &t.EstRows, &t.DataLength); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list tables: %w", err)
		}
		byName[t.DB+"\x00"+t.Name] = t
		out = append(out, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	types := map[string]string{}
	rows, err = q.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, IS_GENERATED
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN `+inList(dbs)+`
		ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`)
	if err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}
	for rows.Next() {
		var db, table, col, typ, gen string
		if err := rows.Scan(&db, &table, &col, &typ, &gen); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list columns: %w", err)
		}
		t := byName[db+"\x00"+table]
		if t == nil || gen == "ALWAYS" {
			continue
		}
		t.Columns = append(t.Columns, col)
		t.Types = append(t.Types, strings.ToLower(typ))
		types[db+"\x00"+table+"\x00"+col] = strings.ToLower(typ)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}
	rows, err = q.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS
		WHERE INDEX_NAME = 'PRIMARY' AND TABLE_SCHEMA IN `+inList(dbs)+`
		ORDER BY TABLE_SCHEMA, TABLE_NAME, SEQ_IN_INDEX`)
	if err != nil {
		return nil, fmt.Errorf("list primary keys: %w", err)
	}
	for rows.Next() {
		var db, table, col string
		if err := rows.Scan(&db, &table, &col); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list primary keys: %w", err)
		}
		if t := byName[db+"\x00"+table]; t != nil {
			t.PK = append(t.PK, col)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list primary keys: %w", err)
	}
	for _, t := range out {
		if len(t.PK) == 1 {
			switch types[t.DB+"\x00"+t.Name+"\x00"+t.PK[0]] {
			case "tinyint", "smallint", "mediumint", "int", "bigint":
				t.IntPK = true
			}
		}
	}
	return out, nil
}

// showCreate runs a SHOW CREATE statement and returns its columns by
// lower-cased name.
func showCreate(ctx context.Context, q queryer, stmt string) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, stmt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", stmt, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", stmt, err)
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", stmt, err)
		}
		return nil, fmt.Errorf("%s: no result", stmt)
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, fmt.Errorf("%s: %w", stmt, err)
	}
	out := map[string]string{}
	for i, c := range cols {
		out[strings.ToLower(c)] = vals[i].String
	}
	return out, nil
}

// captureSchema returns the statements that recreate dbs (and, when users
// is set, the accounts and their grants), in restore order.
func captureSchema(ctx context.Context, q queryer, dbs []string, tables []*tableMeta, users bool) ([]Object, error) {
	var objs []Object
	for _, db := range dbs {
		r, err := showCreate(ctx, q, "SHOW CREATE DATABASE "+quoteIdent(db))
		if err != nil {
			return nil, err
		}
		objs = append(objs, Object{Kind: "database", Name: db, SQL: r["create database"]})
	}
	if users {
		u, err := captureUsers(ctx, q)
		if err != nil {
			return nil, err
		}
		objs = append(objs, u...)
	}
	for _, t := range tables {
		r, err := showCreate(ctx, q, "SHOW CREATE TABLE "+t.qualified())
		if err != nil {
			return nil, err
		}
		objs = append(objs, Object{Kind: "table", DB: t.DB, Name: t.Name, SQL: r["create table"]})
	}
	if len(dbs) == 0 {
		return objs, nil
	}
	type named struct{ db, name, kind string }
	list := func(query string) ([]named, error) {
		rows, err := q.QueryContext(ctx, query)
		if err != nil {
			return nil, fmt.Errorf("list schema objects: %w", err)
		}
		defer rows.Close()
		var out []named
		for rows.Next() {
			var n named
			if err := rows.Scan(&n.db, &n.name, &n.kind); err != nil {
				return nil, fmt.Errorf("list schema objects: %w", err)
			}
			out = append(out, n)
		}
		return out, rows.Err()
	}
	in := inList(dbs)
	// Views, routines, triggers, events: each kind listed, then each
	// object's definition read, in this order.
	var all []named
	for _, query := range []string{
		"SELECT TABLE_SCHEMA, TABLE_NAME, 'view' FROM information_schema.VIEWS WHERE TABLE_SCHEMA IN " + in + " ORDER BY 1, 2",
		"SELECT ROUTINE_SCHEMA, ROUTINE_NAME, LOWER(ROUTINE_TYPE) FROM information_schema.ROUTINES WHERE ROUTINE_TYPE IN ('PROCEDURE','FUNCTION') AND ROUTINE_SCHEMA IN " + in + " ORDER BY 1, 2",
		"SELECT TRIGGER_SCHEMA, TRIGGER_NAME, 'trigger' FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA IN " + in + " ORDER BY 1, ACTION_ORDER, 2",
		"SELECT EVENT_SCHEMA, EVENT_NAME, 'event' FROM information_schema.EVENTS WHERE EVENT_SCHEMA IN " + in + " ORDER BY 1, 2",
	} {
		group, err := list(query)
		if err != nil {
			return nil, err
		}
		all = append(all, group...)
	}
	for _, n := range all {
		r, err := showCreate(ctx, q, "SHOW CREATE "+strings.ToUpper(n.kind)+" "+quoteIdent(n.db)+"."+quoteIdent(n.name))
		if err != nil {
			return nil, err
		}
		o := Object{Kind: n.kind, DB: n.db, Name: n.name, SQLMode: r["sql_mode"], Charset: r["character_set_client"], Collation: r["collation_connection"]}
		switch n.kind {
		case "view":
			o.SQL = r["create view"]
		case "procedure":
			o.SQL = r["create procedure"]
		case "function":
			o.SQL = r["create function"]
		case "trigger":
			o.SQL = r["sql original statement"]
		case "event":
			o.SQL = r["create event"]
		}
		if o.SQL == "" {
			return nil, fmt.Errorf("SHOW CREATE %s %s.%s returned no definition: the backup user lacks privileges on it", n.kind, n.db, n.name)
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// captureUsers returns every account except the server's own, with grants.
func captureUsers(ctx context.Context, q queryer) ([]Object, error) {
	rows, err := q.QueryContext(ctx, `SELECT User, Host FROM mysql.user
		WHERE is_role = 'N' AND User NOT IN ('', 'root', 'mariadb.sys', 'mysql') ORDER BY User, Host`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	type account struct{ user, host string }
	var accounts []account
	for rows.Next() {
		var a account
		if err := rows.Scan(&a.user, &a.host); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list users: %w", err)
		}
		accounts = append(accounts, a)
	}
	rows.Close()
	var out []Object
	for _, a := range accounts {
		name := quoteString(a.user) + "@" + quoteString(a.host)
		r, err := showCreate(ctx, q, "SHOW CREATE USER "+name)
		if err != nil {
			return nil, err
		}
		var create string
		for _, v := range r {
			create = v
		}
		create = strings.Replace(create, "CREATE USER ", "CREATE USER IF NOT EXISTS ", 1)
		grows, err := q.QueryContext(ctx, "SHOW GRANTS FOR "+name)
		if err != nil {
			return nil, fmt.Errorf("grants of %s: %w", name, err)
		}
		var grants []string
		for grows.Next() {
			var g string
			if err := grows.Scan(&g); err != nil {
				grows.Close()
				return nil, fmt.Errorf("grants of %s: %w", name, err)
			}
			grants = append(grants, g)
		}
		grows.Close()
		sort.Strings(grants)
		out = append(out, Object{Kind: "user", Name: a.user + "@" + a.host, SQL: create, Extra: grants})
	}
	return out, nil
}
