package backup

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestEncodeRowRoundTrip(t *testing.T) {
	rows := [][][]byte{
		{[]byte("plain"), nil, []byte{}},
		{[]byte("tab\there"), []byte("new\nline"), []byte(`back\slash`)},
		{[]byte{0, '\r', 0xff, '\\', 'N'}, []byte(`\N`), []byte("€")},
	}
	var buf []byte
	for _, r := range rows {
		buf = EncodeRow(buf, r)
	}
	if want := "plain\t\\N\t\n"; !strings.HasPrefix(string(buf), want) {
		t.Fatalf("first row %q, want prefix %q", buf, want)
	}
	got, err := DecodeRows(string(buf))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, rows) {
		t.Fatalf("round trip:\n got %q\nwant %q", got, rows)
	}
}

func FuzzEncodeRow(f *testing.F) {
	f.Add([]byte("a\tb"), []byte{}, true)
	f.Add([]byte{0, '\\', '\n'}, []byte("\r"), false)
	f.Fuzz(func(t *testing.T, a, b []byte, nullB bool) {
		if b == nil {
			b = []byte{}
		}
		if a == nil {
			a = []byte{}
		}
		row := [][]byte{a, b}
		if nullB {
			row[1] = nil
		}
		got, err := DecodeRows(string(EncodeRow(nil, row)))
		if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], row) {
			t.Fatalf("round trip of %q: %q, %v", row, got, err)
		}
	})
}

func TestPlanChunks(t *testing.T) {
	cases := []struct {
		min, max, rows, per int64
		want                int
	}{
		{1, 100, 100, 1000, 1},
		{1, 1000000, 1000000, 200000, 5},
		{1, 10, 1000000, 200000, 5}, // dense range smaller than the chunk count
		{5, 5, 10, 1, 1},
		{-9e18, 9e18, 1e7, 1e6, 10},
	}
	for _, c := range cases {
		got := PlanChunks(c.min, c.max, c.rows, c.per)
		if len(got) > c.want || len(got) < 1 {
			t.Errorf("PlanChunks(%d, %d, %d, %d) = %d chunks, want at most %d", c.min, c.max, c.rows, c.per, len(got), c.want)
		}
		if got[0].HasLo || got[len(got)-1].HasHi {
			t.Errorf("PlanChunks(%d, %d): outer chunks must be open: %+v", c.min, c.max, got)
		}
		for i := 1; i < len(got); i++ {
			if !got[i].HasLo || got[i].Lo != got[i-1].Hi {
				t.Errorf("PlanChunks(%d, %d): gap between chunks %d and %d: %+v", c.min, c.max, i-1, i, got)
			}
		}
	}
	if w := (Chunk{Lo: 5, Hi: 9, HasLo: true, HasHi: true}).Where("id"); w != "`id` >= 5 AND `id` < 9" {
		t.Fatalf("Where = %q", w)
	}
}

