package drbd

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// GI are a node's data generation identifiers for one volume, as printed by
// `drbdadm get-gi` and the first line of `drbdadm show-gi`:
// CURRENT:BITMAP:HISTORY1:HISTORY2:flags. UUIDs are kept as printed; compare
// them with [MaskRole], never raw: the lowest bit is the role bit.
type GI struct {
	Current uint64   `json:"current"`
	Bitmap  uint64   `json:"bitmap"`
	History []uint64 `json:"history"`
	Flags   []int    `json:"flags,omitempty"`
	Raw     string   `json:"raw"`
}

var giLine = regexp.MustCompile(`([0-9A-Fa-f]{16})((?::[0-9A-Fa-f]{16})+)((?::\d+)*)`)

// ParseGI finds the first generation-identifier line in get-gi or show-gi
// output (show-gi surrounds it with an explanatory diagram; DRBD 9 may
// prefix it with the peer device).
func ParseGI(data []byte) (GI, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		m := giLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		uuids := append([]string{m[1]}, strings.Split(strings.TrimPrefix(m[2], ":"), ":")...)
		if len(uuids) < 2 {
			continue
		}
		var g GI
		g.Raw = strings.TrimSpace(m[0])
		vals := make([]uint64, len(uuids))
		for i, u := range uuids {
			v, err := strconv.ParseUint(u, 16, 64)
			if err != nil {
				return GI{}, fmt.Errorf("generation identifier %q: %w", u, err)
			}
			vals[i] = v
		}
		g.Current, g.Bitmap, g.History = vals[0], vals[1], vals[2:]
		if m[3] != "" {
			for _, f := range strings.Split(strings.TrimPrefix(m[3], ":"), ":") {
				n, err := strconv.Atoi(f)
				if err != nil {
					return GI{}, fmt.Errorf("generation identifier flag %q: %w", f, err)
				}
				g.Flags = append(g.Flags, n)
			}
		}
		return g, nil
	}
	return GI{}, fmt.Errorf("no generation identifiers (CURRENT:BITMAP:HIST1:HIST2) in %q", truncate(string(data), 200))
}

// MaskRole clears the role bit of a UUID.
func MaskRole(u uint64) uint64 { return u &^ 1 }

// Relation is how two nodes' generation identifiers relate.
type Relation string

const (
	// RelSame: equal current UUIDs, the data is identical.
	RelSame Relation = "same"
	// RelSplitBrain: both sides started a new generation from the same
	// bitmap UUID; a bitmap-based resync can repair it.
	RelSplitBrain Relation = "split-brain"
	// RelAhead: the first side is a direct descendant of the second
	// (no split brain; the second just needs a resync).
	RelAhead Relation = "ahead"
	// RelBehind: the second side is a direct descendant of the first.
	RelBehind Relation = "behind"
	// RelUnrelated: no common ancestor; only a full sync can join them.
	RelUnrelated Relation = "unrelated"
)

// Relate compares two nodes' identifiers with the role bit masked.
func Relate(a, b GI) Relation {
	ac, bc := MaskRole(a.Current), MaskRole(b.Current)
	ab, bb := MaskRole(a.Bitmap), MaskRole(b.Bitmap)
	switch {
	case ac == 0 || bc == 0:
		return RelUnrelated
	case ac == bc:
		return RelSame
	case ab != 0 && ab == bb:
		return RelSplitBrain
	case ab != 0 && ab == bc:
		return RelAhead
	case bb != 0 && bb == ac:
		return RelBehind
	}
	return RelUnrelated
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
