package drbd

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/haconf/haconf/internal/validate"
)

// Config is the `drbd:` section of haconf.yaml.
type Config struct {
	Resource string `yaml:"resource"` // DRBD resource name
	Disk     string `yaml:"disk"`     // backing block device on each controller
	Device   string `yaml:"device"`   // /dev/drbdN
	Port     int    `yaml:"port"`     // TCP port on the storage network
	Version  string `yaml:"version"`  // auto, 8.4 or 9
	// ResyncRate caps the resync bandwidth, e.g. "100M" (DRBD's default is slow).
	ResyncRate string `yaml:"resync_rate"`
	// SplitBrain configures automatic split-brain resolution.
	SplitBrain SplitBrainConfig `yaml:"split_brain"`
}

// SplitBrainConfig is the `drbd.split_brain:` section.
type SplitBrainConfig struct {
	// Policy is auto, least-changes, prefer or manual.
	Policy string `yaml:"policy"`
	// Prefer names the node that survives when Policy is prefer.
	Prefer string `yaml:"prefer"`
	// PreserveDir receives a verified copy of the victim's device when its
	// backing disk is not an LVM volume that can be snapshotted.
	PreserveDir string `yaml:"preserve_dir"`
	// IncidentDir keeps one JSON record per split brain seen, decided or
	// resolved on this node.
	IncidentDir string `yaml:"incident_dir"`
}

// Versions haconf renders configuration for.
const (
	VersionAuto = "auto"
	Version84   = "8.4"
	Version9    = "9"
)

// Split-brain policies.
const (
	PolicyAuto         = "auto"
	PolicyLeastChanges = "least-changes"
	PolicyPrefer       = "prefer"
	PolicyManual       = "manual"
)

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Resource == "" {
		c.Resource = "r0"
	}
	if c.Device == "" {
		c.Device = "/dev/drbd0"
	}
	if c.Port == 0 {
		c.Port = 7789
	}
	if c.Version == "" {
		c.Version = VersionAuto
	}
	if c.ResyncRate == "" {
		c.ResyncRate = "100M"
	}
	if c.SplitBrain.Policy == "" {
		c.SplitBrain.Policy = PolicyAuto
	}
	if c.SplitBrain.PreserveDir == "" {
		c.SplitBrain.PreserveDir = "/var/lib/haconf/splitbrain"
	}
	if c.SplitBrain.IncidentDir == "" {
		c.SplitBrain.IncidentDir = "/var/lib/haconf/incidents"
	}
}

var (
	resourceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	drbdDevice   = regexp.MustCompile(`^/dev/drbd([0-9]+)$`)
	rate         = regexp.MustCompile(`^[0-9]+[KMG]?$`)
)

// Validate reports every problem in c under v.
func (c *Config) Validate(v *validate.List) {
	if !resourceName.MatchString(c.Resource) {
		v.Addf("resource", c.Resource, "must be a DRBD resource name (letters, digits, _ . -)")
	}
	if c.Disk == "" {
		v.Addf("disk", nil, "is required: the backing block device, e.g. /dev/vg0/drbd")
	} else if !filepath.IsAbs(c.Disk) || !strings.HasPrefix(c.Disk, "/dev/") {
		v.Addf("disk", c.Disk, "must be a block device path under /dev")
	}
	if !drbdDevice.MatchString(c.Device) {
		v.Addf("device", c.Device, "must be /dev/drbdN")
	}
	if c.Port < 1 || c.Port > 65535 {
		v.Addf("port", c.Port, "must be a TCP port (1-65535)")
	}
	switch c.Version {
	case VersionAuto, Version84, Version9:
	default:
		v.Addf("version", c.Version, "must be auto, 8.4 or 9")
	}
	if !rate.MatchString(c.ResyncRate) {
		v.Addf("resync_rate", c.ResyncRate, "must be a rate such as 40M or 100M")
	}
	sb := v.Sub("split_brain")
	switch c.SplitBrain.Policy {
	case PolicyAuto, PolicyLeastChanges, PolicyManual:
		if c.SplitBrain.Prefer != "" {
			sb.Addf("prefer", c.SplitBrain.Prefer, "only applies with policy: prefer")
		}
	case PolicyPrefer:
		if c.SplitBrain.Prefer == "" {
			sb.Addf("prefer", nil, "is required with policy: prefer")
		}
	default:
		sb.Addf("policy", c.SplitBrain.Policy, "must be auto, least-changes, prefer or manual")
	}
	if !filepath.IsAbs(c.SplitBrain.PreserveDir) {
		sb.Addf("preserve_dir", c.SplitBrain.PreserveDir, "must be an absolute path")
	}
	if !filepath.IsAbs(c.SplitBrain.IncidentDir) {
		sb.Addf("incident_dir", c.SplitBrain.IncidentDir, "must be an absolute path")
	}
}

// Minor returns the device minor number (0 for /dev/drbd0).
func (c *Config) Minor() int {
	m := drbdDevice.FindStringSubmatch(c.Device)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// String is used in messages.
func (c *Config) String() string { return fmt.Sprintf("drbd resource %s on %s", c.Resource, c.Device) }
