package backup

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Options configure a backup run.
type Options struct {
	// DB is the server to back up (see ResolveDSN).
	DB   *mysql.Config
	Repo Repository
	// Parallel is the number of connections reading at once (default 2).
	Parallel int
	// Databases limits the backup to these databases (default: all but
	// the system schemas; name mysql here to include it).
	Databases []string
	// Users also saves accounts and their grants.
	Users bool
	// ConfigFiles are files and directories archived with the backup
	// (haconf.yaml, the CIB, rendered files, RabbitMQ definitions).
	ConfigFiles []string
	// ChunkRows is the target number of rows per data file (default 200000).
	ChunkRows int64
	// Compression of data files: s2 (default, fastest) or zstd (smaller).
	Compression string
	// Retention is how many fulls to keep after a successful full (0: keep all).
	Retention int
	// Checksums makes a differential record the checksum of every table at
	// its snapshot (a full table scan on the server, but no rows are sent).
	// Fulls always record them. The drill compares against these values.
	Checksums bool
	Logger    *slog.Logger
	// Progress, when set, is updated as the run goes.
	Progress *Progress
	// Now is the clock (default time.Now).
	Now func() time.Time

	afterFile func(rel string) error // test hook: runs after each data file
	// freeSpace reports a directory's free bytes (default FreeBytes).
	freeSpace func(dir string) (int64, error)
}

// Progress counts work done; read it from another goroutine.
type Progress struct {
	Phase     atomic.Value // string
	Rows      atomic.Int64
	RowsTotal atomic.Int64
	Bytes     atomic.Int64
}

func (p *Progress) setPhase(s string) {
	if p != nil {
		p.Phase.Store(s)
	}
}

