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
	// Force drops databases of the backup that already exist on the target.
	Force bool
	// DryRun checks the chain and the target and says what would happen,
	// changing nothing.
	DryRun bool
	// Runner runs mariadb-binlog to replay a differential.
	Runner   Runner
	Logger   *slog.Logger
	Progress *Progress
	// CheckFull, when set, runs once the full is loaded and before the
	// differential is replayed; an error stops the restore.
	CheckFull func(ctx context.Context, full *Manifest) error
}

// RestoreResult says what a restore did (or, dry, would do).
type RestoreResult struct {
	Chain     []string      `json:"chain"`
	Databases []string      `json:"databases"`
	Existing  []string      `json:"existing,omitempty"` // backup databases already on the target
	Tables    int           `json:"tables"`
	Rows      int64         `json:"rows"`
	Bytes     int64         `json:"bytes"`
	Events    int           `json:"binlog_statements,omitempty"`
	Duration  time.Duration `json:"duration_ns"`
	DryRun    bool          `json:"dry_run,omitempty"`
	// Expected are the tables of the last backup in the chain with the
	// row counts and checksums recorded at its snapshot.
	Expected []TableInfo `json:"-"`
}

var readerSeq atomic.Int64

// Restore loads a backup chain into an empty server or into databases that
// do not exist yet. Every file's SHA-256 is checked as it is read, and every
// data file's row count is checked against what the server loaded, so a
// damaged file or a silently short load fails the restore.
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
	var objs []Object
	if err := readJSON(o.Repo, full, "schema.json", &objs); err != nil {
		return nil, err
	}
	db, err := open(ctx, o.Target, o.Parallel)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	existing, err := listDatabases(ctx, db, nil)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, d := range full.Databases {
		want[d] = true
	}
	for _, d := range existing {
		if want[d] {
			res.Existing = append(res.Existing, d)
		}
	}
	if len(res.Existing) > 0 && !o.Force {
		return res, fmt.Errorf("%w: it already has database(s) %s; restore into an empty server, or drop them (--force)", ErrTargetNotEmpty, strings.Join(res.Existing, ", "))
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
	for _, d := range res.Existing {
		o.Logger.Warn("dropping database on the restore target", "db", d)
		if _, err := conn.ExecContext(ctx, "DROP DATABASE "+quoteIdent(d)); err != nil {
			return nil, fmt.Errorf("drop %s: %w", d, err)
		}
	}
	// Never recreate the account the restore runs as: its GRANT line
	// carries the source's password hash and would lock us out.
	var self string
	if err := conn.QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&self); err != nil {
		return nil, fmt.Errorf("read current user: %w", err)
	}
	kept := objs[:0:0]
	for _, ob := range objs {
		if ob.Kind == "user" && ob.Name == self {
			o.Logger.Warn("not restoring the account the restore connects as", "user", self)
			continue
		}
		kept = append(kept, ob)
	}
	objs = kept
	o.Progress.setPhase("schema")
	if _, err := conn.ExecContext(ctx, "SET SESSION foreign_key_checks = 0"); err != nil {
		return nil, fmt.Errorf("prepare target session: %w", err)
	}
	if err := createObjects(ctx, conn, objs, "database", "user", "table"); err != nil {
		return nil, err
	}
	o.Progress.setPhase("data")
	o.Progress.RowsTotal.Store(res.Rows)
	if err := loadData(ctx, db, o, full); err != nil {
		return nil, err
	}
	o.Progress.setPhase("schema")
	if err := createObjects(ctx, conn, objs, "view", "procedure", "function", "trigger", "event"); err != nil {
		return nil, err
	}
	if o.CheckFull != nil {
		t0 := time.Now()
		if err := o.CheckFull(ctx, full); err != nil {
			return res, err
		}
		start = start.Add(time.Since(t0)) // the check is not restore time
	}
	if len(chain) > 1 {
		o.Progress.setPhase("binlog")
		n, err := replayDifferential(ctx, conn, o, full, last)
		if err != nil {
			return nil, err
		}
		res.Events = n
	}
	res.Duration = time.Since(start)
	o.Logger.Info("restore complete", "chain", strings.Join(res.Chain, ","), "tables", res.Tables, "rows", res.Rows, "duration", res.Duration.Round(time.Millisecond))
	return res, nil
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
// parallel, largest first.
func loadData(ctx context.Context, db *sql.DB, o RestoreOptions, full *Manifest) error {
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
		n, err := loadFile(ctx, w.conn, o.Repo, full, f.table, f.info)
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
func loadFile(ctx context.Context, c *sql.Conn, repo Repository, m *Manifest, t *TableInfo, fi FileInfo) (int64, error) {
	for attempt := 1; ; attempt++ {
		n, err := loadFileOnce(ctx, c, repo, m, t, fi)
		var me *mysql.MySQLError
		if attempt < 5 && errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205) {
			continue
		}
		return n, err
	}
}

func loadFileOnce(ctx context.Context, c *sql.Conn, repo Repository, m *Manifest, t *TableInfo, fi FileInfo) (int64, error) {
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
	q := "LOAD DATA LOCAL INFILE 'Reader::" + name + "' INTO TABLE " + quoteIdent(t.DB) + "." + quoteIdent(t.Name) +
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
