package cloud

// BenchRound is one round of the compute failover benchmark
// (TestComputeBench, bench/compute): seconds from the victim's power-off,
// 0 when a phase does not apply to the tool.
type BenchRound struct {
	Tool    string `json:"tool"` // haconf, masakari (defaults), masakari (fastest)
	Round   int    `json:"round"`
	Servers int    `json:"servers"` // on the victim
	// haconf's phases, from its incident: the second link declared dead,
	// the fence confirmed off, nova-compute forced down and disabled.
	Detected float64 `json:"detected_s,omitempty"`
	Fenced   float64 `json:"fenced_s,omitempty"`
	Isolated float64 `json:"isolated_s,omitempty"`
	// FirstEvacuate is the first evacuate call (haconf's record) or the
	// first server seen leaving the victim in Nova (Masakari).
	FirstEvacuate float64 `json:"first_evacuate_s"`
	// AllActive is when Nova showed every server of the victim ACTIVE on
	// another host (0: not within the round's limit; see Error).
	AllActive float64        `json:"all_active_s"`
	Spread    map[string]int `json:"spread"`
	// EvacuatedOnce is true when Nova recorded exactly one evacuation of
	// each server of the victim.
	EvacuatedOnce bool   `json:"evacuated_once"`
	Error         string `json:"error,omitempty"`
}
