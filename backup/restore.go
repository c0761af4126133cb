package backup

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/klauspost/compress/zstd"
)

// ErrTargetNotEmpty means the restore target already holds a database of
// the backup.
var ErrTargetNotEmpty = errors.New("the restore target is not empty")

// Runner runs an external command (internal/runner.Exec in production).
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// RestoreOptions configure a restore.
type RestoreOptions struct {
	Target *mysql.Config
	Repo   Repository
	// ID is the backup to restore (default: the newest); a differential
	// brings its full along.
	ID       string
	Parallel int
	// Force replaces databases of the backup that already hold data on the
	// target; their old content is dropped only once the restore succeeded.
	Force bool
	// DryRun checks the chain (every file) and the target and says what
	// would happen, changing nothing.
	DryRun bool
	// Runner runs mariadb-binlog to replay a differential.
	Runner   Runner
	Logger   *slog.Logger
	Progress *Progress
	// CheckFull, when set, runs once the full is loaded and before the
	// differential is replayed; an error stops the restore (and rolls it
	// back).
	CheckFull func(ctx context.Context, full *Manifest) error

	freeSpace func(dir string) (int64, error) // test hook (default FreeBytes)
	afterLoad func() error                    // test hook: runs after the data is staged
}

// RestoreResult says what a restore did (or, dry, would do).
type RestoreResult struct {
	Chain     []string `json:"chain"`
	Databases []string `json:"databases"`
	// Existing are backup databases that hold data on the target: a
	// restore refuses them unless forced, and then replaces them.
	Existing []string `json:"existing,omitempty"`
	// Empty are backup databases that exist on the target without any
	// table, view, routine or event (a fresh server's test database):
	// not data, replaced without --force.
	Empty  []string `json:"empty,omitempty"`
	Tables int      `json:"tables"`
	Rows   int64    `json:"rows"`
	Bytes  int64    `json:"bytes"`
	// Verified is true once every file of the chain matched its SHA-256,
	// which a restore checks before it changes anything.
	Verified bool          `json:"verified"`
	Events   int           `json:"binlog_statements"`
	Duration time.Duration `json:"duration_ns"`
	DryRun   bool          `json:"dry_run"`
	// Expected are the tables of the last backup in the chain with the
	// row counts and checksums recorded at its snapshot.
	Expected []TableInfo `json:"-"`
}

var readerSeq atomic.Int64

