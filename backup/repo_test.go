package backup

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// commitBackup writes a complete backup through the same transaction a run
// uses (files, manifest, manifest.json.sha256, rename).
func commitBackup(t *testing.T, repo Repository, m *Manifest, files map[string]string) {
	t.Helper()
	tx, err := repo.begin(m.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.abort()
	for name, data := range files {
		if err := tx.writeFile(name, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.commit(m); err != nil {
		t.Fatal(err)
	}
}

func TestRepositoryShowsDamage(t *testing.T) {
	repo := Repository{Dir: t.TempDir()}
	at := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	var ids []string
	for i, kind := range []Kind{Full, Full, Differential, Full} {
		m := &Manifest{Format: FormatVersion, ID: newID(kind, at.Add(time.Duration(i)*time.Hour)), Type: kind, Binlog: &BinlogPos{File: "b.000001", Position: 4}}
		if kind == Differential {
			m.Base = ids[1]
		}
		commitBackup(t, repo, m, map[string]string{"schema.json": "[]"})
		ids = append(ids, m.ID)
	}
	// ids[0]: truncated manifest; ids[1]: edited manifest (still valid JSON);
	// ids[2]: intact differential of the edited full; ids[3]: no manifest.
	truncate := repo.Path(ids[0], manifestName)
	data, _ := os.ReadFile(truncate)
	if err := os.WriteFile(truncate, data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	edit := repo.Path(ids[1], manifestName)
	data, _ = os.ReadFile(edit)
	if err := os.WriteFile(edit, []byte(strings.Replace(string(data), `"position": 4`, `"position": 5`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(repo.Path(ids[3], manifestName)); err != nil {
		t.Fatal(err)
	}

	entries, err := repo.Scan()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 4 {
		t.Fatalf("scan: %d entries, want 4", len(entries))
	}
	for i, want := range []string{"does not match", "does not match", "", "has no manifest.json"} {
		e := entries[i]
		switch {
		case want == "" && e.Damage != nil:
			t.Errorf("%s: damaged: %v", e.ID, e.Damage)
		case want != "" && (!errors.Is(e.Damage, ErrCorrupt) || !strings.Contains(e.Damage.Error(), want)):
			t.Errorf("%s: damage %v, want ErrCorrupt with %q", e.ID, e.Damage, want)
		}
	}
	if list, err := repo.List(); err != nil || len(list) != 1 || list[0].ID != ids[2] {
		t.Fatalf("List: %v %v, want only %s", list, err, ids[2])
	}
	if _, err := repo.Chain(ids[2]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("chain of a differential whose full's manifest was edited: %v, want ErrCorrupt", err)
	}
	for i, id := range ids {
		p, err := repo.Verify(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if damaged := i != 2; damaged != (len(p) > 0) {
			t.Errorf("verify %s: %v", id, p)
		}
	}
	// A missing checksum file is damage too: the run writes it last.
	if err := os.Remove(repo.Path(ids[2], manifestName+".sha256")); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Load(ids[2]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("manifest without its checksum: %v", err)
	}
}

func TestCheckSequence(t *testing.T) {
	if err := checkSequence([]string{"mariadb-bin.000009", "mariadb-bin.000010", "mariadb-bin.000011"}); err != nil {
		t.Fatal(err)
	}
	if err := checkSequence([]string{"mariadb-bin.000009", "mariadb-bin.000011"}); !errors.Is(err, ErrBinlogPurged) || !errors.Is(err, ErrChainBroken) {
		t.Fatalf("gap: %v", err)
	}
}

func TestCheckSpace(t *testing.T) {
	free := func(string) (int64, error) { return 1 << 30, nil }
	if err := checkSpace(free, "/repo", 512<<20, "a full"); err != nil {
		t.Fatal(err)
	}
	err := checkSpace(free, "/repo", 1<<30, "a full of 2 databases")
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("too little space: %v", err)
	}
	for _, want := range []string{"/repo", "a full of 2 databases", "1.00 GiB", "1.16 GiB", "is free"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if n, err := FreeBytes(t.TempDir() + "/not/yet"); err != nil || n <= 0 {
		t.Fatalf("FreeBytes of a path not created yet: %d %v", n, err)
	}
}
