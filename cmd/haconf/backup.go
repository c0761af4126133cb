package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	drv "github.com/go-sql-driver/mysql"
	"github.com/spf13/cobra"

	"github.com/haconf/haconf/backup"
	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/mysql"
)

func newBackupCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Take, list, verify, copy off-host, restore and prove MariaDB backups",
		Long: `Logical backups of MariaDB taken from one consistent snapshot by parallel
readers, compressed (s2 or zstd) and checksummed (SHA-256) file by file, with a
manifest written last. Differentials are the binary log since the full.
Every restore checks every checksum and row count; a drill restores the
newest chain into a scratch MariaDB and compares each table with the source
snapshot. Complete backups are copied over SFTP to the off-host targets of
backup.copies, verified there, and can be restored from them.

The repository and the schedule come from the backup: section of
haconf.yaml; the password from MYSQL_PWD, --credentials FILE or
mysql.credentials_file ([client] password=), never from the command line.
With --dsn or --to the credentials file is optional: a machine that only
holds a repository needs no /etc/haconf/mysql.cnf.`,
		Example: `  haconf backup run --type full
  haconf backup run --type differential
  haconf backup list -o json
  haconf backup verify
  haconf backup copy --dry-run
  haconf backup restore --to 'root@tcp(10.0.0.9:3306)/' --dry-run
  haconf backup restore --to 'root@tcp(10.0.0.9:3306)/' --from vault
  haconf backup drill`,
	}
	cmd.PersistentFlags().StringVar(&g.backupCredentials, "credentials", "",
		"client option file ([client] user=, password=; mode 0600, must exist); MYSQL_PWD wins when set (default mysql.credentials_file, which --dsn and --to do not need)")
	cmd.AddCommand(newBackupRunCmd(g), newBackupListCmd(g), newBackupVerifyCmd(g), newBackupCopyCmd(g), newBackupRestoreCmd(g), newBackupDrillCmd(g))
	return cmd
}

// backupEnv is the configuration every backup command starts from.
type backupEnv struct {
	cfg   backup.Config
	mysql mysql.Config
}

// loadBackupEnv reads haconf.yaml; without one, the defaults apply so that
// the commands work on a machine that only holds a repository.
func (g *globals) loadBackupEnv() (*backupEnv, error) {
	c, err := g.loadConfig()
	if errors.Is(err, fs.ErrNotExist) {
		e := &backupEnv{}
		e.cfg.SetDefaults()
		e.mysql.SetDefaults()
		return e, nil
	}
	if err != nil {
		return nil, err
	}
	return &backupEnv{cfg: c.Backup, mysql: c.MySQL}, nil
}

// dsn resolves a DSN flag (or the local server) with the password from
// MYSQL_PWD or a credentials file: --credentials when given (it must
// exist), else mysql.credentials_file, which an explicit DSN does not
// need (a machine that only holds a repository has none).
func (e *backupEnv) dsn(flag, credentials string) (*drv.Config, error) {
	cr := backup.Credentials{File: e.mysql.CredentialsFile}
	if credentials != "" {
		cr = backup.Credentials{File: credentials, Required: true}
	}
	if flag != "" {
		return backup.ResolveDSN(flag, cr)
	}
	// The local server: the credentials file (or MYSQL_PWD) is the one
	// source of the password, so it must exist.
	cfg, err := backup.ResolveDSN("", cr)
	if err != nil {
		return nil, err
	}
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(e.mysql.Port))
	return cfg, nil
}

// parallel is a --parallel flag, or backup.parallel when it is not set.
func (e *backupEnv) parallel(flag int) int {
	if flag > 0 {
		return flag
	}
	return e.cfg.Parallel
}

func (e *backupEnv) repo(flag string) backup.Repository {
	if flag != "" {
		return backup.Repository{Dir: flag}
	}
	return backup.Repository{Dir: e.cfg.Repository}
}

