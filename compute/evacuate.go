package compute

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/haconf/haconf/compute/nova"
)

// evacuateAll moves every pending instance of the incident, at most
// Evacuate.Concurrency at a time, each to a target the chooser picked,
// and waits until each runs elsewhere. An instance already evacuating
// (the previous controller's) is only watched: never evacuated twice.
func (c *Controller) evacuateAll(ctx context.Context, in *Incident) error {
	var mu sync.Mutex // guards in
	var lastRead time.Time
	for round := 1; ; round++ {
		var todo []int
		for i, inst := range in.Instances {
			if inst.State == EvacPending || inst.State == EvacRunning {
				todo = append(todo, i)
			}
		}
		if len(todo) == 0 {
			break
		}
		// A retry plans from a read newer than the one that chose the
		// targets refused.
		plan, readAt, err := c.plan(ctx, in, todo, lastRead.Add(time.Nanosecond))
		if err != nil {
			return err
		}
		lastRead = readAt
		sem := make(chan struct{}, c.Config.Evacuate.Concurrency)
		var wg sync.WaitGroup
		for _, i := range todo {
			mu.Lock()
			inst := in.Instances[i]
			if inst.State != EvacPending && inst.State != EvacRunning {
				mu.Unlock() // settled by plan (deleted)
				continue
			}
			if inst.State == EvacPending {
				if plan[inst.ID] == "" {
					in.Instances[i].State, in.Instances[i].Error = EvacNoCapacity, "no healthy host can take it (haconf compute plan "+in.Host+" shows why)"
					mu.Unlock()
					continue
				}
				in.Instances[i].Target = plan[inst.ID]
			}
			mu.Unlock()
			wg.Add(1)
			sem <- struct{}{}
			go func(i int) {
				defer func() { <-sem; wg.Done() }()
				release, err := c.acquire(ctx)
				if err != nil {
					return
				}
				defer release()
				c.evacuateOne(ctx, in, i, &mu)
			}(i)
		}
		wg.Wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		mu.Lock()
		c.save(ctx, in)
		mu.Unlock()
	}
	in.State = StateDone
	failed := 0
	for _, inst := range in.Instances {
		if inst.State == EvacFailed || inst.State == EvacNoCapacity {
			failed++
		}
	}
	if failed > 0 {
		in.State = StatePartial
	}
	in.Closed = c.now()
	in.Record(in.Closed, "evacuated", in.Closed.Sub(in.FailedAt), nil, in.Summary())
	c.log().Info("compute incident ended", "incident", in.ID, "state", in.State, "summary", in.Summary(), "since_failure", in.Closed.Sub(in.FailedAt))
	c.save(ctx, in)
	return nil
}

