package status

import (
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/clock"
	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/internal/fixtures"
	"github.com/haconf/haconf/pacemaker"
	"github.com/haconf/haconf/rabbitmq"
)

var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// fixture reads a captured tool output from the testdata of the package
// that parses it.
func fixture(t testing.TB, tool, name string) []byte {
	t.Helper()
	switch tool {
	case "crm_mon":
		return fixtures.Read(t, "pacemaker", "crmmon/sim-status/"+name)
	case "corosync":
		return fixtures.Read(t, "pacemaker", "corosync/"+name)
	case "drbd":
		return fixtures.Read(t, "drbd", "captured-"+name)
	}
	return fixtures.Read(t, tool, name)
}

func monFacts(t testing.TB, state string) PacemakerFacts {
	t.Helper()
	f, err := parsePacemaker(fixture(t, "crm_mon", state+".xml"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func corosyncFacts(t testing.TB, cfgState, quorumState string) CorosyncFacts {
	t.Helper()
	links, err := pacemaker.ParseCfgtool(fixture(t, "corosync", "corosync-cfgtool-317-s-"+cfgState+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	q, err := pacemaker.ParseQuorumtool(fixture(t, "corosync", "corosync-quorumtool-317-s-"+quorumState+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	return CorosyncFacts{Links: &links, Quorum: &q}
}

func drbdFacts(t testing.TB, state string) DRBDFacts {
	t.Helper()
	st, err := drbd.ParseProcDRBD(fixture(t, "drbd", "proc-drbd-84-"+state+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range st.Resources {
		st.Resources[i].Name = "r0" // drbd.Node names the configured minor
	}
	return DRBDFacts{Status: &st}
}

// rabbitFixture reads a RabbitMQ capture with its node names
// (rabbit@localhost, rabbit2@localhost) renamed to the pair's.
func rabbitFixture(t testing.TB, name string) []byte {
	s := string(fixture(t, "rabbitmq", "rabbitmqctl-3108-"+name+".json"))
	s = strings.ReplaceAll(s, "rabbit2@localhost", "rabbit@ctl2")
	return []byte(strings.ReplaceAll(s, "rabbit@localhost", "rabbit@ctl1"))
}

func rabbitFacts(t testing.TB, cluster, policies, queues string) RabbitMQFacts {
	t.Helper()
	c, err := rabbitmq.ParseClusterStatus(rabbitFixture(t, "cluster_status-"+cluster))
	if err != nil {
		t.Fatal(err)
	}
	p, err := rabbitmq.ParsePolicies(rabbitFixture(t, "list_policies-"+policies))
	if err != nil {
		t.Fatal(err)
	}
	q, err := rabbitmq.ParseQueues(rabbitFixture(t, "list_queues-"+queues))
	if err != nil {
		t.Fatal(err)
	}
	return RabbitMQFacts{Cluster: &c, Policies: p, Queues: q}
}

// healthyPair is ctl1 running the services with ctl2 as a ready standby.
func healthyPair(t testing.TB) Snapshot {
	return Snapshot{
		Node: "ctl1",
		Time: now,
		Expect: Expect{Nodes: []string{"ctl1", "ctl2"}, DRBDResource: "r0", FencingType: "ipmi", RabbitMQMode: "mirrored",
			RabbitMQPolicy: "ha-all", VIP: "192.0.2.10", BackupMaxAge: 26 * time.Hour},
		Corosync:  corosyncFacts(t, "two-links-connected", "two-node-quorate"),
		Pacemaker: monFacts(t, "healthy"),
		DRBD:      drbdFacts(t, "connected-primary"),
		MySQL:     MySQLFacts{Address: "192.0.2.10:3306", Reachable: true, Version: "10.11.6-MariaDB-0+deb12u1"},
		RabbitMQ:  rabbitFacts(t, "two-running", "ha-all", "mirrored-synced"),
		VIP:       VIPFacts{Address: "192.0.2.10", HeldHere: true},
		Backup: BackupFacts{Repository: "/var/backups/haconf", LastSuccess: now.Add(-10 * time.Hour), LastID: "20261121T020000.000Z-diff",
			LastType: "differential", LastAttempt: now.Add(-10 * time.Hour)},
		Fencing: FencingFacts{Devices: []pacemaker.FenceStatus{
			{Device: "fence-ctl1", Target: "ctl1", Agent: "fence_ipmilan", Power: pacemaker.PowerOn},
			{Device: "fence-ctl2", Target: "ctl2", Agent: "fence_ipmilan", Power: pacemaker.PowerOn},
		}},
		Clock: ClockFacts{Sync: &clock.Sync{State: clock.Synchronised, Tool: "timedatectl", Detail: "NTPSynchronized=yes"}, Peer: "ctl2", PeerOffsetMS: ms(3)},
	}
}

func ms(n int64) *int64 { return &n }

// setNodes moves every instance of the primitive id to nodes.
func setNodes(s *Snapshot, id string, nodes ...string) {
	mon := *s.Pacemaker.Mon
	mon.Resources = append([]pacemaker.MonResource(nil), mon.Resources...)
	for i := range mon.Resources {
		if mon.Resources[i].ID == id {
			mon.Resources[i].Nodes = nodes
		}
	}
	s.Pacemaker.Mon = &mon
}

func TestAssess(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(t *testing.T, s *Snapshot)
		verdict Verdict
		layers  map[string]State // layers that are not ok
		reasons []string         // substrings of the verdict's reasons
	}{
		{
			name:    "healthy pair",
			mod:     func(t *testing.T, s *Snapshot) {},
			verdict: Healthy,
		},
		{
			name:    "standby node in standby",
			mod:     func(t *testing.T, s *Snapshot) { s.Pacemaker = monFacts(t, "standby-ctl2") },
			verdict: Degraded,
			layers:  map[string]State{LayerPacemaker: StateDegraded, LayerFencing: StateDegraded},
			reasons: []string{"ctl2 is in standby: it cannot take over", "DRBD r0 does not run on ctl2: ctl2 is in standby",
				"fence-ctl1 is stopped, ctl1 cannot be fenced: ctl2 is in standby"},
		},
		{
			name: "standby node offline and fenced",
			mod: func(t *testing.T, s *Snapshot) {
				s.Pacemaker = monFacts(t, "ctl2-failed")
				s.Corosync = corosyncFacts(t, "peer-down", "peer-down")
				s.DRBD = drbdFacts(t, "wfconnection-primary")
				s.RabbitMQ = rabbitFacts(t, "peer-stopped", "ha-all", "peer-stopped")
			},
			verdict: Degraded,
			layers: map[string]State{LayerCorosync: StateDegraded, LayerPacemaker: StateDegraded, LayerDRBD: StateDegraded,
				LayerRabbitMQ: StateDegraded, LayerFencing: StateDegraded},
			reasons: []string{"ctl2 is not in the corosync membership", "ctl2 is unreachable on every corosync link", "pacemaker: ctl2 is offline",
				"r0 is disconnected from ctl2 (Connecting)", "RabbitMQ does not run on ctl2", "fence-ctl1 is stopped, ctl1 cannot be fenced: ctl2 is offline"},
		},
		{
			name: "RabbitMQ started by Pacemaker, not yet back in the cluster",
			mod: func(t *testing.T, s *Snapshot) {
				s.RabbitMQ = rabbitFacts(t, "peer-stopped", "ha-all", "peer-stopped")
			},
			verdict: Degraded,
			layers:  map[string]State{LayerRabbitMQ: StateDegraded},
			reasons: []string{"RabbitMQ on ctl2 has not joined the cluster yet (Pacemaker reports it started"},
		},
		{
			name:    "one corosync link down",
			mod:     func(t *testing.T, s *Snapshot) { s.Corosync = corosyncFacts(t, "link1-down", "link1-down") },
			verdict: Degraded,
			layers:  map[string]State{LayerCorosync: StateDegraded},
			reasons: []string{"link 1 to ctl2 is down (local address 10.250.10.1): one heartbeat path left"},
		},
		{
			name:    "DRBD disconnected",
			mod:     func(t *testing.T, s *Snapshot) { s.DRBD = drbdFacts(t, "wfconnection-primary") },
			verdict: Degraded,
			layers:  map[string]State{LayerDRBD: StateDegraded},
			reasons: []string{"r0 is disconnected from ctl2 (Connecting)"},
		},
		{
			name:    "DRBD resync, peer is SyncTarget",
			mod:     func(t *testing.T, s *Snapshot) { s.DRBD = drbdFacts(t, "syncsource-primary") },
			verdict: Degraded,
			layers:  map[string]State{LayerDRBD: StateDegraded},
			reasons: []string{"r0 is resyncing (SyncSource) 6.3%, about 2m43s left: ctl2 cannot take over until it finishes"},
		},
		{
			name: "DRBD SyncTarget seen from the standby",
			mod: func(t *testing.T, s *Snapshot) {
				s.Node = "ctl2"
				s.DRBD = drbdFacts(t, "synctarget-secondary")
				s.VIP.HeldHere = false
				s.Backup = BackupFacts{}
			},
			verdict: Degraded,
			layers:  map[string]State{LayerDRBD: StateDegraded, LayerBackup: StateUnknown},
			reasons: []string{"r0 is resyncing (SyncTarget) 12.5%, about 13s left: ctl2 cannot take over until it finishes",
				"no backup state on ctl2: backups run on the active node ctl1"},
		},
		{
			name:    "DRBD split brain",
			mod:     func(t *testing.T, s *Snapshot) { s.DRBD = drbdFacts(t, "standalone-splitbrain-ctl1") },
			verdict: Degraded,
			layers:  map[string]State{LayerDRBD: StateDegraded},
			reasons: []string{"r0 is StandAlone: replication stopped, likely after a split brain (haconf splitbrain status)"},
		},
		{
			name:    "DRBD Secondary on both nodes",
			mod:     func(t *testing.T, s *Snapshot) { s.DRBD = drbdFacts(t, "connected-inconsistent") },
			verdict: Down,
			layers:  map[string]State{LayerDRBD: StateDown},
			reasons: []string{"r0 is Secondary on both nodes: no node serves the data"},
		},
		{
			name: "MariaDB down",
			mod: func(t *testing.T, s *Snapshot) {
				s.MySQL = MySQLFacts{Address: "192.0.2.10:3306", Problem: "dial tcp 192.0.2.10:3306: connect: connection refused"}
			},
			verdict: Down,
			layers:  map[string]State{LayerMySQL: StateDown},
			reasons: []string{"MariaDB does not answer at 192.0.2.10:3306: dial tcp 192.0.2.10:3306: connect: connection refused"},
		},
		{
			name:    "MariaDB read-only",
			mod:     func(t *testing.T, s *Snapshot) { s.MySQL.ReadOnly = true },
			verdict: Down,
			layers:  map[string]State{LayerMySQL: StateDown},
			reasons: []string{"MariaDB at 192.0.2.10:3306 is read-only"},
		},
		{
			name: "services on the DRBD-secondary node",
			mod: func(t *testing.T, s *Snapshot) {
				for _, id := range []string{"fs-haconf", "mariadb", "vip", "haproxy"} {
					setNodes(s, id, "ctl2")
				}
				s.VIP.HeldHere = false
			},
			verdict: Down,
			layers:  map[string]State{LayerPacemaker: StateDown},
			reasons: []string{"mariadb runs on ctl2, but DRBD r0 is Primary on ctl1", "fs-haconf runs on ctl2, but DRBD r0 is Primary on ctl1"},
		},
		{
			name:    "VIP on both nodes (Pacemaker)",
			mod:     func(t *testing.T, s *Snapshot) { setNodes(s, "vip", "ctl1", "ctl2") },
			verdict: Down,
			layers:  map[string]State{LayerPacemaker: StateDown, LayerVIP: StateDown},
			reasons: []string{"VIP 192.0.2.10 is on ctl1 and ctl2 at once"},
		},
		{
			name:    "VIP also configured outside Pacemaker",
			mod:     func(t *testing.T, s *Snapshot) { s.Node = "ctl2"; s.DRBD = drbdFacts(t, "connected-secondary") },
			verdict: Down,
			layers:  map[string]State{LayerVIP: StateDown},
			reasons: []string{"VIP 192.0.2.10 is on both nodes: Pacemaker runs it on ctl1 and it is also configured here on ctl2"},
		},
		{
			name: "VIP on no node: services banned everywhere",
			mod: func(t *testing.T, s *Snapshot) {
				s.Pacemaker = monFacts(t, "services-banned-both")
				s.VIP.HeldHere = false
				s.MySQL = MySQLFacts{Address: "192.0.2.10:3306", Problem: "dial tcp 192.0.2.10:3306: connect: no route to host"}
			},
			verdict: Down,
			layers:  map[string]State{LayerPacemaker: StateDown, LayerMySQL: StateDown, LayerVIP: StateDown},
			reasons: []string{"fs-haconf is stopped: constraint cli-ban-g-services-on-ctl2 keeps g-services off ctl2; constraint cli-ban-g-services-on-ctl1 keeps g-services off ctl1",
				"mariadb is stopped: it starts after fs-haconf, which is stopped",
				"VIP 192.0.2.10 is on no node: it starts after fs-haconf, which is stopped: constraint cli-ban-g-services-on-ctl2"},
		},
		{
			name:    "MariaDB disabled",
			mod:     func(t *testing.T, s *Snapshot) { s.Pacemaker = monFacts(t, "mariadb-disabled"); s.VIP.HeldHere = false },
			verdict: Down,
			layers:  map[string]State{LayerPacemaker: StateDown, LayerVIP: StateDown},
			reasons: []string{"mariadb is stopped: mariadb is disabled (target-role=Stopped)", "vip is stopped: it starts after mariadb, which is stopped"},
		},
		{
			name:    "fencing none",
			mod:     func(t *testing.T, s *Snapshot) { s.Expect.FencingType = "none" },
			verdict: Degraded,
			layers:  map[string]State{LayerFencing: StateDegraded},
			reasons: []string{"UNSAFE: fencing.type is none"},
		},
		{
			name: "stonith disabled in the cluster",
			mod: func(t *testing.T, s *Snapshot) {
				f := false
				s.Pacemaker.StonithEnabled = &f
			},
			verdict: Degraded,
			layers:  map[string]State{LayerFencing: StateDegraded},
			reasons: []string{"UNSAFE: stonith-enabled=false in the cluster although haconf.yaml configures ipmi fencing"},
		},
		{
			name:    "failed action",
			mod:     func(t *testing.T, s *Snapshot) { s.Pacemaker = monFacts(t, "mariadb-start-failed") },
			verdict: Degraded,
			layers:  map[string]State{LayerPacemaker: StateDegraded},
			reasons: []string{"failed action mariadb_start_0 on ctl1: error (User-injected result) at 2026-11-21 10:28:00Z; after fixing the cause: crm_resource --cleanup -r mariadb"},
		},
		{
			// A broker that was still booting (monitor: OCF_DEGRADED) stays
			// in Pacemaker's failure history for failure-timeout: not a failure.
			name:    "degraded monitor in the history",
			mod:     func(t *testing.T, s *Snapshot) { s.Pacemaker = monFacts(t, "rabbitmq-degraded-history") },
			verdict: Healthy,
			layers:  map[string]State{LayerPacemaker: StateOK},
		},
		{
			name:    "maintenance mode",
			mod:     func(t *testing.T, s *Snapshot) { s.Pacemaker = monFacts(t, "maintenance") },
			verdict: Degraded,
			layers:  map[string]State{LayerPacemaker: StateDegraded},
			reasons: []string{"maintenance-mode is on: Pacemaker starts, stops and recovers nothing"},
		},
		{
			name: "maintenance window",
			mod: func(t *testing.T, s *Snapshot) {
				s.Pacemaker = monFacts(t, "maintenance")
				s.Pacemaker.Maintenance = &pacemaker.MaintenanceState{On: true, Source: pacemaker.SourceHaconf, SetID: pacemaker.MaintenanceSetID, Until: now.Add(45 * time.Minute)}
			},
			verdict: Degraded,
			layers:  map[string]State{LayerPacemaker: StateDegraded},
			reasons: []string{"maintenance-mode is on until 2026-11-21 12:45:00Z (haconf maintenance, 45m0s left; it ends by itself): Pacemaker starts, stops and recovers nothing"},
		},
		{
			name: "permanent maintenance",
			mod: func(t *testing.T, s *Snapshot) {
				s.Pacemaker = monFacts(t, "maintenance")
				s.Pacemaker.Maintenance = &pacemaker.MaintenanceState{On: true, Source: pacemaker.SourceBootstrap, SetID: pacemaker.BootstrapSetID}
			},
			verdict: Degraded,
			layers:  map[string]State{LayerPacemaker: StateDegraded},
			reasons: []string{"maintenance-mode is on with no end (cib-bootstrap-options; haconf maintenance off ends it): Pacemaker starts, stops and recovers nothing"},
		},
		{
			name: "RabbitMQ mirrors not synchronised",
			mod: func(t *testing.T, s *Snapshot) {
				s.RabbitMQ = rabbitFacts(t, "two-running", "ha-all-manual", "mirror-unsynchronised")
			},
			verdict: Degraded,
			layers:  map[string]State{LayerRabbitMQ: StateDegraded},
			reasons: []string{"3 queue(s) have unsynchronised mirrors, a failover now loses their messages: notifications.info, conductor, scheduler_fanout_x"},
		},
		{
			name:    "RabbitMQ mirror policy missing",
			mod:     func(t *testing.T, s *Snapshot) { s.RabbitMQ = rabbitFacts(t, "two-running", "none", "no-policy") },
			verdict: Degraded,
			layers:  map[string]State{LayerRabbitMQ: StateDegraded},
			reasons: []string{"mirrored-queue policy ha-all is missing on vhost /", "3 classic queue(s) have no mirror"},
		},
		{
			name:    "backup too old",
			mod:     func(t *testing.T, s *Snapshot) { s.Backup.LastSuccess = now.Add(-76 * time.Hour) },
			verdict: Degraded,
			layers:  map[string]State{LayerBackup: StateDegraded},
			reasons: []string{"the last successful backup is 3d4h old (expected at most 26h)"},
		},
		{
			name: "no backup yet, the first full not due yet",
			mod: func(t *testing.T, s *Snapshot) {
				s.Backup = BackupFacts{Repository: "/var/backups/haconf", ScheduledSince: now.Add(-time.Hour)}
				s.Expect.BackupFull = "0 2 * * 0"
			},
			verdict: Healthy,
		},
		{
			name: "no backup, the first full overdue",
			mod: func(t *testing.T, s *Snapshot) {
				s.Backup = BackupFacts{Repository: "/var/backups/haconf", ScheduledSince: now.Add(-8 * 24 * time.Hour)}
				s.Expect.BackupFull = "0 2 * * 0"
			},
			verdict: Degraded,
			layers:  map[string]State{LayerBackup: StateDegraded},
			reasons: []string{"no successful backup yet in /var/backups/haconf: the first full backup (0 2 * * 0) was due by 2026-11-15 04:00Z"},
		},
		{
			name: "no backup, schedule never ran",
			mod: func(t *testing.T, s *Snapshot) {
				s.Backup = BackupFacts{Repository: "/var/backups/haconf"}
				s.Expect.BackupFull = "0 2 * * 0"
			},
			verdict: Degraded,
			layers:  map[string]State{LayerBackup: StateDegraded},
			reasons: []string{"haconf watchdog never ran the schedule here"},
		},
		{
			name:    "no backup, none scheduled",
			mod:     func(t *testing.T, s *Snapshot) { s.Backup = BackupFacts{Repository: "/var/backups/haconf"} },
			verdict: Degraded,
			layers:  map[string]State{LayerBackup: StateDegraded},
			reasons: []string{"none is scheduled (backup.full is empty)"},
		},
		{
			name:    "damaged backups",
			mod:     func(t *testing.T, s *Snapshot) { s.Backup.Damaged = []string{"20261114T020000.000Z-full"} },
			verdict: Degraded,
			layers:  map[string]State{LayerBackup: StateDegraded},
			reasons: []string{"1 damaged backup(s) in /var/backups/haconf: 20261114T020000.000Z-full"},
		},
		{
			name: "backup failed after the last success",
			mod: func(t *testing.T, s *Snapshot) {
				s.Backup.LastAttempt, s.Backup.LastError = now.Add(-time.Hour), "access denied"
			},
			verdict: Degraded,
			layers:  map[string]State{LayerBackup: StateDegraded},
			reasons: []string{"the last backup attempt failed at 2026-11-21 11:00Z: access denied"},
		},
		{
			name: "off-host copies up to date, and one a few hours behind",
			mod: func(t *testing.T, s *Snapshot) {
				s.Backup.Copies = []BackupCopy{{Target: "vault", LastSuccess: now.Add(-9 * time.Hour), LastAttempt: now.Add(-10 * time.Hour)},
					{Target: "peer", Uncopied: now.Add(-10 * time.Hour)}}
			},
			verdict: Healthy,
		},
		{
			name: "off-host copy failed",
			mod: func(t *testing.T, s *Snapshot) {
				s.Backup.Copies = []BackupCopy{{Target: "vault", LastSuccess: now.Add(-34 * time.Hour), LastAttempt: now.Add(-10 * time.Hour),
					LastError: "vault: ssh: connect to 192.0.2.50:22: connection refused", Uncopied: now.Add(-10 * time.Hour)}}
			},
			verdict: Degraded,
			layers:  map[string]State{LayerBackup: StateDegraded},
			reasons: []string{"the last copy of backups to vault failed at 2026-11-21 02:00Z: vault: ssh: connect to 192.0.2.50:22: connection refused (retried after the next backup; haconf backup copy --target vault does it now)"},
		},
		{
			name: "a backup not copied off-host for longer than a backup may be old",
			mod: func(t *testing.T, s *Snapshot) {
				s.Backup.Copies = []BackupCopy{{Target: "vault", Uncopied: now.Add(-30 * time.Hour)}}
			},
			verdict: Degraded,
			layers:  map[string]State{LayerBackup: StateDegraded},
			reasons: []string{"a backup finished 30h ago is not on the copy target vault yet (expected within 26h)"},
		},
		{
			name: "collector failed: layer unknown",
			mod: func(t *testing.T, s *Snapshot) {
				s.RabbitMQ = RabbitMQFacts{Error: "rabbitmqctl cluster_status: timed out after 10s"}
			},
			verdict: Degraded,
			layers:  map[string]State{LayerRabbitMQ: StateUnknown},
			reasons: []string{"rabbitmq: could not be read: rabbitmqctl cluster_status: timed out after 10s"},
		},
		{
			name: "a BMC refuses the password",
			mod: func(t *testing.T, s *Snapshot) {
				s.Fencing.Devices[1].Power, s.Fencing.Devices[1].Error = "", "Failed: Unable to obtain correct plug status or plug is not available"
			},
			verdict: Degraded,
			layers:  map[string]State{LayerFencing: StateDegraded},
			reasons: []string{"fencing: fence-ctl2 (fence_ipmilan, from ctl1): Failed: Unable to obtain correct plug status or plug is not available: ctl2 cannot be fenced"},
		},
		{
			name:    "a node powered off: its device answers",
			mod:     func(t *testing.T, s *Snapshot) { s.Fencing.Devices[1].Power = pacemaker.PowerOff },
			verdict: Healthy,
		},
		{
			name: "fence agent not installed here",
			mod: func(t *testing.T, s *Snapshot) {
				s.Fencing.Devices[0] = pacemaker.FenceStatus{Device: "fence-ctl1", Target: "ctl1", Agent: "fence_ipmilan", Missing: true, Error: "fence_ipmilan is not installed"}
			},
			verdict: Degraded,
			layers:  map[string]State{LayerFencing: StateDegraded},
			reasons: []string{"fence_ipmilan is not installed on ctl1: ctl1 cannot be fenced from here"},
		},
		{
			name:    "fence devices not asked in time",
			mod:     func(t *testing.T, s *Snapshot) { s.Fencing = FencingFacts{Error: "timed out after 30s"} },
			verdict: Degraded,
			layers:  map[string]State{LayerFencing: StateUnknown},
			reasons: []string{"fencing: the fence devices could not be asked: timed out after 30s"},
		},
		{
			name:    "SBD: no device to ask",
			mod:     func(t *testing.T, s *Snapshot) { s.Expect.FencingType, s.Fencing = "sbd", FencingFacts{} },
			verdict: Healthy,
		},
		{
			name: "clock not synchronised",
			mod: func(t *testing.T, s *Snapshot) {
				s.Clock.Sync = &clock.Sync{State: clock.NotSynchronised, Tool: "chronyc", Detail: "Leap status Not synchronised"}
			},
			verdict: Degraded,
			layers:  map[string]State{LayerClock: StateDegraded},
			reasons: []string{"clock: the clock of ctl1 is not synchronised (chronyc: Leap status Not synchronised)"},
		},
		{
			// A node without systemd or chrony (the lab's): the offset to
			// the peer, what the pair needs, was measured.
			name: "no time tool answers, the peer's offset measured",
			mod: func(t *testing.T, s *Snapshot) {
				s.Clock.Sync = &clock.Sync{State: clock.Unknown, Detail: "timedatectl: not installed; chronyc: not installed"}
			},
			verdict: Healthy,
			layers:  map[string]State{LayerClock: StateOK},
		},
		{
			name: "no time tool answers, the peer's offset not measured",
			mod: func(t *testing.T, s *Snapshot) {
				s.Clock.Sync = &clock.Sync{State: clock.Unknown, Detail: "timedatectl: not installed; chronyc: not installed"}
				s.Clock.PeerOffsetMS, s.Clock.PeerError = nil, "clockdiff: 192.0.2.12 is down"
			},
			verdict: Degraded,
			layers:  map[string]State{LayerClock: StateUnknown},
			reasons: []string{"clock: no tool tells whether the clock of ctl1 is synchronised (timedatectl: not installed; chronyc: not installed), and the offset to ctl2's is not known either"},
		},
		{
			name:    "peer's clock 1.5s behind",
			mod:     func(t *testing.T, s *Snapshot) { s.Clock.PeerOffsetMS = ms(-1500) },
			verdict: Degraded,
			layers:  map[string]State{LayerClock: StateDegraded},
			reasons: []string{"clock: ctl2's clock is 1.5s behind ctl1's (they should be less than 1s apart)"},
		},
		{
			name:    "peer's clock 42s ahead",
			mod:     func(t *testing.T, s *Snapshot) { s.Clock.PeerOffsetMS = ms(42000) },
			verdict: Degraded,
			layers:  map[string]State{LayerClock: StateDegraded},
			reasons: []string{"ctl2's clock is 42s ahead of ctl1's: more than 30s apart, the watchdogs refuse each other's signed requests"},
		},
		{
			name: "peer's clock not measured",
			mod: func(t *testing.T, s *Snapshot) {
				s.Clock.PeerOffsetMS, s.Clock.PeerError = nil, "the offset to the peer could not be measured: clockdiff 192.0.2.12: clockdiff: 192.0.2.12 is down"
			},
			verdict: Degraded,
			layers:  map[string]State{LayerClock: StateUnknown},
			reasons: []string{"clock: the offset to ctl2's clock could not be measured"},
		},
		{
			name: "crm_mon failed",
			mod: func(t *testing.T, s *Snapshot) {
				s.Pacemaker = PacemakerFacts{Error: "crm_mon: exit status 102: Connection to cluster failed"}
			},
			verdict: Degraded,
			layers:  map[string]State{LayerPacemaker: StateUnknown, LayerFencing: StateUnknown},
			reasons: []string{"pacemaker: could not be read: crm_mon: exit status 102"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := healthyPair(t)
			tt.mod(t, &s)
			r := Assess(s)
			if r.Verdict != tt.verdict {
				t.Errorf("verdict %s, want %s; reasons:\n  %s", r.Verdict, tt.verdict, strings.Join(r.Reasons, "\n  "))
			}
			for _, l := range r.Layers {
				want := tt.layers[l.Name]
				if want == "" {
					want = StateOK
				}
				if l.State != want {
					t.Errorf("layer %s is %s, want %s: %+v", l.Name, l.State, want, l.Findings)
				}
			}
			all := strings.Join(r.Reasons, "\n")
			for _, want := range tt.reasons {
				if !strings.Contains(all, want) {
					t.Errorf("no reason contains %q; reasons:\n  %s", want, strings.Join(r.Reasons, "\n  "))
				}
			}
			if tt.verdict == Healthy && len(r.Reasons) != 0 {
				t.Errorf("healthy with reasons %v", r.Reasons)
			}
		})
	}
}

func TestAssessPlacements(t *testing.T) {
	s := healthyPair(t)
	s.Pacemaker = monFacts(t, "mariadb-disabled")
	r := Assess(s)
	if r.Active != "ctl1" {
		t.Errorf("active %q", r.Active)
	}
	got := map[string]Placement{}
	for _, p := range r.Resources {
		got[p.Resource+"/"+p.Role] = p
	}
	if p := got["drbd-r0-clone/Promoted"]; len(p.Nodes) != 1 || p.Nodes[0] != "ctl1" {
		t.Errorf("promoted %+v", p)
	}
	if p := got["mariadb/Stopped"]; !strings.Contains(p.Why, "target-role=Stopped") {
		t.Errorf("mariadb %+v", p)
	}
	if p := got["rabbitmq/Started"]; len(p.Nodes) != 2 {
		t.Errorf("rabbitmq %+v", p)
	}
}

func TestFmtAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 42 * time.Second: "42s", 12 * time.Minute: "12m", 5 * time.Hour: "5h",
		5*time.Hour + 10*time.Minute: "5h10m", 76 * time.Hour: "3d4h",
	} {
		if got := fmtAge(d); got != want {
			t.Errorf("fmtAge(%s) = %q, want %q", d, got, want)
		}
	}
}
