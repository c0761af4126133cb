// Command backup-bench compares haconf backup with mysqldump and the mysql
// client on a generated database of at least 1 GB, in one run:
//
//   - full: haconf backup (parallel, zstd) vs mysqldump --single-transaction
//     (time and size);
//   - differential after changing 1% of the rows vs the full (time, size);
//   - restore: haconf restore (parallel LOAD DATA) vs mysql < dump.sql.
//
// It starts its own MariaDB servers (mariadbd on 127.0.0.1, temporary
// datadirs) and removes them at the end. Run it with `make bench` or
//
//	go run ./bench/backup -out bench/results/backup.md
package main

import (
	"bufio"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/klauspost/compress/zstd"

	"github.com/haconf/haconf/backup"
	"github.com/haconf/haconf/internal/runner"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "backup-bench:", err)
		os.Exit(1)
	}
}

type options struct {
	dir      string
	out      string
	rows     int
	tables   int
	parallel int
	pool     string
	keep     bool
	format   string
}

func run() error {
	var o options
	flag.StringVar(&o.dir, "dir", "", "work directory (default: a new temp dir, removed at the end)")
	flag.StringVar(&o.out, "out", "", "write the markdown report here too")
	flag.IntVar(&o.rows, "rows", 2_000_000, "rows per table")
	flag.IntVar(&o.tables, "tables", 4, "tables")
	flag.IntVar(&o.parallel, "parallel", 2, "haconf connections")
	flag.StringVar(&o.pool, "buffer-pool", "3G", "innodb_buffer_pool_size of each server")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.StringVar(&o.format, "binlog-format", "ROW", "binlog_format of the session making the 1% change (ROW logs every row image: the larger differential)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx := context.Background()
	if o.dir == "" {
		d, err := os.MkdirTemp("", "haconf-bench-")
		if err != nil {
			return err
		}
		o.dir = d
	}
	if !o.keep {
		defer os.RemoveAll(o.dir)
	}
	b := &bench{o: o, log: log, run: runner.Exec{Timeout: 2 * time.Hour}}
	return b.all(ctx)
}

type bench struct {
	o       options
	log     *slog.Logger
	run     runner.Exec
	res     []row
	targets []row
}

// target records whether one of the targets is met.
func (b *bench) target(what string, ok bool, measured string) {
	v := "met"
	if !ok {
		v = "**missed**"
	}
	b.targets = append(b.targets, row{what, v, measured})
}

type row struct{ what, value, note string }

func (b *bench) add(what, value, note string) {
	b.log.Info("result", "what", what, "value", value, "note", note)
	b.res = append(b.res, row{what, value, note})
}

func (b *bench) server(ctx context.Context, name string, logBin bool) (*backup.ScratchServer, error) {
	dir := filepath.Join(b.o.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return backup.StartScratch(ctx, backup.ScratchOptions{
		Dir: dir, Runner: b.run, LogBin: logBin, BufferPool: b.o.pool, Logger: b.log,
		Args: []string{"--innodb-log-file-size=1G", "--max-connections=50"},
	})
}

// clientFile writes a 0600 option file for the mariadb/mysqldump clients so
// the password never appears in argv.
func (b *bench) clientFile(s *backup.ScratchServer) (string, error) {
	p := filepath.Join(b.o.dir, fmt.Sprintf("client-%d.cnf", s.Port))
	body := fmt.Sprintf("[client]\nuser=%s\npassword=%s\nhost=127.0.0.1\nport=%d\n", s.Config.User, s.Config.Passwd, s.Port)
	return p, os.WriteFile(p, []byte(body), 0o600)
}

func openDB(cfg *mysql.Config) (*sql.DB, error) {
	c := cfg.Clone()
	c.AllowAllFiles = false
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(conn), nil
}

func (b *bench) all(ctx context.Context) error {
	src, err := b.server(ctx, "source", true)
	if err != nil {
		return err
	}
	defer src.Stop()
	db, err := openDB(src.Config)
	if err != nil {
		return err
	}
	defer db.Close()
	t0 := time.Now()
	if err := b.generate(ctx, db); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	var dataBytes, rows int64
	if err := db.QueryRowContext(ctx, "SELECT SUM(DATA_LENGTH + INDEX_LENGTH), SUM(TABLE_ROWS) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'bench'").Scan(&dataBytes, &rows); err != nil {
		return err
	}
	b.add("generated database", fmt.Sprintf("%s on disk (InnoDB data+index), ~%d rows in %d tables", gib(dataBytes), rows, b.o.tables), fmt.Sprintf("generated in %s", since(t0)))
	// Warm the buffer pool so that neither tool pays for the first read.
	for i := 0; i < b.o.tables; i++ {
		if _, err := db.ExecContext(ctx, fmt.Sprintf("CHECKSUM TABLE bench.t%d", i)); err != nil {
			return err
		}
	}
	srcCnf, err := b.clientFile(src)
	if err != nil {
		return err
	}

	// 1. mysqldump vs haconf full, alternated, best of two each: the
	// machine is shared, so a single run can be unlucky either way.
	dump := filepath.Join(b.o.dir, "dump.sql")
	repo := backup.Repository{Dir: filepath.Join(b.o.dir, "repo")}
	opts := backup.Options{DB: src.Config, Repo: repo, Parallel: b.o.parallel, Logger: b.log}
	var dumpTimes, fullTimes []time.Duration
	var full *backup.Manifest
	for k := 0; k < 2; k++ {
		_ = os.Remove(dump)
		t0 = time.Now()
		if _, err := b.run.Run(ctx, "mysqldump", "--defaults-extra-file="+srcCnf, "--single-transaction", "--routines", "--triggers", "--events",
			"--databases", "bench", "--result-file="+dump); err != nil {
			return err
		}
		dumpTimes = append(dumpTimes, time.Since(t0))
		var took time.Duration
		if full, took, err = timedBackup(ctx, backup.Full, opts); err != nil {
			return err
		}
		fullTimes = append(fullTimes, took)
	}
	dumpTime, fullTime := minDur(dumpTimes), minDur(fullTimes)
	st, err := os.Stat(dump)
	if err != nil {
		return err
	}
	dumpSize := st.Size()
	zsize, err := zstdSize(dump)
	if err != nil {
		return err
	}
	b.add("mysqldump --single-transaction", fmt.Sprintf("%s, %s", secs(dumpTime), gib(dumpSize)),
		fmt.Sprintf("best of %s; uncompressed SQL (%s if compressed afterwards with zstd, not timed)", joinDur(dumpTimes), gib(zsize)))
	b.add("haconf backup full", fmt.Sprintf("%s, %s", secs(fullTime), gib(full.Size())),
		fmt.Sprintf("best of %s; **%.2fx mysqldump's time**, %.1f%% of its size; s2 (the default), SHA-256 per file, per-table checksums, %d data files",
			joinDur(fullTimes), fullTime.Seconds()/dumpTime.Seconds(), 100*float64(full.Size())/float64(dumpSize), countData(full)))

	{
		oz := opts
		oz.Compression = backup.CompressZstd
		z, zt, err := timedBackup(ctx, backup.Full, oz)
		if err != nil {
			return err
		}
		b.add("haconf backup full, compression: zstd", fmt.Sprintf("%s, %s", secs(zt), gib(z.Size())),
			fmt.Sprintf("one run; %.2fx mysqldump's time, %.1f%% of its size: the smaller, slower choice", zt.Seconds()/dumpTime.Seconds(), 100*float64(z.Size())/float64(dumpSize)))
		if err := os.RemoveAll(filepath.Join(repo.Dir, z.ID)); err != nil {
			return err
		}
	}

	b.target("full no slower than mysqldump", fullTime <= dumpTime, fmt.Sprintf("%.2fx (best of two runs each)", fullTime.Seconds()/dumpTime.Seconds()))

	// 2. Change 1% of the rows, scattered: every 100th id of every table.
	t0 = time.Now()
	var changed int64
	cc, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	if _, err := cc.ExecContext(ctx, "SET SESSION binlog_format = "+strconv.Quote(b.o.format)); err != nil {
		return err
	}
	for i := 0; i < b.o.tables; i++ {
		r, err := cc.ExecContext(ctx, fmt.Sprintf("UPDATE bench.t%d SET n = n + 1, name = CONCAT('changed-', id) WHERE id %% 100 = 0", i))
		if err != nil {
			return err
		}
		n, _ := r.RowsAffected()
		changed += n
	}
	cc.Close()
	b.add("change 1% of rows", fmt.Sprintf("%d rows updated (every 100th id)", changed), fmt.Sprintf("UPDATE with binlog_format %s, %s", b.o.format, secs(time.Since(t0))))

	diffLight, dt, err := timedBackup(ctx, backup.Differential, opts)
	if err != nil {
		return err
	}
	b.add("haconf differential (binlog; the default)", fmt.Sprintf("%s, %s", secs(dt), humanSize(diffLight.Size())),
		fmt.Sprintf("**%.1f%% of the full's time, %.2f%% of its size**", 100*dt.Seconds()/fullTime.Seconds(), 100*float64(diffLight.Size())/float64(full.Size())))
	b.target("differential at most 20% of the full's time", dt <= fullTime/5, fmt.Sprintf("%.1f%% (binlog differential, the default)", 100*dt.Seconds()/fullTime.Seconds()))
	b.target("differential at most 3% of the full's size", diffLight.Size()*100 <= full.Size()*3, fmt.Sprintf("%.2f%%", 100*float64(diffLight.Size())/float64(full.Size())))
	o2 := opts
	o2.Checksums = true
	diff, dt, err := timedBackup(ctx, backup.Differential, o2)
	if err != nil {
		return err
	}
	b.add("haconf differential --checksums (binlog + table checksums)", fmt.Sprintf("%s, %s", secs(dt), humanSize(diff.Size())),
		fmt.Sprintf("%.1f%% of the full's time, %.2f%% of its size; the checksums (server-side scan, no rows sent) let the drill prove the chain", 100*dt.Seconds()/fullTime.Seconds(), 100*float64(diff.Size())/float64(full.Size())))

	// 3. Restore: mysql < dump.sql vs haconf restore, each into a fresh server.
	tgt, err := b.server(ctx, "target-mysql", false)
	if err != nil {
		return err
	}
	tgtCnf, err := b.clientFile(tgt)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(dump)
	if err != nil {
		return err
	}
	t0 = time.Now()
	if _, err := b.run.RunCmd(ctx, runner.Cmd{Name: "mariadb", Args: []string{"--defaults-extra-file=" + tgtCnf}, Stdin: data}); err != nil {
		tgt.Stop()
		return err
	}
	importTime := time.Since(t0)
	data = nil
	tgt.Stop()
	b.add("mysql < dump.sql", secs(importTime), "the mysql client, single connection")

	for _, c := range []struct {
		name string
		id   string
	}{{"haconf backup restore (full)", full.ID}, {"haconf backup restore (full + differential)", diff.ID}} {
		tgt, err := b.server(ctx, "target-haconf-"+c.id, false)
		if err != nil {
			return err
		}
		res, err := backup.Restore(ctx, backup.RestoreOptions{Target: tgt.Config, Repo: repo, ID: c.id, Parallel: b.o.parallel, Runner: b.run, Logger: b.log})
		if err != nil {
			tgt.Stop()
			return err
		}
		t1 := time.Now()
		got, err := backup.Checksums(ctx, tgt.Config, res.Expected, b.o.parallel)
		tgt.Stop()
		if err != nil {
			return err
		}
		verdict := "checksums equal the source snapshot"
		if m := backup.CompareTables(res.Expected, got); len(m) > 0 {
			verdict = fmt.Sprintf("MISMATCH: %v", m)
		}
		if c.id == full.ID {
			b.target("restore faster than mysql < dump.sql", res.Duration < importTime, fmt.Sprintf("%.2fx", res.Duration.Seconds()/importTime.Seconds()))
		}
		b.add(c.name, secs(res.Duration), fmt.Sprintf("%.2fx mysql client import's time; %d binlog statements replayed; %s (checked in %s)",
			res.Duration.Seconds()/importTime.Seconds(), res.Events, verdict, secs(time.Since(t1))))
	}
	return b.report()
}

// generate fills bench.t0..tN with rows of mixed, moderately compressible
// data, loading tables in parallel without writing the binary log.
func (b *bench) generate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, "CREATE DATABASE bench"); err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, b.o.tables)
	sem := make(chan struct{}, 2)
	for i := 0; i < b.o.tables; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- b.fill(ctx, db, i)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) fill(ctx context.Context, db *sql.DB, i int) error {
	c, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	// The connection goes back to the pool: restore binary logging, or the
	// 1% change below would be invisible to the binlog differential.
	defer c.ExecContext(context.WithoutCancel(ctx), "SET SESSION sql_log_bin = 1, unique_checks = 1")
	table := fmt.Sprintf("bench.t%d", i)
	for _, q := range []string{
		"SET SESSION sql_log_bin = 0",
		"SET SESSION unique_checks = 0",
		`CREATE TABLE ` + table + ` (
			id INT NOT NULL PRIMARY KEY,
			uuid CHAR(36) NOT NULL,
			name VARCHAR(64) NOT NULL,
			payload VARCHAR(255),
			n INT NOT NULL,
			price DECIMAL(12,2),
			created DATETIME NOT NULL,
			KEY (name)
		) ENGINE=InnoDB`,
	} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	pr, pw := io.Pipe()
	name := "bench-" + strconv.Itoa(i)
	mysql.RegisterReaderHandler(name, func() io.Reader { return pr })
	defer mysql.DeregisterReaderHandler(name)
	go func() {
		w := bufio.NewWriterSize(pw, 1<<20)
		rng := rand.New(rand.NewPCG(uint64(i), 42))
		words := []string{"compute", "network", "volume", "image", "flavor", "keypair", "router", "subnet", "port", "server", "active", "error", "building", "deleted"}
		base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		var line []byte
		for id := 1; id <= b.o.rows; id++ {
			line = line[:0]
			line = strconv.AppendInt(line, int64(id), 10)
			line = fmt.Appendf(line, "\t%08x-%04x-%04x-%04x-%012x\t", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint64()&0xffffffffffff)
			line = fmt.Appendf(line, "%s-%d\t", words[rng.IntN(len(words))], rng.IntN(100000))
			for k := 0; k < 8; k++ {
				line = append(line, words[rng.IntN(len(words))]...)
				line = append(line, ' ')
				line = strconv.AppendUint(line, rng.Uint64()%1e9, 36)
				line = append(line, ' ')
			}
			line = append(line, '\t')
			line = strconv.AppendInt(line, int64(rng.IntN(1000)), 10)
			line = fmt.Appendf(line, "\t%d.%02d\t", rng.IntN(100000), rng.IntN(100))
			line = base.Add(time.Duration(rng.Int64N(int64(700*24*time.Hour)))).AppendFormat(line, "2006-01-02 15:04:05")
			line = append(line, '\n')
			if _, err := w.Write(line); err != nil {
				return
			}
		}
		pw.CloseWithError(w.Flush())
	}()
	_, err = c.ExecContext(ctx, "LOAD DATA LOCAL INFILE 'Reader::"+name+"' INTO TABLE "+table)
	pr.Close()
	return err
}

