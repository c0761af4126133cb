package gossip

import (
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/haconf/haconf/internal/testenv"
)

// These tests run real memberlists on loopback addresses, which Linux
// answers on without setup: host h's management pool on 127.0.1.h and its
// storage pool on 127.0.2.h. Each test has its own hosts and port.

// networkTest skips t in -short runs and off Linux, and runs it in parallel
// with the others.
func networkTest(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real memberlists for several seconds: not in -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("needs 127.0.1.x and 127.0.2.x, which only Linux answers on without setup")
	}
	t.Parallel()
}

var testKey = DeriveKey([]byte("gossip test secret"))

// detectWithin is how long the local profile may take to declare a stopped
// member dead (measured: about 5 s).
const detectWithin = 10 * time.Second

func testConfig(domain, name string, role Role, host byte, port uint16) Config {
	return Config{
		Name:   name,
		Domain: domain,
		Role:   role,
		Bind: map[Link]netip.AddrPort{
			Management: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 1, host}), port),
			Storage:    netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 2, host}), port),
		},
		Key:     testKey,
		Profile: "local",
		// The local profile sends each alive message on twice only
		// (RetransmitMult 2), so when members join at the same moment, one
		// may learn of another only at its next push/pull: every 15 s,
		// here every 2 s. Detection times are the profile's.
		tune:  func(c *memberlist.Config) { c.PushPullInterval = 2 * time.Second },
		retry: &retryTiming{min: 100 * time.Millisecond, max: 500 * time.Millisecond, reconnect: time.Second},
	}
}

// seedsOf are the addresses of cfgs' pools, as seeds.
func seedsOf(cfgs ...Config) map[Link][]string {
	s := map[Link][]string{}
	for _, c := range cfgs {
		for _, l := range Links {
			s[l] = append(s[l], c.Bind[l].String())
		}
	}
	return s
}

// member is a running test member with the events it has seen.
type member struct {
	*Pools
	cfg Config

	mu     sync.Mutex
	events []Event
}

// start joins cfg's member and records its events; it is shut down when t ends.
func start(t *testing.T, cfg Config) *member {
	t.Helper()
	p, err := Join(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Join %s: %v", cfg.Name, err)
	}
	m := &member{Pools: p, cfg: cfg}
	go func() {
		for ev := range p.Events() {
			m.mu.Lock()
			m.events = append(m.events, ev)
			m.mu.Unlock()
		}
	}()
	t.Cleanup(func() { p.Shutdown() })
	return m
}

// seen returns the first event m recorded that matches f.
func (m *member) seen(f func(Event) bool) (Event, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ev := range m.events {
		if f(ev) {
			return ev, true
		}
	}
	return Event{}, false
}

// await waits up to d for an event that matches f.
func (m *member) await(t *testing.T, d time.Duration, what string, f func(Event) bool) Event {
	t.Helper()
	var ev Event
	eventually(t, d, fmt.Sprintf("%s: %s", m.cfg.Name, what), func() bool {
		var ok bool
		ev, ok = m.seen(f)
		return ok
	})
	return ev
}

// eventually fails t unless cond holds within d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: not %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// allSee waits until every member sees n alive members on both links.
func allSee(t *testing.T, n int, members ...*member) {
	t.Helper()
	for _, m := range members {
		for _, l := range Links {
			eventually(t, 10*time.Second, fmt.Sprintf("%s sees %d members on %s", m.cfg.Name, n, l), func() bool {
				return m.Members(l) == n
			})
		}
	}
}

func linkEvent(name string, l Link, alive bool, after time.Time) func(Event) bool {
	return func(ev Event) bool {
		return ev.Name == name && ev.Link == l && ev.Alive == alive && !ev.At.Before(after)
	}
}

