package backup

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Errors of a differential.
var (
	// ErrNoBinlog means the server runs without log_bin, so no
	// differential can be taken (take fulls only, or enable
	// mysql.binary_log).
	ErrNoBinlog = errors.New("the server's binary log is off")
	// ErrBinlogPurged means binary logs needed since the full are gone.
	ErrBinlogPurged = errors.New("binary logs since the full were purged")
	// ErrOtherServer means the full was taken from a different server.
	ErrOtherServer = errors.New("the full backup was taken from another server")
)

func runDifferential(ctx context.Context, db *sql.DB, o Options) (_ *Manifest, err error) {
	started := o.Now().UTC()
	base, err := o.Repo.Latest(Full)
	if err != nil {
		return nil, fmt.Errorf("a differential needs a full first: %w", err)
	}
	srv, logBin, err := serverInfo(ctx, db)
	if err != nil {
		return nil, err
	}
	if !logBin {
		return nil, fmt.Errorf("%w: enable log_bin (mysql.binary_log: true) or take fulls only", ErrNoBinlog)
	}
	if base.Binlog == nil {
		return nil, fmt.Errorf("%w: full %s was taken while log_bin was off; take a new full", ErrNoBinlog, base.ID)
	}
	if srv.Hostname != base.Server.Hostname || srv.ServerID != base.Server.ServerID || srv.LogBinBasename != base.Server.LogBinBasename {
		return nil, fmt.Errorf("%w (full %s: %s server_id %d, now: %s server_id %d); take a new full",
			ErrOtherServer, base.ID, base.Server.Hostname, base.Server.ServerID, srv.Hostname, srv.ServerID)
	}
	workers := 1
	if o.Checksums {
		workers = o.Parallel
	}
	o.Progress.setPhase("snapshot")
	snap, err := openSnapshot(ctx, db, workers, true)
	if err != nil {
		return nil, err
	}
	defer snap.close()
	end := snap.binlog
	dir := filepath.Dir(srv.LogBinBasename)
	index, err := os.ReadFile(srv.LogBinBasename + ".index")
	if err != nil {
		return nil, fmt.Errorf("a differential reads the binary logs from disk, so it must run on the database host: %w", err)
	}
	names, err := SelectBinlogs(ParseBinlogIndex(index), base.Binlog.File, end.File)
	if err != nil {
		return nil, err
	}
	id := newID(Differential, started)
	tx, err := o.Repo.begin(id)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			tx.abort()
		}
	}()
	m := &Manifest{Format: FormatVersion, ID: id, Type: Differential, Base: base.ID, Started: started, Server: srv, Binlog: end}
	o.Progress.setPhase("binlog")
	for i, name := range names {
		limit := int64(-1)
		if i == len(names)-1 {
			limit = int64(end.Position)
		}
		rel := "binlog/" + escapeName(name) + ".zst"
		if err := copyCompressed(tx, rel, filepath.Join(dir, name), limit, o.Progress); err != nil {
			return nil, err
		}
		m.BinlogFiles = append(m.BinlogFiles, rel)
	}
	dbs, err := listDatabases(ctx, db, o.Databases)
	if err != nil {
		return nil, err
	}
	m.Databases = dbs
	tables, err := listTables(ctx, db, dbs)
	if err != nil {
		return nil, err
	}
	m.Tables = make([]TableInfo, len(tables))
	var tasks []task
	for i, t := range tables {
		m.Tables[i] = TableInfo{DB: t.DB, Name: t.Name, Columns: t.Columns, Rows: -1}
		tasks = append(tasks, task{table: t, info: &m.Tables[i], sum: true, size: t.DataLength})
	}
	if o.Checksums {
		o.Progress.setPhase("checksums")
		err = runWorkers(ctx, snap.conns, tasks, func(ctx context.Context, w *worker, tk task) error {
			rows, sum, err := tableChecksum(ctx, w.conn, tk.table)
			if err != nil {
				return fmt.Errorf("checksum %s.%s: %w", tk.table.DB, tk.table.Name, err)
			}
			tk.info.Rows, tk.info.Checksum = rows, sum
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	snap.close()
	if m.ConfigFiles, err = archiveConfig(tx, o.ConfigFiles, o.Logger); err != nil {
		return nil, err
	}
	m.Finished = o.Now().UTC()
	if err := tx.commit(m); err != nil {
		return nil, err
	}
	return m, nil
}

// copyCompressed stores the first limit bytes (all if limit < 0) of src.
func copyCompressed(tx *txn, rel, src string, limit int64, p *Progress) error {
	in, err := os.Open(src)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %s", ErrBinlogPurged, src)
		}
		return fmt.Errorf("read binary log: %w", err)
	}
	defer in.Close()
	var r io.Reader = in
	if limit >= 0 {
		r = io.LimitReader(in, limit)
	}
	f, err := tx.create(rel)
	if err != nil {
		return err
	}
	enc, err := zstd.NewWriter(f, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		f.f.Close()
		return fmt.Errorf("zstd: %w", err)
	}
	n, err := io.Copy(enc, r)
	if err == nil && limit >= 0 && n != limit {
		err = fmt.Errorf("binary log %s is shorter (%d bytes) than the snapshot position %d", src, n, limit)
	}
	if err == nil {
		err = enc.Close()
	}
	if err != nil {
		f.f.Close()
		return fmt.Errorf("copy binary log %s: %w", src, err)
	}
	p.Bytes.Add(n)
	return f.Close()
}

// ParseBinlogIndex returns the file names listed in a binary log index
// file (one path per line).
func ParseBinlogIndex(data []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, filepath.Base(l))
		}
	}
	return out
}

// SelectBinlogs returns the logs from first to last inclusive, in index
// order. first missing from the index means it was purged.
func SelectBinlogs(index []string, first, last string) ([]string, error) {
	start := -1
	for i, n := range index {
		if n == first {
			start = i
			break
		}
	}
	if start < 0 {
		return nil, fmt.Errorf("%w: %s is no longer in the binary log index; take a new full", ErrBinlogPurged, first)
	}
	for i := start; i < len(index); i++ {
		if index[i] == last {
			return append([]string(nil), index[start:i+1]...), nil
		}
	}
	return nil, fmt.Errorf("binary log %s (the snapshot's) is not in the index after %s", last, first)
}

// SplitBinlogSQL splits mariadb-binlog output into statements, following
// its DELIMITER changes and dropping comment lines between statements. A
// client-side charset switch (/*!\C cs */) becomes SET NAMES cs.
func SplitBinlogSQL(out []byte) ([]string, error) {
	delim := ";"
	var stmts []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 {
			if trimmed == "" || strings.HasPrefix(trimmed, "#") {
				continue
			}
			if len(trimmed) > 10 && strings.EqualFold(trimmed[:10], "DELIMITER ") {
				delim = strings.TrimSpace(trimmed[10:])
				continue
			}
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if !strings.HasSuffix(trimmed, delim) {
			continue
		}
		s := strings.TrimSpace(cur.String())
		s = strings.TrimSpace(strings.TrimSuffix(s, delim))
		cur.Reset()
		if s == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(s, `/*!\C `); ok {
			cs := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "*/"))
			s = "SET NAMES " + cs
		}
		stmts = append(stmts, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mariadb-binlog output: %w", err)
	}
	if strings.TrimSpace(cur.String()) != "" {
		return nil, fmt.Errorf("mariadb-binlog output ends inside a statement: %.200q", cur.String())
	}
	return stmts, nil
}
