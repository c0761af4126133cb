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
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Errors of a differential. ErrBinlogPurged and ErrOtherServer wrap
// ErrChainBroken: the newest full cannot be continued and a new full is the
// remedy, which the scheduled differential job takes at once (Jobs).
var (
	// ErrNoBinlog means the server runs without log_bin, so no
	// differential can be taken (take fulls only, or enable
	// mysql.binary_log).
	ErrNoBinlog = errors.New("the server's binary log is off")
	// ErrChainBroken means the binary log since the newest full cannot be
	// read whole on this server: take a new full.
	ErrChainBroken = errors.New("the chain since the full is broken")
	// ErrBinlogPurged means binary logs needed since the full are gone.
	ErrBinlogPurged = fmt.Errorf("%w: binary logs since the full were purged", ErrChainBroken)
	// ErrOtherServer means the server's binary log is not the one the full
	// was taken from (another database, not the same one after a failover).
	ErrOtherServer = fmt.Errorf("%w: the full backup was taken from another server", ErrChainBroken)
)

func runDifferential(ctx context.Context, db *sql.DB, o Options) (*Manifest, error) {
	started := o.Now().UTC()
	base, err := o.Repo.Latest(Full)
	if err != nil {
		return nil, fmt.Errorf("%w: a differential needs a full first: %w", ErrChainBroken, err)
	}
	srv, logBin, err := serverInfo(ctx, db)
	if err != nil {
		return nil, err
	}
	if !logBin {
		return nil, fmt.Errorf("%w: enable log_bin (mysql.binary_log: true) or take fulls only", ErrNoBinlog)
	}
	if base.Binlog == nil {
		return nil, fmt.Errorf("%w: full %s was taken while log_bin was off; take a new full", ErrChainBroken, base.ID)
	}
	if err := sameHistory(ctx, db, srv, base); err != nil {
		return nil, err
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
	if err := checkSequence(names); err != nil {
		return nil, err
	}
	if err := o.checkSpace(o.Repo.Dir, binlogBytes(dir, names), "a differential (the binary logs since the full, before compression)"); err != nil {
		return nil, err
	}
	tx, err := o.Repo.begin(newID(Differential, started))
	if err != nil {
		return nil, err
	}
	defer tx.abort()
	m := &Manifest{Format: FormatVersion, ID: tx.id, Type: Differential, Base: base.ID, Started: started, Server: srv, Binlog: end}
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

// sameHistory checks that the server's binary log is the one the full base
// was taken from, by what moves with the data rather than the hostname
// (which changes at every failover): the binary log basename, and the GTID
// state at the full's position as this server computes it from its own
// log (BINLOG_GTID_POS) against the one the full recorded. A full recorded
// before GTIDs were written, or on a server that had never committed a
// transaction, has no GTID: server_id and gtid_domain_id must then match.
func sameHistory(ctx context.Context, q queryer, srv Server, base *Manifest) error {
	other := func(why string) error {
		return fmt.Errorf("%w (full %s from %s, now %s): %s; take a new full", ErrOtherServer, base.ID, base.Server.Hostname, srv.Hostname, why)
	}
	if b := filepath.Base(srv.LogBinBasename); !strings.HasPrefix(base.Binlog.File, b+".") {
		return other(fmt.Sprintf("the full's binary log %s is not one of this server's (%s.*)", base.Binlog.File, b))
	}
	gtid, ok, err := binlogGTIDPos(ctx, q, base.Binlog)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s is no longer in this server's binary log; take a new full", ErrBinlogPurged, base.Binlog)
	}
	if base.Binlog.GTID != "" || gtid != "" {
		if gtid != base.Binlog.GTID {
			return other(fmt.Sprintf("at %s this server's GTID state is %q, the full recorded %q", base.Binlog, gtid, base.Binlog.GTID))
		}
		return nil
	}
	if srv.ServerID != base.Server.ServerID || srv.GTIDDomainID != base.Server.GTIDDomainID {
		return other(fmt.Sprintf("no GTID to compare; server_id %d domain %d, the full's %d domain %d",
			srv.ServerID, srv.GTIDDomainID, base.Server.ServerID, base.Server.GTIDDomainID))
	}
	return nil
}

// checkSequence checks that the binary logs a differential reads follow
// each other (basename.000007, .000008, ...): a gap is a purged or lost
// file, and replaying across it would skip transactions.
func checkSequence(names []string) error {
	prev := int64(-1)
	for _, n := range names {
		i := strings.LastIndexByte(n, '.')
		seq, err := strconv.ParseInt(n[i+1:], 10, 64)
		if i < 0 || err != nil {
			return fmt.Errorf("binary log %s has no sequence number", n)
		}
		if prev >= 0 && seq != prev+1 {
			return fmt.Errorf("%w: the binary logs since the full jump from %d to %s; take a new full", ErrBinlogPurged, prev, n)
		}
		prev = seq
	}
	return nil
}

// binlogBytes is the size of the named binary logs in dir (those that
// cannot be read count 0: copying them reports the error).
func binlogBytes(dir string, names []string) int64 {
	var n int64
	for _, name := range names {
		if st, err := os.Stat(filepath.Join(dir, name)); err == nil {
			n += st.Size()
		}
	}
	return n
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
	f.Raw = n
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