func TestLinkLossThenHostLoss(t *testing.T) {
	networkTest(t)
	const domain, port = "rack1", 27101
	ctlCfg := testConfig(domain, "ctl", RoleController, 10, port)
	var agentCfgs []Config
	for i := range 5 {
		c := testConfig(domain, fmt.Sprintf("host%d", i+1), RoleAgent, byte(i+1), port)
		c.Seeds = seedsOf(ctlCfg)
		agentCfgs = append(agentCfgs, c)
	}
	ctlCfg.Seeds = seedsOf(agentCfgs[0])

	ctl := start(t, ctlCfg)
	members := []*member{ctl}
	for _, c := range agentCfgs {
		members = append(members, start(t, c))
	}
	allSee(t, 6, members...)
	for _, m := range members {
		v := m.View()
		if len(v) != 6 {
			t.Fatalf("%s's view has %d members, want 6: %v", m.cfg.Name, len(v), slices.Sorted(maps.Keys(v)))
		}
		for name, mb := range v {
			for _, l := range Links {
				if !mb.Links[l].Alive {
					t.Errorf("%s sees %s not alive on %s", m.cfg.Name, name, l)
				}
			}
		}
	}
	if r := ctl.View()["host3"].Role; r != RoleAgent {
		t.Errorf("ctl sees host3's role %q, want %q", r, RoleAgent)
	}
	if r := members[3].View()["ctl"].Role; r != RoleController {
		t.Errorf("host3 sees ctl's role %q, want %q", r, RoleController)
	}

	victim, observers := members[1], slices.Delete(slices.Clone(members), 1, 2)
	name := victim.cfg.Name

	cut := time.Now()
	if err := victim.Shut(Storage); err != nil {
		t.Fatal(err)
	}
	if victim.Members(Storage) != 0 || victim.Members(Management) != 6 {
		t.Errorf("after Shut(storage) %s has %d storage and %d management members, want 0 and 6",
			name, victim.Members(Storage), victim.Members(Management))
	}
	var slowest time.Duration
	for _, o := range observers {
		ev := o.await(t, detectWithin, name+" dead on storage", linkEvent(name, Storage, false, cut))
		if ev.Left {
			t.Errorf("%s sees %s's storage link as left, want failed", o.cfg.Name, name)
		}
		t.Logf("storage link cut: %s saw %s dead after %s", o.cfg.Name, name, ev.At.Sub(cut).Round(10*time.Millisecond))
		slowest = max(slowest, ev.At.Sub(cut))
	}
	t.Logf("storage link cut: all 5 saw it within %s", slowest.Round(10*time.Millisecond))
	time.Sleep(time.Second) // time for a wrong management verdict to show
	for _, o := range observers {
		if _, ok := o.seen(linkEvent(name, Management, false, cut)); ok {
			t.Errorf("%s saw %s dead on management after the storage cut", o.cfg.Name, name)
		}
		links := o.View()[name].Links
		if !links[Management].Alive || links[Storage].Alive || links[Storage].Left {
			t.Errorf("%s's view of %s after the storage cut: %+v", o.cfg.Name, name, links)
		}
		if got := o.Members(Storage); got != 5 {
			t.Errorf("%s has %d storage members, want 5", o.cfg.Name, got)
		}
	}

	crash := time.Now()
	if err := victim.Shutdown(); err != nil {
		t.Fatal(err)
	}
	slowest = 0
	for _, o := range observers {
		ev := o.await(t, detectWithin, name+" dead on management", linkEvent(name, Management, false, crash))
		t.Logf("host crash: %s saw %s dead on management after %s", o.cfg.Name, name, ev.At.Sub(crash).Round(10*time.Millisecond))
		slowest = max(slowest, ev.At.Sub(crash))
	}
	t.Logf("host crash: all 5 saw it within %s", slowest.Round(10*time.Millisecond))
	for _, l := range Links {
		if ls := ctl.View()[name].Links[l]; ls.Alive || ls.Left {
			t.Errorf("ctl's view of %s on %s after the crash: %+v", name, l, ls)
		}
	}
}

