package gossip

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/haconf/haconf/internal/validate"
)

const (
	// eventBuffer is how many events wait for a slow reader before the
	// next ones are dropped: a domain's worth of joins on both links.
	eventBuffer = 1024
	// updateTimeout bounds SetHealth's wait for its broadcast to go out.
	updateTimeout = 5 * time.Second
	// defaultLeaveTimeout is Leave's when it is given none.
	defaultLeaveTimeout = 5 * time.Second
)

// Pools is one member's pair of memberlists (one per Link) in one domain.
// Each memberlist's Label is "haconf/<domain>/<link>", so a packet of the
// other network's or another domain's pool is refused.
type Pools struct {
	name, domain string
	role         Role
	log          *slog.Logger
	pools        map[Link]*pool // set by Join, not changed after
	meta         atomic.Pointer[[]byte]
	events       chan Event
	dropped      atomic.Uint64

	healthMu  sync.Mutex // serialises SetHealth
	published *Health    // the health last advertised by SetHealth
	updates   atomic.Int64

	mu      sync.Mutex // guards the fields below
	view    map[string]*Member
	leaving map[Link]map[string]bool // peers' notices that they are leaving, until they are gone
	closed  bool                     // events is closed
}

// pool is one link's memberlist.
type pool struct {
	link   Link
	ml     *memberlist.Memberlist
	stop   context.CancelFunc // ends keepJoined
	joiner chan struct{}      // closed when keepJoined has returned

	mu   sync.Mutex // serialises leave, update and shutdown: memberlist panics on a Leave after Shutdown
	down atomic.Bool
}

