package gossip

import (
	"encoding/json"
	"time"

	"github.com/hashicorp/memberlist"
)

// Health is what an agent says of its host, carried in its memberlist node
// meta (about 150 bytes as JSON, far under memberlist's 512-byte
// MetaMaxSize). A zero Checked means the agent has not reported yet;
// otherwise it is when the agent published this health (SetHealth: when
// it changed), not when it last looked.
type Health struct {
	NovaCompute bool      `json:"nova_compute"`
	Libvirt     *bool     `json:"libvirt,omitempty"`
	Maintenance bool      `json:"maintenance,omitempty"`
	Checked     time.Time `json:"checked"`
}

// Same reports whether h and o say the same of the host, Checked aside.
func (h Health) Same(o Health) bool {
	sameLibvirt := (h.Libvirt == nil) == (o.Libvirt == nil) && (h.Libvirt == nil || *h.Libvirt == *o.Libvirt)
	return h.NovaCompute == o.NovaCompute && h.Maintenance == o.Maintenance && sameLibvirt
}

func (h Health) clone() Health {
	if h.Libvirt != nil {
		v := *h.Libvirt
		h.Libvirt = &v
	}
	return h
}

// Event is a change in one member's state on one link, as this member's pool
// saw it: the member joined or became alive again (Alive), its Health changed
// (Alive, again), it was declared dead (after SWIM's suspicion, i.e. confirmed
// by indirect probes) or it left (Left). This member is in the events too.
type Event struct {
	Domain, Name string
	Role         Role
	Link         Link
	Alive        bool
	// Left: a graceful leave (a host shut down cleanly), not a failure;
	// Alive is false.
	Left   bool
	At     time.Time
	Health Health
}

// Member is what this member knows of another (or of itself) in the domain.
type Member struct {
	Name, Domain string
	Role         Role
	// Links holds the links the member was ever seen on; a link it never
	// joined is absent.
	Links map[Link]LinkState
	// Health is the last the member reported on either link: after a
	// restart, a zero Health until its agent reports again.
	Health Health
}

// LinkState is a member's state on one link.
type LinkState struct {
	Alive bool
	Since time.Time // when Alive last changed (or the member was first seen)
	Addr  string    // host:port of its pool on that link
	Left  bool      // graceful leave (a host shut down cleanly), not a failure
}

// meta is a member's memberlist node meta, the same on both pools.
type meta struct {
	Role   Role   `json:"role"`
	Health Health `json:"health"`
}

// notice is the user message a leaving member sends each peer before it
// leaves: memberlist's NotifyLeave does not say whether a member left or
// failed (Node.State is never set, hashicorp/memberlist#293), so the peer
// remembers the notice until the member is gone.
type notice struct {
	Leaving string `json:"leaving"`
}

// observe records what link l's pool says of node n and sends the event. It
// runs on memberlist's goroutines, under its node lock, so it never calls
// back into memberlist.
func (p *Pools) observe(l Link, n *memberlist.Node, alive bool) {
	var md meta
	if err := json.Unmarshal(n.Meta, &md); err != nil {
		p.log.Debug("member meta unreadable", "link", l, "member", n.Name, "err", err)
	}
	now := time.Now()

	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.view[n.Name]
	if m == nil {
		m = &Member{Name: n.Name, Domain: p.domain, Links: map[Link]LinkState{}}
		p.view[n.Name] = m
	}
	if md.Role != "" {
		m.Role = md.Role
	}
	if alive { // a dead link's meta may be older than the other link's
		m.Health = md.Health
	}
	ls, seen := m.Links[l]
	if !seen || ls.Alive != alive {
		ls.Since = now
	}
	left := !alive && (n.Name == p.name || p.leaving[l][n.Name]) // a member only declares itself dead by leaving
	if !alive || !ls.Alive {
		delete(p.leaving[l], n.Name)
	}
	ls.Alive, ls.Left, ls.Addr = alive, left, n.Address()
	m.Links[l] = ls

	if p.closed {
		return
	}
	ev := Event{Domain: p.domain, Name: n.Name, Role: m.Role, Link: l, Alive: alive, Left: left, At: now, Health: md.Health}
	// Never block memberlist: a reader that falls behind loses events
	// (counted by Dropped) and must catch up from View.
	select {
	case p.events <- ev:
	default:
		p.dropped.Add(1)
	}
}

// noticed records a peer's notice that it is leaving link l's pool.
func (p *Pools) noticed(l Link, msg []byte) {
	var n notice
	if err := json.Unmarshal(msg, &n); err != nil || n.Leaving == "" {
		p.log.Debug("unknown gossip message", "link", l, "len", len(msg))
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.leaving[l][n.Leaving] = true
}

// View returns every member ever seen in this domain (this one included), by name.
func (p *Pools) View() map[string]Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := make(map[string]Member, len(p.view))
	for name, m := range p.view {
		c := *m
		c.Health = m.Health.clone()
		c.Links = make(map[Link]LinkState, len(m.Links))
		for l, ls := range m.Links {
			c.Links[l] = ls
		}
		v[name] = c
	}
	return v
}

// selfDown marks this member not alive on link l in its own view (its pool
// there was stopped; memberlist tells no one, not even this member).
func (p *Pools) selfDown(l Link) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m := p.view[p.name]; m != nil {
		if ls := m.Links[l]; ls.Alive {
			ls.Alive, ls.Since = false, time.Now()
			m.Links[l] = ls
		}
	}
}
