package main

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/haconf/haconf/compute/gossip"
)

// report is the markdown of bench/results/compute-scale.md.
type report struct {
	Heading bool // the section's title first
	Machine machine
	Gossip  *gossipResult
	Decider *deciderResult
}

func (r *report) markdown() string {
	var b strings.Builder
	m := r.Machine
	if r.Heading {
		b.WriteString("## Compute failover at scale (`bench/compute-scale/run`, issue 16)\n\n")
	}
	fmt.Fprintf(&b, "Measured %s on %d vCPU (%s), %d MiB RAM, kernel %s, %s, %s",
		m.Started.Format("2006-01-02 15:04 UTC"), m.CPUs, m.CPUModel, m.MemoryMiB, m.Kernel, m.OS, m.Go)
	if m.Commit != "" {
		fmt.Fprintf(&b, ", haconf %s", m.Commit)
	}
	fmt.Fprintf(&b, "; load average %s at the start, %s at the end; %s in all.\n", m.LoadStart, m.LoadEnd, m.Ended.Sub(m.Started).Round(time.Second))
	switch {
	case m.LabHeld:
		b.WriteString("The run held the lab's lock: no lab test ran beside it.\n")
	case m.LabBusy:
		b.WriteString("**A lab test held the lab's lock during this run (UML nodes beside it): the numbers are upper bounds.**\n")
	}
	b.WriteString("Everything runs in one Go process on loopback; the machine's two cores are shared by every member, the simulated cloud and the controller.\n\n")
	if g := r.Gossip; g != nil {
		g.markdown(&b)
	}
	if d := r.Decider; d != nil {
		d.markdown(&b, r.Gossip)
	}
	return b.String()
}

