package compute

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/haconf/haconf/compute/gossip"
	"github.com/haconf/haconf/compute/nova"
)

// Nova is what the controller asks of Nova and Placement (nova.Client).
type Nova interface {
	ComputeServices(ctx context.Context) ([]nova.Service, error)
	ForceDown(ctx context.Context, serviceID string, down bool) error
	Disable(ctx context.Context, serviceID, reason string) error
	Enable(ctx context.Context, serviceID string) error
	ServersOnHost(ctx context.Context, host string) ([]nova.Server, error)
	Server(ctx context.Context, id string) (nova.Server, error)
	Evacuate(ctx context.Context, serverID, host string) error
	Stop(ctx context.Context, serverID string) error
	ServerGroups(ctx context.Context) ([]nova.ServerGroup, error)
	Providers(ctx context.Context) ([]nova.Provider, error)
}

// PowerOff fences a host: it returns nil only once the host is confirmed
// off (Fencer).
type PowerOff interface {
	Off(ctx context.Context, h Host) error
}

// DisabledReasonPrefix starts the disabled_reason haconf gives a failed
// host's nova-compute service; a service disabled with another reason was
// disabled by an operator and is out of haconf's hands.
const DisabledReasonPrefix = "haconf:"

// Controller is the decider: it watches the pools, opens an incident for
// each failed host and carries it out (fence, isolate in Nova, evacuate),
// recording every step, so that a controller started elsewhere resumes
// it. Exactly one runs (a Pacemaker resource with the pair).
type Controller struct {
	Config *Config
	Nova   Nova
	Fencer PowerOff
	Store  Store
	// Views returns the pools' current view of every member.
	Views  func() []HostView
	Logger *slog.Logger
	// Tick is the interval of judgements (1 s when 0); Poll the interval
	// of checks on an evacuation in flight (1 s when 0).
	Tick, Poll time.Duration
	Now        func() time.Time

	judge    Judge
	mu       sync.Mutex
	working  map[string]bool // incident IDs with a worker
	status   Status
	services map[string]nova.Service // by host, refreshed every servicesEvery
	novaErr  string
	capacity capacity      // the last read of the hosts' capacity, and the incidents' claims
	inFlight chan struct{} // evacuations in flight, every incident's (evacuate.max_in_flight)
}

// servicesEvery is how often the controller reads Nova's compute services
// (operators' disables, and what haconf compute status shows).
const servicesEvery = 10 * time.Second

// Status is the controller's published state (Store.SaveStatus every
// round), read by haconf compute status and the metrics.
type Status struct {
	At         time.Time    `json:"at"`
	Started    time.Time    `json:"started"`
	Hosts      []HostStatus `json:"hosts"`
	Incidents  []*Incident  `json:"incidents"`
	Resumed    time.Time    `json:"resumed,omitzero"`
	NovaError  string       `json:"nova_error,omitempty"`
	Controller string       `json:"controller"`
}

// HostStatus is one host in Status.
type HostStatus struct {
	Name        string                   `json:"name"`
	Domain      string                   `json:"domain"`
	Condition   Condition                `json:"condition"`
	Detail      string                   `json:"detail"`
	Links       map[gossip.Link]LinkView `json:"links"`
	NovaCompute bool                     `json:"nova_compute"`
	Service     *nova.Service            `json:"service,omitempty"`
	Wait        string                   `json:"wait,omitempty"`
	Maintenance string                   `json:"maintenance,omitempty"`
}

