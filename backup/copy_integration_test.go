package backup

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/internal/testenv"
)

// TestCopyOverSSH is the off-host copy end to end, against OpenSSH's sshd
// (an sftp-only account, as a backup host gives) and real MariaDB servers:
// a full and a differential are copied, a second run copies nothing,
// unknown and changed host keys and a key the target does not accept are
// refused, a truncated file on the target is found (by a restore's fetch,
// before anything is loaded, and by the next copy, which repairs it), and
// with the local repository deleted the chain is fetched from the target
// and restored into an empty server, equal to the source at the
// differential's snapshot.
func TestCopyOverSSH(t *testing.T) {
	ctx := context.Background()
	sshd := testenv.StartSSHD(t)
	src := startServer(t, true)
	sdb := connect(t, src)
	seed(t, sdb)
	repo := Repository{Dir: filepath.Join(t.TempDir(), "repo")}
	opts := Options{DB: src.Config, Repo: repo, Parallel: 2, ChunkRows: 1000, Checksums: true, Retention: 2, Users: true}
	full, err := Run(ctx, Full, opts)
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, sdb,
		"UPDATE nova.instances SET host = 'moved' WHERE id % 89 = 0",
		"DELETE FROM nova.instances WHERE id % 103 = 0",
		"CREATE TABLE nova.migrations (id INT PRIMARY KEY, status VARCHAR(20))",
		"INSERT INTO nova.migrations VALUES (1, 'done'), (2, 'error')",
	)
	diff, err := Run(ctx, Differential, opts)
	if err != nil {
		t.Fatal(err)
	}
	live := checksumsOf(t, src, diff.Tables)

	target := CopyTarget{Name: "vault", Host: sshd.Host, Port: sshd.Port, User: sshd.User, Path: filepath.Join(sshd.Dir, "haconf", "ctl1"),
		IdentityFile: sshd.IdentityFile, KnownHostsFile: sshd.KnownHostsFile}
	co := CopyOptions{Repo: repo, Targets: []CopyTarget{target}, Retention: 2}
	res, err := copyOnce(t, ctx, co)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Copied, []string{full.ID, diff.ID}) || res.UpTo != diff.ID {
		t.Fatalf("copy: %+v", res)
	}
	onTarget := Repository{Dir: target.Path}
	for _, id := range res.Copied {
		if p, err := onTarget.Verify(ctx, id); err != nil || len(p) > 0 {
			t.Fatalf("verify %s where the target keeps it: %v %v", id, p, err)
		}
	}

	t.Run("a second run copies nothing", func(t *testing.T) {
		res, err := copyOnce(t, ctx, co)
		if err != nil || len(res.Copied) != 0 || res.Bytes != 0 || !slices.Equal(res.Present, []string{full.ID, diff.ID}) {
			t.Fatalf("second run: %+v %v", res, err)
		}
	})

	otherKey := func(t *testing.T) (authorizedKey string, privatePEM []byte) {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		sp, err := ssh.NewPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		block, err := ssh.MarshalPrivateKey(priv, "")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))), pem.EncodeToMemory(block)
	}
	t.Run("host keys", func(t *testing.T) {
		dir := t.TempDir()
		other, _ := otherKey(t)
		for _, c := range []struct {
			name, knownHosts string
			want             error
			says             string
		}{
			{"unknown", "", ErrHostKeyUnknown, "ssh-keyscan -p " + strconv.Itoa(sshd.Port) + " 127.0.0.1"},
			{"unknown, another host's key listed", "[127.0.0.1]:1 " + other + "\n", ErrHostKeyUnknown, "has no key for it"},
			{"changed", "[127.0.0.1]:" + strconv.Itoa(sshd.Port) + " " + other + "\n", ErrHostKeyChanged, "someone may be in between"},
		} {
			kh := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_"))
			if err := os.WriteFile(kh, []byte(c.knownHosts), 0o600); err != nil {
				t.Fatal(err)
			}
			o := co
			o.Targets = []CopyTarget{target}
			o.Targets[0].KnownHostsFile = kh
			res, err := copyOnce(t, ctx, o)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) || len(res.Copied) != 0 {
				t.Errorf("%s: %v, want %v saying %q", c.name, err, c.want, c.says)
			}
		}
		st, _ := ReadCopyState(repo)
		if s := st["vault"]; !strings.Contains(s.LastError, "host key") || s.UpTo != diff.ID {
			t.Fatalf("state after a refused host: %+v", s)
		}
	})

	t.Run("a key the target does not accept", func(t *testing.T) {
		_, priv := otherKey(t)
		key := filepath.Join(t.TempDir(), "id")
		if err := os.WriteFile(key, priv, 0o600); err != nil {
			t.Fatal(err)
		}
		o := co
		o.Targets = []CopyTarget{target}
		o.Targets[0].IdentityFile = key
		if _, err := copyOnce(t, ctx, o); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("a truncated file on the target", func(t *testing.T) {
		victim := full.Tables[0].Files[0]
		path := onTarget.Path(full.ID, victim)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, st.Size()/2); err != nil {
			t.Fatal(err)
		}
		_, _, err = Fetch(ctx, FetchOptions{Target: target, Dir: filepath.Join(t.TempDir(), "staging")})
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), full.ID+"/"+victim+": size") {
			t.Fatalf("fetch: %v", err)
		}
		res, err := copyOnce(t, ctx, co)
		if err != nil || !slices.Equal(res.Replaced, []string{full.ID}) {
			t.Fatalf("repair: %+v %v", res, err)
		}
		if p, err := onTarget.Verify(ctx, full.ID); err != nil || len(p) > 0 {
			t.Fatalf("after the repair: %v %v", p, err)
		}
	})

	t.Run("restore from the target with the local repository gone", func(t *testing.T) {
		if err := os.RemoveAll(repo.Dir); err != nil {
			t.Fatal(err)
		}
		staging, chain, err := Fetch(ctx, FetchOptions{Target: target, Dir: filepath.Join(t.TempDir(), "staging")})
		if err != nil || !slices.Equal(chain, []string{full.ID, diff.ID}) {
			t.Fatalf("fetch: %v %v", chain, err)
		}
		tgt := startServer(t, false)
		rr, err := Restore(ctx, RestoreOptions{Target: tgt.Config, Repo: staging, Runner: runner.Exec{}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rr.Chain, chain) {
			t.Fatalf("restored %v", rr.Chain)
		}
		if m := CompareTables(live, checksumsOf(t, tgt, live)); len(m) > 0 {
			t.Fatalf("restored from the target, differs from the source: %v", m)
		}
	})
}