func (g *gossipResult) markdown(b *strings.Builder) {
	p := g.P
	fmt.Fprintf(b, "### Gossip: %d agents, both pools each, %d detection domains\n\n", p.Agents, g.Domains)
	fmt.Fprintf(b, "Each agent is a real `gossip.Join` member (two memberlists) on its own loopback addresses (management 127.1.x.y, storage 127.2.x.y),\n")
	fmt.Fprintf(b, "%d agents per domain plus the domain's controller member (127.{1,2}.255.1, one port per domain, as haconf.yaml gives them),\n", p.DomainSize)
	fmt.Fprintf(b, "seeds as haconf.yaml gives them (the controller, then the domain's other hosts), memberlist profile `%s`, %s.\n", p.Profile, healthEvery(p.HealthEvery))
	fmt.Fprintf(b, "**%.1f%% of the packets** (UDP: probes, acks, gossip) every pool sends are dropped, from the start\n", 100*p.Loss)
	b.WriteString("(`gossip.Config.WrapTransport`); TCP streams (push/pull, the fallback ping) are not. The controllers' views are read from their events and `View`.\n\n")
	b.WriteString("| measure | result |\n|---|---|\n")
	row := func(k, v string) { fmt.Fprintf(b, "| %s | %s |\n", k, v) }
	started := "all at once"
	if p.StartEvery > 0 {
		started = "one agent every " + p.StartEvery.String() + ", after the controllers"
	}
	row("members started (`gossip.Join` of every agent and controller, "+started+")", fmt.Sprintf("%d members in %s", g.Members, secs(g.Joined)))
	row("every controller sees every agent of its domain alive on both links", secs(g.ControllersSee)+" after the start")
	conv := secs(g.Converged) + " after the start"
	if !g.ConvergedOK {
		conv = fmt.Sprintf("**not within %s**: %d of %d domains", p.Converge, g.DomainsConverged, g.Domains)
	}
	row("every member sees every member of its domain on both links", conv)
	fp := func(l gossip.Link) string {
		return fmt.Sprintf("%d members (%d events)", len(g.FalseDead[l]), g.FalseEvents[l])
	}
	row(fmt.Sprintf("**false positives**: running agents a controller saw dead, in %s at %.1f%% loss (then the kill phase)", g.SteadyFor.Round(time.Second), 100*p.Loss),
		fmt.Sprintf("management: **%s**, storage: **%s**", fp(gossip.Management), fp(gossip.Storage)))
	if g.JoinFalseDead > 0 {
		row("the same while the pools were forming", fmt.Sprintf("%d events", g.JoinFalseDead))
	}
	if len(g.Detect) > 0 || g.Undetected > 0 {
		row(fmt.Sprintf("**detection** of %d crashed agents (Shutdown without Leave, spread over the domains): dead on both links in the controller's view", p.Kill),
			"**"+stats(g.Detect)+"**"+undetected(g.Undetected))
		for _, l := range gossip.Links {
			row("&nbsp;&nbsp;dead on "+string(l), stats(g.DetectLink[l]))
		}
	}
	if len(g.Cuts) > 0 {
		var ds []time.Duration
		linkDown, otherDied, missed := 0, 0, 0
		for _, c := range g.Cuts {
			if c.Detected > 0 {
				ds = append(ds, c.Detected)
			} else {
				missed++
			}
			if c.OtherDied {
				otherDied++
			}
			if c.Condition == "link-down" {
				linkDown++
			}
		}
		row(fmt.Sprintf("one link cut on %d agents (`Shut`, half management, half storage), at the same moment as the crashes", len(g.Cuts)),
			fmt.Sprintf("seen dead on that link %s%s; the other link seen dead: %d; judged link-down (`compute.Classify`) %s later: **%d of %d**",
				stats(ds), undetected(missed), otherDied, p.Hold, linkDown, len(g.Cuts)))
	}
	cores := g.CPU.Seconds() / g.SteadyFor.Seconds()
	row(fmt.Sprintf("CPU of the process in the steady phase (%d members)", g.Members),
		fmt.Sprintf("%.2f cores; %.2f ms of CPU per second per agent; the machine's other processes: %.2f cores", cores, 1000*cores/float64(p.Agents), g.Others.Seconds()/g.SteadyFor.Seconds()))
	verdict := "the members' timers ran on time"
	if g.Late99 > 100*time.Millisecond || g.KillLate99 > 100*time.Millisecond {
		verdict = "**the process was short of CPU: probe timeouts (500 ms with lan) are at risk, and the false positives and detection times above measure the machine as much as haconf**"
	}
	row("scheduling delay (how late a 50 ms sleep wakes): steady phase; while forming; after the kills",
		fmt.Sprintf("median %s, p99 %s, max %s; p99 %s, max %s; p99 %s, max %s: %s", ms(g.Late50), ms(g.Late99), ms(g.LateMax), ms(g.JoinLate99), ms(g.JoinLateMax), ms(g.KillLate99), ms(g.KillLateMax), verdict))
	mem := g.RSS - g.RSSBase
	row("memory in the steady phase", fmt.Sprintf("RSS %s (%s before the members), %s per agent; Go heap in use %s; %d goroutines (%.0f per agent)",
		mib(g.RSS), mib(g.RSSBase), kib(mem/int64(p.Agents)), mib(int64(g.HeapInuse)), g.Goroutines, float64(g.Goroutines)/float64(p.Agents)))
	row("packets sent in the steady phase", fmt.Sprintf("%.1f per second per member (both pools); %.2f%% dropped", float64(g.Sent)/g.SteadyFor.Seconds()/float64(g.Members), 100*float64(g.Dropped)/float64(max(g.Sent, 1))))
	row("controller events lost by a slow reader", fmt.Sprintf("%d (0: the event log is complete)", g.EventsDropped))
	if p.HealthEvery > 0 {
		failed := fmt.Sprint(g.HealthErrors)
		for _, e := range slices.Sorted(maps.Keys(g.HealthErrorText)) {
			failed += fmt.Sprintf("; %d: %s", g.HealthErrorText[e], e)
		}
		row("agents' SetHealth calls (failed)", fmt.Sprintf("%d (%s)", g.HealthUpdates, failed))
	}
	b.WriteString("\n")
}