func (c *Controller) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Controller) log() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Run judges every Tick until ctx ends; incidents in flight stop with it
// and resume in the next controller.
func (c *Controller) Run(ctx context.Context, name string) error {
	c.judge = Judge{Config: c.Config, Started: c.now()}
	c.working = map[string]bool{}
	c.status = Status{Started: c.judge.Started, Controller: name}
	tick := c.Tick
	if tick == 0 {
		tick = time.Second
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.watchServices(ctx)
	}()
	for {
		if err := c.round(ctx, &wg); err != nil && ctx.Err() == nil {
			c.log().Error("compute round failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (c *Controller) round(ctx context.Context, wg *sync.WaitGroup) error {
	now := c.now()
	incidents, err := c.Store.Incidents(ctx)
	if err != nil {
		return err
	}
	holds, err := c.Store.Holds(ctx)
	if err != nil {
		return err
	}
	r := Round{Now: now, Hosts: c.hostViews(), Open: map[string]bool{}, Handled: map[string]time.Time{}, Recent: map[string]time.Time{}, Maintenance: map[string]string{}, Resumed: holds.Resumed}
	for _, in := range incidents {
		if !in.State.Closed() {
			r.Open[in.Host] = true
		}
		if in.FailedAt.After(r.Handled[in.Host]) {
			r.Handled[in.Host] = in.FailedAt
		}
		if now.Sub(in.Opened) <= c.Config.Guards.Window && in.State != StateCancelled {
			r.Recent[in.Host] = in.FailedAt
		}
	}
	c.mu.Lock()
	for host, s := range c.services {
		if h, ok := c.Config.Host(host); ok && !h.Reserved && s.Status == "disabled" && !strings.HasPrefix(s.DisabledReason, DisabledReasonPrefix) {
			r.Maintenance[host] = "nova-compute disabled by an operator: " + s.DisabledReason
		}
	}
	c.mu.Unlock()
	for host, m := range holds.Maintenance {
		if now.Before(m.Until) {
			r.Maintenance[host] = fmt.Sprintf("until %s %s", m.Until.Format(time.RFC3339), m.Reason)
		}
	}
	verdicts := c.judge.Decide(r)
	byHost := map[string]Verdict{}
	for _, v := range verdicts {
		byHost[v.Host] = v
		switch {
		case v.Act || v.Hold != "":
			in := &Incident{
				ID: fmt.Sprintf("%s-%s", v.Host, now.UTC().Format("20060102T150405")), Host: v.Host, Domain: v.Domain,
				State: StateFencing, FailedAt: v.FailedAt, Opened: now, Hold: v.Hold,
			}
			if v.Hold != "" {
				in.State = StateHeld
				c.log().Error("compute host failed; a guard holds every action", "host", v.Host, "incident", in.ID, "hold", v.Hold)
			} else {
				c.log().Warn("compute host failed", "host", v.Host, "incident", in.ID, "detail", v.Detail)
			}
			in.Record(now, "detected", now.Sub(v.FailedAt), nil, v.Detail)
			if err := c.Store.Save(ctx, in); err != nil {
				return err
			}
			if in.State == StateFencing {
				// Read where its servers can go while it is fenced.
				c.prefetchCapacity(ctx, wg)
			}
			incidents = append(incidents, in)
		case v.Wait != "" && v.Condition == Failed:
			c.log().Info("compute host failed; waiting", "host", v.Host, "wait", v.Wait)
		}
	}
	for _, in := range incidents {
		v := byHost[in.Host]
		switch {
		case in.State == StateHeld && holds.Resumed.After(in.Opened):
			in.State, in.Hold = StateFencing, ""
			in.Record(now, "resumed", 0, nil, "haconf compute resume")
			if err := c.Store.Save(ctx, in); err != nil {
				return err
			}
			c.start(ctx, wg, in)
		case in.State == StateHeld && v.Condition == Healthy:
			// Back on both networks before it was fenced: its instances run.
			in.State, in.Closed = StateCancelled, now
			in.Record(now, "cancelled", 0, nil, "the host is alive on both networks again; nothing was fenced or moved")
			if err := c.Store.Save(ctx, in); err != nil {
				return err
			}
		case in.State == StateHeld || in.State.Closed():
		default:
			c.start(ctx, wg, in)
		}
		if in.State.Closed() && in.State != StateCancelled && in.Recovered.IsZero() && c.Config.Recovery == RecoveryAuto &&
			v.Condition == Healthy && v.Host != "" {
			c.startRecovery(ctx, wg, in)
		}
	}
	c.publish(ctx, now, verdicts, r, holds)
	return nil
}

// watchServices keeps c.services fresh until ctx ends.
func (c *Controller) watchServices(ctx context.Context) {
	for {
		cctx, cancel := context.WithTimeout(ctx, servicesEvery)
		svcs, err := c.Nova.ComputeServices(cctx)
		cancel()
		c.mu.Lock()
		if err != nil {
			c.novaErr = err.Error()
		} else {
			c.novaErr = ""
			c.services = map[string]nova.Service{}
			for _, s := range svcs {
				c.services[s.Host] = s
			}
		}
		c.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			c.log().Warn("cannot read nova's compute services", "err", err)
		}
		if sleep(ctx, servicesEvery) != nil {
			return
		}
	}
}

// condition is the host's condition in the pools now.
func (c *Controller) condition(host string) Condition {
	for _, v := range c.hostViews() {
		if v.Name == host {
			cond, _, _ := Classify(v)
			return cond
		}
	}
	return Unknown
}

func (c *Controller) hostViews() []HostView {
	seen := map[string]HostView{}
	if c.Views != nil {
		for _, v := range c.Views() {
			seen[v.Name] = v
		}
	}
	var out []HostView
	for _, h := range c.Config.Hosts {
		v, ok := seen[h.Name]
		if !ok {
			v = HostView{Name: h.Name, Links: map[gossip.Link]LinkView{}}
		}
		v.Domain = c.Config.DomainOf(h.Name)
		out = append(out, v)
	}
	return out
}

func (c *Controller) publish(ctx context.Context, now time.Time, verdicts []Verdict, r Round, holds Holds) {
	views := map[string]HostView{}
	for _, h := range r.Hosts {
		views[h.Name] = h
	}
	st := Status{At: now, Started: c.judge.Started, Resumed: holds.Resumed, Controller: c.status.Controller}
	for _, v := range verdicts {
		st.Hosts = append(st.Hosts, HostStatus{
			Name: v.Host, Domain: v.Domain, Condition: v.Condition, Detail: v.Detail, Links: views[v.Host].Links,
			NovaCompute: views[v.Host].Health.NovaCompute, Wait: v.Wait, Maintenance: r.Maintenance[v.Host],
		})
	}
	if incs, err := c.Store.Incidents(ctx); err == nil {
		st.Incidents = incs
	}
	c.mu.Lock()
	for i := range st.Hosts {
		if s, ok := c.services[st.Hosts[i].Name]; ok {
			st.Hosts[i].Service = &s
		}
	}
	st.NovaError = c.novaErr
	c.status = st
	c.mu.Unlock()
	if err := c.Store.SaveStatus(ctx, st); err != nil && ctx.Err() == nil {
		c.log().Warn("cannot publish the compute status", "err", err)
	}
}

// start runs the incident's worker unless one runs.
func (c *Controller) start(ctx context.Context, wg *sync.WaitGroup, in *Incident) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.working[in.ID] {
		return
	}
	c.working[in.ID] = true
	in = in.clone() // the worker's own: the round goes on reading its copy
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			c.mu.Lock()
			delete(c.working, in.ID)
			c.mu.Unlock()
		}()
		if err := c.work(ctx, in); err != nil && ctx.Err() == nil {
			c.log().Error("compute incident stopped", "incident", in.ID, "err", err)
		}
	}()
}

