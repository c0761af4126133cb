// Package gossip tells which compute hosts are alive on each of two networks,
// management and storage, with hashicorp/memberlist v0.5.4 (SWIM with
// indirect probes and Lifeguard's suspicion).
//
// Every member of a detection domain (a rack) is in two memberlists, one
// bound to its management address and one to its storage address ([Pools]):
// each compute host's agent, which reports its [Health] in its node meta, and
// the controller, which keeps every host's state per link ([Pools.View],
// [Pools.Events]). Both links alive is a healthy host, one link lost only a
// warning, both lost a host failure; that decision is the controller's, not
// this package's. Each memberlist is labelled "haconf/<domain>/<link>" and
// encrypted with [Config.Key], so packets of the other network's pool, of
// another domain's pool or of a member without the key are refused.
//
// # Dead
//
// A member that answers neither a direct probe (within ProbeTimeout) nor the
// indirect probes other members send it on the prober's behalf, nor a TCP
// ping, becomes suspect. It is declared dead when the suspicion timeout
// passes without it refuting the suspicion: SuspicionMult x max(1, log10 N)
// x ProbeInterval for N members, starting at SuspicionMaxTimeoutMult times
// that and shrinking to it as other members confirm the suspicion. A host
// whose link stops is therefore seen dead on that link after about
//
//	Profile "lan"   (memberlist.DefaultLANConfig: probe every 1 s, probe timeout 500 ms,
//	                 3 indirect probes, suspicion 4 x): 7 s
//	Profile "local" (memberlist.DefaultLocalConfig: probe every 1 s, probe timeout 200 ms,
//	                 1 indirect probe, suspicion 3 x): 5 s
//
// with 5 to 10 members (the nova lab measured 7.0 s and 5.0 s with 5
// members; TestLinkLossThenHostLoss, with 6, 4.8-5.1 s with "local" and, run
// by hand with "lan", 5.8-7.0 s); beyond 10 members the suspicion part grows
// with log10 N. Everything else is memberlist's default for the profile.
//
// When a member joins, it and the member it joins through exchange their
// whole state at once; the others learn of it by gossip, and at the latest at
// their next push/pull (every 30 s with "lan"; every 15 s with "local", which
// also passes each gossip message on only twice). The controller should
// therefore be among every agent's seeds: it then sees each agent as soon as
// it joins.
//
// A member that leaves with [Pools.Leave] is reported as having left
// ([LinkState.Left]), not as failed. A member that comes back after being
// declared dead (same name, a new incarnation) is reported alive again.
package gossip
