package backup

import (
	"fmt"
	"path/filepath"

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
	// Databases limits backups to these databases (default: all but the
	// system schemas).
	Databases []string `yaml:"databases"`
	// Users also saves accounts and grants.
	Users bool `yaml:"users"`
	// Files are configuration files and directories archived with every
	// backup (haconf.yaml, the CIB export, rendered files, RabbitMQ
	// definitions) so that a lost pair can be rebuilt.
	Files []string `yaml:"files"`
	// DifferentialChecksums makes each differential record every table's
	// checksum at its snapshot, for the drill (default true; costs a scan
	// on the server, no rows transferred).
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
	if c.DifferentialChecksums == nil {
		t := true
		c.DifferentialChecksums = &t
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
	for i, f := range c.Files {
		if !filepath.IsAbs(f) {
			v.Addf(fmt.Sprintf("files[%d]", i), f, "must be an absolute path")
		}
	}
	if c.Parallel < 1 || c.Parallel > 64 {
		v.Addf("parallel", c.Parallel, "must be between 1 and 64")
	}
}