func (o *Options) defaults() {
	if o.Parallel < 1 {
		o.Parallel = 2
	}
	if o.ChunkRows == 0 {
		o.ChunkRows = 200000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Progress == nil {
		o.Progress = &Progress{}
	}
}

// Run takes a backup of kind under the repository lock, then applies
// retention after a full. An interrupted or failed run leaves no backup.
func Run(ctx context.Context, kind Kind, o Options) (*Manifest, error) {
	o.defaults()
	unlock, err := o.Repo.Lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := o.Repo.removeStale(); err != nil {
		return nil, err
	}
	db, err := open(ctx, o.DB, o.Parallel)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var m *Manifest
	switch kind {
	case Full:
		m, err = runFull(ctx, db, o)
	case Differential:
		m, err = runDifferential(ctx, db, o)
	default:
		return nil, fmt.Errorf("unknown backup type %q (full or differential)", kind)
	}
	if err != nil {
		return nil, err
	}
	o.Logger.Info("backup complete", "id", m.ID, "type", m.Type, "tables", len(m.Tables), "bytes", m.Size(), "duration", m.Duration().Round(time.Millisecond))
	if kind == Full && o.Retention > 0 {
		removed, err := o.Repo.Prune(o.Retention)
		for _, id := range removed {
			o.Logger.Info("backup removed by retention", "id", id)
		}
		if err != nil {
			return m, fmt.Errorf("retention: %w", err)
		}
	}
	return m, nil
}

// task is one unit of work for a snapshot worker.
type task struct {
	table *tableMeta
	info  *TableInfo
	chunk Chunk
	seq   int
	sum   bool // compute the table checksum instead of dumping a chunk
	size  int64
}

func runFull(ctx context.Context, db *sql.DB, o Options) (*Manifest, error) {
	started := o.Now().UTC()
	srv, logBin, err := serverInfo(ctx, db)
	if err != nil {
		return nil, err
	}
	if logBin {
		// Start a fresh binary log so that the next differential carries
		// only events after this full, not the rest of a large file.
		if _, err := db.ExecContext(ctx, "FLUSH BINARY LOGS"); err != nil {
			o.Logger.Warn("cannot rotate the binary log; differentials will carry the current file from its start", "err", err)
		}
	}
	dbs, err := listDatabases(ctx, db, o.Databases)
	if err != nil {
		return nil, err
	}
	o.Progress.setPhase("snapshot")
	snap, err := openSnapshot(ctx, db, o.Parallel, logBin)
	if err != nil {
		return nil, err
	}
	defer snap.close()
	if snap.binlog != nil {
		// What a differential proves continuity by (sameHistory).
		gtid, ok, err := binlogGTIDPos(ctx, db, snap.binlog)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("the server has no GTID state at its own snapshot position %s", snap.binlog)
		}
		snap.binlog.GTID = gtid
	}
	tables, err := listTables(ctx, db, dbs)
	if err != nil {
		return nil, err
	}
	var dataBytes int64
	for _, t := range tables {
		dataBytes += t.DataLength
	}
	if err := o.checkSpace(o.Repo.Dir, dataBytes, fmt.Sprintf("a full of %d databases (their data length)", len(dbs))); err != nil {
		return nil, err
	}
	o.Progress.setPhase("schema")
	objs, err := captureSchema(ctx, db, dbs, tables, o.Users)
	if err != nil {
		return nil, err
	}
	tx, err := o.Repo.begin(newID(Full, started))
	if err != nil {
		return nil, err
	}
	defer tx.abort()
	m := &Manifest{Format: FormatVersion, ID: tx.id, Type: Full, Started: started, Server: srv, Binlog: snap.binlog, Databases: dbs, Users: o.Users}
	m.Tables = make([]TableInfo, len(tables))
	var tasks []task
	var total int64
	for i, t := range tables {
		m.Tables[i] = TableInfo{DB: t.DB, Name: t.Name, Columns: t.Columns}
		total += t.EstRows
		chunks := []Chunk{{}}
		if t.IntPK && t.EstRows > o.ChunkRows {
			var lo, hi sql.NullInt64
			q := "SELECT MIN(" + quoteIdent(t.PK[0]) + "), MAX(" + quoteIdent(t.PK[0]) + ") FROM " + t.qualified()
			if err := snap.conns[0].QueryRowContext(ctx, q).Scan(&lo, &hi); err != nil {
				return nil, fmt.Errorf("key range of %s.%s: %w", t.DB, t.Name, err)
			}
			if lo.Valid {
				chunks = PlanChunks(lo.Int64, hi.Int64, t.EstRows, o.ChunkRows)
			}
		}
		for j, c := range chunks {
			tasks = append(tasks, task{table: t, info: &m.Tables[i], chunk: c, seq: j, size: t.DataLength / int64(len(chunks))})
		}
	}
	o.Progress.RowsTotal.Store(total)
	// Largest work first, so that one big table does not finish alone.
	sort.SliceStable(tasks, func(i, j int) bool { return tasks[i].size > tasks[j].size })
	o.Progress.setPhase("data")
	var mu sync.Mutex
	files := map[*TableInfo][]FileInfo{}
	sums := map[*TableInfo]*RowSum{}
	for i := range m.Tables {
		sums[&m.Tables[i]] = &RowSum{}
	}
	err = runWorkers(ctx, snap.conns, tasks, func(ctx context.Context, w *worker, tk task) error {
		if w.enc == nil {
			enc, ext, err := newEncoder(o.Compression)
			if err != nil {
				return err
			}
			w.enc, w.ext = enc, ext
		}
		rel := relPath("data", tk.table.DB, fmt.Sprintf("%s.%05d.tsv%s", escapeName(tk.table.Name), tk.seq, w.ext))
		var sum RowSum
		fi, err := w.dumpChunk(ctx, tx, rel, tk.table, tk.chunk, &sum, o.Progress)
		if err != nil {
			return fmt.Errorf("dump %s.%s: %w", tk.table.DB, tk.table.Name, err)
		}
		mu.Lock()
		files[tk.info] = append(files[tk.info], fi)
		sums[tk.info].Merge(&sum)
		mu.Unlock()
		if o.afterFile != nil {
			return o.afterFile(rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range m.Tables {
		fs := files[&m.Tables[i]]
		sort.Slice(fs, func(a, b int) bool { return fs[a].Path < fs[b].Path })
		for _, f := range fs {
			m.Tables[i].Files = append(m.Tables[i].Files, f.Path)
			m.Tables[i].Rows += f.Rows
		}
		m.Tables[i].Checksum = sums[&m.Tables[i]].String()
	}
	snap.close()
	schema, err := json.MarshalIndent(objs, "", " ")
	if err != nil {
		return nil, fmt.Errorf("encode schema: %w", err)
	}
	if err := tx.writeFile("schema.json", schema); err != nil {
		return nil, err
	}
	if m.ConfigFiles, err = archiveConfig(tx, o.ConfigFiles, o.Logger); err != nil {
		return nil, err
	}
	o.Progress.setPhase("commit")
	m.Finished = o.Now().UTC()
	if err := tx.commit(m); err != nil {
		return nil, err
	}
	return m, nil
}

// tableChecksum runs ChecksumQuery on c.
func tableChecksum(ctx context.Context, c queryer, t *tableMeta) (int64, string, error) {
	var rows int64
	var sum string
	if err := c.QueryRowContext(ctx, ChecksumQuery(t.qualified(), t.Columns, t.Types)).Scan(&rows, &sum); err != nil {
		return 0, "", err
	}
	return rows, sum, nil
}

// worker is one snapshot connection with its reusable buffers.
type worker struct {
	conn *sql.Conn
	enc  encoder // created on first use
	ext  string
	buf  []byte
}

// runWorkers runs tasks on one goroutine per connection; the first error
// cancels the rest.
func runWorkers(ctx context.Context, conns []*sql.Conn, tasks []task, do func(context.Context, *worker, task) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ch := make(chan task)
	var wg sync.WaitGroup
	var first atomic.Pointer[error]
	for _, c := range conns {
		w := &worker{conn: c, buf: make([]byte, 0, 512<<10)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tk := range ch {
				if ctx.Err() != nil {
					continue
				}
				if err := do(ctx, w, tk); err != nil {
					first.CompareAndSwap(nil, &err)
					cancel(err)
				}
			}
		}()
	}
	for _, tk := range tasks {
		select {
		case ch <- tk:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(ch)
	wg.Wait()
	if e := first.Load(); e != nil {
		return *e
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// dumpChunk writes the rows of one chunk to rel, compressed.
func (w *worker) dumpChunk(ctx context.Context, tx *txn, rel string, t *tableMeta, c Chunk, sum *RowSum, p *Progress) (FileInfo, error) {
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = ColumnExpr(c, t.Types[i])
	}
	q := "SELECT " + strings.Join(cols, ", ") + " FROM " + t.qualified()
	if len(t.PK) == 1 {
		if where := c.Where(t.PK[0]); where != "" {
			q += " WHERE " + where
		}
	}
	f, err := tx.create(rel)
	if err != nil {
		return FileInfo{}, err
	}
	fail := func(err error) (FileInfo, error) {
		f.f.Close()
		return FileInfo{}, err
	}
	w.enc.Reset(f)
	rows, err := w.conn.QueryContext(ctx, q)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	row := make([][]byte, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	buf := w.buf[:0]
	var n, reported, raw int64
	flush := func() error {
		raw += int64(len(buf))
		_, err := w.enc.Write(buf)
		buf = buf[:0]
		return err
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fail(err)
		}
		for i, v := range vals {
			if v == nil {
				row[i] = nil
			} else {
				if len(v) == 0 {
					row[i] = []byte{}
				} else {
					row[i] = v
				}
			}
		}
		buf = EncodeRow(buf, row)
		sum.Add(row)
		n++
		if len(buf) >= 256<<10 {
			if err := flush(); err != nil {
				return fail(err)
			}
			p.Rows.Add(n - reported)
			reported = n
		}
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	if err := flush(); err != nil {
		return fail(err)
	}
	if err := w.enc.Close(); err != nil {
		return fail(err)
	}
	w.buf = buf
	p.Rows.Add(n - reported)
	f.Rows, f.Raw = n, raw
	if err := f.Close(); err != nil {
		return FileInfo{}, err
	}
	p.Bytes.Add(f.n)
	return FileInfo{Path: rel, Size: f.n, Rows: n}, nil
}

// Preview is what a run would back up, found without writing anything.
type Preview struct {
	Type      Kind     `json:"type"`
	Server    Server   `json:"server"`
	LogBin    bool     `json:"log_bin"`
	Databases []string `json:"databases"`
	Tables    int      `json:"tables"`
	EstRows   int64    `json:"estimated_rows"`
	EstBytes  int64    `json:"estimated_bytes"`
	Base      string   `json:"base,omitempty"`
	Repo      string   `json:"repository"`
	Existing  int      `json:"existing_backups"`
}

// Plan connects to the server and reports what Run would back up, writing
// nothing (the --dry-run of `haconf backup run`).
func Plan(ctx context.Context, kind Kind, o Options) (*Preview, error) {
	o.defaults()
	db, err := open(ctx, o.DB, 1)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	p := &Preview{Type: kind, Repo: o.Repo.Dir}
	if p.Server, p.LogBin, err = serverInfo(ctx, db); err != nil {
		return nil, err
	}
	if p.Databases, err = listDatabases(ctx, db, o.Databases); err != nil {
		return nil, err
	}
	tables, err := listTables(ctx, db, p.Databases)
	if err != nil {
		return nil, err
	}
	p.Tables = len(tables)
	for _, t := range tables {
		p.EstRows += t.EstRows
		p.EstBytes += t.DataLength
	}
	all, err := o.Repo.List()
	if err != nil {
		return nil, err
	}
	p.Existing = len(all)
	if kind == Differential {
		if !p.LogBin {
			return p, fmt.Errorf("%w: enable log_bin (mysql.binary_log: true) or take fulls only", ErrNoBinlog)
		}
		base, err := o.Repo.Latest(Full)
		if err != nil {
			return p, fmt.Errorf("%w: a differential needs a full first: %w", ErrChainBroken, err)
		}
		p.Base = base.ID
		if base.Binlog == nil {
			return p, fmt.Errorf("%w: full %s was taken while log_bin was off; take a new full", ErrChainBroken, base.ID)
		}
		if err := sameHistory(ctx, db, p.Server, base); err != nil {
			return p, err
		}
	}
	return p, nil
}
