package drbd

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

var (
	procVersion = regexp.MustCompile(`^version:\s*(\S+)`)
	procMinor   = regexp.MustCompile(`^\s*(\d+):\s+cs:(\S+)(.*)$`)
	procSynced  = regexp.MustCompile(`sync'ed:\s*([0-9.]+)%(?:\s*\((\d+)/(\d+)\)\s*([KM])?)?`)
	procFinish  = regexp.MustCompile(`finish:\s*(\d+):(\d+):(\d+)`)
	procSpeed   = regexp.MustCompile(`speed:\s*([0-9,]+)`)
)

// ParseProcDRBD parses /proc/drbd. DRBD 8.4 lists one block per minor:
//
//	0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----
//	   ns:0 nr:0 dw:0 dr:2104 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
//
// followed, while syncing, by a progress line and a finish line. DRBD 9's
// /proc/drbd only carries the version; its resources come from events2 or
// status --json. Unknown lines are ignored; a minor line that cannot be
// read is an error.
func ParseProcDRBD(data []byte) (Status, error) {
	var st Status
	var cur *Resource
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		trimmed := strings.TrimSpace(text)
		if trimmed == "" {
			continue
		}
		if m := procVersion.FindStringSubmatch(trimmed); m != nil {
			st.Version = m[1]
			continue
		}
		if m := procMinor.FindStringSubmatch(text); m != nil {
			minor, err := strconv.Atoi(m[1])
			if err != nil {
				return Status{}, fmt.Errorf("/proc/drbd line %d: minor %q: %w", line, m[1], err)
			}
			r, err := parseMinorLine(minor, m[2], m[3])
			if err != nil {
				return Status{}, fmt.Errorf("/proc/drbd line %d: %w", line, err)
			}
			st.Resources = append(st.Resources, r)
			cur = &st.Resources[len(st.Resources)-1]
			continue
		}
		if cur == nil {
			continue // GIT-hash, srcversion, transports
		}
		switch {
		case strings.HasPrefix(trimmed, "ns:") || strings.Contains(trimmed, " oos:"):
			for _, f := range strings.Fields(trimmed) {
				k, v, ok := strings.Cut(f, ":")
				if ok && k == "oos" {
					n, err := strconv.ParseInt(v, 10, 64)
					if err != nil {
						return Status{}, fmt.Errorf("/proc/drbd line %d: oos %q: %w", line, v, err)
					}
					cur.OutOfSyncKiB = n
				}
			}
		case procSynced.MatchString(trimmed):
			m := procSynced.FindStringSubmatch(trimmed)
			p := syncOf(cur)
			p.Percent, _ = strconv.ParseFloat(m[1], 64)
			if m[2] != "" {
				mult := int64(1)
				if m[4] == "M" {
					mult = 1024
				}
				rem, _ := strconv.ParseInt(m[2], 10, 64)
				tot, _ := strconv.ParseInt(m[3], 10, 64)
				p.RemainingKiB, p.TotalKiB = rem*mult, tot*mult
			}
		case strings.HasPrefix(trimmed, "finish:"):
			p := syncOf(cur)
			if m := procFinish.FindStringSubmatch(trimmed); m != nil {
				h, _ := strconv.ParseInt(m[1], 10, 64)
				mi, _ := strconv.ParseInt(m[2], 10, 64)
				s, _ := strconv.ParseInt(m[3], 10, 64)
				p.ETASeconds = h*3600 + mi*60 + s
			}
			if m := procSpeed.FindStringSubmatch(trimmed); m != nil {
				p.SpeedKiBs, _ = strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return Status{}, fmt.Errorf("/proc/drbd: %w", err)
	}
	return st, nil
}

func syncOf(r *Resource) *SyncProgress {
	if r.Sync == nil {
		r.Sync = &SyncProgress{ETASeconds: -1}
	}
	return r.Sync
}

// parseMinorLine reads the rest of " 0: cs:X ro:A/B ds:C/D P flags".
func parseMinorLine(minor int, cs, rest string) (Resource, error) {
	r := Resource{Minor: minor}
	r.Connection, r.Replication = translate84(cs)
	if cs == "Unconfigured" {
		return r, nil
	}
	var sawRole, sawDisk bool
	for _, f := range strings.Fields(rest) {
		k, v, ok := strings.Cut(f, ":")
		switch {
		case ok && k == "ro":
			a, b, ok := strings.Cut(v, "/")
			if !ok {
				return Resource{}, fmt.Errorf("minor %d: ro:%q is not LOCAL/PEER", minor, v)
			}
			r.Role, r.PeerRole, sawRole = a, b, true
		case ok && k == "ds":
			a, b, ok := strings.Cut(v, "/")
			if !ok {
				return Resource{}, fmt.Errorf("minor %d: ds:%q is not LOCAL/PEER", minor, v)
			}
			r.Disk, r.PeerDisk, sawDisk = a, b, true
		case !ok && (f == "A" || f == "B" || f == "C"):
			r.Protocol = f
		}
	}
	if !sawRole || !sawDisk {
		return Resource{}, fmt.Errorf("minor %d: missing ro: or ds: in %q", minor, strings.TrimSpace(rest))
	}
	return r, nil
}
