package backup

import (
	"context"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/internal/testenv"
)

// nodeRunner starts mariadbd in a UTS namespace of its own whose hostname
// is host: the same datadir started there is the same database on another
// node, as after a DRBD failover (@@hostname is the machine's hostname;
// report_host does not change it).
type nodeRunner struct {
	runner.Exec
	host string
}

func (r nodeRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	if name != "mariadbd" {
		return r.Exec.Run(ctx, name, args...)
	}
	return r.Exec.Run(ctx, "unshare", append([]string{"--uts", "sh", "-c", `hostname "$0" && exec "$@"`, r.host, name}, args...)...)
}

// startNode starts a scratch server with log_bin on dir's datadir (a new
// one unless reuse) as node host.
func startNode(t *testing.T, dir, host string, reuse bool) *ScratchServer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := StartScratch(ctx, ScratchOptions{Dir: dir, Runner: nodeRunner{host: host}, LogBin: true, BufferPool: "64M", Reuse: reuse})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func hostnameOf(t *testing.T, s *ScratchServer) string {
	t.Helper()
	var h string
	if err := connect(t, s).QueryRow("SELECT @@hostname").Scan(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestChainAcrossFailover: a differential continues a full taken before a
// failover (the same datadir, another hostname); a chain whose binary logs
// were purged, or a server that is not the full's, is refused with
// ErrChainBroken, and the scheduled differential job takes a full instead.
func TestChainAcrossFailover(t *testing.T) {
	testenv.RequireCommands(t, "mariadbd", "mariadb-install-db", "mariadb-binlog", "unshare")
	testenv.RequireRoot(t)
	if out, err := exec.Command("unshare", "--uts", "true").CombinedOutput(); err != nil {
		t.Skipf("no UTS namespace here: %v %s", err, out)
	}
	ctx := context.Background()
	dir := t.TempDir()
	a := startNode(t, dir, "ctl1", false)
	mustExec(t, connect(t, a),
		"CREATE DATABASE test", // what mariadb-install-db creates without --skip-test-db
		"CREATE DATABASE nova",
		"CREATE TABLE nova.instances (id INT PRIMARY KEY, host VARCHAR(20))",
		"INSERT INTO nova.instances VALUES (1, 'ctl1'), (2, 'ctl1')",
	)
	repo := Repository{Dir: t.TempDir()}
	opts := func(s *ScratchServer) Options {
		return Options{DB: s.Config, Repo: repo, Parallel: 2, Checksums: true}
	}
	full, err := Run(ctx, Full, opts(a))
	if err != nil {
		t.Fatal(err)
	}
	if full.Binlog == nil || full.Binlog.GTID == "" || full.Server.Hostname != "ctl1" {
		t.Fatalf("full: binlog %+v, server %+v", full.Binlog, full.Server)
	}
	mustExec(t, connect(t, a), "INSERT INTO nova.instances VALUES (3, 'before')")

	// Failover: the same datadir, started on "ctl2".
	a.Stop()
	b := startNode(t, dir, "ctl2", true)
	if h := hostnameOf(t, b); h != "ctl2" {
		t.Fatalf("the failed-over server's @@hostname is %q, want ctl2", h)
	}
	mustExec(t, connect(t, b), "INSERT INTO nova.instances VALUES (4, 'after')", "UPDATE nova.instances SET host = 'ctl2' WHERE id = 1")
	if p, err := Plan(ctx, Differential, opts(b)); err != nil || p.Base != full.ID {
		t.Fatalf("dry run of a differential after a failover: %+v %v", p, err)
	}
	diff, err := Run(ctx, Differential, opts(b))
	if err != nil {
		t.Fatalf("differential after a failover: %v", err)
	}
	if diff.Base != full.ID || diff.Server.Hostname != "ctl2" || len(diff.BinlogFiles) < 2 {
		t.Fatalf("differential: base %s, host %s, binlogs %v", diff.Base, diff.Server.Hostname, diff.BinlogFiles)
	}
	t.Run("restore across the failover", func(t *testing.T) {
		// A server as mariadb-install-db makes it, with its empty test
		// database: not data.
		tctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		tgt, err := StartScratch(tctx, ScratchOptions{Dir: t.TempDir(), Runner: runner.Exec{}, BufferPool: "64M", TestDB: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tgt.Stop)
		if s := schemasOf(t, connect(t, tgt)); !slices.Contains(s, "test") {
			t.Fatalf("a fresh server's databases: %v, want test among them", s)
		}
		res, err := Restore(ctx, RestoreOptions{Target: tgt.Config, Repo: repo, Runner: runner.Exec{}})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Empty) != 1 || res.Empty[0] != "test" || len(res.Existing) != 0 {
			t.Fatalf("empty %v, existing %v; want the empty test database replaced", res.Empty, res.Existing)
		}
		if m := CompareTables(diff.Tables, checksumsOf(t, tgt, diff.Tables)); len(m) > 0 {
			t.Fatalf("restored chain differs: %v", m)
		}
	})

	t.Run("another server", func(t *testing.T) {
		other := startServer(t, true)
		mustExec(t, connect(t, other), "CREATE DATABASE x", "FLUSH BINARY LOGS", "CREATE TABLE x.t (i INT)", "FLUSH BINARY LOGS")
		if _, err := Plan(ctx, Differential, opts(other)); !errors.Is(err, ErrChainBroken) {
			t.Fatalf("dry run of a differential of another server: %v, want ErrChainBroken", err)
		}
		_, err := Run(ctx, Differential, opts(other))
		if !errors.Is(err, ErrChainBroken) {
			t.Fatalf("differential of another server on this chain: %v, want ErrChainBroken", err)
		}
		t.Log(err)
	})

	t.Run("purged binary logs: the scheduled job takes a full", func(t *testing.T) {
		bdb := connect(t, b)
		mustExec(t, bdb, "FLUSH BINARY LOGS")
		var last string
		var pos int64
		if err := bdb.QueryRow("SHOW MASTER STATUS").Scan(&last, &pos, new(string), new(string)); err != nil {
			t.Fatal(err)
		}
		mustExec(t, bdb, "PURGE BINARY LOGS TO '"+last+"'", "INSERT INTO nova.instances VALUES (5, 'purged')")
		_, err := Run(ctx, Differential, opts(b))
		if !errors.Is(err, ErrBinlogPurged) || !errors.Is(err, ErrChainBroken) {
			t.Fatalf("differential after PURGE: %v, want ErrBinlogPurged", err)
		}
		s, err := NewScheduler(Config{Repository: repo.Dir, Full: "0 2 * * 0", Differential: "0 2 * * 1-6"}, Jobs(opts(b), DrillOptions{}), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RunJob(ctx, JobDifferential); err != nil {
			t.Fatalf("scheduled differential on a broken chain: %v", err)
		}
		st, err := ReadState(repo)
		if err != nil {
			t.Fatal(err)
		}
		js := st[JobDifferential]
		newFull, err := repo.Latest(Full)
		if err != nil {
			t.Fatal(err)
		}
		if newFull.ID == full.ID || js.LastResult != newFull.ID || !strings.Contains(js.LastNote, "took a full instead") || !strings.Contains(js.LastNote, "purged") {
			t.Fatalf("state %+v, newest full %s (old %s)", js, newFull.ID, full.ID)
		}
		// The next differential continues the new chain.
		mustExec(t, bdb, "INSERT INTO nova.instances VALUES (6, 'new chain')")
		if err := s.RunJob(ctx, JobDifferential); err != nil {
			t.Fatal(err)
		}
		st, _ = ReadState(repo)
		if d, err := repo.Latest(Differential); err != nil || d.Base != newFull.ID || st[JobDifferential].LastNote != "" {
			t.Fatalf("differential after the new full: %+v %v, state %+v", d, err, st[JobDifferential])
		}
	})
}
