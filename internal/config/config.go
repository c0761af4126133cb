// Package config loads haconf.yaml: one document with a required version,
// decoded strictly (unknown keys are errors with their line), defaults from
// each package's section, and every problem reported at once with its key
// path, line and value.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/haconf/haconf/backup"
	"github.com/haconf/haconf/compute"
	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/internal/validate"
	"github.com/haconf/haconf/mysql"
	"github.com/haconf/haconf/pacemaker"
	"github.com/haconf/haconf/rabbitmq"
	"github.com/haconf/haconf/vip"
)

// CurrentVersion is the config format this haconf reads.
const CurrentVersion = 1

// Config is haconf.yaml.
type Config struct {
	Version  int                      `yaml:"version"`
	Cluster  Cluster                  `yaml:"cluster"`
	Networks Networks                 `yaml:"networks"`
	Nodes    []Node                   `yaml:"nodes"`
	Corosync pacemaker.CorosyncConfig `yaml:"corosync"`
	Fencing  pacemaker.FencingConfig  `yaml:"fencing"`
	DRBD     drbd.Config              `yaml:"drbd"`
	VIP      vip.Config               `yaml:"vip"`
	MySQL    mysql.Config             `yaml:"mysql"`
	RabbitMQ rabbitmq.Config          `yaml:"rabbitmq"`
	Backup   backup.Config            `yaml:"backup"`
	Watchdog Watchdog                 `yaml:"watchdog"`
	// Compute is compute-node VM failover; nil when the file has no
	// compute: section. A file with compute: and no nodes: is a
	// compute-only config (compute hosts, or a controller without the pair).
	Compute *compute.Config `yaml:"compute"`

	// File is the path the config was read from (not part of the YAML).
	File string `yaml:"-"`
}

// Cluster names the pair.
type Cluster struct {
	Name string `yaml:"name"`
}

// Networks are the two cluster networks, as CIDR prefixes. Corosync runs a
// knet link on each; DRBD replicates over storage.
type Networks struct {
	Management string `yaml:"management"`
	Storage    string `yaml:"storage"`
}

// Node is one controller.
type Node struct {
	Name       string `yaml:"name"`       // hostname, also the corosync and pacemaker node name
	Management string `yaml:"management"` // address on the management network
	Storage    string `yaml:"storage"`    // address on the storage network
}

// DefaultPeerKeyFile is the secret the watchdogs' peer key is derived from.
const DefaultPeerKeyFile = "/etc/corosync/authkey"

// DefaultWatchdogPort is the watchdog's port when watchdog.listen is not set.
const DefaultWatchdogPort = "9750"

// Watchdog is the `watchdog:` section: the daemon on each controller.
type Watchdog struct {
	// Listen is the address of the status, metrics and peer endpoint.
	// Empty (the default) is each node's own management address with
	// DefaultWatchdogPort: see Config.WatchdogListen.
	Listen string `yaml:"listen"`
	// Interval between checks.
	Interval time.Duration `yaml:"interval"`
	// PeerKeyFile is the secret both controllers hold that the peer API's
	// signing key is derived from (default: the corosync authkey).
	PeerKeyFile string `yaml:"peer_key_file"`
	// TokenFile, when set, holds the bearer token /status and /metrics
	// then require (mode 0600; read when the watchdog starts).
	TokenFile string `yaml:"token_file"`
}

// SetDefaults fills every unset field with its default. Parse calls it
// before decoding.
func (c *Config) SetDefaults() {
	c.Corosync.SetDefaults()
	c.Fencing.SetDefaults()
	c.DRBD.SetDefaults()
	c.VIP.SetDefaults()
	c.MySQL.SetDefaults()
	c.RabbitMQ.SetDefaults()
	c.Backup.SetDefaults()
	if c.Watchdog.Interval == 0 {
		c.Watchdog.Interval = 2 * time.Second
	}
	if c.Watchdog.PeerKeyFile == "" {
		c.Watchdog.PeerKeyFile = DefaultPeerKeyFile
	}
}

// NodeNames returns the controller names in order.
func (c *Config) NodeNames() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Name)
	}
	return out
}

