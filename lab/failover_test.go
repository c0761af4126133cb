package lab

import (
	"os"
	"testing"
	"time"
)

// The survivor's Pacemaker 2.1.5 log of a lab failover (ctl1 crashed at
// 13:08:36.9), filtered the way failoverPhases filters it.
func TestParseFailoverLog(t *testing.T) {
	log, err := os.ReadFile("testdata/failover-pacemaker-2.1.5.log")
	if err != nil {
		fatal(t, err)
	}
	crash := time.Date(2026, 11, 21, 13, 8, 36, 900_000_000, time.UTC)
	got := ParseFailoverLog(log, "ctl1", "ctl2", crash)
	want := []Phase{
		{PhaseDetected, 3905 * time.Millisecond},
		{PhaseFenced, 15935 * time.Millisecond},
		{PhasePromoted, 31596 * time.Millisecond},
		{PhaseMounted, 44646 * time.Millisecond},
		{PhaseMariaDB, 58416 * time.Millisecond},
		{PhaseVIP, 61696 * time.Millisecond},
	}
	if len(got) != len(want) {
		fatalf(t, "got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			errorf(t, "phase %d: got %v, want %v", i, got[i], want[i])
		}
	}
	// Lines before the crash do not count; the other node's names do not match.
	if p := ParseFailoverLog(log, "ctl1", "ctl2", crash.Add(time.Hour)); len(p) != 0 {
		errorf(t, "phases after the log ends: %v", p)
	}
	if p := ParseFailoverLog(log, "ctl2", "ctl1", crash); len(p) != 0 {
		errorf(t, "phases with the roles swapped: %v", p)
	}
}
