package backup

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkg/sftp"
)

func TestPlanCopy(t *testing.T) {
	at := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	// b makes backup i (i hours after at): "F" a full, "D<j>" a
	// differential of backup j; sum tells two versions apart.
	ids := map[int]string{}
	b := func(i int, kind string, sum string) Entry {
		m := &Manifest{ID: newID(Full, at.Add(time.Duration(i)*time.Hour)), Type: Full, sum: sum}
		if kind != "F" {
			m.ID, m.Type = newID(Differential, at.Add(time.Duration(i)*time.Hour)), Differential
			m.Base = ids[int(kind[1]-'0')]
		}
		ids[i] = m.ID
		return Entry{ID: m.ID, Manifest: m}
	}
	damaged := func(e Entry) Entry {
		return Entry{ID: e.ID, Damage: ErrCorrupt}
	}
	f1, d1, f2, d2, f3, f4 := b(1, "F", "a"), b(2, "D1", "a"), b(3, "F", "a"), b(4, "D3", "a"), b(5, "F", "a"), b(6, "F", "a")
	f2edited := f2
	f2edited.Manifest = &Manifest{ID: f2.ID, Type: Full, sum: "b"}
	idsOf := func(ms []*Manifest) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name                                string
		local, remote                       []Entry
		keep                                int
		copy, replace, present, skip        []Entry
		localDamaged, damagedOnTheTargetToo []Entry
	}{
		{name: "empty target: everything, oldest first", local: []Entry{f1, d1, f2}, keep: 2,
			copy: []Entry{f1, d1, f2}},
		{name: "same manifest is there, an edited one is replaced", local: []Entry{f1, f2}, remote: []Entry{f1, f2edited}, keep: 2,
			replace: []Entry{f2}, present: []Entry{f1}},
		{name: "a damaged manifest on the target: replaced when held here, left alone otherwise",
			local: []Entry{f2, d2}, remote: []Entry{damaged(f1), damaged(f2)}, keep: 2,
			copy: []Entry{d2}, replace: []Entry{f2}, damagedOnTheTargetToo: []Entry{f1}},
		{name: "a damaged local backup is never copied", local: []Entry{damaged(f1), f2}, remote: []Entry{f1}, keep: 2,
			copy: []Entry{f2}, localDamaged: []Entry{f1}},
		{name: "retention here: only what the target keeps", local: []Entry{f1, d1, f2, d2}, keep: 1,
			copy: []Entry{f2, d2}, skip: []Entry{f1, d1}},
		{name: "the target holds newer fulls (the other node's): older ones are not copied to be dropped",
			local: []Entry{f1, f2, d2}, remote: []Entry{f3, f4}, keep: 2, skip: []Entry{f1, f2, d2}},
		{name: "the target's retention counts its own fulls too", local: []Entry{f1, f2, f4}, remote: []Entry{f3}, keep: 2,
			copy: []Entry{f4}, skip: []Entry{f1, f2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := planCopy(tc.local, tc.remote, tc.keep)
			ents := func(es []Entry) []string {
				var out []string
				for _, e := range es {
					out = append(out, e.ID)
				}
				return out
			}
			for _, c := range []struct {
				what      string
				got, want []string
			}{
				{"copy", idsOf(p.Copy), ents(tc.copy)}, {"replace", idsOf(p.Replace), ents(tc.replace)},
				{"present", idsOf(p.Present), ents(tc.present)}, {"skip", p.Skip, ents(tc.skip)},
				{"local damaged", p.LocalDamaged, ents(tc.localDamaged)}, {"damaged on the target", p.Damaged, ents(tc.damagedOnTheTargetToo)},
			} {
				if !slices.Equal(c.got, c.want) {
					t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
				}
			}
		})
	}
}

// pipeSFTP dials an SFTP server running in the test process, serving this
// machine's filesystem (the SSH layer is tested against a real sshd).
func pipeSFTP(t *testing.T) func(context.Context, CopyTarget) (*sftp.Client, func(), error) {
	return func(context.Context, CopyTarget) (*sftp.Client, func(), error) {
		cc, sc := net.Pipe()
		srv, err := sftp.NewServer(sc)
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve()
		c, err := sftp.NewClientPipe(cc, cc, sftp.UseConcurrentWrites(true))
		if err != nil {
			t.Fatal(err)
		}
		return c, func() { c.Close(); srv.Close() }, nil
	}
}

