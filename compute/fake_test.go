package compute

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/haconf/haconf/compute/gossip"
	"github.com/haconf/haconf/compute/nova"
)

// fakeNova is a stateful Nova: services per host, servers that an
// evacuation moves after one poll, Nova's refusal to evacuate from a host
// it thinks alive, and a count of evacuate calls per server.
type fakeNova struct {
	mu        sync.Mutex
	services  map[string]*nova.Service // by host
	servers   map[string]*nova.Server
	evacuated map[string]int
	refuse    map[string]string // target host -> refusal message
	providers []nova.Provider
	groups    []nova.ServerGroup
	calls     []string
	reads     int  // Providers calls
	stall     bool // evacuations never finish while it is set
	// deleteListed is a server deleted right after ServersOnHost listed it.
	deleteListed string
}

func newFakeNova(hosts ...string) *fakeNova {
	f := &fakeNova{services: map[string]*nova.Service{}, servers: map[string]*nova.Server{}, evacuated: map[string]int{}, refuse: map[string]string{}}
	for i, h := range hosts {
		f.services[h] = &nova.Service{ID: fmt.Sprintf("svc-%d", i), Host: h, Zone: "nova", Status: "enabled", State: "up"}
		capacity := map[string]int{"VCPU": 8, "MEMORY_MB": 8192, "DISK_GB": 100}
		f.providers = append(f.providers, nova.Provider{UUID: "rp-" + h, Name: h, Capacity: capacity, Usages: map[string]int{}})
	}
	return f
}

func (f *fakeNova) boot(id, host string, vcpus int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.servers[id] = &nova.Server{ID: id, Name: "vm-" + id, Status: "ACTIVE", Host: host, Flavor: nova.Flavor{VCPUs: vcpus, RAM: 512, Disk: 1}}
	f.use(host, vcpus, 1)
}

func (f *fakeNova) use(host string, vcpus, sign int) {
	for i := range f.providers {
		if f.providers[i].Name == host {
			f.providers[i].Usages["VCPU"] += sign * vcpus
			f.providers[i].Usages["MEMORY_MB"] += sign * 512
			f.providers[i].Usages["DISK_GB"] += sign * 1
		}
	}
}

func (f *fakeNova) ComputeServices(context.Context) ([]nova.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []nova.Service
	for _, s := range f.services {
		out = append(out, *s)
	}
	return out, nil
}

func (f *fakeNova) byID(id string) *nova.Service {
	for _, s := range f.services {
		if s.ID == id {
			return s
		}
	}
	return nil
}

func (f *fakeNova) ForceDown(_ context.Context, id string, down bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("force-down %s %v", id, down))
	f.byID(id).ForcedDown = down
	if down {
		f.byID(id).State = "down"
	} else {
		f.byID(id).State = "up"
	}
	return nil
}

func (f *fakeNova) Disable(_ context.Context, id, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "disable "+id)
	s := f.byID(id)
	s.Status, s.DisabledReason = "disabled", reason
	return nil
}

func (f *fakeNova) Enable(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "enable "+id)
	s := f.byID(id)
	s.Status, s.DisabledReason = "enabled", ""
	return nil
}

func (f *fakeNova) ServersOnHost(_ context.Context, host string) ([]nova.Server, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []nova.Server
	for _, s := range f.servers {
		if s.Host == host {
			out = append(out, *s)
		}
	}
	delete(f.servers, f.deleteListed)
	return out, nil
}

// Server completes a running evacuation: the first read after the call
// shows it rebuilding, the next one ACTIVE on the target (unless stall;
// a stopped one comes up ACTIVE too: haconf must stop it again).
func (f *fakeNova) Server(_ context.Context, id string) (nova.Server, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.servers[id]
	if !ok {
		return nova.Server{}, &nova.Error{Status: 404, Message: "not found"}
	}
	if s.TaskState == "rebuilding" && !f.stall {
		out := *s
		s.TaskState, s.Status = "", "ACTIVE"
		s.Host = s.Metadata["target"]
		return out, nil
	}
	return *s, nil
}

func (f *fakeNova) Evacuate(_ context.Context, id, host string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "evacuate "+id+" "+host)
	s := f.servers[id]
	if src := f.services[s.Host]; src.State == "up" {
		return &nova.Error{Op: "evacuate", Status: 400, Message: "Compute service of " + s.Host + " is still in use."}
	}
	if msg := f.refuse[host]; msg != "" {
		return &nova.Error{Op: "evacuate", Status: 400, Message: msg}
	}
	f.evacuated[id]++
	s.TaskState = "rebuilding"
	s.Metadata = map[string]string{"target": host}
	f.use(s.Host, s.Flavor.VCPUs, -1)
	f.use(host, s.Flavor.VCPUs, 1)
	return nil
}

func (f *fakeNova) Stop(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "stop "+id)
	s, ok := f.servers[id]
	if !ok {
		return &nova.Error{Status: 404, Message: "not found"}
	}
	s.Status = "SHUTOFF"
	return nil
}

func (f *fakeNova) ServerGroups(context.Context) ([]nova.ServerGroup, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.groups, nil
}

func (f *fakeNova) Providers(context.Context) ([]nova.Provider, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	out := make([]nova.Provider, len(f.providers))
	for i, p := range f.providers {
		u := map[string]int{}
		for k, v := range p.Usages {
			u[k] = v
		}
		out[i] = nova.Provider{UUID: p.UUID, Name: p.Name, Capacity: p.Capacity, Usages: u}
	}
	return out, nil
}

// fakePools is the pools' view, set by the test.
type fakePools struct {
	mu    sync.Mutex
	hosts map[string]HostView
}

func newFakePools(t0 time.Time, hosts ...string) *fakePools {
	p := &fakePools{hosts: map[string]HostView{}}
	for _, h := range hosts {
		p.hosts[h] = HostView{Name: h, Links: map[gossip.Link]LinkView{
			gossip.Management: {Seen: true, Alive: true, Since: t0},
			gossip.Storage:    {Seen: true, Alive: true, Since: t0},
		}, Health: gossip.Health{NovaCompute: true}}
	}
	return p
}

func (p *fakePools) set(host string, l gossip.Link, alive bool, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := p.hosts[host]
	v.Links[l] = LinkView{Seen: true, Alive: alive, Since: at}
	p.hosts[host] = v
}

func (p *fakePools) views() []HostView {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []HostView
	for _, v := range p.hosts {
		links := map[gossip.Link]LinkView{}
		for k, l := range v.Links {
			links[k] = l
		}
		v.Links = links
		out = append(out, v)
	}
	return out
}

// fakeFence powers hosts off, or fails while failing is set.
type fakeFence struct {
	mu      sync.Mutex
	off     []string
	failing bool
}

func (f *fakeFence) Off(_ context.Context, h Host) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing {
		return fmt.Errorf("fence_ipmilan: Unable to connect/login to fencing device")
	}
	f.off = append(f.off, h.Name)
	return nil
}
