package status

import (
	"encoding/xml"
	"fmt"

	"github.com/haconf/haconf/pacemaker"
)

// monExtras are the parts of `crm_mon --output-as=xml` that
// pacemaker.ParseCrmMon does not keep and status needs to explain why a
// resource is not running: the stonith-enabled property, bans (location
// constraints with negative scores), target roles and the fencing history.
type monExtras struct {
	StonithEnabled *bool
	Bans           []Ban
	TargetRoles    map[string]string
	Fenced         []FenceEvent
}

type xmlMonExtras struct {
	XMLName xml.Name `xml:"pacemaker-result"`
	Options struct {
		StonithEnabled string `xml:"stonith-enabled,attr"`
	} `xml:"summary>cluster_options"`
	Resources xmlRoles `xml:"resources"`
	Bans      []struct {
		ID           string `xml:"id,attr"`
		Resource     string `xml:"resource,attr"`
		Node         string `xml:"node,attr"`
		Weight       string `xml:"weight,attr"`
		PromotedOnly string `xml:"promoted-only,attr"`
	} `xml:"bans>ban"`
	Fenced []struct {
		Action    string `xml:"action,attr"`
		Target    string `xml:"target,attr"`
		Status    string `xml:"status,attr"`
		Completed string `xml:"completed,attr"`
		Delegate  string `xml:"delegate,attr"`
	} `xml:"fence_history>fence_event"`
}

// xmlRoles is <resources>, <group> or <clone>, nested.
type xmlRoles struct {
	ID         string `xml:"id,attr"`
	TargetRole string `xml:"target_role,attr"`
	Resources  []struct {
		ID         string `xml:"id,attr"`
		TargetRole string `xml:"target_role,attr"`
	} `xml:"resource"`
	Groups []xmlRoles `xml:"group"`
	Clones []xmlRoles `xml:"clone"`
}

// parseMonExtras parses the extras from `crm_mon --output-as=xml`
// (Pacemaker 2.1). The fencing history is reported oldest first.
func parseMonExtras(data []byte) (monExtras, error) {
	var x xmlMonExtras
	if err := xml.Unmarshal(data, &x); err != nil {
		return monExtras{}, fmt.Errorf("crm_mon xml: %w", err)
	}
	var out monExtras
	switch x.Options.StonithEnabled {
	case "true", "false":
		b := x.Options.StonithEnabled == "true"
		out.StonithEnabled = &b
	}
	for _, b := range x.Bans {
		out.Bans = append(out.Bans, Ban{ID: b.ID, Resource: b.Resource, Node: b.Node, Weight: b.Weight, PromotedOnly: b.PromotedOnly == "true"})
	}
	collectRoles(&out.TargetRoles, x.Resources)
	// crm_mon lists the fencing history newest first.
	for i := len(x.Fenced) - 1; i >= 0; i-- {
		f := x.Fenced[i]
		out.Fenced = append(out.Fenced, FenceEvent{Action: f.Action, Target: f.Target, Status: f.Status, Completed: f.Completed, Delegate: f.Delegate})
	}
	return out, nil
}

func collectRoles(dst *map[string]string, c xmlRoles) {
	set := func(id, role string) {
		if id == "" || role == "" {
			return
		}
		if *dst == nil {
			*dst = map[string]string{}
		}
		(*dst)[id] = role
	}
	set(c.ID, c.TargetRole)
	for _, r := range c.Resources {
		set(r.ID, r.TargetRole)
	}
	for _, g := range c.Groups {
		collectRoles(dst, g)
	}
	for _, cl := range c.Clones {
		collectRoles(dst, cl)
	}
}

// parsePacemaker turns `crm_mon --output-as=xml` into PacemakerFacts.
func parsePacemaker(data []byte) (PacemakerFacts, error) {
	mon, err := pacemaker.ParseCrmMon(data)
	if err != nil {
		return PacemakerFacts{}, err
	}
	x, err := parseMonExtras(data)
	if err != nil {
		return PacemakerFacts{}, err
	}
	return PacemakerFacts{Mon: &mon, StonithEnabled: x.StonithEnabled, Bans: x.Bans, TargetRoles: x.TargetRoles, Fenced: x.Fenced}, nil
}

// haconfBan reports whether b is one of the constraints haconf's CIB
// itself sets: a fence device avoids the node it fences.
func haconfBan(b Ban) bool { return b.Resource == "fence-"+b.Node }