func (d *deciderResult) markdown(b *strings.Builder, g *gossipResult) {
	p, c := d.P, d.P.Cloud
	fmt.Fprintf(b, "### Decider: %d hosts, %d servers, a rack of %d hosts fails\n\n", c.Hosts, c.Servers, p.Fail)
	fmt.Fprintf(b, "The real `compute.Controller` (1 s judgement tick, 1 s polls, evacuate.concurrency %d per incident, evacuate.max_in_flight %d in all) with a real `compute/nova` Client\n", p.Concurrency, p.MaxInFlight)
	b.WriteString("(gophercloud, `nova.HTTPClient` as haconf compute makes it) against a Keystone, Nova and Placement simulator in Go (`bench/compute-scale/cloud.go`):\n")
	b.WriteString("the calls the client makes, in the JSON shapes of compute/nova/testdata's recordings (checked by `TestCloudShapes`).\n")
	fmt.Fprintf(b, "Every call answers after %s (the lab's 20-60 ms) plus %s per item of a list; Nova's max_limit %d; ", c.APILatency, c.PerItem, c.MaxLimit)
	if c.Workers > 0 {
		fmt.Fprintf(b, "each API serves %d requests at once.\n", c.Workers)
	} else {
		b.WriteString("no limit on requests served at once.\n")
	}
	fmt.Fprintf(b, "An evacuation is claimed (or refused: no room, anti-affinity, target down) by a simulated scheduler %s after the call and is\n", c.Schedule)
	fmt.Fprintf(b, "ACTIVE on its target %s later (the lab: evacuate call to ACTIVE 1-6 s); Placement keeps the allocation on the failed host, as Nova does.\n", c.Rebuild)
	fmt.Fprintf(b, "Hosts: 64 cores (allocation ratio 4), 512 GiB, 4 TB; servers of 4 flavors (2/4/8/16 vCPU, 4/8/32/64 GiB; 40/30/20/10%%), 5%% SHUTOFF,\n")
	fmt.Fprintf(b, "%.0f%% in anti-affinity groups of 2-4 (as many in soft-anti-affinity groups), placed at random where they fit (about two thirds of the memory used).\n", 100*c.AntiAffinity)
	fmt.Fprintf(b, "Detection domains (racks) of %d hosts; hosts %s to %s (rack %d) die on both links at once in the pools' view, and their nova-compute stops.\n",
		c.RackSize, d.Failed[0], d.Failed[len(d.Failed)-1], p.FailRack+1)
	fmt.Fprintf(b, "**Guards set so that the %d are acted on**: max_failed_share %.2g (%d of %d is not more than it), max_failed_hosts %d (default 3), settle 0 (the failure comes after the controller's first rounds); a fence takes %s and succeeds.\n\n",
		p.Fail, d.Guards.MaxFailedShare, p.Fail, c.RackSize, d.Guards.MaxFailedHosts, p.Fence)

	a := d.Audit
	b.WriteString("| from the failure (the pools' view shows the hosts dead on both links) to | time |\n|---|---|\n")
	row := func(k, v string) { fmt.Fprintf(b, "| %s | %s |\n", k, v) }
	col := func(f func(incidentTimes) time.Duration) []time.Duration {
		var out []time.Duration
		for _, in := range d.Incidents {
			if v := f(in); v > 0 {
				out = append(out, v)
			}
		}
		return out
	}
	last := func(ds []time.Duration) string {
		if len(ds) < len(d.Incidents) || len(ds) == 0 {
			return fmt.Sprintf("%d of %d incidents got there", len(ds), len(d.Incidents))
		}
		return secs(slices.Max(ds))
	}
	row(fmt.Sprintf("every incident opened (%d)", len(d.Incidents)), last(col(func(i incidentTimes) time.Duration { return i.Opened })))
	row("every host fenced", last(col(func(i incidentTimes) time.Duration { return i.Fenced })))
	row("every host forced down and disabled in Nova", last(col(func(i incidentTimes) time.Duration { return i.Isolated })))
	row("every host's servers listed", last(col(func(i incidentTimes) time.Duration { return i.Listed })))
	row("the first evacuate call", secs(col1(col(func(i incidentTimes) time.Duration { return i.FirstCall }))))
	row(fmt.Sprintf("**every server's first evacuate call sent** (%d servers)", a.Servers), "**"+last(col(func(i incidentTimes) time.Duration { return i.AllCalled }))+"**")
	row("the last evacuate call (retries included)", last(col(func(i incidentTimes) time.Duration { return i.LastCall })))
	active := "**" + last(col(func(i incidentTimes) time.Duration { return i.AllActive })) + "**"
	if a.StillOnFailed > 0 {
		active = fmt.Sprintf("**never: %d servers were not moved** (evacuate.attempts spent); the others by %s", a.StillOnFailed, last(col(func(i incidentTimes) time.Duration { return i.AllActive })))
	}
	row("**every server ACTIVE (or SHUTOFF, as it was) elsewhere**, in the cloud", active)
	closed := last(col(func(i incidentTimes) time.Duration { return i.Closed }))
	if d.TimedOut {
		closed += fmt.Sprintf(" (**timed out after %s**)", p.Timeout)
	}
	row("every incident closed (haconf saw every server there)", closed)
	if g != nil && len(g.Detect) > 0 {
		slices.Sort(g.Detect)
		row("with the gossip part's median detection added (crash to dead on both links)", fmt.Sprintf("every evacuate call %s after the crash, every server ACTIVE %s after it",
			secs(g.Detect[len(g.Detect)/2]+slices.Max(append(col(func(i incidentTimes) time.Duration { return i.AllCalled }), 0))),
			secs(g.Detect[len(g.Detect)/2]+slices.Max(append(col(func(i incidentTimes) time.Duration { return i.AllActive }), 0)))))
		if a.StillOnFailed > 0 {
			b.WriteString("| | (the last of the servers moved; " + fmt.Sprint(a.StillOnFailed) + " were not) |\n")
		}
	}
	b.WriteString("\n")

	b.WriteString("Per incident (one per failed host), from the failure:\n\n")
	b.WriteString("| step | median | max |\n|---|---|---|\n")
	for _, s := range []struct {
		name string
		f    func(incidentTimes) time.Duration
	}{
		{"opened", func(i incidentTimes) time.Duration { return i.Opened }},
		{"fenced", func(i incidentTimes) time.Duration { return i.Fenced }},
		{"isolated (forced down, disabled)", func(i incidentTimes) time.Duration { return i.Isolated }},
		{"servers listed", func(i incidentTimes) time.Duration { return i.Listed }},
		{"first evacuate call", func(i incidentTimes) time.Duration { return i.FirstCall }},
		{"every server's first call", func(i incidentTimes) time.Duration { return i.AllCalled }},
		{"every server ACTIVE elsewhere (those moved)", func(i incidentTimes) time.Duration { return i.AllActive }},
		{"closed", func(i incidentTimes) time.Duration { return i.Closed }},
	} {
		ds := col(s.f)
		if len(ds) == 0 {
			fmt.Fprintf(b, "| %s | - | - |\n", s.name)
			continue
		}
		slices.Sort(ds)
		fmt.Fprintf(b, "| %s | %s | %s |\n", s.name, secs(ds[len(ds)/2]), secs(ds[len(ds)-1]))
	}
	b.WriteString("\n")

	b.WriteString("Checks:\n\n| check | result |\n|---|---|\n")
	row(fmt.Sprintf("servers of the failed hosts running elsewhere at the end (%d)", a.Servers), fmt.Sprintf("%d moved, %d not", a.Moved, a.StillOnFailed))
	var calls []string
	for _, n := range slices.Sorted(maps.Keys(a.Calls)) {
		calls = append(calls, fmt.Sprintf("%d call(s): %d servers", n, a.Calls[n]))
	}
	row("evacuate calls per server", strings.Join(calls, "; "))
	row("evacuations sent while one ran (a second evacuation racing the first)", fmt.Sprint(a.Busy))
	refused := "none"
	if len(a.Refused) > 0 {
		var rs []string
		for _, k := range slices.Sorted(maps.Keys(a.Refused)) {
			rs = append(rs, fmt.Sprintf("%s: %d", k, a.Refused[k]))
		}
		refused = "**" + strings.Join(rs, ", ") + "** (each an ERROR the controller retried elsewhere, up to evacuate.attempts)"
	}
	row("targets the simulated scheduler refused", refused)
	over := "none"
	if len(a.OverCapacity) > 0 {
		over = strings.Join(a.OverCapacity, ", ")
	}
	row("hosts over capacity in Placement at the end", over)
	row("anti-affinity groups with two members on one host at the end", fmt.Sprint(a.AntiAffinity))
	var states []string
	for _, s := range slices.Sorted(maps.Keys(d.States)) {
		states = append(states, fmt.Sprintf("%s: %d", s, d.States[s]))
	}
	row("incidents", strings.Join(states, ", "))
	if len(d.Logs) > 0 {
		var ls []string
		for _, k := range slices.Sorted(maps.Keys(d.Logs)) {
			ls = append(ls, fmt.Sprintf("%s (%d)", k, d.Logs[k]))
		}
		row("the controller's warnings and errors", strings.Join(ls, "; "))
	}
	b.WriteString("\n")
	if a.Refused["no room"] > 0 {
		b.WriteString("Every plan takes the targets the other incidents claimed from Placement's free capacity until Placement shows their allocation;\n")
		b.WriteString("a refusal for want of room means a server landed there that the controller did not send, or a read counted an allocation twice.\n\n")
	}

	b.WriteString("Where the time goes: the controller's calls to Nova and Placement (`compute.Nova` methods, as the controller waited for them;\n")
	b.WriteString("Providers is one list, then one GET /allocation_candidates, whose provider_summaries carry every provider's capacity and usage):\n\n")
	b.WriteString("| call | calls | total | mean | max |\n|---|---|---|---|---|\n")
	names := slices.Collect(maps.Keys(d.Calls))
	sort.Slice(names, func(i, j int) bool { return d.Calls[names[i]].Total > d.Calls[names[j]].Total })
	for _, n := range names {
		s := d.Calls[n]
		errs := ""
		if s.Errors > 0 {
			errs = fmt.Sprintf(" (%d failed)", s.Errors)
		}
		fmt.Fprintf(b, "| %s | %d%s | %s | %s | %s |\n", n, s.N, errs, secs(s.Total), ms(s.Total/time.Duration(max(s.N, 1))), ms(s.Max))
	}
	b.WriteString("\nThe simulated cloud's answers (requests, as served):\n\n| request | count | mean |\n|---|---|---|\n")
	routes := slices.Collect(maps.Keys(d.Routes))
	sort.Slice(routes, func(i, j int) bool { return d.Routes[routes[i]].N > d.Routes[routes[j]].N })
	for _, n := range routes {
		s := d.Routes[n]
		fmt.Fprintf(b, "| `%s` | %d | %s |\n", n, s.N, ms(s.Total/time.Duration(max(s.N, 1))))
	}
	fmt.Fprintf(b, "\nThe client (`nova.HTTPClient(%d)`: as many idle connections kept per endpoint) opened %d TCP connections for the %d requests of the run.\n", d.P.MaxInFlight+16, d.Conns, d.Requests)
	fmt.Fprintf(b, "\nCPU: the whole process (controller, client and simulated cloud) used %s of CPU from the failure to the end (%s); the machine's other processes %s.\n",
		secs(d.CPU), secs(d.Took), secs(d.Others))
	fmt.Fprintf(b, "The controller's pure parts at this size: one `Judge.Decide` of %d hosts with %d failed: %s; one `Choose` of %d servers over %d targets: %s;\n",
		c.Hosts, p.Fail, ms(d.Decide), d.ChooseN[0], d.ChooseN[1], ms(d.Choose))
	fmt.Fprintf(b, "the status.json it writes when its content changed (not every round): %s.\n\n", kib(d.Status))
}

func healthEvery(d time.Duration) string {
	if d <= 0 {
		return "no SetHealth after the start (`haconf compute agent` calls it every 5 s; a health that changed is a broadcast: this measures membership alone)"
	}
	return fmt.Sprintf("each agent's SetHealth every %s (as `haconf compute agent` does every 5 s; only a health that changed is broadcast to the domain on both pools, here the first)", d)
}

// col1 is the smallest of ds (0 when empty).
func col1(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return slices.Min(ds)
}

func stats(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	p95 := s[min(len(s)-1, (len(s)*95+99)/100-1)]
	return fmt.Sprintf("median %s, p95 %s, max %s (n=%d)", secs(s[len(s)/2]), secs(p95), secs(s[len(s)-1]), len(s))
}

func undetected(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; **%d not detected**", n)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
func ms(d time.Duration) string   { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
func mib(n int64) string          { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }
func kib(n int64) string          { return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10)) }
