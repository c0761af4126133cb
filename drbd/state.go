package drbd

import "strings"

// Roles, disk states and connection states, with DRBD 9 names. DRBD 8.4
// names are translated when parsed (WFConnection becomes Connecting, the
// sync connection states become replication states).
const (
	RolePrimary   = "Primary"
	RoleSecondary = "Secondary"
	RoleUnknown   = "Unknown"

	DiskUpToDate     = "UpToDate"
	DiskOutdated     = "Outdated"
	DiskInconsistent = "Inconsistent"
	DiskDiskless     = "Diskless"
	DiskDUnknown     = "DUnknown"

	ConnStandAlone   = "StandAlone"
	ConnConnecting   = "Connecting"
	ConnConnected    = "Connected"
	ConnUnconfigured = "Unconfigured"

	ReplEstablished = "Established"
	ReplOff         = "Off"
)

// Resource is the state of one DRBD volume and its single peer, the common
// model for DRBD 8.4 and 9. Empty strings mean "not reported".
type Resource struct {
	Name   string `json:"name,omitempty"` // empty from /proc/drbd (8.4 only knows minors)
	Volume int    `json:"volume"`
	Minor  int    `json:"minor"`

	Role string `json:"role"`
	Disk string `json:"disk"`
	// Connection is StandAlone, Connecting, Connected, ... (DRBD 9 names).
	Connection string `json:"connection"`
	// Replication is Established, SyncSource, SyncTarget, ... or Off.
	Replication string `json:"replication,omitempty"`
	Protocol    string `json:"protocol,omitempty"`

	PeerName string `json:"peer,omitempty"`
	PeerRole string `json:"peer_role"`
	PeerDisk string `json:"peer_disk"`

	// OutOfSyncKiB is what this node's bitmap marks as differing from the
	// peer. While StandAlone after a split brain it counts the blocks this
	// node wrote since the split.
	OutOfSyncKiB int64         `json:"out_of_sync_kib"`
	Sync         *SyncProgress `json:"sync,omitempty"`

	// SplitBrain is set when the split-brain helper was seen running
	// (DRBD 9 events2 only; on 8.4 the handler hook records it).
	SplitBrain bool `json:"split_brain"`
}

// SyncProgress is a running resync or online verify.
type SyncProgress struct {
	Percent      float64 `json:"percent"`
	RemainingKiB int64   `json:"remaining_kib,omitempty"`
	TotalKiB     int64   `json:"total_kib,omitempty"`
	// ETASeconds is DRBD's estimate of the time left (-1 when unknown).
	ETASeconds int64 `json:"eta_seconds"`
	// SpeedKiBs is the current speed in KiB/s (0 when unknown).
	SpeedKiBs int64 `json:"speed_kib_s,omitempty"`
}

// Status is the DRBD state of one node.
type Status struct {
	// Version is the kernel module version (e.g. 8.4.11), when known.
	Version   string     `json:"version,omitempty"`
	Resources []Resource `json:"resources"`
}

// Healthy reports whether r is connected and both disks are UpToDate.
func (r Resource) Healthy() bool {
	return r.Connection == ConnConnected && r.Disk == DiskUpToDate && r.PeerDisk == DiskUpToDate &&
		(r.Replication == "" || r.Replication == ReplEstablished)
}

// Disconnected reports whether r has no working replication link.
func (r Resource) Disconnected() bool {
	return r.Connection != ConnConnected
}

// ByName returns the resource with the given name and volume.
func (s Status) ByName(name string, volume int) (Resource, bool) {
	for _, r := range s.Resources {
		if r.Name == name && r.Volume == volume {
			return r, true
		}
	}
	return Resource{}, false
}

// ByMinor returns the resource on the given minor.
func (s Status) ByMinor(minor int) (Resource, bool) {
	for _, r := range s.Resources {
		if r.Minor == minor {
			return r, true
		}
	}
	return Resource{}, false
}

// Is84 reports whether version names a DRBD 8.x module.
func Is84(version string) bool { return strings.HasPrefix(version, "8.") }

// connectionStates84 maps DRBD 8.4 connection states (cs:) to the DRBD 9
// connection state and replication state.
var connectionStates84 = map[string][2]string{
	"StandAlone":     {ConnStandAlone, ReplOff},
	"Disconnecting":  {"Disconnecting", ReplOff},
	"Unconnected":    {"Unconnected", ReplOff},
	"Timeout":        {"Timeout", ReplOff},
	"BrokenPipe":     {"BrokenPipe", ReplOff},
	"NetworkFailure": {"NetworkFailure", ReplOff},
	"ProtocolError":  {"ProtocolError", ReplOff},
	"TearDown":       {"TearDown", ReplOff},
	"WFConnection":   {ConnConnecting, ReplOff},
	"WFReportParams": {ConnConnecting, ReplOff},
	"Connected":      {ConnConnected, ReplEstablished},
	"Unconfigured":   {ConnUnconfigured, ""},
}

// translate84 returns the connection and replication states for an 8.4 cs:.
func translate84(cs string) (conn, repl string) {
	if t, ok := connectionStates84[cs]; ok {
		return t[0], t[1]
	}
	// StartingSyncS, WFBitMapT, SyncSource, SyncTarget, PausedSyncS,
	// VerifyS, Ahead, Behind, ...: connected, replicating in that state.
	return ConnConnected, cs
}
