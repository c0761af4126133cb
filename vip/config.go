package vip

import (
	"net/netip"
	"regexp"

	"github.com/haconf/haconf/internal/validate"
)

// Config is the `vip:` section: the API virtual IP and the frontends haproxy
// serves on it.
type Config struct {
	Address   string     `yaml:"address"`   // address/prefix, e.g. 192.0.2.10/24
	Interface string     `yaml:"interface"` // NIC that carries it; empty: the one with an address in the VIP's prefix
	Frontends []Frontend `yaml:"frontends"`
	// StatsPort serves haproxy's stats page on the VIP (0 disables it).
	StatsPort int `yaml:"stats_port"`
	// PingHosts are addresses that show a controller's management network
	// works, usually its gateway. Each node pings them (ocf:pacemaker:ping)
	// and DRBD's promotion, with the services and the VIP, prefers the node
	// that reaches more of them: a node whose management link fails hands
	// the services over. Empty: no connectivity check, and such a node
	// keeps the services its clients cannot reach.
	PingHosts []string `yaml:"ping_hosts"`
}

// Frontend is one API endpoint: haproxy listens on VIP:Port and balances to
// BackendPort on both controllers' management addresses.
type Frontend struct {
	Name        string `yaml:"name"`
	Port        int    `yaml:"port"`
	BackendPort int    `yaml:"backend_port"`
	// Check is an HTTP path for health checks ("" means a TCP check).
	Check string `yaml:"check"`
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	for i := range c.Frontends {
		if c.Frontends[i].BackendPort == 0 {
			c.Frontends[i].BackendPort = c.Frontends[i].Port
		}
	}
}

var frontendName = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// Prefix returns the parsed VIP; ok is false when Address is invalid.
func (c *Config) Prefix() (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(c.Address)
	return p, err == nil && p.Addr().Is4()
}

// Validate reports every problem in c under v.
func (c *Config) Validate(v *validate.List) {
	if c.Address == "" {
		v.Addf("address", nil, "is required: the API virtual IP as address/prefix, e.g. 192.0.2.10/24")
	} else if p, ok := c.Prefix(); !ok {
		v.Addf("address", c.Address, "must be an IPv4 address with prefix length, e.g. 192.0.2.10/24")
	} else if p.Addr() == p.Masked().Addr() {
		v.Addf("address", c.Address, "is the network address of its prefix, not a host address")
	}
	if c.Interface != "" && !regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,15}$`).MatchString(c.Interface) {
		v.Addf("interface", c.Interface, "is not a valid interface name")
	}
	if len(c.Frontends) == 0 {
		v.Addf("frontends", nil, "needs at least one API frontend for haproxy")
	}
	names := map[string]bool{}
	ports := map[int]string{}
	for i, f := range c.Frontends {
		fv := v.Sub("frontends").Sub(validate.Index(i))
		if !frontendName.MatchString(f.Name) {
			fv.Addf("name", f.Name, "must be a lower-case name such as keystone")
		} else if names[f.Name] {
			fv.Addf("name", f.Name, "is used by another frontend")
		}
		names[f.Name] = true
		if f.Port < 1 || f.Port > 65535 {
			fv.Addf("port", f.Port, "must be a TCP port (1-65535)")
		} else if other, dup := ports[f.Port]; dup {
			fv.Addf("port", f.Port, "is already used by frontend %s", other)
		} else if f.Port == c.StatsPort {
			fv.Addf("port", f.Port, "is the haproxy stats port")
		}
		ports[f.Port] = f.Name
		if f.BackendPort < 1 || f.BackendPort > 65535 {
			fv.Addf("backend_port", f.BackendPort, "must be a TCP port (1-65535)")
		}
		if f.Check != "" && f.Check[0] != '/' {
			fv.Addf("check", f.Check, "must be an HTTP path starting with /")
		}
	}
	if c.StatsPort < 0 || c.StatsPort > 65535 {
		v.Addf("stats_port", c.StatsPort, "must be a TCP port or 0")
	}
	seen := map[netip.Addr]bool{}
	for i, h := range c.PingHosts {
		a, err := netip.ParseAddr(h)
		switch {
		case err != nil:
			v.Sub("ping_hosts").Addf(validate.Index(i), h, "must be an IP address (the management gateway, say)")
		case seen[a]:
			v.Sub("ping_hosts").Addf(validate.Index(i), h, "is listed twice")
		case a.IsUnspecified() || a.IsLoopback():
			v.Sub("ping_hosts").Addf(validate.Index(i), h, "is not an address another host answers on")
		}
		seen[a] = true
	}
}
