// Package drbd reads and drives DRBD replication for a two-node pair: the
// only package that runs drbdadm and drbdsetup ([Adm]).
//
// It supports the in-kernel DRBD 8.4 (state from /proc/drbd, generation
// identifiers from `drbdadm get-gi`/`show-gi`) and DRBD 9 (state from
// `drbdsetup events2` and `drbdsetup status --json`) with drbd-utils 9.x.
// Both versions fold into one state model, [Resource].
//
// The parsers are pure functions over bytes. Everything that touches a node
// goes through a small runner interface (internal/runner in production, a
// lab node or a stateful fake in tests). The split-brain engine that
// decides and repairs from both nodes' evidence is package splitbrain.
package drbd