// Join binds both pools of cfg's member and starts joining the seeds in the
// background: it returns once both are bound, and a pool whose seeds are down
// keeps trying them with backoff (see keepJoined) until Leave or Shutdown;
// ctx is for the call only. Events and View include this member itself.
func Join(ctx context.Context, cfg Config) (*Pools, error) {
	v := validate.New("gossip")
	cfg.Validate(v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg.Key = bytes.Clone(cfg.Key)
	p := newPools(cfg, eventBuffer)
	retry := defaultRetry
	if cfg.retry != nil {
		retry = *cfg.retry
	}
	for _, l := range Links {
		mc := p.memberlistConfig(cfg, l)
		if cfg.WrapTransport != nil {
			if err := wrapTransport(mc, cfg.WrapTransport, l); err != nil {
				p.Shutdown()
				return nil, fmt.Errorf("gossip %s pool on %s: %w", l, cfg.Bind[l], err)
			}
		}
		ml, err := memberlist.Create(mc)
		if err != nil {
			if mc.Transport != nil {
				mc.Transport.Shutdown()
			}
			p.Shutdown()
			return nil, fmt.Errorf("gossip %s pool on %s: %w", l, cfg.Bind[l], err)
		}
		jctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		pl := &pool{link: l, ml: ml, stop: stop, joiner: make(chan struct{})}
		p.pools[l] = pl
		go func() {
			defer close(pl.joiner)
			p.keepJoined(jctx, pl, seeds(cfg, l), retry)
		}()
	}
	return p, nil
}

// newPools is cfg's member with no pool yet, an empty view and zero Health.
func newPools(cfg Config, buffer int) *Pools {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Pools{
		name:    cfg.Name,
		domain:  cfg.Domain,
		role:    cfg.Role,
		log:     logger.With("domain", cfg.Domain),
		pools:   map[Link]*pool{},
		events:  make(chan Event, buffer),
		view:    map[string]*Member{},
		leaving: map[Link]map[string]bool{},
	}
	for _, l := range Links {
		p.leaving[l] = map[string]bool{}
	}
	if err := p.setMeta(Health{}); err != nil {
		panic(err) // a zero Health's meta is far under memberlist's limit
	}
	return p
}

// seeds are cfg's seeds on link l but its own address.
func seeds(cfg Config, l Link) []string {
	var s []string
	for _, a := range cfg.Seeds[l] {
		if a != cfg.Bind[l].String() {
			s = append(s, a)
		}
	}
	return s
}

// setMeta makes h, with this member's role, the node meta both pools
// advertise from their next alive message.
func (p *Pools) setMeta(h Health) error {
	b, err := json.Marshal(meta{Role: p.role, Health: h})
	if err != nil {
		return fmt.Errorf("gossip node meta: %w", err)
	}
	if len(b) > memberlist.MetaMaxSize {
		return fmt.Errorf("gossip node meta is %d bytes, memberlist allows %d", len(b), memberlist.MetaMaxSize)
	}
	p.meta.Store(&b)
	return nil
}

// ErrBroadcastPending: SetHealth set the health, but its broadcast had not
// gone out within a few seconds (memberlist's UpdateNode timed out, as
// it does when the process is short of CPU). The health is this member's
// state all the same: memberlist's gossip sends it on, and its push/pull
// exchanges give it to any member that missed it. Not worth a warning.
var ErrBroadcastPending = errors.New("health set; its broadcast is still queued")

// SetHealth advertises h on both pools (memberlist's UpdateNode) when it
// says something else of the host than the health advertised last
// (Checked aside), waiting a few seconds at most for each broadcast to go
// out; the others see it as an Alive event with the new Health. An
// unchanged health is not advertised again: each advertisement is a
// broadcast to the whole domain (at 100 agents calling it every 5 s,
// 3,694 broadcasts in 5 minutes, 60 of which timed out, bench/compute-
// scale), and memberlist's push/pull exchanges (every 30 s with the lan
// profile) bring the current one to any member that missed it or joins
// later. A broadcast that timed out is ErrBroadcastPending.
func (p *Pools) SetHealth(h Health) error {
	p.healthMu.Lock()
	defer p.healthMu.Unlock()
	if p.published != nil && p.published.Same(h) {
		return nil
	}
	if err := p.setMeta(h); err != nil {
		return err
	}
	h = h.clone()
	p.published = &h
	p.updates.Add(1)
	return p.each(func(pl *pool) error {
		pl.mu.Lock()
		defer pl.mu.Unlock()
		if pl.down.Load() {
			return nil
		}
		// UpdateNode fails only when the broadcast did not go out in
		// time (the meta's size is checked by setMeta); the new state is
		// this member's already.
		if err := pl.ml.UpdateNode(updateTimeout); err != nil {
			return fmt.Errorf("gossip %s pool: health update: %w (%v)", pl.link, ErrBroadcastPending, err)
		}
		return nil
	})
}

// Events returns the channel of every member's changes (see Event), closed
// by Shutdown and Leave. It is buffered and never blocks memberlist's
// goroutines: when the reader falls behind and the buffer is full, events are
// dropped and counted (Dropped); View is always complete.
func (p *Pools) Events() <-chan Event { return p.events }

// Dropped is how many events a slow reader lost.
func (p *Pools) Dropped() uint64 { return p.dropped.Load() }

// Members is the number of alive members on link l, this one included; 0
// once that pool is stopped.
func (p *Pools) Members(l Link) int {
	pl := p.pools[l]
	if pl == nil || pl.down.Load() {
		return 0
	}
	return pl.ml.NumMembers()
}

// Leave leaves both pools gracefully, then shuts them down; timeout (5 s when
// not positive) bounds each pool's leave. The others see this member as
// having left (LinkState.Left), not as failed: it first tells each of them so
// directly (memberlist's own leave message does not say it, see notice),
// then broadcasts memberlist's leave.
func (p *Pools) Leave(timeout time.Duration) error {
	if timeout <= 0 {
		timeout = defaultLeaveTimeout
	}
	err := p.each(func(pl *pool) error {
		pl.mu.Lock()
		defer pl.mu.Unlock()
		if pl.down.Load() {
			return nil
		}
		deadline := time.Now().Add(timeout)
		p.tellLeaving(pl, timeout/2)
		if err := pl.ml.Leave(max(time.Until(deadline), time.Millisecond)); err != nil {
			return fmt.Errorf("gossip %s pool: leave: %w", pl.link, err)
		}
		return nil
	})
	return errors.Join(err, p.Shutdown())
}

// tellLeaving sends every peer alive on pl's link the notice that this member
// is leaving, over TCP, and waits for the sends at most wait.
func (p *Pools) tellLeaving(pl *pool, wait time.Duration) {
	msg, err := json.Marshal(notice{Leaving: p.name})
	if err != nil {
		return
	}
	peers := p.peers(pl.link, true)
	done := make(chan struct{}, len(peers))
	for _, n := range peers {
		go func() {
			if err := pl.ml.SendReliable(n, msg); err != nil {
				p.log.Debug("leave notice not sent", "link", pl.link, "member", n.Name, "err", err)
			}
			done <- struct{}{}
		}()
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for range peers {
		select {
		case <-done:
		case <-timer.C:
			return
		}
	}
}

// peers are the other members this one saw on link l, alive or failed (not
// left), as memberlist nodes to send to or join.
func (p *Pools) peers(l Link, alive bool) []*memberlist.Node {
	p.mu.Lock()
	defer p.mu.Unlock()
	var nodes []*memberlist.Node
	for name, m := range p.view {
		ls, ok := m.Links[l]
		if name == p.name || !ok || ls.Alive != alive || ls.Left {
			continue
		}
		ap, err := netip.ParseAddrPort(ls.Addr)
		if err != nil {
			continue
		}
		nodes = append(nodes, &memberlist.Node{Name: name, Addr: net.IP(ap.Addr().AsSlice()), Port: ap.Port()})
	}
	return nodes
}

// Shutdown stops both pools without a word, as a crash would: the others
// declare this member dead on both links. Events is closed.
func (p *Pools) Shutdown() error {
	err := p.each((*pool).shutdown)
	for _, l := range Links {
		p.selfDown(l)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.events)
	}
	return err
}

// Shut stops link l's pool without a word, as a cut link would (tests, and
// the lab's link cut without network namespaces): the others declare this
// member dead on that link only. The pool does not come back: to restore the
// link, Shutdown and Join again.
func (p *Pools) Shut(l Link) error {
	pl := p.pools[l]
	if pl == nil {
		return fmt.Errorf("gossip: no %q pool", l)
	}
	err := pl.shutdown()
	p.selfDown(l)
	return err
}

// shutdown stops the pool and its joiner; a joiner in the middle of a join
// attempt can take one TCP timeout to notice.
func (pl *pool) shutdown() error {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.down.Load() {
		return nil
	}
	pl.down.Store(true)
	pl.stop()
	err := pl.ml.Shutdown()
	<-pl.joiner
	if err != nil {
		return fmt.Errorf("gossip %s pool: shutdown: %w", pl.link, err)
	}
	return nil
}

// each runs f on both pools at once (those Join created) and joins the errors.
func (p *Pools) each(f func(*pool) error) error {
	errs := make([]error, len(Links))
	var wg sync.WaitGroup
	for i, l := range Links {
		if pl := p.pools[l]; pl != nil {
			wg.Go(func() { errs[i] = f(pl) })
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}
