package backup

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/go-sql-driver/mysql"

	"github.com/robfig/cron/v3"

	"github.com/haconf/haconf/internal/validate"
)

// Config is the `backup:` section of haconf.yaml.
type Config struct {
	// Repository is the directory backups are written to.
	Repository string `yaml:"repository"`
	// Full, Differential and Drill are cron expressions (5 fields, or
	// descriptors such as @daily); empty disables that job.
	Full         string    `yaml:"full"`
	Differential string    `yaml:"differential"`
	Drill        string    `yaml:"drill"`
	Retention    Retention `yaml:"retention"`
	// Parallel is the number of tables read at once.
	Parallel int `yaml:"parallel"`
	// Compression of data files: s2 (default: fastest, a logical backup is
	// CPU-bound) or zstd (about a third smaller, about 3x the CPU).
	Compression string `yaml:"compression"`
	// Databases limits backups to these databases (default: all but the
	// system schemas).
	Databases []string `yaml:"databases"`
	// Users also saves accounts and grants.
	Users bool `yaml:"users"`
	// Files are configuration files and directories archived with every
	// backup (haconf.yaml, the CIB export, rendered files, RabbitMQ
	// definitions) so that a lost pair can be rebuilt.
	Files []string `yaml:"files"`
	// DifferentialChecksums makes each differential also record every
	// table's checksum at its snapshot, so that a drill of a chain ending
	// in it compares every table at that point (default false: it costs a
	// full scan on the server, about half a full backup's time, where the
	// differential itself costs about 1%; fulls always record checksums).
	DifferentialChecksums *bool `yaml:"differential_checksums"`
}

// Retention says how many backups to keep.
type Retention struct {
	// Fulls is how many full backups are kept, each with its differentials.
	Fulls int `yaml:"fulls"`
}

// CronParser parses the schedule expressions accepted in haconf.yaml.
var CronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Repository == "" {
		c.Repository = "/var/backups/haconf"
	}
	if c.Retention.Fulls == 0 {
		c.Retention.Fulls = 4
	}
	if c.Parallel == 0 {
		c.Parallel = 2
	}
	if c.Compression == "" {
		c.Compression = CompressS2
	}
	if c.DifferentialChecksums == nil {
		f := false
		c.DifferentialChecksums = &f
	}
}

// Validate reports every problem in c under v.
func (c *Config) Validate(v *validate.List) {
	if !filepath.IsAbs(c.Repository) {
		v.Addf("repository", c.Repository, "must be an absolute path")
	}
	for _, s := range []struct{ key, expr string }{{"full", c.Full}, {"differential", c.Differential}, {"drill", c.Drill}} {
		if s.expr == "" {
			continue
		}
		if _, err := CronParser.Parse(s.expr); err != nil {
			v.Addf(s.key, s.expr, "is not a valid cron expression: %v", err)
		}
	}
	if c.Differential != "" && c.Full == "" {
		v.Addf("differential", c.Differential, "needs a full schedule too: a differential is relative to a full")
	}
	if c.Retention.Fulls < 1 {
		v.Addf("retention.fulls", c.Retention.Fulls, "must be at least 1")
	}
	if c.Compression != CompressS2 && c.Compression != CompressZstd {
		v.Addf("compression", c.Compression, "must be s2 or zstd")
	}
	for i, f := range c.Files {
		if !filepath.IsAbs(f) {
			v.Addf(fmt.Sprintf("files[%d]", i), f, "must be an absolute path")
		}
	}
	if c.Parallel < 1 || c.Parallel > 64 {
		v.Addf("parallel", c.Parallel, "must be between 1 and 64")
	}
}

// Options returns the backup options this configuration asks for, reading
// from db. The watchdog builds its Scheduler from them:
//
//	s, err := backup.NewScheduler(cfg.Backup,
//		backup.Jobs(cfg.Backup.Options(db, log), cfg.Backup.DrillOptions(runner.Exec{Timeout: time.Hour}, log)),
//		mariadbIsActiveHere, log)
func (c *Config) Options(db *mysql.Config, log *slog.Logger) Options {
	checksums := c.DifferentialChecksums != nil && *c.DifferentialChecksums
	return Options{
		DB: db, Repo: Repository{Dir: c.Repository}, Parallel: c.Parallel, Databases: c.Databases,
		Users: c.Users, ConfigFiles: c.Files, Compression: c.Compression, Retention: c.Retention.Fulls, Checksums: checksums, Logger: log,
	}
}

// DrillOptions returns the drill options this configuration asks for.
func (c *Config) DrillOptions(r Runner, log *slog.Logger) DrillOptions {
	return DrillOptions{Repo: Repository{Dir: c.Repository}, Parallel: c.Parallel, Runner: r, Logger: log}
}