// save records the incident. A step that happened is recorded even while
// the controller stops (the store's timeout bounds it): the next
// controller must not do it again.
func (c *Controller) save(ctx context.Context, in *Incident) {
	if err := c.Store.Save(context.WithoutCancel(ctx), in); err != nil {
		c.log().Error("cannot save the incident", "incident", in.ID, "err", err)
	}
}

// backoff is the wait before retry n (1-based): 5 s doubling to 5 min.
func backoff(n int) time.Duration {
	d := 5 * time.Second
	for i := 1; i < n && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// work carries the incident from where it is to its end.
func (c *Controller) work(ctx context.Context, in *Incident) error {
	h, ok := c.Config.Host(in.Host)
	if !ok {
		return fmt.Errorf("host %s is no longer in the configuration", in.Host)
	}
	for !in.State.Closed() {
		switch in.State {
		case StateFencing, StateFenceFailed:
			if wait := in.NextFence.Sub(c.now()); wait > 0 {
				if err := sleep(ctx, wait); err != nil {
					return err
				}
			}
			if in.State == StateFenceFailed && c.condition(in.Host) == Healthy {
				// Back on both networks before it could be fenced: its
				// instances run where they are.
				in.State, in.Closed = StateCancelled, c.now()
				in.Record(in.Closed, "cancelled", 0, nil, "the host is alive on both networks again; it was never fenced and nothing moved")
				c.save(ctx, in)
				continue
			}
			start := c.now()
			err := c.Fencer.Off(ctx, h)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			in.FenceAttempts++
			if err != nil {
				in.State, in.NextFence = StateFenceFailed, c.now().Add(backoff(in.FenceAttempts))
				in.Record(c.now(), "fence", c.now().Sub(start), err, fmt.Sprintf("attempt %d failed; nothing is evacuated; next attempt at %s", in.FenceAttempts, in.NextFence.Format(time.TimeOnly)))
				c.log().Error("fence failed; nothing is evacuated", "incident", in.ID, "host", in.Host, "attempt", in.FenceAttempts, "err", err)
				c.save(ctx, in)
				continue
			}
			in.State, in.NextFence = StateFenced, time.Time{}
			in.Record(c.now(), "fence", c.now().Sub(start), nil, "confirmed off by "+filepath.Base(h.Fence.Agent))
			c.log().Info("host fenced", "incident", in.ID, "host", in.Host, "took", c.now().Sub(start))
			c.save(ctx, in)
		case StateFenced:
			if err := c.isolate(ctx, in); err != nil {
				return err
			}
		case StateIsolated:
			if err := c.listInstances(ctx, in); err != nil {
				return err
			}
		case StateEvacuating:
			if err := c.evacuateAll(ctx, in); err != nil {
				return err
			}
		default:
			return fmt.Errorf("incident %s in unexpected state %s", in.ID, in.State)
		}
	}
	return nil
}

// retry calls f until it succeeds, ctx ends, or it fails with an error
// that is not worth retrying; each failure is logged.
func (c *Controller) retry(ctx context.Context, in *Incident, what string, f func() error) error {
	for n := 1; ; n++ {
		err := f()
		if err == nil {
			return nil
		}
		var ne *nova.Error
		if errors.As(err, &ne) && !ne.Retryable() {
			return err
		}
		c.log().Warn("nova call failed; retrying", "incident", in.ID, "call", what, "attempt", n, "err", err)
		if err := sleep(ctx, min(backoff(n), 30*time.Second)); err != nil {
			return err
		}
	}
}

// isolate forces the host's nova-compute down (Nova then accepts the
// evacuations at once instead of after service_down_time) and disables
// it, naming the incident.
func (c *Controller) isolate(ctx context.Context, in *Incident) error {
	start := c.now()
	var svc nova.Service
	err := c.retry(ctx, in, "list services", func() error {
		svcs, err := c.Nova.ComputeServices(ctx)
		if err != nil {
			return err
		}
		for _, s := range svcs {
			if s.Host == in.Host {
				svc = s
				return nil
			}
		}
		return &nova.Error{Op: "find the nova-compute service", Status: 404, Message: "no nova-compute service on host " + in.Host}
	})
	if err != nil {
		in.Record(c.now(), "isolate", 0, err, "")
		c.save(ctx, in)
		return err
	}
	in.ServiceID = svc.ID
	if err := c.retry(ctx, in, "force down", func() error { return c.Nova.ForceDown(ctx, svc.ID, true) }); err != nil {
		in.Record(c.now(), "force-down", 0, err, "")
		c.save(ctx, in)
		return err
	}
	reason := fmt.Sprintf("%s incident %s: host failed at %s, fenced", DisabledReasonPrefix, in.ID, in.FailedAt.UTC().Format(time.RFC3339))
	if svc.Status == "disabled" && !strings.HasPrefix(svc.DisabledReason, DisabledReasonPrefix) {
		// The operator's own disable stays as it is.
		reason = ""
	} else if err := c.retry(ctx, in, "disable", func() error { return c.Nova.Disable(ctx, svc.ID, reason) }); err != nil {
		in.Record(c.now(), "disable", 0, err, "")
		c.save(ctx, in)
		return err
	}
	in.State = StateIsolated
	in.Record(c.now(), "isolate", c.now().Sub(start), nil, "nova-compute forced down and disabled")
	c.save(ctx, in)
	return nil
}

// Evacuable reports whether the policy moves s.
func (c *Config) Evacuable(s nova.Server) bool {
	if c.Evacuate.Policy == PolicyAll {
		return true
	}
	tag := c.Evacuate.Tag
	return slices.Contains(s.Tags, tag) || strings.EqualFold(s.Metadata[tag], "true") || strings.EqualFold(s.Flavor.ExtraSpecs[tag], "true")
}

func (c *Controller) listInstances(ctx context.Context, in *Incident) error {
	var servers []nova.Server
	if err := c.retry(ctx, in, "list servers", func() (err error) {
		servers, err = c.Nova.ServersOnHost(ctx, in.Host)
		return err
	}); err != nil {
		return err
	}
	in.Instances = nil
	for _, s := range servers {
		i := Instance{ID: s.ID, Name: s.Name, WasStatus: s.Status, State: EvacPending}
		if !c.Config.Evacuable(s) {
			i.State, i.Error = EvacSkipped, "not evacuable by evacuate.policy "+c.Config.Evacuate.Policy
		}
		in.Instances = append(in.Instances, i)
	}
	in.State = StateEvacuating
	in.Record(c.now(), "list", 0, nil, fmt.Sprintf("%d instances on %s", len(servers), in.Host))
	c.save(ctx, in)
	return nil
}