// Restore loads a backup chain into a server, never leaving it half
// loaded:
//
//  1. Before anything on the target changes, every manifest of the chain is
//     checked against its manifest.json.sha256 and every file against its
//     size and SHA-256; the free space for the restore is checked (on the
//     target's datadir when the target is on this machine, and in the
//     temporary directory the binary logs are unpacked to).
//  2. The target is checked: a backup database that already holds data
//     there is refused unless Force; an empty one (a fresh server's test
//     database) is not data.
//  3. Every database is created under a staging name
//     (haconf_restore_<tag>_<n>), its tables created and loaded there,
//     each data file's row count checked against what the server loaded.
//  4. Publishing: each database that exists on the target is moved aside
//     (its tables renamed into haconf_restore_<tag>_old<n>, its views,
//     routines, triggers and events recorded and dropped), the database is
//     created under its own name and the staged tables renamed into it
//     (RENAME TABLE); then accounts, views, routines, triggers and events
//     are created and the differential replayed.
//  5. Any failure rolls back: staged and published databases are dropped,
//     the moved-aside ones renamed back with their recorded views,
//     routines, triggers and events, and accounts the restore created are
//     dropped. The old content of replaced databases is dropped only after
//     everything succeeded.
//
// What cannot be staged: accounts and the differential's replay act on the
// target's real names. Accounts that already exist on the target are never
// changed by the restore itself; but grants or writes that the replayed
// binary log makes to accounts or databases outside the backup that existed
// before are not undone by a rollback.
func Restore(ctx context.Context, o RestoreOptions) (*RestoreResult, error) {
	start := time.Now()
	if o.Parallel < 1 {
		o.Parallel = 2
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Progress == nil {
		o.Progress = &Progress{}
	}
	chain, err := o.Repo.Chain(o.ID)
	if err != nil {
		return nil, err
	}
	full := chain[0]
	last := chain[len(chain)-1]
	res := &RestoreResult{Databases: full.Databases, DryRun: o.DryRun, Expected: last.Tables}
	for _, m := range chain {
		res.Chain = append(res.Chain, m.ID)
		res.Bytes += m.Size()
	}
	for _, t := range full.Tables {
		res.Rows += t.Rows
	}
	res.Tables = len(full.Tables)
	o.Progress.setPhase("verify")
	var problems []string
	for _, m := range chain {
		p, err := o.Repo.verifyFiles(ctx, m)
		if err != nil {
			return res, err
		}
		for _, x := range p {
			problems = append(problems, x.String())
		}
	}
	if len(problems) > 0 {
		return res, fmt.Errorf("%w: nothing was restored: %s", ErrCorrupt, strings.Join(problems, "; "))
	}
	res.Verified = true
	var objs []Object
	if err := readJSON(o.Repo, full, "schema.json", &objs); err != nil {
		return res, err
	}
	need := restoreSpace(chain)
	if need.tmp > 0 {
		if err := checkSpace(o.freeSpace, os.TempDir(), need.tmp, "unpacking the differential's binary logs"); err != nil {
			return res, err
		}
	}
	db, err := open(ctx, o.Target, o.Parallel)
	if err != nil {
		return res, err
	}
	defer db.Close()
	if err := checkTargetSpace(ctx, db, o, need.target); err != nil {
		return res, err
	}
	contents, err := schemaContents(ctx, db)
	if err != nil {
		return res, err
	}
	for _, d := range full.Databases {
		n, ok := contents[d]
		switch {
		case !ok:
		case n == 0:
			res.Empty = append(res.Empty, d)
		default:
			res.Existing = append(res.Existing, d)
		}
	}
	if len(res.Existing) > 0 && !o.Force {
		return res, fmt.Errorf("%w: it already has database(s) %s holding data; restore into an empty server, or replace them (--force: the old content is dropped once the restore succeeded)", ErrTargetNotEmpty, strings.Join(res.Existing, ", "))
	}
	if o.DryRun {
		res.Duration = time.Since(start)
		return res, nil
	}
	if len(last.BinlogFiles) > 0 && o.Runner == nil {
		return nil, errors.New("restoring a differential needs a runner for mariadb-binlog")
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to target: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION foreign_key_checks = 0"); err != nil {
		return nil, fmt.Errorf("prepare target session: %w", err)
	}
	st, err := newStaging(ctx, db, conn, o.Logger, full.Databases)
	if err != nil {
		return nil, err
	}
	if err := restoreChain(ctx, db, conn, st, o, chain, objs, res); err != nil {
		if rerr := st.rollback(); rerr != nil {
			return nil, fmt.Errorf("%w; rolling the restore back also failed, the target needs a look: %w", err, rerr)
		}
		return nil, fmt.Errorf("%w (rolled back: the target is as it was)", err)
	}
	if err := st.commit(ctx); err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	o.Logger.Info("restore complete", "chain", strings.Join(res.Chain, ","), "tables", res.Tables, "rows", res.Rows, "duration", res.Duration.Round(time.Millisecond))
	return res, nil
}

// restoreChain stages the full, publishes it, and replays the
// differential; st records every step for a rollback.
func restoreChain(ctx context.Context, db *sql.DB, conn *sql.Conn, st *staging, o RestoreOptions, chain []*Manifest, objs []Object, res *RestoreResult) error {
	full, last := chain[0], chain[len(chain)-1]
	o.Progress.setPhase("schema")
	if err := st.stage(ctx, objs); err != nil {
		return err
	}
	o.Progress.setPhase("data")
	o.Progress.RowsTotal.Store(res.Rows)
	if err := loadData(ctx, db, o, full, st.names); err != nil {
		return err
	}
	if o.afterLoad != nil {
		if err := o.afterLoad(); err != nil {
			return err
		}
	}
	o.Progress.setPhase("publish")
	if err := st.publish(ctx, objs); err != nil {
		return err
	}
	if err := st.createUsers(ctx, objs); err != nil {
		return err
	}
	o.Progress.setPhase("schema")
	if err := createObjects(ctx, conn, objs, "view", "procedure", "function", "trigger", "event"); err != nil {
		return err
	}
	if o.CheckFull != nil {
		if err := o.CheckFull(ctx, full); err != nil {
			return err
		}
	}
	if len(chain) > 1 {
		o.Progress.setPhase("binlog")
		n, err := replayDifferential(ctx, conn, o, full, last)
		if err != nil {
			return err
		}
		res.Events = n
	}
	return nil
}

// spaceNeed is what a restore is estimated to take.
type spaceNeed struct {
	target int64 // on the target's datadir
	tmp    int64 // in the temporary directory (unpacked binary logs)
}

// restoreSpace estimates a chain's space from its files' uncompressed
// sizes (RawSize; for backups that did not record it, 3x the data files'
// and 5x the binary logs' compressed size): the target takes about twice
// the data's text (InnoDB pages, row overhead and indexes) plus the
// replayed binary logs, which are also unpacked to the temporary directory.
func restoreSpace(chain []*Manifest) spaceNeed {
	var n spaceNeed
	for _, m := range chain {
		for _, f := range m.Files {
			isLog := strings.HasPrefix(f.Path, "binlog/")
			raw := f.RawSize
			if raw == 0 && isLog {
				raw = 5 * f.Size
			} else if raw == 0 && strings.HasPrefix(f.Path, "data/") {
				raw = 3 * f.Size
			}
			if isLog {
				n.tmp += raw
				n.target += raw
			} else if strings.HasPrefix(f.Path, "data/") {
				n.target += 2 * raw
			}
		}
	}
	return n
}

// checkTargetSpace checks the free space of the target's datadir when the
// target runs on this machine (a unix socket or a loopback address); a
// remote target's disk cannot be seen from here, which is logged.
func checkTargetSpace(ctx context.Context, db *sql.DB, o RestoreOptions, need int64) error {
	local := o.Target.Net == "unix"
	if host, _, err := net.SplitHostPort(o.Target.Addr); err == nil && o.Target.Net == "tcp" {
		ip := net.ParseIP(host)
		local = host == "localhost" || ip != nil && ip.IsLoopback()
	}
	if !local {
		o.Logger.Warn("free space on the restore target not checked: it is not on this machine", "target", Where(o.Target), "needs", FormatBytes(need))
		return nil
	}
	var datadir string
	if err := db.QueryRowContext(ctx, "SELECT @@datadir").Scan(&datadir); err != nil {
		return fmt.Errorf("read the target's datadir: %w", err)
	}
	return checkSpace(o.freeSpace, datadir, need, "the restored databases (twice the data's uncompressed size, plus the binary logs)")
}

// schemaContents returns every database of the server with the number of
// tables, views, routines and events it holds.
func schemaContents(ctx context.Context, q queryer) (map[string]int, error) {
	rows, err := q.QueryContext(ctx, `SELECT s.SCHEMA_NAME,
		(SELECT COUNT(*) FROM information_schema.TABLES t WHERE t.TABLE_SCHEMA = s.SCHEMA_NAME) +
		(SELECT COUNT(*) FROM information_schema.ROUTINES r WHERE r.ROUTINE_SCHEMA = s.SCHEMA_NAME) +
		(SELECT COUNT(*) FROM information_schema.EVENTS e WHERE e.EVENT_SCHEMA = s.SCHEMA_NAME)
		FROM information_schema.SCHEMATA s`)
	if err != nil {
		return nil, fmt.Errorf("list the target's databases: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			return nil, fmt.Errorf("list the target's databases: %w", err)
		}
		out[name] = n
	}
	return out, rows.Err()
}

// openVerified opens a file of backup m for reading through a check of its
// SHA-256; call check after reading to the end.
func openVerified(repo Repository, m *Manifest, rel string) (io.Reader, func() error, func(), error) {
	var fi *FileInfo
	for i := range m.Files {
		if m.Files[i].Path == rel {
			fi = &m.Files[i]
		}
	}
	if fi == nil {
		return nil, nil, nil, fmt.Errorf("%w: %s/%s is not in the manifest", ErrCorrupt, m.ID, rel)
	}
	f, err := os.Open(repo.Path(m.ID, rel))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %s/%s: %v", ErrCorrupt, m.ID, rel, err)
	}
	h := sha256.New()
	tee := io.TeeReader(f, h)
	check := func() error {
		if _, err := io.Copy(io.Discard, tee); err != nil {
			return fmt.Errorf("read %s/%s: %w", m.ID, rel, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != fi.SHA256 {
			return fmt.Errorf("%w: %s/%s: sha256 %s, manifest says %s", ErrCorrupt, m.ID, rel, got, fi.SHA256)
		}
		return nil
	}
	return tee, check, func() { f.Close() }, nil
}

func readJSON(repo Repository, m *Manifest, rel string, v any) error {
	r, check, done, err := openVerified(repo, m, rel)
	if err != nil {
		return err
	}
	defer done()
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("read %s/%s: %w", m.ID, rel, err)
	}
	if err := check(); err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %s/%s: %v", ErrCorrupt, m.ID, rel, err)
	}
	return nil
}