func TestOtherDomainAndWrongKeyNeverSeen(t *testing.T) {
	networkTest(t)
	const port = 27201
	var logs testenv.SyncBuffer
	a1Cfg := testConfig("rack-a", "a1", RoleController, 21, port)
	a1Cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a2Cfg := testConfig("rack-a", "a2", RoleAgent, 22, port)
	a2Cfg.Seeds = seedsOf(a1Cfg)
	otherDomain := testConfig("rack-b", "b1", RoleAgent, 23, port)
	otherDomain.Seeds = seedsOf(a1Cfg, a2Cfg)
	wrongKey := testConfig("rack-a", "w1", RoleAgent, 24, port)
	wrongKey.Seeds = seedsOf(a1Cfg, a2Cfg)
	wrongKey.Key = DeriveKey([]byte("another secret"))

	a1, a2 := start(t, a1Cfg), start(t, a2Cfg)
	b1, w1 := start(t, otherDomain), start(t, wrongKey)
	allSee(t, 2, a1, a2)
	time.Sleep(2 * time.Second) // b1 and w1 keep retrying their seeds meanwhile

	for _, c := range []struct {
		m    *member
		want []string
	}{
		{a1, []string{"a1", "a2"}},
		{a2, []string{"a1", "a2"}},
		{b1, []string{"b1"}},
		{w1, []string{"w1"}},
	} {
		if got := slices.Sorted(maps.Keys(c.m.View())); !slices.Equal(got, c.want) {
			t.Errorf("%s's view: %v, want %v", c.m.cfg.Name, got, c.want)
		}
		for _, l := range Links {
			if got := c.m.Members(l); got != len(c.want) {
				t.Errorf("%s has %d members on %s, want %d", c.m.cfg.Name, got, l, len(c.want))
			}
		}
	}
	// a1 refused their streams, and said so to its logger at debug level.
	out := logs.String()
	for _, want := range []string{
		`level=DEBUG msg=memberlist domain=rack-a link=management severity=ERR text="discarding stream with unacceptable label \"haconf/rack-b/management\"`,
		`level=DEBUG msg=memberlist domain=rack-a link=storage severity=ERR text="failed to receive: no installed keys could decrypt the message`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("a1 did not log %s; it logged:\n%s", want, out)
		}
	}
}

func TestSeedsDownAtStart(t *testing.T) {
	networkTest(t)
	const port = 27301
	t.Run("agent before controller", func(t *testing.T) {
		ctlCfg := testConfig("rack-c", "ctl", RoleController, 31, port)
		agentCfg := testConfig("rack-c", "host1", RoleAgent, 32, port)
		agentCfg.Seeds = seedsOf(ctlCfg)
		agent := start(t, agentCfg)
		time.Sleep(600 * time.Millisecond)
		allSee(t, 1, agent)
		ctl := start(t, ctlCfg) // no seeds: the agent's retries find it
		allSee(t, 2, agent, ctl)
	})
	t.Run("controller before agent", func(t *testing.T) {
		ctlCfg := testConfig("rack-d", "ctl", RoleController, 33, port)
		agentCfg := testConfig("rack-d", "host1", RoleAgent, 34, port)
		ctlCfg.Seeds = seedsOf(agentCfg)
		ctl := start(t, ctlCfg)
		time.Sleep(600 * time.Millisecond)
		allSee(t, 1, ctl)
		agent := start(t, agentCfg) // no seeds: the controller's retries find it
		allSee(t, 2, agent, ctl)
	})
}