// evacuateOne calls evacuate (unless a previous call is in flight) and
// waits for the instance to run on another host. A refusal or a failed
// rebuild sends it back to pending, with the target marked tried, until
// its attempts are spent.
func (c *Controller) evacuateOne(ctx context.Context, in *Incident, i int, mu *sync.Mutex) {
	mu.Lock()
	inst := in.Instances[i]
	mu.Unlock()
	update := func(f func(*Instance)) {
		mu.Lock()
		defer mu.Unlock()
		f(&in.Instances[i])
		in.Updated = c.now()
		c.save(ctx, in)
	}
	if inst.State == EvacRunning {
		// A controller before this one issued the evacuation: if the
		// server is still on the failed host and idle, Nova dropped it.
		s, err := c.Nova.Server(ctx, inst.ID)
		if err == nil && s.Host == in.Host && s.TaskState == "" && s.Status != "ERROR" && c.now().Sub(inst.Started) > c.Config.Evacuate.Timeout {
			update(func(x *Instance) {
				x.State, x.Error = EvacPending, "the evacuation call left no trace; issuing it again"
			})
			return
		}
	} else {
		start := c.now()
		err := c.Nova.Evacuate(ctx, inst.ID, inst.Target)
		if errors.Is(err, nova.ErrServerBusy) {
			// A task runs on it already (an evacuation this incident's
			// previous controller started, whose answer was lost): watch
			// it, never start a second one (Nova would accept it). Its
			// target is that controller's choice, not this plan's.
			c.unclaim(inst.ID)
			update(func(x *Instance) { x.State, x.Started = EvacRunning, start })
			err = nil
		} else if err == nil {
			update(func(x *Instance) { x.State, x.Started, x.Attempts, x.Error = EvacRunning, start, x.Attempts+1, "" })
		}
		if err != nil {
			c.unclaim(inst.ID)
			var ne *nova.Error
			retryable := errors.As(err, &ne) && ne.Retryable()
			update(func(x *Instance) {
				x.Attempts++
				x.Error = err.Error()
				if !retryable {
					x.Tried = append(x.Tried, x.Target)
				}
				x.State = EvacPending
				if x.Attempts >= c.Config.Evacuate.Attempts {
					x.State = EvacFailed
				}
			})
			c.log().Warn("evacuate refused", "incident", in.ID, "server", inst.ID, "target", inst.Target, "err", err)
			if retryable {
				_ = sleep(ctx, 2*time.Second)
			}
			return
		}
		mu.Lock()
		inst = in.Instances[i]
		mu.Unlock()
	}
	poll := c.Poll
	if poll == 0 {
		poll = time.Second
	}
	deadline := inst.Started.Add(c.Config.Evacuate.Timeout)
	for {
		if sleep(ctx, poll) != nil {
			return
		}
		s, err := c.Nova.Server(ctx, inst.ID)
		if err == nil && s.Host != "" && s.Host != in.Host {
			// On its target: Placement holds its allocation there.
			c.landed(inst.ID)
		}
		switch {
		case nova.IsNotFound(err):
			c.unclaim(inst.ID)
			update(func(x *Instance) {
				x.State, x.Error, x.Finished = EvacSkipped, "deleted during the evacuation", c.now()
			})
			return
		case err != nil:
			c.log().Warn("cannot read the server being evacuated", "server", inst.ID, "err", err)
		case s.Host != in.Host && s.TaskState == "" && (s.Status == "ACTIVE" || s.Status == "SHUTOFF"):
			var note, problem string
			if inst.WasStatus == "SHUTOFF" && s.Status == "ACTIVE" {
				// A stopped instance stays stopped: Nova keeps the state
				// at the microversion haconf asks for, but a server that
				// comes up running anyway is stopped again, not left on.
				if err := c.Nova.Stop(ctx, inst.ID); err != nil {
					problem = "was SHUTOFF, came up ACTIVE on " + s.Host + ", and stopping it failed: " + err.Error()
					c.log().Warn("cannot stop an evacuated instance that was stopped", "incident", in.ID, "server", inst.ID, "err", err)
				} else {
					s.Status = "SHUTOFF"
					note = "was SHUTOFF, came up ACTIVE: stopped again"
				}
			}
			update(func(x *Instance) {
				x.State, x.Finished, x.FinalHost, x.FinalState, x.Error, x.Note = EvacDone, c.now(), s.Host, s.Status, problem, note
			})
			c.log().Info("instance evacuated", "incident", in.ID, "server", inst.ID, "name", inst.Name, "host", s.Host, "took", c.now().Sub(inst.Started))
			return
		case s.Status == "ERROR" && s.TaskState == "":
			c.unclaim(inst.ID)
			update(func(x *Instance) {
				x.Error = fmt.Sprintf("ERROR after evacuating to %s", x.Target)
				x.Tried = append(x.Tried, x.Target)
				x.State = EvacPending
				if x.Attempts >= c.Config.Evacuate.Attempts {
					x.State = EvacFailed
				}
			})
			return
		}
		if c.now().After(deadline) {
			c.unclaim(inst.ID)
			update(func(x *Instance) {
				x.State, x.Error = EvacFailed, fmt.Sprintf("not running elsewhere %s after the evacuate call (evacuate.timeout)", c.Config.Evacuate.Timeout)
			})
			return
		}
	}
}

