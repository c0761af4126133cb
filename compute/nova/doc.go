// Package nova is haconf's client of the OpenStack APIs that compute-node
// failover drives: Keystone (v3 password login), Nova (compute API) and
// Placement. The failover controller fences a dead compute host, forces
// its nova-compute service down, disables it, then evacuates each of its
// servers to a host it chooses; this package makes those calls and the
// reads the choice needs (services, servers with their flavors, server
// groups, aggregates, resource providers).
//
// It is built on gophercloud v2: one ProviderClient logs in once (New)
// and keeps its token, renewed a minute before it expires and again,
// once, when an API answers 401. A Client is safe for concurrent use.
//
// # Versions
//
// Compute calls ask for microversion 2.53 (Pike and later): services are
// addressed by UUID (PUT /os-services/{id}), a server embeds its flavor
// (2.47), evacuate takes an optional host that the scheduler still checks
// (2.29) and no onSharedStorage (refused from 2.14 on), and server groups
// still report "policies" (a list; 2.64 made it "policy"). Placement calls
// ask for 1.14 (Queens and later), the first to report each provider's
// parent and root, so that nested providers can be counted with their
// compute node; Providers reads every provider's capacity and usage in
// one GET /allocation_candidates at 1.29 (Train and later; each
// provider's inventories and usages, 2 calls per provider, from an older
// Placement). Tested against Debian 12's Zed packages (Nova 26, up to
// 2.93; Placement 8, up to 1.39) in haconf's compute lab; the recordings
// in testdata/ come from there (testdata/capture.sh).
//
// Where gophercloud's request types do not fit these versions, small
// request bodies of this package's own are sent instead: evacuate
// (servers.EvacuateOpts always sends onSharedStorage, and decodes an
// adminPass that Nova stopped sending at 2.14) and service updates
// (services.UpdateOpts leaves forced_down out when false).
//
// # Errors
//
// An API's refusal is an *Error carrying the API's own message (Nova's
// badRequest.message, Placement's errors[].detail, Keystone's
// error.message) and the request id for the operator's logs. Transport
// failures and context ends are returned wrapped, as they are.
package nova
