package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/backup"
	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/testenv"
)

// writeBackup puts a complete full backup with one file into repo, as a run
// leaves it (manifest, then its checksum), and returns its id.
func writeBackup(t *testing.T, repo string, at time.Time) string {
	t.Helper()
	id := at.UTC().Format("20060102T150405.000Z") + "-full"
	schema := []byte("[]")
	sum := sha256.Sum256(schema)
	m := backup.Manifest{Format: backup.FormatVersion, ID: id, Type: backup.Full, Started: at, Finished: at.Add(time.Minute),
		Files: []backup.FileInfo{{Path: "schema.json", Size: int64(len(schema)), SHA256: hex.EncodeToString(sum[:])}}}
	data, _ := json.MarshalIndent(m, "", "  ")
	msum := sha256.Sum256(data)
	dir := filepath.Join(repo, id)
	for name, b := range map[string][]byte{"schema.json": schema, "manifest.json": data, "manifest.json.sha256": []byte(hex.EncodeToString(msum[:]) + "  manifest.json\n")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func TestBackupListAndVerifyShowDamage(t *testing.T) {
	repo := t.TempDir()
	noConfig := filepath.Join(t.TempDir(), "haconf.yaml") // a machine that only holds a repository
	at := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	damaged := writeBackup(t, repo, at)
	intact := writeBackup(t, repo, at.Add(24*time.Hour))
	mpath := filepath.Join(repo, damaged, "manifest.json")
	data, _ := os.ReadFile(mpath)
	if err := os.WriteFile(mpath, data[:len(data)/3], 0o600); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := haconf(t, "backup", "list", "--repo", repo, "-c", noConfig)
	if code != cli.ExitOK || !strings.Contains(out, "DAMAGED: manifest.json does not match") || !strings.HasPrefix(strings.Split(out, "\n")[1], damaged+"  full ") || !strings.Contains(out, intact) {
		t.Fatalf("list: exit %d\n%s%s", code, out, errOut)
	}
	out, _, _ = haconf(t, "backup", "list", "--repo", repo, "-c", noConfig, "-o", "json")
	var doc struct {
		Backups []struct {
			ID     string `json:"id"`
			Intact bool   `json:"intact"`
			Damage string `json:"damage"`
		} `json:"backups"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Backups) != 2 || doc.Backups[0].Intact || doc.Backups[0].Damage == "" || !doc.Backups[1].Intact {
		t.Fatalf("list -o json: %v\n%s", err, out)
	}

	out, errOut, code = haconf(t, "backup", "verify", "--repo", repo, "-c", noConfig)
	if code != cli.ExitFailure || !strings.Contains(out, damaged+": CORRUPT manifest.json") || !strings.Contains(out, intact+": ok") ||
		!strings.Contains(out, "1 of 2 backups damaged") || !strings.Contains(errOut, damaged) {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errOut)
	}

	// --to without /etc/haconf/mysql.cnf: the restore gets as far as the
	// (unreachable) target instead of asking for the credentials file.
	_, errOut, code = haconf(t, "backup", "restore", "--repo", repo, "-c", noConfig, "--to", "root@tcp(127.0.0.1:1)/", "--dry-run")
	if code == cli.ExitOK || strings.Contains(errOut, "credentials file") || !strings.Contains(errOut, "unreachable") {
		t.Fatalf("restore --to without a credentials file: exit %d\n%s", code, errOut)
	}
	_, errOut, _ = haconf(t, "backup", "restore", "--repo", repo, "-c", noConfig, "--to", "root@tcp(127.0.0.1:1)/", "--dry-run", "--credentials", filepath.Join(repo, "absent.cnf"))
	if !strings.Contains(errOut, "credentials file") {
		t.Fatalf("restore --credentials naming a missing file: %s", errOut)
	}
}

// backup copy, list --target and restore --from against a private sshd:
// what the CLI prints, that a second copy copies nothing, that --dry-run
// and an unknown target change nothing, and that a damaged copy on the
// target stops a restore before it reaches the server.
func TestBackupCopyCommands(t *testing.T) {
	sshd := testenv.StartSSHD(t)
	repo := filepath.Join(t.TempDir(), "repo")
	at := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	first, second := writeBackup(t, repo, at), writeBackup(t, repo, at.Add(24*time.Hour))
	targetDir := filepath.Join(sshd.Dir, "ctl1")
	cfg := writeConfig(t, strings.NewReplacer(
		"repository: /var/backups/haconf", "repository: "+repo,
		"host: 192.0.2.50", "host: 127.0.0.1\n      port: "+strconv.Itoa(sshd.Port),
		"user: haconf ", "user: "+sshd.User+" ",
		"path: /srv/backups/openstack-ctl", "path: "+targetDir,
		"identity_file: /etc/haconf/backup-copy.key", "identity_file: "+sshd.IdentityFile,
		"known_hosts_file: /etc/haconf/backup-copy.known_hosts", "known_hosts_file: "+sshd.KnownHostsFile,
	).Replace(string(config.Example())))

	out, errOut, code := haconf(t, "backup", "copy", "--dry-run", "-c", cfg)
	if code != cli.ExitOK || !strings.Contains(out, "vault ("+sshd.User+"@127.0.0.1:") || !strings.Contains(out, "would copy 2") || !strings.Contains(out, "would copy: "+first+", "+second) {
		t.Fatalf("copy --dry-run: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(targetDir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a dry run created the target directory: %v", err)
	}
	out, errOut, code = haconf(t, "backup", "copy", "-c", cfg, "-o", "json")
	var doc struct {
		Targets []struct {
			Target  string   `json:"target"`
			Copied  []string `json:"copied"`
			Present []string `json:"present"`
			UpTo    string   `json:"up_to"`
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(out), &doc); code != cli.ExitOK || err != nil || len(doc.Targets) != 1 || len(doc.Targets[0].Copied) != 2 || doc.Targets[0].UpTo != second {
		t.Fatalf("copy -o json: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	out, errOut, code = haconf(t, "backup", "copy", "-c", cfg, "--target", "vault")
	if code != cli.ExitOK || !strings.Contains(out, "copied 0 (0 B), 2 already there") {
		t.Fatalf("second copy: exit %d\n%s%s", code, out, errOut)
	}
	_, errOut, code = haconf(t, "backup", "copy", "-c", cfg, "--target", "tape")
	if code != cli.ExitUsage || !strings.Contains(errOut, `no such copy target: "tape" (backup.copies lists vault)`) {
		t.Fatalf("unknown target: exit %d\n%s", code, errOut)
	}
	out, errOut, code = haconf(t, "backup", "list", "-c", cfg, "--target", "vault")
	if code != cli.ExitOK || !strings.Contains(out, first+"  full ") || !strings.Contains(out, second+"  full ") {
		t.Fatalf("list --target: exit %d\n%s%s", code, out, errOut)
	}

	// Restore from the target: fetched and verified, then the (here
	// unreachable) server; the staging directory is removed.
	out, errOut, code = haconf(t, "backup", "restore", "-c", cfg, "--from", "vault", "--to", "root@tcp(127.0.0.1:1)/", "--dry-run")
	if code == cli.ExitOK || !strings.Contains(out, "fetched "+second+" from vault") || !strings.Contains(errOut, "unreachable") {
		t.Fatalf("restore --from: exit %d\n%s%s", code, out, errOut)
	}
	if left, _ := filepath.Glob(filepath.Join(repo, ".fetch-*")); len(left) > 0 {
		t.Fatalf("staging left behind: %v", left)
	}
	if err := os.Truncate(filepath.Join(targetDir, second, "schema.json"), 1); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = haconf(t, "backup", "restore", "-c", cfg, "--from", "vault", "--to", "root@tcp(127.0.0.1:1)/", "--dry-run")
	if code == cli.ExitOK || strings.Contains(out, "fetched") || !strings.Contains(errOut, second+"/schema.json: size 1, manifest says 2: nothing was restored") || strings.Contains(errOut, "unreachable") {
		t.Fatalf("restore --from a damaged copy: exit %d\n%s%s", code, out, errOut)
	}

	// An unknown host key: refused, exit 1, and the local repository as it was.
	if err := os.WriteFile(sshd.KnownHostsFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = haconf(t, "backup", "copy", "-c", cfg)
	if code != cli.ExitFailure || !strings.Contains(out, "vault (") || !strings.Contains(out, "FAILED, nothing copied") || !strings.Contains(errOut, "host key is not in known_hosts_file") {
		t.Fatalf("unknown host key: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = haconf(t, "backup", "verify", "-c", cfg)
	if code != cli.ExitOK || !strings.Contains(out, first+": ok") || !strings.Contains(out, second+": ok") {
		t.Fatalf("local repository after failed copies: exit %d\n%s", code, out)
	}
}
