package pacemaker

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Link statuses of a node on a knet link, as `corosync-cfgtool -s` prints
// them (corosync 3.1).
const (
	LinkLocalhost    = "localhost"
	LinkConnected    = "connected"
	LinkDisconnected = "disconnected"
)

// ErrCorosyncNotRunning means the corosync tools could not reach the
// daemon ("Could not initialize corosync configuration API", "Cannot
// initialize CMAP service").
var ErrCorosyncNotRunning = errors.New("corosync is not running")

// CfgStatus is `corosync-cfgtool -s`: this node's view of every knet link.
type CfgStatus struct {
	LocalNodeID int    `json:"local_node_id"`
	Transport   string `json:"transport,omitempty"` // knet, udp, udpu
	Links       []Link `json:"links"`
}

// Link is one corosync link (ring) and the status of every node on it.
type Link struct {
	ID        int        `json:"id"`
	Transport string     `json:"transport,omitempty"` // udp, sctp
	Addr      string     `json:"addr,omitempty"`      // this node's address on the link
	Nodes     []LinkNode `json:"nodes"`
}

// LinkNode is one node's status on a link.
type LinkNode struct {
	NodeID int `json:"node_id"`
	// Status is localhost, connected or disconnected; corosync 3.0 prints
	// "link enabled:1 link connected:1", normalized to connected or
	// disconnected.
	Status string `json:"status"`
}

// Connected reports whether every node other than this one is connected on
// the link.
func (l Link) Connected() bool {
	for _, n := range l.Nodes {
		if n.Status != LinkLocalhost && n.Status != LinkConnected {
			return false
		}
	}
	return true
}

// PeerStatus returns the status of node on the link ("" when not listed).
func (l Link) PeerStatus(node int) string {
	for _, n := range l.Nodes {
		if n.NodeID == node {
			return n.Status
		}
	}
	return ""
}

// ParseCfgtool parses `corosync-cfgtool -s` of corosync 3.x:
//
//	Local node ID 1, transport knet
//	LINK ID 0 udp
//		addr	= 10.0.0.1
//		status:
//			nodeid:          1:	localhost
//			nodeid:          2:	connected
//
// Corosync 3.0 ("Printing link status.", "nodeid  2:	link enabled:1	link
// connected:1") is accepted too. Unknown lines are ignored.
func ParseCfgtool(data []byte) (CfgStatus, error) {
	var st CfgStatus
	seenLocal := false
	var cur *Link
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case strings.HasPrefix(line, "Could not initialize corosync") || strings.HasPrefix(line, "Cannot initialize"):
			return CfgStatus{}, fmt.Errorf("corosync-cfgtool: %w: %s", ErrCorosyncNotRunning, line)
		case strings.HasPrefix(line, "Local node ID "):
			rest := strings.TrimPrefix(line, "Local node ID ")
			id, transport, _ := strings.Cut(rest, ",")
			n, err := strconv.Atoi(strings.TrimSpace(id))
			if err != nil {
				return CfgStatus{}, fmt.Errorf("corosync-cfgtool: local node id %q: %w", id, err)
			}
			st.LocalNodeID, seenLocal = n, true
			st.Transport = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(transport), "transport"))
		case strings.HasPrefix(line, "LINK ID "):
			f := strings.Fields(strings.TrimPrefix(line, "LINK ID "))
			if len(f) == 0 {
				return CfgStatus{}, fmt.Errorf("corosync-cfgtool: link line %q has no id", line)
			}
			id, err := strconv.Atoi(f[0])
			if err != nil {
				return CfgStatus{}, fmt.Errorf("corosync-cfgtool: link id %q: %w", f[0], err)
			}
			st.Links = append(st.Links, Link{ID: id})
			cur = &st.Links[len(st.Links)-1]
			if len(f) > 1 {
				cur.Transport = f[1]
			}
		case cur != nil && strings.HasPrefix(line, "addr"):
			if _, v, ok := strings.Cut(line, "="); ok {
				cur.Addr = strings.TrimSpace(v)
			}
		case cur != nil && strings.HasPrefix(line, "nodeid"):
			n, err := parseLinkNode(line)
			if err != nil {
				return CfgStatus{}, fmt.Errorf("corosync-cfgtool: link %d: %w", cur.ID, err)
			}
			cur.Nodes = append(cur.Nodes, n)
		}
	}
	if err := sc.Err(); err != nil {
		return CfgStatus{}, fmt.Errorf("corosync-cfgtool: %w", err)
	}
	if !seenLocal {
		return CfgStatus{}, errors.New("corosync-cfgtool: no \"Local node ID\" line")
	}
	return st, nil
}

// parseLinkNode parses "nodeid:          2:	connected" (3.1) or
// "nodeid  2:	link enabled:1	link connected:1" (3.0).
func parseLinkNode(line string) (LinkNode, error) {
	rest := strings.TrimLeft(strings.TrimPrefix(line, "nodeid"), ": \t")
	id, status, ok := strings.Cut(rest, ":")
	if !ok {
		return LinkNode{}, fmt.Errorf("node line %q has no status", line)
	}
	n, err := strconv.Atoi(strings.TrimSpace(id))
	if err != nil {
		return LinkNode{}, fmt.Errorf("node line %q: %w", line, err)
	}
	status = strings.Join(strings.Fields(status), " ")
	if strings.Contains(status, "link connected:") {
		if strings.Contains(status, "link connected:1") {
			status = LinkConnected
		} else {
			status = LinkDisconnected
		}
	}
	return LinkNode{NodeID: n, Status: status}, nil
}