// targets are the copy targets a --target or --from flag selects (every
// target for ""). None configured is the configuration's error, a name
// that is not configured a usage error.
func (e *backupEnv) targets(name string) ([]backup.CopyTarget, error) {
	if len(e.cfg.Copies) == 0 {
		return nil, cli.WithCode(cli.ExitConfig, fmt.Errorf("%w: backup.copies in haconf.yaml lists no off-host target", backup.ErrNoTarget))
	}
	ts, err := backup.SelectTargets(e.cfg.Copies, name)
	return ts, cli.UsageError(err)
}

// target is the one copy target a --target or --from flag names.
func (e *backupEnv) target(name string) (backup.CopyTarget, error) {
	ts, err := e.targets(name)
	if err != nil {
		return backup.CopyTarget{}, err
	}
	return ts[0], nil
}

type backupRunOptions struct {
	kind      string
	dsn       string
	repo      string
	parallel  int
	users     bool
	files     []string
	dryRun    bool
	checksums bool
	output    string
}

func newBackupRunCmd(g *globals) *cobra.Command {
	o := &backupRunOptions{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Take a full or differential backup now",
		Long: `Takes a backup under the repository lock (a second run fails at once) and,
after a full, removes the fulls beyond backup.retention.fulls with their
differentials. An interrupted run leaves nothing that list would show.`,
		Example: `  haconf backup run --type full
  haconf backup run --type differential --repo /srv/haconf/backups
  MYSQL_PWD=... haconf backup run --type full --dsn 'backup@tcp(127.0.0.1:3306)/' --users
  haconf backup run --type full --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			kind := backup.Kind(o.kind)
			env, err := g.loadBackupEnv()
			if err != nil {
				return err
			}
			db, err := env.dsn(o.dsn, g.backupCredentials)
			if err != nil {
				return err
			}
			opts := backup.Options{
				DB: db, Repo: env.repo(o.repo), Parallel: env.parallel(o.parallel), Databases: env.cfg.Databases,
				Users: env.cfg.Users || o.users, ConfigFiles: append(append([]string(nil), env.cfg.Files...), o.files...),
				Compression: env.cfg.Compression, Retention: env.cfg.Retention.Fulls, Checksums: o.checksums || (env.cfg.DifferentialChecksums != nil && *env.cfg.DifferentialChecksums),
				Logger: g.logger, Progress: &backup.Progress{},
			}
			if o.dryRun {
				p, err := backup.Plan(cmd.Context(), kind, opts)
				if err != nil {
					return err
				}
				if o.output == "json" {
					return cli.WriteJSON(cmd.OutOrStdout(), "haconf.backup.plan/v1", p)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "would take a %s backup of %s (%s, log_bin %v) into %s: %d databases, %d tables, ~%d rows, ~%s of data",
					p.Type, backup.Where(db), p.Server.Version, p.LogBin, p.Repo, len(p.Databases), p.Tables, p.EstRows, backupBytes(p.EstBytes))
				if p.Base != "" {
					fmt.Fprintf(cmd.OutOrStdout(), ", relative to %s", p.Base)
				}
				fmt.Fprintln(cmd.OutOrStdout())
				return nil
			}
			stop := showBackupProgress(cmd, opts.Progress)
			m, err := backup.Run(cmd.Context(), kind, opts)
			stop()
			if err != nil {
				return err
			}
			if o.output == "json" {
				return cli.WriteJSON(cmd.OutOrStdout(), "haconf.backup.run/v1", summary(m))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backup %s complete: %s, %d tables, %s in %s, binlog %s\n",
				m.ID, m.Type, len(m.Tables), backupBytes(m.Size()), m.Duration().Round(time.Millisecond), m.Binlog)
			return nil
		},
	}
	f := cmd.Flags()
	cli.StringEnumFlag(cmd, &o.kind, "type", "", "", []string{string(backup.Full), string(backup.Differential)}, "backup type (required)")
	f.StringVar(&o.dsn, "dsn", "", "server to back up, without password (default 127.0.0.1 and mysql.port)")
	f.StringVar(&o.repo, "repo", "", "repository directory (default backup.repository)")
	f.IntVar(&o.parallel, "parallel", 0, "connections reading at once (default backup.parallel)")
	f.BoolVar(&o.users, "users", false, "also save accounts and grants")
	f.StringSliceVar(&o.files, "file", nil, "extra configuration file or directory to archive (repeatable)")
	f.BoolVar(&o.checksums, "checksums", false, "differential: also record every table's checksum for the drill (a server-side scan)")
	f.BoolVar(&o.dryRun, "dry-run", false, "connect and say what would be backed up; write nothing")
	cli.OutputFlag(cmd, &o.output, "text", "json")
	_ = cmd.MarkFlagRequired("type")
	return cmd
}

// backupSummary is one line of `backup list`.
type backupSummary struct {
	ID       string            `json:"id"`
	Type     backup.Kind       `json:"type"`
	Base     string            `json:"base,omitempty"`
	Finished time.Time         `json:"finished"`
	Seconds  float64           `json:"duration_seconds"`
	Bytes    int64             `json:"bytes"`
	Tables   int               `json:"tables"`
	Binlog   *backup.BinlogPos `json:"binlog,omitempty"`
	Server   string            `json:"server"`
	// Intact is false when the manifest cannot be trusted (missing,
	// truncated, edited, unparsable); Damage says why. list reads only
	// the manifests: verify reads every file.
	Intact bool   `json:"intact"`
	Damage string `json:"damage,omitempty"`
}

func summary(m *backup.Manifest) backupSummary {
	return backupSummary{ID: m.ID, Type: m.Type, Base: m.Base, Finished: m.Finished, Seconds: m.Duration().Seconds(),
		Bytes: m.Size(), Tables: len(m.Tables), Binlog: m.Binlog, Server: m.Server.Hostname, Intact: true}
}

// damagedSummary is the line of a backup whose manifest cannot be read;
// its type comes from its name.
func damagedSummary(e backup.Entry) backupSummary {
	s := backupSummary{ID: e.ID, Damage: strings.TrimPrefix(e.Damage.Error(), backup.ErrCorrupt.Error()+": "+e.ID+": ")}
	switch {
	case strings.HasSuffix(e.ID, "-full"):
		s.Type = backup.Full
	case strings.HasSuffix(e.ID, "-diff"):
		s.Type = backup.Differential
	}
	return s
}

func newBackupListCmd(g *globals) *cobra.Command {
	var repo, target, output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the backups, oldest first, the damaged ones marked",
		Long: `Lists every backup directory of the repository, oldest first. A backup whose
manifest is missing, truncated, edited (it no longer matches
manifest.json.sha256) or unparsable is listed as DAMAGED with the reason,
never hidden; list reads only the manifests, verify reads every file.
Interrupted runs (.tmp- directories) are not backups and are not listed.
--target lists what an off-host copy target (backup.copies) holds instead.`,
		Example: "  haconf backup list\n  haconf backup list -o json --repo /srv/haconf/backups\n  haconf backup list --target vault",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := g.loadBackupEnv()
			if err != nil {
				return err
			}
			var all []backup.Entry
			if target != "" {
				t, terr := env.target(target)
				if terr != nil {
					return terr
				}
				all, err = backup.ListTarget(cmd.Context(), t)
			} else {
				all, err = env.repo(repo).Scan()
			}
			if err != nil {
				return err
			}
			out := []backupSummary{}
			for _, e := range all {
				if e.Damage != nil {
					out = append(out, damagedSummary(e))
				} else {
					out = append(out, summary(e.Manifest))
				}
			}
			if output == "json" {
				return cli.WriteJSON(cmd.OutOrStdout(), "haconf.backup.list/v1", map[string]any{"backups": out})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTYPE\tBASE\tFINISHED\tDURATION\tSIZE\tTABLES\tBINLOG")
			for _, s := range out {
				if !s.Intact {
					fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\tDAMAGED: %s\n", s.ID, backupDash(string(s.Type)), s.Damage)
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1fs\t%s\t%d\t%s\n", s.ID, s.Type, backupDash(s.Base), s.Finished.Format(time.RFC3339), s.Seconds, backupBytes(s.Bytes), s.Tables, s.Binlog)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&repo, "repo", "", "repository directory (default backup.repository)")
	cmd.Flags().StringVar(&target, "target", "", "list the backups on this off-host copy target (a backup.copies name) instead")
	cmd.MarkFlagsMutuallyExclusive("repo", "target")
	cli.OutputFlag(cmd, &output, "text", "json")
	return cmd
}

func newBackupVerifyCmd(g *globals) *cobra.Command {
	var repo, output string
	cmd := &cobra.Command{
		Use:   "verify [ID]",
		Short: "Re-read every file of a backup (default: all) and check its SHA-256",
		Long: `Reads every file back and compares its size and SHA-256 with the manifest, and
the manifest with manifest.json.sha256. Without an ID every backup directory
is verified, those with a damaged manifest included. Each damaged file is
named. Exits 1 if any backup is damaged.`,
		Example: "  haconf backup verify\n  haconf backup verify 20261121T020000.000Z-full",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := g.loadBackupEnv()
			if err != nil {
				return err
			}
			r := env.repo(repo)
			var ids []string
			if len(args) == 1 {
				ids = args
			} else {
				all, err := r.Scan()
				if err != nil {
					return err
				}
				for _, e := range all {
					ids = append(ids, e.ID)
				}
			}
			problems := []backup.Problem{}
			for _, id := range ids {
				p, err := r.Verify(cmd.Context(), id)
				if err != nil {
					return err
				}
				problems = append(problems, p...)
				if output != "json" {
					if len(p) == 0 {
						fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", id)
					}
					for _, x := range p {
						fmt.Fprintf(cmd.OutOrStdout(), "%s: CORRUPT %s: %s\n", id, x.Path, x.Reason)
					}
				}
			}
			if output == "json" {
				if err := cli.WriteJSON(cmd.OutOrStdout(), "haconf.backup.verify/v1", map[string]any{"backups": ids, "problems": problems}); err != nil {
					return err
				}
			}
			if len(problems) > 0 {
				var names []string
				for _, p := range problems {
					names = append(names, p.Backup+"/"+p.Path)
				}
				if output != "json" {
					damaged := map[string]bool{}
					for _, p := range problems {
						damaged[p.Backup] = true
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%d of %d backups damaged\n", len(damaged), len(ids))
				}
				return cli.WithCode(cli.ExitFailure, fmt.Errorf("%w: %s", backup.ErrCorrupt, strings.Join(names, ", ")))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&repo, "repo", "", "repository directory (default backup.repository)")
	cli.OutputFlag(cmd, &output, "text", "json")
	return cmd
}

type backupCopyOptions struct {
	target, repo string
	dryRun       bool
	verify       bool
	output       string
}

func newBackupCopyCmd(g *globals) *cobra.Command {
	o := &backupCopyOptions{}
	cmd := &cobra.Command{
		Use:   "copy",
		Short: "Copy the backups an off-host target lacks to it (backup.copies), verified there",
		Long: `Copies every complete backup of the repository that an off-host target of
backup.copies lacks to it over SFTP (SSH), oldest first; the watchdog does the
same after each scheduled backup. Each backup is written into .tmp-<id> on the
target, every file read back there and compared with the manifest's SHA-256,
and only then renamed to <id>: a half-copied backup never looks complete on
the target. A backup the target already holds (same manifest, files of the
manifest's sizes) is not copied again, so a run after the target was down
copies exactly what it missed; a damaged one there is copied again (--verify
re-reads every file on the target to find a changed byte, not only a changed
size). backup.retention.fulls applies on the target too. A damaged local
backup is never copied.

The target's host key must be in its known_hosts_file (an unknown or changed
key is refused); haconf logs in with identity_file (mode 0600, no
passphrase), never a password. A failed copy leaves the local repository as it
is, is recorded (haconf status, /metrics) and is retried at the next run.
Exits 1 when anything could not be copied.`,
		Example: `  haconf backup copy
  haconf backup copy --target vault --dry-run
  haconf backup copy --verify -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := g.loadBackupEnv()
			if err != nil {
				return err
			}
			if _, err := env.targets(o.target); err != nil {
				return err
			}
			copts := env.cfg.CopyOptions(g.logger)
			copts.Repo, copts.Only, copts.DryRun, copts.Verify = env.repo(o.repo), o.target, o.dryRun, o.verify
			results, err := backup.Copy(cmd.Context(), copts)
			if results == nil && err != nil {
				return err
			}
			if o.output == "json" {
				if jerr := cli.WriteJSON(cmd.OutOrStdout(), "haconf.backup.copy/v1", map[string]any{"targets": results}); jerr != nil {
					return jerr
				}
			} else {
				for _, r := range results {
					printCopy(cmd.OutOrStdout(), r)
				}
			}
			if err != nil {
				return cli.WithCode(cli.ExitFailure, err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.target, "target", "", "copy to this target only (a backup.copies name; default: every target)")
	f.StringVar(&o.repo, "repo", "", "repository directory (default backup.repository)")
	f.BoolVar(&o.dryRun, "dry-run", false, "connect, list the target and say what would be copied and removed; change nothing")
	f.BoolVar(&o.verify, "verify", false, "re-read every file already on the target and compare its SHA-256 (default: sizes only)")
	cli.OutputFlag(cmd, &o.output, "text", "json")
	return cmd
}

// printCopy prints one target's copy; its error, if any, is the
// command's (on stderr).
func printCopy(w io.Writer, r backup.CopyResult) {
	copied, removed := "copied", "removed by retention"
	if r.DryRun {
		copied, removed = "would copy", "would remove by retention"
	}
	if r.Error != "" && len(r.Copied)+len(r.Present)+len(r.Failed) == 0 {
		fmt.Fprintf(w, "%s (%s): FAILED, nothing copied\n", r.Target, r.Address)
		return
	}
	fmt.Fprintf(w, "%s (%s): %s %d (%s), %d already there", r.Target, r.Address, copied, len(r.Copied), backupBytes(r.Bytes), len(r.Present))
	if len(r.Removed) > 0 {
		fmt.Fprintf(w, ", %s %d", removed, len(r.Removed))
	}
	if !r.DryRun {
		fmt.Fprintf(w, " in %s", r.Duration.Round(time.Millisecond))
	}
	fmt.Fprintln(w)
	for _, l := range []struct {
		what string
		ids  []string
	}{{copied, r.Copied}, {"of which replacing a damaged copy", r.Replaced}, {removed, r.Removed},
		{"not copied (the target's retention would remove them)", r.Skipped}, {"FAILED", r.Failed},
		{"damaged here, not copied (haconf backup list)", r.LocalDamaged}, {"damaged on the target, left alone", r.Damaged}} {
		if len(l.ids) > 0 {
			fmt.Fprintf(w, "  %s: %s\n", l.what, strings.Join(l.ids, ", "))
		}
	}
}

type backupRestoreOptions struct {
	to, id, repo  string
	from, staging string
	parallel      int
	force         bool
	dryRun        bool
	output        string
}

func newBackupRestoreCmd(g *globals) *cobra.Command {
	o := &backupRestoreOptions{}
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Restore a backup (a differential brings its full) into another server",
		Long: `Loads the chain into the server named by --to, never leaving it half loaded.
Before anything changes there, every manifest (manifest.json.sha256) and every
file of the chain (size and SHA-256) is checked, and the free space: the
target's datadir when the target runs on this machine, and the temporary
directory the binary logs are unpacked to. The data is then loaded in parallel
(LOAD DATA, each file's row count checked) into staging databases
(haconf_restore_<tag>_<n>), renamed into place (RENAME TABLE), followed by
accounts, views, routines, triggers and events, and the differential's binary
log (decoded by mariadb-binlog). A failure at any step rolls back: the target
is left as it was.

A backup database that holds data on the target is refused; --force replaces
it, its old content dropped only once the restore succeeded. An empty one (a
fresh server's test database) is not data. Accounts that exist on the target
are left as they are.

--from TARGET restores from an off-host copy (a backup.copies name) when the
local repository lost the backup: the chain is fetched over SFTP into a
staging directory (--staging, default a new .fetch- directory in
backup.repository, removed afterwards), every file checked against the
manifest while it is read, and restored from there with the same checks.`,
		Example: `  haconf backup restore --to 'root@tcp(10.0.0.9:3306)/' --dry-run
  MYSQL_PWD=... haconf backup restore --to 'root@tcp(10.0.0.9:3306)/' --id 20261121T020000.000Z-diff
  haconf backup list --target vault && haconf backup restore --to 'root@tcp(10.0.0.9:3306)/' --from vault`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := g.loadBackupEnv()
			if err != nil {
				return err
			}
			target, err := env.dsn(o.to, g.backupCredentials)
			if err != nil {
				return err
			}
			repo := env.repo(o.repo)
			if o.from != "" {
				var cleanup func()
				if repo, cleanup, err = fetchForRestore(cmd, env, g, o); err != nil {
					return err
				}
				defer cleanup()
			}
			p := &backup.Progress{}
			stop := func() {}
			if !o.dryRun {
				stop = showBackupProgress(cmd, p)
			}
			res, err := backup.Restore(cmd.Context(), backup.RestoreOptions{
				Target: target, Repo: repo, ID: o.id, Parallel: env.parallel(o.parallel), Force: o.force, DryRun: o.dryRun,
				Runner: runner.Exec{Timeout: time.Hour}, Logger: g.logger, Progress: p,
			})
			stop()
			if err != nil {
				return err
			}
			if o.output == "json" {
				return cli.WriteJSON(cmd.OutOrStdout(), "haconf.backup.restore/v1", struct {
					*backup.RestoreResult
					From string `json:"from,omitempty"`
				}{res, o.from})
			}
			if res.DryRun {
				fmt.Fprintf(cmd.OutOrStdout(), "would restore %s (%s, %d tables, %d rows) into %s",
					strings.Join(res.Chain, " + "), backupBytes(res.Bytes), res.Tables, res.Rows, backup.Where(target))
				if len(res.Existing) > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), ", replacing %s", strings.Join(res.Existing, ", "))
				}
				if len(res.Empty) > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), ", replacing the empty %s", strings.Join(res.Empty, ", "))
				}
				fmt.Fprint(cmd.OutOrStdout(), "; every file verified")
				fmt.Fprintln(cmd.OutOrStdout())
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %s into %s: %d tables, %d rows, %d binlog statements in %s\n",
				strings.Join(res.Chain, " + "), backup.Where(target), res.Tables, res.Rows, res.Events, res.Duration.Round(time.Millisecond))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.to, "to", "", "target server DSN, without password (required)")
	f.StringVar(&o.id, "id", "", "backup to restore (default: the newest)")
	f.StringVar(&o.repo, "repo", "", "repository directory (default backup.repository)")
	f.StringVar(&o.from, "from", "", "restore from this off-host copy target (a backup.copies name) instead of the repository")
	f.StringVar(&o.staging, "staging", "", "with --from: the directory the chain is fetched into, and kept (default: a .fetch- directory in backup.repository, removed afterwards)")
	f.IntVar(&o.parallel, "parallel", 0, "loader connections (default backup.parallel)")
	f.BoolVar(&o.force, "force", false, "replace the backup's databases that hold data on the target (dropped once the restore succeeded)")
	f.BoolVar(&o.dryRun, "dry-run", false, "check the chain and the target; change nothing on the target (--from still fetches the chain)")
	cli.OutputFlag(cmd, &o.output, "text", "json")
	_ = cmd.MarkFlagRequired("to")
	cmd.MarkFlagsMutuallyExclusive("repo", "from")
	return cmd
}

