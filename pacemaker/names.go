package pacemaker

// The ids haconf gives its CIB objects. templates/cib.xml.tmpl renders them,
// and the agents, the fence-peer handler, status, switchover and the
// split-brain engine look them up: every one is named here, once.
const (
	// Group is the service group colocated with DRBD's promoted instance:
	// the filesystem, MariaDB and haproxy.
	Group = "g-services"
	// Filesystem is the filesystem on the DRBD device (ocf:haconf:fs).
	Filesystem = "fs-haconf"
	// MariaDB is the database server (ocf:haconf:mariadb).
	MariaDB = "mariadb"
	// VIP is the API virtual IP (ocf:haconf:vip), colocated with DRBD's
	// promotion outside the group so it starts in parallel with it.
	VIP = "vip"
	// Haproxy is the API load balancer bound to the VIP.
	Haproxy = "haproxy"
	// RabbitMQ is the broker primitive, RabbitMQClone its clone.
	RabbitMQ      = "rabbitmq"
	RabbitMQClone = "rabbitmq-clone"
	// Ping is the management connectivity check (ocf:pacemaker:ping),
	// PingClone its clone; PingAttr the node attribute it keeps, 1000 per
	// answering host (vip.ping_hosts), which DRBD's promotion prefers.
	Ping      = "ping"
	PingClone = "ping-clone"
	PingAttr  = "pingd"
	// ComputeController is haconf's compute failover decider (haconf
	// compute controller, ocf:haconf:daemon), with the services.
	ComputeController = "compute-controller"

	// fencePrefix starts the fence-peer handler's constraint id
	// (crm-fence-peer.sh's name, so either handler's constraint is found).
	fencePrefix = "drbd-fence-by-handler-"
)

// Names are the CIB ids that depend on the DRBD resource's name.
type Names struct {
	// Resource is the DRBD resource (drbd.resource in haconf.yaml).
	Resource string
}

// NamesFor returns the ids for DRBD resource res.
func NamesFor(res string) Names { return Names{Resource: res} }

// DRBD is the DRBD primitive inside the promotable clone (drbd-r0).
func (n Names) DRBD() string { return "drbd-" + n.Resource }

// Clone is the promotable clone of the DRBD primitive (drbd-r0-clone).
func (n Names) Clone() string { return CloneOf(n.DRBD()) }

// PromotionAttr is the node attribute the DRBD agent sets to the node's
// promotion score (master-drbd-r0, the name Pacemaker 2.1 still reads).
func (n Names) PromotionAttr() string { return PromotionAttrOf(n.DRBD()) }

// FenceConstraint is the location constraint DRBD's fence-peer handler
// places while the peer's data is outdated.
func (n Names) FenceConstraint() string { return FenceConstraintID(n.Resource, n.Clone()) }

// FenceConstraintID is the fence-peer handler's constraint for DRBD
// resource res and promotable clone clone.
func FenceConstraintID(res, clone string) string { return fencePrefix + res + "-" + clone }

// IsFenceConstraint reports whether id is a fence-peer handler's constraint
// (or the id of its rule, as crm_mon reports it among the bans).
func IsFenceConstraint(id string) bool {
	return len(id) > len(fencePrefix) && id[:len(fencePrefix)] == fencePrefix
}

// FenceHeuristics is the stonith resource (fence_heuristics_ping) that
// goes first in each node's fencing level when vip.ping_hosts is set: a
// node that reaches none of them must not fence its peer.
const FenceHeuristics = "fence-heuristics"

// FenceDevice is the stonith resource that fences node.
func FenceDevice(node string) string { return "fence-" + node }

// Services are what runs with DRBD's promoted instance, in start order:
// the group's members and the VIP. RabbitMQ is among them when it runs
// active/passive on the DRBD volume (rabbitmq.mode active-passive).
func Services(rabbitmqInGroup bool) []string {
	out := []string{Filesystem, MariaDB}
	if rabbitmqInGroup {
		out = append(out, RabbitMQ)
	}
	return append(out, VIP, Haproxy)
}

// CloneOf is the id of the clone of primitive (drbd-r0-clone).
func CloneOf(primitive string) string { return primitive + "-clone" }

// PromotionAttrOf is the node attribute holding a node's promotion score
// for the promotable primitive (master-drbd-r0).
func PromotionAttrOf(primitive string) string { return "master-" + primitive }
