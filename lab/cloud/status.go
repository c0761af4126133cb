package cloud

import (
	"context"
	"time"
)

// Status is the compute lab's state (compute status -o json).
type Status struct {
	Dir      string          `json:"dir"`
	Up       bool            `json:"up"`       // every control plane service runs
	Degraded bool            `json:"degraded"` // up, but a host is off, cut off, or down in Nova
	Services []ServiceStatus `json:"services"`
	Hosts    []HostStatus    `json:"hosts"`
	// NovaError says why the compute API could not be asked (nova_state
	// of every host is then empty).
	NovaError string `json:"nova_error,omitempty"`
}

// ServiceStatus is one control plane process.
type ServiceStatus struct {
	Name    string `json:"name"`
	Running bool   `json:"running"`
	PID     int    `json:"pid,omitempty"`
}

// HostStatus is one compute host: what the lab did to it and what Nova
// thinks of it.
type HostStatus struct {
	Name        string `json:"name"`
	MgmtAddr    string `json:"mgmt_addr"`
	StorageAddr string `json:"storage_addr"`
	Power       Power  `json:"power"`
	MgmtLink    string `json:"mgmt_link"`    // up or down
	StorageLink string `json:"storage_link"` // up or down
	NovaCompute bool   `json:"nova_compute"` // its process runs
	NovaState   string `json:"nova_state"`   // up or down in the compute API; empty when unknown
	NovaStatus  string `json:"nova_status"`  // enabled or disabled
	ForcedDown  bool   `json:"forced_down"`
}

func upDown(b bool) string {
	if b {
		return "up"
	}
	return "down"
}

// Status reports the cloud's processes, its hosts' power and links and,
// when the compute API answers, each host's nova-compute service.
func (c *Cloud) Status(ctx context.Context) (Status, error) {
	st := Status{Dir: c.Dir}
	s, err := c.loadSettings()
	if err != nil {
		return st, err
	}
	st.Up = true
	for _, name := range controlServices(s.Masakari) {
		pid, ok := c.running(name)
		st.Up = st.Up && ok
		st.Services = append(st.Services, ServiceStatus{Name: name, Running: ok, PID: pid})
	}
	links, err := c.links(ctx)
	if err != nil {
		return st, err
	}
	var nova map[string]ComputeService
	if st.Up {
		nova, err = c.novaServices(ctx)
		if err != nil {
			st.NovaError = err.Error()
		}
	}
	for _, h := range Hosts(s.Hosts) {
		_, running := c.running(computeService(h))
		mgmt, storage := hostLinks(links, h)
		hs := HostStatus{Name: h.Name, MgmtAddr: h.Mgmt.String(), StorageAddr: h.Storage.String(), Power: c.power(h),
			MgmtLink: upDown(mgmt), StorageLink: upDown(storage), NovaCompute: running}
		if n, ok := nova[h.Name]; ok {
			hs.NovaState, hs.NovaStatus, hs.ForcedDown = n.State, n.Status, n.ForcedDown
		}
		st.Degraded = st.Degraded || hs.Power != PowerOn || !mgmt || !storage || !running || (nova != nil && hs.NovaState != "up")
		st.Hosts = append(st.Hosts, hs)
	}
	st.Degraded = st.Up && st.Degraded
	return st, nil
}

func (c *Cloud) novaServices(ctx context.Context) (map[string]ComputeService, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := c.Secrets()
	if err != nil {
		return nil, err
	}
	a, err := login(ctx, s.Admin)
	if err != nil {
		return nil, err
	}
	svcs, err := a.computeServices(ctx)
	if err != nil {
		return nil, err
	}
	m := map[string]ComputeService{}
	for _, x := range svcs {
		m[x.Host] = x
	}
	return m, nil
}
