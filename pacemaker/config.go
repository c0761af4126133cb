package pacemaker

import (
	"path/filepath"
	"time"

	"github.com/haconf/haconf/internal/validate"
)

// CorosyncConfig is the `corosync:` section of haconf.yaml.
type CorosyncConfig struct {
	// Token is the totem token timeout; failure detection starts with it.
	Token time.Duration `yaml:"token"`
	// LinkMode is knet's link_mode: passive (one link at a time, by
	// priority: management first) or active.
	LinkMode string `yaml:"link_mode"`
}

// SetDefaults fills unset fields.
func (c *CorosyncConfig) SetDefaults() {
	if c.Token == 0 {
		c.Token = 3 * time.Second
	}
	if c.LinkMode == "" {
		c.LinkMode = "passive"
	}
}

// Validate reports every problem in c under v.
func (c *CorosyncConfig) Validate(v *validate.List) {
	if c.Token < 500*time.Millisecond || c.Token > 60*time.Second {
		v.Addf("token", c.Token, "must be between 500ms and 60s (below about 1s membership flaps on loaded VMs)")
	}
	switch c.LinkMode {
	case "passive", "active":
	default:
		v.Addf("link_mode", c.LinkMode, "must be passive or active")
	}
}

// TokenMillis returns the token in milliseconds.
func (c *CorosyncConfig) TokenMillis() int64 { return c.Token.Milliseconds() }

// Fencing types.
const (
	FenceIPMI = "ipmi"
	FenceSBD  = "sbd"
	FenceLab  = "lab"
	FenceNone = "none"
)

// FencingConfig is the `fencing:` section of haconf.yaml.
type FencingConfig struct {
	Type string `yaml:"type"`
	// IAcceptNoFencing must be true when Type is none: a two-node pair without
	// fencing can run its database on both nodes after a partition.
	IAcceptNoFencing bool `yaml:"i_accept_no_fencing"`
	// IPMI holds one BMC per controller, keyed by node name.
	IPMI map[string]IPMI `yaml:"ipmi"`
	SBD  SBD             `yaml:"sbd"`
	Lab  Lab             `yaml:"lab"`
	// Delay is added before fencing the first node (priority-fencing-delay),
	// so that in a split the node running the services survives.
	Delay time.Duration `yaml:"delay"`
}

// IPMI is one controller's BMC.
type IPMI struct {
	Address string `yaml:"address"`
	User    string `yaml:"user"`
	// PasswordFile is read by fence_ipmilan through password_script; the
	// password never enters the CIB.
	PasswordFile string `yaml:"password_file"`
	Lanplus      *bool  `yaml:"lanplus"`
}

// SBD is storage-based death: shared disks plus a hardware watchdog.
type SBD struct {
	Devices  []string `yaml:"devices"`
	Watchdog string   `yaml:"watchdog"`
}

// Lab is the haconf lab's fence agent: it asks the lab host to power-cycle
// a node.
type Lab struct {
	// URL of the lab host's fencing endpoint.
	URL string `yaml:"url"`
}

// SetDefaults fills unset fields.
func (c *FencingConfig) SetDefaults() {
	if c.SBD.Watchdog == "" {
		c.SBD.Watchdog = "/dev/watchdog"
	}
	if c.Delay == 0 {
		c.Delay = 10 * time.Second
	}
}

// Safe reports whether the pair is protected by fencing.
func (c *FencingConfig) Safe() bool { return c.Type != FenceNone && c.Type != "" }

// Validate reports every problem in c under v. nodes are the controller names.
func (c *FencingConfig) Validate(v *validate.List, nodes []string) {
	switch c.Type {
	case "":
		v.Addf("type", nil, "is required: ipmi, sbd, lab, or none (with i_accept_no_fencing: true)")
	case FenceNone:
		if !c.IAcceptNoFencing {
			v.Addf("type", c.Type, "runs the pair without fencing, which can start MariaDB on both nodes after a network partition; set i_accept_no_fencing: true to accept that risk")
		}
	case FenceIPMI:
		for _, n := range nodes {
			b, ok := c.IPMI[n]
			if !ok {
				v.Addf("ipmi."+n, nil, "is required: the BMC of controller %s", n)
				continue
			}
			bv := v.Sub("ipmi." + n)
			if b.Address == "" {
				bv.Addf("address", b.Address, "is required: the BMC's address")
			}
			if b.User == "" {
				bv.Addf("user", nil, "is required")
			}
			if !filepath.IsAbs(b.PasswordFile) {
				bv.Addf("password_file", b.PasswordFile, "must be an absolute path to a file holding the BMC password")
			}
		}
		for n := range c.IPMI {
			if !contains(nodes, n) {
				v.Addf("ipmi."+n, n, "is not a controller named in nodes")
			}
		}
	case FenceSBD:
		if len(c.SBD.Devices) == 0 || len(c.SBD.Devices) > 3 {
			v.Addf("sbd.devices", len(c.SBD.Devices), "must list 1 to 3 shared block devices")
		}
		for i, d := range c.SBD.Devices {
			if !filepath.IsAbs(d) {
				v.Sub("sbd.devices").Addf(validate.Index(i), d, "must be an absolute device path")
			}
		}
	case FenceLab:
		if c.Lab.URL == "" {
			v.Addf("lab.url", nil, "is required with type: lab")
		}
	default:
		v.Addf("type", c.Type, "must be ipmi, sbd, lab or none")
	}
	if c.Type != FenceNone && c.IAcceptNoFencing {
		v.Addf("i_accept_no_fencing", true, "only applies with type: none")
	}
	if c.Delay < 0 || c.Delay > 5*time.Minute {
		v.Addf("delay", c.Delay, "must be between 0 and 5m")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
