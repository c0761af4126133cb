package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/haconf/haconf/compute"
	"github.com/haconf/haconf/compute/gossip"
	"github.com/haconf/haconf/compute/nova"
)

// deciderParams size the decider part.
type deciderParams struct {
	Cloud       cloudParams
	Fail        int  // hosts of one rack that fail at once
	FailRack    int  // which rack (0-based)
	Concurrency int  // compute.evacuate.concurrency
	MaxInFlight int  // compute.evacuate.max_in_flight
	Fence       span // the fence agent's run, off and confirmed
	Timeout     time.Duration
	Log         *slog.Logger // progress
	Controller  *slog.Logger // the controller's own log (counted either way)
}

// deciderResult is what the decider part measured.
type deciderResult struct {
	P         deciderParams
	Failed    []string
	Guards    compute.Guards
	Incidents []incidentTimes
	States    map[compute.State]int
	Audit     audit
	Calls     map[string]methodStat // the controller's Nova calls, as it timed them
	Routes    map[string]callStat   // the cloud's answers
	Logs      map[string]int        // the controller's warnings and errors, by level and message
	Took      time.Duration         // failure -> the last incident closed (or the timeout)
	TimedOut  bool
	CPU       time.Duration // process CPU (controller, client and cloud) during the run
	Others    time.Duration // the other processes' CPU during the run
	Decide    time.Duration // one Judge.Decide over every host, 20 failed
	Choose    time.Duration // one Choose of a failed host's servers over every target
	ChooseN   [2]int        // needs, targets of that Choose
	Populate  time.Duration
	Conns     int64 // TCP connections the client opened to the cloud during the run
	Requests  int   // requests the cloud answered during the run
	Status    int64 // bytes of the controller's status.json (written when it changed)
}

// incidentTimes are one incident's steps, from the failure.
type incidentTimes struct {
	Host                                      string
	State                                     compute.State
	Instances                                 int
	Opened, Fenced, Isolated, Listed          time.Duration
	FirstCall, AllCalled, LastCall, AllActive time.Duration // AllActive: the last of those moved
	NotMoved                                  int
	Closed                                    time.Duration
}

// timedNova times every call the controller makes.
type timedNova struct {
	n     compute.Nova
	mu    sync.Mutex
	stats map[string]*methodStat
}

type methodStat struct {
	N, Errors  int
	Total, Max time.Duration
}

func (t *timedNova) rec(name string, start time.Time, err error) {
	d := time.Since(start)
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.stats[name]
	if s == nil {
		s = &methodStat{}
		t.stats[name] = s
	}
	s.N++
	s.Total += d
	s.Max = max(s.Max, d)
	if err != nil {
		s.Errors++
	}
}

func (t *timedNova) ComputeServices(ctx context.Context) (out []nova.Service, err error) {
	defer t.rec("ComputeServices", time.Now(), err)
	return t.n.ComputeServices(ctx)
}

func (t *timedNova) ForceDown(ctx context.Context, id string, down bool) (err error) {
	defer t.rec("ForceDown", time.Now(), err)
	return t.n.ForceDown(ctx, id, down)
}

func (t *timedNova) Disable(ctx context.Context, id, reason string) (err error) {
	defer t.rec("Disable", time.Now(), err)
	return t.n.Disable(ctx, id, reason)
}

func (t *timedNova) Enable(ctx context.Context, id string) (err error) {
	defer t.rec("Enable", time.Now(), err)
	return t.n.Enable(ctx, id)
}

func (t *timedNova) ServersOnHost(ctx context.Context, host string) (out []nova.Server, err error) {
	defer t.rec("ServersOnHost", time.Now(), err)
	return t.n.ServersOnHost(ctx, host)
}

func (t *timedNova) Server(ctx context.Context, id string) (out nova.Server, err error) {
	defer t.rec("Server", time.Now(), err)
	return t.n.Server(ctx, id)
}

func (t *timedNova) Evacuate(ctx context.Context, id, host string) (err error) {
	defer t.rec("Evacuate", time.Now(), err)
	return t.n.Evacuate(ctx, id, host)
}

func (t *timedNova) Stop(ctx context.Context, id string) (err error) {
	defer t.rec("Stop", time.Now(), err)
	return t.n.Stop(ctx, id)
}