// createObjects runs the statements of objs whose kind is in kinds, in
// order. Views are retried until no more can be created, because a view
// may select from a view that sorts after it.
func createObjects(ctx context.Context, c *sql.Conn, objs []Object, kinds ...string) error {
	want := map[string]bool{}
	for _, k := range kinds {
		want[k] = true
	}
	var pending []Object
	for _, o := range objs {
		if want[o.Kind] {
			pending = append(pending, o)
		}
	}
	for len(pending) > 0 {
		var retry []Object
		var lastErr error
		for _, o := range pending {
			if err := createObject(ctx, c, o); err != nil {
				if o.Kind != "view" {
					return err
				}
				retry, lastErr = append(retry, o), err
			}
		}
		if len(retry) == len(pending) {
			return lastErr
		}
		pending = retry
	}
	return nil
}

func createObject(ctx context.Context, c *sql.Conn, o Object) error {
	var stmts []string
	if o.DB != "" {
		stmts = append(stmts, "USE "+quoteIdent(o.DB))
	}
	if o.SQLMode != "" || o.Kind != "table" {
		stmts = append(stmts, "SET SESSION sql_mode = "+quoteString(o.SQLMode))
	}
	if o.Charset != "" {
		stmts = append(stmts, "SET SESSION character_set_client = "+quoteString(o.Charset))
	}
	if o.Collation != "" {
		stmts = append(stmts, "SET SESSION collation_connection = "+quoteString(o.Collation))
	}
	stmts = append(stmts, o.SQL)
	stmts = append(stmts, o.Extra...)
	stmts = append(stmts, "SET SESSION sql_mode = DEFAULT", "SET NAMES utf8mb4")
	for _, s := range stmts {
		if _, err := c.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("create %s %s: %w", o.Kind, strings.TrimPrefix(o.DB+"."+o.Name, "."), err)
		}
	}
	return nil
}