// addBackup commits a backup of kind at at into repo with a schema file
// and a data file in a subdirectory, and returns its manifest.
func addBackup(t *testing.T, repo Repository, kind Kind, base string, at time.Time) *Manifest {
	t.Helper()
	m := &Manifest{Format: FormatVersion, ID: newID(kind, at), Type: kind, Base: base, Started: at, Finished: at.Add(time.Minute)}
	commitBackup(t, repo, m, map[string]string{"schema.json": "[]", "data/nova/instances.0.tsv.s2": strings.Repeat(m.ID+"\n", 1000)})
	got, err := repo.Load(m.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func ids(ms ...*Manifest) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func listIDs(t *testing.T, r Repository) []string {
	t.Helper()
	ms, err := r.List()
	if err != nil {
		t.Fatal(err)
	}
	return ids(ms...)
}

// tmpDirs lists the .tmp- directories in dir.
func tmpDirs(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestCopy: the whole copy against a real SFTP server (in process): what
// is missing is copied and verified before it is published, a second run
// copies nothing, damage on the target is found (by size; by checksum with
// Verify) and repaired, damage found while copying publishes nothing, a
// damaged local backup is never copied, and retention applies there.
func TestCopy(t *testing.T) {
	ctx := context.Background()
	repo := Repository{Dir: filepath.Join(t.TempDir(), "repo")}
	target := CopyTarget{Name: "vault", Host: "vault.example", Port: 22, User: "haconf", Path: filepath.Join(t.TempDir(), "copies", "ctl")}
	remote := Repository{Dir: target.Path} // the target is laid out as a repository
	at := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	clock := at.Add(49 * time.Hour)
	f1 := addBackup(t, repo, Full, "", at)
	d1 := addBackup(t, repo, Differential, f1.ID, at.Add(24*time.Hour))
	f2 := addBackup(t, repo, Full, "", at.Add(48*time.Hour))
	o := CopyOptions{Repo: repo, Targets: []CopyTarget{target}, Retention: 2, dial: pipeSFTP(t), now: func() time.Time { return clock }}
	check := func(t *testing.T, got, want []string, what string) {
		t.Helper()
		if got == nil {
			got = []string{}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
	}
	verifyTarget := func(t *testing.T, want ...*Manifest) {
		t.Helper()
		check(t, listIDs(t, remote), ids(want...), "backups on the target")
		for _, m := range want {
			if p, err := remote.Verify(ctx, m.ID); err != nil || len(p) > 0 {
				t.Fatalf("verify %s on the target: %v %v", m.ID, p, err)
			}
		}
		if tmp := tmpDirs(t, remote.Dir); len(tmp) > 0 {
			t.Fatalf("temporary directories left on the target: %v", tmp)
		}
	}

	res, err := copyOnce(t, ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	check(t, res.Copied, ids(f1, d1, f2), "first run copied")
	if res.UpTo != f2.ID || res.Bytes < f1.Size()+d1.Size()+f2.Size() {
		t.Fatalf("first run: %+v", res)
	}
	verifyTarget(t, f1, d1, f2)
	for _, c := range []struct {
		path string
		mode fs.FileMode
	}{{remote.Dir, 0o700}, {remote.Path(f1.ID, ""), 0o700}, {remote.Path(f1.ID, "data"), 0o700}, {remote.Path(f1.ID, "data/nova"), 0o700}, {remote.Path(f1.ID, "schema.json"), 0o600}, {remote.Path(f1.ID, manifestName), 0o600}} {
		if st, err := os.Stat(c.path); err != nil || st.Mode().Perm() != c.mode {
			t.Errorf("%s: mode %v (%v), want %v", c.path, st.Mode().Perm(), err, c.mode)
		}
	}
	st, _ := ReadCopyState(repo)
	if s := st["vault"]; !s.LastSuccess.Equal(clock) || s.UpTo != f2.ID || s.LastError != "" {
		t.Fatalf("state: %+v", st)
	}
	if since, err := Uncopied(repo, st["vault"]); err != nil || !since.IsZero() {
		t.Fatalf("uncopied since %v %v, want none", since, err)
	}

	t.Run("a second run copies nothing", func(t *testing.T) {
		res, err := copyOnce(t, ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		check(t, res.Copied, []string{}, "copied")
		check(t, res.Present, ids(f1, d1, f2), "present")
		if res.Bytes != 0 {
			t.Fatalf("sent %d bytes", res.Bytes)
		}
	})

	t.Run("a truncated file on the target is copied again", func(t *testing.T) {
		p := remote.Path(d1.ID, "data/nova/instances.0.tsv.s2")
		if err := os.Truncate(p, 10); err != nil {
			t.Fatal(err)
		}
		res, err := copyOnce(t, ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		check(t, res.Replaced, ids(d1), "replaced")
		verifyTarget(t, f1, d1, f2)
	})

	t.Run("a changed byte on the target is found by Verify", func(t *testing.T) {
		p := remote.Path(f1.ID, "data/nova/instances.0.tsv.s2")
		damage(t, p, flipMiddle)
		res, err := copyOnce(t, ctx, o)
		if err != nil || len(res.Copied) != 0 {
			t.Fatalf("without Verify only sizes are compared: %+v %v", res, err)
		}
		v := o
		v.Verify = true
		res, err = copyOnce(t, ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		check(t, res.Replaced, ids(f1), "replaced")
		verifyTarget(t, f1, d1, f2)
	})

	f3 := addBackup(t, repo, Full, "", at.Add(72*time.Hour))
	clock = at.Add(73 * time.Hour)

	t.Run("dry run", func(t *testing.T) {
		before, _ := ReadCopyState(repo)
		d := o
		d.DryRun = true
		res, err := copyOnce(t, ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		check(t, res.Copied, ids(f3), "would copy")
		check(t, res.Removed, ids(f1, d1), "would remove")
		verifyTarget(t, f1, d1, f2)
		if after, _ := ReadCopyState(repo); after["vault"] != before["vault"] {
			t.Fatalf("a dry run recorded %+v", after)
		}
	})

	t.Run("damage while copying: nothing published, retried next run", func(t *testing.T) {
		bad := o
		bad.afterUpload = func(_ CopyTarget, tmp string) error {
			return os.Truncate(filepath.Join(tmp, "data/nova/instances.0.tsv.s2"), 100)
		}
		res, err := copyOnce(t, ctx, bad)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "data/nova/instances.0.tsv.s2: size 100") || !strings.Contains(err.Error(), "not published") {
			t.Fatalf("err = %v", err)
		}
		check(t, res.Failed, ids(f3), "failed")
		// The target keeps its two fulls: the new one is not there.
		verifyTarget(t, f1, d1, f2)
		if p, err := repo.Verify(ctx, f3.ID); err != nil || len(p) > 0 {
			t.Fatalf("the local backup changed: %v %v", p, err)
		}
		st, _ := ReadCopyState(repo)
		if s := st["vault"]; s.LastError == "" || s.UpTo != f2.ID || s.LastAttempt.IsZero() {
			t.Fatalf("state after a failure: %+v", s)
		}
		if since, err := Uncopied(repo, st["vault"]); err != nil || !since.Equal(f3.Finished) {
			t.Fatalf("uncopied since %v %v, want since f3 finished", since, err)
		}

		res, err = copyOnce(t, ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		check(t, res.Copied, ids(f3), "copied")
		check(t, res.Removed, ids(f1, d1), "removed by retention")
		verifyTarget(t, f2, f3)
		st, _ = ReadCopyState(repo)
		if s := st["vault"]; s.LastError != "" || s.UpTo != f3.ID {
			t.Fatalf("state: %+v", s)
		}
	})

	t.Run("a damaged local backup is never copied", func(t *testing.T) {
		d3 := addBackup(t, repo, Differential, f3.ID, at.Add(96*time.Hour))
		damage(t, repo.Path(d3.ID, "data/nova/instances.0.tsv.s2"), flipMiddle)
		res, err := copyOnce(t, ctx, o)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "the local file "+d3.ID+"/data/nova/instances.0.tsv.s2 no longer matches") {
			t.Fatalf("err = %v", err)
		}
		check(t, res.Failed, ids(d3), "failed")
		verifyTarget(t, f2, f3)
		if err := os.RemoveAll(repo.Path(d3.ID, "")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("one copy at a time", func(t *testing.T) {
		unlock, err := repo.lock(copyLockName, ErrCopyBusy)
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		if _, err := Copy(ctx, o); !errors.Is(err, ErrCopyBusy) {
			t.Fatalf("err = %v, want ErrCopyBusy", err)
		}
		if _, err := SelectTargets(o.Targets, "tape"); !errors.Is(err, ErrNoTarget) || !strings.Contains(err.Error(), "vault") {
			t.Fatalf("unknown target: %v", err)
		}
	})

	t.Run("fetch", func(t *testing.T) {
		d3 := addBackup(t, repo, Differential, f3.ID, at.Add(96*time.Hour))
		if _, err := copyOnce(t, ctx, o); err != nil {
			t.Fatal(err)
		}
		staging := filepath.Join(t.TempDir(), "staging")
		fo := FetchOptions{Target: target, Dir: staging, dial: pipeSFTP(t)}
		got, chain, err := Fetch(ctx, fo)
		if err != nil {
			t.Fatal(err)
		}
		check(t, chain, ids(f3, d3), "chain")
		check(t, listIDs(t, got), ids(f3, d3), "fetched")
		for _, id := range chain {
			if p, err := got.Verify(ctx, id); err != nil || len(p) > 0 {
				t.Fatalf("fetched %s: %v %v", id, p, err)
			}
		}

		fo.ID, fo.Dir = f2.ID, filepath.Join(t.TempDir(), "staging")
		victim := remote.Path(f2.ID, "data/nova/instances.0.tsv.s2")
		if err := os.Truncate(victim, 7); err != nil {
			t.Fatal(err)
		}
		_, _, err = Fetch(ctx, fo)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), f2.ID+"/data/nova/instances.0.tsv.s2: size 7") {
			t.Fatalf("fetch of a truncated copy: %v", err)
		}
		if ms, _ := (Repository{Dir: fo.Dir}).List(); len(ms) != 0 || len(tmpDirs(t, fo.Dir)) != 0 {
			t.Fatalf("a damaged fetch left %v, %v", ms, tmpDirs(t, fo.Dir))
		}
		fo.ID = "20261201T020000.000Z-nope"
		if _, _, err := Fetch(ctx, fo); !errors.Is(err, ErrNotFound) {
			t.Fatalf("fetch of a backup the target lacks: %v", err)
		}
	})
}

func TestLoadIdentity(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "id")
	if err := os.WriteFile(key, []byte("not a key"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := loadIdentity(key); err == nil || !strings.Contains(err.Error(), "readable by group or others (chmod 600") {
		t.Fatalf("group-readable key: %v", err)
	}
	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadIdentity(key); err == nil || !strings.Contains(err.Error(), "not a private key") || strings.Contains(err.Error(), "not a key\"") {
		t.Fatalf("garbage key: %v", err)
	}
	if _, err := loadIdentity(filepath.Join(dir, "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing key: %v", err)
	}
}

// The scheduler copies after each full or differential job that ran (a
// failed one too), in the background, never two copies at once: one asked
// for meanwhile follows the running one; Stop waits for it.
func TestSchedulerCopiesAfterBackups(t *testing.T) {
	ctx := context.Background()
	active := true
	started := make(chan struct{}, 4)
	release := make(chan struct{})
	var running, most, runs atomic.Int32
	jobs := map[Job]JobFunc{
		JobFull:         func(context.Context) (JobResult, error) { return JobResult{Result: "F"}, nil },
		JobDifferential: func(context.Context) (JobResult, error) { return JobResult{}, errors.New("disk full") },
		JobDrill:        func(context.Context) (JobResult, error) { return JobResult{Result: "pass"}, nil },
		JobCopy: func(context.Context) (JobResult, error) {
			n := running.Add(1)
			if n > most.Load() {
				most.Store(n)
			}
			runs.Add(1)
			started <- struct{}{}
			<-release
			running.Add(-1)
			return JobResult{Result: "vault: 1 copied, 0 failed"}, nil
		},
	}
	s, err := NewScheduler(Config{Repository: t.TempDir(), Full: "0 2 * * 0", Differential: "0 2 * * 1-6", Drill: "@daily"}, jobs, func() bool { return active }, nil)
	if err != nil {
		t.Fatal(err)
	}
	copying := func() bool { s.copyMu.Lock(); defer s.copyMu.Unlock(); return s.copying }
	_ = s.RunJob(ctx, JobDrill)
	active = false
	_ = s.RunJob(ctx, JobFull) // skipped: not the active node
	active = true
	if copying() {
		t.Fatal("a drill or a skipped job started a copy")
	}
	if err := s.RunJob(ctx, JobFull); err != nil {
		t.Fatal(err)
	}
	<-started
	// While it copies, a failed differential and another full: one more
	// copy, after this one.
	if err := s.RunJob(ctx, JobDifferential); err == nil {
		t.Fatal("the failing differential succeeded")
	}
	_ = s.RunJob(ctx, JobFull)
	release <- struct{}{}
	<-started
	close(release)
	s.Stop()
	if runs.Load() != 2 || most.Load() != 1 || copying() {
		t.Fatalf("%d copies, at most %d at once, copying %v; want 2, 1 at a time, none left", runs.Load(), most.Load(), copying())
	}
}

// copyOnce runs Copy to o's one target and returns its result.
func copyOnce(t *testing.T, ctx context.Context, o CopyOptions) (CopyResult, error) {
	t.Helper()
	res, err := Copy(ctx, o)
	if len(res) != 1 {
		t.Fatalf("%d results: %v", len(res), err)
	}
	return res[0], err
}
