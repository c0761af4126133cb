package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	drv "github.com/go-sql-driver/mysql"
	"github.com/spf13/cobra"

	"github.com/haconf/haconf/backup"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/mysql"
)

func newBackupCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Take, list, verify, restore and prove MariaDB backups",
		Long: `Logical backups of MariaDB taken from one consistent snapshot by parallel
readers, compressed (s2 or zstd) and checksummed (SHA-256) file by file, with a
manifest written last. Differentials are the binary log since the full.
Every restore checks every checksum and row count; a drill restores the
newest chain into a scratch MariaDB and compares each table with the source
snapshot.

The repository and the schedule come from the backup: section of
haconf.yaml; the password from mysql.credentials_file ([client] password=)
or MYSQL_PWD, never from the command line.`,
		Example: `  haconf backup run --type full
  haconf backup run --type differential
  haconf backup list -o json
  haconf backup verify
  haconf backup restore --to 'root@tcp(10.0.0.9:3306)/' --dry-run
  haconf backup drill`,
	}
	cmd.AddCommand(newBackupRunCmd(g), newBackupListCmd(g), newBackupVerifyCmd(g), newBackupRestoreCmd(g), newBackupDrillCmd(g))
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

// dsn resolves a DSN flag (or the local server) with the password from the
// credentials file or MYSQL_PWD.
func (e *backupEnv) dsn(flag string) (*drv.Config, error) {
	if flag == "" {
		flag = fmt.Sprintf("tcp(127.0.0.1:%d)/", e.mysql.Port)
	}
	return backup.ResolveDSN(flag, backup.Credentials{File: e.mysql.CredentialsFile})
}

func (e *backupEnv) repo(flag string) backup.Repository {
	if flag != "" {
		return backup.Repository{Dir: flag}
	}
	return backup.Repository{Dir: e.cfg.Repository}
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
			if kind != backup.Full && kind != backup.Differential {
				return &usageError{fmt.Errorf("--type must be full or differential, not %q", o.kind)}
			}
			env, err := g.loadBackupEnv()
			if err != nil {
				return err
			}
			db, err := env.dsn(o.dsn)
			if err != nil {
				return err
			}
			parallel := env.cfg.Parallel
			if o.parallel > 0 {
				parallel = o.parallel
			}
			opts := backup.Options{
				DB: db, Repo: env.repo(o.repo), Parallel: parallel, Databases: env.cfg.Databases,
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
					return backupJSON(cmd.OutOrStdout(), p)
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
				return backupJSON(cmd.OutOrStdout(), summary(m))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backup %s complete: %s, %d tables, %s in %s, binlog %s\n",
				m.ID, m.Type, len(m.Tables), backupBytes(m.Size()), m.Duration().Round(time.Millisecond), m.Binlog)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.kind, "type", "", "full or differential (required)")
	f.StringVar(&o.dsn, "dsn", "", "server to back up, without password (default 127.0.0.1 and mysql.port)")
	f.StringVar(&o.repo, "repo", "", "repository directory (default backup.repository)")
	f.IntVar(&o.parallel, "parallel", 0, "connections reading at once (default backup.parallel)")
	f.BoolVar(&o.users, "users", false, "also save accounts and grants")
	f.StringSliceVar(&o.files, "file", nil, "extra configuration file or directory to archive (repeatable)")
	f.BoolVar(&o.checksums, "checksums", false, "differential: also record every table's checksum for the drill (a server-side scan)")
	f.BoolVar(&o.dryRun, "dry-run", false, "connect and say what would be backed up; write nothing")
	f.StringVarP(&o.output, "output", "o", "text", "text or json")
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
}

func summary(m *backup.Manifest) backupSummary {
	return backupSummary{ID: m.ID, Type: m.Type, Base: m.Base, Finished: m.Finished, Seconds: m.Duration().Seconds(),
		Bytes: m.Size(), Tables: len(m.Tables), Binlog: m.Binlog, Server: m.Server.Hostname}
}

