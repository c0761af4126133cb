package gossip

import (
	"context"
	"math/rand/v2"
	"time"
)

// keepJoined keeps pl's pool connected to the domain until ctx is done.
//
// While the pool has no other alive member (a member whose seeds are down at
// start, or a host whose link was cut and is back) it tries the seeds, with a
// backoff from t.min doubling to t.max. Whatever its size, every t.reconnect
// it also tries one member it saw fail (not leave): memberlist gossips to
// dead members only for GossipToTheDeadTime, so without this the two halves
// of a longer partition would never find each other again. A member that
// failed for good is tried forever, one TCP connection per t.reconnect.
func (p *Pools) keepJoined(ctx context.Context, pl *pool, seeds []string, t retryTiming) {
	backoff := t.min
	lastReconnect := time.Now()
	for {
		wait := t.min
		if pl.ml.NumMembers() > 1 {
			backoff = t.min
		} else if len(seeds) > 0 {
			if !p.join(ctx, pl, seeds) {
				wait = backoff/2 + rand.N(backoff/2+1)
				backoff = min(2*backoff, t.max)
			}
		}
		if time.Since(lastReconnect) >= t.reconnect {
			lastReconnect = time.Now()
			if failed := p.peers(pl.link, false); len(failed) > 0 {
				n := failed[rand.N(len(failed))]
				p.join(ctx, pl, []string{n.Address()})
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// join tries addrs in turn until one answers: the pool then exchanges its
// whole state with that member. It reports whether one answered.
func (p *Pools) join(ctx context.Context, pl *pool, addrs []string) bool {
	for _, a := range addrs {
		if ctx.Err() != nil {
			return false
		}
		n, err := pl.ml.Join([]string{a})
		if n > 0 {
			p.log.Info("gossip pool joined", "link", pl.link, "via", a, "members", pl.ml.NumMembers())
			return true
		}
		p.log.Debug("gossip join failed", "link", pl.link, "via", a, "err", err)
	}
	return false
}
