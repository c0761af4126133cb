package drbd

import (
	"encoding/json"
	"fmt"
	"sort"
)

// statusJSON mirrors `drbdsetup status --json` (drbd-utils 9.x). Only the
// fields haconf uses are declared; others are ignored.
type statusJSON struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	Devices []struct {
		Volume    int    `json:"volume"`
		Minor     int    `json:"minor"`
		DiskState string `json:"disk-state"`
	} `json:"devices"`
	Connections []struct {
		PeerNodeID      int    `json:"peer-node-id"`
		Name            string `json:"name"`
		ConnectionState string `json:"connection-state"`
		PeerRole        string `json:"peer-role"`
		PeerDevices     []struct {
			Volume           int      `json:"volume"`
			ReplicationState string   `json:"replication-state"`
			PeerDiskState    string   `json:"peer-disk-state"`
			OutOfSync        int64    `json:"out-of-sync"`
			HasSyncDetails   bool     `json:"has-sync-details"`
			PercentInSync    *float64 `json:"percent-in-sync"`
		} `json:"peer_devices"`
	} `json:"connections"`
}

// ParseStatusJSON parses `drbdsetup status --json` into the common state.
// With several peers (not a haconf pair) the first connection is used.
func ParseStatusJSON(data []byte) (Status, error) {
	var in []statusJSON
	if err := json.Unmarshal(data, &in); err != nil {
		return Status{}, fmt.Errorf("drbdsetup status --json: %w", err)
	}
	var st Status
	for _, r := range in {
		if r.Name == "" {
			return Status{}, fmt.Errorf("drbdsetup status --json: resource without name")
		}
		for _, d := range r.Devices {
			out := Resource{Name: r.Name, Volume: d.Volume, Minor: d.Minor, Role: r.Role, Disk: d.DiskState,
				Connection: ConnStandAlone, Replication: ReplOff, PeerRole: RoleUnknown, PeerDisk: DiskDUnknown}
			if len(r.Connections) > 0 {
				c := r.Connections[0]
				out.PeerName, out.Connection, out.PeerRole = c.Name, c.ConnectionState, c.PeerRole
				for _, p := range c.PeerDevices {
					if p.Volume != d.Volume {
						continue
					}
					out.Replication, out.PeerDisk, out.OutOfSyncKiB = p.ReplicationState, p.PeerDiskState, p.OutOfSync
					if p.HasSyncDetails && p.PercentInSync != nil {
						out.Sync = &SyncProgress{Percent: *p.PercentInSync, RemainingKiB: p.OutOfSync, ETASeconds: -1}
					}
				}
			}
			st.Resources = append(st.Resources, out)
		}
	}
	sortResources(st.Resources)
	return st, nil
}

func sortResources(rs []Resource) {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Name != rs[j].Name {
			return rs[i].Name < rs[j].Name
		}
		return rs[i].Volume < rs[j].Volume
	})
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