// Quorum is `corosync-quorumtool -s`: votequorum state and membership as
// this node sees it.
type Quorum struct {
	Provider        string `json:"provider,omitempty"`
	Nodes           int    `json:"nodes"`
	NodeID          int    `json:"node_id"`
	RingID          string `json:"ring_id,omitempty"`
	Quorate         bool   `json:"quorate"`
	ExpectedVotes   int    `json:"expected_votes"`
	HighestExpected int    `json:"highest_expected"`
	TotalVotes      int    `json:"total_votes"`
	Quorum          int    `json:"quorum"`
	// ActivityBlocked is set when the node lacks quorum (or still waits
	// for all nodes with wait_for_all).
	ActivityBlocked bool     `json:"activity_blocked"`
	Flags           []string `json:"flags,omitempty"` // 2Node, Quorate, WaitForAll, ...
	Members         []Member `json:"members"`
}

// Member is one row of the membership table.
type Member struct {
	NodeID  int    `json:"node_id"`
	Votes   int    `json:"votes"`
	Qdevice string `json:"qdevice,omitempty"`
	Name    string `json:"name"`
	Local   bool   `json:"local"`
}

// HasFlag reports whether the votequorum flag (e.g. WaitForAll) is set.
func (q Quorum) HasFlag(flag string) bool {
	for _, f := range q.Flags {
		if f == flag {
			return true
		}
	}
	return false
}

// Member returns the member with the given node name.
func (q Quorum) Member(name string) (Member, bool) {
	for _, m := range q.Members {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// ParseQuorumtool parses `corosync-quorumtool -s` of corosync 3.x. The tool
// exits 2 when the node is not quorate but still prints the full status,
// so callers should parse its output before looking at the exit code.
func ParseQuorumtool(data []byte) (Quorum, error) {
	var q Quorum
	seen := false
	inMembers, qdeviceCol := false, false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "---") {
			continue
		}
		if strings.HasPrefix(line, "Cannot initialize") || strings.HasPrefix(line, "Could not initialize") {
			return Quorum{}, fmt.Errorf("corosync-quorumtool: %w: %s", ErrCorosyncNotRunning, line)
		}
		if strings.HasPrefix(line, "Nodeid") {
			inMembers, qdeviceCol = true, strings.Contains(line, "Qdevice")
			continue
		}
		if inMembers {
			m, ok := parseMember(line, qdeviceCol)
			if ok {
				q.Members = append(q.Members, m)
				continue
			}
			inMembers = false
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		var err error
		switch strings.TrimSpace(key) {
		case "Quorum provider":
			q.Provider, seen = value, true
		case "Nodes":
			q.Nodes, err = atoiField(key, value)
		case "Node ID":
			q.NodeID, err = atoiField(key, value)
		case "Ring ID":
			q.RingID = value
		case "Quorate":
			q.Quorate, seen = value == "Yes", true
		case "Expected votes":
			q.ExpectedVotes, err = atoiField(key, value)
		case "Highest expected":
			q.HighestExpected, err = atoiField(key, value)
		case "Total votes":
			q.TotalVotes, err = atoiField(key, value)
		case "Quorum":
			f := strings.Fields(value)
			if len(f) > 0 {
				q.Quorum, err = atoiField(key, f[0])
			}
			q.ActivityBlocked = strings.Contains(value, "Activity blocked")
		case "Flags":
			q.Flags = strings.Fields(value)
		}
		if err != nil {
			return Quorum{}, err
		}
	}
	if err := sc.Err(); err != nil {
		return Quorum{}, fmt.Errorf("corosync-quorumtool: %w", err)
	}
	if !seen {
		return Quorum{}, errors.New("corosync-quorumtool: no quorum information")
	}
	return q, nil
}

func atoiField(key, value string) (int, error) {
	n, err := strconv.Atoi(value)
	if err != nil {
		return 0, fmt.Errorf("corosync-quorumtool: %s %q: %w", strings.TrimSpace(key), value, err)
	}
	return n, nil
}

// parseMember parses "1          1 ctl1 (local)" or, with a quorum
// device, "1          1    A,V,NMW ctl1 (local)".
func parseMember(line string, qdeviceCol bool) (Member, bool) {
	f := strings.Fields(line)
	want := 3
	if qdeviceCol {
		want = 4
	}
	if len(f) < want {
		return Member{}, false
	}
	id, err1 := strconv.Atoi(f[0])
	votes, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return Member{}, false
	}
	m := Member{NodeID: id, Votes: votes}
	rest := f[2:]
	if qdeviceCol {
		m.Qdevice, rest = f[2], f[3:]
	}
	m.Name = rest[0]
	for _, r := range rest[1:] {
		if r == "(local)" {
			m.Local = true
		}
	}
	return m, true
}
