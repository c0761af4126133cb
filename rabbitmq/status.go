package rabbitmq

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
)

// The parsers below read `rabbitmqctl ... --formatter json` of RabbitMQ
// 3.8-3.13 (checked against 3.10.8). They are pure; the caller runs
// rabbitmqctl, which exits 69 when the node is not running.

// ClusterStatus is `rabbitmqctl cluster_status --formatter json`.
type ClusterStatus struct {
	ClusterName  string   `json:"cluster_name"`
	DiskNodes    []string `json:"disk_nodes"`
	RAMNodes     []string `json:"ram_nodes,omitempty"`
	RunningNodes []string `json:"running_nodes"`
	// Partitions maps a node to the nodes it saw as partitioned away.
	Partitions map[string][]string `json:"partitions,omitempty"`
	// Alarms are resource alarms (memory, disk) as RabbitMQ reports them.
	Alarms []string `json:"alarms,omitempty"`
	// Maintenance maps a node to its maintenance status ("not under
	// maintenance" normally).
	Maintenance map[string]string `json:"maintenance,omitempty"`
	// Versions maps a node to its RabbitMQ version.
	Versions map[string]string `json:"versions,omitempty"`
}

// Nodes returns every cluster member (disk and RAM nodes), sorted.
func (c ClusterStatus) Nodes() []string {
	out := append(slices.Clone(c.DiskNodes), c.RAMNodes...)
	sort.Strings(out)
	return slices.Compact(out)
}

// Running reports whether node (e.g. rabbit@ctl1) runs the rabbit app.
func (c ClusterStatus) Running(node string) bool { return slices.Contains(c.RunningNodes, node) }

// Stopped returns the members whose rabbit app is not running.
func (c ClusterStatus) Stopped() []string {
	var out []string
	for _, n := range c.Nodes() {
		if !c.Running(n) {
			out = append(out, n)
		}
	}
	return out
}

type jsonClusterStatus struct {
	ClusterName  string                     `json:"cluster_name"`
	DiskNodes    []string                   `json:"disk_nodes"`
	RAMNodes     []string                   `json:"ram_nodes"`
	RunningNodes []string                   `json:"running_nodes"`
	Partitions   map[string][]string        `json:"partitions"`
	Alarms       []json.RawMessage          `json:"alarms"`
	Maintenance  map[string]string          `json:"maintenance_status"`
	Versions     map[string]json.RawMessage `json:"versions"`
}

// ParseClusterStatus parses `rabbitmqctl cluster_status --formatter json`.
func ParseClusterStatus(data []byte) (ClusterStatus, error) {
	var x jsonClusterStatus
	if err := json.Unmarshal(data, &x); err != nil {
		return ClusterStatus{}, fmt.Errorf("rabbitmqctl cluster_status: %w", err)
	}
	if x.DiskNodes == nil && x.RunningNodes == nil && x.RAMNodes == nil {
		return ClusterStatus{}, fmt.Errorf("rabbitmqctl cluster_status: no disk_nodes or running_nodes")
	}
	out := ClusterStatus{ClusterName: x.ClusterName, DiskNodes: x.DiskNodes, RAMNodes: x.RAMNodes, RunningNodes: x.RunningNodes,
		Maintenance: x.Maintenance}
	for n, p := range x.Partitions {
		if len(p) > 0 {
			if out.Partitions == nil {
				out.Partitions = map[string][]string{}
			}
			out.Partitions[n] = p
		}
	}
	for _, a := range x.Alarms {
		out.Alarms = append(out.Alarms, alarmString(a))
	}
	for n, raw := range x.Versions {
		var v struct {
			RabbitMQ string `json:"rabbitmq_version"`
		}
		if json.Unmarshal(raw, &v) == nil && v.RabbitMQ != "" {
			if out.Versions == nil {
				out.Versions = map[string]string{}
			}
			out.Versions[n] = v.RabbitMQ
		}
	}
	return out, nil
}

// alarmString renders one alarm compactly: 3.x prints objects such as
// {"node":"rabbit@ctl1","resource":"memory","type":"resource_alarm"}.
func alarmString(raw json.RawMessage) string {
	var a struct {
		Node     string `json:"node"`
		Resource string `json:"resource"`
		Type     string `json:"type"`
	}
	if json.Unmarshal(raw, &a) == nil && (a.Node != "" || a.Resource != "") {
		s := a.Resource
		if s == "" {
			s = a.Type
		}
		if a.Node != "" {
			s += " on " + a.Node
		}
		return s
	}
	return string(bytes.TrimSpace(raw))
}

// PolicyInfo is one policy of `rabbitmqctl list_policies --formatter json`.
// (Policy is the mirrored-queue policy haconf.yaml asks for.)
type PolicyInfo struct {
	VHost      string         `json:"vhost"`
	Name       string         `json:"name"`
	Pattern    string         `json:"pattern"`
	ApplyTo    string         `json:"apply_to"`
	Definition map[string]any `json:"definition"`
	Priority   int            `json:"priority"`
}

// HAMode returns the policy's ha-mode ("" when it does not mirror).
func (p PolicyInfo) HAMode() string {
	s, _ := p.Definition["ha-mode"].(string)
	return s
}