func TestRejoinAfterCrash(t *testing.T) {
	networkTest(t)
	const port = 27401
	ctlCfg := testConfig("rack-e", "ctl", RoleController, 41, port)
	h1Cfg := testConfig("rack-e", "host1", RoleAgent, 42, port)
	h2Cfg := testConfig("rack-e", "host2", RoleAgent, 43, port)
	h1Cfg.Seeds, h2Cfg.Seeds = seedsOf(ctlCfg), seedsOf(ctlCfg)
	ctl, h1, h2 := start(t, ctlCfg), start(t, h1Cfg), start(t, h2Cfg)
	allSee(t, 3, ctl, h1, h2)

	crash := time.Now()
	h1.Shutdown()
	for _, l := range Links {
		ev := ctl.await(t, detectWithin, "host1 dead on "+string(l), linkEvent("host1", l, false, crash))
		t.Logf("crash: ctl saw host1 dead on %s after %s", l, ev.At.Sub(crash).Round(10*time.Millisecond))
	}

	restart := time.Now()
	start(t, h1Cfg)
	for _, l := range Links {
		ev := ctl.await(t, 5*time.Second, "host1 alive again on "+string(l), linkEvent("host1", l, true, restart))
		t.Logf("restart: ctl saw host1 alive on %s after %s", l, ev.At.Sub(restart).Round(10*time.Millisecond))
		if ls := ctl.View()["host1"].Links[l]; !ls.Alive || ls.Since.Before(restart) {
			t.Errorf("ctl's view of host1 on %s after the restart: %+v", l, ls)
		}
	}
	allSee(t, 3, ctl, h2)
}