func newBackupListCmd(g *globals) *cobra.Command {
	var repo, output string
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the complete backups, oldest first",
		Example: "  haconf backup list\n  haconf backup list -o json --repo /srv/haconf/backups",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := g.loadBackupEnv()
			if err != nil {
				return err
			}
			all, err := env.repo(repo).List()
			if err != nil {
				return err
			}
			out := []backupSummary{}
			for _, m := range all {
				out = append(out, summary(m))
			}
			if output == "json" {
				return backupJSON(cmd.OutOrStdout(), out)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTYPE\tBASE\tFINISHED\tDURATION\tSIZE\tTABLES\tBINLOG")
			for _, s := range out {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1fs\t%s\t%d\t%s\n", s.ID, s.Type, backupDash(s.Base), s.Finished.Format(time.RFC3339), s.Seconds, backupBytes(s.Bytes), s.Tables, s.Binlog)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&repo, "repo", "", "repository directory (default backup.repository)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

func newBackupVerifyCmd(g *globals) *cobra.Command {
	var repo, output string
	cmd := &cobra.Command{
		Use:   "verify [ID]",
		Short: "Re-read every file of a backup (default: all) and check its SHA-256",
		Long: `Reads every file back and compares its size and SHA-256 with the manifest, and
the manifest with manifest.json.sha256. Each damaged file is named. Exits 1
if any backup is damaged.`,
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
				all, err := r.List()
				if err != nil {
					return err
				}
				for _, m := range all {
					ids = append(ids, m.ID)
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
				if err := backupJSON(cmd.OutOrStdout(), map[string]any{"backups": ids, "problems": problems}); err != nil {
					return err
				}
			}
			if len(problems) > 0 {
				var names []string
				for _, p := range problems {
					names = append(names, p.Backup+"/"+p.Path)
				}
				return withCode(exitFailure, fmt.Errorf("%w: %s", backup.ErrCorrupt, strings.Join(names, ", ")))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&repo, "repo", "", "repository directory (default backup.repository)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

type backupRestoreOptions struct {
	to, id, repo string
	parallel     int
	force        bool
	dryRun       bool
	output       string
}

func newBackupRestoreCmd(g *globals) *cobra.Command {
	o := &backupRestoreOptions{}
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Restore a backup (a differential brings its full) into another server",
		Long: `Loads the chain into the server named by --to: schema, then data in parallel
with LOAD DATA, then views, routines, triggers and events, then the
differential's binary log (decoded by mariadb-binlog). Every file's SHA-256
and every data file's row count is checked. The target must not hold any of
the backup's databases; --force drops them first.`,
		Example: `  haconf backup restore --to 'root@tcp(10.0.0.9:3306)/' --dry-run
  MYSQL_PWD=... haconf backup restore --to 'root@tcp(10.0.0.9:3306)/' --id 20261121T020000.000Z-diff`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := g.loadBackupEnv()
			if err != nil {
				return err
			}
			target, err := env.dsn(o.to)
			if err != nil {
				return err
			}
			parallel := env.cfg.Parallel
			if o.parallel > 0 {
				parallel = o.parallel
			}
			p := &backup.Progress{}
			stop := func() {}
			if !o.dryRun {
				stop = showBackupProgress(cmd, p)
			}
			res, err := backup.Restore(cmd.Context(), backup.RestoreOptions{
				Target: target, Repo: env.repo(o.repo), ID: o.id, Parallel: parallel, Force: o.force, DryRun: o.dryRun,
				Runner: runner.Exec{Timeout: time.Hour}, Logger: g.logger, Progress: p,
			})
			stop()
			if err != nil {
				return err
			}
			if o.output == "json" {
				return backupJSON(cmd.OutOrStdout(), res)
			}
			if res.DryRun {
				fmt.Fprintf(cmd.OutOrStdout(), "would restore %s (%s, %d tables, %d rows) into %s",
					strings.Join(res.Chain, " + "), backupBytes(res.Bytes), res.Tables, res.Rows, backup.Where(target))
				if len(res.Existing) > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), ", dropping %s first", strings.Join(res.Existing, ", "))
				}
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
	f.IntVar(&o.parallel, "parallel", 0, "loader connections (default backup.parallel)")
	f.BoolVar(&o.force, "force", false, "drop the backup's databases on the target if they exist")
	f.BoolVar(&o.dryRun, "dry-run", false, "check the chain and the target; change nothing")
	f.StringVarP(&o.output, "output", "o", "text", "text or json")
	_ = cmd.MarkFlagRequired("to")
	return cmd
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
			if output == "json" {
				if err := backupJSON(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			} else {
				verdict := "PASS"
				if !rep.Pass {
					verdict = "FAIL"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "drill %s: %s restored in %s, %d tables, %d rows compared\n",
					verdict, strings.Join(rep.Chain, " + "), rep.RestoreTime.Round(time.Millisecond), rep.Tables, rep.Rows)
				fmt.Fprintf(cmd.OutOrStdout(), "  compared with the snapshot of: %s\n", strings.Join(rep.Checked, ", "))
				if rep.Unchecked != "" {
					fmt.Fprintln(cmd.OutOrStdout(), "  note:", rep.Unchecked)
				}
				if rep.Error != "" {
					fmt.Fprintln(cmd.OutOrStdout(), "  error:", rep.Error)
				}
				for _, m := range rep.Mismatches {
					fmt.Fprintln(cmd.OutOrStdout(), "  "+m.String())
				}
			}
			if !rep.Pass {
				return silentExit(exitFailure)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&repo, "repo", "", "repository directory (default backup.repository)")
	cmd.Flags().StringVar(&id, "id", "", "backup to prove (default: the newest)")
	cmd.Flags().IntVar(&parallel, "parallel", 0, "loader connections (default backup.parallel)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
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

func backupJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func backupBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func backupDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
