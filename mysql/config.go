// Package mysql drives MariaDB/MySQL on the DRBD volume: its configuration,
// its health (the client protocol's handshake, which the resource agent in
// package agents runs) and its binary log position. Supported: MariaDB
// 10.5-11.x and MySQL 8.0.
package mysql

import (
	"path/filepath"
	"regexp"

	"github.com/haconf/haconf/internal/validate"
)

// Config is the `mysql:` section of haconf.yaml.
type Config struct {
	// MountPoint is where the DRBD filesystem is mounted; the datadir lives in it.
	MountPoint string `yaml:"mount_point"`
	// Filesystem is made on the DRBD device (ext4 or xfs).
	Filesystem string `yaml:"filesystem"`
	// CredentialsFile is a client option file ([client] user=, password=),
	// mode 0600, read by haconf and by the resource agent. Never put the
	// password in haconf.yaml.
	CredentialsFile string `yaml:"credentials_file"`
	Port            int    `yaml:"port"`
	// BinaryLog enables log_bin on the DRBD volume (used for split-brain
	// evidence and binlog differentials). Default true.
	BinaryLog *bool `yaml:"binary_log"`
	// BufferPoolSize sets innodb_buffer_pool_size and _max (e.g. 1G); empty
	// keeps MariaDB's default. Small machines and VMs with a small address
	// space need it: 10.11 reserves address space for the maximum.
	BufferPoolSize string `yaml:"buffer_pool_size"`
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.MountPoint == "" {
		c.MountPoint = "/srv/haconf"
	}
	if c.Filesystem == "" {
		c.Filesystem = "ext4"
	}
	if c.CredentialsFile == "" {
		c.CredentialsFile = "/etc/haconf/mysql.cnf"
	}
	if c.Port == 0 {
		c.Port = 3306
	}
	if c.BinaryLog == nil {
		t := true
		c.BinaryLog = &t
	}
}

// Datadir is MariaDB's data directory on the DRBD volume.
func (c *Config) Datadir() string { return filepath.Join(c.MountPoint, "mysql") }

// Validate reports every problem in c under v.
func (c *Config) Validate(v *validate.List) {
	if !filepath.IsAbs(c.MountPoint) || filepath.Clean(c.MountPoint) == "/" {
		v.Addf("mount_point", c.MountPoint, "must be an absolute path other than /")
	}
	switch c.Filesystem {
	case "ext4", "xfs":
	default:
		v.Addf("filesystem", c.Filesystem, "must be ext4 or xfs")
	}
	if !filepath.IsAbs(c.CredentialsFile) {
		v.Addf("credentials_file", c.CredentialsFile, "must be an absolute path")
	}
	if c.Port < 1 || c.Port > 65535 {
		v.Addf("port", c.Port, "must be a TCP port (1-65535)")
	}
	if c.BufferPoolSize != "" && !bufferPool.MatchString(c.BufferPoolSize) {
		v.Addf("buffer_pool_size", c.BufferPoolSize, "must be a size such as 512M or 4G")
	}
}

var bufferPool = regexp.MustCompile(`^[1-9][0-9]*[MG]$`)