// fetchForRestore fetches the chain restore --from asks for into the
// staging directory and returns it as a repository, with the function
// that removes a staging directory haconf chose.
func fetchForRestore(cmd *cobra.Command, env *backupEnv, g *globals, o *backupRestoreOptions) (backup.Repository, func(), error) {
	t, err := env.target(o.from)
	if err != nil {
		return backup.Repository{}, nil, err
	}
	dir, cleanup := o.staging, func() {}
	if dir == "" {
		if err := os.MkdirAll(env.cfg.Repository, 0o700); err != nil {
			return backup.Repository{}, nil, err
		}
		if dir, err = os.MkdirTemp(env.cfg.Repository, ".fetch-"); err != nil {
			return backup.Repository{}, nil, fmt.Errorf("staging directory: %w", err)
		}
		cleanup = func() { _ = os.RemoveAll(dir) }
	}
	repo, chain, err := backup.Fetch(cmd.Context(), backup.FetchOptions{Target: t, ID: o.id, Dir: dir, Logger: g.logger})
	if err != nil {
		cleanup()
		return repo, nil, fmt.Errorf("%w: nothing was restored", err)
	}
	if o.output != "json" {
		fmt.Fprintf(cmd.OutOrStdout(), "fetched %s from %s (%s) into %s; every file verified\n", strings.Join(chain, " + "), t.Name, t.String(), dir)
	}
	return repo, cleanup, nil
}

