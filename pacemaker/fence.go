package pacemaker

import (
	"encoding/xml"
	"fmt"
	"strings"
)

// What DRBD's fence-peer handler reads from and writes to the CIB: the
// peer's state and the location constraint that keeps the peer from being
// promoted while its data is outdated (crm-fence-peer.sh's constraint, ids
// included, so either handler's constraint is found).

// PeerState is the peer's state as the CIB shows it.
type PeerState string

const (
	PeerReachable PeerState = "reachable" // its controller is online: only replication was lost
	PeerFenced    PeerState = "fenced"    // offline and expected down: fenced (or stopped cleanly)
	PeerPending   PeerState = "pending"   // offline, not yet expected down: fencing in progress
	PeerUnknown   PeerState = "unknown"   // no state recorded for it
)

// FenceView is what the fence-peer handler reads from the whole CIB
// (cibadmin --query).
type FenceView struct {
	Nodes []struct {
		Uname string `xml:"uname,attr"`
		Type  string `xml:"type,attr"`
	} `xml:"configuration>nodes>node"`
	Locations []fenceLocation `xml:"configuration>constraints>rsc_location"`
	States    []struct {
		Uname    string `xml:"uname,attr"`
		InCCM    string `xml:"in_ccm,attr"`
		Crmd     string `xml:"crmd,attr"`
		Expected string `xml:"expected,attr"`
	} `xml:"status>node_state"`
}

// fenceLocation is an rsc_location constraint with a rule, as the handler
// writes it.
type fenceLocation struct {
	ID    string `xml:"id,attr"`
	Exprs []struct {
		Attribute string `xml:"attribute,attr"`
		Operation string `xml:"operation,attr"`
		Value     string `xml:"value,attr"`
	} `xml:"rule>expression"`
}

// ParseFenceView parses a whole CIB.
func ParseFenceView(cib []byte) (FenceView, error) {
	var v FenceView
	if err := xml.Unmarshal(cib, &v); err != nil {
		return FenceView{}, fmt.Errorf("CIB: %w", err)
	}
	return v, nil
}

// Peer is the peer of node self and its state: the one other node that
// runs resources (a two-node cluster).
func (v FenceView) Peer(self string) (peer string, state PeerState) {
	for _, n := range v.Nodes {
		if n.Uname != self && n.Type != "ping" && n.Type != "remote" {
			peer = n.Uname
		}
	}
	for _, s := range v.States {
		if s.Uname != peer || peer == "" {
			continue
		}
		// Pacemaker 2.1.7+ records join times instead of true/online.
		member := s.InCCM != "" && s.InCCM != "false"
		online := s.Crmd != "" && s.Crmd != "offline"
		switch {
		case online && member:
			return peer, PeerReachable
		case !member && s.Expected == "down":
			return peer, PeerFenced
		default:
			return peer, PeerPending
		}
	}
	return peer, PeerUnknown
}

// Owner is the node the fence constraint id keeps Promoted ("" when its
// rule names none); ok is false when there is no such constraint.
func (v FenceView) Owner(id string) (node string, ok bool) {
	return fenceOwner(v.Locations, id)
}

func fenceOwner(locs []fenceLocation, id string) (string, bool) {
	for _, l := range locs {
		if l.ID != id {
			continue
		}
		for _, e := range l.Exprs {
			if e.Attribute == "#uname" && e.Operation == "ne" {
				return e.Value, true
			}
		}
		return "", true
	}
	return "", false
}

// FenceOwner returns the node the fence-peer constraint of DRBD resource
// res and promotable clone clone lets be Promoted, from a CIB document or
// its constraints section (cibadmin --query [--scope constraints]); ""
// when there is no such constraint.
func FenceOwner(cib []byte, res, clone string) (string, error) {
	var doc struct {
		XMLName     xml.Name
		Constraints []fenceLocation `xml:"rsc_location"`                           // <constraints>
		CIB         []fenceLocation `xml:"configuration>constraints>rsc_location"` // <cib>
	}
	if err := xml.Unmarshal(cib, &doc); err != nil {
		return "", fmt.Errorf("CIB constraints: %w", err)
	}
	var locs []fenceLocation
	switch doc.XMLName.Local {
	case "constraints":
		locs = doc.Constraints
	case "cib":
		locs = doc.CIB
	default:
		return "", fmt.Errorf("CIB constraints: document is <%s>, not <constraints> or <cib>", doc.XMLName.Local)
	}
	owner, _ := fenceOwner(locs, FenceConstraintID(res, clone))
	return owner, nil
}

// FenceConstraintXML is the fence-peer constraint of DRBD resource res and
// promotable clone clone: only node may be Promoted.
func FenceConstraintXML(res, clone, node string) string {
	var b strings.Builder
	b.WriteString(`<rsc_location rsc="` + clone + `" id="` + FenceConstraintID(res, clone) + `">`)
	b.WriteString(`<rule role="Promoted" score="-INFINITY" id="` + fencePrefix + res + `-rule-` + clone + `">`)
	b.WriteString(`<expression attribute="#uname" operation="ne" value="` + node + `" id="` + fencePrefix + res + `-expr-` + clone + `"/>`)
	b.WriteString(`</rule></rsc_location>`)
	return b.String()
}
