package status

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/haconf/haconf/clock"
	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/pacemaker"
	"github.com/haconf/haconf/rabbitmq"
)

// Runner runs one command and returns its standard output (with the
// output also on error, as internal/runner.Exec does).
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// DRBDReader reads this node's DRBD state (*drbd.Node).
type DRBDReader interface {
	Status(ctx context.Context) (drbd.Status, error)
}

// MySQLProber checks MariaDB. It reports an unreachable server in
// MySQLFacts.Problem and a check it could not make in MySQLFacts.Error.
type MySQLProber interface {
	Probe(ctx context.Context) MySQLFacts
}

// BackupReader reads the last backup outcomes.
type BackupReader interface {
	LastBackup(ctx context.Context) (BackupFacts, error)
}

// FenceProber asks the controllers' fence devices for their power state.
type FenceProber interface {
	Probe(ctx context.Context) FencingFacts
}

// DefaultTimeout bounds each collector.
const DefaultTimeout = 10 * time.Second

// RabbitMQTimeout bounds the RabbitMQ collector when Timeout is not set:
// each rabbitmqctl call is a whole Erlang VM, about a second on a
// controller but 11-15 s on a slow or loaded machine (a lab node), where
// DefaultTimeout reported a healthy broker as unknown.
const RabbitMQTimeout = 40 * time.Second

// FenceTimeout bounds the fencing collector when Timeout is not set: a BMC
// answers in a few seconds, fence_ipmilan gives up on one that does not
// after about 20 s, and its message (not "timed out") is what to show.
const FenceTimeout = 30 * time.Second

// Collectors read every layer from this node.
type Collectors struct {
	Node   string
	Expect Expect
	// Run runs corosync-cfgtool, corosync-quorumtool, crm_mon, rabbitmqctl,
	// ip, and the clock's tools (timedatectl, chronyc, clockdiff).
	Run    Runner
	DRBD   DRBDReader
	MySQL  MySQLProber
	Backup BackupReader
	// Fence asks the fence devices (nil: there are none to ask).
	Fence FenceProber
	// Peer and PeerAddr are the peer's name and management address, where
	// its clock is measured.
	Peer, PeerAddr string
	// Timeout bounds each collector (DefaultTimeout, RabbitMQTimeout for
	// RabbitMQ and FenceTimeout for the fence devices, when zero); a
	// collector that overruns leaves its layer unknown with the reason.
	Timeout time.Duration
	Now     func() time.Time
	Log     *slog.Logger
}

// Collect runs every collector concurrently and returns what they saw. It
// never fails: a collector's error is recorded in its part of the snapshot.
func (c Collectors) Collect(ctx context.Context) Snapshot {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout, rabbitTimeout, fenceTimeout := c.Timeout, c.Timeout, c.Timeout
	if timeout <= 0 {
		timeout, rabbitTimeout, fenceTimeout = DefaultTimeout, RabbitMQTimeout, FenceTimeout
	}
	s := Snapshot{Node: c.Node, Time: now(), Expect: c.Expect}
	var wg sync.WaitGroup
	// Each goroutine writes only its own part of s, after collect returned.
	run := func(name string, f func(context.Context)) {
		wg.Go(func() {
			t0 := time.Now()
			f(ctx)
			log.Debug("status collector done", "collector", name, "duration", time.Since(t0))
		})
	}
	run(LayerCorosync, func(ctx context.Context) {
		s.Corosync = collect(ctx, timeout, c.corosync, func(e string) CorosyncFacts { return CorosyncFacts{Error: e} })
	})
	run(LayerPacemaker, func(ctx context.Context) {
		s.Pacemaker = collect(ctx, timeout, c.pacemaker, func(e string) PacemakerFacts { return PacemakerFacts{Error: e} })
	})
	run(LayerDRBD, func(ctx context.Context) {
		s.DRBD = collect(ctx, timeout, c.drbd, func(e string) DRBDFacts { return DRBDFacts{Error: e} })
	})
	run(LayerMySQL, func(ctx context.Context) {
		s.MySQL = collect(ctx, timeout, c.mysql, func(e string) MySQLFacts { return MySQLFacts{Error: e} })
	})
	run(LayerRabbitMQ, func(ctx context.Context) {
		s.RabbitMQ = collect(ctx, rabbitTimeout, c.rabbitmq, func(e string) RabbitMQFacts { return RabbitMQFacts{Error: e} })
	})
	run(LayerVIP, func(ctx context.Context) {
		s.VIP = collect(ctx, timeout, c.vip, func(e string) VIPFacts { return VIPFacts{Address: c.Expect.VIP, Error: e} })
	})
	run(LayerFencing, func(ctx context.Context) {
		s.Fencing = collect(ctx, fenceTimeout, c.fencing, func(e string) FencingFacts { return FencingFacts{Error: e} })
	})
	run(LayerClock, func(ctx context.Context) {
		s.Clock = collect(ctx, timeout, c.clockFacts, func(e string) ClockFacts { return ClockFacts{Peer: c.Peer, Error: e} })
	})
	run(LayerBackup, func(ctx context.Context) {
		s.Backup = collect(ctx, timeout, c.backup, func(e string) BackupFacts { return BackupFacts{Error: e} })
	})
	wg.Wait()
	return s
}