// loadData loads every data file of full with LOAD DATA LOCAL INFILE, in
// parallel, largest first, each table into the database into[t.DB].
func loadData(ctx context.Context, db *sql.DB, o RestoreOptions, full *Manifest, into map[string]string) error {
	type file struct {
		table *TableInfo
		info  FileInfo
	}
	sizes := map[string]FileInfo{}
	for _, f := range full.Files {
		sizes[f.Path] = f
	}
	var files []file
	for i := range full.Tables {
		for _, p := range full.Tables[i].Files {
			files = append(files, file{&full.Tables[i], sizes[p]})
		}
	}
	sort.SliceStable(files, func(i, j int) bool { return files[i].info.Size > files[j].info.Size })
	conns := make([]*sql.Conn, 0, o.Parallel)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < o.Parallel; i++ {
		c, err := db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("connect to target: %w", err)
		}
		conns = append(conns, c)
		for _, q := range []string{
			"SET SESSION foreign_key_checks = 0",
			"SET SESSION unique_checks = 0",
			"SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'",
			"SET SESSION max_statement_time = 0",
		} {
			if _, err := c.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("prepare loader session (%s): %w", q, err)
			}
		}
	}
	tasks := make([]task, len(files))
	for i := range files {
		tasks[i] = task{seq: i}
	}
	return runWorkers(ctx, conns, tasks, func(ctx context.Context, w *worker, tk task) error {
		f := files[tk.seq]
		n, err := loadFile(ctx, w.conn, o.Repo, full, f.table, into[f.table.DB], f.info)
		if err != nil {
			return err
		}
		o.Progress.Rows.Add(n)
		o.Progress.Bytes.Add(f.info.Size)
		return nil
	})
}

// loadFile loads one data file, again if the server chose it as a deadlock
// victim (two loaders writing the same table): the failed LOAD DATA was
// rolled back as a whole.
func loadFile(ctx context.Context, c *sql.Conn, repo Repository, m *Manifest, t *TableInfo, into string, fi FileInfo) (int64, error) {
	for attempt := 1; ; attempt++ {
		n, err := loadFileOnce(ctx, c, repo, m, t, into, fi)
		var me *mysql.MySQLError
		if attempt < 5 && errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205) {
			continue
		}
		return n, err
	}
}

