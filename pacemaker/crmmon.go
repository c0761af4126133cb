package pacemaker

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Roles of a promotable clone instance, with Pacemaker 2.1 names. Older
// names (Master, Slave) are translated when parsed.
const (
	RolePromoted   = "Promoted"
	RoleUnpromoted = "Unpromoted"
	RoleStarted    = "Started"
	RoleStopped    = "Stopped"
)

// CrmMon is the cluster state reported by `crm_mon --output-as=xml`
// (Pacemaker 2.1; root element pacemaker-result).
type CrmMon struct {
	DC string `json:"dc,omitempty"`
	// Quorate is the DC's partition having quorum.
	Quorate bool      `json:"quorate"`
	Nodes   []MonNode `json:"nodes"`
	// Resources are flattened: one entry per primitive instance, with the
	// group and clone that contain it.
	Resources []MonResource `json:"resources"`
	// Attributes are node attributes by node name.
	Attributes map[string]map[string]string `json:"attributes,omitempty"`
	// Operations is the operation history (crm_mon --operations), newest
	// last per node and resource.
	Operations    []MonOperation    `json:"operations,omitempty"`
	FailedActions []MonFailedAction `json:"failed_actions,omitempty"`
	// Bans are the location constraints that keep a resource, or its
	// promoted role, off a node, as crm_mon evaluated them.
	Bans           []MonBan `json:"bans,omitempty"`
	MaintenanceAll bool     `json:"maintenance_mode"`
	// StonithEnabled is the stonith-enabled cluster option (nil when not
	// reported).
	StonithEnabled *bool `json:"stonith_enabled,omitempty"`
	// TargetRoles are the target-role meta attributes that are set, by
	// resource, group or clone id.
	TargetRoles map[string]string `json:"target_roles,omitempty"`
	// Fenced is the fencing history, oldest first.
	Fenced []MonFenceEvent `json:"fence_history,omitempty"`
}

// MonFenceEvent is one entry of the fencing history.
type MonFenceEvent struct {
	Action    string `json:"action"`
	Target    string `json:"target"`
	Status    string `json:"status"`
	Completed string `json:"completed,omitempty"`
	Delegate  string `json:"delegate,omitempty"`
}

// MonNode is one cluster node.
type MonNode struct {
	Name        string `json:"name"`
	Online      bool   `json:"online"`
	Standby     bool   `json:"standby"`
	Maintenance bool   `json:"maintenance"`
	Unclean     bool   `json:"unclean"`
	DC          bool   `json:"dc"`
}

// MonResource is one primitive instance.
type MonResource struct {
	ID      string   `json:"id"`
	Agent   string   `json:"agent"` // e.g. ocf:linbit:drbd
	Role    string   `json:"role"`
	Nodes   []string `json:"nodes,omitempty"`
	Managed bool     `json:"managed"`
	Failed  bool     `json:"failed"`
	Group   string   `json:"group,omitempty"`
	Clone   string   `json:"clone,omitempty"`
	// Promotable is set for instances of a promotable clone.
	Promotable bool `json:"promotable"`
}

// MonOperation is one entry of the operation history.
type MonOperation struct {
	Node       string    `json:"node"`
	Resource   string    `json:"resource"`
	Task       string    `json:"task"`
	RC         int       `json:"rc"`
	Call       int       `json:"call"`
	LastChange time.Time `json:"last_rc_change,omitempty"`
}

// MonFailedAction is one failed resource action.
type MonFailedAction struct {
	OpKey      string    `json:"op_key"`
	Node       string    `json:"node"`
	ExitStatus string    `json:"exit_status"`
	ExitReason string    `json:"exit_reason,omitempty"`
	Task       string    `json:"task"`
	LastChange time.Time `json:"last_rc_change,omitempty"`
}

// MonBan is a location constraint with a negative score for one node:
// crm_resource --ban (cli-ban-*), the crm-fence-peer constraint (reported
// under its rule's id), haconf's fence device placements.
type MonBan struct {
	ID           string `json:"id"`
	Resource     string `json:"resource"`
	Node         string `json:"node"`
	Weight       int    `json:"weight"` // -1000000 is -INFINITY
	PromotedOnly bool   `json:"promoted_only"`
}