func (t *timedNova) ServerGroups(ctx context.Context) (out []nova.ServerGroup, err error) {
	defer t.rec("ServerGroups", time.Now(), err)
	return t.n.ServerGroups(ctx)
}

func (t *timedNova) Providers(ctx context.Context) (out []nova.Provider, err error) {
	defer t.rec("Providers", time.Now(), err)
	return t.n.Providers(ctx)
}

func (t *timedNova) snapshot() map[string]methodStat {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]methodStat{}
	for k, v := range t.stats {
		out[k] = *v
	}
	return out
}

// views is the pools' view as the controller reads it: every host alive
// on both links until fail.
type views struct {
	mu    sync.Mutex
	hosts []compute.HostView
}

func newViews(cfg *compute.Config, since time.Time) *views {
	v := &views{}
	for _, h := range cfg.Hosts {
		v.hosts = append(v.hosts, compute.HostView{Name: h.Name, Domain: cfg.DomainOf(h.Name), Health: gossip.Health{NovaCompute: true, Checked: since},
			Links: map[gossip.Link]compute.LinkView{
				gossip.Management: {Seen: true, Alive: true, Since: since},
				gossip.Storage:    {Seen: true, Alive: true, Since: since},
			}})
	}
	return v
}

// get copies the views, as the real Views does from the pools.
func (v *views) get() []compute.HostView {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]compute.HostView, len(v.hosts))
	for i, h := range v.hosts {
		h.Links = map[gossip.Link]compute.LinkView{gossip.Management: h.Links[gossip.Management], gossip.Storage: h.Links[gossip.Storage]}
		out[i] = h
	}
	return out
}

// fail makes hosts dead on both links since at.
func (v *views) fail(hosts []string, at time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for i := range v.hosts {
		if slices.Contains(hosts, v.hosts[i].Name) {
			for _, l := range gossip.Links {
				v.hosts[i].Links[l] = compute.LinkView{Seen: true, Since: at}
			}
		}
	}
}

// fencer powers hosts off after a fence agent's time.
type fencer struct{ took span }

func (f fencer) Off(ctx context.Context, h compute.Host) error {
	return sleepCtx(ctx, f.took.draw())
}

// countingHandler counts the controller's warnings and errors by message
// and passes every record on.
type countingHandler struct {
	slog.Handler
	mu     *sync.Mutex
	counts map[string]int
}

func (h countingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.Handler.Enabled(ctx, l)
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.mu.Lock()
		h.counts[r.Level.String()+" "+r.Message]++
		h.mu.Unlock()
	}
	if h.Handler.Enabled(ctx, r.Level) {
		return h.Handler.Handle(ctx, r)
	}
	return nil
}

func (h countingHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return countingHandler{h.Handler.WithAttrs(a), h.mu, h.counts}
}

func (h countingHandler) WithGroup(g string) slog.Handler {
	return countingHandler{h.Handler.WithGroup(g), h.mu, h.counts}
}

// benchConfig is haconf.yaml's compute: section for the cloud: every
// host in racks of RackSize (one detection domain each), the guards set
// so that fail hosts of one rack are acted on.
func benchConfig(p deciderParams, stateDir string) *compute.Config {
	cfg := &compute.Config{StateDir: stateDir}
	rack := max(p.Cloud.RackSize, 1)
	for i := range p.Cloud.Hosts {
		h := hostName(i)
		cfg.Hosts = append(cfg.Hosts, compute.Host{Name: h,
			Management: fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), Storage: fmt.Sprintf("10.2.%d.%d", i/250, i%250+1),
			Fence: compute.Fence{Agent: "/usr/sbin/fence_bench"}})
		if i%rack == 0 {
			cfg.Domains = append(cfg.Domains, compute.Domain{Name: fmt.Sprintf("rack%02d", i/rack+1)})
		}
		d := &cfg.Domains[len(cfg.Domains)-1]
		d.Hosts = append(d.Hosts, h)
	}
	cfg.SetDefaults()
	cfg.SetHostDefaults()
	cfg.Evacuate.Concurrency = p.Concurrency
	if p.MaxInFlight > 0 {
		cfg.Evacuate.MaxInFlight = p.MaxInFlight
	}
	// A rack of Fail hosts failing at once must be acted on: no more than
	// max_failed_share of the rack (0.5 of 40 allows 20), and
	// max_failed_hosts raised from its default (3) to Fail.
	cfg.Guards.MaxFailedShare = max(cfg.Guards.MaxFailedShare, float64(p.Fail)/float64(rack))
	cfg.Guards.MaxFailedHosts = max(cfg.Guards.MaxFailedHosts, p.Fail)
	cfg.Guards.Settle = 0 // the bench fails the rack after the controller's first rounds
	return cfg
}