func newBackupDrillCmd(g *globals) *cobra.Command {
	var repo, id, output string
	var parallel int
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Prove a backup: restore it into a scratch MariaDB and compare every table",
		Long: `Starts a throw-away mariadbd (temporary datadir, 127.0.0.1, random port and
password), restores the chain, and compares every table's row count and
checksum with the values recorded inside the source snapshot. Prints pass or
fail and the restore time; exits 1 on fail. Needs mariadbd,
mariadb-install-db and mariadb-binlog on this machine.`,
		Example: "  haconf backup drill\n  haconf backup drill --id 20261121T020000.000Z-full -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := g.loadBackupEnv()
			if err != nil {
				return err
			}
			if parallel == 0 {
				parallel = env.cfg.Parallel
			}
			p := &backup.Progress{}
			stop := showBackupProgress(cmd, p)
			rep, err := backup.Drill(cmd.Context(), backup.DrillOptions{
				Repo: env.repo(repo), ID: id, Parallel: parallel, Runner: runner.Exec{Timeout: time.Hour}, Logger: g.logger, Progress: p,
			})
			stop()
			if err != nil {
				return err
			}
			if err := cli.Output(cmd.OutOrStdout(), output, "haconf.backup.drill/v1", rep, printDrill); err != nil {
				return err
			}
			if !rep.Pass {
				return cli.SilentExit(cli.ExitFailure)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&repo, "repo", "", "repository directory (default backup.repository)")
	cmd.Flags().StringVar(&id, "id", "", "backup to prove (default: the newest)")
	cmd.Flags().IntVar(&parallel, "parallel", 0, "loader connections (default backup.parallel)")
	cli.OutputFlag(cmd, &output, "text", "json")
	return cmd
}

