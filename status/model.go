// Package status is `haconf status`: one view of every layer of the
// controller pair (Corosync membership and knet links, Pacemaker resources,
// DRBD, MariaDB, RabbitMQ, the VIP, fencing and its devices, the clock and
// the last backup) with a verdict and the reason for anything that is not
// healthy.
//
// It works in three steps. [Collect] runs one collector per layer, each
// behind a small interface with its own timeout, concurrently; a collector
// that fails or hangs leaves its layer "unknown" with the error. [Assess] is
// pure: it turns a [Snapshot] into a [Report] (verdict, per-layer state and
// findings, each with its reason). [Report.WriteText] and JSON encoding
// render the report. Supported tool versions are those of the parsers it
// uses: corosync 3.x, Pacemaker 2.1, DRBD 8.4 and 9, MariaDB 10.5+,
// RabbitMQ 3.8-3.13, fence-agents 4.x, and those of package clock.
package status

import (
	"time"

	"github.com/haconf/haconf/clock"
	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/pacemaker"
	"github.com/haconf/haconf/rabbitmq"
)

// Expect is what haconf.yaml says the pair should look like.
type Expect struct {
	// Nodes are the controller names (also the Corosync, Pacemaker and
	// RabbitMQ host names).
	Nodes        []string `json:"nodes"`
	DRBDResource string   `json:"drbd_resource"`
	// FencingType is haconf.yaml's fencing.type (ipmi, sbd, lab, none).
	FencingType string `json:"fencing_type"`
	// RabbitMQMode is mirrored, active-passive or quorum.
	RabbitMQMode   string `json:"rabbitmq_mode"`
	RabbitMQPolicy string `json:"rabbitmq_policy,omitempty"`
	// VIP is the virtual IP address without prefix length.
	VIP string `json:"vip"`
	// BackupMaxAge is how old the last successful backup may be before
	// the pair counts as degraded (0: age is not checked).
	BackupMaxAge time.Duration `json:"backup_max_age"`
	// BackupFull is the full backups' cron schedule ("" when none is).
	BackupFull string `json:"backup_full,omitempty"`
}

// Services returns the resources that run with the promoted DRBD instance:
// g-services' members and the VIP (its own primitive, started in parallel
// with the filesystem).
func (e Expect) Services() []string { return pacemaker.Services(e.RabbitMQMode == "active-passive") }

// Snapshot is everything the collectors saw, one part per layer. A part
// whose Error is set could not be read: its layer is unknown.
type Snapshot struct {
	// Node is the controller status ran on.
	Node      string         `json:"node"`
	Time      time.Time      `json:"time"`
	Expect    Expect         `json:"expect"`
	Corosync  CorosyncFacts  `json:"corosync"`
	Pacemaker PacemakerFacts `json:"pacemaker"`
	DRBD      DRBDFacts      `json:"drbd"`
	MySQL     MySQLFacts     `json:"mysql"`
	RabbitMQ  RabbitMQFacts  `json:"rabbitmq"`
	VIP       VIPFacts       `json:"vip"`
	Fencing   FencingFacts   `json:"fencing"`
	Clock     ClockFacts     `json:"clock"`
	Backup    BackupFacts    `json:"backup"`
}

// FencingFacts are the controllers' fence devices as their fence agents
// answer the status action from this node (none with SBD or type none:
// there is no device to ask).
type FencingFacts struct {
	Devices []pacemaker.FenceStatus `json:"devices,omitempty"`
	Error   string                  `json:"error,omitempty"`
}

// ClockFacts are this node's clock synchronisation and its offset to the
// peer's clock.
type ClockFacts struct {
	Sync *clock.Sync `json:"sync,omitempty"`
	// Peer is the peer's name; PeerOffsetMS its clock minus this one's, in
	// milliseconds (absent when it could not be measured: PeerError says
	// why).
	Peer         string `json:"peer,omitempty"`
	PeerOffsetMS *int64 `json:"peer_offset_ms,omitempty"`
	PeerError    string `json:"peer_error,omitempty"`
	Error        string `json:"error,omitempty"`
}

// CorosyncFacts are corosync-cfgtool -s and corosync-quorumtool -s.
type CorosyncFacts struct {
	Links  *pacemaker.CfgStatus `json:"links,omitempty"`
	Quorum *pacemaker.Quorum    `json:"quorum,omitempty"`
	Error  string               `json:"error,omitempty"`
}

// PacemakerFacts are crm_mon --output-as=xml.
type PacemakerFacts struct {
	Mon *pacemaker.CrmMon `json:"crm_mon,omitempty"`
	// StonithEnabled is the cluster property (nil when not reported).
	StonithEnabled *bool `json:"stonith_enabled,omitempty"`
	// Bans are location constraints with a negative score (crm_resource
	// --ban, --move leftovers, crm-fence-peer constraints).
	Bans []Ban `json:"bans,omitempty"`
	// TargetRoles are the target-role meta attributes that are set, by
	// primitive id.
	TargetRoles map[string]string `json:"target_roles,omitempty"`
	// Fenced is the fencing history, newest last.
	Fenced []pacemaker.MonFenceEvent `json:"fence_history,omitempty"`
	// Maintenance says where maintenance-mode comes from and when it ends
	// (read from the cluster properties only while it is on).
	Maintenance *pacemaker.MaintenanceState `json:"maintenance,omitempty"`
	Error       string                      `json:"error,omitempty"`
}

// Ban is a location constraint that keeps a resource off a node.
type Ban struct {
	ID           string `json:"id"`
	Resource     string `json:"resource"`
	Node         string `json:"node"`
	Weight       string `json:"weight"`
	PromotedOnly bool   `json:"promoted_only"`
}