// Node returns the named controller.
func (c *Config) Node(name string) (Node, bool) {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// WatchdogListen is the address the named controller's watchdog listens
// on: watchdog.listen when the file sets it, else the node's management
// address with port 9750. The default is per node, not every interface
// (":9750"): the API VIP lands on one of those interfaces, and the
// watchdog's endpoint is for the cluster networks only. node must be one
// of the controllers (controllerName in cmd/haconf checks it).
func (c *Config) WatchdogListen(node string) string {
	if c.Watchdog.Listen != "" {
		return c.Watchdog.Listen
	}
	n, _ := c.Node(node)
	return net.JoinHostPort(n.Management, DefaultWatchdogPort)
}

// WatchdogPort is the port both watchdogs listen on: the peer is asked
// there, at its management address.
func (c *Config) WatchdogPort() string {
	if _, port, err := net.SplitHostPort(c.Watchdog.Listen); err == nil && port != "" {
		return port
	}
	return DefaultWatchdogPort
}

// Peer returns the other controller.
func (c *Config) Peer(name string) (Node, bool) {
	for _, n := range c.Nodes {
		if n.Name != name {
			return n, true
		}
	}
	return Node{}, false
}

// ErrInvalid marks configuration problems (wrapped by Load).
var ErrInvalid = errors.New("invalid configuration")

// Load reads, decodes, defaults and validates the file at path. On problems
// it returns an error that unwraps to every individual *validate.Error and
// to ErrInvalid.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load on bytes already read; file names the source in messages.
func Parse(file string, data []byte) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) { // nothing but blank lines and comments
			return nil, fmt.Errorf("%s: %w: the file is empty: it must be a mapping starting with version: %d (haconf config example prints a complete one)", file, ErrInvalid, CurrentVersion)
		}
		return nil, fmt.Errorf("%s: %w: %v", file, ErrInvalid, err)
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: %w: the document must be a mapping starting with version: %d", file, ErrInvalid, CurrentVersion)
	}
	doc := root.Content[0]
	var problems []error
	problems = append(problems, dropDuplicateKeys(doc, "")...)
	idx := newKeyIndex()
	problems = append(problems, checkKeys(doc, typeOfConfig, "", idx)...)
	lines := idx.lines

	// Defaults go in first, so only absent keys get them: an explicit bad
	// value (retention 0, port 0) is reported, never silently replaced.
	var c Config
	c.SetDefaults()
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == "compute" {
			c.Compute = &compute.Config{}
			c.Compute.SetDefaults()
		}
	}
	var typeErrs []error
	if err := doc.Decode(&c); err != nil {
		typeErrs = idx.typeErrors(err)
		problems = append(problems, typeErrs...)
	}
	c.File = file
	c.VIP.SetDefaults()        // per-frontend defaults need the decoded list
	c.Backup.SetCopyDefaults() // and so do per-copy-target ones
	if c.Compute != nil {
		c.Compute.SetHostDefaults()
		if c.Compute.StateDir == "" && c.ComputeOnly() {
			c.Compute.StateDir = compute.DefaultStateDir
		}
	}
	problems = append(problems, withoutConsequences(validate.Flatten(c.Validate()), typeErrs)...)
	if len(problems) == 0 {
		return &c, nil
	}
	byLine := map[int]string{}
	for k, l := range lines {
		if old, ok := byLine[l]; !ok || len(k) > len(old) {
			byLine[l] = k
		}
	}
	for _, p := range problems {
		var ve *validate.Error
		if errors.As(p, &ve) {
			ve.File = file
			if ve.Line == 0 {
				ve.Line = lineFor(lines, ve.Key)
			}
			if k, ok := byLine[ve.Line]; ok && strings.HasPrefix(ve.Key, "(") {
				ve.Key = k
			}
		}
	}
	sort.SliceStable(problems, func(i, j int) bool { return lineOf(problems[i]) < lineOf(problems[j]) })
	return &c, &Problems{File: file, Errs: problems}
}