// plan chooses targets for the pending instances among the hosts that
// are healthy on both networks and whose nova-compute is up, enabled (or
// a reserved spare, which it enables), and not in maintenance, from a
// read of their capacity started at or after notBefore (shared with the
// other incidents planning then) less what every incident's claims hold
// there. The targets it chooses are claimed at once, so that the plans
// after it, of this incident or another, see them taken. It returns when
// the read it planned from started.
func (c *Controller) plan(ctx context.Context, in *Incident, todo []int, notBefore time.Time) (map[string]string, time.Time, error) {
	if fresh := c.now().Add(-capacityFresh); notBefore.Before(fresh) {
		notBefore = fresh
	}
	read, err := c.readCapacity(ctx, notBefore)
	if err != nil {
		return nil, time.Time{}, err
	}
	targets := targetsFrom(c.Config, read.svcs, read.provs, in.Host, c.usable(ctx))
	var servers []nova.Server
	for _, i := range todo {
		inst := in.Instances[i]
		if inst.State != EvacPending {
			continue
		}
		s, err := c.Nova.Server(ctx, inst.ID)
		if nova.IsNotFound(err) {
			// Deleted since the host failed: nothing to move, and it
			// must not hold the others back.
			in.Instances[i].State, in.Instances[i].Error, in.Instances[i].Finished = EvacSkipped, "deleted before its evacuation", c.now()
			continue
		}
		if err != nil {
			return nil, time.Time{}, err
		}
		servers = append(servers, s)
	}
	groups, err := c.Nova.ServerGroups(ctx)
	if err != nil {
		c.log().Warn("cannot read server groups; placing without anti-affinity", "err", err)
	}
	hostOf := partnerHosts(ctx, c.Nova, servers, groups, in.Host)
	out := map[string]string{}
	c.mu.Lock()
	// A partner another incident is moving is where it was sent.
	for _, g := range groups {
		for _, m := range g.Members {
			if h, ok := c.capacity.claimedHost(m); ok {
				hostOf[m] = h
			}
		}
	}
	needs := Needs(servers, groups, hostOf)
	size := map[string]Resources{}
	for k := range needs {
		size[needs[k].ServerID] = needs[k].Size
		for _, inst := range in.Instances {
			if inst.ID == needs[k].ServerID {
				needs[k].Avoid = inst.Tried
			}
		}
	}
	c.capacity.claimed(targets, read.started)
	placements := Choose(targets, needs)
	for _, p := range placements {
		out[p.ServerID] = p.Host
		if p.Host != "" {
			c.capacity.claim(p.ServerID, p.Host, size[p.ServerID], c.now())
		}
	}
	c.mu.Unlock()
	enabled := map[string]bool{}
	for _, p := range placements {
		for _, t := range targets {
			if t.Host == p.Host && t.Reserved && !enabled[t.Host] {
				enabled[t.Host] = true
				if err := c.enableReserved(ctx, t.Host); err != nil {
					return nil, time.Time{}, err
				}
			}
		}
	}
	return out, read.started, nil
}

func (c *Controller) enableReserved(ctx context.Context, host string) error {
	svcs, err := c.Nova.ComputeServices(ctx)
	if err != nil {
		return err
	}
	for _, s := range svcs {
		if s.Host == host && s.Status == "disabled" {
			c.log().Info("enabling a reserved host", "host", host)
			return c.Nova.Enable(ctx, s.ID)
		}
	}
	return nil
}

// usable says whether a host may receive instances as the pools and the
// holds say now: healthy on both networks, not in maintenance.
func (c *Controller) usable(ctx context.Context) func(host string) bool {
	healthy := map[string]bool{}
	for _, v := range c.hostViews() {
		if cond, _, _ := Classify(v); cond == Healthy {
			healthy[v.Name] = true
		}
	}
	holds, _ := c.Store.Holds(ctx)
	now := c.now()
	return func(host string) bool {
		m, inMaint := holds.Maintenance[host]
		return healthy[host] && !(inMaint && now.Before(m.Until))
	}
}

// targets lists the hosts usable, per Nova and Placement, among those
// ok says are healthy and not in maintenance: nova-compute up, not forced
// down, enabled or a reserved spare.
func targets(ctx context.Context, cfg *Config, n Nova, exclude string, ok func(host string) bool) ([]Target, error) {
	svcs, err := n.ComputeServices(ctx)
	if err != nil {
		return nil, err
	}
	provs, err := n.Providers(ctx)
	if err != nil {
		return nil, err
	}
	return targetsFrom(cfg, svcs, provs, exclude, ok), nil
}

// targetsFrom is targets from a read of the services and providers.
func targetsFrom(cfg *Config, svcs []nova.Service, provs []nova.Provider, exclude string, ok func(host string) bool) []Target {
	byName := make(map[string]nova.Provider, len(provs))
	for _, p := range provs {
		byName[p.Name] = p
	}
	var out []Target
	for _, s := range svcs {
		h, known := cfg.Host(s.Host)
		switch {
		case s.Host == exclude || !known || !ok(s.Host) || s.State != "up" || s.ForcedDown:
			continue
		case s.Status == "disabled" && !h.Reserved:
			continue
		}
		p, found := byName[s.Host]
		for i := 0; !found && i < len(provs); i++ {
			p, found = provs[i], strings.HasPrefix(provs[i].Name, s.Host+".")
		}
		if found {
			t := TargetOf(s.Host, p)
			t.Zone, t.Reserved = s.Zone, h.Reserved
			out = append(out, t)
		}
	}
	return out
}

