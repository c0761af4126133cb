package main

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// describeRE matches `git describe --tags --always --dirty --match 'v[0-9]*'`
// output for a tagged history: the tag, the commits since it and the
// abbreviated commit, and -dirty.
var describeRE = regexp.MustCompile(`^v([0-9][0-9A-Za-z.+-]*?)(?:-([0-9]+)-g([0-9a-f]+))?(-dirty)?$`)

// DebianVersion turns git describe's output into a Debian package version
// (deb-version(7): digits first; letters, digits and . + ~ only, since a
// native package has no revision and so no hyphen), ordered as the commits are:
//
//	v1.2.0                  1.2.0
//	v1.2.0-rc1              1.2.0~rc1                       (before 1.2.0)
//	v1.2.0-5-gabc1234       1.2.0+git20261206.abc1234       (after 1.2.0)
//	abc1234 (no tag yet)    0.0.0~git20261206.abc1234       (before any release)
//
// The date is the commit's (UTC), so versions of later commits sort later.
// A build from a changed work tree gets +dirty.
func DebianVersion(describe string, commitTime time.Time) (string, error) {
	day := commitTime.UTC().Format("20060102")
	dirty := strings.HasSuffix(describe, "-dirty")
	var v string
	if m := describeRE.FindStringSubmatch(describe); m != nil {
		v = strings.ReplaceAll(m[1], "-", "~")
		if m[2] != "" {
			v += fmt.Sprintf("+git%s.%s", day, m[3])
		}
	} else {
		sha := strings.TrimSuffix(describe, "-dirty")
		if !regexp.MustCompile(`^[0-9a-f]{4,40}$`).MatchString(sha) {
			return "", fmt.Errorf("git describe %q: neither a v-tag nor a commit", describe)
		}
		v = fmt.Sprintf("0.0.0~git%s.%s", day, sha)
	}
	if dirty {
		v += "+dirty"
	}
	if !debianVersionRE.MatchString(v) {
		return "", fmt.Errorf("git describe %q gives %q, not a Debian version", describe, v)
	}
	return v, nil
}

// debianVersionRE is a native package's upstream version (no epoch, no revision).
var debianVersionRE = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)
