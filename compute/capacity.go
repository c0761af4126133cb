package compute

import (
	"context"
	"sync"
	"time"

	"github.com/haconf/haconf/compute/nova"
)

// capacityFresh is how old a read of Nova's services and Placement's
// providers a plan takes: incidents that plan within it share one read,
// and a read started when an incident opens (beside its fence) serves
// its first plan.
const capacityFresh = 10 * time.Second

// landedKept is how long a claim is kept after its server was seen on
// its target: a plan whose read started before that may not count the
// allocation yet, and counts the claim instead.
const landedKept = 5 * time.Minute

// capacityRead is one read of Nova's compute services and Placement's
// providers, shared by the plans that want it.
type capacityRead struct {
	started time.Time
	done    chan struct{} // closed when svcs, provs and err are set
	svcs    []nova.Service
	provs   []nova.Provider
	err     error
}

// claim is a target an incident chose for a server: the server's size is
// taken from the target's free capacity in every plan, of every
// incident, until Placement shows the allocation there.
type claim struct {
	host string
	size Resources
	// landed is when the controller saw the server on another host than
	// the failed one; Placement holds its allocation there since before.
	landed time.Time
}

// capacity is the controller's one account of where instances can go:
// the last read, and the claims of every incident (the ledger). Without
// the ledger each incident planned alone, from its own read, and
// concurrent incidents chose the same emptiest hosts: with a rack of 20
// hosts failing, the scheduler refused 73 targets for want of room and 2
// of 400 servers were not moved (bench/compute-scale).
type capacity struct {
	read   *capacityRead
	claims map[string]claim // by server ID
}

// readCapacity returns a read of the services and providers started at
// or after notBefore: the last one (waiting for it if it is under way) or
// a new one.
func (c *Controller) readCapacity(ctx context.Context, notBefore time.Time) (*capacityRead, error) {
	c.mu.Lock()
	r := c.capacity.read
	if r == nil || r.started.Before(notBefore) {
		r = &capacityRead{started: c.now(), done: make(chan struct{})}
		c.capacity.read = r
		c.mu.Unlock()
		r.svcs, r.err = c.Nova.ComputeServices(ctx)
		if r.err == nil {
			r.provs, r.err = c.Nova.Providers(ctx)
		}
		if r.err != nil {
			// The next plan reads again rather than share a failure.
			c.mu.Lock()
			if c.capacity.read == r {
				c.capacity.read = nil
			}
			c.mu.Unlock()
		}
		close(r.done)
		return r, r.err
	}
	c.mu.Unlock()
	select {
	case <-r.done:
		return r, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// prefetchCapacity starts a read unless one started within capacityFresh:
// an incident that opens has it by the time it plans (fencing, isolating
// and listing its servers take a few seconds; the read, at 1,000 hosts,
// about one).
func (c *Controller) prefetchCapacity(ctx context.Context, wg *sync.WaitGroup) {
	c.mu.Lock()
	r := c.capacity.read
	c.mu.Unlock()
	if r != nil && c.now().Sub(r.started) < capacityFresh {
		return
	}
	wg.Go(func() {
		if _, err := c.readCapacity(ctx, c.now().Add(-capacityFresh)); err != nil && ctx.Err() == nil {
			c.log().Warn("cannot read the capacity of the compute hosts", "err", err)
		}
	})
}

// claimed takes from targets (free capacity as of a read started at
// readAt) what the claims hold that the read may not count. Called with
// c.mu held.
func (k *capacity) claimed(targets []Target, readAt time.Time) {
	at := map[string]int{}
	for i, t := range targets {
		at[t.Host] = i
	}
	for _, cl := range k.claims {
		i, ok := at[cl.host]
		if !ok || (!cl.landed.IsZero() && cl.landed.Before(readAt)) {
			continue
		}
		targets[i].Free = targets[i].Free.minus(cl.size)
	}
}

// claim records the target chosen for a server. Called with c.mu held.
func (k *capacity) claim(serverID, host string, size Resources, now time.Time) {
	if k.claims == nil {
		k.claims = map[string]claim{}
	}
	for id, cl := range k.claims {
		if !cl.landed.IsZero() && now.Sub(cl.landed) > landedKept {
			delete(k.claims, id)
		}
	}
	k.claims[serverID] = claim{host: host, size: size}
}

// landed marks the server's claim as shown by Placement from now on.
func (c *Controller) landed(serverID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.capacity.claims[serverID]; ok && cl.landed.IsZero() {
		cl.landed = c.now()
		c.capacity.claims[serverID] = cl
	}
}

// unclaim drops the server's claim: its evacuation was refused or failed,
// and nothing of it is on the target.
func (c *Controller) unclaim(serverID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.capacity.claims, serverID)
}

// claimedHost is where the server was sent by an incident, if one did.
// Called with c.mu held.
func (k *capacity) claimedHost(serverID string) (string, bool) {
	cl, ok := k.claims[serverID]
	return cl.host, ok
}

// acquire takes one of the controller-wide evacuation slots
// (evacuate.max_in_flight); release gives it back.
func (c *Controller) acquire(ctx context.Context) (release func(), err error) {
	if c.Config.Evacuate.MaxInFlight <= 0 {
		return func() {}, nil
	}
	c.mu.Lock()
	if c.inFlight == nil {
		c.inFlight = make(chan struct{}, c.Config.Evacuate.MaxInFlight)
	}
	slots := c.inFlight
	c.mu.Unlock()
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
