package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/haconf/haconf/compute"
	"github.com/haconf/haconf/compute/gossip"
)

// gossipParams size the gossip part.
type gossipParams struct {
	Agents      int
	DomainSize  int           // agents per detection domain
	Profile     string        // memberlist profile: lan or local
	Loss        float64       // share of packets lost, every packet of every pool
	Steady      time.Duration // under loss, after the pools converged, before the kills
	Kill        int           // agents crashed (Shutdown without Leave), spread over the domains
	Cut         int           // agents that lose one link (half storage, half management)
	Watch       time.Duration // how long to wait for the kills and cuts to be detected
	Hold        time.Duration // then how long the cut agents must stay link-down
	HealthEvery time.Duration // each agent's SetHealth, as haconf compute agent does (5 s); 0: never
	StartEvery  time.Duration // between two agents' Join (the controllers start first, at once)
	Port        int           // domain d's pools listen on Port+d
	Converge    time.Duration // the longest wait for the pools to converge
	Log         *slog.Logger  // progress
}

// gossipResult is what the gossip part measured.
type gossipResult struct {
	P                gossipParams
	Domains          int
	Joined           time.Duration // Join of every member returned
	ControllersSee   time.Duration // every controller sees its domain's agents alive on both links
	Converged        time.Duration // every member sees every member of its domain on both links
	ConvergedOK      bool
	SteadyFor        time.Duration                   // from convergence to the kills
	FalseDead        map[gossip.Link]map[string]bool // members a controller saw dead while they ran
	FalseEvents      map[gossip.Link]int             // how many times
	JoinFalseDead    int                             // the same before convergence (loss while joining)
	Detect           []time.Duration                 // per killed agent: dead on both links in its controller's view
	DetectLink       map[gossip.Link][]time.Duration // per link
	Undetected       int
	Cuts             []cutResult
	CPU              time.Duration // process CPU (user+system) in the steady phase
	Others           time.Duration // the other processes' CPU in the steady phase
	Late50, Late99   time.Duration // scheduling delay in the steady phase (see lateness)
	LateMax          time.Duration
	JoinLate99       time.Duration // the same while the pools formed
	JoinLateMax      time.Duration
	KillLate99       time.Duration // the same from the kills to the end
	KillLateMax      time.Duration
	RSSBase, RSS     int64 // bytes: before the members started, and in the steady phase
	HeapInuse        uint64
	Goroutines       int
	Sent, Dropped    uint64 // packets through the lossy transports in the steady phase
	EventsDropped    uint64 // controller events lost by a slow reader (0: the event log is complete)
	HealthUpdates    uint64
	HealthErrors     uint64
	HealthErrorText  map[string]int
	Members          int // agents and controllers
	DomainsConverged int
}

type cutResult struct {
	Name      string
	Link      gossip.Link
	Detected  time.Duration // cut -> dead on that link; 0 if never
	OtherDied bool          // the other link was seen dead too (wrong)
	Condition compute.Condition
}

// lossyNet drops each packet any pool sends with the same probability.
type lossyNet struct {
	loss          atomic.Uint64 // probability x 1e9
	sent, dropped atomic.Uint64
}

func (n *lossyNet) setLoss(p float64) { n.loss.Store(uint64(p * 1e9)) }

func (n *lossyNet) drop() bool {
	n.sent.Add(1)
	if l := n.loss.Load(); l > 0 && rand.Uint64N(1e9) < l {
		n.dropped.Add(1)
		return true
	}
	return false
}

// lossyTransport is a pool's transport, losing what lossyNet says.
// Packets (UDP: probes, acks, gossip) are lost; streams (TCP: push/pull,
// the fallback ping) are not: a lost TCP segment is retransmitted.
type lossyTransport struct {
	memberlist.NodeAwareTransport
	net *lossyNet
}

func (t *lossyTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.net.drop() {
		return time.Now(), nil
	}
	return t.NodeAwareTransport.WriteTo(b, addr)
}

func (t *lossyTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.net.drop() {
		return time.Now(), nil
	}
	return t.NodeAwareTransport.WriteToAddress(b, a)
}

// member is one agent or controller of the run.
type member struct {
	cfg    gossip.Config
	pools  *gossip.Pools
	domain int
	killed time.Time // zero unless crashed
	cut    gossip.Link
	cutAt  time.Time
}

func agentAddr(link byte, i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, link, byte(i / 250), byte(i%250 + 1)})
}

func controllerAddr(link byte) netip.Addr { return netip.AddrFrom4([4]byte{127, link, 255, 1}) }