// HASyncMode returns the policy's ha-sync-mode ("" means manual).
func (p PolicyInfo) HASyncMode() string {
	s, _ := p.Definition["ha-sync-mode"].(string)
	return s
}

// ParsePolicies parses `rabbitmqctl list_policies --formatter json`. The
// definition is a JSON string in 3.x and an object in some tools; both are
// accepted.
func ParsePolicies(data []byte) ([]PolicyInfo, error) {
	var rows []struct {
		VHost      string          `json:"vhost"`
		Name       string          `json:"name"`
		Pattern    string          `json:"pattern"`
		ApplyTo    string          `json:"apply-to"`
		Definition json.RawMessage `json:"definition"`
		Priority   json.RawMessage `json:"priority"`
	}
	if err := json.Unmarshal(data, &rows); err != nil {
		return nil, fmt.Errorf("rabbitmqctl list_policies: %w", err)
	}
	out := make([]PolicyInfo, 0, len(rows))
	for _, r := range rows {
		p := PolicyInfo{VHost: r.VHost, Name: r.Name, Pattern: r.Pattern, ApplyTo: r.ApplyTo, Priority: int(jsonInt(r.Priority))}
		def := r.Definition
		var s string
		if json.Unmarshal(def, &s) == nil {
			def = []byte(s)
		}
		if len(bytes.TrimSpace(def)) > 0 {
			if err := json.Unmarshal(def, &p.Definition); err != nil {
				return nil, fmt.Errorf("rabbitmqctl list_policies: policy %q definition: %w", r.Name, err)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// FindPolicy returns the policy named name in vhost.
func FindPolicy(ps []PolicyInfo, vhost, name string) (PolicyInfo, bool) {
	for _, p := range ps {
		if p.VHost == vhost && p.Name == name {
			return p, true
		}
	}
	return PolicyInfo{}, false
}

// QueueColumns are the list_queues columns ParseQueues reads, in the order
// to pass them: rabbitmqctl list_queues <QueueColumns...> --formatter json.
var QueueColumns = []string{"name", "type", "policy", "durable", "messages", "state",
	"slave_pids", "synchronised_slave_pids", "leader", "members", "online"}

// Queue is one queue of `rabbitmqctl list_queues`.
type Queue struct {
	Name     string `json:"name"`
	Type     string `json:"type"` // classic, quorum, stream
	Policy   string `json:"policy,omitempty"`
	Durable  bool   `json:"durable"`
	Messages int64  `json:"messages"`
	State    string `json:"state,omitempty"` // running, down, crashed, ...
	// Mirrors and SyncedMirrors count a classic queue's mirrors
	// (slave_pids, synchronised_slave_pids).
	Mirrors       int `json:"mirrors"`
	SyncedMirrors int `json:"synced_mirrors"`
	// Leader, Members and Online are a quorum queue's replicas.
	Leader  string   `json:"leader,omitempty"`
	Members []string `json:"members,omitempty"`
	Online  []string `json:"online,omitempty"`
}

// Replicas returns how many copies of the queue exist and how many are in
// sync: the leader or master counts as one.
func (q Queue) Replicas() (total, synced int) {
	if q.Type == "quorum" || q.Type == "stream" {
		return len(q.Members), len(q.Online)
	}
	return 1 + q.Mirrors, 1 + q.SyncedMirrors
}

// ParseQueues parses `rabbitmqctl list_queues <QueueColumns> --formatter
// json`. Missing columns stay zero; list values RabbitMQ prints as "" when
// they do not apply are empty.
func ParseQueues(data []byte) ([]Queue, error) {
	var rows []map[string]json.RawMessage
	if err := json.Unmarshal(data, &rows); err != nil {
		return nil, fmt.Errorf("rabbitmqctl list_queues: %w", err)
	}
	out := make([]Queue, 0, len(rows))
	for i, r := range rows {
		q := Queue{Name: jsonString(r["name"]), Type: jsonString(r["type"]), Policy: jsonString(r["policy"]),
			State: jsonString(r["state"]), Leader: jsonString(r["leader"]), Messages: jsonInt(r["messages"])}
		if q.Name == "" {
			return nil, fmt.Errorf("rabbitmqctl list_queues: row %d has no name", i)
		}
		var durable bool
		if json.Unmarshal(r["durable"], &durable) == nil {
			q.Durable = durable
		}
		q.Mirrors = len(jsonList(r["slave_pids"]))
		q.SyncedMirrors = len(jsonList(r["synchronised_slave_pids"]))
		q.Members = jsonList(r["members"])
		q.Online = jsonList(r["online"])
		out = append(out, q)
	}
	return out, nil
}

func jsonString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return ""
}

// jsonInt reads a number or a numeric string; anything else is 0.
func jsonInt(raw json.RawMessage) int64 {
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		if v, err := n.Int64(); err == nil {
			return v
		}
	}
	if v, err := strconv.ParseInt(jsonString(raw), 10, 64); err == nil {
		return v
	}
	return 0
}

// jsonList reads a list of strings; "" (RabbitMQ's "not applicable") and
// anything else that is not a list is empty.
func jsonList(raw json.RawMessage) []string {
	var l []string
	if json.Unmarshal(raw, &l) == nil {
		return l
	}
	return nil
}
