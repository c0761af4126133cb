package backup

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

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
	// Copies are the off-host targets every complete backup is copied to
	// over SFTP (Copy), after each scheduled backup and by
	// `haconf backup copy`.
	Copies []CopyTarget `yaml:"copies"`
}

// CopyTarget is one off-host copy of the repository: a directory on
// another machine reached over SSH (SFTP only: the account may be
// restricted to internal-sftp, chrooted). It holds the same layout as the
// repository, so `haconf backup verify --repo` and `drill --repo` work
// there too.
type CopyTarget struct {
	// Name names the target in commands (--target, --from), logs and
	// metrics (default: Host).
	Name string `yaml:"name"`
	Host string `yaml:"host"`
	// Port is the SSH port (default 22).
	Port int    `yaml:"port"`
	User string `yaml:"user"`
	// Path is the directory on the target, absolute (inside the chroot of
	// a chrooted account).
	Path string `yaml:"path"`
	// IdentityFile is the private key haconf logs in with: readable by
	// its owner only, without a passphrase (haconf runs unattended). No
	// password is ever read from haconf.yaml.
	IdentityFile string `yaml:"identity_file"`
	// KnownHostsFile holds the target's host key (OpenSSH known_hosts
	// format); a host whose key is not there, or differs, is refused.
	KnownHostsFile string `yaml:"known_hosts_file"`
}

// UnmarshalYAML decodes a copy target onto its defaults, so that only an
// absent port is 22: an explicit port: 0 is reported, never replaced.
func (t *CopyTarget) UnmarshalYAML(n *yaml.Node) error {
	type plain CopyTarget // without this method
	p := plain{Port: 22}
	err := n.Decode(&p)
	*t = CopyTarget(p)
	return err
}

// Addr is the target's host:port.
func (t CopyTarget) Addr() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// String is user@host:port:path, for messages (no secret in it).
func (t CopyTarget) String() string { return t.User + "@" + t.Addr() + ":" + t.Path }

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
	c.SetCopyDefaults()
}

// SetCopyDefaults names each copy target without a name after its host;
// config.Parse calls it once the list is decoded. (The port's default is
// set while decoding: UnmarshalYAML.)
func (c *Config) SetCopyDefaults() {
	for i := range c.Copies {
		if c.Copies[i].Name == "" {
			c.Copies[i].Name = c.Copies[i].Host
		}
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
	names := map[string]int{}
	for i, t := range c.Copies {
		t.validate(v.Sub("copies").Sub(validate.Index(i)))
		if j, dup := names[t.Name]; dup && t.Name != "" {
			v.Sub("copies").Sub(validate.Index(i)).Addf("name", t.Name, "is also the name of copies[%d]", j)
		}
		names[t.Name] = i
	}
}

var (
	copyName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	copyUser = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,31}$`)
)

func (t CopyTarget) validate(v *validate.List) {
	if !copyName.MatchString(t.Name) {
		v.Addf("name", t.Name, "must be 1-63 letters, digits, '.', '_' or '-' (it names the target in --target, --from and metrics)")
	}
	switch {
	case t.Host == "":
		v.Addf("host", nil, "is required: the target's address or host name")
	case strings.ContainsAny(t.Host, " \t@/[]") || strings.HasPrefix(t.Host, "-"):
		v.Addf("host", t.Host, "must be an address or host name (the user goes in user:, the port in port:)")
	}
	if t.Port < 1 || t.Port > 65535 {
		v.Addf("port", t.Port, "must be between 1 and 65535")
	}
	if !copyUser.MatchString(t.User) {
		v.Addf("user", t.User, "is required: the account on the target (letters, digits, '.', '_', '-')")
	}
	switch {
	case t.Path == "":
		v.Addf("path", nil, "is required: the directory on the target, absolute")
	case !path.IsAbs(t.Path) || path.Clean(t.Path) != t.Path || t.Path == "/":
		v.Addf("path", t.Path, "must be an absolute, clean directory path other than /")
	}
	for _, f := range []struct{ key, val, what string }{
		{"identity_file", t.IdentityFile, "the private key haconf logs in with (mode 0600, no passphrase)"},
		{"known_hosts_file", t.KnownHostsFile, "the known_hosts file holding the target's host key"},
	} {
		switch {
		case f.val == "":
			v.Addf(f.key, nil, "is required: %s", f.what)
		case !filepath.IsAbs(f.val):
			v.Addf(f.key, f.val, "must be an absolute path")
		}
	}
}

// Binary log retention bounds, in days: the server's default before haconf
// tied it to the schedule, and expire_logs_days' maximum.
const (
	minBinlogDays = 8
	maxBinlogDays = 99
)

// BinlogExpireDays is the expire_logs_days rendered into MariaDB's
// configuration: twice the longest interval between two scheduled fulls,
// plus a day, at least 8 and at most 99 days.
//
// A differential needs every binary log since its full's snapshot. Tying
// the server's own expiry to the schedule was chosen over having the backup
// job purge the logs older than the newest full (PURGE BINARY LOGS TO):
// that needs BINLOG ADMIN (or SUPER) for the backup account, and it makes
// the logs' lifetime depend on backups succeeding (with backups failing,
// nothing would purge and the DRBD volume would fill up). Twice the
// interval keeps the chain of the previous full readable when one
// scheduled full fails or is skipped; if the chain breaks anyway, the
// differential job takes a full at once (Jobs). The interval is measured
// over a year of the schedule from a fixed date, so the rendered file does
// not change with the day it is rendered on.
func (c *Config) BinlogExpireDays() int {
	sched, err := CronParser.Parse(c.Full)
	if c.Full == "" || err != nil {
		return minBinlogDays
	}
	from := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var gap time.Duration
	prev := sched.Next(from)
	for t := sched.Next(prev); !t.IsZero() && t.Before(from.AddDate(1, 0, 0)); t = sched.Next(t) {
		gap = max(gap, t.Sub(prev))
		prev = t
	}
	if gap == 0 { // at most one run a year
		return maxBinlogDays
	}
	days := int(math.Ceil((2*gap + 24*time.Hour).Hours() / 24))
	return min(max(days, minBinlogDays), maxBinlogDays)
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

// CopyOptions returns the options of a copy to every target of
// backup.copies, with the repository's retention.
func (c *Config) CopyOptions(log *slog.Logger) CopyOptions {
	return CopyOptions{Repo: Repository{Dir: c.Repository}, Targets: c.Copies, Retention: c.Retention.Fulls, Logger: log}
}

// DrillOptions returns the drill options this configuration asks for.
func (c *Config) DrillOptions(r Runner, log *slog.Logger) DrillOptions {
	return DrillOptions{Repo: Repository{Dir: c.Repository}, Parallel: c.Parallel, Runner: r, Logger: log}
}
