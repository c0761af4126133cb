package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/internal/testenv"
)

// startServer starts a scratch MariaDB for a test and stops it on cleanup.
func startServer(t *testing.T, logBin bool) *ScratchServer {
	t.Helper()
	testenv.RequireCommands(t, "mariadbd", "mariadb-install-db", "mariadb-binlog")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := StartScratch(ctx, ScratchOptions{Dir: t.TempDir(), Runner: runner.Exec{}, LogBin: logBin, BufferPool: "64M"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func mustExec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func connect(t *testing.T, s *ScratchServer) *sql.DB {
	t.Helper()
	db, err := open(context.Background(), s.Config, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// seed creates two databases with the awkward cases: every escape, NULL
// next to ”, binary bytes, multibyte and latin1 text, a composite key, no
// key, a generated column, a foreign key, a view, a routine and a trigger.
func seed(t *testing.T, db *sql.DB) {
	mustExec(t, db,
		"CREATE DATABASE nova CHARACTER SET utf8mb4",
		`CREATE TABLE nova.instances (
			id INT AUTO_INCREMENT PRIMARY KEY,
			uuid CHAR(36) NOT NULL,
			host VARCHAR(255) NULL,
			data BLOB,
			note TEXT,
			created DATETIME(6) NOT NULL,
			price DECIMAL(12,4),
			ratio DOUBLE,
			flag TINYINT(1),
			name_len INT AS (CHAR_LENGTH(host)) VIRTUAL,
			KEY (host)
		) ENGINE=InnoDB`,
		`CREATE TABLE nova.instance_metadata (
			instance_id INT NOT NULL, k VARCHAR(64) NOT NULL, v VARCHAR(255),
			PRIMARY KEY (instance_id, k),
			FOREIGN KEY (instance_id) REFERENCES nova.instances(id) ON DELETE CASCADE)`,
		"CREATE TABLE nova.events (msg VARCHAR(100), at TIMESTAMP NULL)",
		"CREATE TABLE nova.empty_table (id BIGINT PRIMARY KEY)",
		"CREATE VIEW nova.busy_hosts AS SELECT host, COUNT(*) AS n FROM nova.instances GROUP BY host",
		"CREATE VIEW nova.aaa_first AS SELECT * FROM nova.busy_hosts",
		"CREATE PROCEDURE nova.count_instances(OUT n INT) SELECT COUNT(*) INTO n FROM nova.instances",
		"CREATE TRIGGER nova.log_delete AFTER DELETE ON nova.instances FOR EACH ROW INSERT INTO nova.events VALUES (CONCAT('deleted ', OLD.id), NULL)",
		"CREATE DATABASE neutron CHARACTER SET latin1",
		"CREATE TABLE neutron.ports (id VARCHAR(36) PRIMARY KEY, name VARCHAR(255)) CHARACTER SET latin1",
		"INSERT INTO neutron.ports VALUES ('p1', 'café'), ('p2', 'naïve\\\\path'), ('p3', '')",
		`CREATE TABLE nova.types (id INT PRIMARY KEY, f FLOAT, d DOUBLE, b BIT(10), j JSON, e ENUM('a','b'), s SET('x','y'),
			y YEAR, tm TIME(3), dt DATE, bn BINARY(4), vb VARBINARY(10), u BIGINT UNSIGNED, m MEDIUMTEXT, g GEOMETRY, x INET6, uu UUID)`,
		`INSERT INTO nova.types VALUES
			(1, 3.14159, 2.718281828459045, b'1010101010', '{"a": [1, 2]}', 'b', 'x,y', 2024, '12:34:56.789', '2024-02-29', 'ab', 0x00ff10, 18446744073709551615, 'long', ST_GeomFromText('POINT(1 2)'), '::1', '6ccd780c-baba-1026-9564-5b8c656024db'),
			(2, -1e-7, 1e300, b'0', NULL, NULL, '', NULL, '-838:59:59', NULL, NULL, '', 0, '', NULL, NULL, NULL),
			(3, 123456789, 0.1, b'1', '[]', 'a', 'y', 1901, '00:00:00', '1000-01-01', 0x00000000, NULL, 1, NULL, ST_GeomFromText('LINESTRING(0 0,1 1)'), '::ffff:10.0.0.1', NULL)`,
		"CREATE USER 'nova'@'%' IDENTIFIED BY 'nova-secret'",
		"GRANT SELECT, INSERT, UPDATE, DELETE ON nova.* TO 'nova'@'%'",
	)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5000; i++ {
		var host, note any
		host = fmt.Sprintf("compute-%d", i%37)
		note = fmt.Sprintf("note %d with\ttab\nnewline \\ backslash \x00 nul \r cr ü €", i)
		switch i % 7 {
		case 0:
			host, note = nil, nil
		case 1:
			note = ""
		}
		data := []byte{byte(i), 0, '\t', '\n', '\\', 0xff, byte(i >> 8)}
		if _, err := tx.Exec("INSERT INTO nova.instances (uuid, host, data, note, created, price, ratio, flag) VALUES (UUID(), ?, ?, ?, NOW(6) - INTERVAL ? SECOND, ? / 7, ? / 3, ?)",
			host, data, note, i, i, i, i%2); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if _, err := tx.Exec("INSERT INTO nova.instance_metadata VALUES (?, 'role', ?), (?, 'az', NULL)", i, fmt.Sprintf("r%d", i), i); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := tx.Exec("INSERT INTO nova.events VALUES ('boot', '2024-01-01 00:00:00'), ('dup', NULL), ('dup', NULL)"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func checksumsOf(t *testing.T, s *ScratchServer, like []TableInfo) []TableInfo {
	t.Helper()
	got, err := Checksums(context.Background(), s.Config, like, 2)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestIntegration(t *testing.T) {
	ctx := context.Background()
	src := startServer(t, true)
	sdb := connect(t, src)
	seed(t, sdb)
	repo := Repository{Dir: filepath.Join(t.TempDir(), "repo")}
	opts := Options{DB: src.Config, Repo: repo, Parallel: 2, ChunkRows: 1000, Checksums: true, Retention: 2, Users: true}

	full, err := Run(ctx, Full, opts)
	if err != nil {
		t.Fatal(err)
	}
	if full.Binlog == nil || len(full.Tables) != 6 {
		t.Fatalf("full: binlog %v, %d tables", full.Binlog, len(full.Tables))
	}
	for _, tb := range full.Tables {
		if tb.Name == "instances" && (tb.Rows != 5000 || len(tb.Files) < 3) {
			t.Fatalf("instances: %d rows in %d chunks, want 5000 rows in several chunks", tb.Rows, len(tb.Files))
		}
	}
	if got := CompareTables(full.Tables, checksumsOf(t, src, full.Tables)); len(got) > 0 {
		t.Fatalf("source differs from its own snapshot: %v", got)
	}

	t.Run("zstd", func(t *testing.T) {
		o := opts
		o.Compression = CompressZstd
		o.Retention = 0
		z, err := Run(ctx, Full, o)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(z.Tables[0].Files[0], ".tsv.zst") {
			t.Fatalf("zstd data file named %s", z.Tables[0].Files[0])
		}
		tgt := startServer(t, false)
		res, err := Restore(ctx, RestoreOptions{Target: tgt.Config, Repo: repo, ID: z.ID})
		if err != nil {
			t.Fatal(err)
		}
		if m := CompareTables(res.Expected, checksumsOf(t, tgt, z.Tables)); len(m) > 0 {
			t.Fatalf("restored zstd full differs: %v", m)
		}
		if err := os.RemoveAll(filepath.Join(repo.Dir, z.ID)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("restore full", func(t *testing.T) {
		tgt := startServer(t, false)
		res, err := Restore(ctx, RestoreOptions{Target: tgt.Config, Repo: repo, ID: full.ID, Runner: runner.Exec{}})
		if err != nil {
			t.Fatal(err)
		}
		if m := CompareTables(res.Expected, checksumsOf(t, tgt, full.Tables)); len(m) > 0 {
			t.Fatalf("restored full differs: %v", m)
		}
		tdb := connect(t, tgt)
		var n int
		if err := tdb.QueryRow("SELECT COUNT(*) FROM nova.aaa_first").Scan(&n); err != nil || n == 0 {
			t.Fatalf("view after restore: %d, %v", n, err)
		}
		var grants string
		if err := tdb.QueryRow("SHOW GRANTS FOR 'nova'@'%'").Scan(&grants); err != nil {
			t.Fatalf("user after restore: %v", err)
		}
		if _, err := tdb.Exec("CALL nova.count_instances(@n)"); err != nil {
			t.Fatalf("procedure after restore: %v", err)
		}
		if _, err := tdb.Exec("DELETE FROM nova.instances WHERE id = 2"); err != nil {
			t.Fatal(err)
		}
		if err := tdb.QueryRow("SELECT COUNT(*) FROM nova.events WHERE msg = 'deleted 2'").Scan(&n); err != nil || n != 1 {
			t.Fatalf("trigger after restore: %d, %v", n, err)
		}
		_, err = Restore(ctx, RestoreOptions{Target: tgt.Config, Repo: repo, ID: full.ID})
		if !errors.Is(err, ErrTargetNotEmpty) {
			t.Fatalf("restore into a non-empty target: %v, want ErrTargetNotEmpty", err)
		}
		dry, err := Restore(ctx, RestoreOptions{Target: tgt.Config, Repo: repo, ID: full.ID, Force: true, DryRun: true})
		if err != nil || len(dry.Existing) != 2 {
			t.Fatalf("dry run: %+v, %v", dry, err)
		}
	})

	// Changes since the full: inserts, updates, deletes, a schema change.
	mustExec(t, sdb,
		"INSERT INTO nova.instances (uuid, host, created) VALUES (UUID(), 'new-host', NOW())",
		"UPDATE nova.instances SET host = 'moved', note = NULL WHERE id % 97 = 0",
		"DELETE FROM nova.instances WHERE id % 101 = 0",
		"ALTER TABLE nova.instances ADD COLUMN power_state INT NOT NULL DEFAULT 1",
		"UPDATE nova.instances SET power_state = 4 WHERE id % 13 = 0",
		"SET SESSION binlog_format = 'ROW'",
		"UPDATE neutron.ports SET name = 'renamed' WHERE id = 'p1'",
		"CREATE TABLE nova.migrations (id INT PRIMARY KEY, status VARCHAR(20))",
		"INSERT INTO nova.migrations VALUES (1, 'done'), (2, 'error')",
	)
	diff, err := Run(ctx, Differential, opts)
	if err != nil {
		t.Fatal(err)
	}
	if diff.Base != full.ID || diff.Size() > full.Size()/2 {
		t.Fatalf("differential: base %s, %d bytes (full %d)", diff.Base, diff.Size(), full.Size())
	}
	live := checksumsOf(t, src, diff.Tables)
	if m := CompareTables(diff.Tables, live); len(m) > 0 {
		t.Fatalf("differential's checksums differ from the source: %v", m)
	}

	t.Run("restore differential", func(t *testing.T) {
		tgt := startServer(t, false)
		res, err := Restore(ctx, RestoreOptions{Target: tgt.Config, Repo: repo, Runner: runner.Exec{}})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Chain) != 2 || res.Events == 0 {
			t.Fatalf("chain %v, %d statements", res.Chain, res.Events)
		}
		if m := CompareTables(live, checksumsOf(t, tgt, live)); len(m) > 0 {
			t.Fatalf("restored chain differs from the source: %v", m)
		}
	})

	t.Run("drill", func(t *testing.T) {
		rep, err := Drill(ctx, DrillOptions{Repo: repo, Runner: runner.Exec{}, BufferPool: "64M"})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Pass || len(rep.Chain) != 2 || len(rep.Checked) != 2 || rep.Unchecked != "" {
			t.Fatalf("drill: %+v", rep)
		}
	})

	t.Run("drill of a differential without checksums", func(t *testing.T) {
		mustExec(t, sdb, "DELETE FROM nova.migrations WHERE id = 2")
		o := opts
		o.Checksums = false
		light, err := Run(ctx, Differential, o)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Drill(ctx, DrillOptions{Repo: repo, Runner: runner.Exec{}, BufferPool: "64M"})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Pass || rep.Chain[1] != light.ID || len(rep.Checked) != 1 || rep.Checked[0] != full.ID || rep.Unchecked == "" {
			t.Fatalf("drill: %+v", rep)
		}
	})

	t.Run("interrupted backup is not listed", func(t *testing.T) {
		before, _ := repo.List()
		o := opts
		o.afterFile = func(string) error { return errors.New("power cut") }
		if _, err := Run(ctx, Full, o); err == nil {
			t.Fatal("interrupted run succeeded")
		}
		cctx, cancel := context.WithCancel(ctx)
		o.afterFile = func(string) error { cancel(); return nil }
		if _, err := Run(cctx, Full, o); err == nil {
			t.Fatal("cancelled run succeeded")
		}
		// A crash leaves a temporary directory behind, even with a manifest.
		crashed := filepath.Join(repo.Dir, tmpPrefix+"20990101T000000.000Z-full")
		if err := os.MkdirAll(crashed, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(crashed, manifestName), []byte(`{"id":"20990101T000000.000Z-full","type":"full"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		after, _ := repo.List()
		if len(after) != len(before) {
			t.Fatalf("listed %d backups after interrupted runs, want %d", len(after), len(before))
		}
		if latest, _ := repo.Latest(""); latest.ID != before[len(before)-1].ID {
			t.Fatalf("latest is %s, want %s", latest.ID, before[len(before)-1].ID)
		}
	})

	t.Run("lock", func(t *testing.T) {
		unlock, err := repo.Lock()
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		if _, err := Run(ctx, Full, opts); !errors.Is(err, ErrLocked) {
			t.Fatalf("run while locked: %v, want ErrLocked", err)
		}
	})

	t.Run("verify names a corrupted file", func(t *testing.T) {
		if p, err := repo.Verify(ctx, full.ID); err != nil || len(p) != 0 {
			t.Fatalf("intact backup: %v %v", p, err)
		}
		victim := full.Tables[0].Files[0]
		for _, tb := range full.Tables {
			if tb.Name == "instances" {
				victim = tb.Files[1]
			}
		}
		path := repo.Path(full.ID, victim)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 0x40
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := repo.Verify(ctx, full.ID)
		if err != nil || len(p) != 1 || p[0].Path != victim {
			t.Fatalf("verify: %v %v, want exactly %s", p, err, victim)
		}
		tgt := startServer(t, false)
		_, err = Restore(ctx, RestoreOptions{Target: tgt.Config, Repo: repo, ID: full.ID})
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(fmt.Sprint(err), victim) {
			t.Fatalf("restore of a corrupted backup: %v", err)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		cfg := src.Config.Clone()
		cfg.Passwd = "wrong"
		_, err := Run(ctx, Full, Options{DB: cfg, Repo: repo})
		if !errors.Is(err, ErrAccessDenied) || !strings.Contains(err.Error(), "haconf@127.0.0.1") || strings.Contains(err.Error(), src.Config.Passwd) {
			t.Fatalf("wrong password: %v", err)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		port, _ := freePort()
		_, err := Run(ctx, Full, Options{DB: TCPConfig("haconf", "x", port), Repo: repo})
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("unreachable server: %v", err)
		}
	})
}