func printDrill(w io.Writer, rep *backup.DrillReport) {
	verdict := "PASS"
	if !rep.Pass {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "drill %s: %s restored in %s, %d tables, %d rows compared\n",
		verdict, strings.Join(rep.Chain, " + "), rep.RestoreTime.Round(time.Millisecond), rep.Tables, rep.Rows)
	fmt.Fprintf(w, "  compared with the snapshot of: %s\n", strings.Join(rep.Checked, ", "))
	if rep.Unchecked != "" {
		fmt.Fprintln(w, "  note:", rep.Unchecked)
	}
	if rep.Error != "" {
		fmt.Fprintln(w, "  error:", rep.Error)
	}
	for _, m := range rep.Mismatches {
		fmt.Fprintln(w, "  "+m.String())
	}
}

// showBackupProgress draws a one-line progress display on stderr while a long
// command runs, only when stderr is a terminal. Call the returned func to
// stop it.
func showBackupProgress(cmd *cobra.Command, p *backup.Progress) func() {
	f, ok := cmd.ErrOrStderr().(*os.File)
	if !ok {
		return func() {}
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(cmd.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				fmt.Fprint(f, "\r\033[K")
				return
			case <-t.C:
				phase, _ := p.Phase.Load().(string)
				line := fmt.Sprintf("%-9s %d rows", phase, p.Rows.Load())
				if total := p.RowsTotal.Load(); total > 0 {
					line += fmt.Sprintf(" of ~%d", total)
				}
				line += ", " + backupBytes(p.Bytes.Load())
				fmt.Fprint(f, "\r\033[K"+line)
			}
		}
	}()
	return func() { cancel(); <-done }
}

func backupBytes(n int64) string { return backup.FormatBytes(n) }

func backupDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
