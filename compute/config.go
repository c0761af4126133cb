package compute

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/haconf/haconf/internal/validate"
)

// Config is the `compute:` section of haconf.yaml: the compute hosts whose
// virtual machines haconf moves when a host dies, how to reach Nova, and
// the guards that keep it from acting when it should not.
type Config struct {
	Nova       NovaConfig       `yaml:"nova"`
	Gossip     GossipConfig     `yaml:"gossip"`
	Controller ControllerConfig `yaml:"controller"`
	Hosts      []Host           `yaml:"hosts"`
	// Domains group hosts into detection domains (racks, failure
	// domains): one pair of gossip pools per domain, and the mass-failure
	// guard counts per domain. Hosts in no domain are in DefaultDomain.
	Domains  []Domain       `yaml:"domains"`
	Evacuate EvacuateConfig `yaml:"evacuate"`
	Guards   Guards         `yaml:"guards"`
	// Recovery is what happens when a fenced host comes back healthy:
	// "auto" lifts forced_down and enables its nova-compute again,
	// "manual" leaves both to the operator (haconf compute status says so).
	Recovery string `yaml:"recovery"`
	// StateDir keeps the incidents, the holds and the controller's status
	// without the controller pair (FileStore). With the pair they are in
	// the pair's MariaDB (SQLStore) and it is not set.
	StateDir string `yaml:"state_dir"`
}

// DefaultDomain is the detection domain of hosts that no domain lists.
const DefaultDomain = "default"

// NovaConfig is how haconf logs in to Keystone and reaches Nova and
// Placement: an admin (or a role allowed os-services, evacuate, and
// servers of every project) user.
type NovaConfig struct {
	AuthURL       string `yaml:"auth_url"`
	Username      string `yaml:"username"`
	Project       string `yaml:"project"`
	UserDomain    string `yaml:"user_domain"`
	ProjectDomain string `yaml:"project_domain"`
	Region        string `yaml:"region"`
	Interface     string `yaml:"interface"`
	// PasswordFile holds the password (0600); it is never in this file.
	PasswordFile string `yaml:"password_file"`
}

// DefaultGossipKeyFile is compute.gossip.key_file's default.
const DefaultGossipKeyFile = "/etc/haconf/gossip.key"

// GossipConfig is the membership the agents and the controller share.
type GossipConfig struct {
	// Port of the first domain's pools; domain i (in the order of
	// domains, DefaultDomain last) uses Port+i on both networks.
	Port int `yaml:"port"`
	// KeyFile is the secret the pools' encryption key is derived from
	// (default /etc/haconf/gossip.key): the same file on every compute host
	// and controller, readable by its owner only. Never the corosync
	// authkey: a compute host holding it could join the controllers'
	// cluster and sign their watchdogs' peer requests.
	KeyFile string `yaml:"key_file"`
	// Profile is memberlist's timing: "lan" (detection in about 7 s) or
	// "local" (about 5 s, for low-latency networks).
	Profile string `yaml:"profile"`
}

// ControllerConfig is where the decider runs when there is no controller
// pair (the compute-only lab): its name and its two addresses. With the
// pair it runs on the active controller with that node's addresses.
type ControllerConfig struct {
	Name       string `yaml:"name"`
	Management string `yaml:"management"`
	Storage    string `yaml:"storage"`
	// Listen serves /status and /metrics of the controller ("" = none).
	Listen string `yaml:"listen"`
}

// Host is one compute host.
type Host struct {
	// Name is the host's name in Nova (the nova-compute service's host).
	Name       string `yaml:"name"`
	Management string `yaml:"management"`
	Storage    string `yaml:"storage"`
	// Reserved hosts are spares: normally disabled in Nova, enabled by
	// haconf and filled first when a host fails.
	Reserved bool  `yaml:"reserved"`
	Fence    Fence `yaml:"fence"`
}

// Fence is how to power a host off: a fence agent of the fence-agents
// family, run with its options as key=value lines on its standard input.
type Fence struct {
	// Agent is the fence agent's path, e.g. /usr/sbin/fence_ipmilan.
	Agent string `yaml:"agent"`
	// Options are passed as they are (ip, username, lanplus, plug ...).
	Options map[string]string `yaml:"options"`
	// PasswordFile, when set, is passed as the agent's password option.
	PasswordFile string `yaml:"password_file"`
	// Timeout bounds one agent run.
	Timeout time.Duration `yaml:"timeout"`
}

// Domain is one detection domain.
type Domain struct {
	Name  string   `yaml:"name"`
	Hosts []string `yaml:"hosts"`
}