func TestParseOptionFile(t *testing.T) {
	data := []byte(`# haconf
[mysqld]
password = not-this-one
[client]
user = backup
password = "s3cr#et"  
host=db.example
socket = /run/mysqld/mysqld.sock # comment
[client]
port=3307
`)
	got := ParseOptionFile(data, "client")
	want := map[string]string{"user": "backup", "password": "s3cr#et", "host": "db.example", "socket": "/run/mysqld/mysqld.sock", "port": "3307"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestResolveDSN(t *testing.T) {
	dir := t.TempDir()
	cnf := filepath.Join(dir, "mysql.cnf")
	if err := os.WriteFile(cnf, []byte("[client]\nuser=backup\npassword=filepw\nport=3307\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) string { return "" }
	cfg, err := ResolveDSN("", Credentials{File: cnf, Getenv: noEnv})
	if err != nil || cfg.User != "backup" || cfg.Passwd != "filepw" || cfg.Addr != "127.0.0.1:3307" {
		t.Fatalf("from file: %+v %v", cfg, err)
	}
	env := func(k string) string {
		if k == "MYSQL_PWD" {
			return "envpw"
		}
		return ""
	}
	cfg, err = ResolveDSN("admin@tcp(10.0.0.5:3306)/", Credentials{File: cnf, Getenv: env})
	if err != nil || cfg.User != "admin" || cfg.Passwd != "envpw" || cfg.Addr != "10.0.0.5:3306" {
		t.Fatalf("dsn + env: %+v %v", cfg, err)
	}
	if _, err := ResolveDSN("u:pw@tcp(h:1)/", Credentials{Getenv: noEnv}); !errors.Is(err, ErrPasswordInDSN) {
		t.Fatalf("password in DSN: %v", err)
	}
	if err := os.Chmod(cnf, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ResolveDSN("", Credentials{File: cnf, Getenv: noEnv}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable credentials: %v", err)
	}
	// An explicit DSN does not need the credentials file (a machine that
	// holds only a repository), unless the file was asked for by name; the
	// local server without MYSQL_PWD does.
	missing := filepath.Join(dir, "absent.cnf")
	if cfg, err := ResolveDSN("root@tcp(10.0.0.9:3306)/", Credentials{File: missing, Getenv: noEnv}); err != nil || cfg.User != "root" || cfg.Passwd != "" {
		t.Fatalf("explicit DSN without the credentials file: %+v %v", cfg, err)
	}
	if _, err := ResolveDSN("root@tcp(10.0.0.9:3306)/", Credentials{File: missing, Required: true, Getenv: env}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a credentials file named on the command line that does not exist: %v", err)
	}
	if _, err := ResolveDSN("", Credentials{File: missing, Getenv: noEnv}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("local server without credentials: %v", err)
	}
	if where := Where(cfg); strings.Contains(where, "envpw") {
		t.Fatalf("Where leaks the password: %s", where)
	}
}

func TestSplitBinlogSQL(t *testing.T) {
	for _, name := range []string{"mariadb-binlog-10.11-mixed.sql", "mariadb-binlog-10.11-row.sql"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			stmts, err := SplitBinlogSQL(data)
			if err != nil {
				t.Fatal(err)
			}
			var binlog, commits int
			for _, s := range stmts {
				if strings.HasSuffix(s, "/*!*/") || strings.HasPrefix(s, "DELIMITER") || strings.HasPrefix(s, "#") {
					t.Errorf("statement not split cleanly: %q", s)
				}
				if strings.HasPrefix(s, "/*!\\C") {
					t.Errorf("client charset command left in: %q", s)
				}
				if strings.HasPrefix(s, "BINLOG '") {
					binlog++
				}
				if s == "COMMIT" {
					commits++
				}
			}
			if binlog == 0 || commits == 0 {
				t.Fatalf("%d BINLOG statements, %d COMMITs in %d statements", binlog, commits, len(stmts))
			}
		})
	}
	if _, err := SplitBinlogSQL([]byte("DELIMITER /*!*/;\nBEGIN\n")); err == nil {
		t.Fatal("truncated output accepted")
	}
}

func TestSelectBinlogs(t *testing.T) {
	index := ParseBinlogIndex([]byte("./binlog.000001\n/var/lib/mysql/binlog.000002\nbinlog.000003\n\n"))
	got, err := SelectBinlogs(index, "binlog.000002", "binlog.000003")
	if err != nil || !reflect.DeepEqual(got, []string{"binlog.000002", "binlog.000003"}) {
		t.Fatalf("got %v %v", got, err)
	}
	if _, err := SelectBinlogs(index[1:], "binlog.000001", "binlog.000003"); !errors.Is(err, ErrBinlogPurged) {
		t.Fatalf("purged: %v", err)
	}
}

func TestRetentionPlan(t *testing.T) {
	var all []*Manifest
	add := func(id string, kind Kind, base string) { all = append(all, &Manifest{ID: id, Type: kind, Base: base}) }
	add("1-full", Full, "")
	add("2-diff", Differential, "1-full")
	add("3-full", Full, "")
	add("4-diff", Differential, "3-full")
	add("5-full", Full, "")
	add("6-diff", Differential, "5-full")
	if got := RetentionPlan(all, 2); !reflect.DeepEqual(got, []string{"1-full", "2-diff"}) {
		t.Fatalf("keep 2: %v", got)
	}
	if got := RetentionPlan(all, 1); !reflect.DeepEqual(got, []string{"1-full", "2-diff", "3-full", "4-diff"}) {
		t.Fatalf("keep 1: %v", got)
	}
	if got := RetentionPlan(all, 5); len(got) != 0 {
		t.Fatalf("keep 5: %v", got)
	}
}

func TestCompareTables(t *testing.T) {
	want := []TableInfo{{DB: "a", Name: "t", Rows: 2, Checksum: "9"}, {DB: "a", Name: "gone", Rows: 0, Checksum: "0"}, {DB: "a", Name: "u", Rows: 1, Checksum: "5"}, {DB: "a", Name: "nosum", Rows: -1}}
	got := []TableInfo{{DB: "a", Name: "t", Rows: 2, Checksum: "9"}, {DB: "a", Name: "u", Rows: 1, Checksum: "6"}, {DB: "a", Name: "nosum", Rows: 7, Checksum: "1"}, {DB: "a", Name: "extra"}}
	var s []string
	for _, m := range CompareTables(want, got) {
		s = append(s, m.String())
	}
	wantS := []string{"a.gone: missing after restore", "a.u: checksum 6, snapshot had 5", "a.extra: not in the backup"}
	if !reflect.DeepEqual(s, wantS) {
		t.Fatalf("got %q, want %q", s, wantS)
	}
}

func TestChecksumQuery(t *testing.T) {
	q := ChecksumQuery("`d`.`t`", []string{"id", "we`ird", "f"}, []string{"int", "varchar", "float"})
	for _, want := range []string{"ISNULL(`id`), ISNULL(`we``ird`)", "CRC32C(", "<< 32", "CONVERT(`we``ird` USING binary)", "CONVERT(CONCAT(CAST(`f` AS DOUBLE)) USING binary)"} {
		if !strings.Contains(q, want) {
			t.Errorf("query lacks %q: %s", want, q)
		}
	}
}

func TestEscapeName(t *testing.T) {
	for in, want := range map[string]string{"nova": "nova", "../x": "%2E.%2Fx", "a b": "a%20b", "t.1": "t.1"} {
		if got := escapeName(in); got != want {
			t.Errorf("escapeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSchedulerRunJob(t *testing.T) {
	repo := Repository{Dir: t.TempDir()}
	active := true
	release := make(chan struct{})
	started := make(chan struct{})
	calls := 0
	jobs := map[Job]JobFunc{
		JobFull: func(ctx context.Context) (JobResult, error) { calls++; return JobResult{Result: "F1"}, nil },
		JobDifferential: func(ctx context.Context) (JobResult, error) {
			close(started)
			<-release
			return JobResult{}, errors.New("disk full")
		},
		JobDrill: func(ctx context.Context) (JobResult, error) { return JobResult{Result: "pass"}, nil },
	}
	s, err := NewScheduler(Config{Repository: repo.Dir, Full: "0 2 * * 0", Differential: "0 2 * * 1-6", Drill: "@daily"}, jobs, func() bool { return active }, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	if len(s.Next()) != 0 {
		t.Log("entries before start:", s.Next())
	}
	active = false
	if err := s.RunJob(context.Background(), JobFull); !errors.Is(err, ErrNotActive) || calls != 0 {
		t.Fatalf("passive node: %v, %d calls", err, calls)
	}
	active = true
	if err := s.RunJob(context.Background(), JobFull); err != nil || calls != 1 {
		t.Fatalf("full: %v", err)
	}
	if got := s.LastSuccess(JobFull); !got.Equal(now) {
		t.Fatalf("last success %v, want %v", got, now)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var diffErr error
	go func() { defer wg.Done(); diffErr = s.RunJob(context.Background(), JobDifferential) }()
	<-started
	if err := s.RunJob(context.Background(), JobDrill); !errors.Is(err, ErrBusy) {
		t.Fatalf("overlapping job: %v, want ErrBusy", err)
	}
	close(release)
	wg.Wait()
	if diffErr == nil {
		t.Fatal("failing job reported success")
	}
	st, err := ReadState(repo)
	if err != nil {
		t.Fatal(err)
	}
	if st[JobDifferential].LastError != "disk full" || !st[JobDifferential].LastSuccess.IsZero() || st[JobFull].LastResult != "F1" {
		t.Fatalf("state: %+v", st)
	}
	data, _ := os.ReadFile(filepath.Join(repo.Dir, stateName))
	if !bytes.Contains(data, []byte(`"last_success"`)) {
		t.Fatalf("state file: %s", data)
	}
	if _, err := NewScheduler(Config{Repository: repo.Dir, Full: "0 2 * * 0"}, map[Job]JobFunc{}, nil, nil); err == nil {
		t.Fatal("schedule without a job function accepted")
	}
}

func TestSchedulerRecordsItsFirstStart(t *testing.T) {
	repo := Repository{Dir: filepath.Join(t.TempDir(), "repo")}
	if since, err := ScheduledSince(repo); err != nil || !since.IsZero() {
		t.Fatalf("before any scheduler: %v, %v", since, err)
	}
	first := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i, now := range []time.Time{first, first.Add(48 * time.Hour)} {
		s, err := NewScheduler(Config{Repository: repo.Dir, Full: "0 2 * * 0"}, map[Job]JobFunc{JobFull: func(context.Context) (JobResult, error) { return JobResult{}, nil }}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.now = func() time.Time { return now }
		s.Start(context.Background())
		s.Stop()
		if since, err := ScheduledSince(repo); err != nil || !since.Equal(first) {
			t.Fatalf("start %d: since %v, %v; want the first start %v", i+1, since, err, first)
		}
	}
	if ms, err := repo.List(); err != nil || len(ms) != 0 {
		t.Fatalf("the record is not a backup: %v %v", ms, err)
	}
}
