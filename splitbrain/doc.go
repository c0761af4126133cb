// Package splitbrain resolves a DRBD split brain from evidence.
//
// Each node's [Node] gathers what it knows (DRBD state and generation
// identifiers through package drbd, Pacemaker's view and the fence-peer
// constraint through package pacemaker, the VIP, MariaDB's binary log, the
// backing device); [Decide] picks the victim by policy (auto, least-changes,
// prefer, manual) or refuses when unsure; the [Engine] runs the plan with
// the victim's divergent data preserved (LVM snapshot or verified copy)
// before anything is discarded, its peer's half through the watchdog's
// signed peer API. Every run is recorded as an [Incident].
package splitbrain