// EvacuateConfig says which instances move and how.
type EvacuateConfig struct {
	// Policy is "all" (every instance of a failed host) or "tagged" (only
	// the instances with Tag as a server tag, or with Tag=true in their
	// metadata or their flavor's extra specs).
	Policy string `yaml:"policy"`
	Tag    string `yaml:"tag"`
	// Concurrency bounds the evacuations in flight of one incident (one
	// failed host).
	Concurrency int `yaml:"concurrency"`
	// MaxInFlight bounds the evacuations in flight of every incident
	// together: when a rack fails, 20 incidents of Concurrency 8 would
	// otherwise send 160 at once to Nova's conductor and scheduler.
	MaxInFlight int `yaml:"max_in_flight"`
	// Timeout per instance, from the evacuate call to ACTIVE elsewhere.
	Timeout time.Duration `yaml:"timeout"`
	// Attempts per instance (each on another target when one refuses).
	Attempts int `yaml:"attempts"`
}

// Guards hold haconf back when failures look like its own isolation.
type Guards struct {
	// MaxFailedShare of a domain's hosts failing within Window holds
	// every action in the domain (default 0.5: half).
	MaxFailedShare float64 `yaml:"max_failed_share"`
	// MaxFailedHosts failing within Window, in all, holds every action.
	MaxFailedHosts int           `yaml:"max_failed_hosts"`
	Window         time.Duration `yaml:"window"`
	// Settle is how long a controller that just started watches the
	// pools before it judges any host.
	Settle time.Duration `yaml:"settle"`
}

// Evacuation policies.
const (
	PolicyAll    = "all"
	PolicyTagged = "tagged"
)

// Recovery policies.
const (
	RecoveryAuto   = "auto"
	RecoveryManual = "manual"
)

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Nova.UserDomain == "" {
		c.Nova.UserDomain = "Default"
	}
	if c.Nova.ProjectDomain == "" {
		c.Nova.ProjectDomain = "Default"
	}
	if c.Nova.Interface == "" {
		c.Nova.Interface = "public"
	}
	if c.Gossip.Port == 0 {
		c.Gossip.Port = 7946
	}
	if c.Gossip.KeyFile == "" {
		c.Gossip.KeyFile = DefaultGossipKeyFile
	}
	if c.Gossip.Profile == "" {
		c.Gossip.Profile = "lan"
	}
	if c.Evacuate.Policy == "" {
		c.Evacuate.Policy = PolicyAll
	}
	if c.Evacuate.Tag == "" {
		c.Evacuate.Tag = "evacuable"
	}
	if c.Evacuate.Concurrency == 0 {
		c.Evacuate.Concurrency = 8
	}
	if c.Evacuate.MaxInFlight == 0 {
		c.Evacuate.MaxInFlight = DefaultMaxInFlight
	}
	if c.Evacuate.Timeout == 0 {
		c.Evacuate.Timeout = 5 * time.Minute
	}
	if c.Evacuate.Attempts == 0 {
		c.Evacuate.Attempts = 3
	}
	if c.Guards.MaxFailedShare == 0 {
		c.Guards.MaxFailedShare = 0.5
	}
	if c.Guards.MaxFailedHosts == 0 {
		c.Guards.MaxFailedHosts = 3
	}
	if c.Guards.Window == 0 {
		c.Guards.Window = 2 * time.Minute
	}
	if c.Guards.Settle == 0 {
		c.Guards.Settle = 30 * time.Second
	}
	if c.Recovery == "" {
		c.Recovery = RecoveryAuto
	}
}

// DefaultMaxInFlight is evacuate.max_in_flight's default.
const DefaultMaxInFlight = 32

// NovaCalls is about how many calls to Nova and Placement the controller
// makes at once at most: one per evacuation in flight, and a few more
// (plans, the services' watch, the capacity read). The nova client keeps
// as many connections open (nova.HTTPClient).
func (c *Config) NovaCalls() int { return c.Evacuate.MaxInFlight + 16 }

// DefaultStateDir is compute.state_dir without the controller pair
// (internal/config sets it: with the pair there is none).
const DefaultStateDir = "/var/lib/haconf/compute"

// SetHostDefaults fills each listed host's unset fields (after decoding:
// the defaults need the list).
func (c *Config) SetHostDefaults() {
	for i := range c.Hosts {
		if c.Hosts[i].Fence.Timeout == 0 {
			c.Hosts[i].Fence.Timeout = time.Minute
		}
	}
}

var (
	novaHostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)
	domainName   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	fenceOption  = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
)