// collect runs f with a deadline and returns its result, or failed(reason)
// when the deadline passes first: a tool that ignores its context cannot
// hold status up (its goroutine is left to finish on its own).
func collect[T any](ctx context.Context, timeout time.Duration, f func(context.Context) T, failed func(string) T) T {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan T, 1)
	go func() { done <- f(ctx) }()
	select {
	case v := <-done:
		return v
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return failed(fmt.Sprintf("timed out after %s", timeout))
		}
		return failed(ctx.Err().Error())
	}
}

// output returns out when the command printed something, so that tools
// that exit non-zero with a useful report (corosync-quorumtool exits 2
// when not quorate) can still be parsed.
func output(out []byte, err error) ([]byte, error) {
	if len(bytes.TrimSpace(out)) > 0 {
		return out, nil
	}
	return nil, err
}

// parsed runs a tool through read and parses its output (see output).
func parsed[T any](ctx context.Context, read func(context.Context) ([]byte, error), parse func([]byte) (T, error)) (*T, error) {
	out, err := output(read(ctx))
	if err != nil {
		return nil, err
	}
	v, err := parse(out)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func (c Collectors) corosync(ctx context.Context) CorosyncFacts {
	var f CorosyncFacts
	var errs []string
	var err error
	cl := pacemaker.Cluster{Run: c.Run}
	if f.Links, err = parsed(ctx, cl.Links, pacemaker.ParseCfgtool); err != nil {
		errs = append(errs, err.Error())
	}
	if f.Quorum, err = parsed(ctx, cl.Quorum, pacemaker.ParseQuorumtool); err != nil {
		errs = append(errs, err.Error())
	}
	f.Error = strings.Join(errs, "; ")
	return f
}

func (c Collectors) pacemaker(ctx context.Context) PacemakerFacts {
	cl := pacemaker.Cluster{Run: c.Run}
	out, err := output(cl.StatusXML(ctx))
	if err != nil {
		return PacemakerFacts{Error: err.Error()}
	}
	f, err := parsePacemaker(out)
	if err != nil {
		return PacemakerFacts{Error: err.Error()}
	}
	if f.Mon.MaintenanceAll {
		// Who set it and until when: the cluster properties say.
		if out, err := cl.Query(ctx, pacemaker.ScopeCrmConfig); err == nil {
			if m, err := pacemaker.ParseMaintenanceConfig(out); err == nil {
				st := m.State(true, c.now())
				f.Maintenance = &st
			}
		}
	}
	return f
}

func (c Collectors) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c Collectors) drbd(ctx context.Context) DRBDFacts {
	if c.DRBD == nil {
		return DRBDFacts{Error: "no DRBD reader"}
	}
	st, err := c.DRBD.Status(ctx)
	if err != nil {
		return DRBDFacts{Error: err.Error()}
	}
	return DRBDFacts{Status: &st}
}

func (c Collectors) mysql(ctx context.Context) MySQLFacts {
	if c.MySQL == nil {
		return MySQLFacts{Error: "no MySQL prober"}
	}
	return c.MySQL.Probe(ctx)
}

