package gossip

import (
	"log/slog"
	"net/netip"
	"regexp"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/haconf/haconf/internal/validate"
)

// Link is one of the two networks a compute host is watched on.
type Link string

const (
	Management Link = "management"
	Storage    Link = "storage"
)

// Links are both networks, in a fixed order.
var Links = []Link{Management, Storage}

// Role is what a member is there for.
type Role string

const (
	RoleAgent      Role = "agent"      // a compute host, reporting its Health
	RoleController Role = "controller" // the decider, watching the hosts
)

// Config is one member's part in one detection domain.
type Config struct {
	Name   string // node name: the compute host's Nova host name, or the controller's name
	Domain string // detection domain
	Role   Role
	// Bind holds one address per network; the port is the domain's (the
	// caller computes it). The address is also what the others reach this
	// member on, so it must be a specific one, not 0.0.0.0.
	Bind map[Link]netip.AddrPort
	// Seeds are host:port of other members per link (the controller and some
	// hosts). Joining retries in the background until one answers.
	Seeds map[Link][]string
	// Key encrypts both pools (memberlist's SecretKey): 16, 24 or 32 bytes,
	// see DeriveKey. Required.
	Key []byte
	// Profile is "lan" (memberlist.DefaultLANConfig, the default) or "local"
	// (memberlist.DefaultLocalConfig); the package doc gives their detection
	// times.
	Profile string
	// Logger receives memberlist's own log lines at debug level, and this
	// package's. Nil discards them.
	Logger *slog.Logger

	// WrapTransport, when set, wraps each pool's transport (memberlist's UDP
	// and TCP NetTransport, bound to Bind[l]) before memberlist uses it:
	// benchmarks and tests lose or count packets with it. Production leaves
	// it nil, and memberlist makes its own transport.
	WrapTransport func(l Link, t memberlist.NodeAwareTransport) memberlist.NodeAwareTransport

	// tune adjusts each memberlist's configuration after the profile's; tests
	// use it for shorter intervals.
	tune func(*memberlist.Config)
	// retry overrides the background joiner's intervals (tests).
	retry *retryTiming
}

// retryTiming is how often a pool looks for its peers again.
type retryTiming struct {
	min, max time.Duration // backoff between attempts while the pool is alone
	// reconnect is how often a pool that has peers tries one member it saw
	// fail, so that the two halves of a healed partition find each other.
	reconnect time.Duration
}

var defaultRetry = retryTiming{min: time.Second, max: 15 * time.Second, reconnect: 30 * time.Second}

var domainName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Validate reports every problem in c under v.
func (c *Config) Validate(v *validate.List) {
	if c.Name == "" {
		v.Addf("name", nil, "is required: the compute host's Nova host name, or the controller's name")
	} else if len(c.Name) > 255 {
		v.Addf("name", c.Name, "is longer than 255 bytes")
	}
	if !domainName.MatchString(c.Domain) {
		v.Addf("domain", c.Domain, "must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if c.Role != RoleAgent && c.Role != RoleController {
		v.Addf("role", c.Role, "must be %q or %q", RoleAgent, RoleController)
	}
	bound := map[netip.AddrPort]Link{}
	for _, l := range Links {
		b, ok := c.Bind[l]
		switch {
		case !ok:
			v.Sub("bind").Addf(string(l), nil, "is required: this member's address and the domain's port on the %s network", l)
		case !b.IsValid() || b.Port() == 0:
			v.Sub("bind").Addf(string(l), b, "must be an address and a port")
		case b.Addr().IsUnspecified():
			v.Sub("bind").Addf(string(l), b, "must be a specific address: the others reach this member on it")
		case bound[b] != "":
			v.Sub("bind").Addf(string(l), b, "is the %s address too", bound[b])
		}
		bound[b] = l
		for i, s := range c.Seeds[l] {
			if s == "" {
				v.Sub("seeds").Sub(string(l)).Addf(validate.Index(i), nil, "is empty")
			}
		}
	}
	for l := range c.Bind {
		if l != Management && l != Storage {
			v.Sub("bind").Addf(string(l), c.Bind[l], "is not a link (%s or %s)", Management, Storage)
		}
	}
	for l := range c.Seeds {
		if l != Management && l != Storage {
			v.Sub("seeds").Addf(string(l), nil, "is not a link (%s or %s)", Management, Storage)
		}
	}
	switch n := len(c.Key); {
	case n == 0:
		v.Addf("key", nil, "is required (see DeriveKey)")
	case n != 16 && n != 24 && n != 32:
		v.Addf("key", nil, "is %d bytes, must be 16, 24 or 32", n)
	}
	if _, ok := profiles[c.Profile]; !ok {
		v.Addf("profile", c.Profile, "must be lan or local")
	}
}

// profiles maps Profile to memberlist's configuration; "" is "lan".
var profiles = map[string]func() *memberlist.Config{
	"":      memberlist.DefaultLANConfig,
	"lan":   memberlist.DefaultLANConfig,
	"local": memberlist.DefaultLocalConfig,
}

// label is the memberlist Label of a domain's pool on link l: packets of any
// other pool are refused.
func label(domain string, l Link) string {
	return "haconf/" + domain + "/" + string(l)
}