// DRBDFacts are this node's DRBD state (with its view of the peer).
type DRBDFacts struct {
	Status *drbd.Status `json:"status,omitempty"`
	Error  string       `json:"error,omitempty"`
}

// MySQLFacts come from connecting to MariaDB through the VIP.
type MySQLFacts struct {
	Address   string `json:"address,omitempty"` // host:port tried
	Reachable bool   `json:"reachable"`
	ReadOnly  bool   `json:"read_only"`
	Version   string `json:"version,omitempty"`
	// Problem says why the server did not answer (the server is down).
	Problem string `json:"problem,omitempty"`
	// Error says why it could not be checked (e.g. no credentials).
	Error string `json:"error,omitempty"`
}

// RabbitMQFacts are rabbitmqctl cluster_status, list_policies and
// list_queues on this node.
type RabbitMQFacts struct {
	Cluster  *rabbitmq.ClusterStatus `json:"cluster,omitempty"`
	Policies []rabbitmq.PolicyInfo   `json:"policies,omitempty"`
	Queues   []rabbitmq.Queue        `json:"queues,omitempty"`
	Error    string                  `json:"error,omitempty"`
}

// VIPFacts say whether this node carries the VIP on an interface.
type VIPFacts struct {
	Address  string `json:"address"`
	HeldHere bool   `json:"held_here"`
	Error    string `json:"error,omitempty"`
}

// BackupFacts are the repository's last backup outcomes as seen from this
// node.
type BackupFacts struct {
	Repository  string    `json:"repository,omitempty"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	// LastID is the newest complete backup (id and type).
	LastID      string    `json:"last_id,omitempty"`
	LastType    string    `json:"last_type,omitempty"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	// LastError is the error of the newest failed attempt when it is newer
	// than the last success.
	LastError string `json:"last_error,omitempty"`
	// ScheduledSince is when a scheduler first ran the schedules for this
	// repository (zero when none has).
	ScheduledSince time.Time `json:"scheduled_since,omitzero"`
	// Chain is the newest intact full and the differentials taken on it:
	// what a restore of the newest backup uses.
	Chain *BackupChain `json:"chain,omitempty"`
	// Damaged are backups whose manifest cannot be trusted (missing,
	// truncated, edited, unparsable); haconf backup list says why.
	Damaged []string `json:"damaged,omitempty"`
	// LastNote is the differential job's note on its last run, when it took
	// a full instead because the chain was broken.
	LastNote string `json:"last_note,omitempty"`
	// Copies are the off-host copy targets (backup.copies): each one's
	// last copy run and the oldest backup it lacks.
	Copies []BackupCopy `json:"copies,omitempty"`
	Error  string       `json:"error,omitempty"`
}

// BackupCopy is one off-host copy target, from the repository's
// copies.json.
type BackupCopy struct {
	Target      string    `json:"target"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	// LastError is the last copy run's error (empty when it succeeded).
	LastError string `json:"last_error,omitempty"`
	// Uncopied is when the oldest backup the target is not known to hold
	// finished (zero: it holds every backup it should).
	Uncopied time.Time `json:"uncopied_since,omitzero"`
}

// BackupChain is a full and the differentials taken on it.
type BackupChain struct {
	Full          string    `json:"full"`
	FullFinished  time.Time `json:"full_finished"`
	Differentials int       `json:"differentials"`
	// LastDifferential is the newest of them ("" when none).
	LastDifferential string `json:"last_differential,omitempty"`
}

// State is the health of a layer or of the pair.
type State string

const (
	StateOK       State = "ok"
	StateUnknown  State = "unknown" // could not be read; counts as degraded
	StateDegraded State = "degraded"
	StateDown     State = "down"
)

func (s State) rank() int {
	switch s {
	case StateDown:
		return 3
	case StateDegraded:
		return 2
	case StateUnknown:
		return 1
	}
	return 0
}

// Verdict is the pair's overall health.
type Verdict string

const (
	Healthy  Verdict = "HEALTHY"
	Degraded Verdict = "DEGRADED" // works, but not fully redundant (or not fully known)
	Down     Verdict = "DOWN"     // a service is down
)

// Finding is one thing that is not healthy, with its reason.
type Finding struct {
	Layer    string `json:"layer"`
	Severity State  `json:"severity"`
	Message  string `json:"message"`
}

// Layer is one layer's verdict.
type Layer struct {
	Name     string    `json:"name"`
	State    State     `json:"state"`
	Summary  string    `json:"summary"`
	Findings []Finding `json:"findings,omitempty"`
}

// Placement says where a Pacemaker resource runs and, when it is not where
// it should be, why.
type Placement struct {
	Resource string   `json:"resource"`
	Role     string   `json:"role"`
	Nodes    []string `json:"nodes"`
	Why      string   `json:"why,omitempty"`
}

// Report is the outcome of Assess.
type Report struct {
	Verdict Verdict   `json:"verdict"`
	Reasons []string  `json:"reasons"` // the verdict's reasons, worst first (none when healthy)
	Node    string    `json:"node"`
	Time    time.Time `json:"time"`
	// Active is where the services should run: the DRBD Promoted node.
	Active    string      `json:"active,omitempty"`
	Layers    []Layer     `json:"layers"`
	Resources []Placement `json:"resources,omitempty"`
	Facts     *Snapshot   `json:"facts,omitempty"`
}

// Layer names, in report order.
const (
	LayerCorosync  = "corosync"
	LayerPacemaker = "pacemaker"
	LayerDRBD      = "drbd"
	LayerMySQL     = "mysql"
	LayerRabbitMQ  = "rabbitmq"
	LayerVIP       = "vip"
	LayerFencing   = "fencing"
	LayerClock     = "clock"
	LayerBackup    = "backup"
)
