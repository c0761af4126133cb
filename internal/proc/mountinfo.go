package proc

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Mount is one line of /proc/PID/mountinfo (see proc(5)), unescaped.
type Mount struct {
	ID, Parent   int
	Major, Minor uint32
	Root         string // the mounted directory of the filesystem ("/" unless a bind mount)
	MountPoint   string
	Options      string   // per-mount options: rw,noatime
	Optional     []string // shared:N, master:N, propagate_from:N, unbindable
	FSType       string
	Source       string
	SuperOptions string
}

// PeerGroup returns the number of the optional field tag:N (tag "shared"
// or "master"), or 0.
func (m Mount) PeerGroup(tag string) int {
	for _, f := range m.Optional {
		if v, ok := strings.CutPrefix(f, tag+":"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// ParseMountinfo parses /proc/PID/mountinfo: "ID PARENT MAJ:MIN ROOT
// MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS", fields
// separated by single spaces, with space, tab, newline and backslash in
// paths escaped as octal (\040, \011, \012, \134).
func ParseMountinfo(b []byte) ([]Mount, error) {
	var out []Mount
	for n, line := range bytes.Split(b, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		f := strings.Split(string(line), " ")
		sep := slices.Index(f, "-")
		if sep < 6 || len(f) < sep+4 {
			return nil, fmt.Errorf("mountinfo line %d: %q: want ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS", n+1, line)
		}
		id, err1 := strconv.Atoi(f[0])
		parent, err2 := strconv.Atoi(f[1])
		maj, min, ok := strings.Cut(f[2], ":")
		major, err3 := strconv.ParseUint(maj, 10, 32)
		minor, err4 := strconv.ParseUint(min, 10, 32)
		if err := errors.Join(err1, err2, err3, err4); err != nil || !ok {
			return nil, fmt.Errorf("mountinfo line %d: %q: bad ID, parent or MAJ:MIN", n+1, line)
		}
		m := Mount{
			ID: id, Parent: parent, Major: uint32(major), Minor: uint32(minor),
			Root:         unescape(f[3]),
			MountPoint:   unescape(f[4]),
			Options:      f[5],
			FSType:       unescape(f[sep+1]),
			Source:       unescape(f[sep+2]),
			SuperOptions: strings.Join(f[sep+3:], " "),
		}
		if sep > 6 {
			m.Optional = slices.Clone(f[6:sep])
		}
		out = append(out, m)
	}
	return out, nil
}

// unescape undoes the kernel's octal escapes (\NNN, three digits); any
// other backslash is kept.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && octal(s[i+1]) && octal(s[i+2]) && octal(s[i+3]) && s[i+1] <= '3' {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func octal(c byte) bool { return c >= '0' && c <= '7' }