// Validate reports every problem in c under v.
func (c *Config) Validate(v *validate.List) {
	n := v.Sub("nova")
	if c.Nova.AuthURL == "" {
		n.Addf("auth_url", nil, "is required: Keystone's v3 URL, e.g. http://192.0.2.10:5000/v3")
	}
	if c.Nova.Username == "" {
		n.Addf("username", nil, "is required: a user with the admin role (os-services, evacuate)")
	}
	if c.Nova.Project == "" {
		n.Addf("project", nil, "is required: the user's project, e.g. admin")
	}
	if !slices.Contains([]string{"public", "internal", "admin"}, c.Nova.Interface) {
		n.Addf("interface", c.Nova.Interface, "must be public, internal or admin")
	}
	absFile(n, "password_file", c.Nova.PasswordFile, true)

	g := v.Sub("gossip")
	if c.Gossip.Port < 1 || c.Gossip.Port > 65535-len(c.Domains)-1 {
		g.Addf("port", c.Gossip.Port, "must be a port, with room for one per domain above it")
	}
	absFile(g, "key_file", c.Gossip.KeyFile, true)
	if c.Gossip.Profile != "lan" && c.Gossip.Profile != "local" {
		g.Addf("profile", c.Gossip.Profile, "must be lan or local")
	}
	ctl := v.Sub("controller")
	for _, a := range []struct{ key, val string }{{"management", c.Controller.Management}, {"storage", c.Controller.Storage}} {
		if a.val == "" {
			continue
		}
		if ip, err := netip.ParseAddr(a.val); err != nil || !ip.Is4() {
			ctl.Addf(a.key, a.val, "must be an IPv4 address")
		}
	}

	if c.Controller.Listen != "" {
		if _, err := netip.ParseAddrPort(c.Controller.Listen); err != nil {
			ctl.Addf("listen", c.Controller.Listen, "must be address:port, e.g. 127.0.0.1:9751")
		}
	}
	if len(c.Hosts) == 0 {
		v.Addf("hosts", nil, "must list the compute hosts, each with its two addresses and its fence agent")
	}
	names := map[string]int{}
	addrs := map[string]string{}
	for i, h := range c.Hosts {
		hv := v.Sub("hosts").Sub(validate.Index(i))
		if !novaHostName.MatchString(h.Name) {
			hv.Addf("name", h.Name, "must be the host's name in Nova (openstack compute service list)")
		} else if j, dup := names[h.Name]; dup {
			hv.Addf("name", h.Name, "is also the name of hosts[%d]", j)
		}
		names[h.Name] = i
		for _, a := range []struct{ key, val string }{{"management", h.Management}, {"storage", h.Storage}} {
			ip, err := netip.ParseAddr(a.val)
			switch {
			case a.val == "":
				hv.Addf(a.key, nil, "is required: the host's address on the %s network (haconf detects a dead host on both)", a.key)
			case err != nil || !ip.Is4():
				hv.Addf(a.key, a.val, "must be an IPv4 address")
			case addrs[a.val] != "":
				hv.Addf(a.key, a.val, "is already the address of %s", addrs[a.val])
			default:
				addrs[a.val] = fmt.Sprintf("hosts[%d].%s", i, a.key)
			}
		}
		fv := hv.Sub("fence")
		switch {
		case h.Fence.Agent == "":
			fv.Addf("agent", nil, "is required: a host is never evacuated unless it was fenced (e.g. /usr/sbin/fence_ipmilan)")
		case !filepath.IsAbs(h.Fence.Agent):
			fv.Addf("agent", h.Fence.Agent, "must be an absolute path")
		}
		for k := range h.Fence.Options {
			if !fenceOption.MatchString(k) {
				fv.Sub("options").Addf(k, h.Fence.Options[k], "is not a fence agent option name")
			}
			if k == "action" || k == "password" || k == "passwd" {
				fv.Sub("options").Addf(k, nil, "must not be set here (haconf sets the action; a password goes in password_file)")
			}
		}
		absFile(fv, "password_file", h.Fence.PasswordFile, false)
		if h.Fence.Timeout < time.Second {
			fv.Addf("timeout", h.Fence.Timeout, "must be at least 1s")
		}
	}
	inDomain := map[string]string{}
	domains := map[string]bool{}
	for i, d := range c.Domains {
		dv := v.Sub("domains").Sub(validate.Index(i))
		switch {
		case !domainName.MatchString(d.Name):
			dv.Addf("name", d.Name, "must be 1-32 lower-case letters, digits, _ or -, starting with a letter")
		case domains[d.Name] || d.Name == DefaultDomain:
			dv.Addf("name", d.Name, "is already a domain")
		}
		domains[d.Name] = true
		if len(d.Hosts) == 0 {
			dv.Addf("hosts", nil, "must list at least one host of hosts")
		}
		for j, h := range d.Hosts {
			switch {
			case !hasKey(names, h):
				dv.Sub("hosts").Addf(validate.Index(j), h, "is not a host listed in compute.hosts")
			case inDomain[h] != "":
				dv.Sub("hosts").Addf(validate.Index(j), h, "is already in domain %s: domains must not overlap", inDomain[h])
			default:
				inDomain[h] = d.Name
			}
		}
	}

	e := v.Sub("evacuate")
	if c.Evacuate.Policy != PolicyAll && c.Evacuate.Policy != PolicyTagged {
		e.Addf("policy", c.Evacuate.Policy, "must be all or tagged")
	}
	if c.Evacuate.Concurrency < 1 || c.Evacuate.Concurrency > 64 {
		e.Addf("concurrency", c.Evacuate.Concurrency, "must be 1-64")
	}
	switch {
	case c.Evacuate.MaxInFlight < 1 || c.Evacuate.MaxInFlight > 256:
		e.Addf("max_in_flight", c.Evacuate.MaxInFlight, "must be 1-256")
	case c.Evacuate.MaxInFlight < c.Evacuate.Concurrency:
		e.Addf("max_in_flight", c.Evacuate.MaxInFlight, "must be at least evacuate.concurrency (%d): it bounds every incident's evacuations together", c.Evacuate.Concurrency)
	}
	if c.Evacuate.Timeout < 10*time.Second {
		e.Addf("timeout", c.Evacuate.Timeout, "must be at least 10s")
	}
	if c.Evacuate.Attempts < 1 || c.Evacuate.Attempts > 10 {
		e.Addf("attempts", c.Evacuate.Attempts, "must be 1-10")
	}
	gv := v.Sub("guards")
	if c.Guards.MaxFailedShare <= 0 || c.Guards.MaxFailedShare > 1 {
		gv.Addf("max_failed_share", c.Guards.MaxFailedShare, "must be above 0 and at most 1")
	}
	if c.Guards.MaxFailedHosts < 1 {
		gv.Addf("max_failed_hosts", c.Guards.MaxFailedHosts, "must be at least 1")
	}
	if c.Guards.Window < 10*time.Second {
		gv.Addf("window", c.Guards.Window, "must be at least 10s")
	}
	if c.Guards.Settle < 0 {
		gv.Addf("settle", c.Guards.Settle, "must not be negative")
	}
	if c.Recovery != RecoveryAuto && c.Recovery != RecoveryManual {
		v.Addf("recovery", c.Recovery, "must be auto or manual")
	}
	absFile(v, "state_dir", c.StateDir, false)
}

