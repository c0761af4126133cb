package backup

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/haconf/haconf/internal/runner"
)

// schemasOf lists the target's databases but the system schemas.
func schemasOf(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		if !IsSystemSchema(s) {
			out = append(out, s)
		}
	}
	return out
}

// damage flips one byte of path and returns a function that repairs it.
func damage(t *testing.T, path string, edit func([]byte) []byte) func() {
	t.Helper()
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, edit(append([]byte(nil), orig...)), 0o600); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.WriteFile(path, orig, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func flipMiddle(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }

// TestRestoreNeverHalfLoads: damage anywhere in the chain is found before
// the target changes, and a failure after loading, even after the
// databases were published and the target's own databases replaced, leaves
// the target as it was.
func TestRestoreNeverHalfLoads(t *testing.T) {
	ctx := context.Background()
	src := startServer(t, true)
	sdb := connect(t, src)
	seed(t, sdb)
	repo := Repository{Dir: t.TempDir()}
	opts := Options{DB: src.Config, Repo: repo, Parallel: 2, ChunkRows: 1000, Checksums: true, Users: true}
	full, err := Run(ctx, Full, opts)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, sdb,
		"UPDATE nova.instances SET host = 'moved' WHERE id % 7 = 0",
		"DELETE FROM nova.instances WHERE id % 11 = 0",
		"CREATE TABLE nova.later (id INT PRIMARY KEY)",
		"INSERT INTO nova.later VALUES (1)",
	)
	diff, err := Run(ctx, Differential, opts)
	if err != nil {
		t.Fatal(err)
	}
	tgt := startServer(t, false)
	tdb := connect(t, tgt)
	empty := schemasOf(t, tdb)
	untouched := func(t *testing.T) {
		t.Helper()
		if got := schemasOf(t, tdb); !slices.Equal(got, empty) {
			t.Fatalf("target's databases after a refused restore: %v, want %v", got, empty)
		}
	}

	t.Run("edited manifest", func(t *testing.T) {
		repair := damage(t, repo.Path(full.ID, manifestName), func(b []byte) []byte {
			return []byte(strings.Replace(string(b), `"rows": 5000`, `"rows": 4999`, 1))
		})
		defer repair()
		_, err := Restore(ctx, RestoreOptions{Target: tgt.Config, Repo: repo, ID: full.ID})
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "manifest.json.sha256") {
			t.Fatalf("restore of an edited manifest: %v, want ErrCorrupt", err)
		}
		untouched(t)
	})

	t.Run("damaged binlog found before the full is loaded", func(t *testing.T) {
		victim := diff.BinlogFiles[len(diff.BinlogFiles)-1]
		defer damage(t, repo.Path(diff.ID, victim), flipMiddle)()
		_, err := Restore(ctx, RestoreOptions{Target: tgt.Config, Repo: repo, ID: diff.ID, Runner: runner.Exec{}})
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), victim) || !strings.Contains(err.Error(), "nothing was restored") {
			t.Fatalf("restore with a damaged binary log: %v", err)
		}
		untouched(t)
	})

	t.Run("free space", func(t *testing.T) {
		little := func(string) (int64, error) { return 1 << 20, nil }
		_, err := Restore(ctx, RestoreOptions{Target: tgt.Config, Repo: repo, ID: diff.ID, Runner: runner.Exec{}, freeSpace: little})
		if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "1.0 MiB is free") {
			t.Fatalf("restore without space: %v", err)
		}
		untouched(t)
		before, _ := repo.List()
		o := opts
		o.freeSpace = little
		if _, err := Run(ctx, Full, o); !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "data length") {
			t.Fatalf("full without space: %v", err)
		}
		if after, _ := repo.List(); len(after) != len(before) {
			t.Fatalf("a full refused for space left a backup: %d -> %d", len(before), len(after))
		}
	})

	t.Run("failure after loading rolls back", func(t *testing.T) {
		_, err := Restore(ctx, RestoreOptions{Target: tgt.Config, Repo: repo, ID: diff.ID, Runner: runner.Exec{},
			afterLoad: func() error { return errors.New("power cut") }})
		if err == nil || !strings.Contains(err.Error(), "rolled back") {
			t.Fatalf("failed restore: %v", err)
		}
		untouched(t)
	})

	// The target now gets the full, then drifts from it.
	if _, err := Restore(ctx, RestoreOptions{Target: tgt.Config, Repo: repo, ID: full.ID}); err != nil {
		t.Fatal(err)
	}
	mustExec(t, tdb, "DELETE FROM nova.instances WHERE id < 10", "INSERT INTO neutron.ports VALUES ('p9', 'target only')")
	before := checksumsOf(t, tgt, full.Tables)
	objects := func() int {
		var n int
		if err := tdb.QueryRow(`SELECT (SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'nova') +
			(SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'nova') +
			(SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'nova')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	objsBefore := objects()
	noStaging := func(t *testing.T) {
		t.Helper()
		for _, s := range schemasOf(t, tdb) {
			if strings.HasPrefix(s, "haconf_restore_") {
				t.Fatalf("left behind: %s", s)
			}
		}
	}

	t.Run("refused without force", func(t *testing.T) {
		res, err := Restore(ctx, RestoreOptions{Target: tgt.Config, Repo: repo, ID: diff.ID, Runner: runner.Exec{}})
		if !errors.Is(err, ErrTargetNotEmpty) || len(res.Existing) != 2 {
			t.Fatalf("restore over data: %+v %v", res, err)
		}
	})

	t.Run("forced restore that fails after publishing puts the old databases back", func(t *testing.T) {
		_, err := Restore(ctx, RestoreOptions{Target: tgt.Config, Repo: repo, ID: diff.ID, Runner: runner.Exec{}, Force: true,
			CheckFull: func(context.Context, *Manifest) error { return errors.New("check failed") }})
		if err == nil || !strings.Contains(err.Error(), "rolled back") {
			t.Fatalf("failed forced restore: %v", err)
		}
		if m := CompareTables(before, checksumsOf(t, tgt, full.Tables)); len(m) > 0 {
			t.Fatalf("the target's data after a rolled-back restore: %v", m)
		}
		if n := objects(); n != objsBefore || n == 0 {
			t.Fatalf("views, triggers and routines after the rollback: %d, before %d", n, objsBefore)
		}
		var grants string
		if err := tdb.QueryRow("SHOW GRANTS FOR 'nova'@'%'").Scan(&grants); err != nil {
			t.Fatalf("an account that existed before the restore: %v", err)
		}
		noStaging(t)
	})

	t.Run("forced restore replaces", func(t *testing.T) {
		res, err := Restore(ctx, RestoreOptions{Target: tgt.Config, Repo: repo, ID: diff.ID, Runner: runner.Exec{}, Force: true})
		if err != nil || !res.Verified {
			t.Fatalf("forced restore: %+v %v", res, err)
		}
		if m := CompareTables(diff.Tables, checksumsOf(t, tgt, diff.Tables)); len(m) > 0 {
			t.Fatalf("restored chain differs: %v", m)
		}
		if n := objects(); n != objsBefore {
			t.Fatalf("views, triggers and routines: %d, want %d", n, objsBefore)
		}
		noStaging(t)
	})
}
