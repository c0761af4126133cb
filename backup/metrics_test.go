package backup

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// writeManifest puts a complete backup of kind, finished at finished, with
// files of the given sizes, into repo.
func writeManifest(t *testing.T, repo Repository, kind Kind, finished time.Time, sizes ...int64) {
	t.Helper()
	m := Manifest{Format: FormatVersion, ID: newID(kind, finished), Type: kind, Started: finished.Add(-time.Minute), Finished: finished}
	for _, n := range sizes {
		m.Files = append(m.Files, FileInfo{Path: "f", Size: n})
	}
	b, _ := json.Marshal(m)
	if err := os.MkdirAll(filepath.Join(repo.Dir, m.ID), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo.Dir, m.ID, manifestName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo.Dir, m.ID, manifestName+".sha256"), []byte(sha256hex(b)+"  "+manifestName+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

func TestMetrics(t *testing.T) {
	repo := Repository{Dir: t.TempDir()}
	cfg := Config{Repository: repo.Dir, Full: "0 2 * * 0", Differential: "0 2 * * 1-6", Drill: "@daily"}
	m := Metrics{Repo: repo, Config: cfg}
	// Nothing ran yet: the scheduled jobs show that they never succeeded.
	want := `
# HELP haconf_backup_last_success_timestamp_seconds When the job last succeeded, in Unix time (0: never); a full or differential backup taken by hand counts.
# TYPE haconf_backup_last_success_timestamp_seconds gauge
haconf_backup_last_success_timestamp_seconds{kind="differential"} 0
haconf_backup_last_success_timestamp_seconds{kind="drill"} 0
haconf_backup_last_success_timestamp_seconds{kind="full"} 0
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}

	// A scheduled full, a differential that failed (after one taken by
	// hand), a drill that passed, and a full taken by hand after it all.
	at := time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)
	clock := at
	fail := errors.New("disk full")
	s, err := NewScheduler(cfg, map[Job]JobFunc{
		JobFull:         func(context.Context) (JobResult, error) { return JobResult{Result: "F1"}, nil },
		JobDifferential: func(context.Context) (JobResult, error) { return JobResult{}, fail },
		JobDrill:        func(context.Context) (JobResult, error) { return JobResult{Result: "pass"}, nil },
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return clock }
	_ = s.RunJob(context.Background(), JobFull)
	writeManifest(t, repo, Full, at, 1000, 24)
	clock = at.Add(24 * time.Hour)
	_ = s.RunJob(context.Background(), JobDifferential)
	clock = at.Add(27 * time.Hour)
	_ = s.RunJob(context.Background(), JobDrill)
	writeManifest(t, repo, Differential, at.Add(time.Hour), 10)
	writeManifest(t, repo, Full, at.Add(30*time.Hour), 2048)

	want = `
# HELP haconf_backup_last_attempt_success 1 when the scheduler's last run of the job succeeded (a drill: the restore was proven), 0 when it failed.
# TYPE haconf_backup_last_attempt_success gauge
haconf_backup_last_attempt_success{kind="differential"} 0
haconf_backup_last_attempt_success{kind="drill"} 1
haconf_backup_last_attempt_success{kind="full"} 1
# HELP haconf_backup_last_attempt_timestamp_seconds When the scheduler last started the job, in Unix time.
# TYPE haconf_backup_last_attempt_timestamp_seconds gauge
haconf_backup_last_attempt_timestamp_seconds{kind="differential"} ` + unix(at.Add(24*time.Hour)) + `
haconf_backup_last_attempt_timestamp_seconds{kind="drill"} ` + unix(at.Add(27*time.Hour)) + `
haconf_backup_last_attempt_timestamp_seconds{kind="full"} ` + unix(at) + `
# HELP haconf_backup_last_size_bytes Size of the newest complete backup of the kind.
# TYPE haconf_backup_last_size_bytes gauge
haconf_backup_last_size_bytes{kind="differential"} 10
haconf_backup_last_size_bytes{kind="full"} 2048
# HELP haconf_backup_last_success_timestamp_seconds When the job last succeeded, in Unix time (0: never); a full or differential backup taken by hand counts.
# TYPE haconf_backup_last_success_timestamp_seconds gauge
haconf_backup_last_success_timestamp_seconds{kind="differential"} ` + unix(at.Add(time.Hour)) + `
haconf_backup_last_success_timestamp_seconds{kind="drill"} ` + unix(at.Add(27*time.Hour)) + `
haconf_backup_last_success_timestamp_seconds{kind="full"} ` + unix(at.Add(30*time.Hour)) + `
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.CollectAndLint(m); err != nil || len(problems) != 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}

	// Neither scheduled nor ever run: nothing about the drill.
	cfg.Drill = ""
	other := Repository{Dir: t.TempDir()}
	if n := testutil.CollectAndCount(Metrics{Repo: other, Config: cfg}, "haconf_backup_last_success_timestamp_seconds"); n != 2 {
		t.Fatalf("%d last_success series, want full and differential only", n)
	}
}

// Each configured copy target: its last copy run, and the age of the
// oldest backup it is not known to hold; a target never copied to lags by
// the age of the oldest backup.
func TestCopyMetrics(t *testing.T) {
	repo := Repository{Dir: t.TempDir()}
	at := time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)
	writeManifest(t, repo, Full, at)
	writeManifest(t, repo, Differential, at.Add(24*time.Hour))
	targets := []CopyTarget{{Name: "vault"}, {Name: "peer"}}
	// vault got the full, then failed to copy the differential.
	ok := &CopyResult{Target: "vault", UpTo: newID(Full, at), listed: true}
	if err := recordCopy(repo, targets, ok, at.Add(time.Hour), at.Add(2*time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	if err := recordCopy(repo, targets, &CopyResult{Target: "vault"}, at.Add(25*time.Hour), at.Add(25*time.Hour), errors.New("connect: no route to host")); err != nil {
		t.Fatal(err)
	}
	now := at.Add(27 * time.Hour)
	m := Metrics{Repo: repo, Config: Config{Copies: targets}, now: func() time.Time { return now }}
	want := `
# HELP haconf_backup_copy_lag_seconds Age of the oldest complete backup here that the off-host target is not known to hold (0: none); it grows until a copy run brings the target up to date.
# TYPE haconf_backup_copy_lag_seconds gauge
haconf_backup_copy_lag_seconds{target="peer"} ` + strconv.Itoa(int((27 * time.Hour).Seconds())) + `
haconf_backup_copy_lag_seconds{target="vault"} ` + strconv.Itoa(int((3 * time.Hour).Seconds())) + `
# HELP haconf_backup_copy_last_attempt_success 1 when the last copy run to the off-host target succeeded, 0 when it failed.
# TYPE haconf_backup_copy_last_attempt_success gauge
haconf_backup_copy_last_attempt_success{target="vault"} 0
# HELP haconf_backup_copy_last_attempt_timestamp_seconds When a copy run to the off-host target last started, in Unix time.
# TYPE haconf_backup_copy_last_attempt_timestamp_seconds gauge
haconf_backup_copy_last_attempt_timestamp_seconds{target="vault"} ` + unix(at.Add(25*time.Hour)) + `
# HELP haconf_backup_copy_last_success_timestamp_seconds When a copy run to the off-host target last succeeded, in Unix time (0: never).
# TYPE haconf_backup_copy_last_success_timestamp_seconds gauge
haconf_backup_copy_last_success_timestamp_seconds{target="peer"} 0
haconf_backup_copy_last_success_timestamp_seconds{target="vault"} ` + unix(at.Add(2*time.Hour)) + `
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(want), "haconf_backup_copy_lag_seconds", "haconf_backup_copy_last_attempt_success",
		"haconf_backup_copy_last_attempt_timestamp_seconds", "haconf_backup_copy_last_success_timestamp_seconds"); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.CollectAndLint(m); err != nil || len(problems) != 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	// A target no longer configured is dropped from copies.json.
	if err := recordCopy(repo, targets[1:], &CopyResult{Target: "peer"}, now, now, nil); err != nil {
		t.Fatal(err)
	}
	if st, _ := ReadCopyState(repo); len(st) != 1 || st["peer"].LastSuccess.IsZero() {
		t.Fatalf("state: %+v", st)
	}
}