func TestHealthThenLeave(t *testing.T) {
	networkTest(t)
	const port = 27501
	ctlCfg := testConfig("rack-f", "ctl", RoleController, 51, port)
	agentCfg := testConfig("rack-f", "host1", RoleAgent, 52, port)
	otherCfg := testConfig("rack-f", "host2", RoleAgent, 53, port)
	agentCfg.Seeds, otherCfg.Seeds = seedsOf(ctlCfg), seedsOf(ctlCfg)
	ctl, agent, other := start(t, ctlCfg), start(t, agentCfg), start(t, otherCfg)
	allSee(t, 3, ctl, agent, other)

	libvirt := false
	h := Health{NovaCompute: true, Libvirt: &libvirt, Maintenance: true, Checked: time.Now()}
	set := time.Now()
	if err := agent.SetHealth(h); err != nil {
		t.Fatal(err)
	}
	sameHealth := func(got Health) bool {
		return got.NovaCompute && got.Libvirt != nil && !*got.Libvirt && got.Maintenance && got.Checked.Equal(h.Checked)
	}
	for _, l := range Links {
		ev := ctl.await(t, 5*time.Second, "host1's health on "+string(l), func(ev Event) bool {
			return ev.Name == "host1" && ev.Link == l && ev.Alive && sameHealth(ev.Health)
		})
		t.Logf("health: ctl saw it on %s after %s", l, ev.At.Sub(set).Round(10*time.Millisecond))
		if ev.Role != RoleAgent || ev.Domain != "rack-f" {
			t.Errorf("health event: %+v", ev)
		}
	}
	if got := ctl.View()["host1"]; !sameHealth(got.Health) || got.Role != RoleAgent {
		t.Errorf("ctl's view of host1: %+v, want health %+v", got, h)
	}

	leave := time.Now()
	if err := agent.Leave(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("Leave took %s", time.Since(leave).Round(10*time.Millisecond))
	eventually(t, time.Second, "Events closed after Leave", func() bool {
		select {
		case _, open := <-agent.Events(): // start's reader drains it too
			return !open
		default:
			return false
		}
	})
	for _, o := range []*member{ctl, other} {
		for _, l := range Links {
			ev := o.await(t, 5*time.Second, "host1 left "+string(l), linkEvent("host1", l, false, leave))
			if !ev.Left {
				t.Errorf("%s saw host1 fail on %s, want left: %+v", o.cfg.Name, l, ev)
			}
			t.Logf("leave: %s saw host1 leave %s after %s", o.cfg.Name, l, ev.At.Sub(leave).Round(10*time.Millisecond))
			if ls := o.View()["host1"].Links[l]; ls.Alive || !ls.Left {
				t.Errorf("%s's view of host1 on %s after Leave: %+v", o.cfg.Name, l, ls)
			}
		}
	}
	if v := agent.View()["host1"].Links; !v[Management].Left || !v[Storage].Left {
		t.Errorf("host1's view of itself after Leave: %+v", v)
	}
}

// A member that comes back without seeds is found by the others, which keep
// trying the members they saw fail.
func TestReconnectToFailedMember(t *testing.T) {
	networkTest(t)
	const port = 27601
	ctlCfg := testConfig("rack-g", "ctl", RoleController, 61, port)
	h1Cfg := testConfig("rack-g", "host1", RoleAgent, 62, port)
	h2Cfg := testConfig("rack-g", "host2", RoleAgent, 63, port)
	h1Cfg.Seeds, h2Cfg.Seeds = seedsOf(ctlCfg), seedsOf(ctlCfg)
	ctl, h1, h2 := start(t, ctlCfg), start(t, h1Cfg), start(t, h2Cfg)
	allSee(t, 3, ctl, h1, h2)

	crash := time.Now()
	h2.Shutdown()
	for _, l := range Links {
		ctl.await(t, detectWithin, "host2 dead on "+string(l), linkEvent("host2", l, false, crash))
	}
	restart := time.Now()
	h2Cfg.Seeds = nil
	h2 = start(t, h2Cfg)
	for _, l := range Links {
		ev := ctl.await(t, 5*time.Second, "host2 alive again on "+string(l), linkEvent("host2", l, true, restart))
		t.Logf("ctl found host2 again on %s after %s", l, ev.At.Sub(restart).Round(10*time.Millisecond))
	}
	allSee(t, 3, ctl, h1, h2)
}

// countingTransport counts the packets a pool sends through it and
// whether memberlist shut it down.
type countingTransport struct {
	memberlist.NodeAwareTransport
	mu       sync.Mutex
	sent     int
	shutdown bool
}

func (c *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	c.mu.Lock()
	c.sent++
	c.mu.Unlock()
	return c.NodeAwareTransport.WriteToAddress(b, a)
}

func (c *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	c.mu.Lock()
	c.sent++
	c.mu.Unlock()
	return c.NodeAwareTransport.WriteTo(b, addr)
}

func (c *countingTransport) Shutdown() error {
	c.mu.Lock()
	c.shutdown = true
	c.mu.Unlock()
	return c.NodeAwareTransport.Shutdown()
}

func (c *countingTransport) state() (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent, c.shutdown
}

// WrapTransport's transports carry each pool's packets, on the pool's own
// address, and are shut down with the pool.
func TestWrapTransport(t *testing.T) {
	networkTest(t)
	const port = 27701
	ctlCfg := testConfig("rack-h", "ctl", RoleController, 71, port)
	hostCfg := testConfig("rack-h", "host1", RoleAgent, 72, port)
	hostCfg.Seeds = seedsOf(ctlCfg)
	var mu sync.Mutex
	wrapped := map[Link]*countingTransport{}
	hostCfg.WrapTransport = func(l Link, t memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
		mu.Lock()
		defer mu.Unlock()
		wrapped[l] = &countingTransport{NodeAwareTransport: t}
		return wrapped[l]
	}
	ctl, host := start(t, ctlCfg), start(t, hostCfg)
	allSee(t, 2, ctl, host)
	mu.Lock()
	if len(wrapped) != 2 {
		t.Fatalf("wrapped %d transports, want one per link", len(wrapped))
	}
	mu.Unlock()
	for _, l := range Links {
		if got, want := ctl.View()["host1"].Links[l].Addr, hostCfg.Bind[l].String(); got != want {
			t.Errorf("ctl reaches host1's %s pool on %s, want %s", l, got, want)
		}
		eventually(t, 5*time.Second, "host1 sends packets on "+string(l), func() bool {
			sent, _ := wrapped[l].state()
			return sent > 0
		})
	}

	if err := host.Shut(Storage); err != nil {
		t.Fatal(err)
	}
	if _, down := wrapped[Storage].state(); !down {
		t.Error("Shut(storage) left its transport open")
	}
	if _, down := wrapped[Management].state(); down {
		t.Error("Shut(storage) shut the management transport")
	}
	if err := host.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, down := wrapped[Management].state(); !down {
		t.Error("Shutdown left the management transport open")
	}
}