func loadFileOnce(ctx context.Context, c *sql.Conn, repo Repository, m *Manifest, t *TableInfo, into string, fi FileInfo) (int64, error) {
	r, check, done, err := openVerified(repo, m, fi.Path)
	if err != nil {
		return 0, err
	}
	defer done()
	dec, free, err := newDecoder(fi.Path, r)
	if err != nil {
		return 0, err
	}
	defer free()
	name := "haconf-" + strconv.FormatInt(readerSeq.Add(1), 10)
	mysql.RegisterReaderHandler(name, func() io.Reader { return dec })
	defer mysql.DeregisterReaderHandler(name)
	cols := make([]string, len(t.Columns))
	for i, col := range t.Columns {
		cols[i] = quoteIdent(col)
	}
	q := "LOAD DATA LOCAL INFILE 'Reader::" + name + "' INTO TABLE " + quoteIdent(into) + "." + quoteIdent(t.Name) +
		" CHARACTER SET binary FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (" + strings.Join(cols, ", ") + ")"
	res, err := c.ExecContext(ctx, q)
	if err != nil {
		if cerr := check(); cerr != nil {
			return 0, cerr
		}
		var me *mysql.MySQLError
		if errors.As(err, &me) && (me.Number == 1148 || me.Number == 3948) {
			return 0, fmt.Errorf("load %s: the target refuses LOAD DATA LOCAL INFILE: set local_infile = ON there: %w", fi.Path, err)
		}
		return 0, fmt.Errorf("load %s into %s.%s: %w", fi.Path, t.DB, t.Name, err)
	}
	if err := check(); err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("load %s: %w", fi.Path, err)
	}
	// LOAD DATA LOCAL turns bad values into warnings and stores something
	// else (NULL, a truncated string): any warning is data loss.
	if w, err := loadWarnings(ctx, c); err != nil {
		return 0, fmt.Errorf("load %s: %w", fi.Path, err)
	} else if w != "" {
		return 0, fmt.Errorf("load %s into %s.%s: the server changed values while loading: %s", fi.Path, t.DB, t.Name, w)
	}
	if n != fi.Rows {
		return n, fmt.Errorf("load %s into %s.%s: the server took %d rows, the backup holds %d (duplicate keys or conversion errors)", fi.Path, t.DB, t.Name, n, fi.Rows)
	}
	return n, nil
}

// loadWarnings returns the first warnings of the last statement on c, or "".
func loadWarnings(ctx context.Context, c *sql.Conn) (string, error) {
	var n int
	if err := c.QueryRowContext(ctx, "SELECT @@warning_count").Scan(&n); err != nil {
		return "", err
	}
	if n == 0 {
		return "", nil
	}
	rows, err := c.QueryContext(ctx, "SHOW WARNINGS LIMIT 3")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var level, msg string
		var code int
		if err := rows.Scan(&level, &code, &msg); err != nil {
			return "", err
		}
		msgs = append(msgs, fmt.Sprintf("%s %d: %s", level, code, msg))
	}
	return fmt.Sprintf("%d warning(s): %s", n, strings.Join(msgs, "; ")), rows.Err()
}

// replayDifferential replays the binary logs of diff from full's position:
// mariadb-binlog decodes them into SQL, which runs on c.
func replayDifferential(ctx context.Context, c *sql.Conn, o RestoreOptions, full, diff *Manifest) (int, error) {
	tmp, err := os.MkdirTemp("", "haconf-binlog-")
	if err != nil {
		return 0, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	var paths []string
	for _, rel := range diff.BinlogFiles {
		r, check, done, err := openVerified(o.Repo, diff, rel)
		if err != nil {
			return 0, err
		}
		dec, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			done()
			return 0, fmt.Errorf("%s: %w", rel, err)
		}
		out := filepath.Join(tmp, strings.TrimSuffix(filepath.Base(rel), ".zst"))
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, err = io.Copy(f, dec)
			err = errors.Join(err, f.Close())
		}
		dec.Close()
		if err == nil {
			err = check()
		}
		done()
		if err != nil {
			return 0, fmt.Errorf("unpack %s: %w", rel, err)
		}
		paths = append(paths, out)
	}
	args := append([]string{"--start-position=" + strconv.FormatUint(full.Binlog.Position, 10)}, paths...)
	out, err := o.Runner.Run(ctx, "mariadb-binlog", args...)
	if err != nil {
		return 0, fmt.Errorf("decode binary logs: %w", err)
	}
	stmts, err := SplitBinlogSQL(out)
	if err != nil {
		return 0, err
	}
	for i, s := range stmts {
		if _, err := c.ExecContext(ctx, s); err != nil {
			return i, fmt.Errorf("replay binary log statement %d of %d (%.120q): %w", i+1, len(stmts), s, err)
		}
	}
	return len(stmts), nil
}
