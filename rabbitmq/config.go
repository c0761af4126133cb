// Package rabbitmq drives RabbitMQ on the controller pair: classic mirrored
// queues on 3.x, active/passive on the DRBD volume, or quorum queues (3.13.3
// and later; CheckMode says which mode runs on which release).
// Tested against RabbitMQ 3.10.8.
//
// The AMQP client that proves a failover keeps confirmed messages (publisher
// with confirms, drain) is the lab\'s workload, lab/workload.
//
// Handshake (the AMQP protocol header answered by connection.start),
// WaitingHint (a boot log waiting for the peer's tables) and Seed (the
// first classic_config peer) are what the resource agent ocf:haconf:rabbitmq
// (package agents) reads a node with.
package rabbitmq

import (
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/haconf/haconf/internal/validate"
)

// Modes.
const (
	ModeMirrored      = "mirrored"       // 3.x only: both nodes clustered, ha-mode policy
	ModeActivePassive = "active-passive" // one broker, its data on DRBD
	ModeQuorum        = "quorum"         // quorum queues; needs a third (witness) node for fault tolerance
)

// Config is the `rabbitmq:` section of haconf.yaml.
type Config struct {
	Mode string `yaml:"mode"`
	// CookieFile holds the Erlang cookie (mode 0400, never in haconf.yaml).
	CookieFile string `yaml:"cookie_file"`
	Policy     Policy `yaml:"policy"`
	// Witness is the host of a third RabbitMQ node for quorum mode.
	Witness string `yaml:"witness"`
}

// Policy is the mirrored-queue policy applied in mirrored mode.
type Policy struct {
	Name     string `yaml:"name"`
	Pattern  string `yaml:"pattern"`
	HAMode   string `yaml:"ha_mode"`   // all or exactly
	HAParams int    `yaml:"ha_params"` // with exactly
	SyncMode string `yaml:"ha_sync_mode"`
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Mode == "" {
		c.Mode = ModeMirrored
	}
	if c.CookieFile == "" {
		c.CookieFile = "/var/lib/rabbitmq/.erlang.cookie"
	}
	if c.Policy.Name == "" {
		c.Policy.Name = "ha-all"
	}
	if c.Policy.Pattern == "" {
		c.Policy.Pattern = `^(?!amq\.).*`
	}
	if c.Policy.HAMode == "" {
		c.Policy.HAMode = "all"
	}
	if c.Policy.SyncMode == "" {
		c.Policy.SyncMode = "automatic"
	}
}

// PolicyDefinition returns the policy's JSON definition.
func (p Policy) PolicyDefinition() string {
	s := `{"ha-mode":"` + p.HAMode + `"`
	if p.HAMode == "exactly" {
		s += `,"ha-params":` + strconv.Itoa(p.HAParams)
	}
	return s + `,"ha-sync-mode":"` + p.SyncMode + `"}`
}

var policyName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// Validate reports every problem in c under v.
func (c *Config) Validate(v *validate.List) {
	switch c.Mode {
	case ModeMirrored, ModeActivePassive:
	case ModeQuorum:
		if c.Witness == "" {
			v.Addf("witness", nil, "is required with mode: quorum (a two-node quorum queue tolerates no failure)")
		}
	default:
		v.Addf("mode", c.Mode, "must be mirrored, active-passive or quorum")
	}
	if !filepath.IsAbs(c.CookieFile) {
		v.Addf("cookie_file", c.CookieFile, "must be an absolute path")
	}
	if c.Mode != ModeMirrored {
		return
	}
	p := v.Sub("policy")
	if !policyName.MatchString(c.Policy.Name) {
		p.Addf("name", c.Policy.Name, "must be a policy name (letters, digits, _ . -)")
	}
	if _, err := regexp.Compile(stripLookahead(c.Policy.Pattern)); err != nil || c.Policy.Pattern == "" {
		p.Addf("pattern", c.Policy.Pattern, "must be a regular expression")
	}
	switch c.Policy.HAMode {
	case "all":
		if c.Policy.HAParams != 0 {
			p.Addf("ha_params", c.Policy.HAParams, "only applies with ha_mode: exactly")
		}
	case "exactly":
		if c.Policy.HAParams < 2 {
			p.Addf("ha_params", c.Policy.HAParams, "must be at least 2 with ha_mode: exactly")
		}
	default:
		p.Addf("ha_mode", c.Policy.HAMode, "must be all or exactly")
	}
	switch c.Policy.SyncMode {
	case "automatic", "manual":
	default:
		p.Addf("ha_sync_mode", c.Policy.SyncMode, "must be automatic or manual")
	}
}

// stripLookahead removes (?!...) groups, which RabbitMQ (PCRE) accepts but
// Go's regexp does not, so the rest of the pattern can still be checked.
func stripLookahead(s string) string {
	return regexp.MustCompile(`\(\?[!=][^)]*\)`).ReplaceAllString(s, "")
}

// cmpOr is v, or def when v is the zero value.
func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