func (c Collectors) rabbitmq(ctx context.Context) RabbitMQFacts {
	// Three rabbitmqctl calls, each a whole Erlang VM (about a second on a
	// controller, 11-15 s in a lab node): run together, not one after the
	// other, within the collector's time.
	type result struct {
		out []byte
		err error
	}
	calls := [][]string{
		{"-q", "cluster_status", "--formatter", "json"},
		{"-q", "list_policies", "--formatter", "json"},
		append(append([]string{"-q", "list_queues"}, rabbitmq.QueueColumns...), "--formatter", "json"),
	}
	results := make([]result, len(calls))
	var wg sync.WaitGroup
	for i, args := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := c.Run.Run(ctx, "rabbitmqctl", args...)
			results[i] = result{out, err}
		}()
	}
	wg.Wait()
	var f RabbitMQFacts
	if err := results[0].err; err != nil {
		return RabbitMQFacts{Error: err.Error()}
	}
	cs, err := rabbitmq.ParseClusterStatus(results[0].out)
	if err != nil {
		return RabbitMQFacts{Error: err.Error()}
	}
	f.Cluster = &cs
	var errs []string
	if r := results[1]; r.err != nil {
		errs = append(errs, r.err.Error())
	} else if f.Policies, err = rabbitmq.ParsePolicies(r.out); err != nil {
		errs = append(errs, err.Error())
	}
	if r := results[2]; r.err != nil {
		errs = append(errs, r.err.Error())
	} else if f.Queues, err = rabbitmq.ParseQueues(r.out); err != nil {
		errs = append(errs, err.Error())
	}
	f.Error = strings.Join(errs, "; ")
	return f
}

func (c Collectors) vip(ctx context.Context) VIPFacts {
	f := VIPFacts{Address: c.Expect.VIP}
	out, err := c.Run.Run(ctx, "ip", "-o", "-4", "addr", "show")
	if err != nil {
		f.Error = err.Error()
		return f
	}
	f.HeldHere = hasAddress(out, c.Expect.VIP)
	return f
}

// hasAddress reports whether `ip -o -4 addr show` lists addr on an
// interface ("2: eth0    inet 192.0.2.10/24 brd ... scope global eth0").
func hasAddress(out []byte, addr string) bool {
	if addr == "" {
		return false
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet" {
				a, _, _ := strings.Cut(f[i+1], "/")
				if a == addr {
					return true
				}
			}
		}
	}
	return false
}

func (c Collectors) backup(ctx context.Context) BackupFacts {
	if c.Backup == nil {
		return BackupFacts{Error: "no backup reader"}
	}
	f, err := c.Backup.LastBackup(ctx)
	if err != nil {
		f.Error = err.Error()
	}
	return f
}

func (c Collectors) fencing(ctx context.Context) FencingFacts {
	if c.Fence == nil {
		return FencingFacts{}
	}
	return c.Fence.Probe(ctx)
}

// clockFacts reads this node's synchronisation and measures the peer's clock,
// together.
func (c Collectors) clockFacts(ctx context.Context) ClockFacts {
	f := ClockFacts{Peer: c.Peer}
	var wg sync.WaitGroup
	wg.Go(func() {
		st := clock.ReadSync(ctx, c.Run)
		f.Sync = &st
	})
	if c.PeerAddr != "" {
		off, err := clock.PeerOffset(ctx, c.Run, c.PeerAddr)
		if err != nil {
			f.PeerError = err.Error()
		} else {
			ms := off.Milliseconds()
			f.PeerOffsetMS = &ms
		}
	}
	wg.Wait()
	return f
}

// parsePacemaker turns `crm_mon --output-as=xml` into PacemakerFacts.
func parsePacemaker(data []byte) (PacemakerFacts, error) {
	mon, err := pacemaker.ParseCrmMon(data)
	if err != nil {
		return PacemakerFacts{}, err
	}
	f := PacemakerFacts{Mon: &mon, StonithEnabled: mon.StonithEnabled, TargetRoles: mon.TargetRoles, Fenced: mon.Fenced}
	for _, b := range mon.Bans {
		f.Bans = append(f.Bans, Ban{ID: b.ID, Resource: b.Resource, Node: b.Node, Weight: strconv.Itoa(b.Weight), PromotedOnly: b.PromotedOnly})
	}
	return f, nil
}

// haconfBan reports whether b is one of the constraints haconf's CIB
// itself sets: a fence device avoids the node it fences.
func haconfBan(b Ban) bool { return b.Resource == pacemaker.FenceDevice(b.Node) }