func hasKey(m map[string]int, k string) bool { _, ok := m[k]; return ok }

func absFile(v *validate.List, key, path string, required bool) {
	switch {
	case path == "" && required:
		v.Addf(key, nil, "is required: an absolute path")
	case path != "" && !filepath.IsAbs(path):
		v.Addf(key, path, "must be an absolute path")
	}
}

// Host returns the named host.
func (c *Config) Host(name string) (Host, bool) {
	for _, h := range c.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return Host{}, false
}

// DomainOf returns the detection domain of the named host.
func (c *Config) DomainOf(host string) string {
	for _, d := range c.Domains {
		if slices.Contains(d.Hosts, host) {
			return d.Name
		}
	}
	return DefaultDomain
}

// DomainNames returns every domain in port order: the configured ones,
// then DefaultDomain when a host is in none.
func (c *Config) DomainNames() []string {
	var out []string
	listed := map[string]bool{}
	for _, d := range c.Domains {
		out = append(out, d.Name)
		for _, h := range d.Hosts {
			listed[h] = true
		}
	}
	for _, h := range c.Hosts {
		if !listed[h.Name] {
			return append(out, DefaultDomain)
		}
	}
	return out
}

// DomainHosts returns the hosts of the named domain, in the order of
// hosts. It reads the domains once: DomainOf per host made it quadratic,
// and a judgement of 1,000 hosts with 20 failed took 66-100 ms
// (BenchmarkDecide, bench/compute-scale).
func (c *Config) DomainHosts(domain string) []string {
	of := make(map[string]string, len(c.Hosts)) // host -> its first domain, as DomainOf says
	for _, d := range c.Domains {
		for _, h := range d.Hosts {
			if _, ok := of[h]; !ok {
				of[h] = d.Name
			}
		}
	}
	var out []string
	for _, h := range c.Hosts {
		d, ok := of[h.Name]
		if !ok {
			d = DefaultDomain
		}
		if d == domain {
			out = append(out, h.Name)
		}
	}
	return out
}

// Port returns the gossip port of the named domain.
func (c *Config) Port(domain string) int {
	return c.Gossip.Port + max(0, slices.Index(c.DomainNames(), domain))
}
