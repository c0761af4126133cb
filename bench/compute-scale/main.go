// Command compute-scale simulates haconf's compute failover at the size of
// a large cloud (issue 16) and writes bench/results/compute-scale.md.
//
// Gossip part: N agents as real compute/gossip members in this process,
// each on its own loopback addresses (management 127.1.x.y, storage
// 127.2.x.y), in detection domains with one controller member each, every
// packet lost with probability -loss: false positives in the controllers'
// views, detection of crashed agents, one-link cuts, CPU and memory.
//
// Decider part: the real compute.Controller with a real compute/nova
// Client against a Keystone, Nova and Placement simulator (cloud.go) with
// the lab's latencies; a rack of hosts fails at once: the time to every
// evacuation sent and every server ACTIVE elsewhere, and where it goes.
//
//	go run ./bench/compute-scale -agents 250 -out bench/results/compute-scale.md
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/haconf/haconf/compute"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "compute-scale:", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	part       string
	out        string
	heading    bool
	verbose    bool
	labLock    bool
	cpuProfile string
	gossip     gossipParams
	decider    deciderParams
}

var parts = []string{"all", "gossip", "decider"}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("compute-scale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.part, "part", "all", "what to run: all, gossip or decider")
	fs.StringVar(&o.out, "out", "", "write the markdown report here (default: standard output)")
	fs.BoolVar(&o.heading, "heading", true, "start the report with its section title (false: a run appended to another's report)")
	fs.BoolVar(&o.verbose, "v", false, "progress, and the controller's warnings, on standard error")
	fs.BoolVar(&o.labLock, "lab-lock", false, "wait for the lab's lock ("+labLock+") and hold it during the run")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run here")

	g := &o.gossip
	fs.IntVar(&g.Agents, "agents", 250, "gossip: compute agents")
	fs.IntVar(&g.DomainSize, "domain-size", 40, "gossip: agents per detection domain (each domain adds a controller member)")
	fs.StringVar(&g.Profile, "profile", "lan", "gossip: memberlist profile, lan or local (compute.gossip.profile)")
	fs.Float64Var(&g.Loss, "loss", 0.01, "gossip: share of packets lost, on every pool")
	fs.DurationVar(&g.Steady, "steady", 3*time.Minute, "gossip: time under loss after the pools converged, before the kills (false positives, CPU, memory)")
	fs.IntVar(&g.Kill, "kill", 10, "gossip: agents crashed (Shutdown without Leave), spread over the domains")
	fs.IntVar(&g.Cut, "cut", 4, "gossip: agents that lose one link (half storage, half management)")
	fs.DurationVar(&g.Watch, "watch", 90*time.Second, "gossip: the longest wait for the crashes and cuts to be detected")
	fs.DurationVar(&g.Hold, "hold", 15*time.Second, "gossip: then how long the cut agents must stay link-down")
	fs.DurationVar(&g.HealthEvery, "health-every", 5*time.Second, "gossip: each agent's SetHealth interval (haconf compute agent: 5s); 0: never")
	fs.DurationVar(&g.StartEvery, "start-every", 20*time.Millisecond, "gossip: time between two agents' start (hosts do not all boot in the same second; 0: all at once)")
	fs.IntVar(&g.Port, "port", 28000, "gossip: port of the first domain's pools (domain d: port+d)")
	fs.DurationVar(&g.Converge, "converge", 3*time.Minute, "gossip: the longest wait for every pool to see every member")

	d := &o.decider
	c := &d.Cloud
	fs.IntVar(&c.Hosts, "hosts", 1000, "decider: compute hosts")
	fs.IntVar(&c.Servers, "servers", 20000, "decider: servers")
	fs.IntVar(&c.RackSize, "rack-size", 40, "decider: hosts per rack (detection domain)")
	fs.Float64Var(&c.AntiAffinity, "anti-affinity", 0.05, "decider: share of servers in anti-affinity groups of 2-4 (as many again in soft-anti-affinity groups)")
	c.APILatency = span{20 * time.Millisecond, 60 * time.Millisecond}
	fs.Var(&c.APILatency, "api-latency", "decider: every API call's latency, min-max (lab: 20-60ms)")
	fs.DurationVar(&c.PerItem, "per-item", 500*time.Microsecond, "decider: added latency per item a list returns (services, servers, providers, groups)")
	c.Schedule = span{100 * time.Millisecond, 300 * time.Millisecond}
	fs.Var(&c.Schedule, "schedule", "decider: evacuate accepted -> the scheduler's claim or refusal, min-max")
	c.Rebuild = span{time.Second, 6 * time.Second}
	fs.Var(&c.Rebuild, "rebuild", "decider: claim -> ACTIVE on the target, min-max (lab: evacuate call to ACTIVE 1-6s)")
	fs.IntVar(&c.MaxLimit, "max-limit", 1000, "decider: Nova's max_limit (longest page)")
	fs.IntVar(&c.Workers, "workers", 0, "decider: requests each API serves at once (0: no limit)")
	fs.Uint64Var(&c.Seed, "seed", 1, "decider: the cloud's random seed")
	fs.IntVar(&d.Fail, "fail", 20, "decider: hosts of one rack that fail at once")
	fs.IntVar(&d.FailRack, "fail-rack", 2, "decider: the failing rack (0-based)")
	fs.IntVar(&d.Concurrency, "concurrency", 8, "decider: compute.evacuate.concurrency (per incident)")
	fs.IntVar(&d.MaxInFlight, "max-in-flight", compute.DefaultMaxInFlight, "decider: compute.evacuate.max_in_flight (every incident together)")
	d.Fence = span{55 * time.Millisecond, 69 * time.Millisecond}
	fs.Var(&d.Fence, "fence", "decider: a fence agent's run, min-max (lab: 55-69ms)")
	fs.DurationVar(&d.Timeout, "timeout", 10*time.Minute, "decider: the longest wait for every incident to close")

	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var errs []error
	switch o.part {
	case "all", "gossip", "decider":
	default:
		errs = append(errs, fmt.Errorf("-part %q: want one of %v", o.part, parts))
	}
	if g.Agents < 2 || g.DomainSize < 2 {
		errs = append(errs, fmt.Errorf("-agents %d, -domain-size %d: want at least 2 each", g.Agents, g.DomainSize))
	}
	if g.Kill+g.Cut > g.Agents {
		errs = append(errs, fmt.Errorf("-kill %d and -cut %d: more than the %d agents", g.Kill, g.Cut, g.Agents))
	}
	if g.Profile != "lan" && g.Profile != "local" {
		errs = append(errs, fmt.Errorf("-profile %q: want lan or local", g.Profile))
	}
	if g.Loss < 0 || g.Loss >= 1 {
		errs = append(errs, fmt.Errorf("-loss %g: want 0 to below 1", g.Loss))
	}
	if d.Fail < 1 || d.Fail > c.RackSize {
		errs = append(errs, fmt.Errorf("-fail %d: want 1 to -rack-size (%d)", d.Fail, c.RackSize))
	}
	if d.Concurrency < 1 || d.Concurrency > 64 {
		errs = append(errs, fmt.Errorf("-concurrency %d: want 1-64 (compute.evacuate.concurrency)", d.Concurrency))
	}
	if d.MaxInFlight < max(d.Concurrency, 1) || d.MaxInFlight > 256 {
		errs = append(errs, fmt.Errorf("-max-in-flight %d: want -concurrency to 256 (compute.evacuate.max_in_flight)", d.MaxInFlight))
	}
	return o, errors.Join(errs...)
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	level := slog.LevelWarn + 100 // nothing
	if o.verbose {
		level = slog.LevelInfo
	}
	progress := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	o.gossip.Log, o.decider.Log = progress, progress
	if o.verbose {
		o.decider.Controller = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	m := describeMachine()
	if o.labLock {
		if m.LabBusy {
			progress.Info("waiting for the lab's lock", "path", labLock)
		}
		lock, err := holdLabLock()
		if err != nil {
			return fmt.Errorf("lab lock: %w", err)
		}
		defer lock.Close()
		m.LabHeld = true
		m.Started, m.LoadStart = time.Now().UTC(), loadavg()
	}
	raiseFileLimit()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	rep := &report{Machine: m, Heading: o.heading}
	if o.part == "all" || o.part == "gossip" {
		g, err := runGossip(ctx, o.gossip)
		if err != nil {
			return fmt.Errorf("gossip part: %w", err)
		}
		rep.Gossip = g
	}
	if o.part == "all" || o.part == "decider" {
		d, err := runDecider(ctx, o.decider)
		if err != nil {
			return fmt.Errorf("decider part: %w", err)
		}
		rep.Decider = d
	}
	rep.Machine.Ended, rep.Machine.LoadEnd = time.Now().UTC(), loadavg()
	text := rep.markdown()
	if o.out == "" {
		_, err := io.WriteString(stdout, text)
		return err
	}
	return os.WriteFile(o.out, []byte(text), 0o644)
}

// raiseFileLimit lifts the soft limit on open files to the hard one: each
// member holds a UDP and a TCP socket per pool, and more while it talks.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