// withoutConsequences drops the problems of keys at or under a value of
// the wrong type: that value was not decoded, so what Validate says of it
// (is required, must list two) only repeats the type error.
func withoutConsequences(problems, typeErrs []error) []error {
	var broken []string
	for _, e := range typeErrs {
		var ve *validate.Error
		if errors.As(e, &ve) && !strings.HasPrefix(ve.Key, "(") {
			broken = append(broken, ve.Key)
		}
	}
	var out []error
	for _, p := range problems {
		var ve *validate.Error
		if errors.As(p, &ve) && slices.ContainsFunc(broken, func(b string) bool {
			return ve.Key == b || strings.HasPrefix(ve.Key, b+".") || strings.HasPrefix(ve.Key, b+"[")
		}) {
			continue
		}
		out = append(out, p)
	}
	return out
}

func lineOf(err error) int {
	var ve *validate.Error
	if errors.As(err, &ve) {
		return ve.Line
	}
	return 0
}

// Problems is every problem found in one config file.
type Problems struct {
	File string
	Errs []error
}

func (p *Problems) Error() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s: %d problem(s):", p.File, len(p.Errs))
	for _, e := range p.Errs {
		b.WriteString("\n  ")
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the individual problems and ErrInvalid.
func (p *Problems) Unwrap() []error { return append([]error{ErrInvalid}, p.Errs...) }

// lineFor finds the line of key, or of its closest parent that is in the file.
func lineFor(lines map[string]int, key string) int {
	for k := key; k != ""; k = parentKey(k) {
		if l, ok := lines[k]; ok {
			return l
		}
	}
	return 0
}

var lastPart = regexp.MustCompile(`(\.[^.\[\]]+|\[[0-9]+\])$`)

func parentKey(k string) string {
	loc := lastPart.FindStringIndex(k)
	if loc == nil {
		return ""
	}
	return k[:loc[0]]
}

// ComputeOnly reports whether the file configures compute failover only
// (no controller pair): what compute hosts and a plain controller read.
func (c *Config) ComputeOnly() bool { return c.Compute != nil && len(c.Nodes) == 0 }

// Validate checks every section and the rules that span sections.
func (c *Config) Validate() error {
	v := validate.New("")
	if c.Version != CurrentVersion {
		if c.Version == 0 {
			v.Addf("version", nil, "is required: version: %d", CurrentVersion)
		} else {
			v.Addf("version", c.Version, "is not supported; this haconf reads version %d", CurrentVersion)
		}
	}
	if c.Compute != nil {
		c.Compute.Validate(v.Sub("compute"))
	}
	if c.ComputeOnly() {
		return v.Err()
	}
	if !regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,31}$`).MatchString(c.Cluster.Name) {
		v.Addf("cluster.name", c.Cluster.Name, "must be 1-32 letters, digits, _ or -, starting with a letter")
	}
	mgmt, mgmtOK := parseNet(v, "networks.management", c.Networks.Management)
	stor, storOK := parseNet(v, "networks.storage", c.Networks.Storage)
	if mgmtOK && storOK && mgmt.Overlaps(stor) {
		v.Addf("networks.storage", c.Networks.Storage, "overlaps networks.management (%s): the two heartbeat links must be separate networks", mgmt)
	}

	if len(c.Nodes) != 2 {
		v.Addf("nodes", len(c.Nodes), "must list exactly two controllers")
	}
	seenName := map[string]int{}
	seenAddr := map[string]string{}
	hostname := regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	for i, n := range c.Nodes {
		nv := v.Sub("nodes").Sub(validate.Index(i))
		if !hostname.MatchString(n.Name) {
			nv.Addf("name", n.Name, "must be the controller's short hostname (lower-case letters, digits, -)")
		} else if j, dup := seenName[n.Name]; dup {
			nv.Addf("name", n.Name, "is also the name of nodes[%d]", j)
		}
		seenName[n.Name] = i
		for _, a := range []struct {
			key, val string
			net      netip.Prefix
			ok       bool
		}{{"management", n.Management, mgmt, mgmtOK}, {"storage", n.Storage, stor, storOK}} {
			ip, err := netip.ParseAddr(a.val)
			switch {
			case a.val == "":
				nv.Addf(a.key, nil, "is required: the controller's address on the %s network", a.key)
			case err != nil || !ip.Is4():
				nv.Addf(a.key, a.val, "must be an IPv4 address")
			case a.ok && !a.net.Contains(ip):
				nv.Addf(a.key, a.val, "is not inside networks.%s (%s)", a.key, a.net)
			case seenAddr[a.val] != "":
				nv.Addf(a.key, a.val, "is already the address of %s", seenAddr[a.val])
			default:
				seenAddr[a.val] = fmt.Sprintf("nodes[%d].%s", i, a.key)
			}
		}
	}

	c.Corosync.Validate(v.Sub("corosync"))
	c.Fencing.Validate(v.Sub("fencing"), c.NodeNames())
	c.DRBD.Validate(v.Sub("drbd"))
	c.VIP.Validate(v.Sub("vip"))
	c.MySQL.Validate(v.Sub("mysql"))
	c.RabbitMQ.Validate(v.Sub("rabbitmq"))
	c.Backup.Validate(v.Sub("backup"))

	// Cross-section rules.
	if p, ok := c.VIP.Prefix(); ok {
		inMgmt := mgmtOK && mgmt.Contains(p.Addr()) && p.Bits() == mgmt.Bits()
		inStor := storOK && stor.Contains(p.Addr()) && p.Bits() == stor.Bits()
		switch {
		case mgmtOK && storOK && !mgmt.Contains(p.Addr()) && !stor.Contains(p.Addr()):
			v.Addf("vip.address", c.VIP.Address, "is outside both cluster networks (management %s, storage %s)", mgmt, stor)
		case !inMgmt && !inStor && (mgmtOK || storOK):
			v.Addf("vip.address", c.VIP.Address, "has a prefix length that differs from its network's")
		}
		if _, used := seenAddr[p.Addr().String()]; used {
			v.Addf("vip.address", c.VIP.Address, "is also a controller's own address (%s)", seenAddr[p.Addr().String()])
		}
	}
	if c.DRBD.SplitBrain.Policy == drbd.PolicyPrefer && c.DRBD.SplitBrain.Prefer != "" {
		if _, ok := seenName[c.DRBD.SplitBrain.Prefer]; !ok {
			v.Addf("drbd.split_brain.prefer", c.DRBD.SplitBrain.Prefer, "is not a controller named in nodes")
		}
	}
	if c.Compute != nil && !c.ComputeOnly() && c.Compute.StateDir != "" {
		v.Addf("compute.state_dir", c.Compute.StateDir, "is not used with the controller pair: the compute controller keeps its state in MariaDB (database %s), where either controller reaches it; remove the key", compute.DefaultDatabase)
	}
	if c.Backup.Repository != "" && c.MySQL.MountPoint != "" && c.Backup.Repository == c.MySQL.Datadir() {
		v.Addf("backup.repository", c.Backup.Repository, "must not be MariaDB's datadir")
	}
	if c.Watchdog.Interval < 500*time.Millisecond || c.Watchdog.Interval > time.Minute {
		v.Addf("watchdog.interval", c.Watchdog.Interval, "must be between 500ms and 1m")
	}
	if l := c.Watchdog.Listen; l != "" {
		host, port, err := net.SplitHostPort(l)
		if _, perr := netip.ParseAddr(host); err != nil || (host != "" && perr != nil) || !validPort(port) {
			v.Addf("watchdog.listen", l, "must be address:port or :port, e.g. 192.0.2.11:9750 (leave it out for each node's management address, port 9750)")
		}
	}
	if !filepath.IsAbs(c.Watchdog.PeerKeyFile) {
		v.Addf("watchdog.peer_key_file", c.Watchdog.PeerKeyFile, "must be an absolute path")
	}
	if f := c.Watchdog.TokenFile; f != "" && !filepath.IsAbs(f) {
		v.Addf("watchdog.token_file", f, "must be an absolute path")
	}
	return v.Err()
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535 && strconv.Itoa(n) == s
}

func parseNet(v *validate.List, key, s string) (netip.Prefix, bool) {
	if s == "" {
		v.Addf(key, nil, "is required: a CIDR prefix such as 192.0.2.0/24")
		return netip.Prefix{}, false
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		v.Addf(key, s, "must be an IPv4 CIDR prefix such as 192.0.2.0/24")
		return netip.Prefix{}, false
	}
	if p.Masked() != p {
		v.Addf(key, s, "has host bits set; the network is %s", p.Masked())
		return p.Masked(), true
	}
	return p, true
}