type xmlResult struct {
	XMLName xml.Name `xml:"pacemaker-result"`
	Summary struct {
		DC struct {
			Name       string `xml:"name,attr"`
			Present    string `xml:"present,attr"`
			WithQuorum string `xml:"with_quorum,attr"`
		} `xml:"current_dc"`
		ClusterOptions struct {
			MaintenanceMode string `xml:"maintenance-mode,attr"`
			StonithEnabled  string `xml:"stonith-enabled,attr"`
		} `xml:"cluster_options"`
	} `xml:"summary"`
	Nodes []struct {
		Name        string `xml:"name,attr"`
		Online      string `xml:"online,attr"`
		Standby     string `xml:"standby,attr"`
		Maintenance string `xml:"maintenance,attr"`
		Unclean     string `xml:"unclean,attr"`
		IsDC        string `xml:"is_dc,attr"`
	} `xml:"nodes>node"`
	Resources  xmlContainer `xml:"resources"`
	Attributes []struct {
		Name  string `xml:"name,attr"`
		Attrs []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"attribute"`
	} `xml:"node_attributes>node"`
	History []struct {
		Name      string `xml:"name,attr"`
		Resources []struct {
			ID  string `xml:"id,attr"`
			Ops []struct {
				Call       string `xml:"call,attr"`
				Task       string `xml:"task,attr"`
				RC         string `xml:"rc,attr"`
				LastChange string `xml:"last-rc-change,attr"`
			} `xml:"operation_history"`
		} `xml:"resource_history"`
	} `xml:"node_history>node"`
	Failures []struct {
		OpKey      string `xml:"op_key,attr"`
		Node       string `xml:"node,attr"`
		ExitStatus string `xml:"exitstatus,attr"`
		ExitReason string `xml:"exitreason,attr"`
		Task       string `xml:"task,attr"`
		LastChange string `xml:"last-rc-change,attr"`
	} `xml:"failures>failure"`
	Bans []struct {
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
	Status struct {
		Code    string `xml:"code,attr"`
		Message string `xml:"message,attr"`
	} `xml:"status"`
}

// xmlContainer is <resources>, <group> or <clone>: they nest.
type xmlContainer struct {
	ID         string         `xml:"id,attr"`
	TargetRole string         `xml:"target_role,attr"`
	MultiState string         `xml:"multi_state,attr"`
	Managed    string         `xml:"managed,attr"`
	Resources  []xmlResource  `xml:"resource"`
	Groups     []xmlContainer `xml:"group"`
	Clones     []xmlContainer `xml:"clone"`
}

type xmlResource struct {
	ID         string `xml:"id,attr"`
	TargetRole string `xml:"target_role,attr"`
	Agent      string `xml:"resource_agent,attr"`
	Role       string `xml:"role,attr"`
	Managed    string `xml:"managed,attr"`
	Failed     string `xml:"failed,attr"`
	Nodes      []struct {
		Name string `xml:"name,attr"`
	} `xml:"node"`
}

// ParseCrmMon parses `crm_mon --output-as=xml` of Pacemaker 2.1. Older
// role names (Master/Slave) become Promoted/Unpromoted. A non-zero status
// code in the document is an error.
func ParseCrmMon(data []byte) (CrmMon, error) {
	var x xmlResult
	if err := xml.Unmarshal(data, &x); err != nil {
		return CrmMon{}, fmt.Errorf("crm_mon xml: %w", err)
	}
	if x.Status.Code != "" && x.Status.Code != "0" {
		return CrmMon{}, fmt.Errorf("crm_mon xml: status %s: %s", x.Status.Code, x.Status.Message)
	}
	out := CrmMon{MaintenanceAll: x.Summary.ClusterOptions.MaintenanceMode == "true"}
	if x.Summary.DC.Present == "true" {
		out.DC = x.Summary.DC.Name
		out.Quorate = x.Summary.DC.WithQuorum == "true"
	}
	for _, n := range x.Nodes {
		out.Nodes = append(out.Nodes, MonNode{Name: n.Name, Online: n.Online == "true", Standby: n.Standby == "true",
			Maintenance: n.Maintenance == "true", Unclean: n.Unclean == "true", DC: n.IsDC == "true"})
	}
	flatten(&out.Resources, x.Resources, "", "", false)
	for _, n := range x.Attributes {
		if out.Attributes == nil {
			out.Attributes = map[string]map[string]string{}
		}
		m := map[string]string{}
		for _, a := range n.Attrs {
			m[a.Name] = a.Value
		}
		out.Attributes[n.Name] = m
	}
	for _, n := range x.History {
		for _, r := range n.Resources {
			for _, op := range r.Ops {
				out.Operations = append(out.Operations, MonOperation{Node: n.Name, Resource: r.ID, Task: op.Task,
					RC: atoi(op.RC), Call: atoi(op.Call), LastChange: parseCrmTime(op.LastChange)})
			}
		}
	}
	for _, f := range x.Failures {
		out.FailedActions = append(out.FailedActions, MonFailedAction{OpKey: f.OpKey, Node: f.Node, ExitStatus: f.ExitStatus,
			ExitReason: f.ExitReason, Task: f.Task, LastChange: parseCrmTime(f.LastChange)})
	}
	for _, b := range x.Bans {
		out.Bans = append(out.Bans, MonBan{ID: b.ID, Resource: b.Resource, Node: b.Node, Weight: atoi(b.Weight), PromotedOnly: b.PromotedOnly == "true"})
	}
	switch se := x.Summary.ClusterOptions.StonithEnabled; se {
	case "true", "false":
		b := se == "true"
		out.StonithEnabled = &b
	}
	targetRoles(&out.TargetRoles, x.Resources)
	// crm_mon lists the fencing history newest first.
	for i := len(x.Fenced) - 1; i >= 0; i-- {
		f := x.Fenced[i]
		out.Fenced = append(out.Fenced, MonFenceEvent{Action: f.Action, Target: f.Target, Status: f.Status, Completed: f.Completed, Delegate: f.Delegate})
	}
	return out, nil
}

func targetRoles(dst *map[string]string, c xmlContainer) {
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
		targetRoles(dst, g)
	}
	for _, cl := range c.Clones {
		targetRoles(dst, cl)
	}
}

func flatten(dst *[]MonResource, c xmlContainer, group, clone string, promotable bool) {
	for _, r := range c.Resources {
		m := MonResource{ID: r.ID, Agent: r.Agent, Role: normalizeRole(r.Role), Managed: r.Managed != "false",
			Failed: r.Failed == "true", Group: group, Clone: clone, Promotable: promotable}
		for _, n := range r.Nodes {
			m.Nodes = append(m.Nodes, n.Name)
		}
		*dst = append(*dst, m)
	}
	for _, g := range c.Groups {
		flatten(dst, g, g.ID, clone, promotable)
	}
	for _, cl := range c.Clones {
		flatten(dst, cl, group, cl.ID, cl.MultiState == "true")
	}
}

func normalizeRole(r string) string {
	switch r {
	case "Master":
		return RolePromoted
	case "Slave":
		return RoleUnpromoted
	}
	return r
}

// crm_mon prints last-rc-change as "Sat Nov 21 10:00:00 2026" before 2.1
// and as "2026-11-21 10:00:00 +00:00" (or with 'Z') since.
var crmTimeLayouts = []string{"2006-01-02 15:04:05 -07:00", "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05 Z07:00", time.ANSIC, "Mon Jan _2 15:04:05 2006", time.RFC3339}

func parseCrmTime(s string) time.Time {
	s = strings.TrimSpace(s)
	for _, l := range crmTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// Node returns the named node.
func (c CrmMon) Node(name string) (MonNode, bool) {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return MonNode{}, false
}

// Promoted returns the nodes where an instance of the promotable clone
// runs Promoted.
func (c CrmMon) Promoted(clone string) []string {
	var out []string
	for _, r := range c.Resources {
		if r.Clone == clone && r.Role == RolePromoted {
			out = append(out, r.Nodes...)
		}
	}
	return out
}

// CloneManaged reports whether the clone's instances are managed.
func (c CrmMon) CloneManaged(clone string) bool {
	for _, r := range c.Resources {
		if r.Clone == clone && !r.Managed {
			return false
		}
	}
	return true
}

// RunningOn returns the nodes running the primitive id.
func (c CrmMon) RunningOn(id string) []string {
	var out []string
	for _, r := range c.Resources {
		if r.ID == id && r.Role != RoleStopped {
			out = append(out, r.Nodes...)
		}
	}
	return out
}

// LastOperation returns the most recent successful operation task
// (e.g. promote) of resource on node, by call id.
func (c CrmMon) LastOperation(node, resource, task string) (MonOperation, bool) {
	var best MonOperation
	found := false
	for _, op := range c.Operations {
		if op.Node == node && op.Resource == resource && op.Task == task && op.RC == 0 && (!found || op.Call > best.Call) {
			best, found = op, true
		}
	}
	return best, found
}