// Plan is what would happen to a host's instances if it failed now.
type Plan struct {
	Host       string      `json:"host"`
	Instances  int         `json:"instances"`
	Placements []Placement `json:"placements"`
	Targets    []Target    `json:"targets"`
	Shortfall  int         `json:"shortfall"`
}

// PlanFor runs the chooser for host's evacuable instances among the hosts
// st (the controller's last status) shows healthy and not in maintenance.
func PlanFor(ctx context.Context, cfg *Config, n Nova, st *Status, host string) (Plan, error) {
	p := Plan{Host: host}
	healthy := map[string]bool{}
	for _, h := range st.Hosts {
		healthy[h.Name] = h.Condition == Healthy && h.Maintenance == ""
	}
	ts, err := targets(ctx, cfg, n, host, func(h string) bool { return healthy[h] })
	if err != nil {
		return p, err
	}
	p.Targets = ts
	servers, err := n.ServersOnHost(ctx, host)
	if err != nil {
		return p, err
	}
	p.Instances = len(servers)
	var evacuable []nova.Server
	for _, s := range servers {
		if cfg.Evacuable(s) {
			evacuable = append(evacuable, s)
		}
	}
	groups, err := n.ServerGroups(ctx)
	if err != nil {
		return p, err
	}
	p.Placements = Choose(ts, Needs(evacuable, groups, partnerHosts(ctx, n, evacuable, groups, host)))
	for _, pl := range p.Placements {
		if pl.Host == "" {
			p.Shortfall++
		}
	}
	return p, nil
}

// partnerHosts reads where the partners of servers run: the other members
// of their anti-affinity groups, as Needs wants them, leaving out those on
// the failed host. Only those are read (one Server call each), not the
// members of the cloud's other groups: with 5% of 20,000 servers in
// anti-affinity groups, reading every member costs each plan about 1,000
// calls, one after the other (bench/compute-scale).
func partnerHosts(ctx context.Context, n Nova, servers []nova.Server, groups []nova.ServerGroup, failed string) map[string]string {
	placing := map[string]string{} // the servers' own hosts, read already
	for _, s := range servers {
		placing[s.ID] = s.Host
	}
	hostOf := map[string]string{}
	for _, g := range groups {
		if !antiAffinity(g) || !slices.ContainsFunc(g.Members, func(m string) bool { _, ok := placing[m]; return ok }) {
			continue
		}
		for _, m := range g.Members {
			if _, ok := hostOf[m]; ok {
				continue
			}
			h, ok := placing[m]
			if !ok {
				s, err := n.Server(ctx, m)
				if err != nil {
					continue
				}
				h = s.Host
			}
			if h != failed {
				hostOf[m] = h
			}
		}
	}
	return hostOf
}

// startRecovery gives a fenced host that came back healthy to Nova again:
// forced_down lifted (Nova refuses until the host's nova-compute restarted
// and cleaned its evacuated instances; retried), service enabled.
func (c *Controller) startRecovery(ctx context.Context, wg *sync.WaitGroup, in *Incident) {
	key := "recover/" + in.ID
	c.mu.Lock()
	if c.working[key] {
		c.mu.Unlock()
		return
	}
	c.working[key] = true
	c.mu.Unlock()
	in = in.clone()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			c.mu.Lock()
			delete(c.working, key)
			c.mu.Unlock()
		}()
		if in.ServiceID == "" {
			return
		}
		if err := c.Nova.ForceDown(ctx, in.ServiceID, false); err != nil {
			c.log().Info("nova refuses to lift forced_down yet; retrying", "host", in.Host, "err", err)
			_ = sleep(ctx, 10*time.Second)
			return
		}
		if err := c.Nova.Enable(ctx, in.ServiceID); err != nil {
			c.log().Warn("cannot enable the recovered host", "host", in.Host, "err", err)
			return
		}
		in.Recovered = c.now()
		in.Record(in.Recovered, "recovered", 0, nil, "back on both networks: forced_down lifted, nova-compute enabled")
		c.log().Info("compute host recovered", "host", in.Host, "incident", in.ID)
		c.save(ctx, in)
	}()
}
