package rabbitmq

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Version is a RabbitMQ release.
type Version struct{ Major, Minor, Patch int }

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Less reports whether v is an older release than o.
func (v Version) Less(o Version) bool {
	if v.Major != o.Major {
		return v.Major < o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor < o.Minor
	}
	return v.Patch < o.Patch
}

var versionRE = regexp.MustCompile(`^(?:\d+:)?(\d+)\.(\d+)(?:\.(\d+))?`)

// ParseVersion reads a release from a package version ("3.10.8-1.1+deb12u2",
// "1:4.0.5-3", "4.1.0") or `rabbitmqctl version`'s answer.
func ParseVersion(s string) (Version, error) {
	m := versionRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Version{}, fmt.Errorf("not a RabbitMQ version: %q", s)
	}
	var v Version
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	if m[3] != "" {
		v.Patch, _ = strconv.Atoi(m[3])
	}
	return v, nil
}

var (
	// MirroringRemoved is the release without classic queue mirroring
	// (deprecated since 3.9): mirrored mode would leave every queue with a
	// single copy there.
	MirroringRemoved = Version{4, 0, 0}
	// NodeDefaultQueueType is the first release that reads
	// default_queue_type from rabbitmq.conf (rabbitmq-server#11163, in
	// 3.13.3's release notes), which quorum mode renders: older brokers
	// refuse to start with it ("Conf file attempted to set unknown
	// variable: default_queue_type", seen with Debian 12's 3.10.8).
	NodeDefaultQueueType = Version{3, 13, 3}
)

// CheckMode says why mode cannot run on release v (nil when it can).
func CheckMode(mode string, v Version) error {
	switch {
	case mode == ModeMirrored && !v.Less(MirroringRemoved):
		return fmt.Errorf("rabbitmq.mode %s: RabbitMQ %s has no classic queue mirroring (removed in %d.%d): every queue would have a single copy; use mode quorum (with a witness) or active-passive",
			mode, v, MirroringRemoved.Major, MirroringRemoved.Minor)
	case mode == ModeQuorum && v.Less(NodeDefaultQueueType):
		return fmt.Errorf("rabbitmq.mode %s: RabbitMQ %s does not read default_queue_type from rabbitmq.conf (%s and later do) and would refuse to start; use mode mirrored or active-passive on this release, or install RabbitMQ %s or later",
			mode, v, NodeDefaultQueueType, NodeDefaultQueueType)
	}
	return nil
}

// Runner runs a command and returns its standard output.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// PackageVersion is the RabbitMQ release of Debian's rabbitmq-server
// package on this machine: the installed one, else the one apt would
// install (installed reports which).
func PackageVersion(ctx context.Context, r Runner) (v Version, installed bool, err error) {
	out, err := r.Run(ctx, "dpkg-query", "-W", "-f=${Status}\t${Version}", "rabbitmq-server")
	if status, ver, ok := strings.Cut(strings.TrimSpace(string(out)), "\t"); err == nil && ok && strings.HasSuffix(status, "install ok installed") {
		v, err := ParseVersion(ver)
		return v, true, err
	}
	pol, err := r.Run(ctx, "apt-cache", "policy", "rabbitmq-server")
	if err != nil {
		return Version{}, false, fmt.Errorf("rabbitmq-server is not installed and apt-cache policy failed: %w", err)
	}
	for _, line := range strings.Split(string(pol), "\n") {
		if c, ok := strings.CutPrefix(strings.TrimSpace(line), "Candidate:"); ok {
			c = strings.TrimSpace(c)
			if c == "(none)" {
				break
			}
			v, err := ParseVersion(c)
			return v, false, err
		}
	}
	return Version{}, false, fmt.Errorf("rabbitmq-server is neither installed nor installable (apt-cache policy has no candidate)")
}