func runGossip(ctx context.Context, p gossipParams) (*gossipResult, error) {
	if p.Agents > 250*250 {
		return nil, fmt.Errorf("at most %d agents", 250*250)
	}
	r := &gossipResult{P: p, FalseDead: map[gossip.Link]map[string]bool{}, FalseEvents: map[gossip.Link]int{}, DetectLink: map[gossip.Link][]time.Duration{}}
	for _, l := range gossip.Links {
		r.FalseDead[l] = map[string]bool{}
	}
	r.Domains = (p.Agents + p.DomainSize - 1) / p.DomainSize
	r.Members = p.Agents + r.Domains
	r.RSSBase = rss()
	key := gossip.DeriveKey([]byte("haconf bench compute-scale"))
	net := &lossyNet{}
	net.setLoss(p.Loss)
	wrap := func(_ gossip.Link, t memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
		return &lossyTransport{NodeAwareTransport: t, net: net}
	}

	// Every member's configuration: the controller of domain d on
	// 127.{1,2}.255.1, agent i on 127.1.x.y and 127.2.x.y, all of domain d
	// on port Port+d; seeds as haconf.yaml gives them (the controller, then
	// every other host of the domain).
	var ctls, agents []*member
	for d := range r.Domains {
		port := uint16(p.Port + d)
		domain := fmt.Sprintf("rack%02d", d+1)
		ctl := &member{domain: d, cfg: gossip.Config{
			Name: "ctl", Domain: domain, Role: gossip.RoleController, Key: key, Profile: p.Profile, WrapTransport: wrap,
			Bind: map[gossip.Link]netip.AddrPort{
				gossip.Management: netip.AddrPortFrom(controllerAddr(1), port),
				gossip.Storage:    netip.AddrPortFrom(controllerAddr(2), port),
			},
			Seeds: map[gossip.Link][]string{},
		}}
		ctls = append(ctls, ctl)
		for i := d * p.DomainSize; i < min((d+1)*p.DomainSize, p.Agents); i++ {
			a := &member{domain: d, cfg: gossip.Config{
				Name: hostName(i), Domain: domain, Role: gossip.RoleAgent, Key: key, Profile: p.Profile, WrapTransport: wrap,
				Bind: map[gossip.Link]netip.AddrPort{
					gossip.Management: netip.AddrPortFrom(agentAddr(1, i), port),
					gossip.Storage:    netip.AddrPortFrom(agentAddr(2, i), port),
				},
			}}
			agents = append(agents, a)
		}
	}
	for _, a := range agents {
		a.cfg.Seeds = map[gossip.Link][]string{}
		for _, l := range gossip.Links {
			a.cfg.Seeds[l] = append(a.cfg.Seeds[l], ctls[a.domain].cfg.Bind[l].String())
		}
		for _, o := range agents {
			if o.domain == a.domain && o != a {
				for _, l := range gossip.Links {
					a.cfg.Seeds[l] = append(a.cfg.Seeds[l], o.cfg.Bind[l].String())
				}
			}
		}
		for _, l := range gossip.Links {
			ctls[a.domain].cfg.Seeds[l] = append(ctls[a.domain].cfg.Seeds[l], a.cfg.Bind[l].String())
		}
	}

	// Controllers' events: every dead (or left) event, with when.
	var evMu sync.Mutex
	var dead []gossip.Event // controllers' events of a member dead (or left) on a link
	var readers sync.WaitGroup
	all := append(slices.Clone(ctls), agents...)
	defer func() {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for _, m := range all {
			if m.pools != nil {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer func() { <-sem; wg.Done() }()
					m.pools.Shutdown()
				}()
			}
		}
		wg.Wait()
		readers.Wait()
	}()

	lctx, stopLate := context.WithCancel(ctx)
	defer stopLate()
	late := watchLateness(lctx)
	start := time.Now()
	for i, m := range all {
		if i >= len(ctls) && p.StartEvery > 0 {
			if err := sleepCtx(ctx, p.StartEvery); err != nil {
				return nil, err
			}
		}
		pl, err := gossip.Join(ctx, m.cfg)
		if err != nil {
			return nil, fmt.Errorf("%s of %s: %w", m.cfg.Name, m.cfg.Domain, err)
		}
		m.pools = pl
		if m.cfg.Role == gossip.RoleController {
			readers.Add(1)
			go func() {
				defer readers.Done()
				for ev := range pl.Events() {
					if !ev.Alive {
						evMu.Lock()
						dead = append(dead, ev)
						evMu.Unlock()
					}
				}
			}()
		}
	}
	r.Joined = time.Since(start)
	p.Log.Info("gossip: members started", "members", len(all), "took", r.Joined.Round(time.Millisecond))

	// Each agent says its health every HealthEvery, as haconf compute agent does.
	hctx, stopHealth := context.WithCancel(ctx)
	var health sync.WaitGroup
	var updates, updateErrs atomic.Uint64
	var errMu sync.Mutex
	healthErrs := map[string]int{}
	for _, a := range agents {
		if p.HealthEvery <= 0 {
			break
		}
		health.Add(1)
		go func() {
			defer health.Done()
			wait := rand.N(p.HealthEvery)
			for {
				select {
				case <-hctx.Done():
					return
				case <-time.After(wait):
				}
				wait = p.HealthEvery // a crashed agent's SetHealth does nothing
				if err := a.pools.SetHealth(gossip.Health{NovaCompute: true, Checked: time.Now()}); err != nil {
					updateErrs.Add(1)
					errMu.Lock()
					healthErrs[err.Error()]++
					errMu.Unlock()
				}
				updates.Add(1)
			}
		}()
	}
	defer func() {
		stopHealth()
		health.Wait()
	}()

	domainSize := func(d int) int { return min((d+1)*p.DomainSize, p.Agents) - d*p.DomainSize + 1 }
	ctlSees := func() bool {
		for _, c := range ctls {
			for _, l := range gossip.Links {
				if c.pools.Members(l) < domainSize(c.domain) {
					return false
				}
			}
		}
		return true
	}
	converged := func() int {
		n := 0
		for d := range r.Domains {
			ok := true
			for _, m := range all {
				if m.domain != d {
					continue
				}
				for _, l := range gossip.Links {
					ok = ok && m.pools.Members(l) == domainSize(d)
				}
			}
			if ok {
				n++
			}
		}
		return n
	}
	deadline := start.Add(p.Converge)
	for !ctlSees() && time.Now().Before(deadline) {
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
	r.ControllersSee = time.Since(start)
	p.Log.Info("gossip: every controller sees its agents", "took", r.ControllersSee.Round(time.Millisecond))
	for {
		r.DomainsConverged = converged()
		if r.DomainsConverged == r.Domains || time.Now().After(deadline) {
			break
		}
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return nil, err
		}
	}
	r.ConvergedOK = r.DomainsConverged == r.Domains
	r.Converged = time.Since(start)
	steadyStart := time.Now()
	p.Log.Info("gossip: pools converged", "ok", r.ConvergedOK, "domains", fmt.Sprintf("%d/%d", r.DomainsConverged, r.Domains), "took", r.Converged.Round(time.Millisecond))

	// Steady state under loss: CPU, memory, packets; false positives counted below.
	cpu0, busy0 := cpuTime(), machineBusy()
	sent0, dropped0 := net.sent.Load(), net.dropped.Load()
	half := steadyStart.Add(p.Steady / 2)
	if err := sleepUntil(ctx, half); err != nil {
		return nil, err
	}
	r.RSS, r.HeapInuse, r.Goroutines = rss(), heapInuse(), goroutines()
	if err := sleepUntil(ctx, steadyStart.Add(p.Steady)); err != nil {
		return nil, err
	}
	r.CPU, r.Others = cpuTime()-cpu0, machineBusy()-busy0
	r.Others -= r.CPU
	r.Late50, r.Late99, r.LateMax = late.between(steadyStart, time.Now())
	r.Sent, r.Dropped = net.sent.Load()-sent0, net.dropped.Load()-dropped0
	r.SteadyFor = time.Since(steadyStart)
	p.Log.Info("gossip: steady state measured", "for", r.SteadyFor.Round(time.Second))

	// Kills, spread over the domains (agent j of domain k, round robin),
	// and cuts on other agents at the same moment.
	byDomain := make([][]*member, r.Domains)
	for _, a := range agents {
		byDomain[a.domain] = append(byDomain[a.domain], a)
	}
	var victims, cuts []*member
	for n := 0; len(victims)+len(cuts) < p.Kill+p.Cut && n < p.Agents; n++ {
		d, j := n%r.Domains, n/r.Domains
		if j >= len(byDomain[d]) {
			continue
		}
		if len(victims) < p.Kill {
			victims = append(victims, byDomain[d][j])
		} else {
			cuts = append(cuts, byDomain[d][j])
		}
	}
	at := time.Now()
	for _, v := range victims {
		v.killed = at
	}
	for i, c := range cuts {
		c.cut, c.cutAt = gossip.Links[i%2], at
	}
	var wg sync.WaitGroup
	for _, v := range victims {
		wg.Go(func() { v.pools.Shutdown() })
	}
	for _, c := range cuts {
		wg.Go(func() { c.pools.Shut(c.cut) })
	}
	wg.Wait()
	p.Log.Info("gossip: agents crashed and links cut", "crashed", len(victims), "cut", len(cuts))

	firstDead := func(name string, l gossip.Link, after time.Time) (time.Time, bool) {
		evMu.Lock()
		defer evMu.Unlock()
		for _, ev := range dead {
			if ev.Name == name && ev.Link == l && !ev.At.Before(after) {
				return ev.At, true
			}
		}
		return time.Time{}, false
	}
	detected := func() bool {
		for _, v := range victims {
			for _, l := range gossip.Links {
				if _, ok := firstDead(v.cfg.Name, l, at); !ok {
					return false
				}
			}
		}
		for _, c := range cuts {
			if _, ok := firstDead(c.cfg.Name, c.cut, at); !ok {
				return false
			}
		}
		return true
	}
	for !detected() && time.Since(at) < p.Watch {
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
	p.Log.Info("gossip: detection", "all", detected(), "after", time.Since(at).Round(time.Millisecond))
	if err := sleepCtx(ctx, p.Hold); err != nil {
		return nil, err
	}
	r.KillLate99, r.KillLateMax = func() (time.Duration, time.Duration) { _, p99, m := late.between(at, time.Now()); return p99, m }()
	r.JoinLate99, r.JoinLateMax = func() (time.Duration, time.Duration) { _, p99, m := late.between(start, steadyStart); return p99, m }()

	for _, v := range victims {
		var both time.Duration
		ok := true
		for _, l := range gossip.Links {
			t, seen := firstDead(v.cfg.Name, l, at)
			if !seen {
				ok = false
				continue
			}
			r.DetectLink[l] = append(r.DetectLink[l], t.Sub(at))
			both = max(both, t.Sub(at))
		}
		if ok {
			r.Detect = append(r.Detect, both)
		} else {
			r.Undetected++
		}
	}
	for _, c := range cuts {
		cr := cutResult{Name: c.cfg.Name, Link: c.cut}
		if t, ok := firstDead(c.cfg.Name, c.cut, at); ok {
			cr.Detected = t.Sub(at)
		}
		other := gossip.Management
		if c.cut == gossip.Management {
			other = gossip.Storage
		}
		_, cr.OtherDied = firstDead(c.cfg.Name, other, at)
		cr.Condition, _, _ = compute.Classify(hostView(ctls[c.domain].pools.View()[c.cfg.Name]))
		r.Cuts = append(r.Cuts, cr)
	}

	// False positives: a member seen dead on a link while it ran there.
	evMu.Lock()
	byName := map[string]*member{}
	for _, a := range agents {
		byName[a.cfg.Name] = a
	}
	for _, ev := range dead {
		a := byName[ev.Name]
		if a == nil || ev.Left {
			continue
		}
		if !a.killed.IsZero() && !ev.At.Before(a.killed) {
			continue
		}
		if a.cut == ev.Link && !ev.At.Before(a.cutAt) {
			continue
		}
		if ev.At.Before(steadyStart) {
			r.JoinFalseDead++
			continue
		}
		r.FalseDead[ev.Link][ev.Name] = true
		r.FalseEvents[ev.Link]++
	}
	evMu.Unlock()
	for _, c := range ctls {
		r.EventsDropped += c.pools.Dropped()
	}
	r.HealthUpdates, r.HealthErrors = updates.Load(), updateErrs.Load()
	errMu.Lock()
	r.HealthErrorText = maps.Clone(healthErrs)
	errMu.Unlock()
	return r, nil
}

// hostView is the controller's view of a member, as haconf compute
// controller builds it from the pools.
func hostView(m gossip.Member) compute.HostView {
	v := compute.HostView{Name: m.Name, Domain: m.Domain, Health: m.Health, Links: map[gossip.Link]compute.LinkView{}}
	for l, s := range m.Links {
		v.Links[l] = compute.LinkView{Seen: true, Alive: s.Alive, Left: s.Left, Since: s.Since}
	}
	return v
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func sleepUntil(ctx context.Context, t time.Time) error { return sleepCtx(ctx, time.Until(t)) }