func (b *bench) report() error {
	var sb strings.Builder
	ver, _ := b.run.Run(context.Background(), "mariadbd", "--version")
	dumpVer, _ := b.run.Run(context.Background(), "mysqldump", "--version")
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.Fields(strings.SplitN(string(data), "\n", 2)[0])[1]
		if kb, err := strconv.ParseInt(mem, 10, 64); err == nil {
			mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&sb, "# haconf backup benchmark\n\n")
	fmt.Fprintf(&sb, "Produced by `go run ./bench/backup` (`make bench`) in one run.\n\n")
	fmt.Fprintf(&sb, "- date: %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&sb, "- machine: nproc %d, memory %s, load average at the end: %s\n", runtime.NumCPU(), mem, strings.TrimSpace(string(load)))
	fmt.Fprintf(&sb, "- server: %s", ver)
	fmt.Fprintf(&sb, "- mysqldump: %s", dumpVer)
	fmt.Fprintf(&sb, "- Go: %s; haconf parallel = %d; buffer pool %s on every server\n\n", runtime.Version(), b.o.parallel, b.o.pool)
	fmt.Fprintf(&sb, "| step | result | notes |\n|---|---|---|\n")
	for _, r := range b.res {
		fmt.Fprintf(&sb, "| %s | %s | %s |\n", r.what, r.value, r.note)
	}
	fmt.Fprintf(&sb, "\n| target (issue 6) | verdict | measured |\n|---|---|---|\n")
	for _, r := range b.targets {
		fmt.Fprintf(&sb, "| %s | %s | %s |\n", r.what, r.value, r.note)
	}
	sb.WriteString(`
How to read it: every server is a fresh mariadbd started by the benchmark
(innodb_flush_log_at_trx_commit = 2, buffer pool as above, warm: every
table is read once before the first dump). The machine is shared with other
work, so the two tools alternate and the best of two runs of each is
compared; both runs are shown. "full" includes the consistent snapshot,
the schema, zstd/s2 compression, a SHA-256 per file, per-table checksums
and the manifest, fsynced. The differential is the binary log since the
full (ROW format, 1% of rows updated, scattered); "--checksums" adds a
server-side checksum of every table at the differential's snapshot so that
a drill can compare the whole chain, which costs a scan of every table.
Restores load into an empty server; haconf's restore includes checking each
file's SHA-256 and row count, and is itself verified against the
checksums recorded at backup time (shown in the notes, not timed).
`)
	fmt.Print(sb.String())
	if b.o.out != "" {
		return os.WriteFile(b.o.out, []byte(sb.String()), 0o644)
	}
	return nil
}

// timedBackup takes a backup and says how long it took.
func timedBackup(ctx context.Context, kind backup.Kind, o backup.Options) (*backup.Manifest, time.Duration, error) {
	start := time.Now()
	m, err := backup.Run(ctx, kind, o)
	return m, time.Since(start), err
}

func minDur(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m
}

func joinDur(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, secs(d))
	}
	return strings.Join(s, " / ")
}

func countData(m *backup.Manifest) int {
	n := 0
	for _, t := range m.Tables {
		n += len(t.Files)
	}
	return n
}

func zstdSize(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var cw countWriter
	enc, err := zstd.NewWriter(&cw, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		return 0, err
	}
	if _, err := io.Copy(enc, f); err != nil {
		return 0, err
	}
	if err := enc.Close(); err != nil {
		return 0, err
	}
	return cw.n, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
func since(t time.Time) string    { return secs(time.Since(t)) }
func gib(n int64) string          { return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30)) }
func humanSize(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
}