func runDecider(ctx context.Context, p deciderParams) (*deciderResult, error) {
	r := &deciderResult{P: p}
	start := time.Now()
	cl, err := newCloud(p.Cloud)
	if err != nil {
		return nil, err
	}
	defer cl.close()
	r.Populate = time.Since(start)
	p.Log.Info("decider: cloud up", "hosts", p.Cloud.Hosts, "servers", p.Cloud.Servers, "groups", len(cl.groups), "url", cl.url, "took", r.Populate.Round(time.Millisecond))

	dir, err := os.MkdirTemp("", "haconf-bench-compute-scale-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfg := benchConfig(p, filepath.Join(dir, "state"))
	r.Guards = cfg.Guards
	if p.FailRack >= len(cfg.Domains) || p.Fail > len(cfg.Domains[p.FailRack].Hosts) {
		return nil, fmt.Errorf("rack %d has no %d hosts", p.FailRack+1, p.Fail)
	}
	r.Failed = cfg.Domains[p.FailRack].Hosts[:p.Fail]

	client, err := nova.New(ctx, nova.Auth{AuthURL: cl.url + "/identity/v3", Username: cloudUser, Password: cloudPassword, ProjectName: cloudProject, Region: "RegionOne"}, nova.HTTPClient(cfg.NovaCalls()))
	if err != nil {
		return nil, fmt.Errorf("log in to the simulated cloud: %w", err)
	}
	tn := &timedNova{n: client, stats: map[string]*methodStat{}}
	logs := map[string]int{}
	var logMu sync.Mutex
	base := p.Controller
	if base == nil {
		base = slog.New(slog.DiscardHandler)
	}
	vw := newViews(cfg, time.Now())
	store := &compute.FileStore{Dir: cfg.StateDir}
	ctl := &compute.Controller{
		Config: cfg, Nova: tn, Fencer: fencer{p.Fence}, Store: store, Views: vw.get,
		Logger: slog.New(countingHandler{base.Handler(), &logMu, logs}),
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ctl.Run(cctx, "bench") }()
	stop := sync.OnceFunc(func() {
		cancel()
		<-done
	})
	defer stop()
	// The controller's first rounds, with every host healthy, and its first
	// read of Nova's services.
	for {
		if _, err := os.Stat(filepath.Join(cfg.StateDir, "status.json")); err == nil {
			break
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return nil, err
	}

	byHost := map[string][]string{}
	for _, h := range r.Failed {
		byHost[h] = cl.serversOn([]string{h})
	}
	ids := cl.serversOn(r.Failed)
	cpu0, busy0, conns0, reqs0 := cpuTime(), machineBusy(), cl.conns.Load(), requests(cl.callStats())
	t0 := time.Now()
	cl.crash(r.Failed, t0)
	vw.fail(r.Failed, t0)
	p.Log.Info("decider: rack failed", "hosts", len(r.Failed), "servers", len(ids))

	deadline := t0.Add(p.Timeout)
	lastLog := t0
	for {
		ins, err := store.Incidents(ctx)
		if err != nil {
			return nil, err
		}
		closed := 0
		for _, in := range ins {
			if in.State.Closed() {
				closed++
			}
		}
		if closed >= len(r.Failed) {
			break
		}
		if time.Now().After(deadline) {
			r.TimedOut = true
			break
		}
		if time.Since(lastLog) >= 10*time.Second {
			lastLog = time.Now()
			a := cl.audit(ids)
			p.Log.Info("decider: waiting", "incidents", len(ins), "closed", closed, "moved", a.Moved, "of", a.Servers, "after", time.Since(t0).Round(time.Second))
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return nil, err
		}
	}
	r.Took = time.Since(t0)
	r.CPU, r.Conns = cpuTime()-cpu0, cl.conns.Load()-conns0
	r.Others = machineBusy() - busy0 - r.CPU
	stop()

	r.Audit = cl.audit(ids)
	r.Calls, r.Routes = tn.snapshot(), cl.callStats()
	r.Requests = requests(r.Routes) - reqs0
	logMu.Lock()
	r.Logs = logs
	logMu.Unlock()
	ins, err := store.Incidents(ctx)
	if err != nil {
		return nil, err
	}
	r.States = map[compute.State]int{}
	after := func(t time.Time) time.Duration {
		if t.IsZero() {
			return 0
		}
		return t.Sub(t0)
	}
	for _, in := range ins {
		r.States[in.State]++
		it := incidentTimes{Host: in.Host, State: in.State, Instances: len(in.Instances), Opened: after(in.Opened), Closed: after(in.Closed)}
		for _, s := range in.Steps {
			switch {
			case s.Name == "fence" && s.Error == "":
				it.Fenced = after(s.At)
			case s.Name == "isolate" && s.Error == "":
				it.Isolated = after(s.At)
			case s.Name == "list":
				it.Listed = after(s.At)
			}
		}
		a := cl.audit(byHost[in.Host])
		it.FirstCall, it.AllCalled, it.LastCall, it.AllActive = after(a.FirstCall), after(a.AllCalled), after(a.LastCall), after(a.AllActive)
		it.NotMoved = a.Servers - a.Moved
		r.Incidents = append(r.Incidents, it)
	}
	sort.Slice(r.Incidents, func(a, b int) bool { return r.Incidents[a].Host < r.Incidents[b].Host })
	if fi, err := os.Stat(filepath.Join(cfg.StateDir, "status.json")); err == nil {
		r.Status = fi.Size()
	}
	r.Decide, r.Choose, r.ChooseN = cpuPieces(cfg, cl, r.Failed)
	p.Log.Info("decider: done", "moved", r.Audit.Moved, "of", r.Audit.Servers, "took", r.Took.Round(time.Millisecond), "timed_out", r.TimedOut)
	return r, nil
}

func requests(routes map[string]callStat) int {
	n := 0
	for _, st := range routes {
		n += st.N
	}
	return n
}

// cpuPieces times the controller's pure parts at the run's size: one
// judgement of every host with failed dead, and one chooser run for the
// failed host with the most servers over every other host.
func cpuPieces(cfg *compute.Config, cl *cloud, failed []string) (decide, choose time.Duration, n [2]int) {
	now := time.Now()
	vw := newViews(cfg, now.Add(-time.Hour))
	vw.fail(failed, now.Add(-time.Second))
	j := compute.Judge{Config: cfg, Started: now.Add(-time.Hour)}
	round := compute.Round{Now: now, Hosts: vw.get(), Open: map[string]bool{}, Handled: map[string]time.Time{}, Recent: map[string]time.Time{}, Maintenance: map[string]string{}}
	decide = timeIt(func() { j.Decide(round) })

	cl.mu.Lock()
	var targets []compute.Target
	for _, pr := range cl.providers {
		if slices.Contains(failed, pr.Name) {
			continue
		}
		free := capacity.add(pr.Used, -1)
		targets = append(targets, compute.Target{Host: pr.Name, Zone: "nova",
			Capacity: compute.Resources{VCPU: capacity.VCPU, MemoryMB: capacity.MemoryMB, DiskGB: capacity.DiskGB},
			Free:     compute.Resources{VCPU: free.VCPU, MemoryMB: free.MemoryMB, DiskGB: free.DiskGB}})
	}
	var needs []compute.Need
	for _, s := range cl.servers {
		if len(s.Evacs) > 0 && s.Evacs[0].From == failed[0] {
			needs = append(needs, compute.Need{ServerID: s.ID, Name: s.Name, Size: compute.Resources{VCPU: s.Flavor.Size.VCPU, MemoryMB: s.Flavor.Size.MemoryMB, DiskGB: s.Flavor.Size.DiskGB}})
		}
	}
	cl.mu.Unlock()
	choose = timeIt(func() { compute.Choose(targets, needs) })
	return decide, choose, [2]int{len(needs), len(targets)}
}

// timeIt is f's time, the median of a few runs.
func timeIt(f func()) time.Duration {
	var ds []time.Duration
	for range 5 {
		start := time.Now()
		f()
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}
