// Package drbd reads and repairs DRBD replication for a two-node pair.
//
// It supports the in-kernel DRBD 8.4 (state from /proc/drbd, generation
// identifiers from `drbdadm get-gi`/`show-gi`) and DRBD 9 (state from
// `drbdsetup events2` and `drbdsetup status --json`) with drbd-utils 9.x.
// Both versions fold into one state model, [Resource].
//
// The parsers are pure functions over bytes. Everything that touches a node
// goes through a small runner interface (internal/runner in production, a
// stateful fake in tests), one per node, so the split-brain [Engine] can be
// driven from the CLI, the watchdog or a lab test alike.
//
// Pacemaker drives the resource and its filesystem through haconf's own
// OCF agents, [Agent] (ocf:haconf:drbd, a promotable clone) and [FSAgent]
// (ocf:haconf:fs), run as `haconf ocf drbd|fs ACTION`.
package drbd
