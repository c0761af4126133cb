package backup

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// DrillOptions configure a restore drill.
type DrillOptions struct {
	Repo     Repository
	ID       string // default: the newest backup
	Parallel int
	Runner   Runner
	Logger   *slog.Logger
	Progress *Progress
	// BufferPool sizes the scratch server (default 256M).
	BufferPool string
}

// DrillReport is the verdict of a drill.
type DrillReport struct {
	Pass        bool          `json:"pass"`
	Chain       []string      `json:"chain"`
	Tables      int           `json:"tables"`
	Rows        int64         `json:"rows"`
	RestoreTime time.Duration `json:"restore_time_ns"`
	Mismatches  []Mismatch    `json:"mismatches,omitempty"`
	Error       string        `json:"error,omitempty"`
	// Checked are the backups whose recorded checksums every table was
	// compared with: always the full (before the differential is
	// replayed), and the differential when it recorded checksums.
	Checked []string `json:"checked"`
	// Unchecked says what was only replayed, not compared.
	Unchecked string `json:"unchecked,omitempty"`
}

// Mismatch is a table whose restored content differs from the snapshot.
type Mismatch struct {
	DB    string `json:"db"`
	Table string `json:"table"`
	What  string `json:"what"`
}

func (m Mismatch) String() string { return m.DB + "." + m.Table + ": " + m.What }

// Drill restores a backup chain into a scratch MariaDB it starts itself,
// then compares every table's row count and checksum with the values
// recorded inside the source snapshot. The report says pass or fail; err is
// for drills that could not run at all (a failed restore is a failed drill,
// reported with Pass false and Error set).
func Drill(ctx context.Context, o DrillOptions) (*DrillReport, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	srv, err := StartScratch(ctx, ScratchOptions{Runner: o.Runner, Logger: o.Logger, BufferPool: o.BufferPool})
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	rep := &DrillReport{}
	compare := func(ctx context.Context, m *Manifest, want []TableInfo) error {
		got, err := Checksums(ctx, srv.Config, want, o.Parallel)
		if err != nil {
			return err
		}
		rows := int64(0)
		for _, t := range got {
			rows += t.Rows
		}
		rep.Rows = rows
		for _, mm := range CompareTables(want, got) {
			mm.What += " (at " + m.ID + ")"
			rep.Mismatches = append(rep.Mismatches, mm)
		}
		rep.Checked = append(rep.Checked, m.ID)
		return nil
	}
	res, err := Restore(ctx, RestoreOptions{Target: srv.Config, Repo: o.Repo, ID: o.ID, Parallel: o.Parallel, Runner: o.Runner, Logger: o.Logger, Progress: o.Progress,
		CheckFull: func(ctx context.Context, full *Manifest) error { return compare(ctx, full, full.Tables) }})
	if res != nil {
		rep.Chain, rep.Tables, rep.RestoreTime = res.Chain, len(res.Expected), res.Duration
	}
	if err != nil {
		rep.Error = err.Error()
		return rep, nil
	}
	if len(res.Chain) > 1 {
		diff, err := o.Repo.Load(res.Chain[len(res.Chain)-1])
		if err != nil {
			return nil, err
		}
		recorded := false
		for _, t := range diff.Tables {
			recorded = recorded || t.Rows >= 0
		}
		if err := compare(ctx, diff, diff.Tables); err != nil {
			rep.Error = err.Error()
			return rep, nil
		}
		if !recorded {
			rep.Checked = rep.Checked[:len(rep.Checked)-1]
			rep.Unchecked = fmt.Sprintf("differential %s recorded no checksums (backup.differential_checksums is off): its %d binlog statements replayed without error and its %d tables exist, contents not compared", diff.ID, res.Events, len(diff.Tables))
		}
	}
	rep.Pass = len(rep.Mismatches) == 0
	o.Logger.Info("restore drill", "pass", rep.Pass, "chain", rep.Chain, "checked", rep.Checked, "tables", rep.Tables, "restore_time", rep.RestoreTime.Round(time.Millisecond))
	return rep, nil
}

// Checksums computes the row count and checksum of every table in like
// (by database and name) on the server cfg; a missing table has Rows -1.
func Checksums(ctx context.Context, cfg *mysql.Config, like []TableInfo, parallel int) ([]TableInfo, error) {
	if parallel < 1 {
		parallel = 2
	}
	db, err := open(ctx, cfg, parallel)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	dbset := map[string]bool{}
	var dbs []string
	for _, t := range like {
		if !dbset[t.DB] {
			dbset[t.DB] = true
			dbs = append(dbs, t.DB)
		}
	}
	sort.Strings(dbs)
	tables, err := listTables(ctx, db, dbs)
	if err != nil {
		return nil, err
	}
	out := make([]TableInfo, len(tables))
	tasks := make([]task, len(tables))
	for i, t := range tables {
		out[i] = TableInfo{DB: t.DB, Name: t.Name, Columns: t.Columns}
		tasks[i] = task{table: t, info: &out[i]}
	}
	var conns []*sql.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < parallel; i++ {
		c, err := db.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
		conns = append(conns, c)
	}
	var mu sync.Mutex
	err = runWorkers(ctx, conns, tasks, func(ctx context.Context, w *worker, tk task) error {
		rows, sum, err := tableChecksum(ctx, w.conn, tk.table)
		if err != nil {
			return fmt.Errorf("checksum %s.%s: %w", tk.table.DB, tk.table.Name, err)
		}
		mu.Lock()
		tk.info.Rows, tk.info.Checksum = rows, sum
		mu.Unlock()
		return nil
	})
	return out, err
}

// CompareTables lists the differences between the tables recorded in a
// backup (want) and those found after a restore (got). A want entry with
// Rows < 0 has no recorded checksum and is only checked for presence.
func CompareTables(want, got []TableInfo) []Mismatch {
	key := func(t TableInfo) string { return t.DB + "\x00" + t.Name }
	g := map[string]TableInfo{}
	for _, t := range got {
		g[key(t)] = t
	}
	var out []Mismatch
	for _, w := range want {
		t, ok := g[key(w)]
		delete(g, key(w))
		switch {
		case !ok:
			out = append(out, Mismatch{w.DB, w.Name, "missing after restore"})
		case w.Rows < 0:
		case t.Rows != w.Rows:
			out = append(out, Mismatch{w.DB, w.Name, fmt.Sprintf("%d rows, snapshot had %d", t.Rows, w.Rows)})
		case t.Checksum != w.Checksum:
			out = append(out, Mismatch{w.DB, w.Name, fmt.Sprintf("checksum %s, snapshot had %s", t.Checksum, w.Checksum)})
		}
	}
	var extra []Mismatch
	for _, t := range g {
		extra = append(extra, Mismatch{t.DB, t.Name, "not in the backup"})
	}
	sort.Slice(extra, func(i, j int) bool { return extra[i].String() < extra[j].String() })
	return append(out, extra...)
}
